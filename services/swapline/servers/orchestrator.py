"""Orchestrator service: the public API. Jobs run the pipeline with the
stages in this process (embedded) or over gRPC (distributed, when every
``SWAPLINE_<STAGE>_ADDR`` is set)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import grpc

from swapline.config import OrchestratorConfig, ServerConfig
from swapline.errors import InvalidInputError
from swapline.jobs import (
    TERMINAL,
    InProcessTraining,
    JobRunner,
    JobState,
    JobStore,
    KubernetesTraining,
    TrainingLauncher,
    TrainingRequest,
    TrainingStore,
    new_run,
)
from swapline.media import Frame
from swapline.pipeline import (
    EmbeddedStages,
    FrameSwapper,
    Progress,
    RemoteStages,
    Stages,
    SwapOptions,
)
from swapline.protocol import wire
from swapline.protocol.jobs import (
    job_message,
    job_state,
    spec_dict,
    swap_options,
    training_message,
)
from swapline.protocol.options import blend_options
from swapline.runtime import metrics
from swapline.runtime.server import ServiceBinding, StageWorkers
from swapline.runtime.storage import StorageRoots
from swapline.stages.paste import paste
from swapline.v1 import common_pb2 as pb
from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc

SERVICE_NAME = opb.DESCRIPTOR.services_by_name["Orchestrator"].full_name
CHUNK = 1024 * 1024
MAX_UPLOAD = 8 * 1024 * 1024 * 1024
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(
        self,
        config: ServerConfig,
        orchestrator: OrchestratorConfig,
        workers: StageWorkers,
        stages: Stages,
        store: JobStore,
        roots: StorageRoots,
        training: tuple[TrainingStore, TrainingLauncher],
    ) -> None:
        self.config = config
        self.workers = workers
        self.stages = stages
        self.store = store
        self.roots = roots
        self.work_dir = orchestrator.work_dir
        self.runner = JobRunner(store, stages, swap_options, orchestrator.job_concurrency)
        self.training_store, self.training = training
        for record in store.interrupted():  # left over by a previous process
            store.update(
                record.id, state=JobState.FAILED, error="interrupted: the orchestrator restarted"
            )

    async def SubmitJob(
        self, requests: AsyncIterator[opb.SubmitJobRequest], context: grpc.aio.ServicerContext
    ) -> opb.Job:
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("item") != "spec":
            raise InvalidInputError("the first message must be the JobSpec")
        spec = first.spec
        if not spec.model:
            raise InvalidInputError("the job names no model")
        await self.workers.run(self.stages.model, spec.model)  # NOT_FOUND before any work
        swap_options(spec)  # INVALID_ARGUMENT before any work
        record = self.store.create(spec_dict(spec))
        job_dir = self.work_dir / record.id
        job_dir.mkdir(parents=True, exist_ok=True)
        try:
            if spec.input_uri:
                source = self.roots.resolve(spec.input_uri)
                if not source.is_file():
                    raise InvalidInputError(f"{spec.input_uri}: no such file")
                suffix = source.suffix.lower()
            else:
                suffix = Path(spec.input_name or "input.mp4").suffix.lower() or ".mp4"
                if suffix not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
                    raise InvalidInputError(f"unsupported input type {suffix!r}")
                source = job_dir / f"input{suffix}"
                await self._receive(requests, source)
            output = job_dir / ("output" + (suffix if suffix in IMAGE_SUFFIXES else ".mp4"))
            record = self.store.update(record.id, input_path=str(source), output_path=str(output))
        except BaseException as exc:
            self.store.update(record.id, state=JobState.FAILED, error=str(exc))
            raise
        self.runner.submit(record.id)
        return job_message(record)

    async def _receive(self, requests: AsyncIterator[opb.SubmitJobRequest], path: Path) -> None:
        size = 0
        with path.open("wb") as fh:
            async for request in requests:
                if request.WhichOneof("item") != "chunk":
                    raise InvalidInputError("only data chunks may follow the JobSpec")
                size += len(request.chunk.data)
                if size > MAX_UPLOAD:
                    raise InvalidInputError(f"upload larger than {MAX_UPLOAD} bytes")
                fh.write(request.chunk.data)
        if size == 0:
            raise InvalidInputError("the job has neither an input_uri nor uploaded data")

    async def GetJob(
        self, request: opb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> opb.Job:
        return job_message(self.store.get(request.id))

    async def WatchJob(
        self, request: opb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[opb.Job]:
        record = self.store.get(request.id)
        yield job_message(record)
        while record.state not in TERMINAL:
            record = await asyncio.to_thread(
                self.store.wait_for_change, request.id, record.version, 5.0
            )
            yield job_message(record)

    async def CancelJob(
        self, request: opb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> opb.Job:
        self.runner.cancel(request.id)
        return job_message(self.store.get(request.id))

    async def ListJobs(
        self, request: opb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> opb.ListJobsResponse:
        size = min(request.page_size or 50, 500)
        before = float(request.page_token) if request.page_token else None
        state = job_state(request.state)
        records = self.store.list_jobs(state, size + 1, before)
        token = str(records[size - 1].created) if len(records) > size else ""
        return opb.ListJobsResponse(
            jobs=[job_message(r) for r in records[:size]], next_page_token=token
        )

    async def DownloadResult(
        self, request: opb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[opb.DataChunk]:
        record = self.store.get(request.id)
        if record.state != JobState.SUCCEEDED:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"job {record.id} is {record.state.value}, not succeeded",
            )
        with open(record.output_path, "rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, CHUNK):
                yield opb.DataChunk(data=chunk)

    async def TrainModel(
        self, request: opb.TrainModelRequest, context: grpc.aio.ServicerContext
    ) -> opb.TrainingRun:
        """Starts training a model for one identity pair: a Kubernetes Job on a
        cluster, a thread here otherwise. Facesets must lie under the storage
        roots and carry (or be given) a consent reference."""
        training = TrainingRequest(
            name=request.name,
            source=self.roots.resolve(request.source_faceset_uri),
            target=self.roots.resolve(request.target_faceset_uri),
            resolution=request.resolution or 64,
            architecture=request.architecture or "df",
            steps=request.steps or 5000,
            identities=tuple((i.role, i.name, i.consent_reference) for i in request.identities),
        )
        training.validate()
        run = self.training_store.save(new_run(training))
        run = await asyncio.to_thread(self.training.launch, run, training)
        return training_message(self.training_store.save(run))

    async def GetTrainingRun(
        self, request: opb.GetTrainingRunRequest, context: grpc.aio.ServicerContext
    ) -> opb.TrainingRun:
        run = self.training_store.get(request.id)
        run = await asyncio.to_thread(self.training.refresh, run)
        return training_message(self.training_store.save(run))

    async def SwapStream(
        self,
        requests: AsyncIterator[opb.SwapStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[opb.SwapStreamResponse]:
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("item") != "config":
            raise InvalidInputError("the first message must be SwapStreamConfig")
        config = first.config
        options = SwapOptions(
            model=config.model, blend=blend_options(config.blend), window=1, min_track_frames=1
        )
        swapper = await self.workers.run(FrameSwapper, self.stages, options)
        progress = Progress()
        async for request in requests:
            if request.WhichOneof("item") != "frame":
                raise InvalidInputError("only frames may follow the config")
            yield await self.workers.run(self._swap_frame, swapper, request.frame, progress)

    def _swap_frame(
        self, swapper: FrameSwapper, message: opb.StreamFrame, progress: Progress
    ) -> opb.SwapStreamResponse:
        image = wire.decode_image_message(message.image, "frame", self.config.max_frame_pixels)
        if image.ndim != 3:
            raise InvalidInputError("frames must be colour images")
        frame = Frame(message.frame.index, message.frame.pts, Fraction(1, 1), image)
        (patches,) = swapper.run([[frame]], progress, end=False)
        out = paste(image.copy(), patches.patches)
        encoding = (
            message.image.encoded.encoding
            if message.image.WhichOneof("pixels") == "encoded"
            else pb.IMAGE_ENCODING_UNSPECIFIED
        )
        return opb.SwapStreamResponse(
            frame=opb.StreamFrame(frame=message.frame, image=wire.image_message(out, encoding)),
            faces_swapped=len(patches.patches),
        )

    def close(self) -> None:
        self.runner.close()
        self.stages.close()
        self.store.close()
        self.training_store.close()


def training_backend(
    config: ServerConfig, orchestrator: OrchestratorConfig
) -> tuple[TrainingStore, TrainingLauncher]:
    """Kubernetes Jobs when the chart's Job template is mounted, in-process
    training otherwise."""
    store = TrainingStore(str(orchestrator.jobs_db))
    repository = Path(config.model_repository).absolute()
    work_dir = orchestrator.work_dir / "training"
    if orchestrator.training_job_template:
        template = Path(orchestrator.training_job_template)
        launcher = KubernetesTraining.from_file(
            template, orchestrator.namespace, work_dir, repository
        )
        return store, launcher
    return store, InProcessTraining(store, work_dir, repository)


def make_stages(config: ServerConfig, orchestrator: OrchestratorConfig) -> Stages:
    """The stages over gRPC when their addresses are configured, in this
    process otherwise."""
    remote = orchestrator.stages
    if remote is not None:
        return RemoteStages(remote.addresses, remote.pixel_encoding)
    return EmbeddedStages(config.model_repository, cpu_int8=config.cpu_int8)


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    orchestrator = OrchestratorConfig.from_env()
    roots = StorageRoots.from_env(config.storage_roots)
    store = JobStore(str(orchestrator.jobs_db))
    metrics.register_job_states(store.count_by_state, [s.value for s in JobState])
    servicer = OrchestratorServicer(
        config,
        orchestrator,
        workers,
        make_stages(config, orchestrator),
        store,
        roots,
        training_backend(config, orchestrator),
    )
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: orchestrator_pb2_grpc.add_OrchestratorServicer_to_server(
            servicer, server
        ),
        close=servicer.close,
    )

"""Orchestrator service: the public API. Jobs run the pipeline with the
stages in this process (embedded) or over gRPC (distributed, when every
``SWAPLINE_<STAGE>_ADDR`` is set)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from swapline import wire
from swapline.errors import InvalidInputError
from swapline.jobs import (
    TERMINAL,
    InProcessTraining,
    JobRecord,
    JobRunner,
    JobState,
    JobStore,
    KubernetesTraining,
    TrainingLauncher,
    TrainingRequest,
    TrainingRun,
    TrainingStore,
    new_run,
)
from swapline.media import Frame
from swapline.pipeline import EmbeddedStages, FrameSwapper, Progress, Stages, SwapOptions
from swapline.runtime import metrics
from swapline.runtime.config import ServerConfig
from swapline.runtime.server import ServiceBinding, StageWorkers
from swapline.services.blender import blend_options
from swapline.services.encoder import encode_options
from swapline.stages.encode import paste
from swapline.storage import StorageRoots
from swapline.v1 import common_pb2 as pb
from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc

SERVICE_NAME = opb.DESCRIPTOR.services_by_name["Orchestrator"].full_name
CHUNK = 1024 * 1024
MAX_UPLOAD = 8 * 1024 * 1024 * 1024
_STATES = {
    JobState.QUEUED: opb.JOB_STATE_QUEUED,
    JobState.RUNNING: opb.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: opb.JOB_STATE_SUCCEEDED,
    JobState.FAILED: opb.JOB_STATE_FAILED,
    JobState.CANCELLED: opb.JOB_STATE_CANCELLED,
}
_STATE_NAMES = {v: k for k, v in _STATES.items()}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def training_message(run: TrainingRun) -> opb.TrainingRun:
    return opb.TrainingRun(
        id=run.id,
        name=run.name,
        state=_STATES[run.state],
        steps_done=run.steps_done,
        steps_total=run.steps_total,
        loss=run.loss,
        error=run.error,
        kubernetes_job=run.kubernetes_job,
    )


def job_message(record: JobRecord) -> opb.Job:
    spec = opb.JobSpec()
    json_format.ParseDict(record.spec, spec)
    return opb.Job(
        id=record.id,
        spec=spec,
        state=_STATES[record.state],
        progress=opb.JobProgress(
            frames_done=record.frames_done,
            frames_total=record.frames_total,
            frames_per_second=record.frames_per_second,
            faces_swapped=record.faces_swapped,
            stage_seconds=record.stage_seconds,
        ),
        error=record.error,
        output_uri=Path(record.output_path).absolute().as_uri()
        if record.state == JobState.SUCCEEDED
        else "",
        created=_timestamp(record.created),
        updated=_timestamp(record.updated),
    )


def swap_options(spec: dict[str, Any]) -> SwapOptions:
    message = opb.JobSpec()
    json_format.ParseDict(spec, message)
    return SwapOptions(
        model=message.model,
        blend=blend_options(message.blend),
        encode=encode_options(message.encode),
        max_faces_per_frame=message.max_faces_per_frame,
        detect_every=message.detect_every or SwapOptions.detect_every,
    )


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(
        self,
        config: ServerConfig,
        workers: StageWorkers,
        stages: Stages,
        store: JobStore,
        roots: StorageRoots,
        work_dir: Path,
        concurrency: int,
        training: tuple[TrainingStore, TrainingLauncher] | None = None,
    ) -> None:
        self.config = config
        self.workers = workers
        self.stages = stages
        self.store = store
        self.roots = roots
        self.work_dir = work_dir
        self.runner = JobRunner(store, stages, swap_options, concurrency)
        self.training_store, self.training = training or training_backend(
            config, work_dir, store.path
        )
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
        swap_options(json_format.MessageToDict(spec, preserving_proto_field_name=False))
        record = self.store.create(json_format.MessageToDict(spec))
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
        state = _STATE_NAMES.get(request.state)
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
        (patches,) = swapper.process([frame], progress)
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
    config: ServerConfig, work_dir: Path, database: str
) -> tuple[TrainingStore, TrainingLauncher]:
    """Kubernetes Jobs when the chart's Job template is mounted
    (SWAPLINE_TRAINING_JOB_TEMPLATE), in-process training otherwise."""
    store = TrainingStore(database)
    repository = Path(config.model_repository).absolute()
    template = os.environ.get("SWAPLINE_TRAINING_JOB_TEMPLATE", "")
    if template:
        namespace = os.environ.get("SWAPLINE_NAMESPACE", "default")
        return store, KubernetesTraining.from_file(
            Path(template), namespace, work_dir / "training", repository
        )
    return store, InProcessTraining(store, work_dir / "training", repository)


def make_stages(config: ServerConfig) -> Stages:
    from swapline.remote import RemoteStages, StageAddresses

    addresses = StageAddresses.from_env()
    if addresses is not None:
        return RemoteStages(addresses)
    return EmbeddedStages(config.model_repository)


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    work_dir = Path(os.environ.get("SWAPLINE_WORK_DIR", "out/jobs")).absolute()
    roots = StorageRoots.from_env(os.environ.get("SWAPLINE_STORAGE_ROOTS", os.getcwd()))
    store = JobStore(os.environ.get("SWAPLINE_JOBS_DB", str(work_dir / "jobs.sqlite3")))
    concurrency = int(os.environ.get("SWAPLINE_JOB_CONCURRENCY", "1"))
    metrics.register_job_states(store.count_by_state, [s.value for s in JobState])
    servicer = OrchestratorServicer(
        config, workers, make_stages(config), store, roots, work_dir, concurrency
    )
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: orchestrator_pb2_grpc.add_OrchestratorServicer_to_server(
            servicer, server
        ),
        close=servicer.close,
    )

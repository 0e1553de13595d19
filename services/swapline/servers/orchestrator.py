"""Orchestrator service: the public API. Jobs run the pipeline with the
stages in this process (embedded) or over gRPC (distributed, when every
``SWAPLINE_<STAGE>_ADDR`` is set)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import grpc

from swapline.config import OrchestratorConfig, ServerConfig
from swapline.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SwaplineError,
    UnavailableError,
)
from swapline.jobs import (
    TERMINAL,
    InProcessTraining,
    JobRecord,
    JobRunner,
    JobState,
    JobStore,
    KubernetesTraining,
    LeaseLostError,
    NoTraining,
    TrainingLauncher,
    TrainingRequest,
    TrainingStore,
    is_server_url,
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
from swapline.pipeline.references import prepare_swap
from swapline.protocol import wire
from swapline.protocol.jobs import (
    face_selection,
    job_message,
    job_state,
    selection_message,
    spec_dict,
    swap_options,
    training_message,
)
from swapline.protocol.options import blend_options
from swapline.protocol.security import caller
from swapline.runtime import metrics
from swapline.runtime.server import ServiceBinding, StageWorkers
from swapline.runtime.storage import StorageRoots
from swapline.stages.encode import SYNTHETIC_COMMENT, with_comment
from swapline.stages.paste import paste
from swapline.v1 import common_pb2 as pb
from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc

SERVICE_NAME = opb.DESCRIPTOR.services_by_name["Orchestrator"].full_name
CHUNK = 1024 * 1024
DISK_CHECK_BYTES = 64 * 1024 * 1024  # an upload checks the watermark this often
WATCH_POLL_SECONDS = 1.0
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
        # A job database that is a file is never a job's input.
        self.jobs_file = None if is_server_url(orchestrator.jobs_db) else Path(orchestrator.jobs_db)
        self.max_queued = orchestrator.max_queued_jobs
        self.max_per_owner = orchestrator.max_jobs_per_owner
        self.max_upload = orchestrator.max_upload_bytes
        self.min_free_bytes = orchestrator.min_free_bytes
        self.runner = JobRunner(
            store,
            stages,
            swap_options,
            orchestrator.job_concurrency,
            lease_seconds=orchestrator.lease_seconds,
            retention_seconds=orchestrator.retention_seconds,
        )
        self.training_store, self.training = training
        self.runner.start()  # jobs left queued or running by a lost orchestrator resume

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
        options = swap_options(spec)  # INVALID_ARGUMENT before any work
        # Mapped models are looked up and reference images become embeddings
        # now (a face that is not there or not consented is refused before
        # any work); the job keeps the embeddings.
        options = await self.workers.run(prepare_swap, options, self.stages)
        spec.selection.CopyFrom(selection_message(options.selection))
        if self.runner.stopping:
            raise UnavailableError("this orchestrator is shutting down; retry (another takes it)")
        await asyncio.to_thread(self._require_free_disk)
        owner = caller().owner
        active = await asyncio.to_thread(self.store.count_active)
        if active >= self.max_queued:
            raise ResourceExhaustedError(
                f"{active} jobs are queued or running, the most this service takes; "
                "retry when some have finished",
                retry_after_seconds=30.0,
            )
        own = await asyncio.to_thread(self.store.count_active, owner)
        if own >= self.max_per_owner:
            raise ResourceExhaustedError(
                f"{owner} has {own} jobs queued or running, the most one client may; "
                "retry when some have finished",
                retry_after_seconds=30.0,
            )
        source = self._input(spec.input_uri) if spec.input_uri else None
        # The job database may be a server: its calls stay off the event loop.
        record = await asyncio.to_thread(
            self.store.create,
            spec_dict(spec),
            holder=self.runner.holder,
            lease_seconds=self.runner.lease_seconds,
            owner=owner,
        )
        job_dir = self.work_dir / record.id
        try:
            with self.runner.receiving(record.id):
                job_dir.mkdir(parents=True, exist_ok=True)
                if source is not None:
                    suffix = source.suffix.lower()
                else:
                    suffix = Path(spec.input_name or "input.mp4").suffix.lower() or ".mp4"
                    if suffix not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
                        raise InvalidInputError(f"unsupported input type {suffix!r}")
                    source = job_dir / f"input{suffix}"
                    await self._receive(requests, source)
                output = job_dir / ("output" + (suffix if suffix in IMAGE_SUFFIXES else ".mp4"))
                record = await asyncio.to_thread(
                    self.store.input_complete,
                    record.id,
                    self.runner.holder,
                    str(source),
                    str(output),
                )
        except BaseException as exc:
            with contextlib.suppress(LeaseLostError):
                await asyncio.to_thread(
                    self.store.update,
                    record.id,
                    holder=self.runner.holder,
                    state=JobState.FAILED,
                    error=str(exc),
                )
            shutil.rmtree(job_dir, ignore_errors=True)  # a partial upload holds no disk
            raise
        self.runner.notify()
        return job_message(record)

    def _input(self, uri: str) -> Path:
        """A job input named by URI: a file under the storage roots, never
        the job database nor another job's files."""
        source = self.roots.resolve(uri)
        private = [self.work_dir.resolve()]
        if self.jobs_file is not None:
            private.append(self.jobs_file.resolve().parent)
        if (self.jobs_file is not None and source.name.startswith(self.jobs_file.name)) or any(
            source == p or p in source.parents for p in private
        ):
            raise PermissionDeniedError(f"{uri}: the orchestrator's own files are not inputs")
        if not source.is_file():
            raise InvalidInputError(f"{uri}: no such file")
        return source

    def _require_free_disk(self) -> None:
        """RESOURCE_EXHAUSTED while the work folder's disk is below its
        watermark: a job that cannot be written is not taken."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.work_dir).free
        if free < self.min_free_bytes:
            raise ResourceExhaustedError(
                f"the work folder's disk has {free // 2**20} MiB free, under the "
                f"{self.min_free_bytes // 2**20} MiB this service keeps; retry later",
                retry_after_seconds=60.0,
            )

    async def _receive(self, requests: AsyncIterator[opb.SubmitJobRequest], path: Path) -> None:
        size = checked = 0
        with path.open("wb") as fh:
            async for request in requests:
                if request.WhichOneof("item") != "chunk":
                    raise InvalidInputError("only data chunks may follow the JobSpec")
                size += len(request.chunk.data)
                if size > self.max_upload:
                    raise InvalidInputError(
                        f"upload larger than {self.max_upload} bytes, this service's limit"
                    )
                if size - checked > DISK_CHECK_BYTES:
                    checked = size
                    await asyncio.to_thread(self._require_free_disk)
                await asyncio.to_thread(fh.write, request.chunk.data)
        if size == 0:
            raise InvalidInputError("the job has neither an input_uri nor uploaded data")

    async def _owned(self, job_id: str) -> JobRecord:
        """The caller's job (any job, for an admin); another owner's is
        NOT_FOUND, as if it did not exist."""
        principal = caller()
        record = await asyncio.to_thread(self.store.get, job_id)
        if not principal.admin and record.owner != principal.owner:
            raise NotFoundError(f"no job {job_id!r}")
        return record

    async def GetJob(
        self, request: opb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> opb.Job:
        return job_message(await self._owned(request.id))

    async def WatchJob(
        self, request: opb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[opb.Job]:
        record = await self._owned(request.id)
        yield job_message(record)
        changed = asyncio.Event()
        loop = asyncio.get_running_loop()

        def listener(job_id: str) -> None:
            if job_id == request.id:
                loop.call_soon_threadsafe(changed.set)

        # Changes made here wake the stream at once; another orchestrator's
        # (the job's holder may be one) are seen by reading every second.
        unsubscribe = self.store.listen(listener)
        try:
            while record.state not in TERMINAL:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), WATCH_POLL_SECONDS)
                changed.clear()
                latest = await asyncio.to_thread(self.store.get, request.id)
                if latest.version != record.version:
                    record = latest
                    yield job_message(record)
        finally:
            unsubscribe()

    async def CancelJob(
        self, request: opb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> opb.Job:
        await self._owned(request.id)
        return job_message(await asyncio.to_thread(self.runner.cancel, request.id))

    async def ListJobs(
        self, request: opb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> opb.ListJobsResponse:
        size = min(request.page_size or 50, 500)
        before = float(request.page_token) if request.page_token else None
        state = job_state(request.state)
        principal = caller()
        owner = None if principal.admin else principal.owner
        records = await asyncio.to_thread(self.store.list_jobs, state, size + 1, before, owner)
        token = str(records[size - 1].created) if len(records) > size else ""
        return opb.ListJobsResponse(
            jobs=[job_message(r) for r in records[:size]], next_page_token=token
        )

    async def DownloadResult(
        self, request: opb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[opb.DataChunk]:
        record = await self._owned(request.id)
        if record.purged:
            raise NotFoundError(f"job {record.id}'s result was removed after the retention period")
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
        roots and carry (or be given) a consent reference. Admins only: a
        model trained here serves every job."""
        require_admin("training a model")
        if isinstance(self.training, NoTraining):
            self.training.refuse()
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
        require_admin("training runs")
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
            model=config.model,
            blend=blend_options(config.blend),
            window=1,
            min_track_frames=1,
            selection=face_selection(config.selection),
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
        reply = wire.image_message(out, encoding)
        commented = {pb.IMAGE_ENCODING_PNG: "png", pb.IMAGE_ENCODING_JPEG: "jpeg"}
        fmt = commented.get(reply.encoded.encoding) if reply.HasField("encoded") else None
        if fmt is not None:  # the image file carries the mark too
            text = f"{SYNTHETIC_COMMENT} swapline_model={','.join(swapper.options.models)}"
            reply.encoded.data = with_comment(reply.encoded.data, fmt, text)
        return opb.SwapStreamResponse(
            frame=opb.StreamFrame(frame=message.frame, image=reply),
            faces_swapped=len(patches.patches),
            synthetic=True,
            disclosure=SYNTHETIC_COMMENT,
            model=",".join(swapper.options.models),
        )

    def drain(self, grace: float) -> None:
        self.runner.drain(grace)

    def close(self) -> None:
        self.runner.close()
        self.stages.close()
        self.store.close()
        self.training_store.close()


def require_admin(what: str) -> None:
    if not caller().admin:
        raise PermissionDeniedError(f"{what} needs an admin token")


def training_backend(
    config: ServerConfig, orchestrator: OrchestratorConfig
) -> tuple[TrainingStore, TrainingLauncher]:
    """Kubernetes Jobs when the chart's Job template is mounted, in-process
    training otherwise."""
    store = TrainingStore(orchestrator.jobs_db)
    repository = Path(config.model_repository).absolute()
    work_dir = orchestrator.work_dir / "training"
    if orchestrator.training_job_template:
        template = Path(orchestrator.training_job_template)
        launcher = KubernetesTraining.from_file(
            template, orchestrator.namespace, work_dir, repository
        )
        return store, launcher
    reason = in_process_training_problem(repository)
    if reason:
        return store, NoTraining(reason)
    return store, InProcessTraining(store, work_dir, repository)


def in_process_training_problem(repository: Path) -> str:
    """Why this process cannot train and export (torch missing, as in the
    runtime image; a read-only model repository), or ''."""
    import importlib.util

    from swapline.model.export import staging_parent

    if importlib.util.find_spec("torch") is None:
        return (
            "torch is not installed (the runtime image has none); train with "
            "`swapline train` on a GPU machine, or on a cluster with the chart's "
            "orchestrator.trainOnCluster"
        )
    try:
        staging_parent(repository)
    except SwaplineError as exc:
        return str(exc)
    return ""


def make_stages(config: ServerConfig, orchestrator: OrchestratorConfig) -> Stages:
    """The stages over gRPC when their addresses are configured, in this
    process otherwise."""
    remote = orchestrator.stages
    if remote is not None:
        tls = config.tls
        credentials = tls.client_credentials() if tls is not None else None
        return RemoteStages(remote.addresses, remote.pixel_encoding, credentials)
    return EmbeddedStages(config.model_repository, cpu_int8=config.cpu_int8)


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    orchestrator = OrchestratorConfig.from_env()
    roots = StorageRoots.from_env(config.storage_roots)
    store = JobStore(orchestrator.jobs_db)
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
        drain=servicer.drain,
        close=servicer.close,
    )

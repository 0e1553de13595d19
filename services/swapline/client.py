"""A client of the Orchestrator API: upload, watch, download."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from swapline.errors import SwaplineError
from swapline.protocol.channel import channel, with_retries
from swapline.protocol.status import error_for
from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc

CHUNK = 1024 * 1024


def _upload(spec: opb.JobSpec, path: Path) -> Iterator[opb.SubmitJobRequest]:
    yield opb.SubmitJobRequest(spec=spec)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield opb.SubmitJobRequest(chunk=opb.DataChunk(data=chunk))


def remote_swap(
    address: str,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    spec: opb.JobSpec,
    on_progress: Callable[[opb.Job], None] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> opb.Job:
    """Uploads ``source``, follows the job, and writes the result to
    ``output``. ``credentials``: TLS and the caller's token (None: an
    orchestrator that serves without authentication)."""
    path = Path(source)
    if not path.is_file():
        raise SwaplineError(f"{source}: no such file")
    spec.input_name = path.name
    with channel(address, credentials) as ch:
        stub = orchestrator_pb2_grpc.OrchestratorStub(ch)
        try:
            job = stub.SubmitJob(_upload(spec, path))
            job = follow(stub, job, on_progress)
            if job.state != opb.JOB_STATE_SUCCEEDED:
                raise SwaplineError(f"job {job.id} {opb.JobState.Name(job.state)}: {job.error}")
            partial = Path(output).with_name(
                f".{Path(output).name}.{uuid.uuid4().hex[:12]}.partial"
            )
            try:
                with partial.open("wb") as fh:
                    for chunk in with_retries(
                        lambda: list(stub.DownloadResult(opb.GetJobRequest(id=job.id))),
                        "orchestrator call",
                    ):
                        fh.write(chunk.data)
                os.replace(partial, output)
            finally:
                partial.unlink(missing_ok=True)
        except grpc.RpcError as error:
            raise error_for(error, "orchestrator call") from None
    return job


# An orchestrator restarting or handing its jobs over ends a watch with one
# of these: the job lives on in the queue, so the client watches again.
_WATCH_AGAIN = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def follow(
    stub: orchestrator_pb2_grpc.OrchestratorStub,
    job: opb.Job,
    on_progress: Callable[[opb.Job], None] | None = None,
    patience_s: float = 600.0,
) -> opb.Job:
    """Watches ``job`` until it ends, through orchestrator restarts (for up
    to ``patience_s`` seconds without an answer)."""
    last_heard = time.monotonic()
    delay = 0.2
    while job.state in (opb.JOB_STATE_QUEUED, opb.JOB_STATE_RUNNING):
        try:
            for update in stub.WatchJob(opb.GetJobRequest(id=job.id), wait_for_ready=True):
                job, last_heard, delay = update, time.monotonic(), 0.2
                if on_progress is not None:
                    on_progress(job)
        except grpc.RpcError as error:
            if error.code() not in _WATCH_AGAIN or time.monotonic() - last_heard > patience_s:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    return job

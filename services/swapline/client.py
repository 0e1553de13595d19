"""A client of the Orchestrator API: upload, watch, download."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from swapline.errors import SwaplineError
from swapline.protocol.channel import channel
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
) -> opb.Job:
    """Uploads ``source``, follows the job, and writes the result to ``output``."""
    path = Path(source)
    if not path.is_file():
        raise SwaplineError(f"{source}: no such file")
    spec.input_name = path.name
    with channel(address) as ch:
        stub = orchestrator_pb2_grpc.OrchestratorStub(ch)
        try:
            job = stub.SubmitJob(_upload(spec, path))
            for update in stub.WatchJob(opb.GetJobRequest(id=job.id)):
                job = update
                if on_progress is not None:
                    on_progress(job)
            if job.state != opb.JOB_STATE_SUCCEEDED:
                raise SwaplineError(f"job {job.id} {opb.JobState.Name(job.state)}: {job.error}")
            partial = Path(output).with_name(f".{Path(output).name}.partial")
            with partial.open("wb") as fh:
                for chunk in stub.DownloadResult(opb.GetJobRequest(id=job.id)):
                    fh.write(chunk.data)
            os.replace(partial, output)
        except grpc.RpcError as error:
            raise error_for(error, "orchestrator call") from None
    return job

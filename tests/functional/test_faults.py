"""Faults an operator meets, on real orchestrator processes sharing one job
database: kill -9 and SIGTERM mid-job, two orchestrators at once, a flood
of watchers, a full queue. Every job ends SUCCEEDED with the input's frames
and audio, or is refused with a status that says why."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc
from tests.conftest import ServerProcess, start_server, stop_server
from tests.functional.test_orchestrator import MODEL, orchestrator_env
from tests.functional.test_swap import audio_packets, video_frames

LEASE = "3"  # seconds: a lost orchestrator's jobs are taken over quickly


@contextlib.contextmanager
def orchestrators(
    tmp: Path, data: Path, count: int = 1, **env: str
) -> Iterator[list[ServerProcess]]:
    """``count`` embedded orchestrators on one job database and work folder."""
    settings = {**orchestrator_env(tmp, [tmp, data]), "SWAPLINE_LEASE_SECONDS": LEASE, **env}
    servers = [start_server("orchestrator", tmp, settings) for _ in range(count)]
    try:
        yield servers
    finally:
        for server in servers:
            stop_server(server)


def restart(server: ServerProcess, tmp: Path, data: Path, **env: str) -> ServerProcess:
    settings = {**orchestrator_env(tmp, [tmp, data]), "SWAPLINE_LEASE_SECONDS": LEASE, **env}
    return start_server("orchestrator", tmp, settings, port=server.port)


def stub_of(channel: grpc.Channel) -> orchestrator_pb2_grpc.OrchestratorStub:
    return orchestrator_pb2_grpc.OrchestratorStub(channel)


def submit(server: ServerProcess, clip: Path) -> str:
    with server.channel() as channel:
        request = opb.SubmitJobRequest(spec=opb.JobSpec(model=MODEL, input_uri=clip.as_uri()))
        return str(stub_of(channel).SubmitJob(iter([request]), timeout=60).id)


def job(server: ServerProcess, job_id: str) -> opb.Job:
    with server.channel() as channel:
        return stub_of(channel).GetJob(opb.GetJobRequest(id=job_id), timeout=30)


def wait_for(server: ServerProcess, job_id: str, frames: int = 0, timeout: float = 300) -> opb.Job:
    """The job once it has done ``frames`` frames (or ended)."""
    deadline = time.monotonic() + timeout
    while True:
        current = job(server, job_id)
        ended = current.state not in (opb.JOB_STATE_QUEUED, opb.JOB_STATE_RUNNING)
        if ended or (frames and current.progress.frames_done >= frames):
            return current
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)


def assert_whole(server: ServerProcess, job_id: str, clip: Path, tmp: Path) -> None:
    """The job SUCCEEDED and its result holds every frame and audio packet."""
    final = wait_for(server, job_id)
    assert final.state == opb.JOB_STATE_SUCCEEDED, (final.error, server.output())
    result = tmp / f"{job_id}.mp4"
    with server.channel() as channel:
        chunks = stub_of(channel).DownloadResult(opb.GetJobRequest(id=job_id), timeout=60)
        result.write_bytes(b"".join(c.data for c in chunks))
    assert [p for p, _ in video_frames(result)] == [p for p, _ in video_frames(clip)]
    assert audio_packets(result) == audio_packets(clip)


def test_a_killed_orchestrator_s_job_is_finished_after_its_restart(
    data: Path, tmp_path: Path
) -> None:
    clip = data / "d10.mp4"
    with orchestrators(tmp_path, data) as (first,):
        job_id = submit(first, clip)
        queued_id = submit(first, data / "vfr_talking_1.mp4")  # waits behind it
        wait_for(first, job_id, frames=60)
        first.process.kill()
        first.process.wait()
        second = restart(first, tmp_path, data)
        try:
            assert_whole(second, job_id, clip, tmp_path)
            assert_whole(second, queued_id, data / "vfr_talking_1.mp4", tmp_path)
            assert job(second, job_id).progress.frames_done == 448
        finally:
            stop_server(second)


def test_sigterm_hands_back_or_finishes_the_running_job(data: Path, tmp_path: Path) -> None:
    clip = data / "d10.mp4"
    # A grace period too short for the job: it goes back to the queue, and
    # the next orchestrator runs it from the start.
    with orchestrators(tmp_path, data, SWAPLINE_DRAIN_SECONDS="0.5") as (first,):
        job_id = submit(first, clip)
        wait_for(first, job_id, frames=60)
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=60) == 0
        handed_back = job_record(tmp_path, job_id)
        assert handed_back["state"] == "queued" and handed_back["holder"] == ""
    # Long enough: a SIGTERM lets the running job finish before the exit.
    with orchestrators(tmp_path, data, SWAPLINE_DRAIN_SECONDS="300") as (second,):
        wait_for(second, job_id, frames=60)
        second.process.send_signal(signal.SIGTERM)
        with second.channel() as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 10
            while (
                health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                == health_pb2.HealthCheckResponse.SERVING
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            with pytest.raises(grpc.RpcError) as refused:
                request = opb.SubmitJobRequest(
                    spec=opb.JobSpec(model=MODEL, input_uri=clip.as_uri())
                )
                stub_of(channel).SubmitJob(iter([request]), timeout=30)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert second.process.wait(timeout=300) == 0
    with orchestrators(tmp_path, data) as (third,):
        assert_whole(third, job_id, clip, tmp_path)
        assert job(third, job_id).progress.frames_done == 448


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_orchestrators_share_the_queue_and_take_over_a_lost_one(
    data: Path, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    env = {}
    if database == "postgres":
        env["SWAPLINE_JOBS_DB"] = request.getfixturevalue("postgres_url")
    clips = [data / "carphone_pristine.mp4", data / "vfr_talking_1.mp4"] * 2
    with orchestrators(tmp_path, data, count=2, **env) as (a, b):
        ids = [submit(server, clip) for server, clip in zip([a, b, a, b], clips, strict=True)]
        for job_id, clip in zip(ids, clips, strict=True):
            assert_whole(b, job_id, clip, tmp_path)  # any orchestrator answers for any job
        # A rolling update gone wrong: one orchestrator dies mid-job; the
        # other takes the job over once its lease has expired.
        long = submit(a, data / "d10.mp4")
        wait_for(a, long, frames=30)
        assert _runs_it(a, long) != _runs_it(b, long)
        holder, other = (a, b) if _runs_it(a, long) else (b, a)
        holder.process.kill()
        holder.process.wait()
        assert_whole(other, long, data / "d10.mp4", tmp_path)
        assert job(other, long).progress.frames_done == 448
        # Every job is accounted for: none lost, none run twice to the end.
        with other.channel("admin") as channel:
            listed = stub_of(channel).ListJobs(opb.ListJobsRequest(page_size=50), timeout=30)
        assert sorted(j.id for j in listed.jobs) == sorted([*ids, long])
        assert {j.state for j in listed.jobs} == {opb.JOB_STATE_SUCCEEDED}


def _runs_it(server: ServerProcess, job_id: str) -> bool:
    """Whether ``server``'s process runs ``job_id``: its frames-per-second
    gauge carries the job's id while it does."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics") as reply:
        return f'job_id="{job_id}"' in reply.read().decode()


def another_jobs_file(tmp: Path) -> str:
    """A file inside the work folder (another job's, as far as a caller knows)."""
    other = tmp / "jobs" / "someone-else"
    other.mkdir(parents=True, exist_ok=True)
    (other / "input.mp4").write_bytes(b"private")
    return "someone-else/input.mp4"


def job_record(tmp: Path, job_id: str) -> dict[str, object]:
    """The job's row as the database holds it."""
    from swapline.jobs import JobStore

    store = JobStore(tmp / "jobs" / "jobs.sqlite3")
    try:
        record = store.get(job_id)
    finally:
        store.close()
    return {"state": record.state.value, "holder": record.holder, "attempts": record.attempts}


def test_watchers_never_starve_health_and_the_queue_is_bounded(data: Path, tmp_path: Path) -> None:
    env = {"SWAPLINE_MAX_CONCURRENT_RPCS": "150", "SWAPLINE_MAX_QUEUED_JOBS": "1"}
    with orchestrators(tmp_path, data, **env) as (server,):
        job_id = submit(server, data / "d6.mp4")  # 1008 frames: long enough to watch
        with server.channel() as channel, pytest.raises(grpc.RpcError) as full:
            request = opb.SubmitJobRequest(
                spec=opb.JobSpec(model=MODEL, input_uri=(data / "d10.mp4").as_uri())
            )
            stub_of(channel).SubmitJob(iter([request]), timeout=30)
        assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert dict(full.value.trailing_metadata() or ())["retry-after-ms"] == "30000"

        opened, refused, health = asyncio.run(_watch_many(server, job_id, 200))
        assert opened == 150 and refused == 50
        assert health == health_pb2.HealthCheckResponse.SERVING
        with server.channel() as channel:
            stub_of(channel).CancelJob(opb.GetJobRequest(id=job_id), timeout=30)
        assert wait_for(server, job_id).state == opb.JOB_STATE_CANCELLED


async def _watch_many(server: ServerProcess, job_id: str, count: int) -> tuple[int, int, int]:
    """Opens ``count`` WatchJob streams at once, reads the first update of
    each, and checks health while they are all open."""
    credentials = server.credentials()
    assert credentials is not None
    async with grpc.aio.secure_channel(server.address, credentials) as channel:
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        calls = [stub.WatchJob(opb.GetJobRequest(id=job_id)) for _ in range(count)]

        async def first(call: grpc.aio.UnaryStreamCall) -> bool:
            try:
                await call.read()
                return True
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
                return False

        outcomes = await asyncio.gather(*(first(c) for c in calls))
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        for call in calls:
            call.cancel()
    return sum(outcomes), count - sum(outcomes), int(reply.status)


def test_uploads_and_disk_are_bounded_and_old_results_removed(data: Path, tmp_path: Path) -> None:
    env = {"SWAPLINE_MAX_UPLOAD_BYTES": "200000", "SWAPLINE_RETENTION_SECONDS": "2"}
    with orchestrators(tmp_path, data, **env) as (server,), server.channel() as channel:
        stub = stub_of(channel)
        big = (data / "carphone_pristine.mp4").read_bytes()  # 589 kB
        chunks = [big[i : i + 65536] for i in range(0, len(big), 65536)]
        requests = [opb.SubmitJobRequest(spec=opb.JobSpec(model=MODEL, input_name="a.mp4"))]
        requests += [opb.SubmitJobRequest(chunk=opb.DataChunk(data=c)) for c in chunks]
        with pytest.raises(grpc.RpcError) as refused:
            stub.SubmitJob(iter(requests), timeout=60)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "200000 bytes" in (refused.value.details() or "")
        (failed,) = stub.ListJobs(opb.ListJobsRequest(), timeout=30).jobs
        assert failed.state == opb.JOB_STATE_FAILED
        assert not (tmp_path / "jobs" / failed.id).exists()  # the partial upload is gone

        # The job database and the work folder lie under a storage root
        # here, and still are nobody's input.
        others = tmp_path / "jobs" / another_jobs_file(tmp_path)
        for private in (tmp_path / "jobs" / "jobs.sqlite3", others):
            with pytest.raises(grpc.RpcError) as denied:
                submit(server, private)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, private

        job_id = submit(server, data / "d10_rotated.mp4")
        assert wait_for(server, job_id).state == opb.JOB_STATE_SUCCEEDED
        folder = tmp_path / "jobs" / job_id
        deadline = time.monotonic() + 30
        while folder.exists():  # removed once the retention period has passed
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)
        with pytest.raises(grpc.RpcError) as expired:
            list(stub.DownloadResult(opb.GetJobRequest(id=job_id), timeout=30))
        assert expired.value.code() == grpc.StatusCode.NOT_FOUND
        assert (data / "d10_rotated.mp4").exists()  # a job's input_uri is never removed
    with orchestrators(tmp_path, data, SWAPLINE_MIN_FREE_BYTES=str(10**18)) as (server,):
        with pytest.raises(grpc.RpcError) as full:
            submit(server, data / "d10_rotated.mp4")
        assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "free" in (full.value.details() or "")
        assert "retry-after-ms" in dict(full.value.trailing_metadata() or ())

"""The job store on both databases it runs on: SQLite (a file several
processes share) and PostgreSQL. Claims are exclusive, leases expire into
the queue, and a job that keeps losing its orchestrator stops being retried."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from swapline.jobs import MAX_ATTEMPTS, JobState, JobStore, LeaseLostError


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "jobs.sqlite3")


def queued(store: JobStore, count: int) -> list[str]:
    ids = []
    for n in range(count):
        record = store.create({"n": n}, holder="uploader", lease_seconds=60)
        store.input_complete(record.id, "uploader", f"/in/{n}.mp4", f"/out/{n}.mp4")
        ids.append(record.id)
    return ids


def test_each_job_is_claimed_once_however_many_claim_at_once(target: str) -> None:
    ids = queued(JobStore(target), 24)
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claimer(holder: str) -> None:
        store = JobStore(target)  # a connection of its own, as another process has
        try:
            while (record := store.claim(holder, 60)) is not None:
                with lock:
                    claimed.append((record.id, holder))
        finally:
            store.close()

    threads = [threading.Thread(target=claimer, args=(f"o{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(job_id for job_id, _ in claimed) == sorted(ids)
    store = JobStore(target)
    assert all(store.get(i).state == JobState.RUNNING for i in ids)
    assert {store.get(job_id).holder for job_id, _ in claimed} == {h for _, h in claimed}


def test_an_expired_lease_requeues_the_job_until_it_gives_up(target: str) -> None:
    store = JobStore(target)
    (job_id,) = queued(store, 1)
    previous = ""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        # The holder before is gone (nobody renewed): the job is requeued
        # and claimed again; the old holder may no longer touch it.
        record = store.claim(f"holder{attempt}", lease_seconds=0.05)
        assert record is not None and record.id == job_id and record.attempts == attempt
        if previous:
            with pytest.raises(LeaseLostError):
                store.update(job_id, holder=previous, frames_done=1)
        previous = f"holder{attempt}"
        time.sleep(0.1)
    # Lost MAX_ATTEMPTS times: the last expiry fails it instead.
    assert store.claim("another", 60) is None
    final = store.get(job_id)
    assert final.state == JobState.FAILED and "gave up" in final.error


def test_cancel_reaches_the_holder_through_its_heartbeat(target: str) -> None:
    store = JobStore(target)
    first, second = queued(store, 2)
    assert store.request_cancel(second).state == JobState.CANCELLED  # queued: at once
    record = store.claim("holder", 60)
    assert record is not None and record.id == first
    store.request_cancel(first)
    assert store.get(first).state == JobState.RUNNING  # its holder stops it
    assert store.renew("holder", [first], 60) == {first: True}
    store.update(first, holder="holder", state=JobState.CANCELLED)
    assert store.renew("holder", [first], 60) == {}  # finished: no lease to renew

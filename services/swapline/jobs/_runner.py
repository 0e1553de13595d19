"""Runs queued jobs: claims them from the shared store, keeps their leases
alive while it works, and stops a job when it is cancelled, taken over or
handed back (a draining orchestrator)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from swapline.errors import SwaplineError, UnavailableError
from swapline.jobs._store import JobRecord, JobState, JobStore, LeaseLostError
from swapline.pipeline import Progress, Stages, SwapOptions, swap_file
from swapline.runtime import metrics

log = logging.getLogger(__name__)

OptionsFactory = Callable[[dict[str, object]], SwapOptions]
POLL_SECONDS = 1.0
# How often a job starts again because a stage server was unreachable.
STAGE_OUTAGE_RETRIES = 3  # how often an idle worker looks for jobs other processes queued


class _Stop(Enum):
    CANCEL = "cancel"  # a user asked
    HAND_BACK = "hand back"  # this orchestrator is shutting down
    LOST = "lost"  # the lease went to another orchestrator


@dataclass
class _Running:
    flag: threading.Event = field(default_factory=threading.Event)
    reason: _Stop = _Stop.CANCEL

    def stop(self, reason: _Stop) -> None:
        if not self.flag.is_set():
            self.reason = reason
            self.flag.set()


class JobRunner:
    """``concurrency`` worker threads claim and run jobs; a heartbeat thread
    renews the leases of the jobs this process runs or receives."""

    def __init__(
        self,
        store: JobStore,
        stages: Stages,
        options_for: OptionsFactory,
        concurrency: int = 1,
        lease_seconds: float = 15.0,
        retention_seconds: float | None = None,
    ) -> None:
        """``retention_seconds``: how long a finished job's own folder (its
        upload and result) is kept; None keeps it."""
        self.store = store
        self.stages = stages
        self.options_for = options_for
        self.lease_seconds = lease_seconds
        self.retention_seconds = retention_seconds
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._running: dict[str, _Running] = {}
        self._uploads: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()  # no new claims
        self._closed = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, name=f"job-{n}", daemon=True)
            for n in range(concurrency)
        ]
        self._heartbeat = threading.Thread(target=self._beat, name="job-leases", daemon=True)

    def start(self) -> None:
        for thread in (*self._workers, self._heartbeat):
            thread.start()

    def notify(self) -> None:
        """A job was queued: idle workers look now."""
        self._wake.set()

    @contextlib.contextmanager
    def receiving(self, job_id: str) -> Iterator[None]:
        """Keeps the upload lease of ``job_id`` alive meanwhile."""
        with self._lock:
            self._uploads.add(job_id)
        try:
            yield
        finally:
            with self._lock:
                self._uploads.discard(job_id)

    def cancel(self, job_id: str) -> JobRecord:
        record = self.store.request_cancel(job_id)
        with self._lock:
            running = self._running.get(job_id)
        if running is not None:
            running.stop(_Stop.CANCEL)
        return record

    @property
    def stopping(self) -> bool:
        """Draining: no new jobs are taken."""
        return self._stopping.is_set()

    @property
    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    # -- threads --------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                record = self.store.claim(self.holder, self.lease_seconds)
            except Exception:  # the database is busy or gone for a moment
                log.exception("claiming a job failed")
                record = None
            if record is None:
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()
                continue
            self._run(record)

    def _beat(self) -> None:
        # The retention sweep is a write transaction: every minute at most
        # (sooner only for a shorter retention), not every heartbeat.
        sweep_every = min(60.0, (self.retention_seconds or 60.0) / 2)
        next_sweep = time.monotonic()
        while not self._closed.wait(self.lease_seconds / 3):
            with self._lock:
                running = dict(self._running)
                ids = [*running, *self._uploads]
            try:
                held = self.store.renew(self.holder, ids, self.lease_seconds)
            except Exception:
                log.exception("renewing job leases failed")
                continue
            for job_id, job in running.items():
                if job_id not in held:
                    log.warning("job %s: lease lost, stopping it here", job_id)
                    job.stop(_Stop.LOST)
                elif held[job_id]:
                    job.stop(_Stop.CANCEL)
            if self.retention_seconds is not None and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + sweep_every
                try:
                    self._remove_expired(self.retention_seconds)
                except Exception:
                    log.exception("removing expired job files failed")

    def _run(self, record: JobRecord) -> None:
        job_id = record.id
        job = _Running()
        with self._lock:
            self._running[job_id] = job
        counted = 0

        def update(**fields: object) -> None:
            try:
                self.store.update(job_id, holder=self.holder, **fields)
            except LeaseLostError:
                job.stop(_Stop.LOST)

        def report(progress: Progress) -> None:
            nonlocal counted
            metrics.JOB_FRAMES.inc(max(0, progress.frames_done - counted))  # 0 after a restart
            counted = progress.frames_done
            metrics.JOB_FRAMES_PER_SECOND.labels(job_id).set(progress.frames_per_second)
            update(
                frames_done=progress.frames_done,
                frames_total=progress.frames_total,
                frames_per_second=round(progress.frames_per_second, 2),
                faces_swapped=progress.faces_swapped,
                stage_seconds={k: round(v, 3) for k, v in progress.stage_seconds.items()},
            )

        final: JobState | None = None
        try:
            options = self.options_for(record.spec)
            for outage in itertools.count(1):
                _remove_partials(Path(record.output_path))
                try:
                    _, progress = swap_file(
                        record.input_path,
                        record.output_path,
                        self.stages,
                        options,
                        report,
                        job.flag.is_set,
                    )
                    break
                except UnavailableError as exc:
                    # A stage is down (a pod replaced, a node lost): the
                    # job starts again, the encode with it, once it is back.
                    if outage > STAGE_OUTAGE_RETRIES or job.flag.is_set():
                        raise
                    log.warning("job %s: %s; starting it again (%d)", job_id, exc, outage)
                    update(error=f"starting again: {exc}", frames_done=0)
                    if job.flag.wait(min(2.0**outage, 30.0)):
                        raise InterruptedError("stopped while waiting for a stage") from None
            report(progress)
            final = JobState.SUCCEEDED
            update(state=final, error="")
        except InterruptedError:
            if job.reason is _Stop.HAND_BACK:
                self.store.release(job_id, self.holder)
            elif job.reason is _Stop.CANCEL:
                final = JobState.CANCELLED
                update(state=final, error="cancelled")
        except SwaplineError as exc:
            final = JobState.FAILED
            update(state=final, error=str(exc))
        except Exception as exc:  # the job fails, the orchestrator lives on
            log.exception("job %s failed", job_id)
            final = JobState.FAILED
            update(state=final, error=f"internal error: {exc}")
        finally:
            with self._lock:
                self._running.pop(job_id, None)
            with contextlib.suppress(KeyError):
                metrics.JOB_FRAMES_PER_SECOND.remove(job_id)
            if final is not None and job.reason is not _Stop.LOST:
                metrics.JOBS_FINISHED.labels(final.value).inc()

    def _remove_expired(self, retention_seconds: float) -> None:
        for record in self.store.take_expired(time.time() - retention_seconds):
            folder = Path(record.output_path).parent
            if record.output_path and folder.name == record.id:  # the job's own, only
                shutil.rmtree(folder, ignore_errors=True)
                log.info("job %s: files removed after the retention period", record.id)

    # -- shutdown -------------------------------------------------------------

    def drain(self, grace: float) -> None:
        """Takes no new jobs, lets running ones finish for up to ``grace``
        seconds, then hands the rest back to the queue for another
        orchestrator (or this one's successor)."""
        self._stopping.set()
        self._wake.set()
        deadline = threading.Event()
        timer = threading.Timer(grace, deadline.set)
        timer.start()
        try:
            while self.running and not deadline.wait(0.2):
                pass
        finally:
            timer.cancel()
        with self._lock:
            for job in self._running.values():
                job.stop(_Stop.HAND_BACK)
        for thread in self._workers:
            if thread.is_alive():
                thread.join()
        self._closed.set()

    def close(self) -> None:
        if not self._closed.is_set():
            self.drain(0.0)


def _remove_partials(output: Path) -> None:
    """What an earlier attempt at this job left half-written (its encoder
    was killed): the job's folder is its own, and this attempt the only one."""
    for partial in output.parent.glob(f".{output.name}.*.partial"):
        partial.unlink(missing_ok=True)

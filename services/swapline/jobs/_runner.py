"""Runs jobs on a small pool of threads, with cancellation."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from swapline.errors import SwaplineError
from swapline.jobs._store import TERMINAL, JobState, JobStore
from swapline.pipeline import Progress, Stages, SwapOptions, swap_file
from swapline.runtime import metrics

log = logging.getLogger(__name__)

OptionsFactory = Callable[[dict[str, object]], SwapOptions]


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        stages: Stages,
        options_for: OptionsFactory,
        concurrency: int = 1,
    ) -> None:
        self.store = store
        self.stages = stages
        self.options_for = options_for
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._cancel: dict[str, threading.Event] = {}
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, job_id: str) -> None:
        with self._lock:
            self._cancel[job_id] = threading.Event()
            self._futures[job_id] = self._pool.submit(self._run, job_id)

    def cancel(self, job_id: str) -> None:
        record = self.store.get(job_id)
        if record.state in TERMINAL:
            return
        with self._lock:
            flag = self._cancel.get(job_id)
        if flag is not None:
            flag.set()
        if record.state == JobState.QUEUED:
            self.store.update(job_id, state=JobState.CANCELLED, error="cancelled")

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout)

    def _run(self, job_id: str) -> None:
        flag = self._cancel[job_id]
        record = self.store.get(job_id)
        if record.state != JobState.QUEUED or flag.is_set():
            return
        self.store.update(job_id, state=JobState.RUNNING)

        counted = 0

        def report(progress: Progress) -> None:
            nonlocal counted
            metrics.JOB_FRAMES.inc(progress.frames_done - counted)
            counted = progress.frames_done
            metrics.JOB_FRAMES_PER_SECOND.labels(job_id).set(progress.frames_per_second)
            self.store.update(
                job_id,
                frames_done=progress.frames_done,
                frames_total=progress.frames_total,
                frames_per_second=round(progress.frames_per_second, 2),
                faces_swapped=progress.faces_swapped,
                stage_seconds={k: round(v, 3) for k, v in progress.stage_seconds.items()},
            )

        try:
            options = self.options_for(record.spec)
            _, progress = swap_file(
                record.input_path, record.output_path, self.stages, options, report, flag.is_set
            )
            report(progress)
            self.store.update(job_id, state=JobState.SUCCEEDED)
        except InterruptedError:
            Path(record.output_path).unlink(missing_ok=True)
            self.store.update(job_id, state=JobState.CANCELLED, error="cancelled")
        except SwaplineError as exc:
            Path(record.output_path).unlink(missing_ok=True)
            self.store.update(job_id, state=JobState.FAILED, error=str(exc))
        except Exception as exc:  # the job fails, the orchestrator lives on
            log.exception("job %s failed", job_id)
            Path(record.output_path).unlink(missing_ok=True)
            self.store.update(job_id, state=JobState.FAILED, error=f"internal error: {exc}")
        finally:
            with self._lock:
                self._cancel.pop(job_id, None)
            with contextlib.suppress(KeyError):
                metrics.JOB_FRAMES_PER_SECOND.remove(job_id)
            metrics.JOBS_FINISHED.labels(self.store.get(job_id).state.value).inc()

    def close(self) -> None:
        with self._lock:
            for flag in self._cancel.values():
                flag.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

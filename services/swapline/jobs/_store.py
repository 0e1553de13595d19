"""Job records in SQLite: they survive a restart of the orchestrator."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from swapline.errors import NotFoundError


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


@dataclass
class JobRecord:
    id: str
    spec: dict[str, Any]
    state: JobState = JobState.QUEUED
    input_path: str = ""
    output_path: str = ""
    error: str = ""
    frames_done: int = 0
    frames_total: int = 0
    frames_per_second: float = 0.0
    faces_swapped: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    version: int = 0


_COLUMNS = (
    "id",
    "spec",
    "state",
    "input_path",
    "output_path",
    "error",
    "frames_done",
    "frames_total",
    "frames_per_second",
    "faces_swapped",
    "stage_seconds",
    "created",
    "updated",
    "version",
)


class JobStore:
    """Thread-safe; every change bumps the record's version and wakes watchers."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, spec TEXT, state TEXT, "
            "input_path TEXT, output_path TEXT, error TEXT, frames_done INTEGER, "
            "frames_total INTEGER, frames_per_second REAL, faces_swapped INTEGER, "
            "stage_seconds TEXT, created REAL, updated REAL, version INTEGER)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created)")
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)

    def _row(self, record: JobRecord) -> tuple[Any, ...]:
        values = dict(vars(record))
        values["spec"] = json.dumps(record.spec)
        values["state"] = record.state.value
        values["stage_seconds"] = json.dumps(record.stage_seconds)
        return tuple(values[c] for c in _COLUMNS)

    def _record(self, row: tuple[Any, ...]) -> JobRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["spec"] = json.loads(values["spec"])
        values["state"] = JobState(values["state"])
        values["stage_seconds"] = json.loads(values["stage_seconds"])
        return JobRecord(**values)

    def create(self, spec: dict[str, Any], **fields: Any) -> JobRecord:
        record = JobRecord(id=uuid.uuid4().hex[:16], spec=spec, **fields)
        with self._lock:
            self._db.execute(
                f"INSERT INTO jobs VALUES ({','.join('?' * len(_COLUMNS))})", self._row(record)
            )
            self.changed.notify_all()
        return record

    def _fetch(self, job_id: str) -> JobRecord:
        """The record; the caller holds the lock."""
        row = self._db.execute(
            f"SELECT {','.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        return self._record(row)

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            return self._fetch(job_id)

    def update(self, job_id: str, **fields: Any) -> JobRecord:
        with self._lock:
            record = self._fetch(job_id)
            for key, value in fields.items():
                setattr(record, key, value)
            record.updated = time.time()
            record.version += 1
            self._db.execute(
                f"UPDATE jobs SET {','.join(f'{c} = ?' for c in _COLUMNS[1:])} WHERE id = ?",
                (*self._row(record)[1:], job_id),
            )
            self.changed.notify_all()
        return record

    def list_jobs(
        self, state: JobState | None = None, limit: int = 100, before: float | None = None
    ) -> list[JobRecord]:
        query = f"SELECT {','.join(_COLUMNS)} FROM jobs"
        clauses: list[str] = []
        params: list[Any] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(state.value)
        if before is not None:
            clauses.append("created < ?")
            params.append(before)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY created DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [self._record(r) for r in rows]

    def count_by_state(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}

    def wait_for_change(self, job_id: str, version: int, timeout: float) -> JobRecord:
        """The record once its version differs from ``version`` (or after
        ``timeout`` seconds, unchanged)."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.get(job_id)
            remaining = deadline - time.monotonic()
            if record.version != version or remaining <= 0:
                return record
            with self._lock:
                self.changed.wait(min(remaining, 0.5))

    def interrupted(self) -> list[JobRecord]:
        """Jobs a previous process left queued or running."""
        active = (JobState.QUEUED, JobState.RUNNING)
        return [r for r in self.list_jobs(limit=10_000) if r.state in active]

    def close(self) -> None:
        with self._lock:
            self._db.close()

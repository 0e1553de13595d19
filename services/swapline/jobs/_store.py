"""Job records in the job database (SQLite or PostgreSQL, see
:mod:`._database`), shared by every orchestrator that opens it.

A job belongs to one orchestrator at a time: the one holding its lease
(``holder``, until ``lease_expires``), renewed by heartbeats while it
uploads or runs the job. A lease that expires (its holder crashed or was
cut off) puts the job back in the queue, where any orchestrator claims it;
a job that has lost its holder ``MAX_ATTEMPTS`` times fails instead (it may
be what kills them). Only the holder may change a running job's progress
or state, so an orchestrator that lost a job can no longer touch it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from swapline.errors import NotFoundError
from swapline.jobs._database import Database

MAX_ATTEMPTS = 3


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class LeaseLostError(Exception):
    """The job is no longer this orchestrator's to change."""


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
    owner: str = ""
    holder: str = ""
    lease_expires: float = 0.0
    attempts: int = 0
    cancel_requested: bool = False
    purged: bool = False  # its files were removed after the retention period

    def unlease(self) -> None:
        """No orchestrator holds the job any more."""
        self.holder, self.lease_expires = "", 0.0


_TYPES = {
    "id": "TEXT PRIMARY KEY",
    "spec": "TEXT",
    "state": "TEXT",
    "input_path": "TEXT",
    "output_path": "TEXT",
    "error": "TEXT",
    "frames_done": "INTEGER",
    "frames_total": "INTEGER",
    "frames_per_second": "REAL",
    "faces_swapped": "INTEGER",
    "stage_seconds": "TEXT",
    "created": "REAL",
    "updated": "REAL",
    "version": "INTEGER",
    "owner": "TEXT NOT NULL DEFAULT ''",
    "holder": "TEXT NOT NULL DEFAULT ''",
    "lease_expires": "REAL NOT NULL DEFAULT 0",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "cancel_requested": "INTEGER NOT NULL DEFAULT 0",
    "purged": "INTEGER NOT NULL DEFAULT 0",
}
_COLUMNS = tuple(_TYPES)
_SELECT = f"SELECT {','.join(_COLUMNS)} FROM jobs"


class JobStore:
    """Thread-safe; every change bumps the record's version and is told to
    the listeners (:meth:`listen`) of this process. Other processes' changes
    are seen by reading again."""

    def __init__(self, target: str | Path) -> None:
        """``target``: a SQLite file or a ``postgresql://`` URL."""
        self.path = str(target)
        self._db = Database(self.path)
        with self._db.lock:
            columns = ",".join(f"{c} {self._db.type(t)}" for c, t in _TYPES.items())
            self._db.execute(f"CREATE TABLE IF NOT EXISTS jobs ({columns})")
            present = self._db.columns("jobs")
            for column, kind in _TYPES.items():  # a database from an older release
                if column not in present:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {self._db.type(kind)}")
            self._db.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created)")
            self._db.execute("CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created)")
        self._lock = self._db.lock
        self._listeners: list[Callable[[str], None]] = []

    # -- rows -----------------------------------------------------------------

    def _row(self, record: JobRecord) -> tuple[Any, ...]:
        values = dict(vars(record))
        values["spec"] = json.dumps(record.spec)
        values["state"] = record.state.value
        values["stage_seconds"] = json.dumps(record.stage_seconds)
        values["cancel_requested"] = int(record.cancel_requested)
        values["purged"] = int(record.purged)
        return tuple(values[c] for c in _COLUMNS)

    def _record(self, row: tuple[Any, ...]) -> JobRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["spec"] = json.loads(values["spec"])
        values["state"] = JobState(values["state"])
        values["stage_seconds"] = json.loads(values["stage_seconds"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        values["purged"] = bool(values["purged"])
        return JobRecord(**values)

    @contextmanager
    def _transaction(self) -> Iterator[list[str]]:
        """One write transaction (other processes wait for it); yields a
        list the body adds changed job ids to, told to listeners after."""
        changed: list[str] = []
        with self._db.transaction("jobs"):
            yield changed
        for job_id in changed:
            for listener in list(self._listeners):
                listener(job_id)

    def _fetch(self, job_id: str) -> JobRecord:
        """The record; the caller holds the lock."""
        row = self._db.execute(f"{_SELECT} WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        return self._record(row)

    def _write(self, record: JobRecord, changed: list[str]) -> JobRecord:
        record.updated = time.time()
        record.version += 1
        self._db.execute(
            f"UPDATE jobs SET {','.join(f'{c} = ?' for c in _COLUMNS[1:])} WHERE id = ?",
            (*self._row(record)[1:], record.id),
        )
        changed.append(record.id)
        return record

    # -- the API --------------------------------------------------------------

    def listen(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Calls ``listener(job_id)`` after every change this process makes,
        until the returned function is called."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def count_active(self, owner: str | None = None) -> int:
        """Jobs queued or running (of ``owner``, if given)."""
        query = "SELECT COUNT(*) FROM jobs WHERE state IN (?, ?)"
        params: list[Any] = [JobState.QUEUED.value, JobState.RUNNING.value]
        if owner is not None:
            query += " AND owner = ?"
            params.append(owner)
        with self._lock:
            return int(self._db.execute(query, params).fetchone()[0])

    def create(
        self, spec: dict[str, Any], holder: str = "", lease_seconds: float = 0.0, **fields: Any
    ) -> JobRecord:
        """A new queued job; with a ``holder``, leased to it while its input
        arrives (no one claims a job before its input is complete)."""
        record = JobRecord(id=uuid.uuid4().hex[:16], spec=spec, **fields)
        if holder:
            record.holder, record.lease_expires = holder, time.time() + lease_seconds
        with self._transaction() as changed:
            self._db.execute(
                f"INSERT INTO jobs VALUES ({','.join('?' * len(_COLUMNS))})", self._row(record)
            )
            changed.append(record.id)
        return record

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            return self._fetch(job_id)

    def update(self, job_id: str, holder: str | None = None, **fields: Any) -> JobRecord:
        """Changes ``fields``; with ``holder``, only while it holds the job
        (else LeaseLostError)."""
        with self._transaction() as changed:
            record = self._fetch(job_id)
            if holder is not None and (record.holder != holder or record.state in TERMINAL):
                raise LeaseLostError(job_id)
            for key, value in fields.items():
                setattr(record, key, value)
            if record.state in TERMINAL:
                record.unlease()
            return self._write(record, changed)

    def claim(self, holder: str, lease_seconds: float) -> JobRecord | None:
        """The oldest queued job whose input is complete, now RUNNING and
        leased to ``holder``; first puts jobs whose lease expired back in
        the queue (or fails them, see MAX_ATTEMPTS)."""
        now = time.time()
        with self._transaction() as changed:
            self._expire(now, changed)
            row = self._db.execute(
                f"{_SELECT} WHERE state = ? AND input_path != '' AND holder = '' "
                "AND cancel_requested = 0 ORDER BY created LIMIT 1",
                (JobState.QUEUED.value,),
            ).fetchone()
            if row is None:
                return None
            record = self._record(row)
            record.state = JobState.RUNNING
            record.holder, record.lease_expires = holder, now + lease_seconds
            record.attempts += 1
            record.error = ""
            return self._write(record, changed)

    def _expire(self, now: float, changed: list[str]) -> None:
        rows = self._db.execute(
            f"{_SELECT} WHERE holder != '' AND lease_expires < ? AND state IN (?, ?)",
            (now, JobState.QUEUED.value, JobState.RUNNING.value),
        ).fetchall()
        for row in rows:
            record = self._record(row)
            record.unlease()
            if not record.input_path:
                record.state, record.error = JobState.FAILED, "the upload was interrupted"
            elif record.cancel_requested:
                record.state, record.error = JobState.CANCELLED, "cancelled"
            elif record.attempts >= MAX_ATTEMPTS:
                record.state = JobState.FAILED
                record.error = f"gave up: its orchestrator was lost {record.attempts} times"
            else:
                record.state = JobState.QUEUED
                record.error = "requeued: its orchestrator was lost"
                record.frames_done = 0
            self._write(record, changed)

    def renew(self, holder: str, job_ids: Iterable[str], lease_seconds: float) -> dict[str, bool]:
        """Extends ``holder``'s leases; for each job still held, whether
        someone asked to cancel it. A job missing from the answer is lost."""
        ids = list(job_ids)
        if not ids:
            return {}
        expires = time.time() + lease_seconds
        marks = ",".join("?" * len(ids))
        with self._db.transaction("jobs"):
            self._db.execute(
                f"UPDATE jobs SET lease_expires = ? WHERE holder = ? AND id IN ({marks})",
                (expires, holder, *ids),
            )
            rows = self._db.execute(
                f"SELECT id, cancel_requested FROM jobs WHERE holder = ? AND id IN ({marks})",
                (holder, *ids),
            ).fetchall()
        return {str(job_id): bool(cancel) for job_id, cancel in rows}

    def release(self, job_id: str, holder: str) -> None:
        """Hands a job ``holder`` runs back to the queue (a draining
        orchestrator): another claims it, without counting an attempt."""
        with self._transaction() as changed:
            record = self._fetch(job_id)
            if record.holder != holder or record.state in TERMINAL:
                return
            record.unlease()
            record.state, record.frames_done = JobState.QUEUED, 0
            record.attempts = max(0, record.attempts - 1)
            record.error = "requeued: its orchestrator shut down"
            self._write(record, changed)

    def input_complete(
        self, job_id: str, holder: str, input_path: str, output_path: str
    ) -> JobRecord:
        """Ends the upload lease: the job is in the queue for anyone to
        claim (or cancelled, if that was asked meanwhile)."""
        with self._transaction() as changed:
            record = self._fetch(job_id)
            if record.holder != holder or record.state in TERMINAL:
                raise LeaseLostError(job_id)
            record.input_path, record.output_path = input_path, output_path
            record.unlease()
            if record.cancel_requested:
                record.state, record.error = JobState.CANCELLED, "cancelled"
            return self._write(record, changed)

    def request_cancel(self, job_id: str) -> JobRecord:
        """Cancels a queued job now; marks a running one, whose holder stops
        it (or, if that holder is gone, whoever finds its lease expired)."""
        with self._transaction() as changed:
            record = self._fetch(job_id)
            if record.state in TERMINAL:
                return record
            if record.state == JobState.QUEUED and (record.input_path or not record.holder):
                record.state, record.error = JobState.CANCELLED, "cancelled"
            else:
                record.cancel_requested = True
            return self._write(record, changed)

    def take_expired(self, ended_before: float, limit: int = 100) -> list[JobRecord]:
        """Finished jobs that ended before ``ended_before`` and still have
        their files, marked purged: the caller removes the files (once, of
        all orchestrators sharing the database)."""
        terminal = [state.value for state in TERMINAL]
        with self._transaction() as changed:
            rows = self._db.execute(
                f"{_SELECT} WHERE purged = 0 AND updated < ? AND state IN (?, ?, ?) LIMIT ?",
                (ended_before, *terminal, limit),
            ).fetchall()
            records = [self._record(row) for row in rows]
            for record in records:
                record.purged = True
                self._write(record, changed)
        return records

    def list_jobs(
        self,
        state: JobState | None = None,
        limit: int = 100,
        before: float | None = None,
        owner: str | None = None,
    ) -> list[JobRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(state.value)
        if before is not None:
            clauses.append("created < ?")
            params.append(before)
        if owner is not None:
            clauses.append("owner = ?")
            params.append(owner)
        query = _SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "")
        query += " ORDER BY created DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [self._record(r) for r in rows]

    def count_by_state(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}

    def close(self) -> None:
        self._db.close()

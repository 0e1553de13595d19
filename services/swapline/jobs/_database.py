"""The job database: SQLite (a file; the embedded default) or PostgreSQL (a
``postgresql://`` URL; for several orchestrator replicas on a cluster).
Statements are written once, with ``?`` placeholders and types both
understand; this is the one place the two differ."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from swapline.errors import InvalidInputError, UnavailableError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_server_url(target: str) -> bool:
    return target.startswith(POSTGRES_SCHEMES)


class Database:
    """One connection, used under a lock by every thread of the process;
    :meth:`transaction` makes writers of every process take turns."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.postgres = is_server_url(target)
        self.lock = threading.Lock()
        if self.postgres:
            try:
                import psycopg
            except ImportError:  # pragma: no cover - a dependency
                raise InvalidInputError("a postgresql:// job database needs psycopg") from None
            try:
                self._conn: Any = psycopg.connect(target, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise UnavailableError(f"job database {_redacted(target)}: {exc}") from None
        else:
            if target != ":memory:":
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                target, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=30000")

    def type(self, sql_type: str) -> str:
        """A column type as this database spells it (REAL is 4 bytes in
        PostgreSQL: too few for a timestamp)."""
        if self.postgres:
            return sql_type.replace("REAL", "DOUBLE PRECISION")
        return sql_type

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Runs one statement (the caller holds :attr:`lock`)."""
        if self.postgres:
            sql = sql.replace("?", "%s")
        return self._conn.execute(sql, tuple(params))

    def columns(self, table: str) -> set[str]:
        if self.postgres:
            rows = self.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                (table,),
            ).fetchall()
            return {str(r[0]) for r in rows}
        return {str(r[1]) for r in self.execute(f"PRAGMA table_info({table})").fetchall()}

    @contextmanager
    def transaction(self, table: str) -> Iterator[None]:
        """A write transaction; writers of other processes wait for it
        (SQLite's write lock, a PostgreSQL table lock that readers pass)."""
        with self.lock:
            if self.postgres:
                self.execute("BEGIN")
                self.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            else:
                self.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.execute("ROLLBACK")
                raise
            self.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self._conn.close()


def _redacted(url: str) -> str:
    """A URL without its password."""
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url

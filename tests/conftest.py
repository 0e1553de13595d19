from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from swapline.runtime.launch import ServerProcess, free_port, start_server, stop_server

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent

__all__ = ["REPO", "ServerProcess", "cli", "free_port", "start_server", "stop_server"]


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``swapline ARGS...`` in a subprocess, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "swapline.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def data() -> Path:
    return DATA


def _serving(
    name: str, factory: pytest.TempPathFactory, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    server = start_server(name, factory.mktemp(name), env)
    yield server
    with contextlib.suppress(Exception):
        stop_server(server)


@pytest.fixture(scope="module")
def detector_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _serving(
        "detector", tmp_path_factory, {"SWAPLINE_MAX_MESSAGE_BYTES": str(8 * 1024 * 1024)}
    )


@pytest.fixture(scope="module")
def aligner_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _serving("aligner", tmp_path_factory)


@pytest.fixture(scope="module")
def blender_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _serving("blender", tmp_path_factory)


POSTGRES_URL = os.environ.get(
    "SWAPLINE_TEST_POSTGRES_URL", "postgresql://swapline:swapline@127.0.0.1:5432/swapline_test"
)


@pytest.fixture
def postgres_url() -> str:
    """An empty PostgreSQL job database (``make postgres`` starts one; make
    test does)."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute("DROP TABLE IF EXISTS jobs, training_runs")
    except psycopg.OperationalError as exc:
        pytest.fail(f"no PostgreSQL at {POSTGRES_URL} (run `make postgres`): {exc}")
    return POSTGRES_URL

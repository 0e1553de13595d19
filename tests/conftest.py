from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from swapline.runtime.launch import ServerProcess, free_port, start_server, stop_server

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent

__all__ = ["REPO", "ServerProcess", "free_port", "start_server", "stop_server"]


@pytest.fixture(scope="session")
def data() -> Path:
    return DATA


@pytest.fixture(scope="module")
def detector_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        "detector",
        tmp_path_factory.mktemp("detector"),
        {"SWAPLINE_MAX_MESSAGE_BYTES": str(8 * 1024 * 1024)},
    )
    yield server
    with contextlib.suppress(Exception):
        stop_server(server)


@pytest.fixture(scope="module")
def aligner_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server("aligner", tmp_path_factory.mktemp("aligner"))
    yield server
    with contextlib.suppress(Exception):
        stop_server(server)

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="session")
def data() -> Path:
    return DATA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(
            self.address,
            options=[("grpc.max_send_message_length", 512 * 1024 * 1024)],
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    name: str, tmp: Path, env: dict[str, str] | None = None, port: int | None = None
) -> ServerProcess:
    """Starts ``swapline serve NAME`` as a subprocess and waits until its
    health check says SERVING."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port, metrics_port = port or free_port(), free_port()
    log = tmp / f"{name}-{port}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swapline.cli",
            "serve",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            str(metrics_port),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=REPO,
    )
    server = ServerProcess(name, process, port, metrics_port, log)
    deadline = time.monotonic() + 60
    with server.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{server.output()}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return server
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{name} did not become healthy:\n{server.output()}")
            time.sleep(0.2)


def stop_server(server: ServerProcess) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            return server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


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

"""Starting stage servers as subprocesses on this machine (tests, benchmarks,
the local stack) and stopping them the way Kubernetes does: SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from swapline.commands import Command, local_command
from swapline.concurrency import background_nice
from swapline.runtime.pki import LocalSecurity, shared_security

# Stages whose work can wait for the encoder's (see start_server).
FACE_WORK_SERVICES = ("detector", "aligner", "swapper", "blender")

_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range.

    Ports from the ephemeral range (what binding port 0 gives) can be taken
    by any outgoing connection (a health check, a scrape) between choosing
    the port and the server binding it; ports below it are only ever taken
    by listeners. Ports handed out earlier in this process are skipped, so
    several servers started together never get the same one.
    """
    low = _ephemeral_low()
    start, stop = max(1024, low - 12000), low
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(500):
        port = rng.randrange(start, stop)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found in {start}-{stop}")


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path
    security: LocalSecurity | None = None  # None: it serves without authentication

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def credentials(self, owner: str = "alice") -> grpc.ChannelCredentials | None:
        """What a caller presents: the service certificate to a stage, the
        token of ``owner`` to the orchestrator."""
        if self.security is None:
            return None
        if self.name == "orchestrator":
            return self.security.api_credentials(owner)
        return self.security.stage_credentials()

    def probe_credentials(self) -> grpc.ChannelCredentials | None:
        """Enough to ask its health: TLS, and the service certificate a
        stage asks for; no token."""
        if self.security is None:
            return None
        if self.name == "orchestrator":
            return grpc.ssl_channel_credentials(self.security.tls.ca.read_bytes())
        return self.security.stage_credentials()

    def channel(
        self, owner: str = "alice", credentials: grpc.ChannelCredentials | None = None
    ) -> grpc.Channel:
        """A channel to the server, calling as ``owner`` (the orchestrator)
        or with the service certificate (a stage), or with ``credentials``."""
        options = [("grpc.max_send_message_length", 512 * 1024 * 1024)]
        credentials = credentials or self.credentials(owner)
        if credentials is None:
            return grpc.insecure_channel(self.address, options=options)
        return grpc.secure_channel(self.address, credentials, options=options)

    def plain_channel(self) -> grpc.Channel:
        """A channel without any credentials."""
        return grpc.insecure_channel(self.address)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    name: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
    timeout: float = 60.0,
    metrics_port: int | None = None,
    detach: bool = False,
    security: LocalSecurity | None = None,
    command: Command = local_command,
) -> ServerProcess:
    """Starts ``swapline serve NAME`` on loopback and waits until its health
    check says SERVING. ``detach`` lets it outlive this process (``make up``);
    ``command`` runs it elsewhere (in a container).

    It serves with TLS and authentication, from ``security`` or this
    process's :func:`~swapline.runtime.pki.shared_security`, unless ``env``
    sets SWAPLINE_INSECURE."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port, metrics_port = port or free_port(), metrics_port or free_port()
    log = log_dir / f"{name}-{port}.log"
    env = dict(env or {})
    if env.get("SWAPLINE_INSECURE", "") in ("", "0"):
        security = security or shared_security()
        env = {**security.server_env(), **env}
    else:
        security = None
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    if name in FACE_WORK_SERVICES:
        # Servers started here share one machine: face work yields to the
        # encoder, as it does in embedded mode (see lower_thread_priority).
        full_env.setdefault("SWAPLINE_NICE", str(background_nice()))
    args = ["serve", name, "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        command([*args, "--metrics-port", str(metrics_port)], env),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=full_env,
        start_new_session=detach,
    )
    server = ServerProcess(name, process, port, metrics_port, log, security)
    deadline = time.monotonic() + timeout
    with server.channel(credentials=server.probe_credentials()) as channel:
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


def stop_server(server: ServerProcess, timeout: float = 30.0) -> int:
    """SIGTERM, wait for the drain, and the exit status."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            return server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode

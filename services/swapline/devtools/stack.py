"""The local stack (``make up`` / ``make down``): every service its own
process, a real Triton serving the model repository, and a real Prometheus
scraping them all with the rules the cluster uses.

The stack's processes outlive ``swapline stack up``; their ids, addresses
and logs are kept in ``STATE_DIR/stack.json`` for ``swapline stack down``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from swapline.config import DEFAULT_PORTS
from swapline.runtime.launch import free_port, start_server
from swapline.runtime.pki import LocalSecurity

RULES = Path("deploy") / "prometheus" / "rules" / "swapline.rules.yml"  # in a checkout
STAGES = ("detector", "aligner", "swapper", "blender", "encoder")


@dataclass
class StackPorts:
    """Where each part listens; ``free()`` picks unused ports (tests)."""

    grpc: dict[str, int] = field(
        default_factory=lambda: {n: grpc for n, (grpc, _) in DEFAULT_PORTS.items()}
    )
    metrics: dict[str, int] = field(
        default_factory=lambda: {n: metrics for n, (_, metrics) in DEFAULT_PORTS.items()}
    )
    triton: tuple[int, int, int] = (8001, 8000, 8002)  # gRPC, HTTP, metrics
    prometheus: int = 9090

    @classmethod
    def free(cls) -> StackPorts:
        names = (*STAGES, "orchestrator")
        return cls(
            grpc={n: free_port() for n in names},
            metrics={n: free_port() for n in names},
            triton=(free_port(), free_port(), free_port()),
            prometheus=free_port(),
        )


@dataclass
class Stack:
    state_dir: str
    orchestrator: str  # gRPC address
    prometheus: str  # http://host:port
    triton: str  # gRPC address
    pids: dict[str, int]
    logs: dict[str, str]

    def save(self) -> None:
        (Path(self.state_dir) / "stack.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: str | Path) -> Stack:
        path = Path(state_dir) / "stack.json"
        if not path.exists():
            raise FileNotFoundError(f"no stack is running from {state_dir} (no {path.name})")
        return cls(**json.loads(path.read_text()))


def rules_file(checkout: Path) -> Path:
    """The Prometheus rules the cluster uses, from a swapline checkout."""
    rules = Path(checkout).absolute() / RULES
    if not rules.is_file():
        raise FileNotFoundError(f"{checkout}: no {RULES} (is it a swapline checkout?)")
    return rules


def prometheus_config(ports: StackPorts, rules: Path) -> str:
    """Scrape every service's /metrics and Triton's, each labelled with its
    ``stage`` the way the chart's PodMonitor labels pods."""
    jobs = [
        {
            "job_name": "swapline",
            "static_configs": [
                {"targets": [f"127.0.0.1:{port}"], "labels": {"stage": name}}
                for name, port in sorted(ports.metrics.items())
            ],
        },
        {
            "job_name": "triton",
            "static_configs": [
                {"targets": [f"127.0.0.1:{ports.triton[2]}"], "labels": {"stage": "triton"}}
            ],
        },
    ]
    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(rules)],
        "scrape_configs": jobs,
    }
    return json.dumps(config, indent=2)  # JSON is YAML


def _prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError(
            "prometheus is not installed: `apt-get install prometheus` (make setup does this)"
        )
    return binary


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as reply:
            if reply.status == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def up(
    state_dir: str | Path,
    repository: str | Path,
    ports: StackPorts | None = None,
    storage_roots: list[Path] | None = None,
    model: str | None = None,
    checkout: Path | None = None,
) -> Stack:
    """Starts Triton, the five stage servers, the orchestrator (distributed)
    and Prometheus with the rules of ``checkout`` (default: the working
    directory); returns when all of them are ready."""
    from swapline.model.triton import start_triton

    rules = rules_file(checkout or Path.cwd())
    ports = ports or StackPorts()
    state = Path(state_dir).absolute()
    state.mkdir(parents=True, exist_ok=True)
    repository = Path(repository).absolute()
    roots = storage_roots or [Path.cwd(), state]
    # TLS between the services and tokens on the orchestrator, as on a
    # cluster: a private CA and a token per user under the state folder.
    security = LocalSecurity.create(state / "pki")
    pids: dict[str, int] = {}
    logs: dict[str, str] = {}
    stack = Stack(str(state), "", f"http://127.0.0.1:{ports.prometheus}", "", pids, logs)
    try:
        triton, triton_url = start_triton(
            repository, state / "triton.log", *ports.triton, model=model, detach=True
        )
        pids["triton"], logs["triton"], stack.triton = (
            triton.pid,
            str(state / "triton.log"),
            triton_url,
        )
        env = {
            "SWAPLINE_MODEL_REPOSITORY": str(repository),
            "SWAPLINE_TRITON_URL": triton_url,
            "SWAPLINE_WORK_DIR": str(state / "jobs"),
            "SWAPLINE_STORAGE_ROOTS": os.pathsep.join(str(Path(r).absolute()) for r in roots),
        }
        for name in STAGES:
            server = start_server(
                name,
                state,
                env,
                ports.grpc[name],
                metrics_port=ports.metrics[name],
                detach=True,
                security=security,
            )
            pids[name], logs[name] = server.process.pid, str(server.log)
        addresses = {f"SWAPLINE_{n.upper()}_ADDR": f"127.0.0.1:{ports.grpc[n]}" for n in STAGES}
        orchestrator = start_server(
            "orchestrator",
            state,
            {**env, **addresses},
            ports.grpc["orchestrator"],
            metrics_port=ports.metrics["orchestrator"],
            detach=True,
            security=security,
        )
        pids["orchestrator"], logs["orchestrator"] = orchestrator.process.pid, str(orchestrator.log)
        stack.orchestrator = orchestrator.address

        config = state / "prometheus.yml"
        config.write_text(prometheus_config(ports, rules))
        log = state / "prometheus.log"
        prometheus = subprocess.Popen(
            [
                _prometheus_binary(),
                f"--config.file={config}",
                f"--storage.tsdb.path={state / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{ports.prometheus}",
                "--web.enable-lifecycle",
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pids["prometheus"], logs["prometheus"] = prometheus.pid, str(log)
        _wait_http(f"{stack.prometheus}/-/ready", prometheus, log, 60)
    except BaseException:
        _terminate(pids)
        raise
    stack.save()
    return stack


def _terminate(pids: dict[str, int], timeout: float = 30.0) -> None:
    """SIGTERM in reverse start order (the orchestrator drains before its
    stages go), then SIGKILL whatever is left."""
    for name in reversed(list(pids)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pids[name], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pids[name]) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pids[name], signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:  # not our child (``make down``): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return ""


def down(state_dir: str | Path) -> Stack:
    stack = Stack.load(state_dir)
    _terminate(stack.pids)
    (Path(state_dir) / "stack.json").unlink(missing_ok=True)
    return stack


@contextlib.contextmanager
def running(
    state_dir: Path,
    repository: Path,
    storage_roots: list[Path] | None = None,
    model: str | None = None,
    checkout: Path | None = None,
) -> Iterator[Stack]:
    """The stack on free ports for the length of a block (tests)."""
    stack = up(state_dir, repository, StackPorts.free(), storage_roots, model, checkout)
    try:
        yield stack
    finally:
        down(state_dir)

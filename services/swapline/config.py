"""Typed configuration of each process role, read from ``SWAPLINE_*``
environment variables once, when the process starts, and validated there:
a bad value is a one-line :class:`ConfigError`, never a traceback.

* :class:`ServerConfig`: every ``swapline serve`` process (a stage server
  or the orchestrator), optionally per service (``SWAPLINE_<SERVICE>_<NAME>``
  before ``SWAPLINE_<NAME>``);
* :class:`OrchestratorConfig`: the orchestrator's jobs, storage, training
  and, in distributed mode, its stages (:class:`RemoteStagesConfig`);
* :class:`ClientConfig`: a command-line process that runs the stages in
  itself (``swapline swap``, ``swapline eval``) or calls an orchestrator.

Libraries read no environment: they take these values as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from swapline.errors import InvalidInputError
from swapline.protocol.security import TlsFiles, api_credentials

T = TypeVar("T")

DEFAULT_PORTS: dict[str, tuple[int, int]] = {
    # service: (gRPC port, metrics port)
    "orchestrator": (50050, 9150),
    "detector": (50051, 9151),
    "aligner": (50052, 9152),
    "swapper": (50053, 9153),
    "blender": (50054, 9154),
    "encoder": (50055, 9155),
}
STAGE_SERVICES = ("detector", "aligner", "swapper", "blender", "encoder")
PIXEL_ENCODINGS = ("raw", "png")
# Face work runs below the encoder's priority by this much (see
# swapline.concurrency.lower_thread_priority).
DEFAULT_BACKGROUND_NICE = 10
ORCHESTRATOR_MAX_CALLS = 1024


class ConfigError(InvalidInputError):
    """A configuration value is missing, malformed or out of range."""


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_PARSERS: dict[type, Callable[[str], Any]] = {str: str, int: int, float: float, bool: _flag}
_KIND_NAMES = {str: "text", int: "whole number", float: "number", bool: "flag (1 or 0)"}


class _Env:
    """Typed reads of ``SWAPLINE_*`` variables: a value that does not parse
    names the variable and what it should be."""

    def __init__(self, env: Mapping[str, str] | None, scope: str = "") -> None:
        self.env = dict(os.environ if env is None else env)
        self.scope = scope.upper()

    def raw(self, name: str) -> tuple[str, str] | None:
        """The variable's name and value, the scoped name first; unset or
        empty counts as absent."""
        names = ([f"SWAPLINE_{self.scope}_{name}"] if self.scope else []) + [f"SWAPLINE_{name}"]
        for variable in names:
            value = self.env.get(variable, "")
            if value != "":
                return variable, value
        return None

    def get(self, name: str, kind: type[T], default: T) -> T:
        found = self.raw(name)
        if found is None:
            return default
        variable, value = found
        try:
            return _PARSERS[kind](value)
        except ValueError:
            raise ConfigError(f"{variable}={value!r} is not a valid {_KIND_NAMES[kind]}") from None


def _at_least(value: float, least: float, what: str) -> None:
    if value < least:
        raise ConfigError(f"{what} must be at least {least}, got {value}")


@dataclass(frozen=True)
class ServerConfig:
    service: str
    host: str = "[::]"
    port: int = 50051
    metrics_port: int = 9151
    # Requests larger than this are refused with INVALID_ARGUMENT; the
    # transport refuses anything over twice this with RESOURCE_EXHAUSTED
    # before the application sees it.
    max_message_bytes: int = 64 * 1024 * 1024
    max_batch: int = 256  # frames or faces per request
    max_frame_pixels: int = 36_000_000  # per image, from its declared size
    max_request_pixels: int = 128_000_000  # all images of one request together
    workers: int = 2  # threads doing stage work
    # Open user calls (health and reflection are not counted); the
    # orchestrator's default is ORCHESTRATOR_MAX_CALLS (WatchJob streams).
    max_concurrent_rpcs: int = 64
    drain_seconds: float = 30.0  # grace for in-flight calls on SIGTERM
    shutdown_delay: float = 0.0  # NOT_SERVING this long before draining
    max_connection_age: float = 300.0  # so clients re-resolve and spread load
    # Swapper: where models live and who runs them (empty = in-process ONNX Runtime).
    model_repository: str = "models/repository"
    triton_url: str = ""
    coalesce_ms: float = 2.0  # how long to wait for more faces before a batch runs
    # In-process ONNX Runtime without a GPU: a model's int8 variant where it has one.
    cpu_int8: bool = True
    # Encoder and orchestrator: the only folders file:// URIs may point to
    # (os.pathsep-separated; the working directory when unset).
    storage_roots: str = ""
    # Added to the process's niceness at start: face-work servers sharing a
    # machine with the encoder run below it (see runtime.launch).
    nice: int = 0
    # Where the Prometheus endpoint listens; empty: the gRPC host.
    metrics_host: str = ""
    # A plaintext port serving only gRPC health (Kubernetes probes cannot
    # speak TLS); 0: none.
    health_port: int = 0
    # Security (see swapline.runtime.security): this server's certificate,
    # its key and the CA of its peers (PEM files). Stage servers accept only
    # clients with a certificate from that CA; the orchestrator presents its
    # certificate to them and checks its own callers' bearer tokens against
    # ``api_tokens``. ``insecure`` serves plaintext without authentication.
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    api_tokens: str = ""
    insecure: bool = False

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> ServerConfig:
        if service not in DEFAULT_PORTS:
            raise ConfigError(f"unknown service {service!r} ({', '.join(DEFAULT_PORTS)})")
        read = _Env(env, service)
        port, metrics_port = DEFAULT_PORTS[service]
        values: dict[str, Any] = {"service": service, "port": port, "metrics_port": metrics_port}
        types = {"str": str, "int": int, "float": float, "bool": bool}
        defaults: dict[str, Any] = (
            {"max_concurrent_rpcs": ORCHESTRATOR_MAX_CALLS} if service == "orchestrator" else {}
        )
        for field in fields(cls):
            if field.name in values:
                continue
            kind = types[str(field.type)]
            default = defaults.get(field.name, field.default)
            values[field.name] = read.get(field.name.upper(), kind, default)
        for name in ("PORT", "METRICS_PORT"):
            if read.raw(name) is not None:
                values[name.lower()] = read.get(name, int, 0)
        values["storage_roots"] = values["storage_roots"] or os.getcwd()
        config = cls(**values)
        config.validate()
        return config

    @property
    def tls(self) -> TlsFiles | None:
        """The TLS files, unless insecure."""
        if self.insecure:
            return None
        return TlsFiles(Path(self.tls_cert), Path(self.tls_key), Path(self.tls_ca))

    def validate(self) -> None:
        for name in ("max_message_bytes", "max_batch", "max_frame_pixels", "workers"):
            _at_least(getattr(self, name), 1, name)
        _at_least(self.max_concurrent_rpcs, 1, "max_concurrent_rpcs")
        for name in ("drain_seconds", "shutdown_delay", "coalesce_ms", "port", "metrics_port"):
            _at_least(getattr(self, name), 0, name)
        if not self.insecure:
            missing = [
                f"SWAPLINE_{n.upper()}"
                for n in ("tls_cert", "tls_key", "tls_ca")
                if not getattr(self, n)
            ]
            if self.service == "orchestrator" and not self.api_tokens:
                missing.append("SWAPLINE_API_TOKENS")
            if missing:
                raise ConfigError(
                    f"{self.service}: {', '.join(missing)} not set: give the TLS files "
                    "(and the orchestrator's token file), or set SWAPLINE_INSECURE=1 to serve "
                    "without authentication"
                )

    @property
    def metrics_address(self) -> str:
        """The metrics endpoint's listening address, as an HTTP server takes
        it; every interface is IPv4's (a pod without IPv6 cannot bind ::)."""
        host = (self.metrics_host or self.host).strip("[]")
        return "0.0.0.0" if host in ("", "::") else host

    def with_overrides(self, **overrides: Any) -> ServerConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def transport_limit(self) -> int:
        return 2 * self.max_message_bytes

    def grpc_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.max_receive_message_length", self.transport_limit),
            ("grpc.max_send_message_length", self.transport_limit),
            ("grpc.max_connection_age_ms", int(self.max_connection_age * 1000)),
            ("grpc.max_connection_age_grace_ms", int(self.drain_seconds * 1000)),
            ("grpc.so_reuseport", 0),
        ]


@dataclass(frozen=True)
class StageAddresses:
    detector: str
    aligner: str
    swapper: str
    blender: str
    encoder: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StageAddresses | None:
        """Every ``SWAPLINE_<STAGE>_ADDR``, or None when none is set."""
        read = _Env(env)
        values = {name: read.get(f"{name.upper()}_ADDR", str, "") for name in STAGE_SERVICES}
        if not any(values.values()):
            return None
        missing = [f"SWAPLINE_{n.upper()}_ADDR" for n, v in values.items() if not v]
        if missing:
            raise ConfigError(f"distributed mode needs every stage address; missing {missing}")
        return cls(**values)


@dataclass(frozen=True)
class RemoteStagesConfig:
    """The orchestrator as a client of the stage servers."""

    addresses: StageAddresses
    # Pixels that reach the output: raw (default), or PNG where bandwidth is
    # scarcer than CPU.
    pixel_encoding: str = "raw"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RemoteStagesConfig | None:
        """None unless the stage addresses are set (embedded mode)."""
        addresses = StageAddresses.from_env(env)
        if addresses is None:
            return None
        config = cls(addresses, _Env(env).get("PIXEL_ENCODING", str, "raw"))
        check_pixel_encoding(config.pixel_encoding, "SWAPLINE_PIXEL_ENCODING")
        return config


def check_pixel_encoding(name: str, what: str = "pixel_encoding") -> None:
    if name not in PIXEL_ENCODINGS:
        raise ConfigError(f"{what} must be raw or png, got {name!r}")


@dataclass(frozen=True)
class OrchestratorConfig:
    work_dir: Path
    # A SQLite file, or a postgresql:// URL (several orchestrator replicas).
    jobs_db: str
    job_concurrency: int = 1
    # Jobs queued or running at once, beyond which SubmitJob is refused.
    max_queued_jobs: int = 100
    # Of which one owner (one token) may have at once.
    max_jobs_per_owner: int = 20
    max_upload_bytes: int = 8 * 1024**3
    # SubmitJob is refused while the work folder's disk has less free.
    min_free_bytes: int = 2 * 1024**3
    # A finished job's files (input and result) are removed this long after
    # it ended; the record stays.
    retention_seconds: float = 7 * 24 * 3600.0
    # How long a job stays an orchestrator's without a heartbeat (its
    # leases are renewed every third of this).
    lease_seconds: float = 15.0
    # Training runs: Kubernetes Jobs from this template when set (the chart
    # mounts it), threads of this process otherwise.
    training_job_template: str = ""
    namespace: str = "default"
    stages: RemoteStagesConfig | None = None  # None: the stages run in this process

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OrchestratorConfig:
        read = _Env(env)
        work_dir = Path(read.get("WORK_DIR", str, "out/jobs")).absolute()
        config = cls(
            work_dir=work_dir,
            jobs_db=read.get("JOBS_DB", str, str(work_dir / "jobs.sqlite3")),
            job_concurrency=read.get("JOB_CONCURRENCY", int, 1),
            max_queued_jobs=read.get("MAX_QUEUED_JOBS", int, 100),
            max_jobs_per_owner=read.get("MAX_JOBS_PER_OWNER", int, 20),
            max_upload_bytes=read.get("MAX_UPLOAD_BYTES", int, 8 * 1024**3),
            min_free_bytes=read.get("MIN_FREE_BYTES", int, 2 * 1024**3),
            retention_seconds=read.get("RETENTION_SECONDS", float, 7 * 24 * 3600.0),
            lease_seconds=read.get("LEASE_SECONDS", float, 15.0),
            training_job_template=read.get("TRAINING_JOB_TEMPLATE", str, ""),
            namespace=read.get("NAMESPACE", str, "default"),
            stages=RemoteStagesConfig.from_env(env),
        )
        _at_least(config.job_concurrency, 1, "SWAPLINE_JOB_CONCURRENCY")
        _at_least(config.max_queued_jobs, 1, "SWAPLINE_MAX_QUEUED_JOBS")
        _at_least(config.max_jobs_per_owner, 1, "SWAPLINE_MAX_JOBS_PER_OWNER")
        _at_least(config.max_upload_bytes, 1, "SWAPLINE_MAX_UPLOAD_BYTES")
        _at_least(config.min_free_bytes, 0, "SWAPLINE_MIN_FREE_BYTES")
        _at_least(config.retention_seconds, 1, "SWAPLINE_RETENTION_SECONDS")
        _at_least(config.lease_seconds, 1, "SWAPLINE_LEASE_SECONDS")
        return config


@dataclass(frozen=True)
class ClientConfig:
    """A command-line process: embedded runs and calls to an orchestrator."""

    cpu_int8: bool = True
    background_nice: int = DEFAULT_BACKGROUND_NICE
    # Calling an orchestrator: a bearer token (or a file holding it), the CA
    # that signed its certificate (the system's roots when empty), or
    # plaintext without a token when ``insecure``.
    token: str = ""
    tls_ca: str = ""
    insecure: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientConfig:
        read = _Env(env)
        token = read.get("TOKEN", str, "")
        token_file = read.get("TOKEN_FILE", str, "")
        if token_file and not token:
            try:
                token = Path(token_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"SWAPLINE_TOKEN_FILE: {exc}") from None
        config = cls(
            cpu_int8=read.get("CPU_INT8", bool, True),
            background_nice=read.get("BACKGROUND_NICE", int, DEFAULT_BACKGROUND_NICE),
            token=token,
            tls_ca=read.get("TLS_CA", str, ""),
            insecure=read.get("INSECURE", bool, False),
        )
        if not 0 <= config.background_nice <= 19:
            raise ConfigError(
                f"SWAPLINE_BACKGROUND_NICE must be in 0..19, got {config.background_nice}"
            )
        return config

    def api_credentials(self) -> Any:
        """Credentials for calls to an orchestrator (grpc.ChannelCredentials),
        None when insecure."""
        if self.insecure:
            return None
        if not self.token:
            raise ConfigError(
                "no token for the orchestrator: set SWAPLINE_TOKEN or SWAPLINE_TOKEN_FILE "
                "(or SWAPLINE_INSECURE=1 for one that serves without authentication)"
            )
        return api_credentials(Path(self.tls_ca) if self.tls_ca else None, self.token)

"""Server configuration from flags and ``SWAPLINE_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_PORTS: dict[str, tuple[int, int]] = {
    # service: (gRPC port, metrics port)
    "orchestrator": (50050, 9150),
    "detector": (50051, 9151),
    "aligner": (50052, 9152),
    "swapper": (50053, 9153),
    "blender": (50054, 9154),
    "encoder": (50055, 9155),
}


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
    max_concurrent_rpcs: int = 64
    drain_seconds: float = 30.0  # grace for in-flight calls on SIGTERM
    shutdown_delay: float = 0.0  # NOT_SERVING this long before draining
    max_connection_age: float = 300.0  # so clients re-resolve and spread load
    # Swapper: where models live and who runs them (empty = in-process ONNX Runtime).
    model_repository: str = "models/repository"
    triton_url: str = ""
    coalesce_ms: float = 2.0  # how long to wait for more faces before a batch runs
    # Added to the process's niceness at start: face-work servers sharing a
    # machine with the encoder run below it (see runtime.launch).
    nice: int = 0

    @classmethod
    def from_env(cls, service: str, env: dict[str, str] | None = None) -> ServerConfig:
        env = dict(os.environ if env is None else env)
        port, metrics_port = DEFAULT_PORTS.get(service, (50051, 9151))
        values: dict[str, Any] = {"service": service, "port": port, "metrics_port": metrics_port}
        fields = {
            "HOST": ("host", str),
            "PORT": ("port", int),
            "METRICS_PORT": ("metrics_port", int),
            "MAX_MESSAGE_BYTES": ("max_message_bytes", int),
            "MAX_BATCH": ("max_batch", int),
            "MAX_FRAME_PIXELS": ("max_frame_pixels", int),
            "MAX_REQUEST_PIXELS": ("max_request_pixels", int),
            "WORKERS": ("workers", int),
            "MAX_CONCURRENT_RPCS": ("max_concurrent_rpcs", int),
            "DRAIN_SECONDS": ("drain_seconds", float),
            "SHUTDOWN_DELAY": ("shutdown_delay", float),
            "MAX_CONNECTION_AGE": ("max_connection_age", float),
            "MODEL_REPOSITORY": ("model_repository", str),
            "TRITON_URL": ("triton_url", str),
            "COALESCE_MS": ("coalesce_ms", float),
            "NICE": ("nice", int),
        }
        for suffix, (name, kind) in fields.items():
            raw = env.get(f"SWAPLINE_{service.upper()}_{suffix}", env.get(f"SWAPLINE_{suffix}"))
            if raw is not None and raw != "":
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise ValueError(
                        f"SWAPLINE_{suffix}={raw!r} is not a valid {kind.__name__}"
                    ) from None
        return cls(**values)

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

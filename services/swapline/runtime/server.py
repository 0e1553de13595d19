"""Server bootstrap: one asyncio gRPC server per process with health,
reflection, Prometheus metrics, the stage interceptor and graceful shutdown.

SIGTERM (or SIGINT) sets every health status to NOT_SERVING, waits
``shutdown_delay`` so load balancers stop sending, then stops accepting calls
and gives in-flight calls up to ``drain_seconds`` to finish before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import importlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Sized
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from swapline.concurrency import on_every_thread
from swapline.config import DEFAULT_PORTS, ServerConfig
from swapline.errors import InvalidInputError
from swapline.protocol.security import TokenTable
from swapline.runtime import metrics
from swapline.runtime.interceptors import StageInterceptor

log = logging.getLogger(__name__)

T = TypeVar("T")


class StageWorkers:
    """The thread pool that runs a stage's CPU work off the event loop, with
    queue-depth and busy-worker gauges."""

    def __init__(self, service: str, workers: int) -> None:
        self.service = service
        self.threads = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=service)
        self._queued = metrics.STAGE_QUEUE_DEPTH.labels(service)
        self._busy = metrics.STAGE_BUSY_WORKERS.labels(service)
        self._seconds = metrics.STAGE_SECONDS.labels(service)

    def warm(self, work: Callable[[], None]) -> None:
        """Runs ``work`` on every worker thread before serving (model loading)."""
        on_every_thread(self._executor, self.threads, work)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        self._queued.inc()
        queued = True

        def task() -> T:
            nonlocal queued
            self._queued.dec()
            queued = False
            self._busy.inc()
            start = time.perf_counter()
            try:
                return work(*args)
            finally:
                self._seconds.observe(time.perf_counter() - start)
                self._busy.dec()

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, task)
        finally:
            if queued:  # cancelled before a worker picked it up
                self._queued.dec()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class ServiceBinding:
    """What a service module hands the runtime: its fully qualified gRPC
    service name and a function that registers its servicer."""

    name: str
    register: Callable[[grpc.aio.Server], None]
    close: Callable[[], None] = lambda: None
    # Called (on a thread) when shutdown starts, with the grace period: the
    # orchestrator finishes or hands back its jobs meanwhile.
    drain: Callable[[float], None] = lambda grace: None


ServiceFactory = Callable[[ServerConfig, StageWorkers], ServiceBinding]


def _factory(service: str) -> ServiceFactory:
    """The binding function of a service module (imported on demand, so a
    detector process never loads the swapper's dependencies)."""
    if service not in DEFAULT_PORTS:
        raise ValueError(f"unknown service {service!r}")
    module = importlib.import_module(f"swapline.servers.{service}")
    return cast(ServiceFactory, module.binding)


class StageServer:
    """A started server; ``port`` is the bound gRPC port (useful with port 0)."""

    def __init__(self, config: ServerConfig, factory: ServiceFactory | None = None) -> None:
        self.config = config
        self.workers = StageWorkers(config.service, config.workers)
        self.binding = (factory or _factory(config.service))(config, self.workers)
        tls = config.tls
        # The orchestrator checks its callers' tokens; stage servers let the
        # TLS handshake check the caller's certificate.
        tokens = None
        if tls is not None and config.service == "orchestrator":
            tokens = TokenTable.from_file(config.api_tokens)
        self.server = grpc.aio.server(
            # The interceptor limits open calls, not gRPC: its limit would
            # refuse health checks too once user calls fill it.
            interceptors=[
                StageInterceptor(
                    config.service, config.max_message_bytes, config.max_concurrent_rpcs, tokens
                )
            ],
            options=config.grpc_options(),
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.binding.register(self.server)
        reflection.enable_server_reflection(
            [self.binding.name, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        address = f"{config.host}:{config.port}"
        if tls is None:
            log.warning(
                "%s serves WITHOUT TLS OR AUTHENTICATION (SWAPLINE_INSECURE=1): anyone who "
                "reaches %s can call it",
                config.service,
                address,
            )
            self.port = self.server.add_insecure_port(address)
        else:
            credentials = tls.server_credentials(require_client_cert=tokens is None)
            self.port = self.server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"cannot bind {address}")
        # Kubernetes' gRPC probes speak plaintext: health alone answers them
        # on a port of its own, which serves nothing else.
        self.health_server: grpc.aio.Server | None = None
        if config.health_port:
            self.health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            if not self.health_server.add_insecure_port(f"{config.host}:{config.health_port}"):
                raise OSError(f"cannot bind {config.host}:{config.health_port}")
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        for name in ("", self.binding.name):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        """NOT_SERVING, wait, drain in-flight calls, release the workers."""
        await self.health.enter_graceful_shutdown()
        drained = asyncio.ensure_future(
            asyncio.to_thread(self.binding.drain, self.config.drain_seconds)
        )
        if self.config.shutdown_delay > 0:
            await asyncio.sleep(self.config.shutdown_delay)
        await drained
        await self.server.stop(self.config.drain_seconds)
        if self.health_server is not None:
            await self.health_server.stop(0)
        self.workers.shutdown()
        self.binding.close()
        self._stopped.set()

    async def wait(self) -> None:
        await self._stopped.wait()


async def serve(config: ServerConfig, ready: Callable[[StageServer], None] | None = None) -> None:
    """Runs a stage server until SIGTERM or SIGINT, then drains and returns."""
    server = StageServer(config)
    await server.start()
    log.info(
        "%s serving on %s:%d, metrics on %s:%d",
        config.service,
        config.host,
        server.port,
        config.metrics_address,
        config.metrics_port,
    )
    if ready is not None:
        ready(server)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await stop_requested.wait()
    log.info("%s shutting down: draining in-flight calls", config.service)
    await server.stop()
    log.info("%s stopped", config.service)


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Lets glibc reuse freed message-sized buffers instead of returning
    them to the kernel and faulting fresh zeroed pages in for the next
    request: a server allocates and frees several hundred kilobytes per face
    (measured: the blender's CPU per frame 1.9 -> 1.4 ms). Memory stays at
    the working set's peak. False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # Both together: a trim threshold alone fixes the mmap threshold at its
    # 128 KiB default, and every large buffer becomes a fresh mapping.
    return bool(
        mallopt(_M_MMAP_THRESHOLD, mmap_threshold) and mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )


def run_server(config: ServerConfig) -> None:
    """Entry point of ``swapline serve``: metrics endpoint plus gRPC server."""
    faulthandler.enable()  # a crash in native code leaves its stack in the log
    keep_freed_memory()
    if config.nice > 0:
        with contextlib.suppress(OSError):
            os.nice(config.nice)
    if config.metrics_port:
        start_http_server(config.metrics_port, addr=config.metrics_address)
    asyncio.run(serve(config))


def require_pixel_budget(images: Iterable[Any], config: ServerConfig) -> None:
    """Refuses a request whose images together declare more pixels than
    ``max_request_pixels``, before any of them is decoded."""
    total = sum(int(image.width) * int(image.height) for image in images)
    if total > config.max_request_pixels:
        raise InvalidInputError(
            f"request declares {total} pixels, over the limit of {config.max_request_pixels}"
        )


def require_batch(items: Sized, config: ServerConfig, what: str) -> int:
    """The number of items in a request batch; empty or oversized batches are
    INVALID_ARGUMENT."""
    count = len(items)
    if count == 0:
        raise InvalidInputError(f"empty batch: the request has no {what}")
    if count > config.max_batch:
        raise InvalidInputError(f"batch of {count} {what} exceeds the limit of {config.max_batch}")
    return count

"""``swapline triton``: serves a model repository through a real NVIDIA Triton
Inference Server on this machine (the one bundled with nvidia-pytriton).

NVIDIA's tritonserver image serves the same repository in a cluster with its
ONNX Runtime backend; here the bundled server's Python backend hands each
batch to ONNX Runtime in this process. Model names, tensor names, shapes,
types and dynamic batching are the same, so clients cannot tell the two
apart. New entries that appear in the repository are loaded while serving.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from swapline.commands import Command, local_command
from swapline.stages.model_contract import (
    INPUT,
    OUTPUTS,
    face_shape,
    mask_shape,
    output_names,
    preferred_batches,
)
from swapline.stages.swap import ModelEntry, ModelRepository, OnnxEngine

log = logging.getLogger(__name__)


def ensure_libpython_on_library_path() -> None:
    """The Python backend's stub links libpython3.11 dynamically; with an
    interpreter outside the system paths (pyenv) the model fails to load
    unless the interpreter's LIBDIR is on LD_LIBRARY_PATH. The Triton server
    process inherits this environment."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if not libdir:
        return
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir not in current.split(":"):
        os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir


def _infer_function(engine: OnnxEngine, entry: ModelEntry) -> Callable[..., dict[str, np.ndarray]]:
    from pytriton.decorators import batch

    names = output_names(entry.has_occlusion)

    @batch  # type: ignore[untyped-decorator]
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, engine.run(entry, inputs[INPUT], names), strict=True))

    return infer


class RepositoryServer:
    def __init__(
        self,
        repository: str | Path,
        grpc_port: int = 8001,
        http_port: int = 8000,
        metrics_port: int = 8002,
        poll_seconds: float = 1.0,
        cpu_int8: bool = True,
    ) -> None:
        ensure_libpython_on_library_path()
        from pytriton.triton import Triton, TritonConfig

        self.repository = ModelRepository(repository)
        self.engine = OnnxEngine(self.repository, cpu_int8=cpu_int8)
        self.poll_seconds = poll_seconds
        self.loaded: dict[str, float] = {}
        self._stop = threading.Event()
        self.triton = Triton(
            config=TritonConfig(
                grpc_port=grpc_port,
                http_port=http_port,
                metrics_port=metrics_port,
                log_verbose=0,
                exit_on_error=True,
            )
        )

    def _bind(self, entry: ModelEntry) -> None:
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

        res = entry.resolution
        self.engine.load(entry.name)
        preferred = preferred_batches(entry.max_batch)
        self.triton.bind(
            model_name=entry.name,
            infer_func=_infer_function(self.engine, entry),
            inputs=[Tensor(name=INPUT, dtype=np.uint8, shape=face_shape(res))],
            outputs=[
                Tensor(name=OUTPUTS[0], dtype=np.uint8, shape=face_shape(res)),
                *(
                    Tensor(name=name, dtype=np.uint8, shape=mask_shape(res))
                    for name in output_names(entry.has_occlusion)[1:]
                ),
            ],
            config=ModelConfig(
                max_batch_size=entry.max_batch,
                batcher=DynamicBatcher(
                    preferred_batch_size=preferred, max_queue_delay_microseconds=2000
                ),
            ),
            strict=True,
        )
        self.loaded[entry.name] = entry.onnx_path.stat().st_mtime
        log.info("loaded model %s (%dx%d)", entry.name, res, res)

    def scan(self) -> list[str]:
        """Binds repository entries not served yet; returns their names."""
        new = []
        for name in self.repository.names():
            if name in self.loaded:
                continue
            try:
                self._bind(self.repository.get(name))
                new.append(name)
            except Exception:
                log.exception("cannot load model %s", name)
                self.loaded[name] = -1.0  # do not retry a broken entry every poll
        return new

    def serve(self) -> None:
        self.scan()
        self.triton.run()
        log.info("Triton serving %s: %s", self.repository.path, sorted(self.loaded))
        try:
            while not self._stop.wait(self.poll_seconds):
                self.scan()
        finally:
            self.triton.stop()

    def stop(self) -> None:
        self._stop.set()


def run(
    repository: str, grpc_port: int, http_port: int, metrics_port: int, cpu_int8: bool = True
) -> None:
    server = RepositoryServer(repository, grpc_port, http_port, metrics_port, cpu_int8=cpu_int8)

    def stop(signum: int, frame: Any) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve()


def start_triton(
    repository: str | Path,
    log: Path,
    grpc_port: int,
    http_port: int,
    metrics_port: int,
    model: str | None = None,
    timeout: float = 180.0,
    detach: bool = False,
    command: Command = local_command,
) -> tuple[subprocess.Popen[bytes], str]:
    """Starts ``swapline triton`` as a subprocess (or as ``command`` runs it:
    in a container) and waits until the server (and ``model``, if named) is
    ready; the process and its gRPC address."""
    import tritonclient.grpc as triton_grpc

    args = ["triton", "--repository", str(repository), "--grpc-port", str(grpc_port)]
    process = subprocess.Popen(
        command([*args, "--http-port", str(http_port), "--metrics-port", str(metrics_port)], {}),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=detach,
    )
    url = f"127.0.0.1:{grpc_port}"
    client = triton_grpc.InferenceServerClient(url)

    def ready() -> bool:
        try:
            return bool(
                client.is_server_ready() and (model is None or client.is_model_ready(model))
            )
        except Exception:
            return False

    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                raise RuntimeError(f"Triton did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    finally:
        client.close()
    return process, url


def stop_process(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def launched(
    repository: str | Path,
    log: Path,
    grpc_port: int,
    http_port: int,
    metrics_port: int,
    model: str | None = None,
    timeout: float = 180.0,
) -> Iterator[str]:
    """Runs ``swapline triton`` as a subprocess until the block ends; yields
    its gRPC address once the server (and ``model``, if named) is ready."""
    process, url = start_triton(repository, log, grpc_port, http_port, metrics_port, model, timeout)
    try:
        yield url
    finally:
        stop_process(process)

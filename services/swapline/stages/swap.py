"""The swap stage: a model repository and two engines that run its models,
in-process ONNX Runtime (embedded) or NVIDIA Triton over gRPC.

Both take and return uint8 NHWC BGR batches: ``faces`` [N, R, R, 3] in,
``swapped`` [N, R, R, 3] and one of the model's masks [N, R, R, 1] out
(see :func:`swapline.stages.model_contract.mask_output`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from swapline.errors import InvalidInputError, NotFoundError, PermissionDeniedError, SwaplineError
from swapline.stages.model_contract import INPUT, METADATA, OUTPUTS, consent_problem, mask_output

# ONNX Runtime providers in order of preference; the CPU one is always there.
PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    metadata: dict[str, Any]

    @property
    def resolution(self) -> int:
        return int(self.metadata["resolution"])

    @property
    def face_type(self) -> str:
        """What its crops cover; a model that names none was trained on
        whole faces."""
        return str(self.metadata.get("face_type", "whole"))

    @property
    def onnx_path(self) -> Path:
        return self.path / "1" / "model.onnx"

    @property
    def cpu_int8_path(self) -> Path | None:
        """The int8 variant for CPUs (see :mod:`swapline.model.quantize`), if any."""
        variant = self.metadata.get("cpu_int8")
        if not variant:
            return None
        path = self.path / "1" / str(variant["file"])
        return path if path.is_file() else None

    @property
    def has_occlusion(self) -> bool:
        """Whether the model carries an occlusion segmenter (region and
        visible-face outputs)."""
        return "occlusion" in self.metadata

    def outputs(self, mask: str) -> list[str]:
        """The swapped face and the output answering for ``mask``."""
        return [OUTPUTS[0], mask_output(mask, self.has_occlusion)]

    @property
    def max_batch(self) -> int:
        return int(self.metadata.get("max_batch_size", 256))


class ModelRepository:
    """A Triton model repository folder with swapline metadata per entry."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(
            p.name
            for p in self.path.iterdir()
            if (p / METADATA).is_file() and (p / "1" / "model.onnx").is_file()
        )

    def get(self, name: str) -> ModelEntry:
        """The model, refused unless it records whose faces it draws and
        their consent (a model copied in by hand is checked too)."""
        entry = self.path / name
        if "/" in name or name.startswith(".") or not (entry / METADATA).is_file():
            raise NotFoundError(f"unknown model {name!r}")
        metadata = json.loads((entry / METADATA).read_text())
        problem = consent_problem(metadata.get("identities"))
        if problem is not None:
            raise PermissionDeniedError(
                f"model {name!r} is refused: {problem} ({METADATA} must record each "
                "identity's consent reference)"
            )
        return ModelEntry(name, entry, metadata)

    def entries(self) -> list[ModelEntry]:
        return [self.get(name) for name in self.names()]


def check_faces(faces: np.ndarray, entry: ModelEntry) -> None:
    res = entry.resolution
    if faces.dtype != np.uint8:
        raise InvalidInputError(f"model {entry.name} takes uint8 faces, got {faces.dtype}")
    if faces.ndim != 4 or faces.shape[1:] != (res, res, 3):
        raise InvalidInputError(
            f"model {entry.name} takes faces of {res}x{res}x3, got {tuple(faces.shape[1:])}"
        )
    if len(faces) == 0:
        raise InvalidInputError("empty batch: no faces")


class SwapEngine(Protocol):
    repository: ModelRepository

    def infer(
        self, model: str, faces: np.ndarray, mask: str = OUTPUTS[1]
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def load(self, model: str) -> ModelEntry: ...

    def ready(self, model: str) -> bool: ...


class OnnxEngine:
    """Runs repository models in this process with ONNX Runtime.

    Without a GPU it runs an entry's int8 variant where there is one
    (``cpu_int8`` False keeps the float model).
    """

    def __init__(
        self, repository: ModelRepository, threads: int = 0, cpu_int8: bool = True
    ) -> None:
        self.repository = repository
        self.threads = threads
        self.cpu_int8 = cpu_int8
        self._providers: list[str] | None = None
        self._sessions: dict[str, tuple[tuple[Path, float], Any]] = {}
        self._lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        """The execution providers sessions use, in order of preference."""
        if self._providers is None:
            import onnxruntime as ort

            available = ort.get_available_providers()
            self._providers = [p for p in PROVIDERS if p in available]
        return self._providers

    def model_path(self, entry: ModelEntry) -> Path:
        """The ONNX file this engine runs for ``entry``."""
        on_gpu = PROVIDERS[0] in self.providers
        variant = entry.cpu_int8_path if self.cpu_int8 and not on_gpu else None
        return variant or entry.onnx_path

    def _session(self, entry: ModelEntry) -> Any:
        import onnxruntime as ort

        path = self.model_path(entry)
        key = (path, path.stat().st_mtime)
        with self._lock:
            cached = self._sessions.get(entry.name)
            if cached is None or cached[0] != key:
                options = ort.SessionOptions()
                if self.threads:
                    options.intra_op_num_threads = self.threads
                # Idle threads sleep instead of spinning: the swap shares the
                # CPU with decoding, the other stages and the encoder.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = ort.InferenceSession(str(path), options, providers=self.providers)
                cached = (key, session)
                self._sessions[entry.name] = cached
            return cached[1]

    def load(self, model: str) -> ModelEntry:
        entry = self.repository.get(model)
        self._session(entry)
        return entry

    def ready(self, model: str) -> bool:
        return model in self._sessions

    def infer(
        self, model: str, faces: np.ndarray, mask: str = OUTPUTS[1]
    ) -> tuple[np.ndarray, np.ndarray]:
        entry = self.repository.get(model)
        swapped, masks = self.run(entry, faces, entry.outputs(mask))
        return swapped, masks

    def run(self, entry: ModelEntry, faces: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        """The named outputs of ``entry``'s model for ``faces``."""
        check_faces(faces, entry)
        result: list[np.ndarray] = self._session(entry).run(outputs, {INPUT: faces})
        return result


def triton_channel_args() -> list[tuple[str, Any]]:
    """tritonclient's own channel settings plus round-robin balancing: with a
    ``dns:///`` address of a headless Service, calls spread over every Triton
    pod the name resolves to (re-resolved as pods come and go), where the
    default policy would keep one connection to one pod for good."""
    return [
        ("grpc.max_send_message_length", 2**31 - 1),
        ("grpc.max_receive_message_length", 2**31 - 1),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.dns_min_time_between_resolutions_ms", 5_000),
    ]


class TritonEngine:
    """Runs repository models on an NVIDIA Triton server over gRPC.

    The repository is the same folder Triton serves (a shared volume in a
    cluster); it supplies the metadata Triton's API has no place for.
    """

    def __init__(self, url: str, repository: ModelRepository, timeout: float = 60.0) -> None:
        import tritonclient.grpc as triton_grpc

        self.url = url
        self.repository = repository
        self.timeout = timeout
        self._grpc = triton_grpc
        self._client = triton_grpc.InferenceServerClient(url, channel_args=triton_channel_args())

    def ready(self, model: str) -> bool:
        from tritonclient.utils import InferenceServerException

        try:
            return bool(self._client.is_model_ready(model))
        except InferenceServerException:
            return False

    def load(self, model: str) -> ModelEntry:
        """Asks Triton to load the model (explicit model control) and waits
        until it is ready. A server that watches its repository (``swapline
        triton``, or tritonserver in poll mode) refuses the call and loads the
        model by itself."""
        from tritonclient.utils import InferenceServerException

        entry = self.repository.get(model)
        # A server not in explicit mode refuses; it loads the model by itself.
        with contextlib.suppress(InferenceServerException):
            self._client.load_model(model)
        deadline = time.monotonic() + self.timeout
        while not self.ready(model):
            if time.monotonic() > deadline:
                raise SwaplineError(f"Triton at {self.url} did not load {model!r}")
            time.sleep(0.2)
        return entry

    def infer(
        self, model: str, faces: np.ndarray, mask: str = OUTPUTS[1]
    ) -> tuple[np.ndarray, np.ndarray]:
        from tritonclient.utils import InferenceServerException

        entry = self.repository.get(model)
        check_faces(faces, entry)
        request = self._grpc.InferInput(INPUT, list(faces.shape), "UINT8")
        request.set_data_from_numpy(np.ascontiguousarray(faces))
        names = entry.outputs(mask)
        outputs = [self._grpc.InferRequestedOutput(name) for name in names]
        try:
            result = self._client.infer(
                model, [request], outputs=outputs, client_timeout=self.timeout
            )
        except InferenceServerException as exc:
            if "unknown model" in str(exc) or "is not found" in str(exc):
                raise NotFoundError(f"model {model!r} is not loaded on Triton") from None
            raise
        return result.as_numpy(names[0]), result.as_numpy(names[1])

    def close(self) -> None:
        self._client.close()

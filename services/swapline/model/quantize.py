"""An int8 variant of a repository entry's model, for serving on CPUs.

On a CPU the swap model's convolutions dominate a frame's face work; int8
kernels (VNNI on current x86 server CPUs) run them about three times faster.
The variant is quantized after training, statically (QDQ, weights int8 per
channel, activations uint8), calibrated on faces of the target identity,
and checked against the float model on other faces of that identity before
it is kept. It lives beside ``model.onnx`` in the entry's version folder:
Triton's GPU profile keeps serving ``model.onnx``, its CPU profile
(``configs/cpu.pbtxt``) names the variant, and swapline's in-process engine
prefers the variant when it runs on a CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from swapline.errors import InvalidInputError
from swapline.stages.model_contract import INPUT, METADATA, OUTPUTS

INT8_FILE = "model.int8.onnx"
INT8_KEY = "cpu_int8"
MIN_FACES = 16
# Mean difference from the float model, in levels of 255, above which the
# variant is refused (a well calibrated one stays near 1).
MAX_MEAN_DIFF = 3.0


@dataclass(frozen=True)
class Int8Result:
    path: Path
    calibration_faces: int
    check_faces: int
    mean_abs_diff: float
    p99_abs_diff: float


class _Batches:
    """onnxruntime's calibration data reader protocol over a face array."""

    def __init__(self, faces: np.ndarray, batch: int = 16) -> None:
        self._batches = iter([{INPUT: faces[i : i + batch]} for i in range(0, len(faces), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # part of the reader protocol; one pass is enough
        pass


def _run(path: Path, faces: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs: list[np.ndarray] = session.run(list(OUTPUTS), {INPUT: faces})
    return outputs


def add_cpu_int8(
    entry: str | os.PathLike[str], faces: np.ndarray, max_faces: int = 256
) -> Int8Result:
    """Quantizes ``entry``'s model on ``faces`` (uint8 BGR, N x R x R x 3, of
    the identity the model will swap): even-numbered faces calibrate, the
    others check. Writes ``1/model.int8.onnx`` and records the check in the
    entry's metadata; writes nothing when the variant strays too far."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    entry = Path(entry)
    info: dict[str, Any] = json.loads((entry / METADATA).read_text())
    res = int(info["resolution"])
    if faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[1:] != (res, res, 3):
        raise InvalidInputError(f"calibration faces must be uint8 N x {res} x {res} x 3")
    if len(faces) < MIN_FACES:
        raise InvalidInputError(f"{len(faces)} calibration faces: at least {MIN_FACES} are needed")
    step = max(1, len(faces) // max_faces)
    faces = faces[::step][:max_faces]
    calibration, check = faces[0::2], faces[1::2]
    source = entry / "1" / "model.onnx"
    target = entry / "1" / INT8_FILE
    with tempfile.TemporaryDirectory() as tmp:
        folded, prepared, quantized = (Path(tmp) / n for n in ("f.onnx", "p.onnx", "q.onnx"))
        # Basic graph optimizations fold the fp16 weights' casts into float
        # constants, which the quantizer needs to see as initializers.
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        try:
            ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidInputError(f"{source}: not a loadable ONNX model ({reason})") from None
        quant_pre_process(str(folded), str(prepared))
        quantize_static(
            str(prepared),
            str(quantized),
            _Batches(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            # 7-bit weights: without AVX-512 VNNI, ONNX Runtime's u8s8 kernels
            # (VPMADDUBSW) saturate 16-bit sums of 8-bit products; measured on
            # an AVX2-only CPU: mean difference 3.67 levels with full range.
            reduce_range=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )
        expected, got = _run(source, check), _run(quantized, check)
        diffs = np.concatenate(
            [
                np.abs(e.astype(np.int16) - g.astype(np.int16)).ravel()
                for e, g in zip(expected, got, strict=True)
            ]
        )
        mean, p99 = float(diffs.mean()), float(np.percentile(diffs, 99))
        if mean > MAX_MEAN_DIFF:
            raise InvalidInputError(
                f"int8 variant differs from the float model by {mean:.2f} levels on "
                f"average (limit {MAX_MEAN_DIFF}); not written"
            )
        staged = target.with_name(f".{INT8_FILE}.tmp")
        shutil.copyfile(quantized, staged)
        os.replace(staged, target)  # a reader sees the old file or the new one
    info[INT8_KEY] = {
        "file": INT8_FILE,
        "calibration_faces": len(calibration),
        "check_faces": len(check),
        "mean_abs_diff": round(mean, 4),
        "p99_abs_diff": round(p99, 2),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (entry / METADATA).write_text(json.dumps(info, indent=2) + "\n")
    _cpu_profile_serves_int8(entry / "configs" / "cpu.pbtxt")
    return Int8Result(target, len(calibration), len(check), mean, p99)


def _cpu_profile_serves_int8(profile: Path) -> None:
    if not profile.is_file():
        return
    lines = profile.read_text().splitlines()
    if any(line.startswith("default_model_filename") for line in lines):
        return
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("platform")), 1)
    lines.insert(at, f'default_model_filename: "{INT8_FILE}"')
    profile.write_text("\n".join(lines) + "\n")


def add_cpu_int8_from_faceset(
    entry: str | os.PathLike[str], faceset: str | os.PathLike[str]
) -> Int8Result:
    """:func:`add_cpu_int8` calibrated on a faceset of the target identity."""
    from swapline.train.data import load_faceset

    resolution = int(json.loads((Path(entry) / METADATA).read_text())["resolution"])
    return add_cpu_int8(entry, load_faceset(Path(faceset), resolution).faces)

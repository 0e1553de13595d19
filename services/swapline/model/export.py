"""``swapline export``: a trained model as an ONNX file in a Triton model
repository entry, checked against the torch model.

An entry is laid out the way NVIDIA Triton expects::

    REPO/NAME/config.pbtxt          GPU profile (KIND_GPU, optional TensorRT FP16)
    REPO/NAME/configs/cpu.pbtxt     CPU profile (tritonserver --model-config-name=cpu)
    REPO/NAME/1/model.onnx
    REPO/NAME/swapline.json         metadata: identities and consent, resolution, ...

Tensors: ``faces`` UINT8 [N, R, R, 3] BGR in; ``swapped`` UINT8 [N, R, R, 3]
and ``mask`` UINT8 [N, R, R, 1] out.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from swapline.errors import InvalidInputError, NotFoundError
from swapline.stages.model_contract import (
    INPUT,
    METADATA,
    OUTPUTS,
    consent_problem,
    face_shape,
    mask_shape,
    output_names,
    preferred_batches,
)


@dataclass(frozen=True)
class ExportResult:
    entry: Path
    max_abs_diff: int
    mean_abs_diff: float
    onnx_bytes: int


def staging_parent(repository: str | os.PathLike[str]) -> Path:
    """Where a new entry is built before it is renamed into ``repository``
    (created if missing): the folder above it, which must be writable and on
    the same filesystem, since a rename cannot cross filesystems and a folder
    inside the repository would look like a model to a polling Triton.

    Training calls this before it starts, so a repository that cannot take an
    export fails in seconds, not after hours of training."""
    repository = Path(repository).absolute()
    try:
        repository.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create the model repository {repository}: {exc}") from None
    parent = repository.parent
    if not os.access(repository, os.W_OK | os.X_OK):
        problem = f"{repository} is not writable"
    elif not os.access(parent, os.W_OK | os.X_OK):
        problem = f"{parent} is not writable"
    elif parent.stat().st_dev != repository.stat().st_dev:
        problem = f"{repository} is a mount point"
    else:
        return parent
    raise InvalidInputError(
        f"cannot export into {repository}: {problem}, so a new entry cannot be staged beside "
        "it and renamed in; export into a folder inside the volume (the chart mounts the "
        "models volume at /models and serves /models/repository)"
    )


def load_checkpoint_model(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The trained SwapModel (eval mode, CPU) and its model.json."""
    import torch

    from swapline.train.model import ModelConfig, SwapModel
    from swapline.train.trainer import CHECKPOINT
    from swapline.train.trainer import METADATA as TRAIN_METADATA

    checkpoint = model_dir / CHECKPOINT
    if not checkpoint.exists():
        raise NotFoundError(f"{model_dir}: no trained model ({CHECKPOINT} missing)")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = SwapModel(ModelConfig(**state["config"]))
    model.load_state_dict(state["model"])
    model.eval()
    metadata_path = model_dir / TRAIN_METADATA
    metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
    metadata.setdefault("training_steps", state["step"])
    metadata.setdefault("final_loss", state["last_loss"])
    return model, metadata


def weights_to_fp16(path: Path) -> None:
    """Stores float32 weights as float16 with a Cast back to float32 in front of
    their users: half the file, and every runtime (CPU included) still computes
    in float32. TensorRT's FP16 mode computes in half precision on GPUs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    replaced = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or np.prod(init.dims) < 16:
            continue
        array = numpy_helper.to_array(init).astype(np.float16)
        half_name = init.name + "__fp16"
        replaced.append((init, numpy_helper.from_array(array, half_name)))
        casts.append(
            helper.make_node(
                "Cast", [half_name], [init.name], to=TensorProto.FLOAT, name=init.name + "__cast"
            )
        )
    for old, new in replaced:
        graph.initializer.remove(old)
        graph.initializer.append(new)
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def outputs_pbtxt(resolution: int, occlusion: bool) -> str:
    """The ``output [...]`` block of a swap model's Triton configuration."""
    dims_face = "[ {} ]".format(", ".join(map(str, face_shape(resolution))))
    dims_mask = "[ {} ]".format(", ".join(map(str, mask_shape(resolution))))
    rows = [f'  {{ name: "{OUTPUTS[0]}" data_type: TYPE_UINT8 dims: {dims_face} }}']
    rows += [
        f'  {{ name: "{m}" data_type: TYPE_UINT8 dims: {dims_mask} }}'
        for m in output_names(occlusion)[1:]
    ]
    return "output [\n" + ",\n".join(rows) + "\n]"


def config_pbtxt(
    name: str,
    resolution: int,
    max_batch: int,
    gpu: bool,
    tensorrt_fp16: bool,
    occlusion: bool = False,
) -> str:
    """A Triton configuration of a swap model (``occlusion``: with the
    segmenter's outputs)."""
    dims_face = "[ {} ]".format(", ".join(map(str, face_shape(resolution))))
    preferred = ", ".join(map(str, preferred_batches(max_batch)))
    lines = [
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch}",
        f'input [ {{ name: "{INPUT}" data_type: TYPE_UINT8 dims: {dims_face} }} ]',
        outputs_pbtxt(resolution, occlusion),
        "dynamic_batching {",
        f"  preferred_batch_size: [ {preferred} ]",
        "  max_queue_delay_microseconds: 2000",
        "}",
        f"instance_group [ {{ count: 1 kind: {'KIND_GPU' if gpu else 'KIND_CPU'} }} ]",
    ]
    if gpu and tensorrt_fp16:
        lines += [
            "optimization { execution_accelerators { gpu_execution_accelerator : [ {",
            '  name : "tensorrt"',
            '  parameters { key: "precision_mode" value: "FP16" }',
            '  parameters { key: "max_workspace_size_bytes" value: "1073741824" }',
            "} ] } }",
        ]
    lines += [
        "model_warmup [ {",
        '  name: "warmup"',
        "  batch_size: 8",
        f'  inputs {{ key: "{INPUT}" value: {{ data_type: TYPE_UINT8 dims: {dims_face} '
        "zero_data: true } }",
        "} ]",
    ]
    return "\n".join(lines) + "\n"


def _export_onnx(wrapper: Any, dummy: Any, path: Path) -> None:
    import torch

    torch.onnx.export(
        wrapper,
        (dummy,),
        str(path),
        input_names=[INPUT],
        output_names=list(OUTPUTS),
        dynamic_axes={INPUT: {0: "batch"}, OUTPUTS[0]: {0: "batch"}, OUTPUTS[1]: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def export_model(
    model_dir: str | os.PathLike[str],
    repository: str | os.PathLike[str],
    name: str | None = None,
    fp16: bool = False,
    max_batch: int = 256,
    check_faces: np.ndarray | None = None,
) -> ExportResult:
    import onnxruntime as ort
    import torch

    from swapline.train.model import SwapExport

    model_dir = Path(model_dir)
    model, metadata = load_checkpoint_model(model_dir)
    name = name or model_dir.name
    if not name.replace("_", "").replace("-", "").isalnum():
        raise InvalidInputError(f"model name {name!r}: use letters, digits, '-' and '_'")
    res = model.config.resolution
    wrapper = SwapExport(model).eval()
    repository = Path(repository)
    entry = repository / name
    # Built beside the repository and renamed in: a watching server never
    # sees a half-written entry.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=staging_parent(repository)))
    staging.chmod(0o755)
    try:
        onnx_path = staging / "1" / "model.onnx"
        onnx_path.parent.mkdir(parents=True)
        dummy = torch.zeros((2, res, res, 3), dtype=torch.uint8)
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated but needs no onnxscript
            # and handles this plain convolutional graph exactly.
            warnings.simplefilter("ignore", DeprecationWarning)
            _export_onnx(wrapper, dummy, onnx_path)
        if fp16:
            weights_to_fp16(onnx_path)
        # Check the exported graph against torch on real or random faces.
        if check_faces is None:
            check_faces = np.random.default_rng(0).integers(0, 256, (4, res, res, 3), np.uint8)
        with torch.no_grad():
            expected = [t.numpy() for t in wrapper(torch.from_numpy(check_faces))]
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        got = session.run(list(OUTPUTS), {INPUT: check_faces})
        diffs = [
            np.abs(e.astype(np.int16) - g.astype(np.int16))
            for e, g in zip(expected, got, strict=True)
        ]
        max_diff = int(max(d.max() for d in diffs))
        mean_diff = float(np.mean([d.mean() for d in diffs]))
        limit = (8, 1.0) if fp16 else (2, 0.05)
        if max_diff > limit[0] or mean_diff > limit[1]:
            raise InvalidInputError(
                f"exported ONNX differs from torch: max {max_diff}, mean {mean_diff:.3f} levels"
            )
        (staging / "config.pbtxt").write_text(config_pbtxt(name, res, max_batch, True, fp16))
        (staging / "configs").mkdir()
        (staging / "configs" / "cpu.pbtxt").write_text(
            config_pbtxt(name, res, max_batch, False, False)
        )
        info = {
            "format": "swapline-model-entry",
            "version": 1,
            "name": name,
            "resolution": res,
            "face_type": metadata.get("face_type", "whole"),
            "architecture": model.config.architecture,
            "identities": metadata.get("identities", []),
            "training_steps": int(metadata.get("training_steps", 0)),
            "final_loss": float(metadata.get("final_loss", float("nan"))),
            "trained_on": metadata.get("device_name", metadata.get("device", "")),
            "trained": metadata.get("updated", ""),
            "exported": datetime.now(UTC).isoformat(timespec="seconds"),
            "precision": "fp16" if fp16 else "fp32",
            "notes": metadata.get("notes", ""),
            "parameters": metadata.get("parameters"),
            "max_batch_size": max_batch,
            "inputs": {INPUT: ["N", *face_shape(res)]},
            "outputs": {OUTPUTS[0]: ["N", *face_shape(res)], OUTPUTS[1]: ["N", *mask_shape(res)]},
            "export_check": {"max_abs_diff": max_diff, "mean_abs_diff": round(mean_diff, 4)},
        }
        problem = consent_problem(info["identities"])
        if problem is not None:
            raise InvalidInputError(f"{model_dir}: no consent on record for its faces: {problem}")
        (staging / METADATA).write_text(json.dumps(info, indent=2) + "\n")
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(staging, entry)  # the entry appears complete or not at all
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(entry, max_diff, mean_diff, (entry / "1" / "model.onnx").stat().st_size)

"""Adding the occlusion segmenter to a repository entry
(``swapline train-occlusion``): trains it on facesets with synthetic
occluders (:mod:`swapline.train.occlusion`), and makes the entry's
``model.onnx`` the swap model joined with it, so every engine draws the
swapped face only where the face is visible. The swap model alone is kept
as ``1/swap.onnx`` (training again starts from it), the segmenter as
``1/occlusion.onnx``; an int8 variant made before is removed (it lacks the
segmenter) unless a faceset to calibrate a new one is given.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapline.errors import InvalidInputError
from swapline.media import open_media
from swapline.model.export import outputs_pbtxt
from swapline.stages.model_contract import METADATA

SWAP_ONLY = "swap.onnx"
SEGMENTER = "occlusion.onnx"
OCCLUSION_KEY = "occlusion"


@dataclass(frozen=True)
class OcclusionResult:
    entry: Path
    faces: int
    steps: int
    seconds: float
    iou_visible: float


def _pictures(paths: Sequence[Path], every: int = 10) -> list[np.ndarray]:
    """Pictures to cut occluder textures from: images, and every n-th frame
    of videos."""
    pictures: list[np.ndarray] = []
    for path in paths:
        with open_media(path) as reader:
            pictures += [f.image.copy() for f in reader.frames() if f.index % every == 0]
    return pictures


def _noise_pictures(count: int = 8, size: int = 256) -> list[np.ndarray]:
    """Made-up textures when no pictures are given: coloured noise blown up
    from 4 to 32 cells a side."""
    rng = np.random.default_rng(7)
    out = []
    for k in range(count):
        cells = (4, 8, 16, 32)[k % 4]
        noise = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
        out.append(cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC))
    return out


def add_occlusion(
    entry: str | os.PathLike[str],
    facesets: Sequence[str | os.PathLike[str]],
    textures: Sequence[str | os.PathLike[str]] = (),
    minutes: float = 4.0,
    max_steps: int | None = None,
) -> OcclusionResult:
    from swapline.train import occlusion

    entry = Path(entry)
    metadata_path = entry / METADATA
    if not metadata_path.is_file():
        raise InvalidInputError(f"{entry}: not a model repository entry (no {METADATA})")
    info: dict[str, Any] = json.loads(metadata_path.read_text())
    resolution = int(info["resolution"])
    version = entry / "1"
    swap_only = version / SWAP_ONLY
    if not swap_only.is_file():
        shutil.copyfile(version / "model.onnx", swap_only)
    faces, hulls, priority = occlusion.load_crops([Path(f) for f in facesets], resolution)
    pictures = _pictures([Path(t) for t in textures]) if textures else _noise_pictures()
    pool = occlusion.texture_pool(pictures, resolution)
    net, trained = occlusion.train_segmenter(
        faces, hulls, priority, pool, minutes, max_steps=max_steps
    )
    occlusion.export_segmenter(net, resolution, version / SEGMENTER)
    staged = version / ".model.onnx.tmp"
    occlusion.merge_into_swap_model(swap_only, version / SEGMENTER, staged)
    os.replace(staged, version / "model.onnx")
    outputs = outputs_pbtxt(resolution, occlusion=True)
    for config in (entry / "config.pbtxt", entry / "configs" / "cpu.pbtxt"):
        if config.is_file():
            text = re.sub(r"output \[.*?\n\]", lambda _: outputs, config.read_text(), flags=re.S)
            config.write_text(text)
    variant = info.pop("cpu_int8", None)
    if variant:  # made from the swap model alone
        (version / str(variant["file"])).unlink(missing_ok=True)
        _drop_int8_from_cpu_profile(entry / "configs" / "cpu.pbtxt", str(variant["file"]))
    info[OCCLUSION_KEY] = {
        "file": SEGMENTER,
        "swap_only": SWAP_ONLY,
        "facesets": [Path(f).name for f in facesets],
        "faces": len(faces),
        "steps": trained.steps,
        "iou_visible": round(trained.iou_visible, 4),
        "textures": [Path(t).name for t in textures] or "generated noise",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    metadata_path.write_text(json.dumps(info, indent=2) + "\n")
    return OcclusionResult(entry, len(faces), trained.steps, trained.seconds, trained.iou_visible)


def _drop_int8_from_cpu_profile(profile: Path, variant: str) -> None:
    if profile.is_file():
        lines = profile.read_text().splitlines(True)
        profile.write_text("".join(line for line in lines if variant not in line))

"""Facesets as training batches, with the augmentations that make an
autoencoder learn identity instead of copying pixels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapline.errors import InvalidInputError

FACESET_FORMAT = "swapline-faceset"
EYES_AND_MOUTH = (slice(36, 42), slice(42, 48), slice(48, 60))


@dataclass
class Faceset:
    """Every face of a faceset at the training resolution, in memory."""

    path: Path
    manifest: dict[str, Any]
    faces: np.ndarray  # N x res x res x 3, uint8 BGR
    masks: np.ndarray  # N x res x res, uint8 (landmark hull)
    priority: np.ndarray  # N x res x res, uint8 (eyes and mouth)
    frame_indices: list[int]

    def __len__(self) -> int:
        return len(self.faces)


def read_records(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    manifest_path = path / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: not a faceset (no manifest.json)") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{manifest_path}: corrupt JSON ({exc})") from None
    if manifest.get("format") != FACESET_FORMAT:
        raise InvalidInputError(f"{path}: not a swapline faceset")
    with (path / manifest.get("records", "faces.jsonl")).open() as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return manifest, records


def load_faceset(path: str | Path, resolution: int) -> Faceset:
    path = Path(path)
    manifest, records = read_records(path)
    if not records:
        raise InvalidInputError(f"{path}: the faceset has no faces")
    n = len(records)
    faces = np.empty((n, resolution, resolution, 3), np.uint8)
    masks = np.empty((n, resolution, resolution), np.uint8)
    priority = np.zeros((n, resolution, resolution), np.uint8)
    scale = resolution / manifest["size"]
    for i, record in enumerate(records):
        crop = cv2.imread(str(path / record["file"]), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(path / record["mask"]), cv2.IMREAD_GRAYSCALE)
        if crop is None or mask is None:
            raise InvalidInputError(f"{path}: cannot read {record['file']} or its mask")
        faces[i] = cv2.resize(crop, (resolution, resolution), interpolation=cv2.INTER_AREA)
        masks[i] = cv2.resize(mask, (resolution, resolution), interpolation=cv2.INTER_AREA)
        points = np.asarray(record["crop_landmarks"], np.float64) * scale
        for part in EYES_AND_MOUTH:
            hull = cv2.convexHull(np.round(points[part]).astype(np.int32))
            cv2.fillConvexPoly(priority[i], hull, (255,))
        priority[i] = cv2.dilate(priority[i], np.ones((3, 3), np.uint8))
    return Faceset(path, manifest, faces, masks, priority, [r["frame_index"] for r in records])


def random_warp_grid(
    rng: np.random.Generator, res: int, cells: int = 5, amount: float = 0.04
) -> np.ndarray:
    """A smooth random displacement field (DeepFaceLab's random warp): a coarse
    grid of jittered control points interpolated to every pixel; the border
    stays fixed. Returns a (res, res, 2) float32 remap map."""
    coarse = rng.normal(0.0, amount * res, size=(cells, cells, 2)).astype(np.float32)
    coarse[0, :] = coarse[-1, :] = coarse[:, 0] = coarse[:, -1] = 0.0
    offsets = cv2.resize(coarse, (res, res), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:res, 0:res].astype(np.float32)
    return np.stack([xs + offsets[..., 0], ys + offsets[..., 1]], axis=-1)


def random_affine(rng: np.random.Generator, res: int) -> tuple[np.ndarray, bool]:
    angle = rng.uniform(-10.0, 10.0)
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.05, 0.05, size=2) * res
    matrix = np.asarray(cv2.getRotationMatrix2D((res / 2, res / 2), angle, scale), np.float64)
    matrix[:, 2] += shift
    return matrix, bool(rng.random() < 0.5)


class BatchSampler:
    """Draws augmented batches from a faceset with its own seeded generator,
    whose state is saved in checkpoints so that a resumed run continues with
    exactly the batches it would have drawn."""

    def __init__(self, faceset: Faceset, seed: int) -> None:
        self.faceset = faceset
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict[str, Any]:
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def sample(self, batch: int, warp: bool = True) -> dict[str, np.ndarray]:
        """``inputs`` (warped), ``targets``, ``masks`` and ``priority``, each
        float32 NCHW in [0, 1]."""
        res = self.faceset.faces.shape[1]
        idx = self.rng.integers(0, len(self.faceset), size=batch)
        inputs = np.empty((batch, res, res, 3), np.float32)
        targets = np.empty((batch, res, res, 3), np.float32)
        masks = np.empty((batch, res, res), np.float32)
        priority = np.empty((batch, res, res), np.float32)
        for k, i in enumerate(idx):
            matrix, flip = random_affine(self.rng, res)
            planes = [self.faceset.faces[i], self.faceset.masks[i], self.faceset.priority[i]]
            moved = [
                cv2.warpAffine(p, matrix, (res, res), borderMode=cv2.BORDER_REPLICATE)
                for p in planes
            ]
            if flip:
                # Landmark-derived planes flip with the face.
                moved = [np.ascontiguousarray(p[:, ::-1]) for p in moved]
            face, mask, prio = moved
            source = face
            if warp:
                grid = random_warp_grid(self.rng, res)
                source = cv2.remap(
                    face,
                    grid[..., 0],
                    grid[..., 1],
                    cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE,
                )
            inputs[k] = source / 255.0
            targets[k] = face / 255.0
            masks[k] = mask / 255.0
            priority[k] = prio / 255.0
        return {
            "inputs": inputs.transpose(0, 3, 1, 2),
            "targets": targets.transpose(0, 3, 1, 2),
            "masks": masks[:, None],
            "priority": priority[:, None],
        }

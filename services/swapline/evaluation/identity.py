"""``swapline eval-identity``: how well a model swaps on faces it never saw.

* identity score — the share of swapped faces whose dlib face embedding is
  nearer the source identity A's mean embedding than the target B's;
* expression error — the mean distance between the 68 landmarks of each
  swapped face and of the original B face, divided by the inter-ocular
  distance of the original.

Every embedding and landmark set is measured the same way, on crops at the
model's resolution scaled to 256 px, so that resolution alone favours no side.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from swapline.errors import InvalidInputError, NotFoundError
from swapline.stages.align import LEFT_EYE, RIGHT_EYE, face_embedding, find_landmarks
from swapline.train.data import load_faceset, read_records

SwapFunction = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
MEASURE_SIZE = 256


@dataclass(frozen=True)
class IdentityReport:
    faces: int
    identity_score: float
    mean_distance_to_source: float
    mean_distance_to_target: float
    expression_error: float
    resolution: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def load_swap_function(path: str | Path, cpu_int8: bool = True) -> tuple[SwapFunction, int]:
    """A model folder (training checkpoint) or a repository entry (ONNX; its
    int8 variant on a CPU unless ``cpu_int8`` is False)."""
    path = Path(path)
    if (path / "checkpoint.pt").exists():
        import torch

        from swapline.model.export import load_checkpoint_model
        from swapline.train.model import SwapExport

        model, _ = load_checkpoint_model(path)
        wrapper = SwapExport(model).eval()

        def run_torch(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with torch.no_grad():
                face, mask = wrapper(torch.from_numpy(faces))
            return face.numpy(), mask.numpy()

        return run_torch, model.config.resolution
    if (path / "1" / "model.onnx").exists():
        from swapline.stages.swap import ModelRepository, OnnxEngine

        engine = OnnxEngine(ModelRepository(path.parent), cpu_int8=cpu_int8)
        entry = engine.load(path.name)
        return (lambda faces: engine.infer(path.name, faces)), entry.resolution
    raise NotFoundError(f"{path}: neither a trained model nor a repository entry")


class _Measurer:
    """Landmarks and embeddings of aligned crops, measured at one size."""

    def __init__(self, box: tuple[float, float, float, float]) -> None:
        self.box = box

    def measure(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        big = cv2.resize(crop, (MEASURE_SIZE, MEASURE_SIZE), interpolation=cv2.INTER_CUBIC)
        landmarks = find_landmarks(big, self.box)
        return landmarks, face_embedding(big, landmarks)


def _typical_box(records: list[dict[str, object]], size: int) -> tuple[float, float, float, float]:
    """Where the face sits in this faceset's crops, scaled to MEASURE_SIZE."""
    points = np.array([r["crop_landmarks"] for r in records[:50]], np.float64) * (
        MEASURE_SIZE / size
    )
    lo, hi = points.min(1).mean(0), points.max(1).mean(0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _at_resolution(faces: np.ndarray, res: int) -> np.ndarray:
    return np.stack([cv2.resize(f, (res, res), interpolation=cv2.INTER_AREA) for f in faces])


def evaluate_identity(
    swap: SwapFunction,
    resolution: int,
    source_faceset: str | Path,
    target_holdout: str | Path,
    limit: int = 200,
    batch: int = 32,
) -> IdentityReport:
    source = load_faceset(source_faceset, resolution)
    target = load_faceset(target_holdout, resolution)
    manifest, records = read_records(Path(target_holdout))
    measurer = _Measurer(_typical_box(records, int(manifest["size"])))
    rng = np.random.default_rng(0)
    pick_a = rng.permutation(len(source))[:limit]
    pick_b = np.arange(len(target))[:limit]
    mean_a = np.mean([measurer.measure(source.faces[i])[1] for i in pick_a], axis=0)
    originals = [measurer.measure(target.faces[i]) for i in pick_b]
    mean_b = np.mean([emb for _, emb in originals], axis=0)
    nearer_a, dist_a, dist_b, expression = [], [], [], []
    for start in range(0, len(pick_b), batch):
        idx = pick_b[start : start + batch]
        swapped, _ = swap(np.ascontiguousarray(target.faces[idx]))
        for k, face in zip(idx, swapped, strict=True):
            landmarks, embedding = measurer.measure(face)
            da = float(np.linalg.norm(embedding - mean_a))
            db = float(np.linalg.norm(embedding - mean_b))
            nearer_a.append(da < db)
            dist_a.append(da)
            dist_b.append(db)
            original = originals[int(k)][0]
            iod = np.linalg.norm(original[LEFT_EYE].mean(0) - original[RIGHT_EYE].mean(0))
            expression.append(float(np.linalg.norm(landmarks - original, axis=1).mean() / iod))
    if not nearer_a:
        raise InvalidInputError(f"{target_holdout}: no faces to evaluate")
    return IdentityReport(
        faces=len(nearer_a),
        identity_score=float(np.mean(nearer_a)),
        mean_distance_to_source=float(np.mean(dist_a)),
        mean_distance_to_target=float(np.mean(dist_b)),
        expression_error=float(np.mean(expression)),
        resolution=resolution,
    )


def source_faceset_of(model: Path) -> Path:
    metadata = model / "model.json"
    if metadata.exists():
        recorded = json.loads(metadata.read_text()).get("facesets", {}).get("source")
        if recorded and Path(recorded).exists():
            return Path(recorded)
    raise InvalidInputError(f"{model}: say which faceset holds the source identity (--src)")

"""Quality measures shared by tests, benchmarks and evaluation."""

from __future__ import annotations

import math

import numpy as np

from swapline.stages.align import LEFT_EYE, RIGHT_EYE, transform_points


def centred_smooth(series: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Zero-lag Gaussian smoothing along the first axis (edges repeated)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    padded = np.concatenate([series[:1].repeat(radius, 0), series, series[-1:].repeat(radius, 0)])
    out = np.zeros_like(series, dtype=np.float64)
    for k, w in enumerate(weights):
        out += w * padded[k : k + len(series)]
    return out


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(T, 2, 2): left and right eye centres of each frame's 68 landmarks."""
    landmarks = np.asarray(landmarks, np.float64)
    return np.stack([landmarks[:, LEFT_EYE].mean(1), landmarks[:, RIGHT_EYE].mean(1)], axis=1)


def crop_eye_jitter(frame_to_crop: np.ndarray, raw_landmarks: np.ndarray) -> float:
    """Mean frame-to-frame movement of the eye centres inside the aligned
    crops, in crop pixels.

    Where the eyes truly are is estimated by zero-lag smoothing of the raw
    per-frame landmark measurements; the measure is how far those eye
    centres move from one crop to the next. A crop that follows measurement
    noise shakes the face inside it; a steady crop keeps the eyes still
    unless the face itself turns or moves within it.
    """
    truth = centred_smooth(eye_centres(raw_landmarks))
    in_crop = np.stack(
        [transform_points(m, eyes) for m, eyes in zip(frame_to_crop, truth, strict=True)]
    )
    return float(np.linalg.norm(np.diff(in_crop, axis=0), axis=-1).mean())


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the eye centres of one face's 68 landmarks."""
    points = np.asarray(landmarks, np.float64)
    return float(np.linalg.norm(points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)))


def landmark_error(measured: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance between two 68-point sets in inter-ocular distances of
    ``reference``: 0 for the same expression and pose."""
    scale = inter_ocular(reference) or 1.0
    return float(np.linalg.norm(np.asarray(measured) - reference, axis=-1).mean() / scale)


def jitter(series: np.ndarray, scales: np.ndarray | None = None) -> np.ndarray:
    """Per-frame jitter of a (T, ...) series: the size of its second
    difference (x[t+1] - 2x[t] + x[t-1]), so steady motion costs nothing and
    shaking does; optionally divided by a per-frame scale (inter-ocular
    distance). T - 2 values; none for fewer than 3 frames."""
    values = np.asarray(series, np.float64)
    if len(values) < 3:
        return np.zeros(0)
    second = values[2:] - 2 * values[1:-1] + values[:-2]
    size = np.linalg.norm(second.reshape(len(second), -1, second.shape[-1]), axis=-1).mean(-1)
    if scales is not None:
        size = size / np.maximum(np.asarray(scales, np.float64)[1:-1], 1e-9)
    return np.asarray(size)


def identity_nearness(
    embeddings: np.ndarray, source_mean: np.ndarray, target_mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per face: whether its dlib embedding is nearer the source identity's
    mean than the target's (Euclidean, dlib's own measure), and its cosine
    similarity to the source mean."""
    faces = np.asarray(embeddings, np.float64).reshape(-1, 128)
    to_source = np.linalg.norm(faces - source_mean, axis=1)
    to_target = np.linalg.norm(faces - target_mean, axis=1)
    cosine = (
        faces @ source_mean / (np.linalg.norm(faces, axis=1) * np.linalg.norm(source_mean) + 1e-12)
    )
    return to_source < to_target, cosine


class MaskedPsnr:
    """PSNR over many frames, counting only the pixels a mask selects:
    squared errors are summed frame by frame, so memory stays flat."""

    def __init__(self) -> None:
        self.squared_error = 0.0
        self.count = 0

    def add(self, a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> None:
        diff = a[keep].astype(np.float64) - b[keep].astype(np.float64)
        self.squared_error += float((diff**2).sum())
        self.count += diff.size

    @property
    def value(self) -> float:
        if self.count == 0 or self.squared_error == 0:
            return math.inf
        return 10 * math.log10(255.0**2 / (self.squared_error / self.count))

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

"""What the eye sees of a swapped face, measured on aligned crops of one
size so that faces of any size and pose compare:

* sharpness — variance of the Laplacian of the inner face (brows, eyes,
  nose, mouth) on a 256 px aligned crop smoothed by a one-pixel Gaussian
  (grain is not detail); reported against the input's and
  against the source identity's own footage (a swap as sharp as the
  source's real faces scores 1.0);
* seam — the colour and brightness step across the border of what the
  swap changed, where that border crosses smooth skin (see
  :func:`seam_steps`), output against the input at the same pixels;
* spill — of the pixels the swap changed, the share outside the face region
  (landmark hull with the forehead): hair, ears, background;
* flicker — mean frame-to-frame change of the inner face on the aligned
  crops (the input's landmarks align both), output against input.

:class:`Appearance` takes one frame at a time and keeps only numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from swapline.stages.align import FaceType, frame_to_crop_matrix
from swapline.stages.blend import local_mean

CROP = 256
CHANGED = 8  # levels: a pixel the swap changed by more counts as changed
# Crop pixels. The raw Laplacian is dominated by one-pixel texture: a
# super-resolution net trained to match its energy scored 0.94 of the source
# footage while drawing the same smudge as bicubic upscaling plus grain
# (0.16 and 0.15 with this smoothing).
GRAIN_SIGMA = 1.0
INNER = slice(17, 68)  # brows, nose, eyes, mouth of the 68 landmarks


def change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """How much the swap changed each pixel (uint8 levels, the largest
    channel), after a median that drops the codec's scattered noise."""
    diff = np.abs(before.astype(np.int16) - after).max(2).astype(np.uint8)
    return np.asarray(cv2.medianBlur(diff, 5), np.uint8)


def face_region(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The face as a swap may change it (uint8 0/255): the landmark hull
    with the forehead up to about the hairline (the brows raised by 0.8 of
    their height above the nose tip)."""
    points = np.asarray(landmarks, np.float64)
    brows = points[17:27]
    lift = (brows.mean(0) - points[30]) * 0.8
    outline = np.concatenate([points, brows + lift])
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(outline).astype(np.int32)), (255,))
    return mask


def sharpness(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Variance of the Laplacian of the inner face on a 256 px aligned crop,
    smoothed first (:data:`GRAIN_SIGMA`): the detail of lashes, lids,
    nostrils and lips counts, pixel-sized grain does not."""
    matrix = frame_to_crop_matrix(landmarks, CROP, FaceType.WHOLE)
    crop = cv2.warpAffine(image, matrix, (CROP, CROP), flags=cv2.INTER_AREA)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    smooth = cv2.GaussianBlur(grey.astype(np.float64), (0, 0), GRAIN_SIGMA)
    inner = _inner_mask(landmarks, matrix)
    return float(cv2.Laplacian(smooth, cv2.CV_64F)[inner > 0].var())


def _inner_mask(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks, np.float64)[INNER] @ matrix[:, :2].T + matrix[:, 2]
    mask = np.zeros((CROP, CROP), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), (255,))
    return mask


def seam_steps(
    before: np.ndarray, after: np.ndarray, changed: np.ndarray, size: float
) -> tuple[float, float] | None:
    """The colour and brightness step across the border of the region the
    swap changed, in the input and in the output: at each border pixel the
    LAB distance between the mean just inside and just outside. Only the
    border pixels where the input itself is smooth (the lower half of its
    steps: skin, not the edge of hair or background) count — there a band
    of another tone shows. None when nothing changed."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(size * 0.1) | 1,) * 2)
    region = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    border = (cv2.dilate(region, np.ones((3, 3), np.uint8)) - region) > 0
    if not border.any():
        return None
    width = max(2, int(0.04 * size))
    ring = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1,) * 2)
    inside, outside = region - cv2.erode(region, ring), cv2.dilate(region, ring) - region
    steps = []
    for image in (before, after):
        lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
        step = local_mean(lab, inside, width) - local_mean(lab, outside, width)
        steps.append(np.linalg.norm(step, axis=2)[border])
    smooth = steps[0] <= np.median(steps[0])
    return float(steps[0][smooth].mean()), float(steps[1][smooth].mean())


@dataclass
class Appearance:
    """Sharpness, seam, spill and flicker over the frames of a clip."""

    sharp_in: list[float] = field(default_factory=list)
    sharp_out: list[float] = field(default_factory=list)
    seam_in: list[float] = field(default_factory=list)
    seam_out: list[float] = field(default_factory=list)
    changed_inside: int = 0
    changed_outside: int = 0
    flicker_in: list[float] = field(default_factory=list)
    flicker_out: list[float] = field(default_factory=list)
    _last: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, before: np.ndarray, after: np.ndarray, landmarks: np.ndarray) -> None:
        """One frame (input, output) and the input face's landmarks."""
        self.sharp_in.append(sharpness(before, landmarks))
        self.sharp_out.append(sharpness(after, landmarks))
        region = face_region(landmarks, before.shape)
        size = float(np.sqrt((region > 0).sum())) or 1.0
        x, y, w, h = cv2.boundingRect(region)
        pad = max(4, int(0.2 * size))
        y0, y1 = max(0, y - pad), min(before.shape[0], y + h + pad)
        x0, x1 = max(0, x - pad), min(before.shape[1], x + w + pad)
        a, b = before[y0:y1, x0:x1], after[y0:y1, x0:x1]
        changed = change(before, after) > CHANGED
        self.changed_inside += int((changed & (region > 0)).sum())
        self.changed_outside += int((changed & (region == 0)).sum())
        steps = seam_steps(a, b, changed[y0:y1, x0:x1], size)
        if steps is not None:
            self.seam_in.append(steps[0])
            self.seam_out.append(steps[1])
        matrix = frame_to_crop_matrix(landmarks, CROP, FaceType.WHOLE)
        inner = _inner_mask(landmarks, matrix) > 0
        crops = tuple(
            cv2.warpAffine(i, matrix, (CROP, CROP), flags=cv2.INTER_AREA).astype(np.float32)
            for i in (before, after)
        )
        if self._last is not None:
            self.flicker_in.append(float(np.abs(crops[0] - self._last[0])[inner].mean()))
            self.flicker_out.append(float(np.abs(crops[1] - self._last[1])[inner].mean()))
        self._last = (crops[0], crops[1])

    def gap(self) -> None:
        """A frame without a face: flicker does not span it."""
        self._last = None

    def per_frame(self) -> dict[str, list[float]]:
        return {
            "sharpness_input": self.sharp_in,
            "sharpness_output": self.sharp_out,
            "seam_input": self.seam_in,
            "seam_output": self.seam_out,
            "flicker_input": self.flicker_in,
            "flicker_output": self.flicker_out,
        }

    def summary(self, source_sharpness: float | None = None) -> dict[str, float]:
        def ratio(out: list[float], base: list[float]) -> float:
            return float(np.mean(out) / np.mean(base)) if out and np.mean(base) > 0 else 0.0

        changed = self.changed_inside + self.changed_outside
        result = {
            "sharpness_output": float(np.mean(self.sharp_out)) if self.sharp_out else 0.0,
            "sharpness_vs_input": ratio(self.sharp_out, self.sharp_in),
            "seam_vs_input": ratio(self.seam_out, self.seam_in) if self.seam_in else 1.0,
            "spill_share": self.changed_outside / changed if changed else 0.0,
            "flicker_vs_input": ratio(self.flicker_out, self.flicker_in),
        }
        if source_sharpness:
            result["sharpness_vs_source"] = result["sharpness_output"] / source_sharpness
        return result

"""Face detection with dlib: HOG (default) or the MMOD CNN.

Frames are downscaled so that their long side is at most ``max_side`` before
detection, small frames are upsampled, and boxes are mapped back to the
coordinates of the source frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from swapline import dlib_models
from swapline.errors import InvalidInputError


class DetectorModel(StrEnum):
    HOG = "hog"
    CNN = "cnn"


@dataclass(frozen=True)
class DetectorConfig:
    model: DetectorModel = DetectorModel.HOG
    max_side: int = 640
    # None = automatic: double small frames until the long side reaches
    # `upsample_target` pixels.
    upsample: int | None = None
    upsample_target: int = 320
    min_face_size: float = 0.0
    min_score: float = 0.0

    def validate(self) -> None:
        if not 64 <= self.max_side <= 8192:
            raise InvalidInputError(f"max_side must be in 64..8192, got {self.max_side}")
        if self.upsample is not None and not 0 <= self.upsample <= 3:
            raise InvalidInputError(f"upsample must be in 0..3, got {self.upsample}")
        if self.min_face_size < 0:
            raise InvalidInputError("min_face_size must be >= 0")


@dataclass(frozen=True)
class Detection:
    """A face box in source-frame pixels and the detector's score."""

    left: float
    top: float
    right: float
    bottom: float
    score: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def as_array(self) -> np.ndarray:
        return np.array([self.left, self.top, self.right, self.bottom], dtype=np.float64)


def detection_scale(width: int, height: int, config: DetectorConfig) -> tuple[float, int]:
    """The downscale factor and the number of 2x upsamplings for a frame size."""
    long_side = max(width, height)
    scale = min(1.0, config.max_side / long_side)
    if config.upsample is not None:
        return scale, config.upsample
    scaled = long_side * scale
    upsample = 0
    if scaled < config.upsample_target:
        upsample = min(3, math.ceil(math.log2(config.upsample_target / scaled)))
    return scale, upsample


class FaceDetector:
    """Finds every face in a BGR frame.

    Callers may pass an already downscaled image together with the size of
    the frame it came from (``source_size``); boxes are reported in the source
    frame's pixels.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.config.validate()

    def detect(
        self, image: np.ndarray, source_size: tuple[int, int] | None = None
    ) -> list[Detection]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError("detector expects a BGR uint8 image")
        height, width = image.shape[:2]
        src_w, src_h = source_size or (width, height)
        scale, upsample = detection_scale(width, height, self.config)
        small = image
        if scale < 1.0:
            small = cv2.resize(
                image,
                (max(1, round(width * scale)), max(1, round(height * scale))),
                interpolation=cv2.INTER_AREA,
            )
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        found = self._run(rgb, upsample)
        to_src_x = src_w / small.shape[1]
        to_src_y = src_h / small.shape[0]
        faces = []
        for left, top, right, bottom, score in found:
            det = Detection(
                left=left * to_src_x,
                top=top * to_src_y,
                right=right * to_src_x,
                bottom=bottom * to_src_y,
                score=score,
            )
            if det.width >= self.config.min_face_size and det.score >= self.config.min_score:
                faces.append(det)
        return faces

    def _run(
        self, rgb: np.ndarray, upsample: int
    ) -> list[tuple[float, float, float, float, float]]:
        if self.config.model is DetectorModel.CNN:
            cnn = dlib_models.per_thread(dlib_models.CNN_DETECTOR)
            return [
                (r.rect.left(), r.rect.top(), r.rect.right() + 1, r.rect.bottom() + 1, r.confidence)
                for r in cnn(rgb, upsample)
            ]
        hog = dlib_models.per_thread("hog")
        # A negative threshold lets min_score filter afterwards; dlib's own
        # default (0) is kept when min_score is 0.
        rects, scores, _ = hog.run(rgb, upsample, min(0.0, self.config.min_score))
        return [
            (r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(s))
            for r, s in zip(rects, scores, strict=True)
        ]

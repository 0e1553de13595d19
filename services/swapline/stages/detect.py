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

from swapline.errors import InvalidInputError
from swapline.media import grey
from swapline.stages import dlib_models


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


# A box (left, top, right, bottom) and its score, in frame pixels: what stages
# exchange.
Scored = tuple[float, float, float, float, float]

# Searching near a known face: the caller has already scaled the region so
# that the face is about NEAR_FACE_SIDE pixels, so no further resizing.
NEAR_CONFIG = DetectorConfig(max_side=8192, upsample=0)
NEAR_FACE_SIDE = 100  # dlib's HOG window is 80 px: room for the face to shrink


@dataclass(frozen=True)
class DetectInput:
    """A frame, or a region of one, to search for faces.

    ``image`` may be rescaled: it covers ``source_size`` frame pixels (None =
    its own size) from ``origin``, and boxes come back in frame pixels.
    """

    index: int
    image: np.ndarray
    origin: tuple[float, float] = (0.0, 0.0)
    source_size: tuple[int, int] | None = None


def near_region(
    index: int,
    frame: np.ndarray,
    box: tuple[float, float, float, float],
    margin: float = 0.4,
) -> DetectInput:
    """The part of ``frame`` around a face box (``margin`` of the box size on
    each side), scaled so that the face is about NEAR_FACE_SIDE pixels: a
    fraction of the cost of searching the whole frame, for a face that was
    at ``box`` a few frames ago."""
    left, top, right, bottom = box
    height, width = frame.shape[:2]
    side = max(right - left, bottom - top, 1.0)
    pad = margin * side
    x0, y0 = max(0, int(left - pad)), max(0, int(top - pad))
    x1, y1 = min(width, int(np.ceil(right + pad))), min(height, int(np.ceil(bottom + pad)))
    region = frame[y0:y1, x0:x1]
    scale = min(4.0, NEAR_FACE_SIDE / side)
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    return DetectInput(
        index,
        cv2.resize(region, size, interpolation=cv2.INTER_LINEAR),
        (float(x0), float(y0)),
        (x1 - x0, y1 - y0),
    )


def merge_detections(found: list[Detection], overlap: float = 0.5) -> list[Detection]:
    """Drops boxes overlapping a higher-scored one (IoU above ``overlap``):
    the same face found from two nearby regions."""
    kept: list[Detection] = []
    for det in sorted(found, key=lambda d: d.score, reverse=True):
        if all(_iou(det, other) <= overlap for other in kept):
            kept.append(det)
    return kept


def _iou(a: Detection, b: Detection) -> float:
    w = min(a.right, b.right) - max(a.left, b.left)
    h = min(a.bottom, b.bottom) - max(a.top, b.top)
    inter = max(0.0, w) * max(0.0, h)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


class FaceDetector:
    """Finds every face in a BGR frame.

    Callers may pass an already downscaled image together with the size of
    the frame it came from (``source_size``), or a region of the frame with
    its top-left corner (``origin``); boxes are reported in the source
    frame's pixels.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.config.validate()

    @property
    def model_name(self) -> str:
        """The dlib model it runs (see :mod:`swapline.stages.dlib_models`)."""
        if self.config.model is DetectorModel.CNN:
            return dlib_models.CNN_DETECTOR
        return dlib_models.HOG

    def detect(
        self,
        image: np.ndarray,
        source_size: tuple[int, int] | None = None,
        origin: tuple[float, float] = (0.0, 0.0),
    ) -> list[Detection]:
        if image.dtype != np.uint8 or not (
            image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
        ):
            raise InvalidInputError("detector expects a BGR or grey uint8 image")
        height, width = image.shape[:2]
        src_w, src_h = source_size or (width, height)
        scale, upsample = detection_scale(width, height, self.config)
        small = image if self.reads_colour else grey(image)
        if scale < 1.0:
            small = cv2.resize(
                small,
                (max(1, round(width * scale)), max(1, round(height * scale))),
                interpolation=cv2.INTER_AREA,
            )
        found = self._run(small, upsample)
        to_src_x = src_w / small.shape[1]
        to_src_y = src_h / small.shape[0]
        faces = []
        for left, top, right, bottom, score in found:
            det = Detection(
                left=origin[0] + left * to_src_x,
                top=origin[1] + top * to_src_y,
                right=origin[0] + right * to_src_x,
                bottom=origin[1] + bottom * to_src_y,
                score=score,
            )
            if det.width >= self.config.min_face_size and det.score >= self.config.min_score:
                faces.append(det)
        return faces

    @property
    def reads_colour(self) -> bool:
        """Whether colour helps: HOG reads intensity only, so callers may
        send grey images (a third of the bytes)."""
        return self.config.model is DetectorModel.CNN

    def _run(
        self, image: np.ndarray, upsample: int
    ) -> list[tuple[float, float, float, float, float]]:
        """Boxes in ``image``: grey for HOG (see :meth:`detect`), either for the CNN."""
        if self.config.model is DetectorModel.CNN:
            code = cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB
            rgb = cv2.cvtColor(image, code)
            with dlib_models.using(dlib_models.CNN_DETECTOR) as cnn:
                found = cnn(rgb, upsample)
            return [
                (r.rect.left(), r.rect.top(), r.rect.right() + 1, r.rect.bottom() + 1, r.confidence)
                for r in found
            ]
        with dlib_models.using(dlib_models.HOG) as hog:
            # A negative threshold lets min_score filter afterwards; dlib's
            # own default (0) is kept when min_score is 0.
            rects, scores, _ = hog.run(image, upsample, min(0.0, self.config.min_score))
        return [
            (r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(s))
            for r, s in zip(rects, scores, strict=True)
        ]

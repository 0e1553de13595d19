"""Following faces through the frames where detection misses them.

A hand, a microphone or sunglasses over part of a face, motion blur or a
quick turn make the detector lose a face for a few frames in the middle of
a shot; leaving those frames alone would show the real face for a moment in
the middle of a swapped one. The follower carries each face the detector
found in the previous frame into the next frame when no detection there
overlaps it: its box moves with the optical flow of the face's own pixels
(pyramidal Lucas-Kanade with a forward-backward check), or stays where it
was when the flow does not hold (a flash, heavy blur), for at most
``max_frames`` frames in a row. It stops at a scene cut.

Boxes it carries are marked with :data:`FOLLOWED_SCORE`; the pipeline
keeps such a face only once the detector finds the same track again later
(the gap is bridged), never for a face that left.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from swapline.stages.track import box_iou

Box = tuple[float, float, float, float]
Scored = tuple[float, float, float, float, float]

# The score of a box the follower carried, not the detector found (detector
# scores are never negative).
FOLLOWED_SCORE = -1.0
DEFAULT_MAX_FRAMES = 15  # half a second at 30 frames/s
_MATCH_IOU = 0.3
# Correlation of two frames' 32x18 thumbnails below which they are taken
# for different shots (a flash or a fade changes brightness, not layout).
_CUT_CORRELATION = 0.6
_FLAT = 2.0  # levels of spread: a picture with nothing in it
_MIN_POINTS = 8
_MIN_SHARE = 0.4  # of the points found, tracked both ways
_FB_ERROR = 1.0  # pixels at the flow's scale, forward-backward
_FLOW_SIDE = 96.0  # a face's size, in pixels, where the flow is measured


@dataclass
class _Followed:
    box: np.ndarray  # left, top, right, bottom
    missed: int  # frames in a row carried without a detection


def is_followed(score: float) -> bool:
    return score == FOLLOWED_SCORE


def _thumbnail(grey: np.ndarray) -> np.ndarray:
    small: np.ndarray = cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


def _normalised(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit spread, as 8 bits (3 spreads either side): a flash
    or a fade no longer changes what flow and comparisons see."""
    values = image.astype(np.float32)
    spread = float(values.std()) or 1.0
    scaled = (values - float(values.mean())) / spread * (127.5 / 3) + 127.5
    return np.clip(scaled, 0, 255).astype(np.uint8)


def scene_cut(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether two consecutive grey frames belong to different shots."""
    a, b = _thumbnail(before).ravel(), _thumbnail(after).ravel()
    if min(a.std(), b.std()) < _FLAT:
        return True  # a fade to a flat picture (black): nothing to follow
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b)) < _CUT_CORRELATION


def flow_box(before: np.ndarray, after: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """Where ``box`` (a face in grey frame ``before``) went in ``after``:
    moved and scaled by the median optical flow of the points inside it.
    None when too few points are tracked both ways."""
    height, width = before.shape[:2]
    left, top, right, bottom = box
    size = max(right - left, bottom - top)
    # Both frames cut to the box and a margin of a face's size around it,
    # and scaled so that the face spans about _FLOW_SIDE pixels: the
    # pyramids cover the region, and blur and large motion stay small.
    x0, y0 = max(0, int(left - size)), max(0, int(top - size))
    x1, y1 = min(width, int(right + size) + 1), min(height, int(bottom + size) + 1)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    scale = min(1.0, _FLOW_SIDE / max(size, 1.0))
    shape = (max(16, round((x1 - x0) * scale)), max(16, round((y1 - y0) * scale)))
    a, b = (
        _normalised(cv2.resize(image[y0:y1, x0:x1], shape, interpolation=cv2.INTER_AREA))
        for image in (before, after)
    )
    sx, sy = shape[0] / (x1 - x0), shape[1] / (y1 - y0)
    mask = np.zeros_like(a)
    mask[
        max(0, int((top - y0) * sy)) : int((bottom - y0) * sy) + 1,
        max(0, int((left - x0) * sx)) : int((right - x0) * sx) + 1,
    ] = 255
    points = cv2.goodFeaturesToTrack(a, 60, 0.01, 3.0, mask=mask)
    if points is None or len(points) < _MIN_POINTS:
        return None
    lk = cv2.calcOpticalFlowPyrLK
    window = (15, 15)
    moved, status, _ = lk(a, b, points, None, winSize=window, maxLevel=2)  # type: ignore[call-overload]
    back, status_back, _ = lk(b, a, moved, None, winSize=window, maxLevel=2)  # type: ignore[call-overload]
    good = (
        (status[:, 0] == 1)
        & (status_back[:, 0] == 1)
        & (np.linalg.norm((back - points)[:, 0], axis=1) < _FB_ERROR)
    )
    if good.sum() < max(_MIN_POINTS, _MIN_SHARE * len(points)):
        return None
    p0, p1 = points[good, 0].astype(np.float64), moved[good, 0].astype(np.float64)
    shift = np.median(p1 - p0, axis=0) / np.array([sx, sy])
    spread0 = np.linalg.norm(p0 - p0.mean(0), axis=1)
    spread1 = np.linalg.norm(p1 - p1.mean(0), axis=1)
    spread = spread0 > 1
    growth = float(np.median(spread1[spread] / spread0[spread])) if spread.any() else 1.0
    growth = min(max(growth, 0.8), 1.25)
    centre = np.array([(left + right) / 2, (top + bottom) / 2]) + shift
    half = np.array([right - left, bottom - top]) * growth / 2
    moved_box = np.concatenate([centre - half, centre + half])
    if moved_box[2] <= 0 or moved_box[3] <= 0 or moved_box[0] >= width or moved_box[1] >= height:
        return None  # it left the picture
    return moved_box


class FaceFollower:
    """Carries faces through detection misses, frame after frame.

    Call :meth:`update` once per frame, in order, with the frame's grey
    picture and the boxes detected in it; it returns those boxes and, after
    them, the boxes it carried (score :data:`FOLLOWED_SCORE`).
    """

    def __init__(self, max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        self.max_frames = max_frames
        self._faces: list[_Followed] = []
        self._grey: np.ndarray | None = None

    def update(self, grey: np.ndarray, found: list[Scored]) -> list[Scored]:
        previous, self._grey = self._grey, grey
        detected = [np.asarray(b[:4], np.float64) for b in found]
        lost = [
            face
            for face in self._faces
            if not any(box_iou(face.box, box) >= _MATCH_IOU for box in detected)
        ]
        carried: list[_Followed] = []
        if (
            lost
            and previous is not None
            and previous.shape == grey.shape
            and not scene_cut(previous, grey)
        ):
            for face in lost:
                if face.missed >= self.max_frames:
                    continue
                # Where the flow does not hold (a flash, heavy blur) the face
                # stays where it was: it is kept only if found again there.
                box = flow_box(previous, grey, face.box)
                box = face.box if box is None else box
                if not any(box_iou(box, d) > 0 for d in detected):
                    carried.append(_Followed(box, face.missed + 1))
        self._faces = [_Followed(box, 0) for box in detected] + carried
        followed: list[Scored] = [
            (float(b[0]), float(b[1]), float(b[2]), float(b[3]), FOLLOWED_SCORE)
            for b in (face.box for face in carried)
        ]
        return list(found) + followed


class ShotCuts:
    """Where shots change, for what must not carry over a cut (whose face a
    track is). More eager than :func:`scene_cut`, which keeps the follower
    going through flashes: a frame starts a new shot at a scene cut, or when
    the picture (a 32x18 thumbnail, mean difference over ``picture_change``
    levels) and its brightness histogram (L1 distance over
    ``histogram_change``) both change, which also catches a cut between two
    shots alike in layout (Ben_Stiller_Owen_Wilson.mp4, frame 205) and
    takes a camera flash for a cut too. A pan changes the picture only
    (at most 13 levels and 0.11 on the bundled clips)."""

    def __init__(self, picture_change: float = 20.0, histogram_change: float = 0.3) -> None:
        self.picture_change = picture_change
        self.histogram_change = histogram_change
        self.shot = 0
        self._grey: np.ndarray | None = None
        self._histogram: np.ndarray | None = None

    def update(self, grey: np.ndarray) -> bool:
        """Whether ``grey`` (the next frame) starts a new shot; counts shots."""
        # Measured on a 128x72 copy: a fraction of a millisecond at 1080p.
        grey = cv2.resize(grey, (128, 72), interpolation=cv2.INTER_AREA)
        counts = cv2.calcHist([grey], [0], None, [16], [0, 256]).ravel()
        histogram: np.ndarray = counts / max(float(counts.sum()), 1.0)
        previous, self._grey = self._grey, grey
        last, self._histogram = self._histogram, histogram
        if previous is None or last is None:
            return False
        picture = float(np.abs(_thumbnail(grey) - _thumbnail(previous)).mean())
        brightness = float(np.abs(histogram - last).sum())
        cut = scene_cut(previous, grey) or (
            picture > self.picture_change and brightness > self.histogram_change
        )
        if cut:
            self.shot += 1
        return cut

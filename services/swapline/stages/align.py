"""68-point landmarks, similarity alignment to a canonical template, masks and
face embeddings.

The template is the mean dlib 68-point shape of frontal frames from the
bundled development clips (generalised Procrustes), normalised so that the
51 inner points (brows, eyes, nose, mouth) span the unit square. Alignment
fits those 51 points with Umeyama's least-squares similarity transform; the
jaw line is left out of the fit because it moves with pose and expression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import cv2
import dlib
import numpy as np

from swapline.errors import InvalidInputError
from swapline.media import grey
from swapline.stages import dlib_models
from swapline.stages.track import DEFAULT_MAX_GAP, DEFAULT_SMOOTHING, FaceTracker

# fmt: off
TEMPLATE_68 = np.array([
    [-0.1023, 0.2737], [-0.1005, 0.4356], [-0.0804, 0.5974], [-0.0476, 0.7525],
    [0.0048, 0.8975], [0.0885, 1.0273], [0.1981, 1.1356], [0.3268, 1.2178],
    [0.473, 1.2478], [0.6172, 1.2242], [0.7421, 1.1432], [0.8451, 1.0321],
    [0.9257, 0.9009], [0.979, 0.7545], [1.0187, 0.6011], [1.049, 0.4423],
    [1.0585, 0.2809], [0.0129, 0.0857], [0.0905, 0.02], [0.1965, 0.0],
    [0.3047, 0.0156], [0.4035, 0.0631], [0.6151, 0.0645], [0.7126, 0.0197],
    [0.8177, 0.0038], [0.9194, 0.0265], [0.9871, 0.0991], [0.5055, 0.2166],
    [0.5051, 0.3223], [0.5054, 0.4264], [0.5054, 0.5324], [0.3911, 0.6259],
    [0.4433, 0.646], [0.4983, 0.6616], [0.5537, 0.6482], [0.6041, 0.6287],
    [0.1205, 0.2417], [0.1892, 0.197], [0.2736, 0.1998], [0.3463, 0.26],
    [0.2684, 0.2757], [0.1833, 0.2749], [0.6526, 0.2595], [0.7262, 0.1996],
    [0.811, 0.1964], [0.8766, 0.2422], [0.816, 0.2754], [0.731, 0.2759],
    [0.2789, 0.862], [0.3534, 0.7944], [0.4366, 0.7634], [0.4938, 0.7805],
    [0.5505, 0.7667], [0.6285, 0.8022], [0.6998, 0.8718], [0.6289, 0.9607],
    [0.5516, 0.995], [0.4891, 1.0], [0.4253, 0.9917], [0.347, 0.951],
    [0.3151, 0.8613], [0.4344, 0.8303], [0.4924, 0.8358], [0.5493, 0.8345],
    [0.6626, 0.8714], [0.5497, 0.9026], [0.4914, 0.908], [0.4318, 0.8998],
], dtype=np.float64)
# fmt: on

FIT_POINTS = slice(17, 68)
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
MIN_CROP_SIZE = 64
MAX_CROP_SIZE = 512


class FaceType(StrEnum):
    FULL = "full"  # brows to chin
    WHOLE = "whole"  # FULL plus forehead


# The square each face type cuts out, in template units: centre and half side.
_CROP_SQUARE: dict[FaceType, tuple[float, float, float]] = {
    FaceType.FULL: (0.48, 0.62, 0.82),
    FaceType.WHOLE: (0.48, 0.45, 0.98),
}


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale,
    translation) taking ``src`` points onto ``dst``, as a 2x3 matrix.

    Umeyama, "Least-squares estimation of transformation parameters between
    two point patterns", PAMI 1991.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mean_src, mean_dst = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = float((s * d).sum() / var_src) if var_src > 0 else 1.0
    translation = mean_dst - scale * rotation @ mean_src
    return np.hstack([scale * rotation, translation[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def frame_to_crop_matrix(landmarks: np.ndarray, size: int, face_type: FaceType) -> np.ndarray:
    """The matrix taking frame pixels to a ``size`` x ``size`` aligned crop."""
    to_template = umeyama(landmarks[FIT_POINTS], TEMPLATE_68[FIT_POINTS])
    cx, cy, half = _CROP_SQUARE[face_type]
    # template -> crop: shift the square's corner to 0 and scale to `size`.
    k = size / (2 * half)
    template_to_crop = np.array([[k, 0.0, -(cx - half) * k], [0.0, k, -(cy - half) * k]])
    return _compose(template_to_crop, to_template)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The affine map x -> outer(inner(x))."""
    return np.hstack(
        [outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]]
    )


def hull_mask(crop_landmarks: np.ndarray, size: int, face_type: FaceType) -> np.ndarray:
    """A filled convex hull of the landmarks in crop pixels (GRAY8 0/255).

    For WHOLE faces the hull is extended over the forehead by lifting the
    brow points away from the chin by half the brow-to-nose-tip distance.
    """
    points = crop_landmarks
    if face_type is FaceType.WHOLE:
        brows = crop_landmarks[17:27]
        nose_tip = crop_landmarks[30]
        chin = crop_landmarks[8]
        up = nose_tip - chin
        up /= max(np.linalg.norm(up), 1e-6)
        lift = np.linalg.norm(brows.mean(0) - nose_tip) * 0.9
        points = np.vstack([crop_landmarks, brows + up * lift])
    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(points * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, (255,), lineType=cv2.LINE_AA, shift=4)
    return mask


@dataclass(frozen=True)
class AlignedCrop:
    crop: np.ndarray | None  # size x size x 3, BGR uint8
    mask: np.ndarray | None  # size x size, uint8
    frame_to_crop: np.ndarray  # 2x3
    crop_to_frame: np.ndarray  # 2x3
    crop_landmarks: np.ndarray  # 68x2


def validate_crop_request(size: int, face_type: FaceType) -> None:
    if not MIN_CROP_SIZE <= size <= MAX_CROP_SIZE:
        raise InvalidInputError(
            f"crop size must be in {MIN_CROP_SIZE}..{MAX_CROP_SIZE}, got {size}"
        )
    if face_type not in _CROP_SQUARE:
        raise InvalidInputError(f"unsupported face type {face_type}")


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = 256,
    face_type: FaceType = FaceType.WHOLE,
    origin: tuple[float, float] = (0.0, 0.0),
    with_crop: bool = True,
    with_mask: bool = True,
) -> AlignedCrop:
    """Warps the face with these frame-coordinate landmarks to the template.

    ``image`` may be a region of the frame whose top-left corner sits at
    ``origin`` in the frame; matrices are always frame <-> crop.
    """
    validate_crop_request(size, face_type)
    frame_to_crop = frame_to_crop_matrix(landmarks, size, face_type)
    crop_to_frame = invert_affine(frame_to_crop)
    crop_landmarks = transform_points(frame_to_crop, landmarks)
    crop = warp_crop(image, frame_to_crop, size, origin) if with_crop else None
    mask = hull_mask(crop_landmarks, size, face_type) if with_mask else None
    return AlignedCrop(crop, mask, frame_to_crop, crop_to_frame, crop_landmarks)


def warp_crop(
    image: np.ndarray,
    frame_to_crop: np.ndarray,
    size: int,
    origin: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """The ``size`` x ``size`` crop that ``frame_to_crop`` cuts from
    ``image``, a region of the frame whose top-left corner is ``origin``."""
    region_to_crop = np.array(frame_to_crop, np.float64)
    region_to_crop[:, 2] += region_to_crop[:, :2] @ np.asarray(origin, np.float64)
    crop: np.ndarray = cv2.warpAffine(
        image,
        region_to_crop,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return crop


def find_landmarks(
    image: np.ndarray,
    box: tuple[float, float, float, float],
    origin: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """The 68 landmarks (frame coordinates) of the face in ``box``.

    ``image`` is the frame or a region of it whose top-left corner sits at
    ``origin``, BGR or grey (the predictor reads intensity only); ``box`` is
    in frame coordinates.
    """
    ox, oy = origin
    left, top, right, bottom = box
    rect = dlib.rectangle(
        round(left - ox), round(top - oy), round(right - ox) - 1, round(bottom - oy) - 1
    )
    with dlib_models.using(dlib_models.LANDMARKS_68) as predictor:
        shape = predictor(grey(image), rect)
    points = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
    return points + np.array([ox, oy])


EMBEDDING_CHIP = 150  # the side of the face chip dlib's embedding network reads


def face_chip(
    image: np.ndarray, landmarks: np.ndarray, origin: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """The 150 px RGB face chip dlib's embedding network reads, cut from
    ``image`` (BGR, its top-left corner at ``origin`` in frame coordinates)
    around the face's 68 landmarks: what travels to an embedding stage
    instead of the frame."""
    local: np.ndarray = landmarks - np.asarray(origin, np.float64)
    points = dlib.points([dlib.point(round(float(x)), round(float(y))) for x, y in local])
    left, top = local.min(0)
    right, bottom = local.max(0)
    rect = dlib.rectangle(round(left), round(top), round(right), round(bottom))
    shape = dlib.full_object_detection(rect, points)
    chip: np.ndarray = dlib.get_face_chip(_rgb(image), shape, size=EMBEDDING_CHIP, padding=0.25)
    return chip


def chip_embeddings(chips: Sequence[np.ndarray]) -> np.ndarray:
    """dlib's 128-D face embeddings of :func:`face_chip` chips, [N, 128]
    (distances below ~0.6 mean the same person)."""
    for chip in chips:
        if chip.shape != (EMBEDDING_CHIP, EMBEDDING_CHIP, 3) or chip.dtype != np.uint8:
            raise InvalidInputError(
                f"a face chip must be {EMBEDDING_CHIP}x{EMBEDDING_CHIP} RGB uint8, "
                f"got {chip.shape} {chip.dtype}"
            )
    if not chips:
        return np.zeros((0, 128), np.float32)
    with dlib_models.using(dlib_models.FACE_EMBEDDING) as model:
        found = model.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
    return np.array([np.array(d, np.float32) for d in found], np.float32)


def face_embedding(
    image: np.ndarray, landmarks: np.ndarray, origin: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """dlib's 128-D face embedding (distances below ~0.6 mean the same person)."""
    embedding: np.ndarray = chip_embeddings([face_chip(image, landmarks, origin)])[0]
    return embedding


def _rgb(image: np.ndarray) -> np.ndarray:
    rgb: np.ndarray = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return rgb


def region_around(
    box: tuple[float, float, float, float],
    frame_size: tuple[int, int],
    margin: float = 0.6,
) -> tuple[int, int, int, int]:
    """An integer frame rectangle (x0, y0, x1, y1) around a face box with
    ``margin`` (fraction of the box size) on each side, clipped to the frame.

    This is what a caller cuts out and sends instead of the whole frame; the
    margin covers a WHOLE crop's forehead and the landmark search.
    """
    left, top, right, bottom = box
    width, height = frame_size
    pad = margin * max(right - left, bottom - top)
    x0 = max(0, int(np.floor(left - pad)))
    y0 = max(0, int(np.floor(top - pad)))
    x1 = min(width, int(np.ceil(right + pad)))
    y1 = min(height, int(np.ceil(bottom + pad)))
    return x0, y0, x1, y1


@dataclass(frozen=True)
class AlignOptions:
    size: int = 256
    face_type: FaceType = FaceType.WHOLE
    smoothing: float = DEFAULT_SMOOTHING
    with_crop: bool = True
    with_mask: bool = True
    embeddings: bool = False

    def validate(self) -> None:
        validate_crop_request(self.size, self.face_type)
        if not 0.0 <= self.smoothing <= 1.0:
            raise InvalidInputError(f"smoothing must be in 0..1, got {self.smoothing}")


@dataclass(frozen=True)
class RegionInput:
    """A face to align: a region of its frame (or the whole frame) and the
    detected box, both placed in frame coordinates."""

    frame_index: int
    face_index: int
    image: np.ndarray
    origin: tuple[float, float]
    box: tuple[float, float, float, float]
    score: float = 0.0


@dataclass(frozen=True)
class Measurement:
    landmarks: np.ndarray  # 68x2, frame coordinates
    embedding: np.ndarray | None


@dataclass(frozen=True)
class AlignedFace:
    frame_index: int
    face_index: int
    track_id: int
    landmarks: np.ndarray  # frame coordinates, smoothed along the track
    raw_landmarks: np.ndarray  # as measured in this frame
    aligned: AlignedCrop
    box: tuple[float, float, float, float]
    score: float
    embedding: np.ndarray | None


class AlignSession:
    """Aligns the faces of one video, frame after frame.

    Tracking and smoothing carry over between calls, so one session serves a
    whole video; give it frames in order, every face of a frame in one call.
    """

    def __init__(self, options: AlignOptions | None = None, frame_step: int = 1) -> None:
        """``frame_step``: the frames given are every n-th of the video
        (a face missed in two of them still ends its track)."""
        self.options = options or AlignOptions()
        self.options.validate()
        self.tracker = FaceTracker(self.options.smoothing, max_gap=DEFAULT_MAX_GAP * frame_step)

    def measure(self, regions: Sequence[RegionInput]) -> list[Measurement]:
        """Per-frame work with no state: landmarks (and embeddings if asked).

        Safe to run for many frames in parallel; :meth:`align` then consumes
        the measurements in frame order.
        """
        measured = []
        for region in regions:
            _check_region(region, self.options)
            landmarks = find_landmarks(region.image, region.box, region.origin)
            embedding = (
                face_embedding(region.image, landmarks, region.origin)
                if self.options.embeddings
                else None
            )
            measured.append(Measurement(landmarks, embedding))
        return measured

    def align(
        self,
        regions: Sequence[RegionInput],
        measured: Sequence[Measurement] | None = None,
    ) -> list[AlignedFace]:
        """One result per region, in input order: track, smooth, warp."""
        if measured is None:
            measured = self.measure(regions)
        results: list[AlignedFace | None] = [None] * len(regions)
        by_frame: dict[int, list[int]] = {}
        for i, region in enumerate(regions):
            by_frame.setdefault(region.frame_index, []).append(i)
        for frame_index in sorted(by_frame):
            members = by_frame[frame_index]
            tracked = self.tracker.update(
                float(frame_index),
                [(np.asarray(regions[i].box), measured[i].landmarks) for i in members],
            )
            for i, track in zip(members, tracked, strict=True):
                region = regions[i]
                aligned = align_face(
                    region.image,
                    track.landmarks,
                    self.options.size,
                    self.options.face_type,
                    region.origin,
                    with_crop=self.options.with_crop,
                    with_mask=self.options.with_mask,
                )
                results[i] = AlignedFace(
                    frame_index=region.frame_index,
                    face_index=region.face_index,
                    track_id=track.track_id,
                    landmarks=track.landmarks,
                    raw_landmarks=measured[i].landmarks,
                    aligned=aligned,
                    box=region.box,
                    score=region.score,
                    embedding=measured[i].embedding,
                )
        return [r for r in results if r is not None]


def _check_region(region: RegionInput, options: AlignOptions) -> None:
    image = region.image
    if image.dtype != np.uint8 or not (
        image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
    ):
        raise InvalidInputError("face region must be a BGR or grey uint8 image")
    if image.ndim == 2 and (options.with_crop or options.embeddings):
        raise InvalidInputError(
            "a grey face region gives landmarks only: crops and embeddings need colour"
        )
    left, top, right, bottom = region.box
    if not (right > left and bottom > top) or not all(np.isfinite(region.box)):
        raise InvalidInputError(f"invalid face box {region.box}")
    ox, oy = region.origin
    height, width = image.shape[:2]
    # The box must overlap the region it is searched in.
    if right <= ox or bottom <= oy or left >= ox + width or top >= oy + height:
        raise InvalidInputError(f"face box {region.box} lies outside its region")

"""What travels between the pipeline's steps, and the two geometric steps
between them: cutting a face's crop out of its frame (:func:`cut_face`) and
the frame rectangle a swapped face is blended into (:func:`blend_area`)."""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from swapline.media import Frame
from swapline.stages.align import AlignedFace, warp_crop
from swapline.stages.blend import BlendItem, BlendOptions, mask_footprint, roi_of


@dataclass(frozen=True)
class FrameSlot:
    """A frame past analysis: its place in the output and, when the encoder
    runs in this process, its decoded picture. The full image is dropped:
    what blending needs of it travels in each face's ``Cut``."""

    index: int
    decoded: av.VideoFrame | None = None


@dataclass(frozen=True)
class Cut:
    """An aligned face, its crop (cut from the frame's colour pixels) and
    the frame rectangle the crop lands on (``origin``, ``size``), with the
    frame's pixels there when blending needs them (seamless cloning): all
    that swapping and blending need of the frame."""

    face: AlignedFace
    crop: np.ndarray
    origin: tuple[int, int]
    size: tuple[int, int]
    roi: np.ndarray | None
    model: str = ""  # the model that draws this face (set when it is judged)


# A window past analysis: its frames and the faces in it to swap.
Judged = tuple[list[FrameSlot], list[Cut]]


@dataclass(frozen=True)
class Swapped:
    """A judged window with its faces swapped (one row per cut)."""

    frames: list[FrameSlot]
    cuts: list[Cut]
    faces: np.ndarray | None
    masks: np.ndarray | None


def cut_face(frame: Frame, face: AlignedFace, size: int, keep_pixels: bool) -> Cut | None:
    """``face``'s crop, cut from the colour pixels of the frame rectangle it
    lands on (not all of the frame converted to BGR), with where that
    rectangle is and, if ``keep_pixels`` (seamless cloning), its pixels.
    None when the crop lands outside the frame."""
    x0, y0, x1, y1 = roi_of(face.aligned.crop_to_frame, size, frame.size)
    if x1 <= x0 or y1 <= y0:
        return None
    pixels = frame.region(x0, y0, x1, y1)
    crop = warp_crop(pixels, face.aligned.frame_to_crop, size, (x0, y0))
    roi = np.ascontiguousarray(pixels) if keep_pixels else None
    return Cut(face, crop, (x0, y0), (x1 - x0, y1 - y0), roi)


def blend_area(
    cut: Cut, swapped: np.ndarray, mask: np.ndarray, size: int, options: BlendOptions
) -> BlendItem | None:
    """The blend of one swapped face, over only the part of its cut that the
    blended face can cover (its mask widened by the feathering). None when
    that part is empty."""
    face = cut.face
    footprint = mask_footprint(size, mask, face.aligned.mask, options)
    cx, cy = cut.origin
    x0, y0, x1, y1 = roi_of(
        face.aligned.crop_to_frame - np.array([[0, 0, cx], [0, 0, cy]]),
        size,
        cut.size,
        footprint=footprint,
    )
    if x1 <= x0 or y1 <= y0:
        return None
    return BlendItem(
        face.frame_index,
        face.face_index,
        (cx + x0, cy + y0),
        (x1 - x0, y1 - y0),
        cut.crop,
        swapped,
        mask,
        face.aligned.mask,
        face.aligned.crop_to_frame,
        None if cut.roi is None else cut.roi[y0:y1, x0:x1],
    )

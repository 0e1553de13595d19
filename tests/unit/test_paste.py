"""Pasting patches into decoded YUV frames and cutting patches to their alpha."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from swapline.stages.blend import trim_to_alpha
from swapline.stages.encode import Patch, paste_yuv


def first_frame(data: Path) -> av.VideoFrame:
    with av.open(str(data / "d10.mp4")) as container:
        frame = next(container.decode(video=0))
        return frame.reformat(format="yuv420p")


def disc_patch(size: int, radius: int) -> np.ndarray:
    """A red BGRA square, opaque inside a feathered disc, clear outside."""
    alpha = np.zeros((size, size), np.uint8)
    cv2.circle(alpha, (size // 2, size // 2), radius, 255, -1)
    patch = np.zeros((size, size, 4), np.uint8)
    patch[..., 2] = 255
    patch[..., 3] = cv2.GaussianBlur(alpha, (9, 9), 0)
    return patch


def test_only_pixels_under_the_alpha_change(data: Path) -> None:
    frame = first_frame(data)
    before = frame.to_ndarray()
    height, width = frame.height, frame.width
    origin = (101, 51)  # odd: the chroma rectangle has to widen to even
    patch = disc_patch(120, 40)
    after = paste_yuv(frame, [Patch(origin, patch)]).to_ndarray()

    covered = np.zeros((height, width), bool)
    covered[origin[1] : origin[1] + 120, origin[0] : origin[0] + 120] = patch[..., 3] > 0
    luma_changed = before[:height] != after[:height]
    assert luma_changed[covered].mean() > 0.5  # the red disc went in
    assert not luma_changed[~covered].any()  # nothing else moved, not even by one level

    chroma_covered = covered.reshape(height // 2, 2, width // 2, 2).any(axis=(1, 3))
    for plane in (slice(height, height + height // 4), slice(height + height // 4, None)):
        changed = (before[plane] != after[plane]).reshape(height // 2, width // 2)
        assert changed[chroma_covered].any() and not changed[~chroma_covered].any()


def test_a_frame_without_patches_passes_through(data: Path) -> None:
    frame = first_frame(data)
    passed = paste_yuv(frame, [])
    assert np.array_equal(passed.to_ndarray(), frame.to_ndarray())
    assert passed.pict_type == av.video.frame.PictureType.NONE  # encoder picks frame types


def test_trim_to_alpha_cuts_to_the_covered_rectangle() -> None:
    patch = disc_patch(120, 30)
    cut, (dx, dy) = trim_to_alpha(patch)
    ys, xs = np.nonzero(patch[..., 3])
    assert (dx, dy) == (xs.min(), ys.min())
    assert cut.shape[:2] == (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    assert np.array_equal(cut, patch[dy : dy + cut.shape[0], dx : dx + cut.shape[1]])
    clear = np.zeros((10, 10, 4), np.uint8)
    assert trim_to_alpha(clear)[0] is clear  # nothing to cut: the encoder skips it
    opaque = np.zeros((10, 10, 3), np.uint8)
    assert trim_to_alpha(opaque) == (opaque, (0, 0))

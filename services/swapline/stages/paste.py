"""Pasting blended patches into frames: over BGR pictures (:func:`paste`)
and straight into decoded Y'CbCr planes (:func:`paste_yuv`), where only the
pixels a patch's alpha covers change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import av
import cv2
import numpy as np
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from swapline.errors import InvalidInputError
from swapline.media import yuv_planes
from swapline.stages.blend import composite_patch, trim_to_alpha


@dataclass(frozen=True)
class Patch:
    """Blended pixels to paste at ``origin`` (x, y) of one frame: BGR replaces
    the pixels, BGRA is composited with its alpha."""

    origin: tuple[int, int]
    image: np.ndarray


def paste(image: np.ndarray, patches: Iterable[Patch]) -> np.ndarray:
    for patch in patches:
        x, y = patch.origin
        h, w = patch.image.shape[:2]
        if x < 0 or y < 0 or y + h > image.shape[0] or x + w > image.shape[1]:
            raise InvalidInputError(f"patch at {patch.origin} of {w}x{h} leaves the frame")
        if patch.image.ndim == 3 and patch.image.shape[2] == 4:
            under = image[y : y + h, x : x + w]
            image[y : y + h, x : x + w] = composite_patch(
                under, patch.image[..., :3], patch.image[..., 3]
            )
        else:
            image[y : y + h, x : x + w] = patch.image
    return image


# BGR -> chroma (U, V), ITU-R BT.601 limited range as in OpenCV's I420
# conversions and H.264's yuv420p; the 128 offset is added separately.
_BGR_TO_CHROMA = np.array([[112.0, -74.203, -37.797], [-18.214, -93.786, 112.0]], np.float32) / 255


def paste_yuv(
    frame: av.VideoFrame, patches: list[Patch], converter: VideoReformatter | None = None
) -> av.VideoFrame:
    """Pastes patches into a copy of a frame's YUV 4:2:0 planes, compositing
    in Y'CbCr: the patch is converted, never the frame. Luma is blended per
    pixel; each chroma sample gets the alpha-weighted mean of the patch's
    chroma over its four pixels. Pixels and chroma samples no patch covers
    keep the decoded source's exact values (a BGR round trip of the whole
    frame would cost about 3 dB)."""
    if frame.format.name != "yuv420p":
        frame = (converter or VideoReformatter()).reformat(frame, format="yuv420p", threads=1)
    if not patches:
        # The decoder's picture type would force the encoder's frame types.
        frame.pict_type = PictureType.NONE
        return frame
    height, width = frame.height, frame.width
    out = av.VideoFrame(width, height, "yuv420p")
    planes = yuv_planes(out)
    for source, target in zip(yuv_planes(frame), planes, strict=True):
        target[...] = source
    for whole in patches:
        x, y = whole.origin
        h, w = whole.image.shape[:2]
        if x < 0 or y < 0 or y + h > height or x + w > width:
            raise InvalidInputError(f"patch at {whole.origin} of {w}x{h} leaves the frame")
        patch = _trimmed(whole)
        if patch is not None:
            _composite_yuv(planes, patch)
    return out


def _composite_yuv(planes: list[np.ndarray], patch: Patch) -> None:
    luma, u_plane, v_plane = planes
    x, y = patch.origin
    h, w = patch.image.shape[:2]
    # The rectangle widened to even coordinates, as 4:2:0 chroma needs;
    # the widening is clear (alpha 0).
    top, left = y % 2, x % 2
    bottom, right = (y + h) % 2, (x + w) % 2
    x0, y0, x1, y1 = x - left, y - top, x + w + right, y + h + bottom
    if y1 > luma.shape[0] or x1 > luma.shape[1]:
        return  # an odd frame size's last row or column: no whole chroma sample
    bgra = patch.image
    if bgra.shape[2] == 3:
        bgra = cv2.cvtColor(bgra, cv2.COLOR_BGR2BGRA)  # opaque
    bgra = cv2.copyMakeBorder(
        bgra, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0)
    )
    alpha = bgra[..., 3].astype(np.float32) * np.float32(1 / 255)
    rows = y1 - y0
    patch_luma = cv2.cvtColor(bgra, cv2.COLOR_BGRA2YUV_I420)[:rows]
    under = luma[y0:y1, x0:x1]
    # blendLinear rounds w1*a + w2*b: where alpha is 0, exactly the frame's value.
    under[...] = cv2.blendLinear(patch_luma, np.ascontiguousarray(under), alpha, 1 - alpha)
    # Chroma is linear in BGR: the mean of alpha x chroma over a 2x2 block is
    # the chroma of the block's mean premultiplied colour (offset aside).
    premultiplied = cv2.multiply(
        cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR).astype(np.float32), cv2.merge([alpha] * 3)
    )
    half = ((x1 - x0) // 2, rows // 2)
    # An exact halving: bilinear samples fall between pixels, 2x2 means.
    coverage = cv2.resize(alpha, half, interpolation=cv2.INTER_LINEAR)
    mean_colour = cv2.resize(premultiplied, half, interpolation=cv2.INTER_LINEAR)
    chroma = cv2.transform(mean_colour, _BGR_TO_CHROMA)
    for index, plane in enumerate((u_plane, v_plane)):
        under = plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2]
        mixed = chroma[..., index] + coverage * 128 + (1 - coverage) * under
        np.rint(mixed, out=mixed)
        under[...] = np.clip(mixed, 0, 255)


def _trimmed(patch: Patch) -> Patch | None:
    """``patch`` cut to what its alpha covers; None if it covers nothing."""
    image = patch.image
    if image.ndim == 3 and image.shape[2] == 4 and not image[..., 3].any():
        return None
    image, (dx, dy) = trim_to_alpha(image)
    return Patch((patch.origin[0] + dx, patch.origin[1] + dy), image)

"""Pasting swapped faces back into their frames.

Everything happens inside the region of interest (ROI) under one face: the
caller cuts that region out of the frame, the blender returns it blended,
and the cost does not depend on the frame size.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from swapline.errors import InvalidInputError
from swapline.stages.model_contract import MASK_OUTPUTS


class ColorTransfer(StrEnum):
    NONE = "none"
    RCT = "rct"  # Reinhard: LAB mean and standard deviation
    LCT = "lct"  # linear transfer of the colour covariance
    HIST = "hist"  # per-channel histogram matching


class MaskType(StrEnum):
    """What a swapped face is drawn on (FaceFusion's names); chosen ones
    combine, the smallest wins."""

    BOX = "box"  # the aligned crop's square, feathered
    REGION = "region"  # the landmark hull and the model's learned face region
    OCCLUSION = "occlusion"  # where nothing covers the face (the model's segmenter)


DEFAULT_MASKS = (MaskType.REGION, MaskType.OCCLUSION)
# Border colour matching (:func:`match_border`), fractions of the face size:
# the reach of the local colour means, and how far inwards the match fades.
BORDER_SIGMA = 0.1
BORDER_DEPTH = 0.35


@dataclass(frozen=True)
class BlendOptions:
    color_transfer: ColorTransfer = ColorTransfer.RCT
    erode: float = 0.03  # mask erosion, fraction of the face size
    feather: float = 0.06  # mask feathering, fraction of the face size
    seamless_clone: bool = False
    sharpen: float = 0.0  # unsharp-mask amount
    masks: tuple[MaskType, ...] = DEFAULT_MASKS

    @property
    def model_mask(self) -> str:
        """The swap model's output these masks need: region and occlusion
        both, the product ``mask``; one of them alone, its own output."""
        wanted = set(self.masks)
        if {MaskType.REGION, MaskType.OCCLUSION} <= wanted:
            return MASK_OUTPUTS[0]
        return MASK_OUTPUTS[2] if MaskType.OCCLUSION in wanted else MASK_OUTPUTS[1]

    def validate(self) -> None:
        if not self.masks or len(set(self.masks)) != len(self.masks):
            raise InvalidInputError("masks: one or more of box, region, occlusion, each once")
        if not 0.0 <= self.erode <= 0.3 or not 0.0 <= self.feather <= 0.5:
            raise InvalidInputError("erode must be in 0..0.3 and feather in 0..0.5")
        if not 0.0 <= self.sharpen <= 5.0:
            raise InvalidInputError("sharpen must be in 0..5")


def roi_of(
    crop_to_frame: np.ndarray,
    crop_size: int,
    frame_size: tuple[int, int],
    pad: int = 2,
    footprint: tuple[int, int, int, int] | None = None,
) -> tuple[int, int, int, int]:
    """The frame rectangle (x0, y0, x1, y1) a crop lands in, clipped; with
    ``footprint`` (a rectangle of the crop, see :func:`mask_footprint`) the
    rectangle that part lands in."""
    left, top, right, bottom = footprint or (0, 0, crop_size, crop_size)
    corners = np.array([[left, top], [right, top], [left, bottom], [right, bottom]], float)
    placed = corners @ crop_to_frame[:, :2].T + crop_to_frame[:, 2]
    width, height = frame_size
    x0, y0 = np.floor(placed.min(0)).astype(int) - pad
    x1, y1 = np.ceil(placed.max(0)).astype(int) + pad
    return max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1))


def mask_footprint(
    size: int,
    swapped_mask: np.ndarray | None,
    hull_mask: np.ndarray | None,
    options: BlendOptions,
) -> tuple[int, int, int, int]:
    """The rectangle (left, top, right, bottom) of a ``size`` crop that the
    blended face can cover: where both masks are non-zero, widened by the
    feathering. A face's ROI need hold no more of the frame than this part
    lands in (about half the crop's square)."""
    mask = _combined_mask(size, swapped_mask, hull_mask, options.masks)
    left, top, width, height = cv2.boundingRect(mask)
    if width == 0 or height == 0:
        return (0, 0, size, size)
    face_size = float(np.sqrt((mask > 127).sum())) or 1.0
    # Feathering spreads the mask by its radius; warping reads a pixel more.
    grow = round(options.feather * face_size) + 2
    return (
        max(0, left - grow),
        max(0, top - grow),
        min(size, left + width + grow),
        min(size, top + height + grow),
    )


def _combined_mask(
    size: int,
    swapped_mask: np.ndarray | None,
    hull_mask: np.ndarray | None,
    masks: tuple[MaskType, ...],
) -> np.ndarray:
    """The smallest of the chosen masks: the crop's square (box), the
    landmark hull (region) and the swap model's mask (which answers for
    region, occlusion or both, see :attr:`BlendOptions.model_mask`)."""
    mask: np.ndarray = np.full((size, size), 255, np.uint8)
    chosen = []
    if MaskType.REGION in masks or MaskType.OCCLUSION in masks:
        chosen.append(swapped_mask)
    if MaskType.REGION in masks:
        chosen.append(hull_mask)
    for extra in chosen:
        if extra is not None:
            if extra.shape[:2] != (size, size):
                extra = cv2.resize(extra, (size, size), interpolation=cv2.INTER_LINEAR)
            mask = np.minimum(mask, extra.reshape(size, size))
    return mask


def local_mean(image: np.ndarray, where: np.ndarray, sigma: float) -> np.ndarray:
    """The Gaussian-weighted mean of ``image`` (float32, H x W x C) over the
    pixels ``where`` is non-zero, near every pixel."""
    weights = where.astype(np.float32)
    total = cv2.GaussianBlur(image * weights[..., None], (0, 0), sigma)
    count = cv2.GaussianBlur(weights, (0, 0), sigma)[..., None]
    return np.asarray(total / np.maximum(count, 1e-3), np.float32)


def match_border(
    face: np.ndarray, original: np.ndarray, mask: np.ndarray, face_size: float
) -> np.ndarray:
    """``face`` with its local colour matched to ``original``'s along the
    inside of the mask's border, fading to no change a few tenths of the
    face inwards: where the feathered edge mixes the two faces, they agree
    (no band of another skin tone at the temples and jaw), while the middle
    keeps the swapped face's own shading. Local means are taken over the
    mask only, so background beyond it does not tint the edge."""
    inside = (mask > 127).astype(np.uint8)
    if cv2.countNonZero(inside) < 16:
        return face
    sigma = max(2.0, BORDER_SIGMA * face_size)
    shift = local_mean(original.astype(np.float32), inside, sigma) - local_mean(
        face.astype(np.float32), inside, sigma
    )
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    fade = np.clip(1 - depth / (BORDER_DEPTH * face_size), 0, 1)
    return np.clip(face + shift * fade[..., None], 0, 255).astype(np.uint8)


def _masked_stats(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation where ``mask`` is non-zero."""
    mean, std = cv2.meanStdDev(image, mask=mask)
    return mean.reshape(-1), np.maximum(std.reshape(-1), 1e-3)


def prepare() -> None:
    """OpenCV builds its LAB conversion tables on first use (about 70 ms):
    a stage calls this at startup rather than in a job's first window."""
    cv2.cvtColor(np.zeros((1, 1, 3), np.uint8), cv2.COLOR_BGR2LAB)


def transfer_color(
    source: np.ndarray, target: np.ndarray, mask: np.ndarray, mode: ColorTransfer
) -> np.ndarray:
    """Recolours ``source`` (the swapped face) to match ``target`` (the face
    it replaces) inside ``mask``; all uint8 BGR of the same size."""
    if mode is ColorTransfer.NONE:
        return source
    inside = (mask > 127).astype(np.uint8)
    if cv2.countNonZero(inside) < 16:
        return source
    if mode is ColorTransfer.RCT:
        src = cv2.cvtColor(source, cv2.COLOR_BGR2LAB)
        tgt = cv2.cvtColor(target, cv2.COLOR_BGR2LAB)
        s_mean, s_std = _masked_stats(src, inside)
        t_mean, t_std = _masked_stats(tgt, inside)
        # Per channel: (x - s_mean) * t_std / s_std + t_mean, rounded, clipped.
        gain = t_std / s_std
        affine = np.hstack([np.diag(gain), (t_mean - s_mean * gain)[:, None]])
        return cv2.cvtColor(cv2.transform(src, affine), cv2.COLOR_LAB2BGR)
    weight = inside.astype(np.float64)
    if mode is ColorTransfer.LCT:
        src = source.reshape(-1, 3).astype(np.float64)
        tgt = target.reshape(-1, 3).astype(np.float64)
        w = weight.reshape(-1)
        sel_s, sel_t = src[w > 0], tgt[w > 0]
        mu_s, mu_t = sel_s.mean(0), sel_t.mean(0)
        cov_s = np.cov(sel_s.T) + np.eye(3) * 1e-3
        cov_t = np.cov(sel_t.T) + np.eye(3) * 1e-3

        # x -> C_t^1/2 C_s^-1/2 (x - mu_s) + mu_t
        def sqrtm(c: np.ndarray, inverse: bool = False) -> np.ndarray:
            values, vectors = np.linalg.eigh(c)
            values = np.maximum(values, 1e-6) ** (-0.5 if inverse else 0.5)
            return (vectors * values) @ vectors.T

        transform = sqrtm(cov_t) @ sqrtm(cov_s, inverse=True)
        out = (src - mu_s) @ transform.T + mu_t
        return np.clip(out, 0, 255).reshape(source.shape).astype(np.uint8)
    if mode is ColorTransfer.HIST:
        out = np.empty_like(source)
        selected = weight > 0
        for c in range(3):
            s_values = source[..., c][selected]
            t_values = target[..., c][selected]
            s_cdf = np.cumsum(np.bincount(s_values, minlength=256)) / max(len(s_values), 1)
            t_cdf = np.cumsum(np.bincount(t_values, minlength=256)) / max(len(t_values), 1)
            lut = np.searchsorted(t_cdf, s_cdf).clip(0, 255).astype(np.uint8)
            out[..., c] = lut[source[..., c]]
        return out
    raise InvalidInputError(f"unknown colour transfer {mode}")


def blend_face(
    roi: np.ndarray | None,
    origin: tuple[int, int],
    swapped: np.ndarray,
    swapped_mask: np.ndarray | None,
    hull_mask: np.ndarray | None,
    crop_to_frame: np.ndarray,
    options: BlendOptions,
    composite: bool = True,
    original: np.ndarray | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The ROI with the swapped face pasted in. ``roi`` is the frame's pixels
    at ``origin``; ``swapped`` and the masks are aligned crops; the matrix
    maps crop pixels to frame pixels.

    With ``composite=False`` the result is BGRA: the face to paste and its
    alpha, for a receiver that composites patches itself (independent
    patches of overlapping faces then do not overwrite each other). Then,
    unless seamless cloning is on, the ROI's pixels are not needed: pass
    ``roi=None``, its ``size`` (width, height) and the ``original`` face as an
    aligned crop (whose colours colour transfer matches).
    """
    crop = swapped.shape[0]
    if swapped.shape != (crop, crop, 3) or swapped.dtype != np.uint8:
        raise InvalidInputError("swapped face must be a square BGR uint8 crop")
    if original is not None and original.shape != swapped.shape:
        raise InvalidInputError("the original face must be a crop of the swapped face's size")
    if roi is None:
        if size is None or original is None or min(size) < 1:
            raise InvalidInputError(
                "without the region's pixels, give its size and the original face"
            )
        if composite or options.seamless_clone:
            raise InvalidInputError("compositing and seamless cloning need the region's pixels")
    mask = _combined_mask(crop, swapped_mask, hull_mask, options.masks)
    face_size = float(np.sqrt((mask > 127).sum())) or 1.0
    erode = round(options.erode * face_size)
    if erode > 0:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1,) * 2))
    feather = round(options.feather * face_size)
    if feather > 0:
        mask = cv2.GaussianBlur(mask, (2 * feather + 1,) * 2, 0)

    to_roi = crop_to_frame.copy()
    to_roi[:, 2] -= np.asarray(origin, np.float64)
    if roi is not None:
        height, width = roi.shape[:2]
    else:
        assert size is not None
        width, height = size
    if original is None:
        assert roi is not None
        # Frame ROI pixels -> crop, for the colour statistics of the face replaced.
        original = cv2.warpAffine(
            roi,
            to_roi,
            (crop, crop),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
    face = transfer_color(swapped, original, mask, options.color_transfer)
    face = match_border(face, original, mask, face_size)
    if options.sharpen > 0:
        blurred = cv2.GaussianBlur(face, (0, 0), max(1.0, crop / 128))
        face = cv2.addWeighted(face, 1 + options.sharpen, blurred, -options.sharpen, 0)

    warped_face = cv2.warpAffine(
        face, to_roi, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    alpha = cv2.warpAffine(
        mask,
        to_roi,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0,),
    )
    if options.seamless_clone and roi is not None and (alpha > 127).any():
        binary = (alpha > 127).astype(np.uint8) * 255
        ys, xs = np.nonzero(binary)
        centre = (int((xs.min() + xs.max()) // 2), int((ys.min() + ys.max()) // 2))
        # A mask touching the ROI border makes OpenCV refuse: blend plainly.
        with contextlib.suppress(cv2.error):
            warped_face = cv2.seamlessClone(warped_face, roi, binary, centre, cv2.NORMAL_CLONE)
    if not composite:
        return cv2.merge([*cv2.split(warped_face), alpha])
    assert roi is not None
    return composite_patch(roi, warped_face, alpha)


def composite_patch(under: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``face`` over ``under`` with ``alpha`` (uint8, 255 = face)."""
    weight = alpha.astype(np.float32) * np.float32(1 / 255)
    # Where alpha is 0 the result is exactly ``under``, where 255 ``face``.
    blended: np.ndarray = cv2.blendLinear(face, under, weight, 1 - weight)
    return blended


@dataclass(frozen=True)
class BlendItem:
    """One face to blend into the frame rectangle at ``origin`` of ``size``
    (width, height)."""

    frame_index: int
    face_index: int
    origin: tuple[int, int]
    size: tuple[int, int]
    original: np.ndarray | None  # the face replaced, as an aligned crop
    swapped: np.ndarray
    swapped_mask: np.ndarray | None
    hull_mask: np.ndarray | None
    crop_to_frame: np.ndarray
    roi: np.ndarray | None = None  # the frame's pixels there: seamless cloning needs them


def blend_patch(item: BlendItem, options: BlendOptions) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`blend_face` of one item without compositing, cut to what its
    alpha covers: the BGRA patch and where it goes in the frame."""
    patch, (dx, dy) = trim_to_alpha(
        blend_face(
            item.roi,
            item.origin,
            item.swapped,
            item.swapped_mask,
            item.hull_mask,
            item.crop_to_frame,
            options,
            composite=False,
            original=item.original,
            size=item.size,
        )
    )
    return patch, (item.origin[0] + dx, item.origin[1] + dy)


def trim_to_alpha(patch: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """A BGRA patch cut to the rectangle its alpha covers, and that
    rectangle's top-left corner within the patch. A face's mask leaves much
    of its square transparent: the cut patch is what travels and what the
    encoder converts. Opaque (BGR) and fully transparent patches come back
    whole."""
    if patch.ndim != 3 or patch.shape[2] != 4:
        return patch, (0, 0)
    left, top, width, height = cv2.boundingRect(np.ascontiguousarray(patch[..., 3]))
    if width == 0 or height == 0:
        return patch, (0, 0)
    return patch[top : top + height, left : left + width], (left, top)

"""Blending: the part of the frame a face can cover, and colour transfer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from swapline.errors import InvalidInputError
from swapline.stages.blend import (
    BlendOptions,
    ColorTransfer,
    blend_face,
    mask_footprint,
    match_border,
    roi_of,
    transfer_color,
)

SIZE = 64


def placed(scale: float, degrees: float, at: tuple[float, float]) -> np.ndarray:
    """A crop-to-frame matrix: the crop scaled, turned and moved to ``at``."""
    matrix = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), degrees, scale)
    matrix[:, 2] += np.asarray(at) - SIZE / 2
    return matrix


def ellipse_mask(centre: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
    return mask


@pytest.mark.parametrize(("scale", "degrees"), [(5.7, 0.0), (3.0, 25.0), (1.5, -40.0)])
def test_the_face_never_covers_pixels_outside_its_footprint_and_blends_the_same(
    scale: float, degrees: float
) -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (720, 1280, 3), np.uint8)
    swapped = rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)
    learned, hull = ellipse_mask((30, 34), (20, 26)), ellipse_mask((34, 30), (24, 22))
    matrix = placed(scale, degrees, (600.0, 360.0))
    options = BlendOptions()

    def blend(roi: tuple[int, int, int, int]) -> np.ndarray:
        x0, y0, x1, y1 = roi
        return blend_face(
            frame[y0:y1, x0:x1], (x0, y0), swapped, learned, hull, matrix, options, False
        )

    whole = roi_of(matrix, SIZE, (1280, 720))
    footprint = mask_footprint(SIZE, learned, hull, options)
    part = roi_of(matrix, SIZE, (1280, 720), footprint=footprint)
    area = (part[2] - part[0]) * (part[3] - part[1])
    assert area < 0.8 * (whole[2] - whole[0]) * (whole[3] - whole[1])

    full, cut = blend(whole), blend(part)
    inside = np.zeros(full.shape[:2], bool)
    inside[part[1] - whole[1] : part[3] - whole[1], part[0] - whole[0] : part[2] - whole[0]] = True
    assert full[..., 3][~inside].max() == 0  # no alpha left outside the footprint's ROI
    difference = np.abs(full[inside].reshape(cut.shape).astype(int) - cut)
    # Warping a turned crop into another rectangle rounds a few pixels
    # differently (OpenCV's fixed-point maps); nothing else changes.
    assert difference.mean() < 0.1 and (difference > 1).mean() < 0.02


def test_no_mask_means_the_whole_crop() -> None:
    empty = np.zeros((SIZE, SIZE), np.uint8)
    assert mask_footprint(SIZE, None, None, BlendOptions()) == (0, 0, SIZE, SIZE)
    assert mask_footprint(SIZE, empty, None, BlendOptions()) == (0, 0, SIZE, SIZE)


def test_rct_moves_the_face_to_the_target_colour_statistics_inside_the_mask() -> None:
    rng = np.random.default_rng(2)
    source = np.clip(rng.normal(90, 12, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    target = np.clip(rng.normal(160, 25, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    mask = ellipse_mask((32, 32), (24, 28))
    inside = mask > 127

    def lab_stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)[inside].astype(float)
        return lab.mean(0), lab.std(0)

    out = transfer_color(source, target, mask, ColorTransfer.RCT)
    (mean, std), (t_mean, t_std) = lab_stats(out), lab_stats(target)
    assert np.abs(mean - t_mean).max() < 2.0
    assert np.abs(std - t_std).max() < 0.15 * t_std.max()
    assert transfer_color(source, target, np.zeros_like(mask), ColorTransfer.RCT) is source


def test_mask_types_choose_the_swap_models_output_and_the_blends_masks() -> None:
    from swapline.stages.blend import MaskType

    assert BlendOptions().model_mask == "mask"  # region times visible
    assert BlendOptions(masks=(MaskType.REGION,)).model_mask == "region"
    assert BlendOptions(masks=(MaskType.OCCLUSION,)).model_mask == "visible"
    assert BlendOptions(masks=(MaskType.BOX, MaskType.OCCLUSION)).model_mask == "visible"
    for bad in ((), (MaskType.BOX, MaskType.BOX)):
        with pytest.raises(InvalidInputError):
            BlendOptions(masks=bad).validate()


def test_a_box_mask_ignores_the_models_mask_and_the_hull() -> None:
    from swapline.stages.blend import MaskType, mask_footprint

    size = 64
    small = np.zeros((size, size), np.uint8)
    small[24:40, 24:40] = 255
    region = mask_footprint(size, small, small, BlendOptions(feather=0.0))
    box = mask_footprint(size, small, small, BlendOptions(feather=0.0, masks=(MaskType.BOX,)))
    assert region[2] - region[0] < 24 and box == (0, 0, size, size)


def test_border_matching_removes_a_band_of_another_tone_and_keeps_the_middle() -> None:
    """A swapped face whose rim is darker than the face it replaces (the
    tan band of a decoder's temples) meets it with under half the step;
    its middle, far from the border, keeps its own shading."""
    size = 128
    mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(mask, (64, 64), (44, 54), 0, 0, 360, 255, -1)
    original = np.full((size, size, 3), 170, np.uint8)
    swapped = np.full((size, size, 3), 170, np.uint8)
    rim = mask.copy()
    cv2.ellipse(rim, (64, 64), (36, 46), 0, 0, 360, 0, -1)
    swapped[rim > 0] = 120
    swapped[60:68, 60:68] = 90  # a feature in the middle (an eye)
    face_size = float(np.sqrt((mask > 127).sum()))
    matched = match_border(swapped, original, mask, face_size).astype(int)
    edge = (mask > 0) & (cv2.erode(mask, np.ones((3, 3), np.uint8)) == 0)
    before = np.abs(swapped.astype(int) - 170)[edge].mean()
    after = np.abs(matched - 170)[edge].mean()
    assert before == 50 and after < before / 2, (before, after)
    assert np.array_equal(matched[60:68, 60:68], swapped[60:68, 60:68].astype(int))

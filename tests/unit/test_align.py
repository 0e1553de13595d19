from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swapline.errors import InvalidInputError
from swapline.media import grey, open_media
from swapline.stages.align import (
    TEMPLATE_68,
    AlignOptions,
    AlignSession,
    FaceType,
    RegionInput,
    align_face,
    frame_to_crop_matrix,
    hull_mask,
    invert_affine,
    region_around,
    transform_points,
    umeyama,
    warp_crop,
)


def similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def test_umeyama_recovers_a_similarity_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (30, 2))
    truth = similarity(1.7, 0.4, 12.0, -5.0)
    dst = transform_points(truth, src)
    np.testing.assert_allclose(umeyama(src, dst), truth, atol=1e-9)


def test_umeyama_never_reflects() -> None:
    src = np.random.default_rng(2).uniform(0, 10, (20, 2))
    mirrored = src * np.array([-1, 1])
    m = umeyama(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


@pytest.mark.parametrize("face_type", list(FaceType))
def test_crop_matrices_are_inverse_and_place_the_template(face_type: FaceType) -> None:
    # A face placed in a frame by a known similarity aligns back to the template.
    placement = similarity(180.0, -0.3, 400.0, 250.0)
    landmarks = transform_points(placement, TEMPLATE_68)
    forward = frame_to_crop_matrix(landmarks, 256, face_type)
    backward = invert_affine(forward)
    np.testing.assert_allclose(
        transform_points(backward, transform_points(forward, landmarks)), landmarks, atol=1e-6
    )
    in_crop = transform_points(forward, landmarks)
    # The eyes are level and every landmark is inside the crop.
    left_eye, right_eye = in_crop[36:42].mean(0), in_crop[42:48].mean(0)
    assert abs(left_eye[1] - right_eye[1]) < 0.01
    assert in_crop.min() > 0 and in_crop.max() < 256


def test_whole_face_leaves_room_for_the_forehead() -> None:
    landmarks = transform_points(similarity(200.0, 0.0, 100.0, 100.0), TEMPLATE_68)
    full = transform_points(frame_to_crop_matrix(landmarks, 256, FaceType.FULL), landmarks)
    whole = transform_points(frame_to_crop_matrix(landmarks, 256, FaceType.WHOLE), landmarks)
    brow_top_full = full[17:27, 1].min()
    brow_top_whole = whole[17:27, 1].min()
    assert brow_top_whole / 256 > brow_top_full / 256 + 0.05  # more space above the brows
    whole_mask = hull_mask(whole, 256, FaceType.WHOLE)
    # The WHOLE mask reaches above the brows.
    assert whole_mask[: int(brow_top_whole) - 10].any()


def test_align_face_from_a_region_matches_the_whole_frame() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    landmarks = transform_points(similarity(120.0, 0.2, 260.0, 150.0), TEMPLATE_68)
    whole = align_face(frame, landmarks, 128, FaceType.FULL)
    box = (
        landmarks[:, 0].min(),
        landmarks[:, 1].min(),
        landmarks[:, 0].max(),
        landmarks[:, 1].max(),
    )
    x0, y0, x1, y1 = region_around(box, (640, 480))
    part = align_face(frame[y0:y1, x0:x1], landmarks, 128, FaceType.FULL, origin=(x0, y0))
    assert whole.crop is not None and part.crop is not None
    inner = (slice(8, -8), slice(8, -8))
    np.testing.assert_array_equal(whole.crop[inner], part.crop[inner])
    np.testing.assert_allclose(whole.frame_to_crop, part.frame_to_crop)


@pytest.mark.parametrize("size", [32, 513])
def test_crop_size_limits(size: int) -> None:
    with pytest.raises(InvalidInputError, match="crop size"):
        AlignOptions(size=size).validate()


def test_session_refuses_a_box_outside_its_region() -> None:
    session = AlignSession()
    region = RegionInput(0, 0, np.zeros((100, 100, 3), np.uint8), (500.0, 500.0), (0, 0, 50, 50))
    with pytest.raises(InvalidInputError, match="outside"):
        session.align([region])


def test_landmarks_from_a_grey_region_match_those_from_colour(data: Path) -> None:
    with open_media(data / "s18.mp4") as reader:
        frame = next(reader.frames()).image
    box = (656.0, 130.0, 906.0, 380.0)  # the detector's box on this frame
    x0, y0, x1, y1 = region_around(box, (1280, 720))
    region = frame[y0:y1, x0:x1]
    colour = RegionInput(0, 0, region, (float(x0), float(y0)), box)
    intensity = RegionInput(0, 0, grey(region), (float(x0), float(y0)), box)
    landmarks_only = AlignOptions(size=64, with_crop=False)
    from_colour = AlignSession(landmarks_only).align([colour])[0]
    from_grey = AlignSession(landmarks_only).align([intensity])[0]
    np.testing.assert_array_equal(from_grey.landmarks, from_colour.landmarks)
    assert from_grey.aligned.crop is None and from_grey.aligned.mask is not None
    # The crop, cut apart from the measuring, is the one align_face cuts.
    crop = warp_crop(region, from_grey.aligned.frame_to_crop, 64, (float(x0), float(y0)))
    full = AlignSession(AlignOptions(size=64)).align([colour])[0]
    assert full.aligned.crop is not None
    np.testing.assert_array_equal(crop, full.aligned.crop)


def test_a_grey_region_gives_no_crop_or_embedding() -> None:
    region = RegionInput(0, 0, np.zeros((100, 100), np.uint8), (0.0, 0.0), (10, 10, 90, 90))
    for options in (AlignOptions(), AlignOptions(with_crop=False, embeddings=True)):
        with pytest.raises(InvalidInputError, match="grey face region"):
            AlignSession(options).align([region])

"""Following faces through detection misses: the box moves with the
face's own pixels, survives a flash, stops at a scene cut and after its
reach."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from swapline.media import open_media
from swapline.stages.follow import FOLLOWED_SCORE, FaceFollower, flow_box, scene_cut

BOX = (150.0, 120.0, 330.0, 300.0)  # d10's face in its first frame, roughly


@pytest.fixture(scope="module")
def grey(data: Path) -> np.ndarray:
    with open_media(data / "d10.mp4") as reader:
        return next(iter(reader.frames())).grey.copy()


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
    moved: np.ndarray = cv2.warpAffine(
        image, matrix, image.shape[::-1], borderMode=cv2.BORDER_REPLICATE
    )
    return moved


def flash(image: np.ndarray) -> np.ndarray:
    return np.clip(image.astype(np.float32) * 1.7 + 40, 0, 255).astype(np.uint8)


def test_the_box_moves_with_the_face(grey: np.ndarray) -> None:
    box = np.array(BOX)
    for dx, dy in ((6.0, -4.0), (-15.0, 9.0)):
        moved = flow_box(grey, shifted(grey, dx, dy), box)
        assert moved is not None
        assert np.abs(moved - (box + np.array([dx, dy, dx, dy]))).max() < 1.5, moved
    under_flash = flow_box(grey, flash(shifted(grey, 5.0, 3.0)), box)
    assert under_flash is not None
    assert np.abs(under_flash - (box + np.array([5, 3, 5, 3]))).max() < 2.0, under_flash


def test_scene_cuts_but_not_flashes(grey: np.ndarray, data: Path) -> None:
    with open_media(data / "bigbuckbunny.mp4") as reader:
        other = cv2.resize(next(iter(reader.frames())).grey, grey.shape[::-1])
    assert scene_cut(grey, other)
    assert not scene_cut(grey, flash(grey))
    assert not scene_cut(grey, shifted(grey, 8, 5))


def test_a_missed_face_is_followed_for_a_while(grey: np.ndarray) -> None:
    follower = FaceFollower(max_frames=3)
    detected = (*BOX, 0.8)
    assert follower.update(grey, [detected]) == [detected]
    carried = []
    for step in range(1, 6):
        out = follower.update(shifted(grey, 2 * step, 0), [])
        carried.append(out)
    assert [len(out) for out in carried] == [1, 1, 1, 0, 0]  # three frames, no more
    assert all(out[0][4] == FOLLOWED_SCORE for out in carried[:3])
    assert carried[2][0][0] == pytest.approx(BOX[0] + 6, abs=1.5)
    # Found again: detections only, and the reach starts over.
    assert follower.update(grey, [detected]) == [detected]
    assert len(follower.update(grey, [])) == 1


def test_nothing_is_followed_across_a_scene_cut_or_onto_a_detection(
    grey: np.ndarray, data: Path
) -> None:
    with open_media(data / "bigbuckbunny.mp4") as reader:
        other = cv2.resize(next(iter(reader.frames())).grey, grey.shape[::-1])
    follower = FaceFollower()
    follower.update(grey, [(*BOX, 0.8)])
    assert follower.update(other, []) == []
    follower.update(grey, [(*BOX, 0.8)])
    near = (BOX[0] + 60, BOX[1] + 60, BOX[2] + 60, BOX[3] + 60, 0.5)  # moved too far to match
    assert follower.update(grey, [near]) == [near]  # the carried box would overlap it

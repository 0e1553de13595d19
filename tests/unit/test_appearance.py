"""The appearance measures of `swapline eval` on known cases, on real
frames of d10: an unchanged face scores 1.0 everywhere and spills nothing;
a blurred face loses sharpness; a patch of another tone shows a seam; a
change off the face is spill; a face whose brightness jumps flickers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from swapline.evaluation.appearance import Appearance, face_region
from swapline.media import open_media
from swapline.stages.align import find_landmarks
from swapline.stages.detect import FaceDetector

Edit = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@pytest.fixture(scope="module")
def faces(data: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    detector = FaceDetector()
    out = []
    with open_media(data / "d10.mp4") as reader:
        for frame in reader.frames():
            if frame.index >= 6:
                break
            box = detector.detect(frame.image)[0]
            box_tuple = (box.left, box.top, box.right, box.bottom)
            out.append((frame.image.copy(), find_landmarks(frame.image, box_tuple)))
    return out


def measure(faces: list[tuple[np.ndarray, np.ndarray]], edit: Edit) -> dict[str, float]:
    looks = Appearance()
    for index, (image, landmarks) in enumerate(faces):
        looks.add(image, edit(image.copy(), landmarks, index), landmarks)
    return looks.summary(source_sharpness=looks.summary()["sharpness_output"])


def _square(landmarks: np.ndarray, scale: float) -> tuple[int, int, int, int]:
    centre = landmarks[27:36].mean(0)
    half = scale * float(np.ptp(landmarks[:, 0]))
    return (
        int(centre[0] - half),
        int(centre[1] - half),
        int(centre[0] + half),
        int(centre[1] + half),
    )


def test_an_unchanged_face_scores_one(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    got = measure(faces, lambda image, _, __: image)
    assert got["sharpness_vs_input"] == 1.0 and got["sharpness_vs_source"] == 1.0
    assert got["seam_vs_input"] == 1.0 and got["flicker_vs_input"] == 1.0
    assert got["spill_share"] == 0.0


def test_a_blurred_face_loses_sharpness(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    def blur(image: np.ndarray, landmarks: np.ndarray, _: int) -> np.ndarray:
        region = face_region(landmarks, image.shape) > 0
        image[region] = cv2.GaussianBlur(image, (0, 0), 4)[region]
        return image

    got = measure(faces, blur)
    assert got["sharpness_vs_input"] < 0.3, got
    assert got["spill_share"] < 0.05, got


def test_grain_on_a_blurred_face_is_not_detail(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Pixel noise over a smudge raises the raw Laplacian's variance many
    times (what a net trained against it learns to draw); the measure does
    not call it sharp."""
    rng = np.random.default_rng(0)

    def blur_and_grain(image: np.ndarray, landmarks: np.ndarray, _: int) -> np.ndarray:
        region = face_region(landmarks, image.shape) > 0
        noise = rng.normal(0, 6, image.shape)
        grainy = np.clip(cv2.GaussianBlur(image, (0, 0), 4) + noise, 0, 255).astype(np.uint8)
        image[region] = grainy[region]
        return image

    got = measure(faces, blur_and_grain)
    assert got["sharpness_vs_input"] < 0.35, got


def test_a_patch_of_another_tone_shows_a_seam(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    def patch(image: np.ndarray, landmarks: np.ndarray, _: int) -> np.ndarray:
        x0, y0, x1, y1 = _square(landmarks, 0.3)
        tinted = image[y0:y1, x0:x1].astype(int) + np.array((0, 25, 45))
        image[y0:y1, x0:x1] = np.clip(tinted, 0, 255)
        return image

    got = measure(faces, patch)
    assert got["seam_vs_input"] > 2.0, got


def test_a_change_off_the_face_is_spill(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    def both(image: np.ndarray, landmarks: np.ndarray, _: int) -> np.ndarray:
        x0, y0, x1, y1 = _square(landmarks, 0.2)
        image[y0:y1, x0:x1] = 255 - image[y0:y1, x0:x1]  # on the face
        image[:40, :40] = 255 - image[:40, :40]  # a corner of the background
        return image

    got = measure(faces, both)
    inside = (2 * 0.2 * np.ptp(faces[0][1][:, 0])) ** 2
    assert got["spill_share"] == pytest.approx(1600 / (1600 + inside), rel=0.3), got


def test_a_jumping_brightness_flickers(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    def jump(image: np.ndarray, landmarks: np.ndarray, index: int) -> np.ndarray:
        region = face_region(landmarks, image.shape) > 0
        shift = 30 if index % 2 else -30
        image[region] = np.clip(image[region].astype(int) + shift, 0, 255)
        return image

    got = measure(faces, jump)
    assert got["flicker_vs_input"] > 2.0, got

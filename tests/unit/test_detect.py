from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swapline.errors import InvalidInputError
from swapline.media import grey, open_media
from swapline.stages.detect import (
    NEAR_CONFIG,
    Detection,
    DetectorConfig,
    DetectorModel,
    FaceDetector,
    detection_scale,
    merge_detections,
    near_region,
)


def first_frame(path: Path):  # type: ignore[no-untyped-def]
    with open_media(path) as reader:
        return next(reader.frames()).image


def test_scale_and_upsampling_rules() -> None:
    config = DetectorConfig(max_side=640)
    assert detection_scale(1280, 720, config) == (0.5, 0)
    assert detection_scale(512, 512, config) == (1.0, 0)
    assert detection_scale(176, 144, config) == (1.0, 1)  # tiny frames are doubled


def test_boxes_are_mapped_back_to_source_pixels(data: Path) -> None:
    frame = first_frame(data / "s18.mp4")  # 1280x720, detected at 640x360
    faces = FaceDetector().detect(frame)
    assert len(faces) == 1
    face = faces[0]
    assert 400 < face.left < face.right < 1100 and 50 < face.top < face.bottom < 600
    # Sending a half-size copy with the source size gives the same box.
    half = frame[::2, ::2].copy()
    again = FaceDetector().detect(half, source_size=(1280, 720))[0]
    assert abs(again.left - face.left) < 8 and abs(again.bottom - face.bottom) < 8


def test_searching_near_a_face_finds_it_in_frame_pixels(data: Path) -> None:
    frame = first_frame(data / "two_people.jpg")
    whole = FaceDetector().detect(frame)
    assert len(whole) == 2
    for face in whole:
        # Where the face was a few frames ago: 20% of its size off.
        shift = 0.2 * face.width
        hint = (face.left + shift, face.top - shift, face.right + shift, face.bottom - shift)
        region = near_region(7, frame, hint)
        assert region.index == 7 and max(region.image.shape[:2]) < max(frame.shape[:2])
        found = FaceDetector(NEAR_CONFIG).detect(region.image, region.source_size, region.origin)
        assert len(found) == 1, "only the face near the hint"
        near = found[0]
        assert abs(near.left - face.left) < 0.1 * face.width
        assert abs(near.bottom - face.bottom) < 0.1 * face.width


def test_the_same_face_found_twice_is_kept_once() -> None:
    a = Detection(100, 100, 200, 200, 1.0)
    b = Detection(104, 98, 204, 198, 0.5)  # IoU 0.89
    c = Detection(300, 100, 400, 200, 0.2)  # another face
    assert merge_detections([b, a, c]) == [a, c]


def test_tiny_faces_are_found_by_upsampling(data: Path) -> None:
    frame = first_frame(data / "carphone_pristine.mp4")
    assert FaceDetector(DetectorConfig(upsample=0)).detect(frame) == []
    assert len(FaceDetector().detect(frame)) == 1


def test_no_face_in_a_picture_of_dogs(data: Path) -> None:
    assert FaceDetector().detect(first_frame(data / "dogs.jpg")) == []


def test_min_face_size_drops_small_faces(data: Path) -> None:
    frame = first_frame(data / "two_people.jpg")
    assert len(FaceDetector().detect(frame)) == 2
    assert len(FaceDetector(DetectorConfig(min_face_size=170)).detect(frame)) == 1


@pytest.mark.slow
def test_cnn_detector_finds_the_face(data: Path) -> None:
    frame = first_frame(data / "d10.mp4")
    faces = FaceDetector(DetectorConfig(model=DetectorModel.CNN, max_side=320)).detect(frame)
    assert len(faces) == 1 and faces[0].score > 0.5


def test_bad_config() -> None:
    with pytest.raises(InvalidInputError):
        FaceDetector(DetectorConfig(max_side=10))


def test_hog_reads_intensity_so_a_grey_frame_finds_the_same_boxes(data: Path) -> None:
    frame = first_frame(data / "s18.mp4")
    from_colour = FaceDetector().detect(frame)
    from_grey = FaceDetector().detect(grey(frame))
    assert len(from_colour) == 1
    assert from_grey == from_colour


@pytest.mark.slow
def test_the_cnn_detector_takes_a_grey_frame_too(data: Path) -> None:
    frame = first_frame(data / "d10.mp4")
    config = DetectorConfig(model=DetectorModel.CNN, max_side=320)
    faces = FaceDetector(config).detect(grey(frame))
    assert len(faces) == 1 and faces[0].score > 0.5


def test_an_image_with_two_channels_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="BGR or grey"):
        FaceDetector().detect(np.zeros((64, 64, 2), np.uint8))

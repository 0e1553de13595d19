from __future__ import annotations

import itertools
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import psutil
import pytest

from swapline.errors import MediaError
from swapline.media import decode_image, open_media, probe_image_size


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a tiny (bogus) body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\0" * 64)
    chunk += (
        struct.pack(">I", len(idat))
        + b"IDAT"
        + idat
        + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    )
    return b"\x89PNG\r\n\x1a\n" + chunk


def jpeg_header(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00" * 3
    return b"\xff\xd8" + sof + b"\xff\xd9"


def test_video_frames_keep_exact_timestamps(data: Path) -> None:
    with open_media(data / "d10.mp4") as reader:
        assert reader.info.kind == "video"
        assert (reader.info.width, reader.info.height) == (512, 512)
        assert reader.info.audio_streams == 1
        frames = [(f.index, f.pts, f.image.shape) for f in reader.frames()]
    assert len(frames) == 448
    assert [i for i, _, _ in frames] == list(range(448))
    assert all(shape == (512, 512, 3) for _, _, shape in frames)
    pts = [p for _, p, _ in frames]
    assert pts == sorted(pts) and len(set(pts)) == 448


def test_variable_frame_rate_timestamps_survive(data: Path) -> None:
    path = data / "vfr_talking_1.mp4"
    with av.open(str(path)) as container:
        expected = sorted(f.pts for f in container.decode(video=0))
    with open_media(path) as reader:
        got = [f.pts for f in reader.frames()]
        time_base = reader.info.time_base
    assert got == expected
    gaps_ms = {round(float((b - a) * time_base) * 1000) for a, b in itertools.pairwise(got)}
    assert {33, 67} <= gaps_ms  # genuinely variable


def test_rotation_metadata_is_applied(data: Path) -> None:
    with open_media(data / "d10_rotated.mp4") as reader:
        assert reader.info.rotation == 90
        assert (reader.info.width, reader.info.height) == (448, 512)
        upright = next(reader.frames()).image
    with open_media(data / "d10.mp4") as reader:
        original = next(reader.frames()).image[:, :448]
    assert upright.shape == original.shape
    assert cv2.PSNR(upright, original) > 30  # re-encoded, but the same picture the same way up


def test_still_images_are_one_frame_rgba_dropped_to_bgr(data: Path) -> None:
    with open_media(data / "lin-manuel-miranda.png") as reader:
        assert reader.info.kind == "image"
        frames = list(reader.frames())
    assert len(frames) == 1
    assert frames[0].image.shape == (612, 704, 3)
    assert frames[0].time_base == Fraction(1, 1)


def test_decoding_holds_one_frame_at_a_time(data: Path) -> None:
    process = psutil.Process()
    with open_media(data / "d10.mp4") as reader:
        frames = reader.frames()
        next(frames)
        baseline = process.memory_info().rss
        peak = baseline
        for _ in frames:
            peak = max(peak, process.memory_info().rss)
    # 448 frames of 512x512 BGR would be 350 MB; a streaming decoder stays flat.
    assert peak - baseline < 60 * 1024 * 1024


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("zero.mp4", b"", "empty file"),
        ("text.mp4", b"this is not a video, just some text\n" * 20, "cannot decode"),
        ("huge.png", png_header(20000, 20000), "exceeds the limit"),
        ("huge.jpg", jpeg_header(20000, 20000), "exceeds the limit"),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "corrupt png header"),
    ],
)
def test_bad_files_raise_media_error_naming_file(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError) as info, open_media(path) as reader:
        list(reader.frames())
    assert info.value.source == str(path)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("clip", "reason"),
    [
        ("d10.mp4", "cannot decode"),  # index at the end: cut off with the tail
        ("s18.mp4", "truncated: decoded"),  # index first: frames stop early
    ],
)
def test_truncated_mp4_is_refused(tmp_path: Path, data: Path, clip: str, reason: str) -> None:
    raw = (data / clip).read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(MediaError) as info, open_media(path) as reader:
        list(reader.frames())
    assert info.value.source == str(path)
    assert reason in info.value.reason


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        open_media(tmp_path / "nope.mp4")


def test_image_header_probe_matches_decoder(data: Path) -> None:
    for name in ("two_people.jpg", "lin-manuel-miranda.png", "dogs.jpg"):
        raw = (data / name).read_bytes()
        width, height = probe_image_size(raw)
        image = decode_image(raw)
        assert image.shape[:2] == (height, width)
        assert image.dtype == np.uint8 and image.shape[2] == 3


def test_a_frame_converts_only_what_is_asked_for_and_the_same_way(data: Path) -> None:
    with open_media(data / "s18.mp4") as reader:
        frame = next(reader.frames())
        # Asked before any whole-picture conversion: from the YUV planes.
        intensity = frame.grey.copy()
        region = frame.region(101, 51, 333, 280).copy()  # odd corners
        picture = frame.image
    assert frame.size == (1280, 720) and picture.shape == (720, 1280, 3)
    assert np.array_equal(region, picture[51:280, 101:333])
    difference = np.abs(intensity.astype(int) - cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY))
    assert difference.max() <= 1  # the luma plane is the picture's intensity


def test_a_rotated_frame_is_converted_whole_and_upright(data: Path) -> None:
    with open_media(data / "d10_rotated.mp4") as reader:
        frame = next(reader.frames())
    assert frame.size == (448, 512)
    assert np.array_equal(frame.grey, cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY))
    assert np.array_equal(frame.region(10, 20, 30, 40), frame.image[20:40, 10:30])

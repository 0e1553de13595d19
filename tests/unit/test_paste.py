"""Pasting patches into decoded YUV frames, cutting patches to their alpha, and
encoding frames the caller decoded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from swapline.errors import InvalidInputError
from swapline.media import open_media
from swapline.stages.blend import trim_to_alpha
from swapline.stages.encode import FramePatches, encode
from swapline.stages.paste import Patch, paste_yuv


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


def decoded_video(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray() for f in container.decode(video=0)]


def audio_of(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, bytes(p)) for p in container.demux(audio=0) if p.size]


def test_frames_decoded_by_the_caller_give_the_same_file_as_decoding_the_source(
    data: Path, tmp_path: Path
) -> None:
    source = data / "vfr_talking_1.mp4"  # variable frame rate, with audio
    patch = disc_patch(120, 40)

    def items(with_frames: bool) -> Iterator[FramePatches]:
        with open_media(source) as reader:
            for frame in reader.frames(keep_decoded=with_frames):
                patches = [Patch((200, 100), patch)] if frame.index % 3 == 0 else []
                yield FramePatches(frame.index, patches, frame.decoded)

    own = encode(source, tmp_path / "own.mp4", items(False))
    given = encode(source, tmp_path / "given.mp4", items(True))
    assert given.frames == own.frames > 0
    assert given.audio_packets == own.audio_packets > 0
    assert audio_of(tmp_path / "given.mp4") == audio_of(source)
    with av.open(str(tmp_path / "given.mp4")) as out, av.open(str(source)) as inp:
        assert [f.pts for f in out.decode(video=0)] == [f.pts for f in inp.decode(video=0)]
    # The same pictures went in. x264's threads do not always make the same
    # bitstream of them (seen: one run in five differs), so compare pixels.
    for mine, theirs in zip(
        decoded_video(tmp_path / "given.mp4"), decoded_video(tmp_path / "own.mp4"), strict=True
    ):
        error = np.mean((mine.astype(float) - theirs) ** 2)
        assert error == 0 or 10 * np.log10(255**2 / error) > 45


def test_a_frame_missing_its_decoded_picture_fails_and_leaves_no_file(
    data: Path, tmp_path: Path
) -> None:
    source = data / "d10.mp4"

    def items() -> Iterator[FramePatches]:
        with open_media(source) as reader:
            for frame in reader.frames(keep_decoded=True):
                yield FramePatches(frame.index, [], frame.decoded if frame.index < 5 else None)

    with pytest.raises(InvalidInputError, match="frame 5 arrived without its decoded frame"):
        encode(source, tmp_path / "out.mp4", items())
    assert list(tmp_path.iterdir()) == []


def test_compositing_in_yuv_matches_compositing_the_decoded_picture(data: Path) -> None:
    frame = first_frame(data)
    before = frame.to_ndarray()
    height, width = frame.height, frame.width
    picture = cv2.cvtColor(before, cv2.COLOR_YUV2BGR_I420)
    # A patch of real colours (another part of the picture), feathered disc.
    patch = disc_patch(120, 44)
    patch[..., :3] = picture[200:320, 300:420]
    origin = (101, 51)
    after = paste_yuv(frame, [Patch(origin, patch)]).to_ndarray()
    # The reference: composited over the decoded picture, per pixel in BGR.
    expected = picture.copy()
    region = (slice(51, 171), slice(101, 221))
    weight = patch[..., 3:].astype(np.float64) / 255
    expected[region] = np.rint(patch[..., :3] * weight + picture[region] * (1 - weight))
    # Where the patch is opaque, its own luma exactly (but for rounding).
    opaque = np.zeros((height, width), bool)
    opaque[region] = patch[..., 3] == 255
    expected_luma = cv2.cvtColor(expected, cv2.COLOR_BGR2YUV_I420)[:height]
    assert opaque.sum() > 3000
    assert np.abs(after[:height].astype(int) - expected_luma)[opaque].max() <= 1
    got = cv2.cvtColor(after, cv2.COLOR_YUV2BGR_I420)[region].astype(np.float64)
    error = np.mean((got - expected[region]) ** 2)
    assert 10 * np.log10(255**2 / error) > 42  # chroma: 2x2 means, not per pixel

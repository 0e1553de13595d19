"""Streaming media input: videos through PyAV (ffmpeg), still images as one frame."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from swapline.errors import MediaError
from swapline.media._image import (
    DEFAULT_MAX_PIXELS,
    check_pixels,
    decode_image,
    grey,
    image_format,
    probe_image_size,
)

MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024


# Limited-range luma (16..235) stretched to full range: the intensity a
# BGR-to-grey conversion of the decoded picture gives.
_FULL_RANGE_LUMA = np.clip(np.rint((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


class Frame:
    """One decoded frame, upright (rotation metadata applied).

    ``image`` is its BGR picture. From a 4:2:0 decoder frame it is converted
    on first use only: ``grey`` (intensity, all that face detection and
    landmarks read) comes from the luma plane and ``region`` converts just
    the rectangle asked for, the same pixels ``image`` would hold there.
    """

    def __init__(
        self,
        index: int,
        pts: int | None,
        time_base: Fraction,
        image: np.ndarray | None = None,
        decoded: av.VideoFrame | None = None,
        *,
        yuv: av.VideoFrame | None = None,
    ) -> None:
        if image is None and yuv is None:
            raise ValueError("a frame needs its picture: image or yuv")
        self.index = index
        self.pts = pts
        self.time_base = time_base
        # The frame as the decoder gave it, when asked for: an encoder in
        # the same process takes it instead of decoding again.
        self.decoded = decoded
        self._image = image
        self._yuv = yuv  # upright yuv420p, limited range, even size
        self._grey: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, pts={self.pts}, time_base={self.time_base})"

    @property
    def time_s(self) -> float:
        return float((self.pts or 0) * self.time_base)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        if self._yuv is not None:
            return self._yuv.width, self._yuv.height
        assert self._image is not None
        return self._image.shape[1], self._image.shape[0]

    @property
    def image(self) -> np.ndarray:
        """The BGR uint8 picture."""
        if self._image is None:
            width, height = self.size
            self._image = self.region(0, 0, width, height)
        return self._image

    @property
    def grey(self) -> np.ndarray:
        """The picture's intensity (full range, as BGR to grey gives)."""
        if self._grey is None:
            if self._yuv is None:
                self._grey = grey(self.image)
            else:
                luma = yuv_planes(self._yuv)[0]
                self._grey = cv2.LUT(luma, _FULL_RANGE_LUMA)
        return self._grey

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The BGR pixels of the rectangle [x0, x1) x [y0, y1)."""
        if self._yuv is None or self._image is not None:
            return self.image[y0:y1, x0:x1]
        # Whole chroma samples: the rectangle widened to even coordinates.
        ex0, ey0 = x0 - x0 % 2, y0 - y0 % 2
        ex1, ey1 = x1 + x1 % 2, y1 + y1 % 2
        luma, u_plane, v_plane = yuv_planes(self._yuv)
        rows, columns = ey1 - ey0, ex1 - ex0
        i420 = np.empty((rows * 3 // 2, columns), np.uint8)
        i420[:rows] = luma[ey0:ey1, ex0:ex1]
        chroma = i420[rows:].reshape(2, rows // 2, columns // 2)
        chroma[0] = u_plane[ey0 // 2 : ey1 // 2, ex0 // 2 : ex1 // 2]
        chroma[1] = v_plane[ey0 // 2 : ey1 // 2, ex0 // 2 : ex1 // 2]
        bgr = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
        return bgr[y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]


def yuv_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Views of a frame's planes (rows without their padding), writable."""
    views = []
    for plane in frame.planes:
        rows = np.frombuffer(cast(Any, plane), np.uint8)[: plane.line_size * plane.height]
        views.append(rows.reshape(plane.height, plane.line_size)[:, : plane.width])
    return views


@dataclass(frozen=True)
class MediaInfo:
    """What is known about an input before decoding it."""

    path: str
    kind: str  # "video" or "image"
    width: int  # upright, after rotation
    height: int
    rotation: int  # counter-clockwise degrees applied to decoded frames
    frame_count: int  # 0 when the container does not say
    time_base: Fraction
    average_rate: Fraction | None
    duration_s: float
    codec: str
    audio_streams: int


class MediaReader:
    """Opens a video or image file and yields its frames one at a time.

    Nothing but the current frame is held, so memory does not grow with the
    length of the video. Audio is not decoded: it stays in the file for
    passthrough by the encoder.
    """

    def __init__(self, path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS):
        self.path = str(path)
        self._max_pixels = max_pixels
        self._container: av.container.InputContainer | None = None
        self._image_bytes: bytes | None = None
        self._decoded: Iterator[av.VideoFrame] = iter(())
        self._first: av.VideoFrame | None = None
        self._declared_frames = 0  # exact count from the container's index, if any
        self.info = self._open()

    def _open(self) -> MediaInfo:
        source = self.path
        try:
            size = Path(source).stat().st_size
        except FileNotFoundError:
            raise MediaError(source, "no such file") from None
        except OSError as exc:
            raise MediaError(source, exc.strerror or str(exc)) from None
        if Path(source).is_dir():
            raise MediaError(source, "is a directory")
        if size == 0:
            raise MediaError(source, "empty file")
        with open(source, "rb") as fh:
            head = fh.read(64)
        if image_format(head) is not None:
            return self._open_image(size)
        return self._open_video()

    def _open_image(self, size: int) -> MediaInfo:
        if size > MAX_IMAGE_FILE_BYTES:
            raise MediaError(self.path, f"image file of {size} bytes is too large")
        data = Path(self.path).read_bytes()
        width, height = probe_image_size(data, self.path)
        check_pixels(width, height, self._max_pixels, self.path)
        self._image_bytes = data
        return MediaInfo(
            path=self.path,
            kind="image",
            width=width,
            height=height,
            rotation=0,
            frame_count=1,
            time_base=Fraction(1, 1),
            average_rate=None,
            duration_s=0.0,
            codec=image_format(data[:16]) or "",
            audio_streams=0,
        )

    def _open_video(self) -> MediaInfo:
        try:
            container = av.open(self.path, mode="r")
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise MediaError(self.path, _ffmpeg_reason(exc)) from None
        self._container = container
        try:
            return self._probe_video(container)
        except BaseException:
            self.close()
            raise

    def _probe_video(self, container: av.container.InputContainer) -> MediaInfo:
        if container.format.name in TEXT_DEMUXERS:
            raise MediaError(self.path, "not a video or image (FFmpeg would draw it as text)")
        if not container.streams.video:
            raise MediaError(self.path, "no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        check_pixels(width, height, self._max_pixels, self.path)
        stream.thread_type = "AUTO"
        # The first frame tells the rotation and proves the stream decodes
        # before anyone starts work on it; it is kept for frames().
        self._decoded = container.decode(stream)
        try:
            self._first = next(self._decoded, None)
        except av.error.FFmpegError as exc:
            raise MediaError(self.path, _ffmpeg_reason(exc)) from None
        if self._first is None:
            raise MediaError(self.path, "no decodable video frames (truncated or corrupt)")
        rotation = _frame_rotation(self._first)
        if rotation in (90, 270):
            width, height = height, width
        time_base = Fraction(stream.time_base or Fraction(1, 90000))
        duration_s = 0.0
        if stream.duration is not None:
            duration_s = float(stream.duration * time_base)
        elif container.duration is not None:
            duration_s = container.duration / av.time_base
        frame_count = self._declared_frames = stream.frames or 0
        if not frame_count and stream.average_rate and duration_s:
            frame_count = round(duration_s * float(stream.average_rate))
        return MediaInfo(
            path=self.path,
            kind="video",
            width=width,
            height=height,
            rotation=rotation,
            frame_count=frame_count,
            time_base=time_base,
            average_rate=Fraction(stream.average_rate) if stream.average_rate else None,
            duration_s=duration_s,
            codec=stream.codec_context.name,
            audio_streams=len(container.streams.audio),
        )

    def frames(self, keep_decoded: bool = False) -> Iterator[Frame]:
        """Decoded frames in presentation order, each with its exact timestamp
        (and with ``keep_decoded`` the decoder's own frame too).

        A reader yields its frames once.
        """
        if self._image_bytes is not None:
            still = decode_image(self._image_bytes, self.path, self._max_pixels)
            yield Frame(index=0, pts=0, time_base=Fraction(1, 1), image=still)
            return
        if self._container is None or self._first is None:
            raise MediaError(self.path, "reader is closed or already consumed")
        av_frame: av.VideoFrame | None = self._first
        self._first = None
        index = 0
        # One converter for every frame: a frame's own would set up a
        # scaler (and its threads) per frame and keep it while the frame lives.
        to_bgr = VideoReformatter()
        try:
            while av_frame is not None:
                rotation = _frame_rotation(av_frame)
                image: np.ndarray | None = None
                if rotation or not _converts_lazily(av_frame):
                    image = to_bgr.reformat(av_frame, format="bgr24", threads=1).to_ndarray()
                    if rotation:
                        image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
                yield Frame(
                    index=index,
                    pts=av_frame.pts,
                    time_base=Fraction(av_frame.time_base or self.info.time_base),
                    image=image,
                    decoded=av_frame if keep_decoded else None,
                    yuv=av_frame if image is None else None,
                )
                index += 1
                av_frame = next(self._decoded, None)
        except av.error.FFmpegError as exc:
            raise MediaError(self.path, f"{_ffmpeg_reason(exc)} at frame {index}") from None
        if self._declared_frames and index < self._declared_frames:
            raise MediaError(
                self.path, f"truncated: decoded {index} of {self._declared_frames} frames"
            )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# FFmpeg demuxers that turn a text file into pictures of its characters.
TEXT_DEMUXERS = frozenset({"tty"})


def open_media(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> MediaReader:
    """Opens a video or still image for streaming decode; raises MediaError."""
    return MediaReader(path, max_pixels)


_FULL_RANGE = 2  # AVCOL_RANGE_JPEG


def _converts_lazily(frame: av.VideoFrame) -> bool:
    """Whether :class:`Frame` can convert this decoder frame itself: 4:2:0
    at limited range (OpenCV's I420 conversions assume it), even size."""
    return (
        frame.format.name == "yuv420p"
        and frame.color_range != _FULL_RANGE
        and frame.width % 2 == 0
        and frame.height % 2 == 0
    )


def _ffmpeg_reason(exc: Exception) -> str:
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return f"cannot decode ({exc.strerror.lower()})"
    return f"cannot decode ({exc})"


def _normalise_rotation(degrees: float) -> int:
    return round(degrees / 90.0) * 90 % 360


def _frame_rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise degrees to turn the decoded picture upright.

    The display matrix rotates the picture counter-clockwise by ``rotation``
    degrees (a phone's portrait clip says -90), as players do.
    """
    return _normalise_rotation(getattr(frame, "rotation", 0) or 0)

"""Live: frames from a camera, a network stream or a file played in real
time, swapped as they come, out to a network stream or a file.

Three threads: capture (decodes the input, keeps only the newest video
frame: when swapping falls behind, older frames are dropped, never queued),
swap (the same :class:`~swapline.pipeline.FrameSwapper` as files, embedded
or over gRPC through an orchestrator's ``SwapStream``), and output (encodes
with low-latency settings, marks every keyframe as synthetic media, and
muxes the input's audio in step by timestamp). Each frame's latency, from
capture to output, is observed in ``swapline_live_frame_latency_seconds``.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, cast

import av
import cv2
import grpc
import numpy as np

from swapline.errors import InvalidInputError, MediaError
from swapline.media import TEXT_DEMUXERS, Frame
from swapline.pipeline.contract import Stages
from swapline.pipeline.driver import FrameSwapper
from swapline.pipeline.options import Progress, SwapOptions
from swapline.protocol import wire
from swapline.protocol.channel import channel
from swapline.protocol.status import error_for
from swapline.stages.encode import SYNTHETIC_COMMENT, MarkedVideo
from swapline.stages.paste import paste
from swapline.v1 import common_pb2 as pb
from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc

_FORMAT_FOR_SCHEME = {
    "rtmp": "flv",
    "rtmps": "flv",
    "udp": "mpegts",
    "srt": "mpegts",
    "tcp": "mpegts",
}
# Audio a live container takes as it is; anything else is re-encoded to AAC.
_COPIED_AUDIO = ("aac", "mp3")
MS = Fraction(1, 1000)


@dataclass(frozen=True)
class LiveOptions:
    input: str
    output: str
    realtime: bool | None = None  # pace a file input by its timestamps (default: files)
    seconds: float | None = None  # stop after this long (None: at the input's end)
    open_timeout: float = 10.0  # seconds to wait for an input or output to answer
    crf: int = 23
    preset: str = "veryfast"
    keyframe_seconds: float = 1.0


# Latencies are counted in 0.1 ms bins up to 10 s (the last bin takes the
# rest): percentiles of any length of stream in a fixed 800 KB.
_LATENCY_BIN = 1e-4
_LATENCY_BINS = 100_001


@dataclass
class LiveSummary:
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    audio_packets: int = 0
    latency_counts: np.ndarray = field(default_factory=lambda: np.zeros(_LATENCY_BINS, np.int64))

    def add_latency(self, seconds: float) -> None:
        self.latency_counts[min(int(seconds / _LATENCY_BIN), _LATENCY_BINS - 1)] += 1

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the frames' latencies, seconds (to the
        0.1 ms bin); NaN before any frame."""
        total = int(self.latency_counts.sum())
        if not total:
            return float("nan")
        rank = max(1, int(np.ceil(q / 100 * total)))
        index = int(np.searchsorted(np.cumsum(self.latency_counts), rank))
        return (index + 0.5) * _LATENCY_BIN

    @property
    def drop_rate(self) -> float:
        return self.dropped / self.frames_in if self.frames_in else 0.0

    def report(self) -> dict[str, float]:
        """The figures a benchmark keeps: counts, drop rate, latency in ms."""
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "drop_rate": round(self.drop_rate, 3),
            "audio_packets": self.audio_packets,
            **{f"latency_ms_p{q}": round(self.percentile(q) * 1000, 1) for q in (50, 95, 99)},
        }


def is_camera(spec: str) -> bool:
    return spec.startswith("/dev/video") or spec.isdigit()


def _scheme(spec: str) -> str:
    head, sep, _ = spec.partition("://")
    return head.lower() if sep else ""


@dataclass
class _Captured:
    frame: Frame
    seconds: float  # presentation time, from the stream's start
    captured: float  # time.monotonic() when decoded


class LiveObserver(Protocol):
    """Where per-frame figures go as they happen (Prometheus, for the CLI)."""

    def sent(self, latency: float) -> None: ...

    def dropped(self) -> None: ...


class _Mailbox:
    """The newest captured frame only: a frame not taken before the next
    arrives is dropped (counted)."""

    def __init__(self, observer: LiveObserver | None) -> None:
        self._item: _Captured | None = None
        self._done = False
        self._cond = threading.Condition()
        self._observer = observer
        self.dropped = 0

    def put(self, item: _Captured) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
                if self._observer is not None:
                    self._observer.dropped()
            self._item = item
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify()

    def take(self) -> _Captured | None:
        """The newest frame, waiting for one; None once closed and empty."""
        with self._cond:
            while self._item is None and not self._done:
                self._cond.wait()
            item, self._item = self._item, None
            return item


class _Input:
    """The input: a V4L2 camera through OpenCV, or anything FFmpeg opens."""

    def __init__(self, options: LiveOptions) -> None:
        self.options = options
        self.camera: cv2.VideoCapture | None = None
        self.container: av.container.InputContainer | None = None
        spec = options.input
        if is_camera(spec):
            device = int(spec) if spec.isdigit() else spec
            if isinstance(device, str) and not Path(device).exists():
                raise InvalidInputError(f"camera {spec}: no such device")
            self.camera = cv2.VideoCapture(device, cv2.CAP_V4L2)
            if not self.camera.isOpened():
                raise InvalidInputError(f"camera {spec}: cannot open it (busy, or not a camera)")
            self.audio: Any = None
            self.realtime = False
            return
        if not _scheme(spec) and not Path(spec).is_file():
            raise InvalidInputError(f"input {spec}: no such file")
        try:
            self.container = av.open(spec, timeout=(options.open_timeout, options.open_timeout))
        except (av.error.FFmpegError, OSError) as exc:
            raise MediaError(spec, f"cannot open the live input ({exc})") from None
        if self.container.format.name in TEXT_DEMUXERS:
            self.container.close()
            raise MediaError(spec, "cannot open the live input (a text file, not a video)")
        if not self.container.streams.video:
            self.container.close()
            raise MediaError(spec, "no video stream")
        self.video = self.container.streams.video[0]
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        self.realtime = options.realtime if options.realtime is not None else not _scheme(spec)

    def close(self) -> None:
        if self.camera is not None:
            self.camera.release()
        if self.container is not None:
            self.container.close()


class _Output:
    """The output stream: H.264 with low-latency settings (marked as
    synthetic media on every keyframe) and the input's audio."""

    def __init__(self, options: LiveOptions, size: tuple[int, int], source: _Input, model: str):
        spec = options.output
        scheme = _scheme(spec)
        if spec.startswith("/dev/video"):
            raise InvalidInputError(
                f"output {spec}: writing to a V4L2 loopback device needs FFmpeg's v4l2 output, "
                "which this build lacks; publish to a udp://, rtmp:// or file output instead"
            )
        fmt = _FORMAT_FOR_SCHEME.get(scheme)
        if scheme and fmt is None:
            raise InvalidInputError(f"output {spec}: publish to udp://, srt://, tcp:// or rtmp://")
        if not scheme:
            fmt = {".flv": "flv", ".ts": "mpegts", ".mkv": "matroska"}.get(
                Path(spec).suffix.lower(), "mpegts"
            )
        try:
            self.container = av.open(
                spec, "w", format=fmt, timeout=(options.open_timeout, options.open_timeout)
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise MediaError(spec, f"cannot open the live output ({exc})") from None
        width, height = size
        video = self.container.add_stream("libx264", rate=30)
        video.width, video.height = width - width % 2, height - height % 2
        video.pix_fmt = "yuv420p"
        video.time_base = MS
        video.codec_context.time_base = MS
        video.options = {
            "crf": str(options.crf),
            "preset": options.preset,
            "tune": "zerolatency",
            "g": str(max(1, round(30 * options.keyframe_seconds))),
        }
        self.video = video
        self.size = (video.width, video.height)
        self.container.metadata["comment"] = SYNTHETIC_COMMENT
        self.container.metadata["swapline_model"] = model
        self.marked = MarkedVideo(self.container, video, "h264", every_keyframe=True)
        self.audio_out: Any = None
        self.resampler: Any = None
        if source.audio is not None:
            name = source.audio.codec_context.name
            if name in _COPIED_AUDIO:
                self.audio_out = self.container.add_stream_from_template(source.audio)
            else:
                self.audio_out = self.container.add_stream("aac", rate=source.audio.rate or 48000)
                self.resampler = av.AudioResampler(
                    format="fltp", layout="stereo", rate=self.audio_out.rate
                )
        self._last_ms = -1

    def write_video(self, image: np.ndarray, seconds: float) -> None:
        width, height = self.size
        if image.shape[1] != width or image.shape[0] != height:
            image = np.ascontiguousarray(image[:height, :width])
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        ms = max(round(seconds * 1000), self._last_ms + 1)  # strictly increasing
        self._last_ms = ms
        frame.pts, frame.time_base = ms, MS
        for packet in self.video.encode(frame):
            self.marked.mux(packet)

    def write_audio(self, packet: av.Packet, offset: float) -> int:
        """Muxes one input audio packet, ``offset`` seconds earlier (the
        stream's start); the packets written."""
        if packet.pts is None or packet.time_base is None:
            return 0
        shift = round(offset / packet.time_base)
        if self.resampler is None:
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            if packet.pts < 0:
                return 0
            packet.stream = self.audio_out
            self.container.mux(packet)
            return 1
        written = 0
        for decoded in packet.decode():
            decoded.pts = None
            for chunk in self.resampler.resample(decoded):
                for out_packet in self.audio_out.encode(chunk):
                    self.container.mux(out_packet)
                    written += 1
        return written

    def close(self) -> None:
        with contextlib.suppress(av.error.FFmpegError, ValueError):
            for packet in self.video.encode():
                self.marked.mux(packet)
            self.marked.flush()
        with contextlib.suppress(av.error.FFmpegError, OSError):
            self.container.close()


SwapFrame = Callable[[Frame], Iterator[tuple[int, np.ndarray]]]
"""Swaps one frame: yields (index, swapped image) of the frames finished
(the pipeline may hold a frame back a few frames, to judge a face)."""


def run_live(
    options: LiveOptions,
    swap: SwapFrame,
    model: str,
    stop: threading.Event | None = None,
    observer: LiveObserver | None = None,
) -> LiveSummary:
    """Captures, swaps and publishes until the input ends, ``seconds`` pass
    or ``stop`` is set; each frame's latency (and each drop) goes to
    ``observer`` as it happens."""
    stop = stop or threading.Event()
    source = _Input(options)
    mailbox = _Mailbox(observer)
    # Audio waits here for its video (the swap's latency); bounded.
    audio: collections.deque[av.Packet] = collections.deque(maxlen=4096)
    summary = LiveSummary()
    failure: list[BaseException] = []
    started = time.monotonic()
    first_seconds: list[float] = []
    items = _captured(source, first_seconds, started, audio, stop)

    def capture() -> None:
        try:
            for item in items:
                summary.frames_in += 1
                mailbox.put(item)
                if options.seconds is not None and time.monotonic() - started > options.seconds:
                    break
        except BaseException as exc:
            failure.append(exc)
        finally:
            mailbox.close()

    try:
        first = next(items, None)  # the output's size comes from it
        if first is None:
            raise MediaError(options.input, "the live input ended before its first frame")
        summary.frames_in = 1
        output = _Output(options, first.frame.size, source, model)
    except BaseException:
        source.close()
        raise
    reader = threading.Thread(target=capture, name="live-capture", daemon=True)
    reader.start()
    pending: dict[int, _Captured] = {}
    try:
        item: _Captured | None = first
        while item is not None and not stop.is_set():
            pending[item.frame.index] = item
            for index, image in swap(item.frame):
                done = pending.pop(index, None)
                if done is None:
                    continue
                _write_audio(output, audio, first_seconds[0], done.seconds, summary)
                output.write_video(image, done.seconds)
                latency = time.monotonic() - done.captured
                if observer is not None:
                    observer.sent(latency)
                summary.add_latency(latency)
                summary.frames_out += 1
            # Frames held back and then passed over by newer ones: dropped.
            for index in [i for i in pending if i < item.frame.index - 30]:
                del pending[index]
            item = mailbox.take()
        _write_audio(output, audio, first_seconds[0], float("inf"), summary)
    finally:
        stop.set()
        output.close()
        reader.join(timeout=options.open_timeout)
        source.close()
    summary.dropped = mailbox.dropped
    if failure and not isinstance(failure[0], StopIteration):
        exc = failure[0]
        if isinstance(exc, av.error.FFmpegError):
            raise MediaError(options.input, f"the live input failed ({exc})") from None
        raise exc
    return summary


def _write_audio(
    output: _Output,
    audio: collections.deque[av.Packet],
    offset: float,
    until: float,
    summary: LiveSummary,
) -> None:
    """Muxes the input's audio up to ``until`` seconds (the video frame about
    to be written), so that both streams go out in step."""
    while audio:
        packet = audio[0]
        pts, time_base = packet.pts, packet.time_base
        if (
            output.audio_out is not None
            and pts is not None
            and time_base is not None
            and float(pts * time_base) - offset > until
        ):
            return
        audio.popleft()
        if output.audio_out is not None:
            summary.audio_packets += output.write_audio(packet, offset)


def _captured(
    source: _Input,
    first_seconds: list[float],
    started: float,
    audio: collections.deque[av.Packet],
    stop: threading.Event,
) -> Iterator[_Captured]:
    """Decoded frames of the input, in order, paced in real time when the
    input is a file; audio packets go to ``audio`` on the way."""
    index = 0
    if source.camera is not None:
        while not stop.is_set():
            ok, image = source.camera.read()
            if not ok:
                return
            now = time.monotonic()
            if not first_seconds:
                first_seconds.append(0.0)
            yield _Captured(
                Frame(index, round((now - started) * 1000), MS, image), now - started, now
            )
            index += 1
        return
    container = source.container
    assert container is not None
    streams = [source.video] + ([source.audio] if source.audio is not None else [])
    for packet in container.demux(*streams):
        if stop.is_set():
            return
        if packet.stream.type == "audio":
            if packet.pts is not None:
                if not first_seconds:
                    first_seconds.append(float(packet.pts * packet.time_base))
                audio.append(packet)
            continue
        for decoded in packet.decode():
            video_frame = cast(av.VideoFrame, decoded)
            if video_frame.pts is None or video_frame.time_base is None:
                continue
            seconds = float(video_frame.pts * video_frame.time_base)
            if not first_seconds:
                first_seconds.append(seconds)
            relative = seconds - first_seconds[0]
            if source.realtime:
                wait = started + relative - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            image = video_frame.to_ndarray(format="bgr24")
            now = time.monotonic()
            yield _Captured(
                Frame(index, video_frame.pts, video_frame.time_base, image), relative, now
            )
            index += 1


def summary_line(summary: LiveSummary) -> str:
    return (
        f"{summary.frames_out} frames out of {summary.frames_in} in, {summary.dropped} dropped "
        f"({summary.drop_rate:.1%}), {summary.audio_packets} audio packets; latency "
        f"p50 {summary.percentile(50) * 1000:.0f} ms, p95 {summary.percentile(95) * 1000:.0f} ms, "
        f"p99 {summary.percentile(99) * 1000:.0f} ms"
    )


def embedded_swap(stages: Stages, options: SwapOptions) -> SwapFrame:
    """Swaps live frames with the stages given (in this process, or each
    stage over gRPC): the pipeline files use, a frame at a time."""
    swapper = FrameSwapper(stages, replace(options, window=1, min_track_frames=1))
    progress = Progress()
    images: dict[int, np.ndarray] = {}

    def swap(frame: Frame) -> Iterator[tuple[int, np.ndarray]]:
        images[frame.index] = frame.image
        for patches in swapper.run([[frame]], progress, end=False):
            image = images.pop(patches.index, None)
            if image is not None:
                yield patches.index, paste(image.copy(), patches.patches)
        for index in [i for i in images if i < frame.index - 30]:
            del images[index]  # held back and overtaken: dropped

    return swap


class RemoteSwap:
    """Swaps live frames through an orchestrator's ``SwapStream``: one
    stream for the whole session, frames as JPEG both ways."""

    def __init__(
        self,
        address: str,
        config: opb.SwapStreamConfig,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._channel = channel(address, credentials)
        stub = orchestrator_pb2_grpc.OrchestratorStub(self._channel)
        self._requests: queue.Queue[opb.SwapStreamRequest | None] = queue.Queue()
        self._requests.put(opb.SwapStreamRequest(config=config))
        self._replies = stub.SwapStream(iter(self._requests.get, None))
        self.address = address

    def __call__(self, frame: Frame) -> Iterator[tuple[int, np.ndarray]]:
        message = opb.StreamFrame(
            frame=pb.FrameRef(index=frame.index),
            image=wire.image_message(frame.image, pb.IMAGE_ENCODING_JPEG),
        )
        self._requests.put(opb.SwapStreamRequest(frame=message))
        try:
            reply = next(self._replies)
        except grpc.RpcError as exc:
            raise error_for(exc, f"orchestrator at {self.address}") from None
        yield reply.frame.frame.index, wire.decode_image_message(reply.frame.image)

    def close(self) -> None:
        self._requests.put(None)
        self._channel.close()

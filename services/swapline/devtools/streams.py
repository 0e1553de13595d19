"""Real network streams on this machine for tests and benchmarks: a file
published as MPEG-TS over UDP at its own pace (as a camera or encoder
would send it), and a reader of such a stream."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from swapline.stages.encode import MARK_UUID

_NINETY_K = Fraction(1, 90000)


def udp_url(port: int, listen: bool = False) -> str:
    """A loopback UDP address; a listener's with a large receive buffer."""
    url = f"udp://127.0.0.1:{port}"
    return url + "?fifo_size=1000000&overrun_nonfatal=1&buffer_size=8388608" if listen else url


def publish(
    source: str | Path,
    url: str,
    stop: threading.Event,
    size: tuple[int, int] | None = None,
    loops: int = 1,
    keyframe_every: int = 15,
) -> int:
    """Sends ``source`` to ``url`` as MPEG-TS (H.264 + its AAC audio) at
    the pace of its timestamps, re-encoded with frequent keyframes so a
    receiver can join at any time, ``loops`` times; the frames sent."""
    sent = 0
    with av.open(str(url), "w", format="mpegts") as out:
        video = None
        audio_out = None
        start = time.monotonic()
        offset = 0.0
        for _ in range(loops):
            with av.open(str(source)) as inp:
                v_in = inp.streams.video[0]
                a_in = inp.streams.audio[0] if inp.streams.audio else None
                if video is None:
                    width, height = size or (v_in.width, v_in.height)
                    video = out.add_stream("libx264", rate=v_in.average_rate or 30)
                    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
                    video.options = {
                        "preset": "ultrafast",
                        "tune": "zerolatency",
                        "g": str(keyframe_every),
                    }
                    if a_in is not None:
                        audio_out = out.add_stream("aac", rate=a_in.rate or 48000)
                resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
                last = 0.0
                for frame in inp.decode(*([v_in] + ([a_in] if a_in is not None else []))):
                    if stop.is_set():
                        return sent
                    if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                        continue
                    if frame.pts is None or frame.time_base is None:
                        continue
                    seconds = offset + float(frame.pts * frame.time_base)
                    last = max(last, seconds)
                    wait = start + seconds - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    if isinstance(frame, av.VideoFrame):
                        image: np.ndarray = frame.to_ndarray(format="bgr24")
                        if size is not None:
                            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                        new = av.VideoFrame.from_ndarray(image, format="bgr24")
                        new.pts = round(seconds * 90000)
                        new.time_base = video.codec_context.time_base = _NINETY_K
                        for packet in video.encode(new):
                            out.mux(packet)
                        sent += 1
                    elif audio_out is not None:
                        frame.pts = None
                        for chunk in resampler.resample(frame):
                            for packet in audio_out.encode(chunk):
                                out.mux(packet)
                offset = last + 1 / 30
        if video is not None:
            for packet in video.encode():
                out.mux(packet)
    return sent


@dataclass
class Received:
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (seconds, BGR)
    audio_frames: int = 0
    marked_keyframes: int = 0
    keyframes: int = 0
    error: str = ""


def receive(url: str, until: threading.Event, timeout: float = 30.0) -> Received:
    """Reads an MPEG-TS stream from ``url`` until ``until`` is set (or it
    ends): decoded video frames, audio frames, and how many keyframes carry
    the synthetic-media mark."""
    got = Received()
    marker = bytes.fromhex(MARK_UUID)
    try:
        with av.open(url, format="mpegts", timeout=(timeout, 5.0)) as inp:
            streams = [s for s in inp.streams if s.type in ("video", "audio")]
            for packet in inp.demux(*streams):
                if until.is_set() and packet.stream.type == "video" and packet.is_keyframe:
                    break
                if packet.stream.type == "video" and packet.is_keyframe:
                    got.keyframes += 1
                    got.marked_keyframes += marker in bytes(packet)
                with contextlib.suppress(av.error.FFmpegError):
                    for decoded in packet.decode():
                        if isinstance(decoded, av.VideoFrame):
                            base = decoded.time_base
                            t = float(decoded.pts * base) if decoded.pts and base else 0.0
                            got.frames.append((t, decoded.to_ndarray(format="bgr24")))
                        else:
                            got.audio_frames += 1
    except av.error.FFmpegError as exc:
        got.error = str(exc)
    return got


@contextlib.contextmanager
def receiving(url: str, timeout: float = 30.0) -> Iterator[tuple[threading.Event, Received]]:
    """:func:`receive` on a thread; set the event to stop after the next
    keyframe (or when the stream times out)."""
    until = threading.Event()
    result = Received()

    def run() -> None:
        got = receive(url, until, timeout)
        result.__dict__.update(got.__dict__)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield until, result
    finally:
        until.set()
        thread.join(timeout + 10)

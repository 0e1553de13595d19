"""Clips the benchmarks make from the bundled ones (re-encoded, looped,
tiled), and the codec's own costs: the transcode floor."""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import cv2
import numpy as np

from swapline.media import open_media
from swapline.stages.encode import EncodeOptions, FramePatches, encode


def codec_cpu_per_frame(clip: Path, limit: int) -> tuple[float, float]:
    """CPU seconds per frame of decoding and of encoding (all codec
    threads): the process's CPU time for decoding alone, and for a transcode
    minus that."""

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    with tempfile.TemporaryDirectory() as tmp:
        short = Path(tmp) / "short.mp4"
        reencoded(clip, short, limit)
        with open_media(short) as reader:
            count = reader.info.frame_count
        start = cpu()
        with open_media(short) as reader:
            for _ in reader.frames():
                pass
        decode = cpu() - start
        start = cpu()
        encode(short, Path(tmp) / "out.mp4", _no_patches(count), EncodeOptions())
        transcode = cpu() - start
    return decode / max(1, count), max(0.0, transcode - decode) / max(1, count)


def _no_patches(count: int) -> Iterator[FramePatches]:
    for index in range(count):
        yield FramePatches(index, [])


def transcode_fps(clip: Path, out: Path) -> float:
    """The transcode floor: decode + encode with the pipeline's settings and
    no face work."""
    with open_media(clip) as reader:
        frames = sum(1 for _ in reader.frames())
    start = time.perf_counter()
    encode(clip, out, _no_patches(frames), EncodeOptions())
    return frames / (time.perf_counter() - start)


def reencoded(source: Path, out: Path, frames: int, size: tuple[int, int] | None = None) -> Path:
    """``frames`` frames of ``source`` (from the start again when it is
    shorter), optionally resized, as an H.264 clip without audio."""
    with av.open(str(out), "w") as container:
        video = None
        written = 0
        while written < frames:
            before = written
            with av.open(str(source)) as inp:
                stream = inp.streams.video[0]
                for frame in inp.decode(stream):
                    if written >= frames:
                        break
                    image: np.ndarray = frame.to_ndarray(format="bgr24")
                    if size is not None:
                        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                    if video is None:
                        video = container.add_stream("libx264", rate=stream.average_rate or 30)
                        video.pix_fmt = "yuv420p"
                        video.height, video.width = image.shape[:2]
                    new = av.VideoFrame.from_ndarray(image, format="bgr24")
                    for packet in video.encode(new):
                        container.mux(packet)
                    written += 1
            if written == before:
                raise ValueError(f"{source}: no video frames")
        if video is not None:
            for packet in video.encode():
                container.mux(packet)
    return out


def looped_clip(source: Path, seconds: float, out: Path) -> Path:
    """``source`` repeated to ``seconds`` (video only), re-encoded."""
    with av.open(str(source)) as inp:
        rate = float(inp.streams.video[0].average_rate or 30)
    return reencoded(source, out, int(seconds * rate))


def tiled_clip(clips: Sequence[Path], out: Path, frames: int, tile: tuple[int, int]) -> Path:
    """Several talking-head clips side by side (2 or 4 faces per frame)."""
    readers = [av.open(str(c)) for c in clips]
    try:
        streams = [r.decode(video=0) for r in readers]
        columns = 2
        with av.open(str(out), "w") as container:
            video = container.add_stream("libx264", rate=25)
            video.pix_fmt = "yuv420p"
            rows = (len(clips) + 1) // columns
            video.width, video.height = tile[0] * columns, tile[1] * rows
            for _ in range(frames):
                images: list[np.ndarray] = []
                for stream in streams:
                    image = next(stream).to_ndarray(format="bgr24")
                    images.append(cv2.resize(image, tile, interpolation=cv2.INTER_AREA))
                while len(images) < rows * columns:
                    images.append(np.zeros_like(images[0]))
                grid: np.ndarray = np.vstack(
                    [np.hstack(images[r * columns : (r + 1) * columns]) for r in range(rows)]
                )
                for packet in video.encode(av.VideoFrame.from_ndarray(grid, format="bgr24")):
                    container.mux(packet)
            for packet in video.encode():
                container.mux(packet)
    finally:
        for reader in readers:
            reader.close()
    return out

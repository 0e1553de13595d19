"""``make bench``: end-to-end throughput, measured as ratios in one run.

* embedded frames/s against the transcode floor (decode + encode with the
  same settings and no face work);
* distributed (every stage its own server on this machine) against embedded;
* bytes sent between services per frame against one raw BGR frame;
* peak memory of a 60-second clip against a 5-second one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av

from swapline.media import open_media
from swapline.pipeline import EmbeddedStages, SwapOptions, swap_file
from swapline.stages.encode import EncodeOptions, FramePatches, encode

REPO = Path(__file__).resolve().parents[3]


def _no_patches(count: int) -> Iterator[FramePatches]:
    for index in range(count):
        yield FramePatches(index, [])


def transcode_fps(clip: Path, out: Path) -> float:
    with open_media(clip) as reader:
        frames = sum(1 for _ in reader.frames())
    start = time.perf_counter()
    encode(clip, out, _no_patches(frames), EncodeOptions())
    return frames / (time.perf_counter() - start)


def embedded_fps(clip: Path, out: Path, model: str, repository: Path) -> float:
    start = time.perf_counter()
    summary, _ = swap_file(clip, out, EmbeddedStages(repository), SwapOptions(model=model))
    return summary.frames / (time.perf_counter() - start)


def distributed_fps(
    clip: Path, out: Path, model: str, repository: Path, tmp: Path
) -> tuple[float, float]:
    from swapline.remote import RemoteStages, StageAddresses
    from swapline.runtime.launch import start_server, stop_server

    env = {
        "SWAPLINE_MODEL_REPOSITORY": str(repository),
        "SWAPLINE_STORAGE_ROOTS": os.pathsep.join([str(tmp), str(clip.parent.resolve())]),
    }
    servers = {
        name: start_server(name, tmp, env)
        for name in ("detector", "aligner", "swapper", "blender", "encoder")
    }
    try:
        stages = RemoteStages(StageAddresses(**{n: s.address for n, s in servers.items()}))
        start = time.perf_counter()
        summary, _ = swap_file(clip, out, stages, SwapOptions(model=model))
        fps = summary.frames / (time.perf_counter() - start)
        with open_media(clip) as reader:
            raw = reader.info.width * reader.info.height * 3
        ratio = stages.bytes_sent / summary.frames / raw
        stages.close()
        return fps, ratio
    finally:
        for server in servers.values():
            stop_server(server)


def looped_clip(source: Path, seconds: float, out: Path) -> Path:
    """``source`` repeated to ``seconds`` (video only), re-encoded."""
    with av.open(str(source)) as inp:
        stream = inp.streams.video[0]
        rate = stream.average_rate or 30
        frames = [f.to_ndarray(format="bgr24") for f in inp.decode(stream)]
    total = int(seconds * float(rate))
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        for i in range(total):
            frame = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="bgr24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    return out


def peak_memory_mb(clip: Path, model: str, repository: Path, out: Path) -> float:
    """Peak resident memory of a fresh process swapping ``clip``."""
    code = (
        "import resource, sys\n"
        "from swapline.pipeline import EmbeddedStages, SwapOptions, swap_file\n"
        f"swap_file({str(clip)!r}, {str(out)!r}, EmbeddedStages({str(repository)!r}), "
        f"SwapOptions(model={model!r}))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", type=Path, default=REPO / "tests/data/s18.mp4")
    parser.add_argument(
        "--memory-clip", type=Path, default=REPO / "tests/data/carphone_pristine.mp4"
    )
    parser.add_argument("--model", default="d6_to_d10")
    parser.add_argument("--repository", type=Path, default=REPO / "models/repository")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    results: dict[str, object] = {
        "clip": str(args.clip),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        floor = transcode_fps(args.clip, tmp / "floor.mp4")
        embedded = embedded_fps(args.clip, tmp / "embedded.mp4", args.model, args.repository)
        distributed, bytes_ratio = distributed_fps(
            args.clip, tmp / "distributed.mp4", args.model, args.repository, tmp
        )
        short = looped_clip(args.memory_clip, 5, tmp / "short.mp4")
        long = looped_clip(args.memory_clip, 60, tmp / "long.mp4")
        memory_short = peak_memory_mb(short, args.model, args.repository, tmp / "m1.mp4")
        memory_long = peak_memory_mb(long, args.model, args.repository, tmp / "m2.mp4")
    results.update(
        {
            "transcode_floor_fps": round(floor, 2),
            "embedded_fps": round(embedded, 2),
            "distributed_fps": round(distributed, 2),
            "embedded_vs_floor": round(embedded / floor, 3),
            "distributed_vs_embedded": round(distributed / embedded, 3),
            "bytes_per_frame_vs_raw_frame": round(bytes_ratio, 3),
            "peak_memory_5s_mb": round(memory_short, 1),
            "peak_memory_60s_mb": round(memory_long, 1),
            "peak_memory_60s_vs_5s": round(memory_long / memory_short, 3),
        }
    )
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:{width}s}  {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

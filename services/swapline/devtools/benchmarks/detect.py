"""``make bench-detect``: detection + alignment frames/s against decoding alone.

Usage: python -m swapline.devtools.benchmarks.detect CLIP [--repeat N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from swapline.media import open_media
from swapline.model.extract import analyse_frames
from swapline.stages.align import AlignOptions, AlignSession
from swapline.stages.detect import FaceDetector
from swapline.stages.select import Selection, SelectMode


def decode_fps(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    with open_media(path) as reader:
        frames = sum(1 for _ in reader.frames())
    return frames, frames / (time.perf_counter() - start)


def analyse_fps(path: Path, workers: int) -> tuple[int, int, float]:
    detector = FaceDetector()
    session = AlignSession(AlignOptions(size=256))
    start = time.perf_counter()
    frames = faces = 0
    with open_media(path) as reader:
        for _, found in analyse_frames(
            reader.frames(), detector, session, Selection(SelectMode.ALL), workers
        ):
            frames += 1
            faces += len(found)
    return frames, faces, frames / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clip", type=Path)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best counts")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)

    cores = os.cpu_count() or 1
    best = {"decode": 0.0, "one": 0.0, "all": 0.0}
    frames = faces = 0
    for _ in range(args.repeat):
        frames, fps = decode_fps(args.clip)
        best["decode"] = max(best["decode"], fps)
        frames, faces, fps = analyse_fps(args.clip, 1)
        best["one"] = max(best["one"], fps)
        frames, faces, fps = analyse_fps(args.clip, cores)
        best["all"] = max(best["all"], fps)

    with open_media(args.clip) as reader:
        size = f"{reader.info.width}x{reader.info.height}"
    result = {
        "clip": str(args.clip),
        "resolution": size,
        "frames": frames,
        "faces": faces,
        "cores": cores,
        "cpu": platform.processor() or platform.machine(),
        "decode_fps": round(best["decode"], 1),
        "detect_align_fps_1_thread": round(best["one"], 1),
        "detect_align_fps": round(best["all"], 1),
        "ratio_to_decode": round(best["all"] / best["decode"], 3),
    }
    print(f"clip               {args.clip} ({size}, {frames} frames, {faces} faces)")
    print("work               decode, HOG at 640 px, 68 landmarks, 256 px whole-face crop")
    print(f"decode only        {result['decode_fps']:8.1f} frames/s")
    print(f"detect + align     {result['detect_align_fps_1_thread']:8.1f} frames/s  (1 thread)")
    print(f"detect + align     {result['detect_align_fps']:8.1f} frames/s  ({cores} threads)")
    print(f"ratio to decoding  {result['ratio_to_decode']:8.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

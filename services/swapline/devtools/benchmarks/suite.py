"""``swapline bench`` / ``make bench``: the benchmark suite.

Prints a table and writes JSON. Every figure is measured in this run on this
machine; comparisons are ratios between runs made minutes apart.

* end-to-end frames/s, embedded and distributed, against the transcode floor
  (decode + encode with the same settings, no face work);
* CPU time of every stage per frame and per face (p50/p95 over 16-frame
  windows), each stage on one thread;
* bytes sent between services per frame against one raw frame;
* peak memory of every process (embedded, and each server when distributed);
* how the cost grows with video length, resolution and the number of faces;
* what the occlusion segmenter adds to the swap model, CPU ms per face;
* live: latency from capture to output (p50/p95/p99) and frames dropped,
  between two real UDP streams at 480p and 720p.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swapline.devtools.benchmarks.clips import (
    looped_clip,
    reencoded,
    tiled_clip,
    transcode_fps,
)
from swapline.devtools.benchmarks.costs import stage_costs
from swapline.media import open_media
from swapline.pipeline import SwapOptions

ROUNDS = 3  # alternating floor / embedded / distributed runs behind each headline ratio


def run_embedded(clip: Path, out: Path, model: str, repository: Path) -> dict[str, float]:
    """Frames/s and peak memory of a fresh process swapping ``clip``."""
    code = (
        "import json, resource, sys, time\n"
        "from swapline.pipeline import EmbeddedStages, SwapOptions, swap_file\n"
        "stages = EmbeddedStages(sys.argv[3])\n"
        "start = time.perf_counter()\n"
        "summary, progress = swap_file(sys.argv[1], sys.argv[2], stages, "
        "SwapOptions(model=sys.argv[4]))\n"
        "elapsed = time.perf_counter() - start\n"
        "print(json.dumps({'fps': summary.frames / elapsed, 'frames': summary.frames, "
        "'faces': progress.faces_swapped, "
        "'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(clip), str(out), str(repository), model],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def distributed_run(
    clip: Path, out: Path, model: str, repository: Path, tmp: Path
) -> dict[str, Any]:
    """Frames/s, bytes per frame and every server's peak memory (VmHWM)."""
    from swapline.config import StageAddresses
    from swapline.pipeline.remote import RemoteStages
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
        # Mutual TLS, as a cluster runs: what it costs is in the numbers.
        credentials = servers["encoder"].credentials()
        stages = RemoteStages(
            StageAddresses(**{n: s.address for n, s in servers.items()}), credentials=credentials
        )
        start = time.perf_counter()
        summary, _ = _swap(clip, out, stages, model)
        fps = summary.frames / (time.perf_counter() - start)
        with open_media(clip) as reader:
            raw = reader.info.width * reader.info.height * 3
        ratio = stages.bytes_sent / summary.frames / raw
        stages.close()
        memory = {name: _peak_mb(s.process.pid) for name, s in servers.items()}
        memory["orchestrator (this process)"] = (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        return {"fps": fps, "bytes_ratio": ratio, "peak_mb": memory}
    finally:
        for server in servers.values():
            stop_server(server)


def _swap(clip: Path, out: Path, stages: Any, model: str) -> Any:
    from swapline.pipeline import swap_file

    return swap_file(clip, out, stages, SwapOptions(model=model))


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def occlusion_cost(
    repository: Path, model: str, batch: int = 64, repeats: int = 5
) -> dict[str, Any]:
    """CPU ms per face on one thread of the swap model with its occlusion
    segmenter and without it (the entry's ``swap.onnx``), float models, and
    the difference: what the occlusion mask costs."""
    import numpy as np
    import onnxruntime as ort

    from swapline.stages.model_contract import INPUT, OUTPUTS
    from swapline.stages.swap import ModelRepository

    entry = ModelRepository(repository).get(model)
    if not entry.has_occlusion:
        return {"segmenter": "none"}
    shape = (batch, entry.resolution, entry.resolution, 3)
    faces = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    models = {"with_segmenter": entry.onnx_path, "swap_only": entry.path / "1" / "swap.onnx"}
    per_face = {}
    for name, path in models.items():
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(list(OUTPUTS), {INPUT: faces[:8]})
        times = []
        for _ in range(repeats):
            start = time.process_time()
            session.run(list(OUTPUTS), {INPUT: faces})
            times.append(time.process_time() - start)
        per_face[name] = 1000 * statistics.median(times) / batch
    return {
        "swap_model_ms_per_face": round(per_face["swap_only"], 2),
        "with_segmenter_ms_per_face": round(per_face["with_segmenter"], 2),
        "occlusion_mask_ms_per_face": round(per_face["with_segmenter"] - per_face["swap_only"], 2),
    }


def live_latency(
    clip: Path, model: str, repository: Path, size: tuple[int, int], seconds: float, tmp: Path
) -> dict[str, Any]:
    """``swapline live`` (its own process) between two real UDP streams on
    this machine: ``clip`` published at its own pace at ``size``, the
    output read back. Capture-to-output latency and the frames dropped."""
    import threading

    from swapline.devtools.streams import publish, receiving, udp_url
    from swapline.runtime.launch import free_port

    source, sink = free_port(), free_port()
    report = tmp / "live.json"
    stop = threading.Event()
    with receiving(udp_url(sink, listen=True)) as (_, received):
        process = subprocess.Popen(
            [
                sys.executable, "-m", "swapline.cli", "live",
                "--input", udp_url(source, listen=True), "--output", udp_url(sink),
                "--model", model, "--repository", str(repository),
                "--seconds", str(seconds), "--json", str(report),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        time.sleep(2.0)
        feeder = threading.Thread(
            target=publish, args=(clip, udp_url(source), stop, size, 3), daemon=True
        )
        feeder.start()
        try:
            _, err = process.communicate(timeout=seconds + 120)
        finally:
            stop.set()
            process.kill()
        if process.returncode != 0:
            raise RuntimeError(f"swapline live failed: {err.strip()[-500:]}")
    result: dict[str, Any] = json.loads(report.read_text())
    result["frames_received"] = len(received.frames)
    result["marked_keyframes"] = f"{received.marked_keyframes}/{received.keyframes}"
    return result


def run_suite(
    clip: Path,
    model: str,
    repository: Path,
    quick: bool = False,
    log: Callable[[str], None] = print,
    data: Path = Path("tests/data"),
) -> dict[str, Any]:
    """Every measure of the suite on ``clip``; ``data`` holds the bundled
    clips tiled for the faces-per-frame runs."""
    results: dict[str, Any] = {
        "clip": str(clip),
        "model": model,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # Floor, embedded and distributed alternate, `rounds` times: each
        # ratio is taken within a round, and the medians are reported, so a
        # slow moment of a shared machine moves one round, not the result.
        rounds = []
        for number in range(1 if quick else ROUNDS):
            log(f"round {number + 1}: transcode floor, embedded, distributed (5 stage servers) ...")
            floor = transcode_fps(clip, tmp / "floor.mp4")
            embedded = run_embedded(clip, tmp / "embedded.mp4", model, repository)
            distributed = distributed_run(clip, tmp / "distributed.mp4", model, repository, tmp)
            rounds.append(
                {
                    "transcode_floor_fps": round(floor, 2),
                    "embedded_fps": round(embedded["fps"], 2),
                    "embedded_vs_floor": round(embedded["fps"] / floor, 3),
                    "distributed_fps": round(distributed["fps"], 2),
                    "distributed_vs_embedded": round(distributed["fps"] / embedded["fps"], 3),
                    "bytes_per_frame_vs_raw_frame": round(distributed["bytes_ratio"], 3),
                }
            )
        for key in rounds[0]:
            results[key] = statistics.median(r[key] for r in rounds)
        results["rounds"] = rounds
        results["peak_memory_mb"] = {
            "embedded": round(embedded["peak_mb"], 1),
            **{f"distributed {k}": round(v, 1) for k, v in distributed["peak_mb"].items()},
        }
        log("per-stage CPU costs ...")
        results["stage_costs"] = stage_costs(clip, model, repository).summary()
        log("occlusion segmenter cost ...")
        results["occlusion"] = occlusion_cost(repository, model)

        log("cost against length ...")
        lengths = (5, 30) if quick else (5, 30, 120)
        by_length = {}
        for seconds in lengths:
            looped = looped_clip(clip, seconds, tmp / f"len{seconds}.mp4")
            run = run_embedded(looped, tmp / f"len{seconds}-out.mp4", model, repository)
            by_length[f"{seconds}s"] = {
                "fps": round(run["fps"], 2),
                "peak_mb": round(run["peak_mb"], 1),
            }
        base = by_length[f"{lengths[0]}s"]
        for row in by_length.values():
            row["fps_vs_shortest"] = round(row["fps"] / base["fps"], 3)
            row["memory_vs_shortest"] = round(row["peak_mb"] / base["peak_mb"], 3)
        results["by_length"] = by_length

        log("cost against resolution ...")
        by_resolution = {}
        for name, size in (("480p", (854, 480)), ("720p", (1280, 720)), ("1080p", (1920, 1080))):
            scaled = reencoded(clip, tmp / f"{name}.mp4", 120, size)
            floor_fps = transcode_fps(scaled, tmp / f"{name}-floor.mp4")
            run = run_embedded(scaled, tmp / f"{name}-out.mp4", model, repository)
            by_resolution[name] = {
                "floor_fps": round(floor_fps, 2),
                "embedded_fps": round(run["fps"], 2),
                "embedded_vs_floor": round(run["fps"] / floor_fps, 3),
            }
            if name == "1080p":  # what the capacity model sizes clusters from
                results["stage_costs_1080p"] = stage_costs(
                    scaled, model, repository, limit=96
                ).summary()
        results["by_resolution"] = by_resolution

        log("cost against the number of faces ...")
        heads = [data / "d10.mp4", data / "d12.mp4", data / "d6.mp4", data / "vfr_talking_1.mp4"]
        by_faces = {}
        for count, clips in ((1, heads[:1]), (2, heads[:2]), (4, heads)):
            tile = (640, 720) if count == 1 else (480, 540)
            tiled = tiled_clip(clips, tmp / f"faces{count}.mp4", 100, tile)
            run = run_embedded(tiled, tmp / f"faces{count}-out.mp4", model, repository)
            by_faces[str(count)] = {
                "fps": round(run["fps"], 2),
                "faces_per_frame": round(run["faces"] / max(1, run["frames"]), 2),
            }
        results["by_faces"] = by_faces

        log("live: UDP stream in, UDP stream out ...")
        results["live"] = {
            name: live_latency(clip, model, repository, size, 10.0 if quick else 20.0, tmp)
            for name, size in (("480p", (854, 480)), ("720p", (1280, 720)))
        }
    return results


def print_table(results: dict[str, Any]) -> None:
    scalars = {k: v for k, v in results.items() if not isinstance(v, (dict, list))}
    width = max(len(k) for k in scalars)
    for key, value in scalars.items():
        print(f"{key:{width}s}  {value}")
    if len(results.get("rounds", [])) > 1:
        print("\nrounds (the ratios above are their medians)")
        for number, row in enumerate(results["rounds"], 1):
            print(f"  {number}  " + ", ".join(f"{k} {v}" for k, v in row.items()))
    for key in ("stage_costs", "stage_costs_1080p"):
        print(f"\n{key}: CPU ms on one thread, per frame p50 / p95, per face p50 / p95")
        for stage, row in results.get(key, {}).items():
            frame = f"{row.get('ms_per_frame_p50', '-')} / {row.get('ms_per_frame_p95', '-')}"
            face = f"{row.get('ms_per_face_p50', '-')} / {row.get('ms_per_face_p95', '-')}"
            print(f"  {stage:10s}  {frame:22s}  {face}")
    if "occlusion" in results:
        print("\nocclusion mask: CPU ms per face on one thread (float models)")
        print("  " + ", ".join(f"{k} {v}" for k, v in results["occlusion"].items()))
    print("\npeak memory (MB)")
    for name, value in results["peak_memory_mb"].items():
        print(f"  {name:34s}  {value}")
    for title, key in (
        ("other clips", "other_clips"),
        ("by video length", "by_length"),
        ("by resolution", "by_resolution"),
        ("by faces per frame", "by_faces"),
        ("live (UDP in, UDP out; latency from capture to output)", "live"),
    ):
        if key not in results:
            continue
        print(f"\n{title}")
        for name, row in results[key].items():
            print(f"  {name:8s}  " + ", ".join(f"{k} {v}" for k, v in row.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--clip",
        type=Path,
        action="append",
        help="clips to measure: the first gets the whole suite, others throughput "
        "against their floor (default tests/data/s18.mp4)",
    )
    parser.add_argument("--model", default="d6_to_d10")
    parser.add_argument("--repository", type=Path, default=Path("models/repository"))
    parser.add_argument("--json", type=Path, default=Path("out/bench.json"))
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("tests/data"),
        help="the bundled clips (default: tests/data of the checkout here)",
    )
    parser.add_argument("--quick", action="store_true", help="skip the 120 s clip")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    clips = args.clip or [args.data / "s18.mp4"]
    results = run_suite(
        clips[0],
        args.model,
        args.repository,
        args.quick,
        lambda m: print(m, file=sys.stderr),
        args.data,
    )
    if clips[1:]:
        results["other_clips"] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for clip in clips[1:]:
                floor = transcode_fps(clip, Path(tmp) / "floor.mp4")
                run = run_embedded(clip, Path(tmp) / "out.mp4", args.model, args.repository)
                results["other_clips"][clip.name] = {
                    "floor_fps": round(floor, 2),
                    "embedded_fps": round(run["fps"], 2),
                    "embedded_vs_floor": round(run["fps"] / floor, 3),
                }
    results["suite_seconds"] = round(time.perf_counter() - started, 1)
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``make gpu-check``: the identity model on a machine with an NVIDIA GPU.

Extracts the d6 (A) / d10 (B) pair, trains at 128 px for a fixed time,
exports fp16, serves the repository through Triton, and prints training
steps/s, inference faces/s at batch 1, 64 and 256 (torch on the GPU and
through Triton), and the identity score and expression error on held-out
frames of B. Runs on a CPU too (slowly), which is how it is tested.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def swapline(*args: str | Path) -> None:
    subprocess.run([sys.executable, "-m", "swapline.cli", *map(str, args)], check=True)


def faces_per_second(
    run: Callable[[np.ndarray], object], faces: np.ndarray, seconds: float
) -> float:
    run(faces)  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run(faces)
        count += len(faces)
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("out/gpu-check"))
    parser.add_argument("--minutes", type=float, default=3.0, help="training time")
    parser.add_argument("--res", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64, help="faces per identity per step")
    parser.add_argument("--bench-seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--data", type=Path, default=Path("tests/data"), help="the bundled clips (d6, d10)"
    )
    args = parser.parse_args(argv)

    import torch

    from swapline.evaluation.identity import evaluate_identity, load_swap_function
    from swapline.model.triton import launched
    from swapline.stages.swap import ModelRepository, TritonEngine
    from swapline.train.data import load_faceset

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    step(f"device: {name}, torch {torch.__version__}, {os.cpu_count()} cores")
    consent = "demo: LivePortrait MIT-licensed sample"
    for clip, out, frames in (
        ("d6.mp4", "a", "0:1008"),
        ("d10.mp4", "b", "0:360"),
        ("d10.mp4", "b_holdout", "360:448"),
    ):
        if not (work / out / "manifest.json").exists():
            step(f"extract {clip} frames {frames}")
            swapline(
                "extract",
                args.data / clip,
                "--out",
                work / out,
                "--size",
                str(args.res),
                "--frames",
                frames,
                "-q",
                "--identity",
                clip,
                "--consent",
                f"{consent} {clip}",
            )
    model = work / "models" / "d6_to_d10"
    step(f"train {args.res} px for {args.minutes} min, batch {args.batch} per identity")
    swapline(
        "train",
        "--src",
        work / "a",
        "--dst",
        work / "b",
        "--out",
        model,
        "--res",
        str(args.res),
        "--encoder-dims",
        "64",
        "--bottleneck-dims",
        "256",
        "--decoder-dims",
        "64",
        "--batch",
        str(args.batch),
        "--minutes",
        str(args.minutes),
        "--lr",
        "3e-4",
        "--device",
        device,
        "--checkpoint-every",
        "100000",
        "--preview-every",
        "100000",
        "-q",
    )
    metadata = json.loads((model / "model.json").read_text())
    results: dict[str, object] = {
        "device": name,
        "training_steps": metadata["training_steps"],
        "training_steps_per_second": metadata["last_run_steps_per_second"],
        "final_loss": metadata["final_loss"],
    }
    repository = work / "repository"
    swapline("export", model, "--repository", repository, "--fp16")

    faces = load_faceset(work / "b_holdout", args.res).faces
    from swapline.model.export import load_checkpoint_model

    torch_model, _ = load_checkpoint_model(model)
    torch_model = torch_model.to(device).eval()

    def torch_swap(batch: np.ndarray) -> object:
        with (
            torch.no_grad(),
            torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"),
        ):
            x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float() / 255
            out = torch_model.swap(x)[0]
            if device == "cuda":
                torch.cuda.synchronize()
            return out

    with launched(repository, work / "triton.log", 18801, 18802, 18803) as url:
        engine = TritonEngine(url, ModelRepository(repository))
        engine.load("d6_to_d10")
        for batch in (1, 64, 256):
            picked = np.ascontiguousarray(np.resize(faces, (batch, *faces.shape[1:])))
            results[f"torch_faces_per_second_batch_{batch}"] = round(
                faces_per_second(torch_swap, picked, args.bench_seconds), 1
            )
            results[f"triton_faces_per_second_batch_{batch}"] = round(
                faces_per_second(
                    lambda f: engine.infer("d6_to_d10", f), picked, args.bench_seconds
                ),
                1,
            )
    swap, res = load_swap_function(model)
    report = evaluate_identity(swap, res, work / "a", work / "b_holdout", limit=88)
    results["identity_score"] = round(report.identity_score, 3)
    results["expression_error"] = round(report.expression_error, 4)
    print()
    for key, value in results.items():
        print(f"{key:40s} {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

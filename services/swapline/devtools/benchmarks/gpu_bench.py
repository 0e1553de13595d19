"""``make gpu-bench``: swap inference and the whole pipeline on an NVIDIA GPU.

* faces/s of the swap model through Triton at batch 1 to 256, fp32 and fp16
  ONNX (and TensorRT when onnxruntime offers it), against the same model run
  directly in PyTorch in this process;
* end-to-end frames/s on a 1080p clip with the CPU stages on this machine's
  cores, against the transcode floor.

Speed does not depend on what a model learned, so the model is a fresh one
at ``--res`` (random weights, trained on no one). Finishes in a few minutes
on a GPU; ``--quick`` is a short CPU run that checks the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from swapline.devtools.benchmarks.clips import reencoded, transcode_fps
from swapline.devtools.benchmarks.gpu_check import faces_per_second, step
from swapline.runtime.launch import free_port

MODEL = "bench"


def fresh_model(out: Path, resolution: int) -> Path:
    """A checkpoint that ``export_model`` accepts: random weights, and a
    consent record saying that no one's face is in it."""
    import torch

    from swapline.train.model import ModelConfig, SwapModel
    from swapline.train.trainer import CHECKPOINT, METADATA

    config = ModelConfig(
        resolution=resolution, encoder_dims=64, bottleneck_dims=256, decoder_dims=64
    )
    model = SwapModel(config)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": model.state_dict(),
            "step": 0,
            "last_loss": 0.0,
            "first_loss": 0.0,
            "config": config.as_dict(),
        },
        out / CHECKPOINT,
    )
    no_one = "benchmark model: random weights, trained on no one's face"
    (out / METADATA).write_text(
        json.dumps(
            {
                "identities": [
                    {"role": "source", "name": "none", "consent_reference": no_one},
                    {"role": "target", "name": "none", "consent_reference": no_one},
                ],
                "notes": "speed benchmark only",
            }
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--batches", default="1,8,32,64,128,256")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--frames", type=int, default=150, help="1080p pipeline frames")
    parser.add_argument("--quick", action="store_true", help="a short CPU check of the script")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--data", type=Path, default=Path("tests/data"), help="the bundled clips (s18.mp4)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.res, args.batches, args.seconds, args.frames = 64, "1,4", 0.3, 12

    import onnxruntime as ort
    import torch

    from swapline.model.export import export_model, load_checkpoint_model
    from swapline.model.triton import launched
    from swapline.pipeline import EmbeddedStages, SwapOptions, swap_file
    from swapline.stages.swap import ModelRepository, TritonEngine

    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    providers = ort.get_available_providers()
    results: dict[str, Any] = {
        "device": name,
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "onnxruntime_providers": providers,
        "resolution": args.res,
        "tensorrt": "TensorrtExecutionProvider" in providers,
    }
    step(f"device {name}, onnxruntime {providers}")
    batches = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        checkpoint = fresh_model(tmp / "model", args.res)
        rng = np.random.default_rng(0)
        faces = rng.integers(0, 256, (max(batches), args.res, args.res, 3), dtype=np.uint8)

        model, _ = load_checkpoint_model(checkpoint)
        model = model.to(device).eval()
        for precision in ("fp32", "fp16"):
            half = precision == "fp16" and device == "cuda"

            def torch_swap(batch: np.ndarray, half: bool = half) -> object:
                with torch.no_grad(), torch.autocast(device, torch.float16, enabled=half):
                    x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float() / 255
                    out = model.swap(x)[0]
                    if device == "cuda":
                        torch.cuda.synchronize()
                    return out.cpu()

            for batch in batches:
                key = f"torch_{precision}_faces_per_second_batch_{batch}"
                results[key] = round(faces_per_second(torch_swap, faces[:batch], args.seconds), 1)
                step(f"{key}: {results[key]}")

        repository = tmp / "repository"
        for precision in ("fp32", "fp16"):
            export_model(
                checkpoint, repository, name=f"{MODEL}_{precision}", fp16=precision == "fp16"
            )
        log = tmp / "triton.log"
        with launched(repository, log, free_port(), free_port(), free_port()) as url:
            engine = TritonEngine(url, ModelRepository(repository))
            for precision in ("fp32", "fp16"):
                entry = f"{MODEL}_{precision}"
                engine.load(entry)

                def infer(batch: np.ndarray, entry: str = entry) -> object:
                    return engine.infer(entry, batch)

                for batch in batches:
                    key = f"triton_{precision}_faces_per_second_batch_{batch}"
                    results[key] = round(faces_per_second(infer, faces[:batch], args.seconds), 1)
                    step(f"{key}: {results[key]}")
        triton = [v for k, v in results.items() if k.startswith("triton_")]
        results["triton_faces_per_second_best"] = max(triton)

        step(f"pipeline on {args.frames} frames of 1080p")
        clip = reencoded(args.data / "s18.mp4", tmp / "1080p.mp4", args.frames, (1920, 1080))
        floor = transcode_fps(clip, tmp / "floor.mp4")
        stages = EmbeddedStages(repository)
        start = time.perf_counter()
        summary, _ = swap_file(clip, tmp / "out.mp4", stages, SwapOptions(model=f"{MODEL}_fp16"))
        fps = summary.frames / (time.perf_counter() - start)
        stages.close()
        results["pipeline_1080p_floor_fps"] = round(floor, 2)
        results["pipeline_1080p_embedded_fps"] = round(fps, 2)
        results["pipeline_1080p_embedded_vs_floor"] = round(fps / floor, 3)
    print()
    for key, value in results.items():
        print(f"{key:44s} {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

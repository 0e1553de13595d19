"""The benchmark tools on small inputs: they run and measure what they say.
Timings are never asserted; only that the numbers exist and are consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swapline.devtools.benchmarks.suite import stage_costs, tiled_clip
from swapline.media import open_media
from swapline.stages.detect import FaceDetector
from tests.conftest import REPO

REPOSITORY = REPO / "models" / "repository"


def test_stage_costs_cover_every_stage(data: Path) -> None:
    costs = stage_costs(data / "d10.mp4", "d6_to_d10", REPOSITORY, limit=48).summary()
    assert set(costs) == {"decode", "detect", "align", "swap", "blend", "encode"}
    for stage in ("detect", "align", "swap", "blend"):
        row = costs[stage]
        assert 0 < row["ms_per_frame_p50"] <= row["ms_per_frame_p95"]
        assert row["ms_per_face_p50"] > 0  # one face per frame: per face = per frame
    assert costs["encode"]["ms_per_frame_p50"] > 0


def test_tiled_clip_holds_one_face_per_tile(data: Path, tmp_path: Path) -> None:
    clips = [data / "d10.mp4", data / "d12.mp4"]
    tiled = tiled_clip(clips, tmp_path / "two.mp4", 5, (320, 360))
    with open_media(tiled) as reader:
        assert (reader.info.width, reader.info.height) == (640, 360)
        frame = next(reader.frames())
    assert len(FaceDetector().detect(frame.image)) == 2


@pytest.mark.slow
def test_gpu_bench_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu-bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "swapline.devtools.benchmarks.gpu_bench",
            "--quick",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    measured = json.loads(out.read_text())
    for engine in ("torch", "triton"):
        for precision in ("fp32", "fp16"):
            for batch in (1, 4):
                assert measured[f"{engine}_{precision}_faces_per_second_batch_{batch}"] > 0
    assert measured["pipeline_1080p_embedded_fps"] > 0
    assert measured["pipeline_1080p_embedded_vs_floor"] > 0

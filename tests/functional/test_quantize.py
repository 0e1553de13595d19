"""The int8 variant for CPUs: `swapline quantize` on the demo model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from swapline.model.quantize import INT8_FILE, INT8_KEY
from swapline.stages.model_contract import METADATA
from swapline.stages.swap import ModelRepository, OnnxEngine
from swapline.train.data import load_faceset
from tests.conftest import REPO, cli

DEMO = REPO / "models" / "repository" / "d6_to_d10"


def extract(data: Path, out: Path, frames: str) -> Path:
    result = cli(
        "extract",
        data / "d10.mp4",
        "--out",
        out,
        "--size",
        "128",
        "--frames",
        frames,
        "--every",
        "2",
        "-q",
        "--identity",
        "d10",
        "--consent",
        "test: LivePortrait MIT sample d10.mp4",
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def float_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo entry without its int8 variant."""
    repository = tmp_path_factory.mktemp("repository")
    entry = repository / DEMO.name
    shutil.copytree(DEMO, entry)
    (entry / "1" / INT8_FILE).unlink(missing_ok=True)
    info = json.loads((entry / METADATA).read_text())
    info.pop(INT8_KEY, None)
    (entry / METADATA).write_text(json.dumps(info))
    profile = entry / "configs" / "cpu.pbtxt"
    profile.write_text(
        "".join(line for line in profile.read_text().splitlines(True) if INT8_FILE not in line)
    )
    return entry


def test_quantize_writes_a_checked_variant_the_cpu_engine_runs(
    float_only: Path, data: Path, tmp_path: Path
) -> None:
    repository = ModelRepository(float_only.parent)
    faceset = extract(data, tmp_path / "d10", "0:80")
    holdout = load_faceset(extract(data, tmp_path / "holdout", "360:400"), 64).faces
    before = OnnxEngine(repository).infer(DEMO.name, holdout)

    result = cli("quantize", float_only, "--faceset", faceset)
    assert result.returncode == 0, result.stderr
    assert "calibrated on 20 faces" in result.stdout, result.stdout
    info = json.loads((float_only / METADATA).read_text())[INT8_KEY]
    assert info["file"] == INT8_FILE and info["calibration_faces"] == 20
    assert info["mean_abs_diff"] < 3.0
    cpu_profile = (float_only / "configs" / "cpu.pbtxt").read_text()
    assert f'default_model_filename: "{INT8_FILE}"' in cpu_profile
    assert "default_model_filename" not in (float_only / "config.pbtxt").read_text()

    entry = repository.get(DEMO.name)
    assert entry.cpu_int8_path == float_only / "1" / INT8_FILE
    assert OnnxEngine(repository).model_path(entry) == entry.cpu_int8_path
    assert OnnxEngine(repository, cpu_int8=False).model_path(entry) == entry.onnx_path
    # On faces it was neither calibrated nor checked on: close to the float
    # model, and yet a different model.
    after = OnnxEngine(repository).infer(DEMO.name, holdout)
    for old, new in zip(before, after, strict=True):
        diff = np.abs(old.astype(np.int16) - new.astype(np.int16))
        assert 0 < diff.mean() < 3.0, diff.mean()
    assert after[0].std() > 10  # still a picture of a face, not a flat tile


def test_quantize_refuses_too_few_faces_and_unknown_entries(
    float_only: Path, data: Path, tmp_path: Path
) -> None:
    few = extract(data, tmp_path / "few", "0:20")  # 10 faces
    result = cli("quantize", float_only, "--faceset", few)
    assert result.returncode != 0
    assert "at least 16" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = cli("quantize", float_only.parent / "nope", "--faceset", few)
    assert result.returncode != 0 and "unknown model" in result.stderr

    broken = tmp_path / "repository" / "broken"
    shutil.copytree(float_only, broken)
    (broken / "1" / "model.onnx").write_bytes(b"not an onnx file")
    result = cli("quantize", broken, "--faceset", extract(data, tmp_path / "more", "0:40"))
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "not a loadable ONNX model" in result.stderr

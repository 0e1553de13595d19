"""`swapline train-occlusion`: the segmenter joined to a swap model keeps
the model's contract, only ever takes pixels out of its mask, leaves the
swapped faces as they were, and adds its region and visible-face outputs
(to the ONNX model and to its Triton configurations)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort

from swapline.stages.model_contract import INPUT, METADATA, OUTPUTS, REGION, VISIBLE
from swapline.train.data import load_faceset
from tests.conftest import REPO, cli

DEMO = REPO / "models" / "repository" / "d6_to_d10"


def run(path: Path, faces: np.ndarray, outputs: tuple[str, ...] = OUTPUTS) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(session.run(list(outputs), {INPUT: faces}))


def test_train_occlusion_joins_the_segmenter_to_the_swap_model(tmp_path: Path, data: Path) -> None:
    entry = tmp_path / "repository" / DEMO.name
    shutil.copytree(DEMO, entry)
    faceset = tmp_path / "d10"
    extracted = cli(
        "extract", data / "d10.mp4", "--out", faceset, "--size", "64", "--frames", "0:48",
        "--every", "2", "-q", "--identity", "d10", "--consent", "test",
    )  # fmt: skip
    assert extracted.returncode == 0, extracted.stderr
    trained = cli("train-occlusion", entry, "--faceset", faceset, "--steps", "3")
    assert trained.returncode == 0, trained.stderr
    assert "joined to" in trained.stdout

    version = entry / "1"
    info = json.loads((entry / METADATA).read_text())
    assert info["occlusion"]["steps"] == 3 and info["occlusion"]["faces"] == 24
    assert "cpu_int8" not in info and not (version / "model.int8.onnx").exists()
    faces = load_faceset(faceset, 64).faces
    swapped_only, mask_only = run(version / "swap.onnx", faces)
    swapped, mask = run(version / "model.onnx", faces)
    assert swapped.shape == swapped_only.shape and mask.shape == mask_only.shape
    assert mask.dtype == np.uint8
    assert np.array_equal(swapped, swapped_only)
    assert (mask <= mask_only).all()  # the segmenter only takes pixels away
    region, visible = run(version / "model.onnx", faces, (REGION, VISIBLE))
    assert np.array_equal(region, mask_only)
    product = np.round(region.astype(np.float32) * visible / 255)
    assert np.abs(product - mask).max() <= 1
    for config in (entry / "config.pbtxt", entry / "configs" / "cpu.pbtxt"):
        text = config.read_text()
        assert all(f'name: "{name}"' in text for name in (*OUTPUTS, REGION, VISIBLE)), config

    again = cli("train-occlusion", entry, "--faceset", faceset, "--steps", "2")
    assert again.returncode == 0, again.stderr  # starts from the swap model alone
    assert np.array_equal(run(version / "model.onnx", faces)[0], swapped_only)


def test_train_occlusion_needs_a_repository_entry(tmp_path: Path) -> None:
    result = cli("train-occlusion", tmp_path, "--faceset", tmp_path, "--steps", "1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"swapline: error: {tmp_path}: not a model repository entry (no swapline.json)"
    ]

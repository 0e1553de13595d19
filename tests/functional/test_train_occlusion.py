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


def test_the_swapper_and_triton_serve_each_mask(tmp_path: Path, data: Path) -> None:
    """A model with a segmenter, behind the Swapper (in-process ONNX Runtime)
    and behind Triton: each SwapMask comes back as the model's own output;
    an unknown one and wrong crops are INVALID_ARGUMENT, and the server
    keeps serving."""
    import grpc
    import pytest

    from swapline.model.triton import launched
    from swapline.protocol import wire
    from swapline.stages.swap import ModelRepository, OnnxEngine, TritonEngine
    from swapline.v1 import swapper_pb2, swapper_pb2_grpc
    from tests.conftest import free_port, start_server, stop_server

    repository = tmp_path / "repository"
    entry = repository / DEMO.name
    shutil.copytree(DEMO, entry)
    faceset = tmp_path / "d10"
    assert cli("extract", data / "d10.mp4", "--out", faceset, "--size", "64",
               "--frames", "0:16", "-q").returncode == 0  # fmt: skip
    assert cli("train-occlusion", entry, "--faceset", faceset, "--steps", "2").returncode == 0
    faces = load_faceset(faceset, 64).faces[:6]
    local = OnnxEngine(ModelRepository(repository))
    kinds = {
        swapper_pb2.SWAP_MASK_UNSPECIFIED: "mask",
        swapper_pb2.SWAP_MASK_REGION: REGION,
        swapper_pb2.SWAP_MASK_VISIBLE: VISIBLE,
    }
    expected = {k: local.infer(DEMO.name, faces, name)[1] for k, name in kinds.items()}
    server = start_server("swapper", tmp_path, {"SWAPLINE_MODEL_REPOSITORY": str(repository)})
    try:
        with server.channel() as channel:
            stub = swapper_pb2_grpc.SwapperStub(channel)
            for kind, want in expected.items():
                request = swapper_pb2.SwapRequest(
                    model=DEMO.name, faces=[wire.image_message(f) for f in faces], mask=kind
                )
                reply = stub.Swap(request, timeout=60)
                got = np.stack([wire.decode_image_message(f.mask) for f in reply.faces])
                assert np.array_equal(got, want[..., 0]), kind
            assert not np.array_equal(expected[1], expected[2])
            for request in (
                swapper_pb2.SwapRequest(
                    model=DEMO.name,
                    faces=[wire.image_message(faces[0])],
                    mask=9,  # type: ignore[arg-type]
                ),
                swapper_pb2.SwapRequest(
                    model=DEMO.name, faces=[wire.image_message(np.zeros((32, 32, 3), np.uint8))]
                ),
            ):
                with pytest.raises(grpc.RpcError) as info:
                    stub.Swap(request, timeout=30)
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert len(stub.Swap(request_for(faces), timeout=60).faces) == len(faces)
    finally:
        assert stop_server(server) == 0

    ports = (free_port(), free_port(), free_port())
    with launched(repository, tmp_path / "triton.log", *ports, model=DEMO.name) as url:
        triton = TritonEngine(url, ModelRepository(repository))
        try:
            for name in kinds.values():
                swapped, mask = triton.infer(DEMO.name, faces, name)
                want_swapped, want_mask = local.infer(DEMO.name, faces, name)
                assert np.array_equal(mask, want_mask) and np.array_equal(swapped, want_swapped)
        finally:
            triton.close()


def request_for(faces: np.ndarray) -> object:
    from swapline.protocol import wire
    from swapline.v1 import swapper_pb2

    return swapper_pb2.SwapRequest(model=DEMO.name, faces=[wire.image_message(f) for f in faces])

"""Train, export, serve on a real Triton, swap through the Swapper service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
import tritonclient.grpc as triton_grpc

from swapline.evaluation.identity import evaluate_identity
from swapline.model.export import export_model
from swapline.model.triton import launched
from swapline.protocol import wire
from swapline.stages.swap import ModelRepository, OnnxEngine
from swapline.train.data import load_faceset
from swapline.train.model import ModelConfig, SwapExport
from swapline.train.trainer import Identity, Trainer, TrainOptions
from swapline.v1 import common_pb2 as pb
from swapline.v1 import swapper_pb2, swapper_pb2_grpc
from tests.conftest import REPO, cli, free_port, start_server, stop_server

SMALL = ModelConfig(resolution=64, encoder_dims=16, bottleneck_dims=64, decoder_dims=16)
IDENTITIES = (
    Identity("source", "d12", "test: LivePortrait MIT sample d12.mp4"),
    Identity("target", "d10", "test: LivePortrait MIT sample d10.mp4"),
)


@pytest.fixture(scope="module")
def facesets(tmp_path_factory: pytest.TempPathFactory, data: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("facesets")
    for clip, name in (("d12.mp4", "a"), ("d10.mp4", "b")):
        result = cli(
            "extract",
            data / clip,
            "--out",
            root / name,
            "--size",
            "96",
            "--frames",
            "0:60",
            "--every",
            "2",
            "-q",
            "--identity",
            clip,
            "--consent",
            f"test: {clip}",
        )
        assert result.returncode == 0, result.stderr
    return root / "a", root / "b"


def options(facesets: tuple[Path, Path], out: Path, steps: int) -> TrainOptions:
    return TrainOptions(
        src=facesets[0],
        dst=facesets[1],
        out=out,
        model=SMALL,
        batch=4,
        steps=steps,
        learning_rate=3e-4,
        checkpoint_every=1000,
        preview_every=1000,
        identities=IDENTITIES,
        threads=2,
    )


@pytest.fixture(scope="module")
def trained(facesets: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "d12_to_d10"
    trainer = Trainer(options(facesets, out, 60))
    before = trainer.evaluate()
    for _ in range(60):
        trainer.step()
    after = trainer.evaluate()
    trainer.save()
    trainer.write_preview()
    (out / "losses.json").write_text(json.dumps({"before": before, "after": after}))
    return out


def test_training_lowers_the_loss_and_writes_a_checkpoint(trained: Path) -> None:
    losses = json.loads((trained / "losses.json").read_text())
    assert losses["after"] < 0.85 * losses["before"], losses
    assert (trained / "checkpoint.pt").stat().st_size > 100_000
    assert (trained / "preview.png").exists()
    metadata = json.loads((trained / "model.json").read_text())
    assert metadata["training_steps"] == 60
    assert [i["consent_reference"] for i in metadata["identities"]] == [
        i.consent_reference for i in IDENTITIES
    ]


def test_resume_continues_exactly(facesets: tuple[Path, Path], tmp_path: Path) -> None:
    straight = Trainer(options(facesets, tmp_path / "straight", 6))
    for _ in range(6):
        straight.step()
    first = Trainer(options(facesets, tmp_path / "resumed", 6))
    for _ in range(3):
        first.step()
    first.save()
    second = Trainer(options(facesets, tmp_path / "resumed", 6))
    assert second.resume() and second.step_count == 3
    for _ in range(3):
        second.step()
    assert second.last_loss == straight.last_loss
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_train_cli_refuses_faces_without_consent(
    facesets: tuple[Path, Path], tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    result = cli("extract", REPO / "tests/data/two_people.jpg", "--out", bare, "-q")
    assert result.returncode == 0
    result = cli(
        "train", "--src", bare, "--dst", facesets[1], "--out", tmp_path / "m", "--steps", "1", "-q"
    )
    assert result.returncode != 0
    assert "consent" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_outputs_stay_inside_zero_one_and_vary(trained: Path, facesets: tuple[Path, Path]) -> None:
    from swapline.model.export import load_checkpoint_model

    model, _ = load_checkpoint_model(trained)
    faces = load_faceset(facesets[1], 64).faces[::4]  # spread over the clip's first 2 s
    with torch.no_grad():
        face, mask = model.swap(torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255)
    for out in (face, mask):
        assert float(out.min()) > 0.0 and float(out.max()) < 1.0
    assert float(face.std()) > 0.02  # not saturated, not constant
    # Depends on the input: the same face in negative comes out otherwise.
    with torch.no_grad():
        negative, _ = model.swap(1 - torch.from_numpy(faces[:1]).permute(0, 3, 1, 2).float() / 255)
    assert float((face[0] - negative[0]).abs().mean()) > 3e-3


@pytest.fixture(scope="module")
def repository(
    trained: Path, facesets: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    repo = tmp_path_factory.mktemp("repository")
    faces = load_faceset(facesets[1], 64).faces[:6]
    fp32 = export_model(trained, repo, name="pair32", check_faces=faces)
    fp16 = export_model(trained, repo, name="pair16", fp16=True, check_faces=faces)
    assert fp32.max_abs_diff <= 1 and fp16.mean_abs_diff < 1.0
    assert fp16.onnx_bytes < 0.6 * fp32.onnx_bytes
    return repo


def test_exported_onnx_matches_torch(
    repository: Path, trained: Path, facesets: tuple[Path, Path]
) -> None:
    from swapline.model.export import load_checkpoint_model

    model, _ = load_checkpoint_model(trained)
    faces = load_faceset(facesets[1], 64).faces[6:14]
    with torch.no_grad():
        expected = [t.numpy().astype(int) for t in SwapExport(model)(torch.from_numpy(faces))]
    engine = OnnxEngine(ModelRepository(repository))
    for name, tolerance in (("pair32", 1), ("pair16", 6)):
        got = engine.infer(name, faces)
        for e, g in zip(expected, got, strict=True):
            assert np.abs(e - g.astype(int)).max() <= tolerance, name
    entry = ModelRepository(repository).get("pair16")
    config = (entry.path / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config and "KIND_GPU" in config
    assert '"tensorrt"' in config and "dynamic_batching" in config and "model_warmup" in config
    assert "KIND_CPU" in (entry.path / "configs" / "cpu.pbtxt").read_text()
    assert entry.metadata["identities"][0]["consent_reference"]


@contextlib.contextmanager
def triton_process(repository: Path, tmp: Path) -> Iterator[str]:
    with launched(
        repository, tmp / "triton.log", free_port(), free_port(), free_port(), model="pair16"
    ) as url:
        yield url


def swap_request(model: str, faces: np.ndarray) -> swapper_pb2.SwapRequest:
    return swapper_pb2.SwapRequest(model=model, faces=[wire.image_message(f) for f in faces])


def test_triton_and_swapper_service(
    repository: Path, trained: Path, facesets: tuple[Path, Path], tmp_path: Path
) -> None:
    faces = load_faceset(facesets[1], 64).faces[:10]
    local = OnnxEngine(ModelRepository(repository)).infer("pair16", faces)
    with triton_process(repository, tmp_path) as url:
        # Triton itself, called as any Triton client would.
        direct = triton_grpc.InferenceServerClient(url)
        request = triton_grpc.InferInput("faces", list(faces.shape), "UINT8")
        request.set_data_from_numpy(faces)
        result = direct.infer("pair16", [request])
        assert np.array_equal(result.as_numpy("swapped"), local[0])
        assert np.array_equal(result.as_numpy("mask"), local[1])

        server = start_server(
            "swapper",
            tmp_path,
            {
                "SWAPLINE_TRITON_URL": url,
                "SWAPLINE_MODEL_REPOSITORY": str(repository),
                "SWAPLINE_COALESCE_MS": "20",
            },
        )
        try:
            with server.channel() as channel:
                stub = swapper_pb2_grpc.SwapperStub(channel)
                reply = stub.Swap(swap_request("pair16", faces), timeout=60)
                swapped = np.stack([wire.decode_image_message(f.face) for f in reply.faces])
                masks = np.stack([wire.decode_image_message(f.mask) for f in reply.faces])
                assert np.array_equal(swapped, local[0])
                assert np.array_equal(masks, local[1][..., 0])

                models = {
                    m.name: m for m in stub.ListModels(swapper_pb2.ListModelsRequest()).models
                }
                assert set(models) == {"pair16", "pair32"}
                assert models["pair16"].precision == "fp16" and models["pair16"].resolution == 64
                assert (
                    models["pair16"].identities[0].consent_reference
                    == IDENTITIES[0].consent_reference
                )

                for request, code in (
                    (swap_request("nope", faces[:1]), grpc.StatusCode.NOT_FOUND),
                    (
                        swap_request("pair16", np.zeros((1, 32, 32, 3), np.uint8)),
                        grpc.StatusCode.INVALID_ARGUMENT,
                    ),
                    (
                        swapper_pb2.SwapRequest(
                            model="pair16", faces=[wire.image_message(np.zeros((64, 64), np.uint8))]
                        ),
                        grpc.StatusCode.INVALID_ARGUMENT,
                    ),
                    (swapper_pb2.SwapRequest(model="pair16"), grpc.StatusCode.INVALID_ARGUMENT),
                ):
                    with pytest.raises(grpc.RpcError) as info:
                        stub.Swap(request, timeout=30)
                    assert info.value.code() == code, info.value.details()

                # Concurrent callers are coalesced into larger Triton batches.
                async def many() -> None:
                    credentials = server.credentials()
                    assert credentials is not None
                    async with grpc.aio.secure_channel(server.address, credentials) as aio_channel:
                        aio_stub = swapper_pb2_grpc.SwapperStub(aio_channel)
                        replies = await asyncio.gather(
                            *[
                                aio_stub.Swap(swap_request("pair16", faces[i : i + 1]), timeout=60)
                                for i in range(8)
                            ]
                        )
                        for i, r in enumerate(replies):
                            got = wire.decode_image_message(r.faces[0].face)
                            assert np.array_equal(got, local[0][i])

                asyncio.run(many())
                metrics = (
                    urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics")
                    .read()
                    .decode()
                )
                sizes = {
                    line.split(" ")[0]: float(line.split(" ")[1])
                    for line in metrics.splitlines()
                    if line.startswith("swapline_stage_batch_size_")
                }
                batches = sizes['swapline_stage_batch_size_count{service="swapper"}']
                total = sizes['swapline_stage_batch_size_sum{service="swapper"}']
                assert total == 10 + 8 and batches < 9  # 9 requests, fewer batches

                # A model exported while everything runs is loaded without a restart.
                export_model(trained, repository, name="late")
                info = stub.LoadModel(swapper_pb2.LoadModelRequest(name="late"), timeout=60)
                assert info.ready
                assert len(stub.Swap(swap_request("late", faces[:2]), timeout=60).faces) == 2
        finally:
            assert stop_server(server) == 0


def test_embedded_swapper_equals_onnxruntime(
    repository: Path, facesets: tuple[Path, Path], tmp_path: Path
) -> None:
    faces = load_faceset(facesets[1], 64).faces[:4]
    local = OnnxEngine(ModelRepository(repository)).infer("pair32", faces)
    server = start_server("swapper", tmp_path, {"SWAPLINE_MODEL_REPOSITORY": str(repository)})
    try:
        with server.channel() as channel:
            stub = swapper_pb2_grpc.SwapperStub(channel)
            reply = stub.Swap(
                swapper_pb2.SwapRequest(
                    model="pair32",
                    faces=[wire.image_message(f) for f in faces],
                    output_encoding=pb.IMAGE_ENCODING_PNG,
                ),
                timeout=60,
            )
        got = np.stack([wire.decode_image_message(f.face) for f in reply.faces])
        assert np.array_equal(got, local[0])
    finally:
        stop_server(server)


def test_identity_metric_on_known_cases(facesets: tuple[Path, Path]) -> None:
    a, b = facesets
    source = load_faceset(a, 64).faces

    def unchanged(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return faces, np.zeros((*faces.shape[:3], 1), np.uint8)

    def always_a(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        picked = source[: len(faces)]
        return picked, np.zeros((*picked.shape[:3], 1), np.uint8)

    kept = evaluate_identity(unchanged, 64, a, b, limit=12)
    assert kept.identity_score == 0.0 and kept.expression_error < 0.01
    replaced = evaluate_identity(always_a, 64, a, b, limit=12)
    assert replaced.identity_score == 1.0 and replaced.expression_error > kept.expression_error


def test_cli_train_export_and_eval(facesets: tuple[Path, Path], tmp_path: Path) -> None:
    model = tmp_path / "cli_model"
    result = cli(
        "train",
        "--src",
        facesets[0],
        "--dst",
        facesets[1],
        "--out",
        model,
        "--steps",
        "4",
        "--batch",
        "2",
        "--encoder-dims",
        "16",
        "--bottleneck-dims",
        "32",
        "--decoder-dims",
        "16",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    assert "step 4" in result.stdout
    result = cli(
        "train",
        "--src",
        facesets[0],
        "--dst",
        facesets[1],
        "--out",
        model,
        "--steps",
        "6",
        "--batch",
        "2",
        "--encoder-dims",
        "16",
        "--bottleneck-dims",
        "32",
        "--decoder-dims",
        "16",
        "-q",
    )
    assert result.returncode == 0 and "step 6" in result.stdout  # resumed from 4
    result = cli("export", model, "--repository", tmp_path / "repo", "--fp16")
    assert result.returncode == 0, result.stderr
    result = cli(
        "eval-identity",
        tmp_path / "repo" / "cli_model",
        "--src",
        facesets[0],
        "--dst-holdout",
        facesets[1],
        "--limit",
        "6",
        "--json",
        tmp_path / "eval.json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["faces"] == 6 and 0.0 <= report["identity_score"] <= 1.0
    assert os.path.exists(model / "preview.png")

"""The Encoder server as a subprocess: cancelled streams, bad starts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2

from swapline.protocol import wire
from swapline.v1 import blender_pb2, encoder_pb2, encoder_pb2_grpc
from swapline.v1 import common_pb2 as pb
from tests.conftest import ServerProcess, start_server, stop_server
from tests.functional.test_servers import health, metric

CLIP = "carphone_pristine.mp4"  # 120 frames, 176x144
FRAMES = 120


@pytest.fixture(scope="module")
def encoder_server(
    tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Iterator[tuple[ServerProcess, Path]]:
    work = tmp_path_factory.mktemp("encoder")
    roots = f"{work}:{data}"
    server = start_server("encoder", work, {"SWAPLINE_STORAGE_ROOTS": roots})
    yield server, work
    stop_server(server)


def start(source: Path, output: Path, **options: object) -> encoder_pb2.EncodeRequest:
    return encoder_pb2.EncodeRequest(
        start=encoder_pb2.EncodeStart(
            source_uri=source.as_uri(),
            output_uri=output.as_uri(),
            model="test",
            options=encoder_pb2.EncodeOptions(**options),  # type: ignore[arg-type]
        )
    )


def frame(index: int, *patches: blender_pb2.Patch) -> encoder_pb2.EncodeRequest:
    return encoder_pb2.EncodeRequest(
        frame=encoder_pb2.FramePatches(frame=pb.FrameRef(index=index), patches=patches)
    )


def grey_patch(x: float, y: float) -> blender_pb2.Patch:
    image = wire.image_message(np.full((16, 16, 3), 128, np.uint8))
    return blender_pb2.Patch(origin=pb.Point(x=x, y=y), image=image)


def test_cancelled_encodes_leave_the_encoder_serving(
    encoder_server: tuple[ServerProcess, Path], data: Path
) -> None:
    """Five streams cancelled mid-encode (the server has two workers), then
    a whole encode: it completes, and no partial file is left."""
    server, work = encoder_server
    source = data / CLIP
    with server.channel() as channel:
        stub = encoder_pb2_grpc.EncoderStub(channel)
        for attempt in range(5):
            hold = threading.Event()

            def stalled(output: Path, hold: threading.Event = hold) -> Iterator[object]:
                yield start(source, output)
                for index in range(60):
                    yield frame(index)
                hold.wait(30)  # the rest never comes: the client cancels

            before = metric(server, "swapline_stage_items_total", service="encoder")
            call = stub.Encode.future(stalled(work / f"cancelled-{attempt}.mp4"), timeout=120)
            deadline = time.monotonic() + 30
            while metric(server, "swapline_stage_items_total", service="encoder") < before + 40:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.05)
            call.cancel()
            hold.set()
            with pytest.raises(grpc.FutureCancelledError):
                call.result()

        output = work / "whole.mp4"
        reply = stub.Encode(
            iter([start(source, output), *(frame(i) for i in range(FRAMES))]), timeout=120
        )
    assert reply.frames == FRAMES
    with av.open(str(output)) as container:
        assert container.streams.video[0].frames == FRAMES
        assert container.metadata.get("swapline_synthetic") == "1"
    deadline = time.monotonic() + 10
    while list(work.glob(".*.partial")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(work.glob(".*.partial"))
    assert not list(work.glob("cancelled-*"))
    assert health(server) == health_pb2.HealthCheckResponse.SERVING


def bad_streams(work: Path, data: Path) -> dict[str, list[encoder_pb2.EncodeRequest]]:
    source = data / CLIP
    output = work / "bad.mp4"
    return {
        "output is a directory": [start(source, work), frame(0)],
        "unknown pixel format": [start(source, output, pixel_format="nv99"), frame(0)],
        "unknown codec": [start(source, output, codec=99), frame(0)],
        "NaN origin": [start(source, output), frame(0, grey_patch(float("nan"), 3))],
        "infinite origin": [start(source, output), frame(0, grey_patch(4, float("inf")))],
    }


@pytest.mark.parametrize(
    "what",
    [
        "output is a directory",
        "unknown pixel format",
        "unknown codec",
        "NaN origin",
        "infinite origin",
    ],
)
def test_bad_starts_and_patches_are_invalid_argument(
    encoder_server: tuple[ServerProcess, Path], data: Path, what: str
) -> None:
    server, work = encoder_server
    with server.channel() as channel:
        stub = encoder_pb2_grpc.EncoderStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Encode(iter(bad_streams(work, data)[what]), timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert not (work / "bad.mp4").exists()
    assert health(server) == health_pb2.HealthCheckResponse.SERVING

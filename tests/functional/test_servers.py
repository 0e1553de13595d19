"""Real stage servers as subprocesses, called over loopback."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from swapline.concurrency import background_nice
from swapline.media import encode_image, open_media
from swapline.protocol import wire
from swapline.stages.align import region_around
from swapline.v1 import aligner_pb2, aligner_pb2_grpc, detector_pb2, detector_pb2_grpc
from swapline.v1 import common_pb2 as pb
from tests.conftest import ServerProcess, start_server, stop_server
from tests.unit.test_media import jpeg_header


def frames(path: Path, count: int, step: int = 1) -> list[tuple[int, np.ndarray]]:
    out = []
    with open_media(path) as reader:
        for frame in reader.frames():
            if frame.index % step == 0:
                out.append((frame.index, frame.image))
            if len(out) == count:
                break
    return out


def detect_request(images: list[tuple[int, np.ndarray]], **kw) -> detector_pb2.DetectRequest:  # type: ignore[no-untyped-def]
    return detector_pb2.DetectRequest(
        frames=[
            detector_pb2.DetectFrame(
                frame=pb.FrameRef(index=i), image=wire.image_message(img, **kw)
            )
            for i, img in images
        ]
    )


def metric(server: ServerProcess, name: str, **labels: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def health(server: ServerProcess, service: str = "") -> int:
    with server.channel() as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return int(reply.status)


def test_detector_health_reflection_and_detection(
    detector_server: ServerProcess, data: Path
) -> None:
    assert health(detector_server) == health_pb2.HealthCheckResponse.SERVING
    assert health(detector_server, "swapline.v1.Detector") == health_pb2.HealthCheckResponse.SERVING
    with detector_server.channel() as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for r in replies for s in r.list_services_response.service}
        assert "swapline.v1.Detector" in names and "grpc.health.v1.Health" in names

        stub = detector_pb2_grpc.DetectorStub(channel)
        s18 = frames(data / "s18.mp4", 2)
        raw = stub.Detect(detect_request(s18), timeout=30)
        jpeg = stub.Detect(detect_request(s18, encoding=pb.IMAGE_ENCODING_JPEG), timeout=30)
        # A client may send a half-size copy and get boxes in source pixels.
        half = detector_pb2.DetectRequest(
            frames=[
                detector_pb2.DetectFrame(
                    frame=pb.FrameRef(index=0),
                    image=wire.image_message(s18[0][1][::2, ::2].copy()),
                    source_size=pb.Size(width=1280, height=720),
                )
            ]
        )
        small = stub.Detect(half, timeout=30)
        bunny = stub.Detect(detect_request(frames(data / "bigbuckbunny.mp4", 2, 20)), timeout=30)
    assert [f.frame.index for f in raw.frames] == [0, 1]
    for reply in (raw, jpeg):
        assert all(len(f.faces) == 1 for f in reply.frames)
    box = raw.frames[0].faces[0].box
    assert 400 < box.left < box.right < 1100
    assert abs(small.frames[0].faces[0].box.left - box.left) < 8
    assert all(len(f.faces) == 0 for f in bunny.frames)
    assert metric(detector_server, "swapline_rpc_requests_total", method="Detect", code="OK") >= 4
    assert metric(detector_server, "swapline_rpc_latency_seconds_count", method="Detect") >= 4
    assert metric(detector_server, "swapline_stage_items_total", item="frames") >= 7


def test_aligner_unary_and_stream(aligner_server: ServerProcess, data: Path) -> None:
    clip = frames(data / "d10.mp4", 6)
    box = (108.0, 165.0, 367.0, 424.0)  # the face in d10's first frames
    regions = []
    for index, image in clip:
        x0, y0, x1, y1 = region_around(box, (512, 512))
        regions.append(
            pb.FaceRegion(
                frame=pb.FrameRef(index=index),
                image=wire.image_message(image[y0:y1, x0:x1].copy()),
                origin=pb.Point(x=x0, y=y0),
                box=wire.box_message(box),
                score=1.0,
            )
        )
    options = aligner_pb2.AlignOptions(
        size=192, face_type=pb.FACE_TYPE_WHOLE, embeddings=True, crop_encoding=pb.IMAGE_ENCODING_PNG
    )
    with aligner_server.channel() as channel:
        stub = aligner_pb2_grpc.AlignerStub(channel)
        reply = stub.Align(aligner_pb2.AlignRequest(faces=regions[:3], options=options), timeout=30)
        streamed = list(
            stub.AlignStream(
                iter(
                    [
                        aligner_pb2.AlignRequest(faces=regions[:3], options=options),
                        aligner_pb2.AlignRequest(faces=regions[3:], options=options),
                    ]
                ),
                timeout=30,
            )
        )
    assert len(reply.faces) == 3
    face = reply.faces[0]
    crop = wire.decode_image_message(face.crop)
    mask = wire.decode_image_message(face.mask)
    assert crop.shape == (192, 192, 3) and mask.shape == (192, 192)
    assert len(face.landmarks.points) == 68 and len(face.embedding) == 128
    forward, backward = wire.affine_array(face.frame_to_crop), wire.affine_array(face.crop_to_frame)
    np.testing.assert_allclose(forward @ np.vstack([backward, [0, 0, 1]]), np.eye(3)[:2], atol=1e-6)
    # Landmarks lie inside the detected box region, in frame coordinates.
    points = wire.landmarks_array(face.landmarks)
    assert points[:, 0].min() > 80 and points[:, 0].max() < 400
    # A stream keeps one track across its requests.
    assert [len(r.faces) for r in streamed] == [3, 3]
    assert len({f.track_id for r in streamed for f in r.faces}) == 1
    assert (
        metric(aligner_server, "swapline_rpc_requests_total", method="AlignStream", code="OK") >= 1
    )


def bad_requests() -> list[tuple[str, detector_pb2.DetectRequest]]:
    good = wire.image_message(np.zeros((64, 64, 3), np.uint8))
    huge_raw = pb.Image(
        width=20000, height=20000, pixel_format=pb.PIXEL_FORMAT_BGR8, raw=b"\0" * 1000
    )
    huge_jpeg = pb.Image(
        width=20000,
        height=20000,
        encoded=pb.EncodedImage(encoding=pb.IMAGE_ENCODING_JPEG, data=jpeg_header(20000, 20000)),
    )
    short = pb.Image(width=64, height=64, pixel_format=pb.PIXEL_FORMAT_BGR8, raw=b"\0" * 100)
    jpeg = encode_image(np.full((64, 64, 3), 128, np.uint8), "jpeg")
    truncated = pb.Image(
        width=64,
        height=64,
        encoded=pb.EncodedImage(encoding=pb.IMAGE_ENCODING_JPEG, data=jpeg[: len(jpeg) // 3]),
    )
    text = pb.Image(width=64, height=64, encoded=pb.EncodedImage(data=b"hello, not an image"))
    oversize = pb.Image(
        width=2000, height=2000, pixel_format=pb.PIXEL_FORMAT_BGR8, raw=b"\0" * (2000 * 2000 * 3)
    )  # 12 MB, the test server allows 8 MiB
    frame = detector_pb2.DetectFrame
    return [
        ("empty batch", detector_pb2.DetectRequest()),
        ("20000x20000 raw", detector_pb2.DetectRequest(frames=[frame(image=huge_raw)])),
        ("20000x20000 jpeg header", detector_pb2.DetectRequest(frames=[frame(image=huge_jpeg)])),
        ("short raw buffer", detector_pb2.DetectRequest(frames=[frame(image=short)])),
        ("truncated jpeg", detector_pb2.DetectRequest(frames=[frame(image=truncated)])),
        ("not an image", detector_pb2.DetectRequest(frames=[frame(image=text)])),
        (
            "no pixels",
            detector_pb2.DetectRequest(frames=[frame(image=pb.Image(width=4, height=4))]),
        ),
        ("over the message limit", detector_pb2.DetectRequest(frames=[frame(image=oversize)])),
        ("too many frames", detector_pb2.DetectRequest(frames=[frame(image=good)] * 257)),
        (
            "bad option",
            detector_pb2.DetectRequest(
                frames=[frame(image=good)], options=detector_pb2.DetectOptions(max_side=5)
            ),
        ),
    ]


@pytest.mark.parametrize(("what", "request_"), bad_requests(), ids=[w for w, _ in bad_requests()])
def test_bad_input_is_invalid_argument_and_the_server_keeps_serving(
    detector_server: ServerProcess, what: str, request_: detector_pb2.DetectRequest
) -> None:
    with detector_server.channel() as channel:
        stub = detector_pb2_grpc.DetectorStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Detect(request_, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
        assert info.value.details()
        ok = stub.Detect(detect_request([(0, np.zeros((64, 64, 3), np.uint8))]), timeout=30)
        assert len(ok.frames) == 1
    assert detector_server.process.poll() is None
    assert metric(detector_server, "swapline_rpc_errors_total", code="INVALID_ARGUMENT") >= 1


def test_aligner_refuses_bad_regions(aligner_server: ServerProcess) -> None:
    region = pb.FaceRegion(
        image=wire.image_message(np.zeros((50, 50, 3), np.uint8)),
        origin=pb.Point(x=500, y=500),
        box=pb.Box(left=0, top=0, right=10, bottom=10),
    )
    with aligner_server.channel() as channel:
        stub = aligner_pb2_grpc.AlignerStub(channel)
        for request in (
            aligner_pb2.AlignRequest(),
            aligner_pb2.AlignRequest(faces=[region]),
            aligner_pb2.AlignRequest(faces=[region], options=aligner_pb2.AlignOptions(size=1024)),
        ):
            with pytest.raises(grpc.RpcError) as info:
                stub.Align(request, timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert health(aligner_server) == health_pb2.HealthCheckResponse.SERVING


def test_sigterm_reports_not_serving_and_drains_in_flight_calls(tmp_path: Path, data: Path) -> None:
    server = start_server(
        "detector", tmp_path, {"SWAPLINE_SHUTDOWN_DELAY": "1.5", "SWAPLINE_WORKERS": "1"}
    )
    batch = detect_request(frames(data / "s18.mp4", 48), encoding=pb.IMAGE_ENCODING_JPEG)
    outcome: dict[str, object] = {}

    def slow_call() -> None:
        with server.channel() as channel:
            try:
                reply = detector_pb2_grpc.DetectorStub(channel).Detect(batch, timeout=60)
                outcome["frames"] = len(reply.frames)
            except grpc.RpcError as exc:
                outcome["error"] = exc.code()

    caller = threading.Thread(target=slow_call)
    caller.start()
    deadline = time.monotonic() + 10
    while metric(server, "swapline_stage_busy_workers") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert health(server) == health_pb2.HealthCheckResponse.NOT_SERVING
    caller.join(timeout=60)
    assert outcome == {"frames": 48}, server.output()
    assert server.process.wait(timeout=30) == 0
    assert stop_server(server) == 0
    assert "stopped" in server.output()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-process nice")
def test_face_work_servers_started_together_run_below_the_encoder(
    detector_server: ServerProcess, tmp_path: Path
) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    face_work = os.getpriority(os.PRIO_PROCESS, detector_server.process.pid)
    assert face_work == min(19, own + background_nice()) > own
    encoder = start_server("encoder", tmp_path)
    try:
        assert os.getpriority(os.PRIO_PROCESS, encoder.process.pid) == own
    finally:
        stop_server(encoder)

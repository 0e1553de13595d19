"""The container images, built the way `make images` builds them (buildah,
chroot isolation, a debootstrap base kept between runs), and every service
started FROM its image: five stages and the orchestrator from the runtime
image, Triton from the CPU Triton image, talking TLS on loopback, one swap
job of a bundled clip through them all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from swapline.devtools import images
from swapline.model.triton import start_triton, stop_process
from swapline.runtime.launch import ServerProcess, free_port, start_server, stop_server
from swapline.runtime.pki import LocalSecurity
from swapline.stages.encode import MARK_TEXT, bitstream_mark
from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc
from tests.conftest import REPO
from tests.functional.test_swap import audio_packets, video_frames

STAGES = ("detector", "aligner", "swapper", "blender", "encoder")
MODEL = "d6_to_d10"
MODELS = REPO / "models"
SERVICE_UID = 10001  # the images' user
SIZE_LIMIT = 1.5e9
# A fresh machine builds the base and both images first (about 8 minutes).
pytestmark = pytest.mark.timeout(2400)


@pytest.fixture(scope="module")
def built() -> list[str]:
    images.require_tools()  # `make test` installs buildah and debootstrap
    context = REPO / "build" / "images"
    context.mkdir(parents=True, exist_ok=True)
    return images.build(REPO, context)


def test_make_images_without_buildah_says_what_to_install(tmp_path: Path) -> None:
    bare = {**os.environ, "PATH": str(tmp_path)}  # no buildah, no debootstrap
    make = shutil.which("make")
    assert make is not None
    result = subprocess.run(
        [make, "-s", "images"], capture_output=True, text=True, env=bare, cwd=REPO
    )
    assert result.returncode != 0
    assert result.stdout.strip() == images.MISSING_TOOLS
    module = subprocess.run(
        [sys.executable, "-m", "swapline.devtools.images", "build"],
        capture_output=True,
        text=True,
        env=bare,
        cwd=REPO,
    )
    assert module.returncode == 1
    assert module.stderr.strip().splitlines() == [f"error: {images.MISSING_TOOLS}"]


def test_images_are_non_root_small_and_carry_no_compilers(built: list[str]) -> None:
    for image in images.IMAGES:
        assert images.user(image.name) == f"{SERVICE_UID}:{SERVICE_UID}", image.name
        size = sum(layer.size for layer in images.layers(image.name))
        assert size < SIZE_LIMIT, (image.name, size)
    with images.container(images.RUNTIME.name) as runtime:
        probe = runtime.run(
            "sh",
            "-c",
            "set -e; id -u; "
            "python3 -c 'import cv2, av, dlib, onnxruntime; "
            "from swapline.stages import dlib_models as m; "
            "print(m.model_path(m.LANDMARKS_68))'; swapline --version; "
            "for c in gcc cc g++ make; do command -v $c || true; done",
        )
        assert probe.returncode == 0, probe.stderr
        uid, model_file, version, *compilers = probe.stdout.splitlines()
        assert int(uid) == SERVICE_UID
        assert model_file.endswith(".dat")  # dlib's landmark model inside the image
        assert compilers == []
        assert version.endswith(images.RUNTIME.tag)
        # Nothing may be written but /tmp (the chart's root is read-only).
        touch = "touch /opt/swapline/x 2>/dev/null && echo yes || echo no"
        writable = runtime.run("sh", "-c", touch)
        assert writable.stdout.strip() == "no"


def owned_by_service_user(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files, "."]:
            os.chown(Path(root) / name, SERVICE_UID, SERVICE_UID)


def metrics_text(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Path]:
    """A folder the services (uid 10001) own, as a volume with fsGroup."""
    folder = tmp_path / "shared"
    folder.mkdir()
    yield folder


def test_every_service_runs_from_its_image_and_swaps_a_clip(
    built: list[str], shared: Path, data: Path
) -> None:
    security = LocalSecurity.create(shared / "pki")
    clip = shared / "d10.mp4"
    clip.write_bytes((data / "d10.mp4").read_bytes())
    owned_by_service_user(shared)
    repository = MODELS / "repository"
    env = {
        "SWAPLINE_MODEL_REPOSITORY": str(repository),
        "SWAPLINE_WORK_DIR": str(shared / "jobs"),
        "SWAPLINE_STORAGE_ROOTS": str(shared),
    }
    servers: list[ServerProcess] = []
    with (
        images.container(images.TRITON_CPU.name, [MODELS]) as triton_box,
        images.container(images.RUNTIME.name, [shared, MODELS]) as runtime,
    ):
        triton_ports = (free_port(), free_port(), free_port())
        triton, triton_url = start_triton(
            repository,
            shared / "triton.log",
            *triton_ports,
            model=MODEL,
            timeout=300,
            command=triton_box.command,
        )
        try:
            env["SWAPLINE_TRITON_URL"] = triton_url
            for name in STAGES:
                servers.append(
                    start_server(
                        name, shared, env, timeout=180, security=security, command=runtime.command
                    )
                )
            addresses = {f"SWAPLINE_{s.name.upper()}_ADDR": s.address for s in servers}
            orchestrator = start_server(
                "orchestrator",
                shared,
                {**env, **addresses},
                timeout=180,
                security=security,
                command=runtime.command,
            )
            servers.append(orchestrator)

            # Health SERVING (start_server waited for it) and metrics from each.
            for server in servers:
                assert "swapline_" in metrics_text(server.metrics_port), server.name
            assert "nv_inference_request_success" in metrics_text(triton_ports[2])

            with orchestrator.channel() as channel:
                stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
                spec = opb.JobSpec(model=MODEL, input_uri=clip.as_uri())
                job = stub.SubmitJob(iter([opb.SubmitJobRequest(spec=spec)]), timeout=60)
                deadline = time.monotonic() + 600
                while job.state in (opb.JOB_STATE_QUEUED, opb.JOB_STATE_RUNNING):
                    assert time.monotonic() < deadline, orchestrator.output()
                    time.sleep(1)
                    job = stub.GetJob(opb.GetJobRequest(id=job.id), timeout=30)
                assert job.state == opb.JOB_STATE_SUCCEEDED, (job.error, orchestrator.output())
                result = shared / "result.mp4"
                chunks = stub.DownloadResult(opb.GetJobRequest(id=job.id), timeout=120)
                result.write_bytes(b"".join(c.data for c in chunks))

                # The runtime image has no torch: training is refused, saying why.
                with orchestrator.channel(owner="admin") as admin_channel:
                    admin = orchestrator_pb2_grpc.OrchestratorStub(admin_channel)
                    with pytest.raises(grpc.RpcError) as refused:
                        admin.TrainModel(opb.TrainModelRequest(name="x"), timeout=30)
                assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert "torch is not installed" in (refused.value.details() or "")
            assert job.progress.faces_swapped > 0

            swapped = video_frames(result)
            original = video_frames(data / "d10.mp4")
            assert [pts for pts, _ in swapped] == [pts for pts, _ in original]
            assert audio_packets(result) == audio_packets(data / "d10.mp4")
            assert bitstream_mark(result) == MARK_TEXT
            # The swapper's calls reached the Triton in its image.
            served = metrics_text(triton_ports[2])
            assert f'nv_inference_request_success{{model="{MODEL}"' in served
        finally:
            for server in reversed(servers):
                stop_server(server)
            stop_process(triton)

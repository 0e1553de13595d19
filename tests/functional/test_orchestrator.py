"""The Orchestrator API, embedded and distributed (every stage a real server,
the swapper on a real Triton)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import grpc
import numpy as np
import pytest

from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc
from tests.conftest import REPO, ServerProcess, free_port, start_server, stop_server
from tests.functional.test_swap import audio_packets, psnr, video_frames

MODEL = "d6_to_d10"
REPOSITORY = REPO / "models" / "repository"
STAGES = ("detector", "aligner", "swapper", "blender", "encoder")


def remote_swap(
    server: ServerProcess, source: Path, output: Path, *extra: str | Path
) -> subprocess.CompletedProcess[str]:
    assert server.security is not None
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "swapline.cli",
            "swap",
            "--remote",
            server.address,
            "--model",
            MODEL,
            "--input",
            str(source),
            "--output",
            str(output),
            "-q",
            *map(str, extra),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **server.security.client_env()},
    )


def orchestrator_env(tmp: Path, roots: list[Path]) -> dict[str, str]:
    return {
        "SWAPLINE_MODEL_REPOSITORY": str(REPOSITORY),
        "SWAPLINE_WORK_DIR": str(tmp / "jobs"),
        "SWAPLINE_STORAGE_ROOTS": os.pathsep.join(str(r) for r in roots),
    }


@contextlib.contextmanager
def cluster(
    tmp: Path, data: Path
) -> Iterator[tuple[ServerProcess, dict[str, ServerProcess], dict[str, str]]]:
    """Every stage as its own server, the swapper on Triton, the orchestrator
    calling them all; with the stages' environment, to restart one."""
    from swapline.model.triton import launched

    roots = [tmp, data, REPO / "tests"]
    env = orchestrator_env(tmp, roots)
    with launched(
        REPOSITORY, tmp / "triton.log", free_port(), free_port(), free_port(), model=MODEL
    ) as triton_url:
        stages = {
            name: start_server(name, tmp, {**env, "SWAPLINE_TRITON_URL": triton_url})
            for name in STAGES
        }
        addresses = {f"SWAPLINE_{n.upper()}_ADDR": s.address for n, s in stages.items()}
        orchestrator = start_server("orchestrator", tmp, {**env, **addresses})
        try:
            yield orchestrator, stages, {**env, "SWAPLINE_TRITON_URL": triton_url}
        finally:
            for server in (orchestrator, *stages.values()):
                stop_server(server)


def test_distributed_equals_embedded_and_survives_each_stage_killed(
    data: Path, tmp_path: Path
) -> None:
    clip = data / "vfr_talking_1.mp4"
    embedded_out = tmp_path / "embedded.mp4"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "swapline.cli",
            "swap",
            "--model",
            MODEL,
            "--repository",
            str(REPOSITORY),
            "--input",
            str(clip),
            "--output",
            str(embedded_out),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    with cluster(tmp_path, data) as (orchestrator, stages, stage_env):
        output = tmp_path / "distributed.mp4"
        result = remote_swap(orchestrator, clip, output)
        assert result.returncode == 0, result.stderr + orchestrator.output()
        before, after, embedded = (
            video_frames(clip),
            video_frames(output),
            video_frames(embedded_out),
        )
        assert [p for p, _ in after] == [p for p, _ in before]
        assert audio_packets(output) == audio_packets(clip)
        with av.open(str(output)) as container:
            assert container.metadata.get("swapline_model") == MODEL
        # Same stages, same model: the two modes agree (distributed mode sends
        # JPEG to the measuring stages, so landmarks may differ by a hair).
        agreement = [psnr(a, b) for (_, a), (_, b) in zip(after, embedded, strict=True)]
        assert np.mean(agreement) > 40 and min(agreement) > 33, agreement

        check_swap_stream(orchestrator, data)  # live frames, over every stage too
        check_reference_selection(orchestrator, data, tmp_path)  # Aligner.Embed

        # Each stage server in turn is killed mid-job and comes back on its
        # port: the job still succeeds, with every frame and the audio (calls
        # are retried; a lost encode stream starts the job again).
        from tests.functional.test_faults import assert_whole, submit, wait_for

        clip = data / "vfr_talking_1.mp4"
        for name in STAGES:
            job_id = submit(orchestrator, clip)
            wait_for(orchestrator, job_id, frames=24)
            stage = stages[name]
            stage.process.kill()
            stage.process.wait()
            time.sleep(1.0)
            stages[name] = start_server(name, tmp_path, stage_env, port=stage.port)
            assert_whole(orchestrator, job_id, clip, tmp_path)
            print(name, "killed:", job_state_line(orchestrator, job_id))
            assert not list((tmp_path / "jobs" / job_id).glob(".*partial"))


def job_state_line(server: ServerProcess, job_id: str) -> str:
    from tests.functional.test_faults import job

    current = job(server, job_id)
    return f"{opb.JobState.Name(current.state)} {current.progress.frames_done} frames"


@pytest.fixture(scope="module")
def embedded_orchestrator(
    tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("orchestrator")
    allowed = tmp / "allowed"
    allowed.mkdir()
    server = start_server("orchestrator", tmp, orchestrator_env(tmp, [allowed, data]))
    yield server
    stop_server(server)


def submit(stub: orchestrator_pb2_grpc.OrchestratorStub, **spec: str) -> opb.Job:
    return stub.SubmitJob(iter([opb.SubmitJobRequest(spec=opb.JobSpec(**spec))]))


def test_storage_roots_and_unknown_models(
    embedded_orchestrator: ServerProcess, data: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.mp4"
    outside.write_bytes((data / "d10.mp4").read_bytes())
    link = Path(embedded_orchestrator.log).parent / "allowed" / "link.mp4"
    link.symlink_to(outside)
    with embedded_orchestrator.channel() as channel:
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        for uri, code in (
            (outside.as_uri(), grpc.StatusCode.PERMISSION_DENIED),
            (f"file://{data}/../../etc/passwd", grpc.StatusCode.PERMISSION_DENIED),
            (link.as_uri(), grpc.StatusCode.PERMISSION_DENIED),
        ):
            with pytest.raises(grpc.RpcError) as info:
                submit(stub, model=MODEL, input_uri=uri)
            assert info.value.code() == code, uri
        with pytest.raises(grpc.RpcError) as info:
            submit(stub, model="nope", input_uri=(data / "d10.mp4").as_uri())
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as info:
            stub.GetJob(opb.GetJobRequest(id="nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_corrupt_input_fails_the_job_without_output(
    embedded_orchestrator: ServerProcess, data: Path, tmp_path: Path
) -> None:
    raw = (data / "s18.mp4").read_bytes()
    with embedded_orchestrator.channel() as channel:
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        job = stub.SubmitJob(
            iter(
                [
                    opb.SubmitJobRequest(spec=opb.JobSpec(model=MODEL, input_name="cut.mp4")),
                    opb.SubmitJobRequest(chunk=opb.DataChunk(data=raw[: len(raw) // 2])),
                ]
            )
        )
        final = list(stub.WatchJob(opb.GetJobRequest(id=job.id)))[-1]
        assert final.state == opb.JOB_STATE_FAILED
        assert "truncated" in final.error
        job_dir = Path(embedded_orchestrator.log).parent / "jobs" / job.id
        assert not list(job_dir.glob("output*")) and not list(job_dir.glob(".*partial"))
        with pytest.raises(grpc.RpcError) as info:
            list(stub.DownloadResult(opb.GetJobRequest(id=job.id)))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_cancel_stops_within_a_second(embedded_orchestrator: ServerProcess, data: Path) -> None:
    with embedded_orchestrator.channel() as channel:
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        job = submit(stub, model=MODEL, input_uri=(data / "d10.mp4").as_uri())
        deadline = time.monotonic() + 120
        while stub.GetJob(opb.GetJobRequest(id=job.id)).progress.frames_done < 8:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        start = time.monotonic()
        stub.CancelJob(opb.GetJobRequest(id=job.id))
        while stub.GetJob(opb.GetJobRequest(id=job.id)).state != opb.JOB_STATE_CANCELLED:
            time.sleep(0.05)
            assert time.monotonic() - start < 10
        took = time.monotonic() - start
        print(f"cancelled after {took:.2f} s")
        assert took < 2.0
        job_dir = Path(embedded_orchestrator.log).parent / "jobs" / job.id
        assert not list(job_dir.glob("output*")) and not list(job_dir.glob(".*partial"))
        listed = stub.ListJobs(opb.ListJobsRequest(page_size=50))
        assert job.id in {j.id for j in listed.jobs}
        assert np.all([j.created.seconds > 0 for j in listed.jobs])


def test_swap_stream_returns_swapped_frames_in_order(
    embedded_orchestrator: ServerProcess, data: Path
) -> None:
    check_swap_stream(embedded_orchestrator, data)


def test_jobs_and_streams_choose_faces_by_reference(
    embedded_orchestrator: ServerProcess, data: Path, tmp_path: Path
) -> None:
    check_reference_selection(embedded_orchestrator, data, tmp_path)


def check_reference_selection(server: ServerProcess, data: Path, tmp: Path) -> None:
    """A job and a live stream that swap d10 and leave d12 beside her, the
    reference travelling as an image; a reference of someone outside the
    model's consent record is PERMISSION_DENIED."""
    from swapline.media import encode_image, open_media
    from swapline.protocol import wire
    from swapline.v1 import common_pb2 as pb
    from tests.functional.faces import face_changes

    with open_media(data / "d10.mp4") as reader:
        d10 = next(f.image for f in reader.frames() if f.index == 300)
    reference = tmp / "d10.png"
    reference.write_bytes(encode_image(d10))
    clip = data / "two_faces.mp4"
    output = tmp / "reference.mp4"
    result = remote_swap(server, clip, output, "--reference", reference)
    assert result.returncode == 0, result.stderr + server.output()
    assert "60 frames, 60 faces swapped" in result.stdout, result.stdout
    changes = face_changes(clip, output, {"d10": reference})
    assert len(changes) > 100 and all(c.swapped == (c.who == "d10") for c in changes)

    with open_media(clip) as reader:
        frames = [f.image for f, _ in zip(reader.frames(), range(4), strict=False)]

    def requests(face: bytes) -> Iterator[opb.SwapStreamRequest]:
        selection = opb.FaceSelection(
            mode=opb.FaceSelection.MODE_REFERENCE,
            targets=[
                opb.FaceTarget(
                    reference_images=[pb.EncodedImage(encoding=pb.IMAGE_ENCODING_PNG, data=face)]
                )
            ],
        )
        config = opb.SwapStreamConfig(model=MODEL, selection=selection)
        yield opb.SwapStreamRequest(config=config)
        for i, image in enumerate(frames):
            yield opb.SwapStreamRequest(
                frame=opb.StreamFrame(frame=pb.FrameRef(index=i), image=wire.image_message(image))
            )

    with server.channel() as channel:
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        replies = list(stub.SwapStream(requests(reference.read_bytes()), timeout=120))
        assert [r.faces_swapped for r in replies] == [1] * len(frames)
        out = wire.decode_image_message(replies[-1].frame.image)
        assert psnr(out[:, 320:], frames[-1][:, 320:]) > 45  # d12's half untouched
        assert psnr(out[:, :320], frames[-1][:, :320]) < 35  # d10's swapped
        stranger = (data / "owen_wilson.jpg").read_bytes()
        with pytest.raises(grpc.RpcError) as info:
            list(stub.SwapStream(requests(stranger), timeout=120))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "consent record" in (info.value.details() or "")
        # A job whose reference shows no face is refused before any work.
        dogs = pb.EncodedImage(
            encoding=pb.IMAGE_ENCODING_JPEG, data=(data / "dogs.jpg").read_bytes()
        )
        spec = opb.JobSpec(
            model=MODEL,
            input_uri=clip.as_uri(),
            selection=opb.FaceSelection(
                mode=opb.FaceSelection.MODE_REFERENCE,
                targets=[opb.FaceTarget(reference_images=[dogs])],
            ),
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.SubmitJob(iter([opb.SubmitJobRequest(spec=spec)]))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "no face found" in (info.value.details() or "")


def check_swap_stream(server: ServerProcess, data: Path) -> None:
    """Six frames of a live stream come back in order, each face swapped."""
    from swapline.media import open_media
    from swapline.protocol import wire
    from swapline.v1 import common_pb2 as pb

    with open_media(data / "d10.mp4") as reader:
        frames = [f.image for f, _ in zip(reader.frames(), range(6), strict=False)]

    def requests() -> Iterator[opb.SwapStreamRequest]:
        yield opb.SwapStreamRequest(config=opb.SwapStreamConfig(model=MODEL))
        for i, image in enumerate(frames):
            yield opb.SwapStreamRequest(
                frame=opb.StreamFrame(
                    frame=pb.FrameRef(index=i, pts=i * 3000),
                    image=wire.image_message(image, pb.IMAGE_ENCODING_JPEG),
                )
            )

    with server.channel() as channel:
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        replies = list(stub.SwapStream(requests(), timeout=120))
    assert [r.frame.frame.index for r in replies] == list(range(6))
    assert [r.frame.frame.pts for r in replies] == [i * 3000 for i in range(6)]
    assert all(r.faces_swapped == 1 for r in replies)
    # Each frame says it is synthetic, in the reply and in the JPEG itself.
    assert all(
        r.synthetic and r.model == MODEL and "Synthetic media" in r.disclosure for r in replies
    )
    assert all(b"Synthetic media" in r.frame.image.encoded.data[:400] for r in replies)
    out = wire.decode_image_message(replies[0].frame.image)
    assert out.shape == frames[0].shape
    assert psnr(out, frames[0]) < 35  # the face changed

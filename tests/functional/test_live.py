"""``swapline live``: a real UDP MPEG-TS stream in (published here at its
own pace), a real one out (read back here), embedded and through an
orchestrator; and the errors a user meets first."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from swapline.devtools.streams import Received, publish, receiving, udp_url
from swapline.stages.detect import FaceDetector
from tests.conftest import REPO, ServerProcess, free_port, start_server, stop_server
from tests.functional.faces import CHANGED, middle_difference

MODEL = "d6_to_d10"


def live(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "swapline.cli", "live", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def swapped_share(received: Received, data: Path) -> float:
    """The share of received frames whose face was swapped: each is matched
    to the frame of d10 it came from (the nearest picture, small and grey),
    and its face compared with that frame's."""
    with av.open(str(data / "d10.mp4")) as container:
        sent = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    small = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), (64, 64)) for f in sent])
    detector = FaceDetector()
    swapped = []
    for _, image in received.frames[::4]:
        grey = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (64, 64))
        match = int(np.argmin(np.abs(small.astype(np.int16) - grey).mean(axis=(1, 2))))
        original = sent[match]
        faces = detector.detect(original)
        if not faces:
            continue
        d = max(faces, key=lambda b: b.right - b.left)
        change = middle_difference(image, original, (d.left, d.top, d.right, d.bottom))
        swapped.append(change > CHANGED)
    assert len(swapped) > 5
    return float(np.mean(swapped))


def _scrape(port: int, stop: threading.Event, found: list[str]) -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                text = reply.read().decode()
            if "swapline_live_frame_latency_seconds_count" in text:
                found.append(text)
        except OSError:
            pass
        time.sleep(0.5)


def run_stream(
    data: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[str, Received, str]:
    """d10 published over UDP for about 8 s, through ``swapline live``, read
    back over UDP: the command's output, what came back, a metrics scrape."""
    source, sink, metrics_port = free_port(), free_port(), free_port()
    stop = threading.Event()
    scraped: list[str] = []
    with receiving(udp_url(sink, listen=True)) as (_until, received):
        process = live(
            "--input",
            udp_url(source, listen=True),
            "--output",
            udp_url(sink),
            "--seconds",
            "8",
            "--metrics-port",
            str(metrics_port),
            *extra,
            env=env,
        )
        time.sleep(2.0)  # the input is listening: a receiver joins a live stream anyway
        feeder = threading.Thread(
            target=publish, args=(data / "d10.mp4", udp_url(source), stop), daemon=True
        )
        feeder.start()
        scraper = threading.Thread(target=_scrape, args=(metrics_port, stop, scraped), daemon=True)
        scraper.start()
        try:
            out, err = process.communicate(timeout=180)
        finally:
            stop.set()
            process.kill()
        assert process.returncode == 0, err
    return out, received, scraped[-1] if scraped else ""


def test_a_live_stream_comes_back_swapped_marked_with_audio(data: Path) -> None:
    out, received, metrics = run_stream(data, "--model", MODEL)
    assert "latency p50" in out, out
    assert len(received.frames) > 30, (out, received.error)
    assert received.audio_frames > 50
    assert received.keyframes >= 2 and received.marked_keyframes == received.keyframes
    assert swapped_share(received, data) > 0.9
    # The latency histogram was served while the stream ran.
    assert "swapline_live_frame_latency_seconds_bucket" in metrics
    assert 'swapline_live_frames_total{outcome="sent"}' in metrics


@pytest.fixture(scope="module")
def orchestrator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("live-orchestrator")
    server = start_server(
        "orchestrator",
        tmp,
        {
            "SWAPLINE_MODEL_REPOSITORY": str(REPO / "models" / "repository"),
            "SWAPLINE_WORK_DIR": str(tmp / "jobs"),
            "SWAPLINE_STORAGE_ROOTS": str(tmp),
        },
    )
    yield server
    stop_server(server)


def test_live_through_an_orchestrator(data: Path, orchestrator: ServerProcess) -> None:
    assert orchestrator.security is not None
    env = orchestrator.security.client_env()
    out, received, _ = run_stream(data, "--model", MODEL, "--remote", orchestrator.address, env=env)
    assert len(received.frames) > 30, (out, received.error)
    assert received.marked_keyframes == received.keyframes >= 1
    assert swapped_share(received, data) > 0.9


def _starts(path: Path) -> tuple[list[float], list[float]]:
    """Video frame times and audio frame times of a file, in seconds."""
    with av.open(str(path)) as container:
        video = [float(f.pts * f.time_base) for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = [float(f.pts * f.time_base) for f in container.decode(audio=0)]
    return video, audio


def test_live_from_a_file_to_a_file_keeps_sound_in_step(data: Path, tmp_path: Path) -> None:
    # The Hamilton clip's video starts 0.85 s after its audio: the live
    # output keeps the two in step as they were.
    clip = data / "short_hamilton_clip.mp4"
    output = tmp_path / "out.ts"
    process = live("--input", clip, "--output", output, "--model", MODEL, "--seconds", "4")
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    video_in, audio_in = _starts(clip)
    video_out, audio_out = _starts(output)
    assert video_out and audio_out
    assert video_out == sorted(video_out) and video_out[-1] - video_out[0] > 3.0
    offset_in = min(video_in) - min(audio_in)
    offset_out = min(video_out) - min(audio_out)
    assert offset_in > 0.5 and abs(offset_out - offset_in) < 0.1, (offset_in, offset_out)
    # Audio runs as far as the video it goes with, no further behind.
    assert max(audio_out) - max(video_out) > -0.5


def _one_line_failure(process: subprocess.Popen[str], message: str) -> None:
    _out, err = process.communicate(timeout=60)
    assert process.returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_bad_inputs_fail_in_one_line_and_leave_nothing_running(data: Path, tmp_path: Path) -> None:
    sink = udp_url(free_port())
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 100)
    cases = [
        (["--input", udp_url(free_port(), listen=True), "--timeout", "2"], "cannot open"),
        (["--input", text], "cannot open"),
        (["--input", "/dev/video9"], "no such device"),
        (["--input", tmp_path / "missing.mp4"], "no such file"),
        (["--input", data / "d10.mp4", "--reference", data / "dogs.jpg"], "no face found"),
    ]
    for args, message in cases:
        _one_line_failure(live(*args, "--output", sink, "--model", MODEL), message)
    process = live("--input", data / "d10.mp4", "--output", "/dev/video9", "--model", MODEL)
    _one_line_failure(process, "V4L2")


def test_latency_observed_per_frame_is_what_the_summary_reports(data: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "out.ts"
    process = live(
        "--input", data / "two_faces.mp4", "--output", out_file, "--model", MODEL, "--no-realtime"
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    # Read as fast as it decodes, processing falls behind: frames are
    # dropped, not queued, and the summary says how many.
    words = out.split()
    frames_out, frames_in = (
        int(words[words.index("frames") - 1]),
        int(words[words.index("in,") - 1]),
    )
    dropped = int(words[words.index("dropped") - 1])
    assert frames_in == 60 and frames_out + dropped <= frames_in and dropped > 0
    with av.open(str(out_file)) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames_out

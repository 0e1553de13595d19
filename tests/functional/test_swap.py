"""``swapline swap`` end to end, embedded, with the committed demo model."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from swapline.media import Frame, open_media
from swapline.model.extract import analyse_frame
from swapline.stages.align import AlignOptions, AlignSession
from swapline.stages.blend import roi_of
from swapline.stages.detect import FaceDetector
from swapline.stages.encode import EncodeOptions, FramePatches, encode
from swapline.stages.select import Selection, SelectMode
from tests.conftest import REPO

MODEL = "d6_to_d10"
REPOSITORY = REPO / "models" / "repository"


def swap(source: Path, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
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
            str(source),
            "--output",
            str(output),
            "-q",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )


def video_frames(path: Path) -> list[tuple[int, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(f.pts, f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]


def audio_packets(path: Path) -> list[tuple[int, int, bytes]]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [
            (p.pts, p.dts, bytes(p)) for p in container.demux(container.streams.audio[0]) if p.size
        ]


def face_mask(image: np.ndarray, detector: FaceDetector) -> np.ndarray:
    """True where the blender may change pixels: the region each face's
    aligned crop lands in (with a margin for temporal smoothing)."""
    mask = np.zeros(image.shape[:2], bool)
    height, width = image.shape[:2]
    session = AlignSession(AlignOptions(size=64, smoothing=0.0, with_crop=False, with_mask=False))
    frame = Frame(0, 0, Fraction(1, 1), image)
    for face in analyse_frame(frame, detector, session, Selection(SelectMode.ALL)):
        x0, y0, x1, y1 = roi_of(face.aligned.crop_to_frame, 64, (width, height))
        pad = (x1 - x0) // 10
        mask[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad] = True
    return mask


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def without_audio(source: Path, out: Path) -> Path:
    """The same video stream, packets copied, no audio."""
    with av.open(str(source)) as inp, av.open(str(out), "w") as container:
        video = container.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = video
            container.mux(packet)
    return out


def outside_and_inside_psnr(
    before: list[tuple[int, np.ndarray]], after: list[tuple[int, np.ndarray]]
) -> tuple[list[float], list[float]]:
    detector = FaceDetector()
    outside, inside = [], []
    for (_, a), (_, b) in list(zip(before, after, strict=True))[:: max(1, len(before) // 12)]:
        mask = face_mask(a, detector)
        if (~mask).any():
            outside.append(psnr(a[~mask], b[~mask]))
        if mask.any():
            inside.append(psnr(a[mask], b[mask]))
    return outside, inside


@pytest.mark.parametrize("clip", ["d10.mp4", "vfr_talking_1.mp4", "no-audio"])
def test_swap_keeps_frames_timestamps_audio_and_background(
    clip: str, data: Path, tmp_path: Path
) -> None:
    if clip == "no-audio":
        source = without_audio(data / "d10.mp4", tmp_path / "silent.mp4")
    else:
        source = data / clip
    output = tmp_path / "out.mp4"
    result = swap(source, output)
    assert result.returncode == 0, result.stderr
    before, after = video_frames(source), video_frames(output)
    assert len(after) == len(before)
    assert [p for p, _ in after] == [p for p, _ in before]
    assert audio_packets(output) == audio_packets(source)  # bit-exact, or both without audio
    with av.open(str(output)) as container:
        assert "Synthetic media" in container.metadata.get("comment", "")
        assert container.metadata.get("swapline_model") == MODEL
    outside, inside = outside_and_inside_psnr(before, after)
    assert min(outside) >= 40.0, outside
    assert inside and np.median(inside) < 35.0, inside  # the faces did change


def test_tiny_faces_change_and_the_rest_only_pays_the_transcode(data: Path, tmp_path: Path) -> None:
    # A 176x144 near-lossless source, where a lossy re-encode alone costs
    # more than 4 dB and x264's bit allocation follows the faces (the
    # background's PSNR moved by up to 2 dB against the plain transcode, and
    # differently on different CPUs). Both encode losslessly (crf 0), so the
    # background is held to the plain transcode pixel for pixel.
    source = data / "carphone_pristine.mp4"
    output, floor = tmp_path / "out.mp4", tmp_path / "floor.mp4"
    assert swap(source, output, "--crf", "0").returncode == 0
    before, after = video_frames(source), video_frames(output)
    assert [p for p, _ in after] == [p for p, _ in before]
    lossless = EncodeOptions(crf=0)
    encode(source, floor, (FramePatches(i, []) for i in range(len(before))), lossless)
    transcoded = video_frames(floor)
    outside, inside = outside_and_inside_psnr(before, after)
    floor_outside, _ = outside_and_inside_psnr(before, transcoded)
    assert min(outside) >= min(floor_outside) - 0.5, (outside, floor_outside)
    assert np.median(inside) < 30.0, inside


def test_no_face_clip_comes_out_unchanged_apart_from_encoding(data: Path, tmp_path: Path) -> None:
    output = tmp_path / "bunny.mp4"
    result = swap(data / "bigbuckbunny.mp4", output)
    assert result.returncode == 0, result.stderr
    assert "0 faces swapped" in result.stdout
    before, after = video_frames(data / "bigbuckbunny.mp4"), video_frames(output)
    assert len(before) == len(after)
    assert min(psnr(a, b) for (_, a), (_, b) in zip(before, after, strict=True)) > 38.0
    assert audio_packets(output) == audio_packets(data / "bigbuckbunny.mp4")  # 5.1 AAC


def test_still_image_gives_an_image(data: Path, tmp_path: Path) -> None:
    output = tmp_path / "two.png"
    result = swap(data / "two_people.jpg", output)
    assert result.returncode == 0, result.stderr
    assert "2 faces swapped" in result.stdout
    image = cv2.imread(str(output))
    original = cv2.imread(str(data / "two_people.jpg"))
    assert image.shape == original.shape
    assert b"Synthetic media" in output.read_bytes()


def test_unknown_model_and_bad_input_fail_cleanly(data: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "swapline.cli",
            "swap",
            "--model",
            "nope",
            "--repository",
            str(REPOSITORY),
            "--input",
            str(data / "d10.mp4"),
            "--output",
            str(output),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "unknown model" in result.stderr
    bad = tmp_path / "bad.mp4"
    bad.write_bytes((data / "s18.mp4").read_bytes()[:300_000])
    result = swap(bad, output)
    assert result.returncode != 0 and "truncated" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not output.exists() and not list(tmp_path.glob(".*partial"))
    # FFmpeg reads any text file as a video of its characters: not an input.
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 100)
    result = swap(text, output)
    assert result.returncode == 1 and "not a video or image" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not output.exists()


def test_faces_followed_between_detections_match_detecting_every_frame(data: Path) -> None:
    """d12 moves fast: searching the whole frame every 4th frame and only
    near the faces in between finds the same faces and landmarks."""
    from swapline.errors import InvalidInputError
    from swapline.pipeline import EmbeddedStages, FrameSwapper, Progress, SwapOptions

    stages = EmbeddedStages(REPOSITORY)

    def landmarks(every: int) -> dict[int, np.ndarray]:
        swapper = FrameSwapper(stages, SwapOptions(model=MODEL, detect_every=every, smoothing=0.0))
        found: dict[int, np.ndarray] = {}
        with open_media(data / "d12.mp4") as reader:
            window: list[Frame] = []
            for frame in reader.frames():
                window.append(frame)
                if len(window) == 16:
                    boxes = swapper.detect(window, Progress())
                    for face in swapper.align(window, boxes, Progress()):
                        found[face.frame_index] = face.raw_landmarks
                    window = []
        return found

    try:
        every_frame, every_fourth = landmarks(1), landmarks(4)
        assert len(every_frame) > 150
        assert len(every_fourth) >= 0.98 * len(every_frame)
        errors = []
        for index, reference in every_frame.items():
            if index in every_fourth:
                eyes = np.linalg.norm(reference[36:42].mean(0) - reference[42:48].mean(0))
                errors.append(np.linalg.norm(every_fourth[index] - reference, axis=1).mean() / eyes)
        assert float(np.mean(errors)) < 0.04, "mean landmark difference, inter-ocular units"
        with pytest.raises(InvalidInputError, match="detect_every"):
            FrameSwapper(stages, SwapOptions(model=MODEL, detect_every=0))
    finally:
        stages.close()


def test_eval_metrics_on_known_cases(data: Path) -> None:
    """An unswapped clip of person X: identity 1 with X as source and 0 with
    the roles exchanged; an output identical to its input adds no jitter and
    leaves the background exact (infinite PSNR)."""
    import math

    from swapline.evaluation.clip import evaluate_clip, reference_embedding

    clip = data / "d10.mp4"
    x, other = reference_embedding(clip, limit=12), reference_embedding(data / "d12.mp4", limit=12)
    as_x, thumbs, closeups = evaluate_clip(
        clip, clip, source=x, target=other, frames=(0, 40), contact=3, closeups=(10, 20)
    )
    assert as_x.frames == 40 and as_x.faces >= 38
    assert as_x.identity_score == 1.0
    assert as_x.landmark_jitter_increase == 0.0 and as_x.colour_jitter_increase == 0.0
    assert as_x.landmark_jitter_input > 0  # a talking face moves
    assert as_x.expression_error == 0.0
    assert math.isinf(as_x.background_psnr_db)
    assert as_x.sharpness_vs_input == 1.0 and as_x.seam_vs_input == 1.0
    assert as_x.flicker_vs_input == 1.0 and as_x.spill_share == 0.0
    assert [index for index, _, _ in thumbs] == [0, 20, 39]
    assert [shot.index for shot in closeups] == [10, 12, 13, 14, 16, 18, 19]
    for shot in closeups:  # nothing changed: the change map is the dimmed input alone
        assert shot.input.shape == shot.changed.shape == shot.output.shape
        assert (shot.input == shot.output).all() and shot.changed[..., 2].max() < 96
    exchanged, _, _ = evaluate_clip(clip, clip, source=other, target=x, frames=(0, 40), contact=0)
    assert exchanged.identity_score == 0.0


def test_eval_cli_writes_the_report_and_rejects_bad_input(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "swapline.cli",
            "eval",
            "--input",
            str(data / "d10.mp4"),
            "--swapped",
            str(data / "d10.mp4"),
            "--source",
            str(data / "d6.mp4"),
            "--frames",
            "0:24",
            "--closeups",
            "6:12",
            "--out",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    names = ("eval.json", "report.md", "identity.png", "jitter.png", "contact_sheet.jpg")
    for name in (*names, "closeups.png", "sharpness.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "eval.json").read_text())["summary"]
    assert summary["background_psnr_db"] == "inf" and summary["frames"] == 24
    assert "![identity per frame](identity.png)" in (out / "report.md").read_text()
    assert "(closeups.png)" in (out / "report.md").read_text()

    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "swapline.cli",
            "eval",
            "--input",
            str(data / "d10.mp4"),
            "--swapped",
            str(data / "d12.mp4"),
            "--source",
            str(data / "d6.mp4"),
            "--out",
            str(tmp_path / "bad"),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode != 0
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_windows_wait_only_for_tracks_too_short_to_judge(data: Path) -> None:
    """min_track_frames 3: a window whose faces all have long tracks comes
    out at once; one with a track begun in its last frames waits for the
    next window (or the end); a face seen in one frame only is never swapped."""
    from swapline.pipeline import EmbeddedStages, FrameSwapper, Progress, SwapOptions

    with open_media(data / "d10.mp4") as reader:
        faces = [f.image for f, _ in zip(reader.frames(), range(8), strict=False)]
    empty = np.zeros_like(faces[0])
    images = [faces[0], faces[1], faces[2], faces[3]]  # window 1: a long track
    images += [empty, empty, faces[4], faces[5]]  # window 2: a track two frames long
    images += [faces[6], empty, empty, faces[7]]  # window 3: it goes on; a lone face
    frames = [Frame(i, i, Fraction(1, 25), image) for i, image in enumerate(images)]
    stages = EmbeddedStages(REPOSITORY)
    try:
        swapper = FrameSwapper(stages, SwapOptions(model=MODEL, min_track_frames=3, detect_every=1))
        progress = Progress()
        out = [list(swapper.run([frames[i : i + 4]], progress, end=False)) for i in (0, 4, 8)]
        out.append(list(swapper.run([], progress)))  # the end: what is held back comes out
        assert [[p.index for p in batch] for batch in out] == [
            [0, 1, 2, 3],
            [],
            [4, 5, 6, 7],
            [8, 9, 10, 11],  # frame 11's face might have begun a track: known at the end
        ]
        patched = {p.index for batch in out for p in batch if p.patches}
        assert patched == {0, 1, 2, 3, 6, 7, 8}  # not the lone face of frame 11
    finally:
        stages.close()


def _swap_process(
    source: Path, output: Path, limit_bytes: int | None = None
) -> subprocess.Popen[str]:
    def limit() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails: EFBIG
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    command = [sys.executable, "-m", "swapline.cli", "swap", "--model", MODEL]
    command += ["--repository", str(REPOSITORY), "--input", str(source)]
    command += ["--output", str(output), "-q"]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit
    )


def test_two_swaps_to_one_output_leave_one_whole_file(data: Path, tmp_path: Path) -> None:
    output = tmp_path / "shared.mp4"
    runs = [
        _swap_process(data / "carphone_pristine.mp4", output),
        _swap_process(data / "d10_rotated.mp4", output),
    ]
    results = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    reported = [int(out.split(": ")[1].split(" frames")[0]) for out, _ in results]
    assert sorted(reported) == [45, 120]
    with av.open(str(output)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames in reported  # one run's whole file, never a mix or a cut
    assert not list(tmp_path.glob(".*partial"))


def test_an_output_that_cannot_be_written_is_a_one_line_error(data: Path, tmp_path: Path) -> None:
    full = _swap_process(data / "carphone_pristine.mp4", tmp_path / "full.mp4", 8 * 1024)
    _, stderr = full.communicate(timeout=600)
    assert full.returncode == 1, stderr
    assert stderr.strip().splitlines() == [
        f"swapline: error: cannot write the output {tmp_path / 'full.mp4'}: File too large"
    ]
    (tmp_path / "a-file").write_text("")
    result = swap(data / "carphone_pristine.mp4", tmp_path / "a-file" / "out.mp4")
    assert result.returncode == 1
    assert result.stderr.startswith("swapline: error: cannot write the output")
    assert len(result.stderr.strip().splitlines()) == 1
    result = swap(data / "carphone_pristine.mp4", tmp_path)
    assert result.returncode == 1 and "the output is a directory" in result.stderr
    assert not list(tmp_path.glob(".*partial"))


def test_a_model_without_consent_on_record_is_refused(data: Path, tmp_path: Path) -> None:
    import shutil

    repository = tmp_path / "repository"
    shutil.copytree(REPOSITORY / MODEL, repository / MODEL)
    metadata_file = repository / MODEL / "swapline.json"
    metadata = json.loads(metadata_file.read_text())
    for identities, why in (
        ([], "names no identities"),
        ([{**i, "consent_reference": " "} for i in metadata["identities"]], "no consent reference"),
        ([i for i in metadata["identities"] if i["role"] != "source"], "no source identity"),
    ):
        metadata_file.write_text(json.dumps({**metadata, "identities": identities}))
        result = swap(
            data / "d10_rotated.mp4", tmp_path / "out.mp4", "--repository", str(repository)
        )
        assert result.returncode == 1 and why in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out.mp4").exists()


def test_the_synthetic_mark_survives_a_stream_copy_remux(data: Path, tmp_path: Path) -> None:
    from swapline.stages.encode import MARK_TEXT, bitstream_mark

    output = tmp_path / "swapped.mp4"
    assert swap(data / "d10_rotated.mp4", output).returncode == 0
    remuxed = tmp_path / "remuxed.mkv"  # `ffmpeg -i swapped.mp4 -map_metadata -1 -c copy`
    with av.open(str(output)) as source, av.open(str(remuxed), "w") as target:
        assert source.metadata.get("swapline_synthetic") == "1"
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    with av.open(str(remuxed)) as container:
        assert "swapline_synthetic" not in container.metadata  # the container's tags are gone
        assert sum(1 for _ in container.decode(video=0)) == 45
    assert bitstream_mark(remuxed) == MARK_TEXT  # the video's own mark is not
    assert bitstream_mark(data / "d10_rotated.mp4") is None

"""``swapline extract`` end to end on real media, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from swapline.evaluation.quality import crop_eye_jitter
from tests.conftest import cli


def records(faceset: Path) -> list[dict]:  # type: ignore[type-arg]
    with (faceset / "faces.jsonl").open() as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def d10_faceset(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    out = tmp_path_factory.mktemp("fs") / "d10"
    result = cli("extract", data / "d10.mp4", "--out", out, "--size", "128", "-q")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def d10_raw_faceset(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    out = tmp_path_factory.mktemp("fs") / "d10_raw"
    result = cli(
        "extract", data / "d10.mp4", "--out", out, "--size", "128", "--smoothing", "0", "-q"
    )
    assert result.returncode == 0, result.stderr
    return out


def test_d10_yields_an_aligned_face_for_almost_every_frame(d10_faceset: Path) -> None:
    manifest = json.loads((d10_faceset / "manifest.json").read_text())
    assert manifest["format"] == "swapline-faceset"
    source = manifest["sources"][0]
    assert source["frames_read"] == 448
    assert source["frames_with_face"] >= 0.95 * 448
    faces = records(d10_faceset)
    assert len(faces) == manifest["faces"] == source["faces"]
    first = faces[0]
    crop = cv2.imread(str(d10_faceset / first["file"]))
    mask = cv2.imread(str(d10_faceset / first["mask"]), cv2.IMREAD_GRAYSCALE)
    assert crop.shape == (128, 128, 3) and mask.shape == (128, 128)
    assert 0.2 < (mask > 127).mean() < 0.95  # a face-shaped region, not empty or full
    assert len(first["landmarks"]) == 68 and len(first["crop_landmarks"]) == 68
    assert first["time_base"] == "1/90000"
    # Frame indices are strictly increasing, timestamps follow them.
    indices = [f["frame_index"] for f in faces]
    assert indices == sorted(set(indices))
    assert faces[10]["pts"] == faces[10]["frame_index"] * 3000
    # One person, one track (no identity switches on a single-face clip).
    assert len({f["track_id"] for f in faces}) <= 2


def test_smoothing_lowers_eye_jitter_in_the_crops(d10_faceset: Path, d10_raw_faceset: Path) -> None:
    smooth, raw = records(d10_faceset), records(d10_raw_faceset)
    assert [f["frame_index"] for f in smooth] == [f["frame_index"] for f in raw]
    # The raw run's landmarks are the per-frame measurements in both cases.
    measured = np.array([f["landmarks"] for f in raw])
    jitter_raw = crop_eye_jitter(np.array([f["frame_to_crop"] for f in raw]), measured)
    jitter_smooth = crop_eye_jitter(np.array([f["frame_to_crop"] for f in smooth]), measured)
    print(
        f"eye jitter in 128 px crops: raw {jitter_raw:.3f} px/frame, "
        f"smoothed {jitter_smooth:.3f} px/frame"
    )
    assert jitter_smooth < 0.8 * jitter_raw


@pytest.mark.parametrize("every", ["1", "4"])
def test_no_humans_means_zero_faces_and_a_clear_message(
    tmp_path: Path, data: Path, every: str
) -> None:
    """Every frame too: the detector's two cartoon boxes last a frame or two,
    and a face needs a track of three frames, as in the swap pipeline."""
    out = tmp_path / "bunny"
    result = cli("extract", data / "bigbuckbunny.mp4", "--out", out, "--every", every, "-q")
    assert result.returncode == 0, result.stderr
    assert "no faces found" in result.stdout
    assert json.loads((out / "manifest.json").read_text())["faces"] == 0
    assert records(out) == []


def test_two_people_with_select_all(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "two"
    result = cli("extract", data / "two_people.jpg", "--out", out, "--select", "all", "-q")
    assert result.returncode == 0, result.stderr
    faces = records(out)
    assert len(faces) == 2
    assert {f["face_index"] for f in faces} == {0, 1}


def test_reference_selection_picks_that_person(tmp_path: Path, data: Path) -> None:
    largest, ref = tmp_path / "largest", tmp_path / "ref"
    assert cli("extract", data / "two_people.jpg", "--out", largest, "-q").returncode == 0
    result = cli(
        "extract",
        data / "two_people.jpg",
        "--out",
        ref,
        "-q",
        "--select",
        f"ref={data / 'obama_partial_face.jpg'}",
    )
    assert result.returncode == 0, result.stderr
    (by_size,), (by_ref,) = records(largest), records(ref)
    # The reference photo shows the person on the left, who is not the
    # larger face: the choice is made by identity, not by size.
    assert by_ref["box"][0] < 500 < by_size["box"][0]
    assert "embedding" in by_ref and len(by_ref["embedding"]) == 128


def test_tiny_face_clip_and_rotated_clip(tmp_path: Path, data: Path) -> None:
    for clip in ("carphone_pristine.mp4", "d10_rotated.mp4"):
        out = tmp_path / clip
        result = cli("extract", data / clip, "--out", out, "--every", "5", "-q")
        assert result.returncode == 0, result.stderr
        source = json.loads((out / "manifest.json").read_text())["sources"][0]
        assert source["frames_with_face"] >= 0.9 * source["frames_analysed"], clip


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.mp4", b"", "empty file"),
        ("notes.mp4", b"just text, not a video\n" * 50, "cannot decode"),
    ],
)
def test_bad_input_is_a_one_line_error(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    result = cli("extract", bad, "--out", tmp_path / "out", "-q")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(bad) in lines[0] and reason in lines[0]
    assert not (tmp_path / "out").exists()  # refused before any work


def test_a_file_truncated_midway_keeps_what_was_found(tmp_path: Path, data: Path) -> None:
    raw = (data / "s18.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(raw[: len(raw) // 2])
    out = tmp_path / "out"
    result = cli("extract", cut, "--out", out, "--every", "10", "-q")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "truncated" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["faces"] > 0 and "truncated" in manifest["sources"][0]["error"]
    assert len(records(out)) == manifest["faces"]

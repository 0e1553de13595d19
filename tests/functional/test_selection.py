"""Choosing faces at swap time: by reference (embeddings, tracks voting),
several models mapped to several people in one pass, the filters, and the
consent record that limits who a reference may choose. Real clips, the
demo model and a model trained here."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import cv2
import pytest

from tests.conftest import REPO, cli
from tests.functional.faces import face_changes, middle_difference

DEMO = "d6_to_d10"
QUICK = "quick_d12"


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory, data: Path) -> dict[str, Path]:
    """Reference pictures: Ben Stiller and Owen Wilson cut from frames of
    their clip, and d10 and d12 from frames of theirs the two-face clip does
    not use."""
    root = tmp_path_factory.mktemp("faces")
    pictures = {"ben": data / "ben_stiller.jpg", "owen": data / "owen_wilson.jpg"}
    for name, index in (("d10", 300), ("d12", 150)):
        with av.open(str(data / f"{name}.mp4")) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == index:
                    pictures[name] = root / f"{name}.png"
                    cv2.imwrite(str(pictures[name]), frame.to_ndarray(format="bgr24"))
                    break
    pictures["lin"] = data / "lin-manuel-miranda.png"
    return pictures


@pytest.fixture(scope="module")
def repository(
    tmp_path_factory: pytest.TempPathFactory, data: Path, faces: dict[str, Path]
) -> Path:
    """The demo model, and a second model of the same size trained here for
    a few steps (d12 -> d10): it draws a different face."""
    root = tmp_path_factory.mktemp("selection")
    repo = root / "repository"
    shutil.copytree(REPO / "models" / "repository" / DEMO, repo / DEMO)
    facesets = {}
    for name in ("d12", "d10"):
        out = root / f"faces_{name}"
        args = [data / f"{name}.mp4", "--out", out, "--size", "96", "--frames", "0:40"]
        result = cli(
            "extract", *args, "--every", "2", "-q", "--identity", name, "--consent", f"test: {name}"
        )
        assert result.returncode == 0, result.stderr
        facesets[name] = out
    result = cli(
        "train",
        "--src",
        facesets["d12"],
        "--dst",
        facesets["d10"],
        "--out",
        root / QUICK,
        "--steps",
        "30",
        "--res",
        "64",
        "--export-to",
        repo,
        "-q",
    )
    assert result.returncode == 0, result.stderr
    return repo


def swap(repository: Path, source: Path, output: Path, *extra: str | Path) -> None:
    result = cli(
        "swap", "--repository", repository, "--input", source, "--output", output, "-q", *extra
    )
    assert result.returncode == 0, result.stderr


def consent(repository: Path, model: str, name: str, face: Path) -> None:
    result = cli(
        "consent",
        repository / model,
        "--name",
        name,
        "--face",
        face,
        "--consent-reference",
        f"test: {name}",
    )
    assert result.returncode == 0, result.stderr


def test_a_reference_swaps_one_actor_and_leaves_the_other(
    repository: Path, data: Path, faces: dict[str, Path], tmp_path: Path
) -> None:
    clip = data / "Ben_Stiller_Owen_Wilson.mp4"
    consent(repository, DEMO, "Ben Stiller", faces["ben"])
    output = tmp_path / "ben.mp4"
    swap(repository, clip, output, "--model", DEMO, "--reference", faces["ben"])
    changes = face_changes(clip, output, {"ben": faces["ben"], "owen": faces["owen"]})
    ben = [c for c in changes if c.who == "ben"]
    owen = [c for c in changes if c.who == "owen"]
    assert len(ben) > 120 and len(owen) > 120  # both actors are on screen a lot
    swapped = sum(c.swapped for c in ben) / len(ben)
    assert swapped >= 0.95, [c.frame for c in ben if not c.swapped]
    assert not [c.frame for c in owen if c.swapped]


def test_the_performer_is_swapped_and_the_audience_is_not(
    repository: Path, data: Path, faces: dict[str, Path], tmp_path: Path
) -> None:
    clip = data / "short_hamilton_clip.mp4"
    consent(repository, DEMO, "Lin-Manuel Miranda", faces["lin"])
    everyone, chosen = tmp_path / "all.mp4", tmp_path / "reference.mp4"
    swap(repository, clip, everyone, "--model", DEMO)
    swap(repository, clip, chosen, "--model", DEMO, "--reference", faces["lin"])
    for output, audience_swapped in ((everyone, True), (chosen, False)):
        changes = face_changes(clip, output, {"lin": faces["lin"]})
        performer = [c for c in changes if c.who == "lin"]
        audience = [c for c in changes if c.who == "other"]
        assert len(performer) > 100 and len(audience) > 20
        assert sum(c.swapped for c in performer) / len(performer) > 0.9
        # Swapping every face paints the audience (what the reference is
        # for); the reference leaves every audience face alone.
        assert any(c.swapped for c in audience) is audience_swapped


def test_two_models_mapped_to_two_faces_in_one_pass(
    repository: Path, data: Path, faces: dict[str, Path], tmp_path: Path
) -> None:
    clip = data / "two_faces.mp4"  # d10 on the left, d12 on the right
    # Each model's record names both people (a test may consent to anything).
    for model in (DEMO, QUICK):
        consent(repository, model, "d10", faces["d10"])
        consent(repository, model, "d12", faces["d12"])
    outputs = {n: tmp_path / f"{n}.mp4" for n in ("mapped", "reversed", "demo", "quick")}
    demo_d10, quick_d12 = f"{DEMO}={faces['d10']}", f"{QUICK}={faces['d12']}"
    swap(repository, clip, outputs["mapped"], "--map", demo_d10, "--map", quick_d12)
    swap(
        repository,
        clip,
        outputs["reversed"],
        "--map",
        f"{DEMO}={faces['d12']}",
        "--map",
        f"{QUICK}={faces['d10']}",
    )
    swap(repository, clip, outputs["demo"], "--map", demo_d10)
    swap(repository, clip, outputs["quick"], "--map", quick_d12)
    people = {"d10": faces["d10"], "d12": faces["d12"]}
    mapped = face_changes(clip, outputs["mapped"], people)
    assert {c.who for c in mapped} == {"d10", "d12"} and len(mapped) > 100
    assert all(c.swapped for c in mapped)
    # One model alone draws its person only.
    for name, person in (("demo", "d10"), ("quick", "d12")):
        assert all(
            c.swapped == (c.who == person) for c in face_changes(clip, outputs[name], people)
        )
    # The mapped pass draws each face as that face's model alone does, and
    # unlike the other model (the reversed mapping): each face got its model.
    alone = {"d10": outputs["demo"], "d12": outputs["quick"]}
    with Clip(outputs["mapped"]) as a, Clip(outputs["reversed"]) as r:
        for person, path in alone.items():
            with Clip(path) as b:
                mine = [c for c in mapped if c.who == person]
                same = [a.difference(b, c.frame, c.box) for c in mine]
                other = [a.difference(r, c.frame, c.box) for c in mine]
            assert max(same) < 2.0, (person, max(same))
            assert min(other) > 4.0, (person, min(other))


class Clip:
    """A decoded clip's frames, by index."""

    def __init__(self, path: Path) -> None:
        with av.open(str(path)) as container:
            self.frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]

    def __enter__(self) -> Clip:
        return self

    def __exit__(self, *_: object) -> None:
        self.frames = []

    def difference(self, other: Clip, index: int, box: tuple[float, float, float, float]) -> float:
        """Mean absolute difference over the middle of a face box."""
        return middle_difference(self.frames[index], other.frames[index], box)


def test_largest_and_filters_choose_faces_by_size_and_place(
    repository: Path, data: Path, faces: dict[str, Path], tmp_path: Path
) -> None:
    clip = data / "two_faces.mp4"
    people = {"d10": faces["d10"], "d12": faces["d12"]}
    cases = {
        ("--order", "left-right", "--max-faces", "1"): {"d10"},
        ("--order", "right-left", "--max-faces", "1"): {"d12"},
        ("--min-face", "400"): set(),  # both faces are about 150 px
        ("--select", "all"): {"d10", "d12"},
    }
    for flags, expected in cases.items():
        output = tmp_path / "out.mp4"
        swap(repository, clip, output, "--model", DEMO, *flags)
        changes = face_changes(clip, output, people)
        assert len(changes) > 100
        swapped = {c.who for c in changes if c.swapped}
        assert swapped == expected, flags
    output = tmp_path / "largest.mp4"
    swap(repository, clip, output, "--model", DEMO, "--select", "largest")
    per_frame: dict[int, int] = {}
    for c in face_changes(clip, output, people):
        per_frame[c.frame] = per_frame.get(c.frame, 0) + c.swapped
    assert set(per_frame.values()) == {1}  # one face a frame, never both


def test_references_that_are_not_consented_or_show_no_face_are_refused(
    repository: Path, data: Path, faces: dict[str, Path], tmp_path: Path
) -> None:
    clip = data / "two_faces.mp4"
    output = tmp_path / "out.mp4"
    base = ["swap", "--repository", repository, "--input", clip, "--output", output, "-q"]
    cases = {
        # Owen Wilson is in no record of the demo model's.
        ("--model", DEMO, "--reference", faces["owen"]): "consent record",
        ("--model", DEMO, "--reference", data / "dogs.jpg"): "no face found",
        ("--model", DEMO, "--reference", tmp_path / "missing.jpg"): "no such file",
        ("--map", f"{DEMO}"): "expected MODEL=IMAGE",
        ("--map", f"nosuchmodel={faces['d10']}"): "nosuchmodel",
        ("--reference", faces["d10"]): "needs --model",
        ("--model", DEMO, "--select", "reference"): "needs --reference",
    }
    for flags, message in cases.items():
        result = cli(*base, *flags)
        assert result.returncode == 1, (flags, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (flags, result.stderr)
        assert not output.exists()
    # The committed demo model's record has d10's face (its target): no
    # consent step needed to choose d10 with it.
    result = cli(
        "swap",
        "--repository",
        REPO / "models" / "repository",
        "--input",
        clip,
        "--output",
        output,
        "-q",
        "--model",
        DEMO,
        "--reference",
        faces["d10"],
    )
    assert result.returncode == 0, result.stderr
    changes = face_changes(clip, output, {"d10": faces["d10"]})
    assert all(c.swapped == (c.who == "d10") for c in changes)

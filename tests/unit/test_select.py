from __future__ import annotations

import cv2
import numpy as np
import pytest

from swapline.errors import InvalidInputError
from swapline.stages.select import Selection, SelectMode, select_faces


def test_largest_and_all() -> None:
    areas = [100.0, 400.0, 50.0]
    assert select_faces(Selection(SelectMode.LARGEST), areas) == [1]
    assert select_faces(Selection(SelectMode.ALL), areas) == [0, 1, 2]
    assert select_faces(Selection(SelectMode.LARGEST), []) == []


def test_reference_picks_the_nearest_within_threshold() -> None:
    ref = np.zeros(128, np.float32)
    near, far = ref.copy(), ref.copy()
    near[0], far[0] = 0.3, 0.9
    selection = Selection(SelectMode.REFERENCE, ref)
    assert select_faces(selection, [900.0, 100.0], [far, near]) == [1]
    assert select_faces(selection, [900.0], [far]) == []  # nobody close enough


def test_reference_needs_an_embedding() -> None:
    with pytest.raises(InvalidInputError):
        Selection(SelectMode.REFERENCE)


# --- choosing faces at swap time ---------------------------------------------

from swapline.stages.follow import ShotCuts  # noqa: E402
from swapline.stages.select import (  # noqa: E402
    FIRST_VOTES,
    SAMPLE_EVERY,
    FaceOrder,
    FaceSelection,
    Target,
    TrackVotes,
    choose_faces,
    consent_refusal,
)


def _person(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=128)
    return (v / np.linalg.norm(v)).astype(np.float32)  # unit vectors: 1.4 apart


def _near(e: np.ndarray, distance: float, seed: int = 9) -> np.ndarray:
    step = np.random.default_rng(seed).normal(size=128)
    step -= step.dot(e) * e
    return (e + distance * step / np.linalg.norm(step)).astype(np.float32)


BOXES = [(0.0, 0.0, 100.0, 100.0), (300.0, 50.0, 380.0, 130.0), (150.0, 200.0, 190.0, 240.0)]
AREAS = [10000.0, 6400.0, 1600.0]


def test_filters_order_limit_and_size() -> None:
    every = FaceSelection()
    assert choose_faces(every, BOXES, AREAS) == [0, 1, 2]
    assert choose_faces(FaceSelection(SelectMode.LARGEST), BOXES, AREAS) == [0]
    expected = {
        FaceOrder.SMALL_LARGE: [2, 1, 0],
        FaceOrder.LEFT_RIGHT: [0, 2, 1],
        FaceOrder.RIGHT_LEFT: [1, 2, 0],
        FaceOrder.TOP_BOTTOM: [0, 1, 2],
        FaceOrder.BOTTOM_TOP: [2, 1, 0],
    }
    for order, indices in expected.items():
        assert choose_faces(FaceSelection(order=order), BOXES, AREAS) == indices, order
        limited = FaceSelection(order=order, max_faces=1)
        assert choose_faces(limited, BOXES, AREAS) == indices[:1]
    assert choose_faces(FaceSelection(min_size=60), BOXES, AREAS) == [0, 1]


def test_largest_ranks_by_the_track_not_the_frame() -> None:
    # In this frame face 1's box is the larger, but its track is smaller on
    # average: the choice stays with face 0's track.
    boxes = [(0.0, 0.0, 100.0, 100.0), (200.0, 0.0, 305.0, 105.0)]
    assert choose_faces(FaceSelection(SelectMode.LARGEST), boxes, [10000.0, 9000.0]) == [0]


def test_tracks_vote_with_the_median_of_their_samples() -> None:
    ben, owen = _person(1), _person(2)
    selection = FaceSelection(SelectMode.REFERENCE, (Target("a", (ben,)), Target("b", (owen,))))
    votes = TrackVotes(selection)
    track = (7, 0)
    assert votes.target(track) is None  # no votes: untouched
    # Two good samples of ben and one bad (turned away) one: still ben.
    for frame, sample in enumerate([_near(ben, 0.3), _near(ben, 0.9), _near(ben, 0.35)]):
        assert votes.take_sample(track, frame)
        votes.add(track, sample)
    target = votes.target(track)
    assert target is not None and target.model == "a"
    # A stranger's track matches nobody.
    stranger = (8, 0)
    votes.take_sample(stranger, 0)
    votes.add(stranger, _person(3))
    assert votes.target(stranger) is None
    # The same track id after a scene cut votes afresh.
    assert votes.target((7, 1)) is None


def test_samples_are_dense_first_then_sparse_and_forgotten() -> None:
    votes = TrackVotes(FaceSelection(SelectMode.REFERENCE, (Target("a", (_person(1),)),)))
    key = (1, 0)
    taken = [f for f in range(100) if votes.take_sample(key, f)]
    assert taken[:FIRST_VOTES] == list(range(FIRST_VOTES))
    gaps = np.diff(taken[FIRST_VOTES - 1 :])
    assert len(gaps) > 5 and set(gaps) == {SAMPLE_EVERY}
    votes.add(key, _person(1))
    votes.forget_before(1000)
    assert votes.target(key) is None and votes.take_sample(key, 1000)  # starts over


def test_consent_record_limits_who_references_may_choose() -> None:
    ben, owen = _person(1), _person(2)
    target = Target("m", (_near(ben, 0.2),))
    assert consent_refusal(target, [{"name": "Ben", "embedding": ben.tolist()}], 0.6) is None
    refusal = consent_refusal(target, [{"name": "Owen", "embedding": owen.tolist()}], 0.6)
    assert refusal is not None and "consent record" in refusal
    # A record without faces refuses every reference.
    assert consent_refusal(target, [{"name": "Ben", "role": "source"}], 0.6) is not None


def test_selection_validation() -> None:
    with pytest.raises(InvalidInputError, match="at least one reference"):
        FaceSelection(SelectMode.REFERENCE).validate()
    with pytest.raises(InvalidInputError, match="128 finite"):
        FaceSelection(SelectMode.REFERENCE, (Target("m", (np.zeros(5),)),)).validate()
    with pytest.raises(InvalidInputError, match="once"):
        FaceSelection(
            SelectMode.REFERENCE, (Target("m", (_person(1),)), Target("m", (_person(2),)))
        ).validate()
    with pytest.raises(InvalidInputError, match="not all"):
        FaceSelection(SelectMode.ALL, (Target("m", (_person(1),)),)).validate()


def test_shot_cuts_are_found_and_motion_is_not() -> None:
    from swapline.media import open_media
    from tests.conftest import DATA

    def grey(name: str, index: int) -> np.ndarray:
        with open_media(DATA / name) as reader:
            return next(f.grey for f in reader.frames() if f.index == index)

    scene, other = grey("d10.mp4", 100), grey("d12.mp4", 100)
    shots = ShotCuts()
    assert not shots.update(scene)
    assert not shots.update(np.roll(scene, 12, axis=1))  # a pan
    assert not shots.update(cv2.add(np.roll(scene, 12, axis=1), 10))  # a little light
    assert shots.update(cv2.resize(other, scene.shape[::-1])) and shots.shot == 1
    assert not shots.update(cv2.resize(other, scene.shape[::-1]))

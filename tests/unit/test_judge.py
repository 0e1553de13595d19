"""Judging windows: a followed face is swapped only once its track is
found again, windows wait until that is known, and come out in order."""

from __future__ import annotations

import numpy as np

from swapline.pipeline.judge import TrackJudge
from swapline.pipeline.steps import Cut, FrameSlot, Judged
from swapline.stages.align import AlignedCrop, AlignedFace
from swapline.stages.follow import FOLLOWED_SCORE

DETECTED, FOLLOWED = 0.5, FOLLOWED_SCORE


def face(frame: int, track: int, score: float) -> AlignedFace:
    points = np.zeros((68, 2))
    crop = AlignedCrop(None, None, np.eye(2, 3), np.eye(2, 3), points)
    return AlignedFace(frame, 0, track, points, points, crop, (0, 0, 1, 1), score, None)


def window(frames: range, faces: list[AlignedFace]) -> tuple[Judged, list[AlignedFace]]:
    cuts = [Cut(f, np.zeros((2, 2, 3), np.uint8), (0, 0), (2, 2), None) for f in faces]
    return ([FrameSlot(i) for i in frames], cuts), faces


def kept(judged: list[Judged]) -> list[list[tuple[int, int]]]:
    """Per window released: (frame, track) of every face kept."""
    return [[(c.face.frame_index, c.face.track_id) for c in cuts] for _, cuts in judged]


def test_a_followed_face_waits_until_its_track_is_found_again() -> None:
    judge = TrackJudge(min_track_frames=1)
    first = window(range(4), [face(0, 0, DETECTED), face(1, 0, DETECTED),
                              face(2, 0, FOLLOWED), face(3, 0, FOLLOWED)])  # fmt: skip
    assert judge.add(*first) == []  # frames 2, 3: bridged or not?
    second = window(range(4, 8), [face(4, 0, FOLLOWED)] + [face(i, 0, DETECTED) for i in (5, 6, 7)])
    assert kept(judge.add(*second)) == [
        [(0, 0), (1, 0), (2, 0), (3, 0)],
        [(4, 0), (5, 0), (6, 0), (7, 0)],
    ]


def test_a_face_that_left_is_not_painted_where_it_was() -> None:
    judge = TrackJudge(min_track_frames=1)
    first = window(range(4), [face(0, 1, DETECTED), face(1, 1, DETECTED), face(2, 1, FOLLOWED)])
    assert judge.add(*first) == []
    second = window(range(4, 8), [face(i, 2, DETECTED) for i in range(4, 8)])  # someone else
    assert kept(judge.add(*second)) == [[(0, 1), (1, 1)], [(4, 2), (5, 2), (6, 2), (7, 2)]]


def test_the_end_judges_on_what_was_seen() -> None:
    judge = TrackJudge(min_track_frames=3)
    first = window(range(3), [face(0, 0, DETECTED), face(1, 0, DETECTED), face(2, 0, FOLLOWED)])
    assert judge.add(*first) == []
    assert kept(judge.end()) == [[(0, 0), (1, 0)]]  # never found again: not bridged
    assert judge.end() == []


def test_short_tracks_still_wait_for_the_next_window_only() -> None:
    judge = TrackJudge(min_track_frames=3)
    first = window(range(4), [face(3, 0, DETECTED)])  # a track begun at the window's end
    assert judge.add(*first) == []
    second = window(range(4, 8), [face(4, 0, DETECTED), face(5, 0, DETECTED)])
    assert kept(judge.add(*second)) == [[(3, 0)], [(4, 0), (5, 0)]]
    lone = window(range(8, 12), [face(11, 5, DETECTED)])
    assert judge.add(*lone) == []
    assert kept(judge.end()) == [[]]  # seen once: a false detection

"""No fake-to-real switching: on every bundled clip, each frame inside a
swapped track's span is swapped, including the frames where the detector
loses the face behind a microphone and in a quick turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from swapline.media import Frame, open_media
from swapline.pipeline import EmbeddedStages, FrameSwapper, Progress, SwapOptions
from tests.conftest import REPO

CLIPS = [
    "d10.mp4",
    "d12.mp4",
    "vfr_talking_1.mp4",
    "carphone_pristine.mp4",
    "s18.mp4",
    "short_hamilton_clip.mp4",
    "bigbuckbunny.mp4",
]


@pytest.fixture(scope="module")
def stages() -> Iterator[EmbeddedStages]:
    embedded = EmbeddedStages(REPO / "models" / "repository")
    yield embedded
    embedded.close()


def swapped_frames(clip: Path, stages: EmbeddedStages) -> dict[int, set[int]]:
    """The frames each track is swapped in, as the pipeline judges them."""
    swapper = FrameSwapper(stages, SwapOptions(model="d6_to_d10"))
    by_track: dict[int, set[int]] = {}
    judged = []
    with open_media(clip) as reader:
        window: list[Frame] = []
        for frame in reader.frames():
            window.append(frame)
            if len(window) == 16:
                judged += swapper.analyse(window, Progress())
                window = []
        if window:
            judged += swapper.analyse(window, Progress())
    for _, cuts in [*judged, *swapper.end()]:
        for cut in cuts:
            by_track.setdefault(cut.face.track_id, set()).add(cut.face.frame_index)
    return by_track


@pytest.mark.parametrize("clip", CLIPS)
def test_every_frame_of_a_tracks_span_is_swapped(
    clip: str, data: Path, stages: EmbeddedStages
) -> None:
    tracks = swapped_frames(data / clip, stages)
    gaps = {
        track: sorted(set(range(min(frames), max(frames) + 1)) - frames)
        for track, frames in tracks.items()
    }
    assert not any(gaps.values()), gaps
    if clip == "bigbuckbunny.mp4":
        assert tracks == {}


def test_a_face_lost_behind_a_microphone_stays_swapped(data: Path, stages: EmbeddedStages) -> None:
    """The detector loses the singer in frames 113-119 (the microphone over
    his mouth, a quick turn): one track covers the whole shot, from the cut
    at 82 (a new shot is searched whole at once) to the cut to the audience
    at 211."""
    tracks = swapped_frames(data / "short_hamilton_clip.mp4", stages)
    singer = [frames for frames in tracks.values() if 150 in frames]
    assert len(singer) == 1
    assert singer[0] == set(range(82, 211))

"""Which faces of a window are swapped, and when a window can go on.

Two kinds of face wait for what later frames show:

* a face of a track seen in fewer than ``min_track_frames`` frames is taken
  for a false detection (a cartoon, a pattern) and left alone, so a window
  whose track is still that short at its end waits for the next window;
* a face the follower carried through frames where the detector missed it
  (:mod:`swapline.stages.follow`) is swapped only once the detector finds
  its track again: the gap is bridged, and a face that left is never
  painted where it was. A window with such a face waits until that is known
  (at most the follower's reach later).

Windows come out in order; at the end of a stream, what waits is judged on
what was seen.
"""

from __future__ import annotations

from collections import deque

from swapline.pipeline.steps import Cut, Judged
from swapline.stages.align import AlignedFace
from swapline.stages.follow import is_followed
from swapline.stages.track import DEFAULT_MAX_GAP


class TrackJudge:
    def __init__(self, min_track_frames: int) -> None:
        self.min_track_frames = min_track_frames
        self._frames: dict[int, int] = {}  # faces per track
        self._last_detected: dict[int, int] = {}  # frame index, by the detector
        self._last_seen: dict[int, int] = {}  # frame index, detected or followed
        self._analysed_to = -1
        self._waiting: deque[Judged] = deque()

    def add(self, judged: Judged, aligned: list[AlignedFace]) -> list[Judged]:
        """Counts a window's faces into their tracks (windows in order) and
        returns the windows that can now be judged, with the faces kept."""
        for face in aligned:
            track, index = face.track_id, face.frame_index
            self._frames[track] = self._frames.get(track, 0) + 1
            self._last_seen[track] = max(index, self._last_seen.get(track, -1))
            if not is_followed(face.score):
                self._last_detected[track] = max(index, self._last_detected.get(track, -1))
        frames, _ = judged
        if frames:
            self._analysed_to = max(self._analysed_to, frames[-1].index)
        self._waiting.append(judged)
        out: list[Judged] = []
        while self._waiting:
            window = self._waiting[0]
            newest = len(self._waiting) == 1
            if not self._settled(window, short_tracks_wait=newest):
                break
            out.append(self._kept(self._waiting.popleft()))
        return out

    def end(self) -> list[Judged]:
        """Every window still waiting, judged on what was seen."""
        out = [self._kept(window) for window in self._waiting]
        self._waiting.clear()
        return out

    def _settled(self, judged: Judged, short_tracks_wait: bool) -> bool:
        _, cuts = judged
        if short_tracks_wait and any(
            self._frames[c.face.track_id] < self.min_track_frames for c in cuts
        ):
            return False  # a track at the window's end may still grow
        return all(self._followed_known(c) for c in cuts if is_followed(c.face.score))

    def _followed_known(self, cut: Cut) -> bool:
        track = cut.face.track_id
        if self._last_detected.get(track, -1) > cut.face.frame_index:
            return True  # found again: the gap is bridged
        return self._analysed_to - self._last_seen.get(track, -1) > DEFAULT_MAX_GAP  # it ended

    def _kept(self, judged: Judged) -> Judged:
        frames, cuts = judged
        return frames, [c for c in cuts if self._keeps(c)]

    def _keeps(self, cut: Cut) -> bool:
        track = cut.face.track_id
        if self._frames.get(track, 0) < self.min_track_frames:
            return False
        if is_followed(cut.face.score):
            return self._last_detected.get(track, -1) > cut.face.frame_index
        return True

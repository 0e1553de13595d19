"""Face tracks over consecutive frames and temporal smoothing of landmarks.

Faces are linked frame to frame by box overlap (IoU), falling back to the
distance between landmark centroids relative to face size. Each track's
landmarks go through a One Euro filter (Casiez et al., CHI 2012): a low-pass
filter whose cut-off rises with speed, so a still face stops jittering while
a moving face is followed without visible lag. Positions are filtered in
units of the face's size, which makes the settings independent of resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from swapline.errors import InvalidInputError

DEFAULT_SMOOTHING = 0.5
# Frames a face may be missing before its track ends.
DEFAULT_MAX_GAP = 2


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    """One Euro filter over arrays, time in frames."""

    min_cutoff: float
    beta: float
    derivative_cutoff: float = 0.25
    _value: np.ndarray | None = None
    _speed: np.ndarray | None = None
    _time: float = 0.0

    def __call__(self, value: np.ndarray, time: float) -> np.ndarray:
        if self._value is None or self._speed is None:
            self._value = value.copy()
            self._speed = np.zeros_like(value)
            self._time = time
            return value.copy()
        dt = max(time - self._time, 1e-3)
        self._time = time
        speed = (value - self._value) / dt
        a_d = _alpha(self.derivative_cutoff, dt)
        self._speed = a_d * speed + (1 - a_d) * self._speed
        # One cut-off per point, from that point's speed.
        magnitude = np.linalg.norm(self._speed, axis=-1, keepdims=True)
        cutoff = self.min_cutoff + self.beta * magnitude
        tau = 1.0 / (2.0 * math.pi * cutoff)
        a = 1.0 / (1.0 + tau / dt)
        self._value = a * value + (1 - a) * self._value
        return self._value.copy()


def smoothing_parameters(smoothing: float) -> tuple[float, float]:
    """(min_cutoff in cycles/frame, beta) for a 0..1 smoothing strength."""
    strength = min(max(smoothing, 0.0), 1.0)
    min_cutoff = 0.3 * (0.01 / 0.3) ** strength  # 0.3 (light) .. 0.01 (strong)
    beta = 1.0
    return min_cutoff, beta


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def face_scale(landmarks: np.ndarray) -> float:
    """Size of a face in pixels: the diagonal of its landmark box."""
    span = landmarks.max(0) - landmarks.min(0)
    return float(np.hypot(*span)) or 1.0


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    centroid: np.ndarray
    scale: float
    last_time: float
    filter: OneEuroFilter | None
    origin: np.ndarray = field(default_factory=lambda: np.zeros(2))


@dataclass(frozen=True)
class TrackedFace:
    track_id: int
    landmarks: np.ndarray  # smoothed (or raw when smoothing is off)


class FaceTracker:
    """Links faces across consecutive frames and smooths their landmarks.

    Call :meth:`update` once per frame, in order, with every face of that
    frame. A face unseen for more than ``max_gap`` frames ends its track; a
    jump in time (a seek or scene cut without overlap) starts new tracks.
    """

    def __init__(
        self,
        smoothing: float = DEFAULT_SMOOTHING,
        iou_threshold: float = 0.3,
        max_gap: int = DEFAULT_MAX_GAP,
    ) -> None:
        if not 0.0 <= smoothing <= 1.0:
            raise InvalidInputError(f"smoothing must be in 0..1, got {smoothing}")
        self.smoothing = smoothing
        self.iou_threshold = iou_threshold
        self.max_gap = max_gap
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._last_time: float | None = None

    def update(self, time: float, faces: list[tuple[np.ndarray, np.ndarray]]) -> list[TrackedFace]:
        """``faces``: (box [l, t, r, b], landmarks 68x2) per face, frame pixels.
        ``time`` counts frames (the frame index). Returns one result per face,
        in input order."""
        if self._last_time is not None and time <= self._last_time:
            self.reset()  # out of order: a new sequence
        self._last_time = time
        self._tracks = [t for t in self._tracks if time - t.last_time <= self.max_gap]
        assignment = self._associate(faces)
        results = []
        for i, (box, landmarks) in enumerate(faces):
            track = assignment.get(i)
            if track is None:
                track = self._new_track()
                self._tracks.append(track)
            scale = face_scale(landmarks)
            track.box = np.asarray(box, np.float64)
            track.centroid = landmarks.mean(0)
            track.scale = scale
            track.last_time = time
            smoothed = landmarks
            if track.filter is not None:
                # Filter in face-size units around a fixed per-track origin.
                if not track.origin.any():
                    track.origin = landmarks.mean(0)
                normalised = (landmarks - track.origin) / scale
                smoothed = track.filter(normalised, time) * scale + track.origin
            results.append(TrackedFace(track.track_id, smoothed))
        return results

    def reset(self) -> None:
        self._tracks = []
        self._last_time = None

    def _new_track(self) -> _Track:
        track_filter = None
        if self.smoothing > 0:
            min_cutoff, beta = smoothing_parameters(self.smoothing)
            track_filter = OneEuroFilter(min_cutoff=min_cutoff, beta=beta)
        track = _Track(self._next_id, np.zeros(4), np.zeros(2), 1.0, 0.0, track_filter)
        self._next_id += 1
        return track

    def _associate(self, faces: list[tuple[np.ndarray, np.ndarray]]) -> dict[int, _Track]:
        """Greedy matching, best overlap first."""
        candidates: list[tuple[float, int, int]] = []
        for i, (box, landmarks) in enumerate(faces):
            box = np.asarray(box, np.float64)
            centroid = landmarks.mean(0)
            for j, track in enumerate(self._tracks):
                iou = box_iou(box, track.box)
                distance = float(np.linalg.norm(centroid - track.centroid)) / track.scale
                if iou >= self.iou_threshold or distance < 0.15:
                    candidates.append((iou - distance, i, j))
        candidates.sort(reverse=True)
        taken_faces: set[int] = set()
        taken_tracks: set[int] = set()
        assignment: dict[int, _Track] = {}
        for _, i, j in candidates:
            if i in taken_faces or j in taken_tracks:
                continue
            taken_faces.add(i)
            taken_tracks.add(j)
            assignment[i] = self._tracks[j]
        return assignment

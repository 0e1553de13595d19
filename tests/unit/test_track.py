from __future__ import annotations

import numpy as np

from swapline.stages.align import TEMPLATE_68
from swapline.stages.track import FaceTracker


def face_at(x: float, y: float, size: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    landmarks = TEMPLATE_68 * size + np.array([x, y])
    box = np.array([x, y, x + size, y + size])
    return box, landmarks


def test_smoothing_removes_noise_from_a_still_face() -> None:
    rng = np.random.default_rng(0)
    box, truth = face_at(200, 100)
    raw_tracker, smooth_tracker = FaceTracker(smoothing=0.0), FaceTracker(smoothing=0.5)
    raw_err, smooth_err = [], []
    for t in range(120):
        noisy = truth + rng.normal(0, 1.5, truth.shape)
        raw = raw_tracker.update(t, [(box, noisy)])[0].landmarks
        smooth = smooth_tracker.update(t, [(box, noisy)])[0].landmarks
        if t > 20:
            raw_err.append(np.abs(raw - truth).mean())
            smooth_err.append(np.abs(smooth - truth).mean())
    assert np.mean(smooth_err) < 0.5 * np.mean(raw_err)


def test_smoothing_follows_a_moving_face() -> None:
    tracker = FaceTracker(smoothing=0.5)
    for t in range(60):
        box, landmarks = face_at(100 + 4 * t, 100)  # 4 px per frame
        out = tracker.update(t, [(box, landmarks)])[0]
    lag = np.abs(out.landmarks - landmarks).mean()
    assert lag < 4.0  # less than a frame's worth of motion behind


def test_two_faces_keep_their_tracks() -> None:
    tracker = FaceTracker(smoothing=0.0)
    ids = []
    for t in range(10):
        left, right = face_at(50 + t, 100), face_at(400 - t, 100)
        # Order of detections changes between frames; tracks must not.
        faces = [left, right] if t % 2 else [right, left]
        result = tracker.update(t, faces)
        by_x = sorted(zip([f[0][0] for f in faces], result, strict=True), key=lambda p: p[0])
        ids.append(tuple(r.track_id for _, r in by_x))
    assert len(set(ids)) == 1 and len(set(ids[0])) == 2


def test_a_gap_starts_a_new_track() -> None:
    tracker = FaceTracker(smoothing=0.5, max_gap=2)
    first = tracker.update(0, [face_at(100, 100)])[0].track_id
    later = tracker.update(10, [face_at(100, 100)])[0].track_id
    assert first != later

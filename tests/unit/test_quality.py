from __future__ import annotations

import math

import numpy as np

from swapline.evaluation.quality import MaskedPsnr, identity_nearness, jitter, landmark_error


def test_steady_motion_has_no_jitter_and_shaking_has() -> None:
    t = np.arange(20, dtype=np.float64)
    steady = np.stack([np.stack([t * 2.0, t * 0.5], -1)] * 3, axis=1)  # (T, 3 points, 2)
    assert np.allclose(jitter(steady), 0.0)
    shaking = steady.copy()
    shaking[::2] += 1.0
    # +1 on every other frame in x and y: second differences of (+-2, +-2).
    assert np.allclose(jitter(shaking), 2 * math.sqrt(2))
    assert np.allclose(jitter(shaking, scales=np.full(20, 4.0)), math.sqrt(2) / 2)
    assert len(jitter(steady[:2])) == 0


def test_landmark_error_is_in_inter_ocular_units() -> None:
    rng = np.random.default_rng(0)
    face = rng.uniform(0, 100, (68, 2))
    face[36:42] = [10.0, 50.0]
    face[42:48] = [50.0, 50.0]  # eyes 40 px apart
    assert landmark_error(face, face) == 0.0
    moved = face + np.array([4.0, 0.0])
    assert math.isclose(landmark_error(moved, face), 0.1)


def test_masked_psnr() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    keep = np.ones((4, 4), bool)
    psnr = MaskedPsnr()
    psnr.add(a, a.copy(), keep)
    assert math.isinf(psnr.value)
    b = a.copy()
    b[0, 0] = 255  # only where the mask excludes
    keep[0, 0] = False
    psnr.add(a, b, keep)
    assert math.isinf(psnr.value)
    keep[0, 0] = True
    psnr.add(a, b, keep)
    assert 0 < psnr.value < 100


def test_identity_nearness() -> None:
    source, target = np.zeros(128), np.ones(128)
    nearer, cosine = identity_nearness(
        np.array([np.full(128, 0.1), np.full(128, 0.9)]), source + 1e-3, target
    )
    assert nearer.tolist() == [True, False]
    assert cosine.shape == (2,)

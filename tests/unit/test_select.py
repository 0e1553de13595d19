from __future__ import annotations

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

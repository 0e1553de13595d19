"""The README's comparison sheet, on a real clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swapline.devtools.sheet import FACE_SIDE, FRAME_WIDTH, sheet


def test_the_sheet_shows_input_and_output_side_by_side_with_faces_at_2x(data: Path) -> None:
    clip = str(data / "d10.mp4")
    image = sheet(clip, clip, 0, 40, rows=2)  # a clip against itself: both halves agree
    cell = 2 * FACE_SIDE
    assert image.shape == (2 * (cell + 4), 2 * (FRAME_WIDTH + 4) + 2 * (cell + 4), 3)
    row = image[:cell]
    faces = row[:, 2 * (FRAME_WIDTH + 4) :]
    left, right = faces[:, :cell], faces[:, cell + 4 : 2 * cell + 4]
    assert np.array_equal(left, right)
    # Pixels doubled, not smoothed: every 2x2 block is one pixel of the frame.
    assert np.array_equal(left[0::2, 0::2], left[1::2, 1::2])
    assert left.std() > 10  # a face, not a blank cell

"""The README's comparison sheet: for a few frames of a clip, the input and
the swapped output whole, then the face of each at twice its size, so a
reader judges the swap by eye.

Usage: python -m swapline.devtools.sheet INPUT SWAPPED START END OUT.jpg [ROWS]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from swapline.media import open_media
from swapline.stages.detect import FaceDetector

FRAME_WIDTH = 240
FACE_SIDE = 232  # frame pixels around the face's centre (eyes to mouth), shown at 2x


def _frames(path: str, wanted: set[int]) -> dict[int, np.ndarray]:
    found: dict[int, np.ndarray] = {}
    with open_media(path) as reader:
        for frame in reader.frames():
            if frame.index in wanted:
                found[frame.index] = frame.image
            if len(found) == len(wanted):
                break
    return found


def _face_square(image: np.ndarray, detector: FaceDetector) -> tuple[int, int, int, int]:
    boxes = detector.detect(image)
    height, width = image.shape[:2]
    if boxes:
        box = max(boxes, key=lambda d: d.width * (d.bottom - d.top))
        left, top, right, bottom = box.left, box.top, box.right, box.bottom
        cx, cy = (left + right) / 2, (top + bottom) / 2 + 0.06 * (bottom - top)  # to the mouth
    else:
        cx, cy = width / 2, height / 2
    side = min(FACE_SIDE, width, height)
    x0 = int(np.clip(cx - side / 2, 0, width - side))
    y0 = int(np.clip(cy - side / 2, 0, height - side))
    return x0, y0, x0 + int(side), y0 + int(side)


def sheet(original: str, swapped: str, start: int, end: int, rows: int = 6) -> np.ndarray:
    indices = sorted(set(np.linspace(start, end - 1, rows).round().astype(int).tolist()))
    before, after = _frames(original, set(indices)), _frames(swapped, set(indices))
    detector = FaceDetector()
    lines = []
    for index in indices:
        a, b = before[index], after[index]
        x0, y0, x1, y1 = _face_square(a, detector)
        # The frame's own pixels around the face, each doubled: what the eye
        # sees at 2x, no smoothing added.
        faces = [
            cv2.resize(i[y0:y1, x0:x1], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
            for i in (a, b)
        ]
        scale = FRAME_WIDTH / a.shape[1]
        whole = [
            cv2.resize(i, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for i in (a, b)
        ]
        height = max(max(f.shape[0] for f in faces), whole[0].shape[0])
        cells = [
            cv2.copyMakeBorder(
                c, 0, height - c.shape[0], 0, 4, cv2.BORDER_CONSTANT, value=(255,) * 3
            )
            for c in (*whole, *faces)
        ]
        line = np.hstack(cells)
        cv2.putText(line, str(index), (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        lines.append(cv2.copyMakeBorder(line, 0, 4, 0, 0, cv2.BORDER_CONSTANT, value=(255,) * 3))
    return np.vstack(lines)


def main(argv: list[str]) -> int:
    if len(argv) not in (5, 6):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    original, swapped, start, end, out = argv[:5]
    rows = int(argv[5]) if len(argv) == 6 else 6
    image = sheet(original, swapped, int(start), int(end), rows)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(out, image, [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {out}: {image.shape[1]}x{image.shape[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

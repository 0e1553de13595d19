"""Which faces of a swapped clip changed, and whose they are: every face
the detector finds in each input frame, named by the nearest reference
(dlib embedding within 0.6) and measured for change against the output
frame (mean absolute difference over the middle of its box)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from swapline.stages.align import face_embedding, find_landmarks
from swapline.stages.detect import FaceDetector

# A face re-encoded untouched changes by about 1-3.5 levels; a swapped one
# by 15 or more (measured on the bundled clips with the demo model).
CHANGED = 8.0


@dataclass(frozen=True)
class FaceChange:
    frame: int
    who: str  # a reference's name, or "other"
    box: tuple[float, float, float, float]
    change: float

    @property
    def swapped(self) -> bool:
        return self.change > CHANGED


def middle_difference(
    a: np.ndarray, b: np.ndarray, box: tuple[float, float, float, float]
) -> float:
    """Mean absolute difference of two pictures over the middle half of a
    face box (what a swap changes, away from the blend border)."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    x0, y0 = max(0, int(left + w / 4)), max(0, int(top + h / 4))
    x1, y1 = int(right - w / 4), int(bottom - h / 4)
    return float(np.abs(a[y0:y1, x0:x1].astype(np.int16) - b[y0:y1, x0:x1]).mean())


def reference_faces(references: dict[str, Path]) -> dict[str, np.ndarray]:
    detector = FaceDetector()
    found = {}
    for name, path in references.items():
        image = cv2.imread(str(path))
        d = max(detector.detect(image), key=lambda b: b.right - b.left)
        box = (d.left, d.top, d.right, d.bottom)
        found[name] = face_embedding(image, find_landmarks(image, box))
    return found


def face_changes(
    source: Path, output: Path, references: dict[str, Path], frames: range | None = None
) -> list[FaceChange]:
    detector = FaceDetector()
    known = reference_faces(references)
    changes = []
    with av.open(str(source)) as a, av.open(str(output)) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=True)
        for index, (before, after) in enumerate(pairs):
            if frames is not None and index not in frames:
                continue
            x = before.to_ndarray(format="bgr24")
            y = after.to_ndarray(format="bgr24")
            for d in detector.detect(x):
                box = (d.left, d.top, d.right, d.bottom)
                embedding = face_embedding(x, find_landmarks(x, box))
                distances = {k: float(np.linalg.norm(embedding - r)) for k, r in known.items()}
                nearest = min(distances, key=lambda k: distances[k]) if distances else ""
                who = nearest if nearest and distances[nearest] < 0.6 else "other"
                changes.append(FaceChange(index, who, box, middle_difference(x, y, box)))
    return changes

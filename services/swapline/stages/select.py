"""Which faces of a frame to keep: the largest, all, or the one nearest a
reference identity (dlib 128-D face embedding)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from swapline.errors import InvalidInputError

# dlib's documented threshold: embeddings of one person are nearer than 0.6.
SAME_PERSON_DISTANCE = 0.6


class SelectMode(StrEnum):
    LARGEST = "largest"
    ALL = "all"
    REFERENCE = "ref"


@dataclass(frozen=True)
class Selection:
    mode: SelectMode
    reference: np.ndarray | None = None  # 128-D embedding for REFERENCE
    max_distance: float = SAME_PERSON_DISTANCE

    def __post_init__(self) -> None:
        if self.mode is SelectMode.REFERENCE and self.reference is None:
            raise InvalidInputError("reference selection needs a reference embedding")

    @property
    def needs_embeddings(self) -> bool:
        return self.mode is SelectMode.REFERENCE


def embedding_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def select_faces(
    selection: Selection,
    areas: Sequence[float],
    embeddings: Sequence[np.ndarray] | None = None,
) -> list[int]:
    """Indices of the faces to keep, given each face's box area and (for
    reference selection) its embedding."""
    if not areas:
        return []
    if selection.mode is SelectMode.ALL:
        return list(range(len(areas)))
    if selection.mode is SelectMode.LARGEST:
        return [int(np.argmax(areas))]
    if embeddings is None or selection.reference is None:
        raise InvalidInputError("reference selection needs face embeddings")
    distances = [embedding_distance(e, selection.reference) for e in embeddings]
    best = int(np.argmin(distances))
    return [best] if distances[best] <= selection.max_distance else []

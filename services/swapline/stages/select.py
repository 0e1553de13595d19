"""Which faces of a frame to keep: the largest, all, or the one nearest a
reference identity (dlib 128-D face embedding)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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


# --- Choosing faces at swap time -------------------------------------------


class FaceOrder(StrEnum):
    """The order faces of a frame are taken in when only some are kept."""

    LARGE_SMALL = "large-small"
    SMALL_LARGE = "small-large"
    LEFT_RIGHT = "left-right"
    RIGHT_LEFT = "right-left"
    TOP_BOTTOM = "top-bottom"
    BOTTOM_TOP = "bottom-top"


@dataclass(frozen=True)
class Target:
    """A model and whose faces it replaces: the embeddings of one or more
    reference faces of one person, and encoded reference images not yet
    embedded (named ``(name, bytes)``; the pipeline embeds them with its
    stages before any work)."""

    model: str
    references: tuple[np.ndarray, ...] = ()
    images: tuple[tuple[str, bytes], ...] = ()

    def distance(self, embedding: np.ndarray) -> float:
        """How far ``embedding`` is from this target's person: the nearest
        reference."""
        return min(embedding_distance(embedding, r) for r in self.references)


@dataclass(frozen=True)
class FaceSelection:
    """Which faces of a video are swapped, and with which model.

    ``all`` and ``largest`` swap with the job's model; filters
    (``min_size``, then ``order`` and ``max_faces``) apply to each frame's
    detections. ``reference`` swaps a face only when its track's embeddings
    are within ``max_distance`` of a target's references, with that
    target's model; faces that match no target are left untouched.
    """

    mode: SelectMode = SelectMode.ALL
    targets: tuple[Target, ...] = ()
    max_faces: int = 0  # 0 = no limit
    min_size: float = 0.0  # shorter side of the face box, pixels
    order: FaceOrder = FaceOrder.LARGE_SMALL
    max_distance: float = SAME_PERSON_DISTANCE

    def validate(self) -> None:
        if self.mode is SelectMode.REFERENCE:
            if not self.targets:
                raise InvalidInputError("reference selection needs at least one reference face")
            for target in self.targets:
                if not target.references and not target.images:
                    raise InvalidInputError(f"model {target.model!r} has no reference face")
                for reference in target.references:
                    if np.shape(reference) != (128,) or not np.all(np.isfinite(reference)):
                        raise InvalidInputError("a reference embedding must be 128 finite values")
            models = [t.model for t in self.targets]
            if len(set(models)) != len(models):
                raise InvalidInputError(
                    "each model may be mapped once (give it several references)"
                )
        elif self.targets:
            raise InvalidInputError(f"references are for reference selection, not {self.mode}")
        if self.max_faces < 0 or self.min_size < 0:
            raise InvalidInputError("max_faces and min_size must not be negative")
        if not 0.0 < self.max_distance <= 2.0:
            raise InvalidInputError(f"max_distance must be in (0, 2], got {self.max_distance}")

    @property
    def keeps_per_frame(self) -> int:
        """Faces kept per frame by the filters (0 = every one)."""
        return 1 if self.mode is SelectMode.LARGEST else self.max_faces


def choose_faces(
    selection: FaceSelection,
    boxes: Sequence[tuple[float, float, float, float]],
    track_areas: Sequence[float],
) -> list[int]:
    """Indices of one frame's faces that the filters keep, in the
    selection's order: faces at least ``min_size`` on their shorter side,
    then the first ``max_faces`` (one with ``largest``). Sizes are ranked
    by each face's track's mean area (``track_areas``), so two faces of
    about one size do not take turns from frame to frame."""
    kept = [i for i, b in enumerate(boxes) if min(b[2] - b[0], b[3] - b[1]) >= selection.min_size]
    order = FaceOrder.LARGE_SMALL if selection.mode is SelectMode.LARGEST else selection.order
    keys: dict[FaceOrder, Callable[[int], float]] = {
        FaceOrder.LARGE_SMALL: lambda i: -track_areas[i],
        FaceOrder.SMALL_LARGE: lambda i: track_areas[i],
        FaceOrder.LEFT_RIGHT: lambda i: boxes[i][0] + boxes[i][2],
        FaceOrder.RIGHT_LEFT: lambda i: -(boxes[i][0] + boxes[i][2]),
        FaceOrder.TOP_BOTTOM: lambda i: boxes[i][1] + boxes[i][3],
        FaceOrder.BOTTOM_TOP: lambda i: -(boxes[i][1] + boxes[i][3]),
    }
    kept.sort(key=keys[order])
    limit = selection.keeps_per_frame
    return kept[:limit] if limit else kept


# Embeddings taken per track: the first few faces, then one every
# SAMPLE_EVERY frames, the latest MAX_VOTES kept.
FIRST_VOTES = 3
SAMPLE_EVERY = 10
MAX_VOTES = 15


TrackKey = tuple[int, int]  # (track id, shot): a track never spans a scene cut


class TrackVotes:
    """Which target each face track is, decided by the track's faces
    together: each sampled face's distance to each target, and a track goes
    to the target with the smallest median distance if that is within the
    threshold. One face seen badly (turned away, blurred) neither swaps nor
    spares the whole track, and a face does not flicker in and out.

    Tracks are keyed by shot too: a tracker may link one person's face to
    another's across a scene cut, and each shot's faces vote afresh.
    """

    def __init__(self, selection: FaceSelection) -> None:
        self.selection = selection
        self._distances: dict[TrackKey, list[np.ndarray]] = {}  # per sample
        self._last_sampled: dict[TrackKey, int] = {}
        self._samples_taken: dict[TrackKey, int] = {}

    def take_sample(self, key: TrackKey, frame_index: int) -> bool:
        """Whether this face of the track should be embedded and vote (the
        first few faces, then one every SAMPLE_EVERY frames); counts it."""
        taken = self._samples_taken.get(key, 0)
        last = self._last_sampled.get(key)
        if taken >= FIRST_VOTES and last is not None and frame_index - last < SAMPLE_EVERY:
            return False
        self._samples_taken[key] = taken + 1
        self._last_sampled[key] = frame_index
        return True

    def add(self, key: TrackKey, embedding: np.ndarray) -> None:
        distances = np.array([t.distance(embedding) for t in self.selection.targets])
        votes = self._distances.setdefault(key, [])
        votes.append(distances)
        del votes[:-MAX_VOTES]

    def target(self, key: TrackKey) -> Target | None:
        """The track's target, or None (left untouched)."""
        votes = self._distances.get(key)
        if not votes:
            return None
        medians = np.median(np.stack(votes), axis=0)
        best = int(np.argmin(medians))
        if medians[best] > self.selection.max_distance:
            return None
        return self.selection.targets[best]

    def forget_before(self, frame_index: int) -> None:
        """Drops the votes of tracks not sampled since ``frame_index``
        (ended long ago): memory stays bounded however long the video."""
        for key, last in list(self._last_sampled.items()):
            if last < frame_index:
                del self._last_sampled[key]
                self._samples_taken.pop(key, None)
                self._distances.pop(key, None)


def consent_refusal(target: Target, identities: Any, max_distance: float) -> str | None:
    """Why ``target``'s references may not be used with its model: face
    recognition picks only people the model's consent record names with a
    face (``swapline consent``). None when every reference is one of
    them."""
    recorded = [
        np.asarray(i["embedding"], np.float32)
        for i in (identities if isinstance(identities, list) else [])
        if isinstance(i, dict) and i.get("embedding")
    ]
    if not recorded:
        return (
            f"model {target.model!r} records no consented face to match references against; "
            "record the person's consent first: swapline consent"
        )
    for number, reference in enumerate(target.references, 1):
        nearest = min(embedding_distance(reference, face) for face in recorded)
        if nearest > max_distance:
            return (
                f"reference face {number} for model {target.model!r} is nobody in the model's "
                f"consent record (distance {nearest:.2f} > {max_distance:.2f}); "
                "record the person's consent first: swapline consent"
            )
    return None

"""The swap model's contract with whoever serves it: tensor names, shapes,
dtypes and the metadata file beside each repository entry.

Serving owns this contract (the engines in :mod:`swapline.stages.swap`, the
Triton configurations); the exporter writes models that keep it.
"""

from __future__ import annotations

from typing import Any

from swapline.errors import InvalidInputError

INPUT = "faces"  # uint8 [N, R, R, 3], BGR
OUTPUTS = ("swapped", "mask")  # uint8 [N, R, R, 3] BGR and [N, R, R, 1]
# A model with an occlusion segmenter (``swapline train-occlusion``) has two
# more [N, R, R, 1] outputs, and its ``mask`` is their product: the learned
# face region and the visible face (what nothing covers).
REGION = "region"
VISIBLE = "visible"
MASK_OUTPUTS = (OUTPUTS[1], REGION, VISIBLE)
METADATA = "swapline.json"  # per entry: resolution, face type, identities and consent
PREFERRED_BATCHES = (64, 128, 256)  # Triton's dynamic batcher aims for these


def face_shape(resolution: int) -> tuple[int, int, int]:
    """One face in or one swapped face out."""
    return (resolution, resolution, 3)


def mask_shape(resolution: int) -> tuple[int, int, int]:
    """One mask out."""
    return (resolution, resolution, 1)


def preferred_batches(max_batch: int) -> list[int]:
    """The preferred batch sizes a model with ``max_batch`` can take."""
    return [b for b in PREFERRED_BATCHES if b <= max_batch] or [max_batch]


def output_names(has_occlusion: bool) -> list[str]:
    """Every output of a model, with or without a segmenter."""
    return [*OUTPUTS, REGION, VISIBLE] if has_occlusion else list(OUTPUTS)


def mask_output(kind: str, has_occlusion: bool) -> str:
    """The output that answers for mask ``kind`` (one of
    :data:`MASK_OUTPUTS`): a model without a segmenter has only its
    learned region, ``mask``."""
    if kind not in MASK_OUTPUTS:
        raise InvalidInputError(f"unknown mask {kind!r}: one of {', '.join(MASK_OUTPUTS)}")
    return kind if has_occlusion else OUTPUTS[1]


def consent_problem(identities: Any) -> str | None:
    """Why a model's record of whose faces it was trained on does not do:
    every model names its source identity (the face it draws) and each
    identity's consent reference. None when it does."""
    if not isinstance(identities, list) or not identities:
        return "it names no identities"
    roles = [str(i.get("role", "")) for i in identities if isinstance(i, dict)]
    if "source" not in roles:
        return "it names no source identity"
    for identity in identities:
        if not isinstance(identity, dict) or not str(identity.get("consent_reference", "")).strip():
            return "an identity has no consent reference"
    return None

"""A model's consent record: who its faces belong to and who may be chosen
by face recognition (reference selection) when it swaps.

``swapline consent`` adds a person's face (their dlib embedding) to a
repository entry's record, with the reference of the consent that covers
it; the pipeline matches reference faces only against faces recorded here
(:func:`swapline.stages.select.consent_refusal`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from swapline.errors import InvalidInputError
from swapline.stages.model_contract import METADATA
from swapline.stages.swap import ModelRepository


def record_consent(
    entry: str | os.PathLike[str],
    name: str,
    embedding: np.ndarray,
    consent_reference: str = "",
    role: str = "target",
) -> dict[str, Any]:
    """Adds ``name``'s face to the consent record of a repository entry
    (updating the identity of that name if there is one) and returns it."""
    path = Path(entry)
    ModelRepository(path.parent).get(path.name)  # a clear error for a wrong path
    metadata_path = path / METADATA
    metadata = json.loads(metadata_path.read_text())
    identities: list[dict[str, Any]] = metadata.setdefault("identities", [])
    identity = next((i for i in identities if i.get("name") == name), None)
    if identity is None:
        if not consent_reference.strip():
            raise InvalidInputError(
                f"{name} is not in the record yet: give --consent-reference (the consent that "
                "covers their face, e.g. a signed release's id)"
            )
        identity = {"role": role, "name": name}
        identities.append(identity)
    if consent_reference.strip():
        identity["consent_reference"] = consent_reference.strip()
    identity["embedding"] = [round(float(v), 5) for v in np.asarray(embedding).reshape(128)]
    staged = metadata_path.with_name(f".{METADATA}.tmp")
    staged.write_text(json.dumps(metadata, indent=2) + "\n")
    os.replace(staged, metadata_path)
    return identity

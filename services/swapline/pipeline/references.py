"""Reference faces to embeddings, with whichever stages run the pipeline:
a selection's reference images become embeddings before any frame is
touched, and each model's references are checked against its consent
record."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from swapline.errors import InvalidInputError, PermissionDeniedError
from swapline.media import decode_image
from swapline.pipeline.contract import Stages
from swapline.pipeline.options import SwapOptions
from swapline.stages.align import AlignOptions, RegionInput, face_chip, region_around
from swapline.stages.detect import DetectInput
from swapline.stages.select import SelectMode, Target, consent_refusal

# A reference image may be a tight cut around a face: small ones are
# searched again enlarged (the detector misses faces under ~80 px).
_SMALL_SIDE = 480
MAX_REFERENCE_IMAGES = 32
MAX_REFERENCE_BYTES = 8 * 1024 * 1024


def reference_embedding(name: str, data: bytes, stages: Stages) -> np.ndarray:
    """The embedding of the largest face in an encoded image."""
    if len(data) > MAX_REFERENCE_BYTES:
        raise InvalidInputError(f"reference {name}: larger than {MAX_REFERENCE_BYTES} bytes")
    image = decode_image(data, f"reference {name}")
    for attempt in range(2):
        picture = image if stages.detects_in_colour else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        (found,) = stages.detect([DetectInput(0, picture)])
        if found or attempt or max(image.shape[:2]) >= _SMALL_SIDE:
            break
        image = cv2.resize(image, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    if not found:
        raise InvalidInputError(f"reference {name}: no face found in the image")
    left, top, right, bottom, score = max(found, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    box = (left, top, right, bottom)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = region_around(box, (width, height))
    session = stages.align_session(AlignOptions(with_crop=False, with_mask=False, smoothing=0.0))
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    (face,) = session.align([RegionInput(0, 0, grey, (float(x0), float(y0)), box, score)])
    chip = face_chip(image[y0:y1, x0:x1], face.raw_landmarks, (x0, y0))
    embedding: np.ndarray = stages.embed(chip[None])[0]
    return embedding


def prepare_swap(options: SwapOptions, stages: Stages) -> SwapOptions:
    """What every way of swapping does before any work: every model looked
    up (NotFoundError), and ``options`` returned with every reference image
    embedded, once each target's references are known to be people its
    model's consent record names (PermissionDeniedError otherwise)."""
    entries = {model: stages.model(model) for model in options.models}
    selection = options.selection
    if selection.mode is not SelectMode.REFERENCE:
        return options
    images = sum(len(t.images) for t in selection.targets)
    if images > MAX_REFERENCE_IMAGES:
        raise InvalidInputError(f"at most {MAX_REFERENCE_IMAGES} reference images, got {images}")
    targets = []
    for target in selection.targets:
        embedded = tuple(reference_embedding(n, d, stages) for n, d in target.images)
        resolved = Target(target.model or options.model, target.references + embedded)
        identities = entries[resolved.model].metadata.get("identities")
        refusal = consent_refusal(resolved, identities, selection.max_distance)
        if refusal is not None:
            raise PermissionDeniedError(refusal)
        targets.append(resolved)
    return replace(options, selection=replace(selection, targets=tuple(targets)))

"""The Orchestrator's messages ⇄ domain types: job specs and swap options,
jobs and their states, training runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from swapline.jobs import JobRecord, JobState, TrainingRun
from swapline.media import decode_image, encode_image, image_format
from swapline.pipeline.options import SwapOptions
from swapline.protocol.options import (
    blend_options,
    blend_options_message,
    encode_options,
    encode_options_message,
)
from swapline.stages.select import FaceOrder, FaceSelection, SelectMode, Target
from swapline.v1 import common_pb2 as pb
from swapline.v1 import orchestrator_pb2 as opb

_MODES = {
    SelectMode.ALL: opb.FaceSelection.MODE_ALL,
    SelectMode.LARGEST: opb.FaceSelection.MODE_LARGEST,
    SelectMode.REFERENCE: opb.FaceSelection.MODE_REFERENCE,
}
_MODE_OF = {message: mode for mode, message in _MODES.items()}
_ORDERS = {
    FaceOrder.LARGE_SMALL: opb.FaceSelection.ORDER_LARGE_SMALL,
    FaceOrder.SMALL_LARGE: opb.FaceSelection.ORDER_SMALL_LARGE,
    FaceOrder.LEFT_RIGHT: opb.FaceSelection.ORDER_LEFT_RIGHT,
    FaceOrder.RIGHT_LEFT: opb.FaceSelection.ORDER_RIGHT_LEFT,
    FaceOrder.TOP_BOTTOM: opb.FaceSelection.ORDER_TOP_BOTTOM,
    FaceOrder.BOTTOM_TOP: opb.FaceSelection.ORDER_BOTTOM_TOP,
}
_ORDER_OF = {message: order for order, message in _ORDERS.items()}
_IMAGE_ENCODINGS = {"png": pb.IMAGE_ENCODING_PNG, "jpeg": pb.IMAGE_ENCODING_JPEG}

_STATES = {
    JobState.QUEUED: opb.JOB_STATE_QUEUED,
    JobState.RUNNING: opb.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: opb.JOB_STATE_SUCCEEDED,
    JobState.FAILED: opb.JOB_STATE_FAILED,
    JobState.CANCELLED: opb.JOB_STATE_CANCELLED,
}
_STATE_OF = {message: state for state, message in _STATES.items()}


def job_state(message: opb.JobState) -> JobState | None:
    """The state a message value names; None for UNSPECIFIED (any state)."""
    return _STATE_OF.get(message)


def job_spec_message(options: SwapOptions) -> opb.JobSpec:
    """What a client asks an orchestrator to do with its input."""
    return opb.JobSpec(
        model=options.model,
        blend=blend_options_message(options.blend),
        encode=encode_options_message(options.encode),
        detect_every=options.detect_every,
        selection=selection_message(options.selection),
    )


def selection_message(selection: FaceSelection) -> opb.FaceSelection:
    """Which faces to swap, as a client asks (reference images travel
    encoded; the orchestrator embeds them)."""
    targets = []
    for target in selection.targets:
        images = []
        for name, data in target.images:
            encoding = _IMAGE_ENCODINGS.get(image_format(data[:32]) or "")
            if encoding is None:  # anything OpenCV reads travels as PNG
                data, encoding = encode_image(decode_image(data, name)), pb.IMAGE_ENCODING_PNG
            images.append(pb.EncodedImage(encoding=encoding, data=data))
        targets.append(
            opb.FaceTarget(
                model=target.model,
                reference_images=images,
                reference_embeddings=[
                    pb.FaceEmbedding(values=[float(v) for v in r]) for r in target.references
                ],
            )
        )
    return opb.FaceSelection(
        mode=_MODES[selection.mode],
        targets=targets,
        max_faces=selection.max_faces,
        min_face_size=round(selection.min_size),
        order=_ORDERS[selection.order],
        max_distance=selection.max_distance,
    )


def face_selection(message: opb.FaceSelection, max_faces: int = 0) -> FaceSelection:
    """The selection a message asks for (``max_faces``: the older
    max_faces_per_frame field, used when the selection sets none)."""
    targets = tuple(
        Target(
            model=t.model,
            references=tuple(np.array(e.values, np.float32) for e in t.reference_embeddings),
            images=tuple(
                (f"image {i + 1}" + (f" for {t.model}" if t.model else ""), image.data)
                for i, image in enumerate(t.reference_images)
            ),
        )
        for t in message.targets
    )
    selection = FaceSelection(
        mode=_MODE_OF.get(message.mode, SelectMode.ALL),
        targets=targets,
        max_faces=message.max_faces or max_faces,
        min_size=float(message.min_face_size),
        order=_ORDER_OF.get(message.order, FaceOrder.LARGE_SMALL),
        max_distance=message.max_distance or FaceSelection.max_distance,
    )
    selection.validate()
    return selection


def spec_dict(spec: opb.JobSpec) -> dict[str, Any]:
    """A job spec as a job record keeps it."""
    return json_format.MessageToDict(spec)


def swap_options(spec: opb.JobSpec | dict[str, Any]) -> SwapOptions:
    """The swap a job spec asks for (a message, or as a record keeps it),
    validated."""
    if isinstance(spec, dict):
        message = opb.JobSpec()
        json_format.ParseDict(spec, message)
        spec = message
    options = SwapOptions(
        model=spec.model,
        blend=blend_options(spec.blend),
        encode=encode_options(spec.encode),
        detect_every=spec.detect_every or SwapOptions.detect_every,
        selection=face_selection(spec.selection, spec.max_faces_per_frame),
    )
    options.validate()
    return options


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def job_message(record: JobRecord) -> opb.Job:
    spec = opb.JobSpec()
    json_format.ParseDict(record.spec, spec)
    return opb.Job(
        id=record.id,
        spec=spec,
        state=_STATES[record.state],
        progress=opb.JobProgress(
            frames_done=record.frames_done,
            frames_total=record.frames_total,
            frames_per_second=record.frames_per_second,
            faces_swapped=record.faces_swapped,
            stage_seconds=record.stage_seconds,
        ),
        error=record.error,
        output_uri=Path(record.output_path).absolute().as_uri()
        if record.state == JobState.SUCCEEDED
        else "",
        created=_timestamp(record.created),
        updated=_timestamp(record.updated),
    )


def training_message(run: TrainingRun) -> opb.TrainingRun:
    return opb.TrainingRun(
        id=run.id,
        name=run.name,
        state=_STATES[run.state],
        steps_done=run.steps_done,
        steps_total=run.steps_total,
        loss=run.loss,
        error=run.error,
        kubernetes_job=run.kubernetes_job,
    )

"""The Orchestrator's messages ⇄ domain types: job specs and swap options,
jobs and their states, training runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from swapline.jobs import JobRecord, JobState, TrainingRun
from swapline.pipeline.options import SwapOptions
from swapline.protocol.options import (
    blend_options,
    blend_options_message,
    encode_options,
    encode_options_message,
)
from swapline.v1 import orchestrator_pb2 as opb

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
        max_faces_per_frame=options.max_faces_per_frame,
        detect_every=options.detect_every,
    )


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
        max_faces_per_frame=spec.max_faces_per_frame,
        detect_every=spec.detect_every or SwapOptions.detect_every,
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

"""What a swap asks for (:class:`SwapOptions`) and how far it has come
(:class:`Progress`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from swapline.errors import InvalidInputError
from swapline.stages.blend import BlendOptions
from swapline.stages.encode import EncodeOptions
from swapline.stages.select import FaceSelection, SelectMode


@dataclass(frozen=True)
class SwapOptions:
    model: str
    blend: BlendOptions = field(default_factory=BlendOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    window: int = 16  # frames per batch of work
    # Which faces are swapped, and with which model (reference selection
    # maps each target's model to that person's faces).
    selection: FaceSelection = field(default_factory=FaceSelection)
    min_track_frames: int = 3  # shorter tracks are false detections
    smoothing: float = 0.5
    # Search whole frames every n-th frame; in between, only around the
    # faces already found (1 = search every whole frame).
    detect_every: int = 4

    @property
    def models(self) -> tuple[str, ...]:
        """Every model the swap draws with: the job's model, or with
        reference selection each target's."""
        if self.selection.mode is SelectMode.REFERENCE:
            return tuple(t.model or self.model for t in self.selection.targets)
        return (self.model,)

    def validate(self) -> None:
        self.selection.validate()
        if not 1 <= self.detect_every <= 30:
            raise InvalidInputError(f"detect_every must be in 1..30, got {self.detect_every}")
        if self.window < 1:
            raise InvalidInputError(f"window must be >= 1, got {self.window}")


@dataclass
class Progress:
    frames_done: int = 0
    frames_total: int = 0
    faces_swapped: int = 0
    started: float = field(default_factory=time.monotonic)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.frames_done / elapsed if elapsed > 0 else 0.0

    def timed(self, stage: str, start: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - start


ProgressCallback = Callable[[Progress], None]

"""What a swap asks for (:class:`SwapOptions`) and how far it has come
(:class:`Progress`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from swapline.errors import InvalidInputError
from swapline.stages.blend import BlendOptions
from swapline.stages.encode import EncodeOptions


@dataclass(frozen=True)
class SwapOptions:
    model: str
    blend: BlendOptions = field(default_factory=BlendOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    window: int = 16  # frames per batch of work
    max_faces_per_frame: int = 0  # 0 = every face
    min_track_frames: int = 3  # shorter tracks are false detections
    smoothing: float = 0.5
    # Search whole frames every n-th frame; in between, only around the
    # faces already found (1 = search every whole frame).
    detect_every: int = 4

    def validate(self) -> None:
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

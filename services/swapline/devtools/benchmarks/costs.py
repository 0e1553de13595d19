"""Each stage's CPU time per frame and per face, on one thread."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swapline.devtools.benchmarks.clips import codec_cpu_per_frame
from swapline.media import open_media
from swapline.pipeline import EmbeddedStages, FrameSwapper, Progress, SwapOptions

STAGE_NAMES = ("decode", "detect", "align", "swap", "blend", "encode")


@dataclass
class StageCosts:
    """CPU milliseconds per frame (and per face) of each stage, one sample per
    window: p50 and p95."""

    per_frame: dict[str, list[float]] = field(default_factory=dict)
    per_face: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, seconds: float, frames: int, faces: int) -> None:
        if frames:
            self.per_frame.setdefault(stage, []).append(1000 * seconds / frames)
        if faces:
            self.per_face.setdefault(stage, []).append(1000 * seconds / faces)

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for stage in STAGE_NAMES:
            row: dict[str, float] = {}
            for unit, samples in (("frame", self.per_frame), ("face", self.per_face)):
                values = samples.get(stage)
                if values:
                    row[f"ms_per_{unit}_p50"] = round(float(np.percentile(values, 50)), 3)
                    row[f"ms_per_{unit}_p95"] = round(float(np.percentile(values, 95)), 3)
            if row:
                out[stage] = row
        return out


class _TimedStages:
    """EmbeddedStages on one thread, adding up each stage's CPU time."""

    def __init__(self, inner: EmbeddedStages) -> None:
        self.inner = inner
        self.seconds: dict[str, float] = {}
        self.faces = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _timed(self, stage: str, call: Callable[[], Any]) -> Any:
        start = time.thread_time()
        try:
            return call()
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.thread_time() - start

    def detect(self, inputs: Sequence[Any], near: bool = False) -> Any:
        return self._timed("detect", lambda: self.inner.detect(inputs, near))

    def swap(self, model: str, faces: np.ndarray, mask: str = "mask") -> Any:
        self.faces += len(faces)
        return self._timed("swap", lambda: self.inner.swap(model, faces, mask))

    def blend(self, items: Sequence[Any], options: Any) -> Any:
        return self._timed("blend", lambda: self.inner.blend(items, options))


def stage_costs(clip: Path, model: str, repository: Path, limit: int = 160) -> StageCosts:
    """Each stage's CPU time on one thread over the first ``limit`` frames
    (after one window that loads the models); alignment is what a window's
    work costs beyond detection, swap and blend."""
    costs = StageCosts()
    inner = EmbeddedStages(repository, workers=1)
    inner.engine.threads = 1
    stages = _TimedStages(inner)
    swapper = FrameSwapper(stages, SwapOptions(model=model, min_track_frames=1))
    with open_media(clip) as reader:
        frames = reader.frames()
        warm = list(itertools.islice(frames, swapper.options.window))
        list(swapper.run([warm], Progress(), end=False))  # models load on first use
        while True:
            window = list(itertools.islice(frames, swapper.options.window))
            if not window:
                break
            stages.seconds, stages.faces = {}, 0
            start = time.thread_time()
            list(swapper.run([window], Progress(), end=False))
            total = time.thread_time() - start
            seen = stages.seconds
            for stage in ("detect", "swap", "blend"):
                costs.add(stage, seen.get(stage, 0.0), len(window), stages.faces)
            align = total - sum(seen.values())
            costs.add("align", align, len(window), stages.faces)
            if window[-1].index + 1 >= limit:
                break
    inner.close()
    decode, encode = codec_cpu_per_frame(clip, limit)
    # Process CPU time: the decoder's and encoder's own threads included.
    costs.per_frame["decode"] = [1000 * decode]
    costs.per_frame["encode"] = [1000 * encode]
    return costs

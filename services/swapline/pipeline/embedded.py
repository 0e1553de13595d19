"""Every stage in this process: the default mode, no servers needed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from swapline.concurrency import lower_thread_priority, on_every_thread, ordered_map
from swapline.pipeline.contract import AlignStage
from swapline.stages import dlib_models
from swapline.stages.align import (
    AlignedFace,
    AlignOptions,
    AlignSession,
    Measurement,
    RegionInput,
    chip_embeddings,
)
from swapline.stages.blend import BlendItem, BlendOptions, blend_patch
from swapline.stages.blend import prepare as prepare_blending
from swapline.stages.detect import NEAR_CONFIG, DetectInput, DetectorConfig, FaceDetector, Scored
from swapline.stages.encode import EncodeOptions, EncodeSummary, FramePatches, encode
from swapline.stages.paste import Patch
from swapline.stages.swap import ModelEntry, ModelRepository, OnnxEngine

In = TypeVar("In")
Out = TypeVar("Out")


class _EmbeddedAlign:
    def __init__(self, options: AlignOptions, stages: EmbeddedStages) -> None:
        self.session = AlignSession(options)
        self.stages = stages

    def align(self, regions: Sequence[RegionInput]) -> list[AlignedFace]:
        measured: list[Measurement] = [
            m
            for group in self.stages.map(self.session.measure, [[r] for r in regions])
            for m in group
        ]
        return self.session.align(regions, measured)


class EmbeddedStages:
    """Every stage in this process: the default, no servers needed."""

    takes_decoded_frames = True

    def __init__(
        self,
        repository: str | Path,
        detector: DetectorConfig | None = None,
        workers: int | None = None,
        cpu_int8: bool = True,
        inference_threads: int = 1,
    ) -> None:
        """``inference_threads``: ONNX Runtime's threads per inference; one
        for files (windows keep every core busy), more for a live stream,
        where one frame's faces are all there is to do."""
        self.repository = ModelRepository(repository)
        # Inference on the (background-priority) swapping thread itself: an
        # ONNX Runtime pool thread would run at the encoder's priority.
        self.engine = OnnxEngine(self.repository, threads=inference_threads, cpu_int8=cpu_int8)
        self.detector = FaceDetector(detector)
        self.near_detector = FaceDetector(replace(NEAR_CONFIG, model=self.detector.config.model))
        self.workers = workers or os.cpu_count() or 1
        # One long-lived pool: its threads keep their dlib models loaded.
        # Below the encoder's priority: see lower_thread_priority.
        self._pool = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="stage", initializer=lower_thread_priority
        )
        self._warm()

    def _warm(self) -> None:
        """Loads the dlib models into every pool thread now, as a stage
        server does at startup, rather than during a job's first frames."""
        names = (self.detector.model_name, dlib_models.LANDMARKS_68)
        on_every_thread(self._pool, self.workers, lambda: dlib_models.warm(names))
        prepare_blending()

    @property
    def detects_in_colour(self) -> bool:
        return self.detector.reads_colour

    def map(self, work: Callable[[In], Out], items: Iterable[In]) -> Iterator[Out]:
        return ordered_map(work, items, self.workers, pool=self._pool)

    def model(self, name: str) -> ModelEntry:
        return self.engine.load(name)

    def detect(self, inputs: Sequence[DetectInput], near: bool = False) -> list[list[Scored]]:
        detector = self.near_detector if near else self.detector

        def one(item: DetectInput) -> list[Scored]:
            found = detector.detect(item.image, item.source_size, item.origin)
            return [(d.left, d.top, d.right, d.bottom, d.score) for d in found]

        return list(self.map(one, inputs))

    def align_session(self, options: AlignOptions) -> AlignStage:
        return _EmbeddedAlign(options, self)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        groups = [list(chips[i : i + 4]) for i in range(0, len(chips), 4)]
        parts = list(self.map(chip_embeddings, groups))
        return np.concatenate(parts) if parts else np.zeros((0, 128), np.float32)

    def swap(
        self, model: str, faces: np.ndarray, mask: str = "mask"
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.engine.infer(model, faces, mask)

    def blend(self, items: Sequence[BlendItem], options: BlendOptions) -> list[Patch]:
        def one(item: BlendItem) -> Patch:
            patch, origin = blend_patch(item, options)
            return Patch(origin, patch)

        return list(map(one, items))

    def encode(
        self,
        source: str | os.PathLike[str],
        output: str | os.PathLike[str],
        patches: Iterable[FramePatches],
        options: EncodeOptions,
        model: str,
    ) -> EncodeSummary:
        return encode(source, output, patches, options, model)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

"""The stages as the pipeline sees them, wherever they run: the
:class:`Stages` contract that the embedded and the remote stages implement."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from swapline.stages.align import AlignedFace, AlignOptions, RegionInput
from swapline.stages.blend import BlendItem, BlendOptions
from swapline.stages.detect import DetectInput, Scored
from swapline.stages.encode import EncodeOptions, EncodeSummary, FramePatches
from swapline.stages.paste import Patch
from swapline.stages.swap import ModelEntry


class AlignStage(Protocol):
    def align(self, regions: Sequence[RegionInput]) -> list[AlignedFace]: ...


class Stages(Protocol):
    """What the pipeline needs from the stages, wherever they run."""

    # The encoder runs in this process and takes the frames the pipeline
    # decoded (FramePatches.frame) instead of decoding the source again.
    takes_decoded_frames: bool

    def model(self, name: str) -> ModelEntry: ...

    @property
    def detects_in_colour(self) -> bool:
        """Whether detection reads colour (the CNN) or intensity only (HOG)."""
        ...

    def detect(self, inputs: Sequence[DetectInput], near: bool = False) -> list[list[Scored]]:
        """Boxes (left, top, right, bottom, score) per input, frame pixels.

        Whole frames, or with ``near`` regions around known faces, already
        scaled by :func:`near_region`.
        """
        ...

    def align_session(self, options: AlignOptions) -> AlignStage: ...

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """dlib face embeddings [N, 128] of face chips [N, 150, 150, 3] RGB
        (:func:`~swapline.stages.align.face_chip`)."""
        ...

    def swap(
        self, model: str, faces: np.ndarray, mask: str = "mask"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Swapped faces and the model's ``mask`` output for them (see
        :func:`swapline.stages.model_contract.mask_output`)."""
        ...

    def blend(self, items: Sequence[BlendItem], options: BlendOptions) -> list[Patch]:
        """One BGRA patch (face and alpha) per item, cut to what its alpha
        covers of the item's ROI."""
        ...

    def encode(
        self,
        source: str | os.PathLike[str],
        output: str | os.PathLike[str],
        patches: Iterable[FramePatches],
        options: EncodeOptions,
        model: str,
    ) -> EncodeSummary: ...

    def close(self) -> None: ...

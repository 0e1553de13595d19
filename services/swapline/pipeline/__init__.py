"""The swap pipeline: detect -> align -> swap -> blend -> encode.

One code path for every mode: the frame driver (:class:`FrameSwapper`,
:func:`swap_file`) talks to a :class:`Stages` object, which runs the stage
libraries in this process (:class:`EmbeddedStages`) or calls the stage
services over gRPC (:class:`RemoteStages`).
"""

from swapline.pipeline.contract import AlignStage, Stages
from swapline.pipeline.driver import FrameSwapper, frame_patches, swap_file
from swapline.pipeline.embedded import EmbeddedStages
from swapline.pipeline.options import Progress, ProgressCallback, SwapOptions
from swapline.pipeline.remote import RemoteStages
from swapline.stages.blend import BlendItem

__all__ = [
    "AlignStage",
    "BlendItem",
    "EmbeddedStages",
    "FrameSwapper",
    "Progress",
    "ProgressCallback",
    "RemoteStages",
    "Stages",
    "SwapOptions",
    "frame_patches",
    "swap_file",
]

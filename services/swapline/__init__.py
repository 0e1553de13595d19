"""swapline: a face-swap video pipeline built as gRPC services.

Stage logic lives in plain modules (``swapline.media``, ``swapline.stages``,
``swapline.extract``) with no gRPC in them; ``swapline.services`` adapts each
stage to its gRPC service and ``swapline.runtime`` is the runtime they share.
"""

__version__ = "0.1.0"

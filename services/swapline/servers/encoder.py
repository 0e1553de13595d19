"""Encoder service: a thin adapter over :mod:`swapline.stages.encode`.

The first request names the source (which the encoder decodes itself from
shared storage) and the output; then one FramePatches per source frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Iterator

import grpc

from swapline.config import ServerConfig
from swapline.errors import InvalidInputError
from swapline.protocol.options import encode_options
from swapline.protocol.results import frame_patches
from swapline.runtime import metrics
from swapline.runtime.server import ServiceBinding, StageWorkers
from swapline.runtime.storage import StorageRoots
from swapline.stages.encode import FramePatches, encode
from swapline.v1 import encoder_pb2, encoder_pb2_grpc

SERVICE_NAME = encoder_pb2.DESCRIPTOR.services_by_name["Encoder"].full_name


class EncoderServicer(encoder_pb2_grpc.EncoderServicer):
    def __init__(self, config: ServerConfig, workers: StageWorkers, roots: StorageRoots) -> None:
        self.config = config
        self.workers = workers
        self.roots = roots

    async def Encode(
        self,
        requests: AsyncIterator[encoder_pb2.EncodeRequest],
        context: grpc.aio.ServicerContext,
    ) -> encoder_pb2.EncodeResponse:
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("item") != "start":
            raise InvalidInputError("the first message must be EncodeStart")
        start = first.start
        source = self.roots.resolve(start.source_uri)
        output = self.roots.resolve(start.output_uri)
        options = encode_options(start.options)
        handover = _Handover()

        def patches() -> Iterator[FramePatches]:
            for item in handover.items():
                yield frame_patches(item, self.config.max_frame_pixels)
                metrics.STAGE_ITEMS.labels("encoder", "frames").inc()

        def run() -> encoder_pb2.EncodeResponse:
            try:
                summary = encode(source, output, patches(), options, model=start.model)
            finally:
                handover.encoder_done()
            return encoder_pb2.EncodeResponse(
                output_uri=start.output_uri, frames=summary.frames, bytes=summary.bytes
            )

        task = asyncio.ensure_future(self.workers.run(run))
        loop = asyncio.get_running_loop()
        try:
            async for request in requests:
                if request.WhichOneof("item") != "frame":
                    raise InvalidInputError("only FramePatches may follow EncodeStart")
                if task.done():
                    break
                if not handover.offer(request.frame):  # the encoder is behind
                    await loop.run_in_executor(None, handover.put, request.frame)
            handover.finish()
            return await task
        except BaseException:
            # The stream failed or was cancelled: the encoder stops at its
            # next frame and removes what it wrote (however full the queue).
            handover.abort()
            with contextlib.suppress(BaseException):
                await task
            raise


class _Handover:
    """Frames from the gRPC stream to the encoding thread through a bounded
    queue: a slow encoder makes the stream wait (backpressure) instead of
    buffering frames. Either side can end it without the other blocking:
    the stream by :meth:`finish` (all sent) or :meth:`abort` (failed), the
    encoder by :meth:`encoder_done`."""

    def __init__(self, depth: int = 32) -> None:
        self._queue: queue.Queue[encoder_pb2.FramePatches] = queue.Queue(maxsize=depth)
        self._finished = threading.Event()
        self._aborted = threading.Event()
        self._encoder_done = threading.Event()

    def offer(self, item: encoder_pb2.FramePatches) -> bool:
        """Queues ``item`` if there is room now."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def put(self, item: encoder_pb2.FramePatches) -> None:
        """Queues ``item``, waiting for room unless the encoder has ended."""
        while not self._encoder_done.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return

    def finish(self) -> None:
        self._finished.set()

    def abort(self) -> None:
        self._aborted.set()

    def encoder_done(self) -> None:
        self._encoder_done.set()

    def items(self) -> Iterator[encoder_pb2.FramePatches]:
        """What the stream sent, in order, until it finished; an aborted
        stream raises InterruptedError in the encoder."""
        while True:
            if self._aborted.is_set():
                raise InterruptedError("the encode stream was cancelled")
            try:
                yield self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._finished.is_set() and self._queue.empty():
                    return


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    roots = StorageRoots.from_env(config.storage_roots)
    servicer = EncoderServicer(config, workers, roots)
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: encoder_pb2_grpc.add_EncoderServicer_to_server(servicer, server),
    )

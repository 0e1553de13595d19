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
_END = object()


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
        # A bounded hand-over to the encoding thread: a slow encoder makes
        # the stream wait (backpressure) instead of buffering frames.
        handover: queue.Queue[object] = queue.Queue(maxsize=32)
        stop = threading.Event()

        def patches() -> Iterator[FramePatches]:
            while True:
                item = handover.get()
                if item is _END:
                    return
                assert isinstance(item, encoder_pb2.FramePatches)
                yield frame_patches(item, self.config.max_frame_pixels)
                metrics.STAGE_ITEMS.labels("encoder", "frames").inc()

        def run() -> encoder_pb2.EncodeResponse:
            try:
                summary = encode(source, output, patches(), options, model=start.model)
            finally:
                stop.set()
                with contextlib.suppress(queue.Empty):
                    while True:  # unblock a feeder waiting on a full queue
                        handover.get_nowait()
            return encoder_pb2.EncodeResponse(
                output_uri=start.output_uri, frames=summary.frames, bytes=summary.bytes
            )

        task = asyncio.ensure_future(self.workers.run(run))
        loop = asyncio.get_running_loop()

        def put(item: object) -> None:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    handover.put(item, timeout=0.1)
                    return

        try:
            async for request in requests:
                if request.WhichOneof("item") != "frame":
                    raise InvalidInputError("only FramePatches may follow EncodeStart")
                if task.done():
                    break
                try:
                    handover.put_nowait(request.frame)
                except queue.Full:  # the encoder is behind: wait off the event loop
                    await loop.run_in_executor(None, put, request.frame)
            await loop.run_in_executor(None, put, _END)
            return await task
        except BaseException:
            stop.set()
            await loop.run_in_executor(None, put, _END)
            with contextlib.suppress(BaseException):
                await task
            output.with_name(f".{output.name}.partial").unlink(missing_ok=True)
            raise


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    roots = StorageRoots.from_env(config.storage_roots)
    servicer = EncoderServicer(config, workers, roots)
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: encoder_pb2_grpc.add_EncoderServicer_to_server(servicer, server),
    )

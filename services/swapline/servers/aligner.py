"""Aligner service: a thin adapter over :mod:`swapline.stages.align`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from swapline.config import ServerConfig
from swapline.protocol import wire
from swapline.protocol.options import align_options
from swapline.protocol.results import aligned_face_message, region_input
from swapline.runtime import metrics
from swapline.runtime.server import (
    ServiceBinding,
    StageWorkers,
    require_batch,
    require_pixel_budget,
)
from swapline.stages import dlib_models
from swapline.stages.align import AlignSession
from swapline.v1 import aligner_pb2, aligner_pb2_grpc

SERVICE_NAME = aligner_pb2.DESCRIPTOR.services_by_name["Aligner"].full_name


class AlignerServicer(aligner_pb2_grpc.AlignerServicer):
    def __init__(self, config: ServerConfig, workers: StageWorkers) -> None:
        self.config = config
        self.workers = workers

    def _validate(self, request: aligner_pb2.AlignRequest) -> int:
        count = require_batch(request.faces, self.config, "faces")
        require_pixel_budget((f.image for f in request.faces), self.config)
        align_options(request.options)
        return count

    async def Align(
        self, request: aligner_pb2.AlignRequest, context: grpc.aio.ServicerContext
    ) -> aligner_pb2.AlignResponse:
        count = self._validate(request)
        metrics.STAGE_BATCH_SIZE.labels("aligner").observe(count)
        session = AlignSession(align_options(request.options))
        return await self.workers.run(self._align, request, session)

    async def AlignStream(
        self,
        requests: AsyncIterator[aligner_pb2.AlignRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[aligner_pb2.AlignResponse]:
        session: AlignSession | None = None
        async for request in requests:
            count = self._validate(request)
            metrics.STAGE_BATCH_SIZE.labels("aligner").observe(count)
            if session is None:
                # The first request's options hold for the whole stream.
                session = AlignSession(align_options(request.options))
            yield await self.workers.run(self._align, request, session)

    def _align(
        self, request: aligner_pb2.AlignRequest, session: AlignSession
    ) -> aligner_pb2.AlignResponse:
        regions = []
        for i, face in enumerate(request.faces):
            image = wire.decode_image_message(
                face.image, f"faces[{i}].image", self.config.max_frame_pixels
            )
            regions.append(region_input(face, image))
        aligned = session.align(regions)
        metrics.STAGE_ITEMS.labels("aligner", "faces").inc(len(aligned))
        encoding = request.options.crop_encoding
        return aligner_pb2.AlignResponse(
            faces=[
                aligned_face_message(face, request.faces[i].frame, session.options, encoding)
                for i, face in enumerate(aligned)
            ]
        )


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    servicer = AlignerServicer(config, workers)
    workers.warm(lambda: dlib_models.warm([dlib_models.LANDMARKS_68]))
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: aligner_pb2_grpc.add_AlignerServicer_to_server(servicer, server),
    )

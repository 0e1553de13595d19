"""Aligner service: a thin adapter over :mod:`swapline.stages.align`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np

from swapline.config import ServerConfig
from swapline.errors import InvalidInputError
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
from swapline.stages.align import EMBEDDING_CHIP, AlignSession, chip_embeddings
from swapline.v1 import aligner_pb2, aligner_pb2_grpc
from swapline.v1 import common_pb2 as pb

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

    async def Embed(
        self, request: aligner_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> aligner_pb2.EmbedResponse:
        count = require_batch(request.chips, self.config, "chips")
        metrics.STAGE_BATCH_SIZE.labels("aligner").observe(count)
        return await self.workers.run(self._embed, request)

    def _embed(self, request: aligner_pb2.EmbedRequest) -> aligner_pb2.EmbedResponse:
        chips = []
        for i, message in enumerate(request.chips):
            chip = wire.decode_image_message(message, f"chips[{i}]", self.config.max_frame_pixels)
            if chip.shape != (EMBEDDING_CHIP, EMBEDDING_CHIP, 3):
                raise InvalidInputError(
                    f"chips[{i}]: a face chip is {EMBEDDING_CHIP}x{EMBEDDING_CHIP} RGB, "
                    f"got {chip.shape}"
                )
            chips.append(np.ascontiguousarray(chip[..., ::-1]))  # the network reads RGB
        embeddings = chip_embeddings(chips)
        metrics.STAGE_ITEMS.labels("aligner", "embeddings").inc(len(chips))
        return aligner_pb2.EmbedResponse(
            embeddings=[pb.FaceEmbedding(values=e.tolist()) for e in embeddings]
        )

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
    # The embedding network (about 20 MB) loads on the first Embed call: only
    # reference selection asks for it.
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: aligner_pb2_grpc.add_AlignerServicer_to_server(servicer, server),
    )

"""Blender service: a thin adapter over :mod:`swapline.stages.blend`."""

from __future__ import annotations

import grpc

from swapline.config import ServerConfig
from swapline.protocol.options import blend_options
from swapline.protocol.results import blend_item, patch_message
from swapline.runtime import metrics
from swapline.runtime.server import (
    ServiceBinding,
    StageWorkers,
    require_batch,
    require_pixel_budget,
)
from swapline.stages.blend import BlendOptions, blend_patch, prepare
from swapline.stages.paste import Patch
from swapline.v1 import blender_pb2, blender_pb2_grpc

SERVICE_NAME = blender_pb2.DESCRIPTOR.services_by_name["Blender"].full_name


class BlenderServicer(blender_pb2_grpc.BlenderServicer):
    def __init__(self, config: ServerConfig, workers: StageWorkers) -> None:
        self.config = config
        self.workers = workers

    async def Blend(
        self, request: blender_pb2.BlendRequest, context: grpc.aio.ServicerContext
    ) -> blender_pb2.BlendResponse:
        count = require_batch(request.items, self.config, "items")
        require_pixel_budget(
            [
                image
                for item in request.items
                # region_size: the patch to produce when the pixels are not sent
                for image in (item.region.image, item.region_size, item.swapped_face)
            ],
            self.config,
        )
        options = blend_options(request.options)
        metrics.STAGE_BATCH_SIZE.labels("blender").observe(count)
        return await self.workers.run(self._blend, request, options)

    def _blend(
        self, request: blender_pb2.BlendRequest, options: BlendOptions
    ) -> blender_pb2.BlendResponse:
        response = blender_pb2.BlendResponse()
        limit, encoding = self.config.max_frame_pixels, request.options.output_encoding
        for i, message in enumerate(request.items):
            item = blend_item(message, f"items[{i}]", limit, options.seamless_clone)
            image, origin = blend_patch(item, options)
            response.patches.append(patch_message(Patch(origin, image), encoding, message.region))
        metrics.STAGE_ITEMS.labels("blender", "faces").inc(len(request.items))
        return response


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    servicer = BlenderServicer(config, workers)
    prepare()
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: blender_pb2_grpc.add_BlenderServicer_to_server(servicer, server),
    )

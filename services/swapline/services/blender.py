"""Blender service: a thin adapter over :mod:`swapline.stages.blend`."""

from __future__ import annotations

import grpc

from swapline import wire
from swapline.errors import InvalidInputError
from swapline.runtime import metrics
from swapline.runtime.config import ServerConfig
from swapline.runtime.server import (
    ServiceBinding,
    StageWorkers,
    require_batch,
    require_pixel_budget,
)
from swapline.stages.blend import BlendOptions, ColorTransfer, blend_patch, prepare
from swapline.v1 import blender_pb2, blender_pb2_grpc
from swapline.v1 import common_pb2 as pb

SERVICE_NAME = blender_pb2.DESCRIPTOR.services_by_name["Blender"].full_name

COLOR_TRANSFERS = {
    blender_pb2.COLOR_TRANSFER_UNSPECIFIED: ColorTransfer.RCT,
    blender_pb2.COLOR_TRANSFER_NONE: ColorTransfer.NONE,
    blender_pb2.COLOR_TRANSFER_RCT: ColorTransfer.RCT,
    blender_pb2.COLOR_TRANSFER_LCT: ColorTransfer.LCT,
    blender_pb2.COLOR_TRANSFER_HIST: ColorTransfer.HIST,
}


def blend_options(message: blender_pb2.BlendOptions) -> BlendOptions:
    defaults = BlendOptions()
    options = BlendOptions(
        color_transfer=COLOR_TRANSFERS.get(message.color_transfer, ColorTransfer.RCT),
        erode=message.erode if message.HasField("erode") else defaults.erode,
        feather=message.feather if message.HasField("feather") else defaults.feather,
        seamless_clone=message.seamless_clone,
        sharpen=message.sharpen,
    )
    options.validate()
    return options


def blend_options_message(options: BlendOptions) -> blender_pb2.BlendOptions:
    reverse = {
        v: k for k, v in COLOR_TRANSFERS.items() if k != blender_pb2.COLOR_TRANSFER_UNSPECIFIED
    }
    return blender_pb2.BlendOptions(
        color_transfer=reverse[options.color_transfer],
        erode=options.erode,
        feather=options.feather,
        seamless_clone=options.seamless_clone,
        sharpen=options.sharpen,
    )


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
        limit = self.config.max_frame_pixels
        for i, item in enumerate(request.items):
            roi = None
            if item.region.image.width:
                roi = wire.decode_image_message(
                    item.region.image, f"items[{i}].region.image", limit
                )
            original = None
            if item.original_face.width:
                original = wire.decode_image_message(
                    item.original_face, f"items[{i}].original_face", limit
                )
            size = (item.region_size.width, item.region_size.height)
            if roi is None and (original is None or min(size) < 1):
                raise InvalidInputError(
                    f"items[{i}]: region.image, or region_size and original_face, are required"
                )
            if roi is None and options.seamless_clone:
                raise InvalidInputError(f"items[{i}]: seamless_clone needs region.image")
            if roi is None and size[0] * size[1] > limit:
                raise InvalidInputError(f"items[{i}].region_size exceeds max_frame_pixels")
            face = wire.decode_image_message(item.swapped_face, f"items[{i}].swapped_face", limit)
            if face.ndim != 3 or face.shape[0] != face.shape[1]:
                raise InvalidInputError(f"items[{i}].swapped_face must be a square colour crop")
            masks = [
                wire.decode_image_message(m, f"items[{i}].mask", limit) if m.width else None
                for m in (item.swapped_mask, item.hull_mask)
            ]
            if any(m is not None and m.ndim != 2 for m in masks):
                raise InvalidInputError(f"items[{i}]: masks must be GRAY8")
            origin = (round(item.region.origin.x), round(item.region.origin.y))
            patch, (x, y) = blend_patch(
                roi,
                origin,
                face,
                masks[0],
                masks[1],
                wire.affine_array(item.crop_to_frame),
                options,
                original=original,
                size=size,
            )
            response.patches.append(
                blender_pb2.Patch(
                    frame=item.region.frame,
                    face_index=item.region.face_index,
                    image=wire.image_message(patch, request.options.output_encoding),
                    origin=pb.Point(x=x, y=y),
                )
            )
        metrics.STAGE_ITEMS.labels("blender", "faces").inc(len(request.items))
        return response


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    servicer = BlenderServicer(config, workers)
    prepare()
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: blender_pb2_grpc.add_BlenderServicer_to_server(servicer, server),
    )

"""Swapper service: a thin adapter over :mod:`swapline.stages.swap`."""

from __future__ import annotations

import grpc
import numpy as np

from swapline.config import ServerConfig
from swapline.errors import InvalidInputError
from swapline.protocol import wire
from swapline.protocol.options import swap_mask
from swapline.protocol.results import model_info
from swapline.runtime import metrics
from swapline.runtime.server import (
    ServiceBinding,
    StageWorkers,
    require_batch,
    require_pixel_budget,
)
from swapline.stages.coalesce import BatchCoalescer
from swapline.stages.swap import (
    ModelEntry,
    ModelRepository,
    OnnxEngine,
    SwapEngine,
    TritonEngine,
)
from swapline.v1 import common_pb2 as pb
from swapline.v1 import swapper_pb2, swapper_pb2_grpc

SERVICE_NAME = swapper_pb2.DESCRIPTOR.services_by_name["Swapper"].full_name
_COLOUR = {
    pb.PIXEL_FORMAT_UNSPECIFIED,  # encoded images decode to BGR
    pb.PIXEL_FORMAT_BGR8,
    pb.PIXEL_FORMAT_RGB8,
    pb.PIXEL_FORMAT_BGRA8,
    pb.PIXEL_FORMAT_RGBA8,
}


def make_engine(config: ServerConfig) -> SwapEngine:
    repository = ModelRepository(config.model_repository)
    if config.triton_url:
        return TritonEngine(config.triton_url, repository)
    return OnnxEngine(repository, threads=config.workers, cpu_int8=config.cpu_int8)


class SwapperServicer(swapper_pb2_grpc.SwapperServicer):
    def __init__(self, config: ServerConfig, workers: StageWorkers, engine: SwapEngine) -> None:
        self.config = config
        self.workers = workers
        self.engine = engine
        self.coalescer = BatchCoalescer(
            lambda model, faces, mask: workers.run(engine.infer, model, faces, mask),
            max_batch=lambda model: engine.repository.get(model).max_batch,
            max_delay=config.coalesce_ms / 1000.0,
            on_batch=lambda requests, faces: metrics.STAGE_BATCH_SIZE.labels("swapper").observe(
                faces
            ),
        )

    def _decode(self, request: swapper_pb2.SwapRequest, entry: ModelEntry) -> np.ndarray:
        res = entry.resolution
        faces = []
        for i, face in enumerate(request.faces):
            if (face.width, face.height) != (res, res):
                raise InvalidInputError(
                    f"faces[{i}]: model {entry.name} takes {res}x{res} faces, "
                    f"got {face.width}x{face.height}"
                )
            if face.pixel_format not in _COLOUR:
                raise InvalidInputError(f"faces[{i}]: expected a colour (BGR8) face")
            faces.append(wire.decode_image_message(face, f"faces[{i}]"))
        return np.stack(faces)

    async def Swap(
        self, request: swapper_pb2.SwapRequest, context: grpc.aio.ServicerContext
    ) -> swapper_pb2.SwapResponse:
        require_batch(request.faces, self.config, "faces")
        entry = self.engine.repository.get(request.model)
        require_pixel_budget(request.faces, self.config)
        mask = swap_mask(request.mask)
        faces = await self.workers.run(self._decode, request, entry)
        swapped, masks = await self.coalescer.infer(request.model, faces, mask)
        metrics.STAGE_ITEMS.labels("swapper", "faces").inc(len(faces))
        encoding = request.output_encoding
        return await self.workers.run(_response, swapped, masks, encoding)

    async def ListModels(
        self, request: swapper_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> swapper_pb2.ListModelsResponse:
        entries = await self.workers.run(self.engine.repository.entries)
        return swapper_pb2.ListModelsResponse(
            models=[model_info(e, self.engine.ready(e.name)) for e in entries]
        )

    async def GetModel(
        self, request: swapper_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> swapper_pb2.ModelInfo:
        entry = self.engine.repository.get(request.name)
        return model_info(entry, self.engine.ready(entry.name))

    async def LoadModel(
        self, request: swapper_pb2.LoadModelRequest, context: grpc.aio.ServicerContext
    ) -> swapper_pb2.ModelInfo:
        entry = await self.workers.run(self.engine.load, request.name)
        return model_info(entry, True)


def _response(
    swapped: np.ndarray, masks: np.ndarray, encoding: pb.ImageEncoding
) -> swapper_pb2.SwapResponse:
    return swapper_pb2.SwapResponse(
        faces=[
            swapper_pb2.SwappedFace(
                face=wire.image_message(face, encoding),
                mask=wire.image_message(mask[..., 0], encoding),
            )
            for face, mask in zip(swapped, masks, strict=True)
        ]
    )


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    engine = make_engine(config)
    servicer = SwapperServicer(config, workers, engine)
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: swapper_pb2_grpc.add_SwapperServicer_to_server(servicer, server),
        close=getattr(engine, "close", lambda: None),
    )

"""Detector service: a thin adapter over :mod:`swapline.stages.detect`."""

from __future__ import annotations

import grpc

from swapline.config import ServerConfig
from swapline.protocol import wire
from swapline.protocol.options import detector_config
from swapline.protocol.results import faces_message
from swapline.runtime import metrics
from swapline.runtime.server import (
    ServiceBinding,
    StageWorkers,
    require_batch,
    require_pixel_budget,
)
from swapline.stages import dlib_models
from swapline.stages.detect import FaceDetector
from swapline.v1 import detector_pb2, detector_pb2_grpc

SERVICE_NAME = detector_pb2.DESCRIPTOR.services_by_name["Detector"].full_name


class DetectorServicer(detector_pb2_grpc.DetectorServicer):
    def __init__(self, config: ServerConfig, workers: StageWorkers) -> None:
        self.config = config
        self.workers = workers

    async def Detect(
        self, request: detector_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> detector_pb2.DetectResponse:
        count = require_batch(request.frames, self.config, "frames")
        require_pixel_budget((f.image for f in request.frames), self.config)
        detector = FaceDetector(detector_config(request.options))
        metrics.STAGE_BATCH_SIZE.labels("detector").observe(count)
        return await self.workers.run(self._detect, request, detector)

    def _detect(
        self, request: detector_pb2.DetectRequest, detector: FaceDetector
    ) -> detector_pb2.DetectResponse:
        response = detector_pb2.DetectResponse()
        for i, item in enumerate(request.frames):
            image = wire.decode_image_message(
                item.image, f"frames[{i}].image", self.config.max_frame_pixels
            )
            source = None
            if item.HasField("source_size") and item.source_size.width:
                source = (item.source_size.width, item.source_size.height)
            faces = detector.detect(image, source, (item.origin.x, item.origin.y))
            response.frames.append(
                detector_pb2.FrameFaces(
                    frame=item.frame,
                    faces=faces_message(
                        [(f.left, f.top, f.right, f.bottom, f.score) for f in faces]
                    ),
                )
            )
        metrics.STAGE_ITEMS.labels("detector", "frames").inc(len(request.frames))
        return response


def binding(config: ServerConfig, workers: StageWorkers) -> ServiceBinding:
    servicer = DetectorServicer(config, workers)
    workers.warm(lambda: dlib_models.warm([dlib_models.HOG]))
    return ServiceBinding(
        name=SERVICE_NAME,
        register=lambda server: detector_pb2_grpc.add_DetectorServicer_to_server(servicer, server),
    )

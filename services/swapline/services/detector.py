"""Detector service: a thin adapter over :mod:`swapline.stages.detect`."""

from __future__ import annotations

import grpc

from swapline import dlib_models, wire
from swapline.runtime import metrics
from swapline.runtime.config import ServerConfig
from swapline.runtime.server import (
    ServiceBinding,
    StageWorkers,
    require_batch,
    require_pixel_budget,
)
from swapline.stages.detect import DetectorConfig, DetectorModel, FaceDetector
from swapline.v1 import common_pb2 as pb
from swapline.v1 import detector_pb2, detector_pb2_grpc

SERVICE_NAME = detector_pb2.DESCRIPTOR.services_by_name["Detector"].full_name

_MODELS = {
    detector_pb2.DETECTOR_MODEL_UNSPECIFIED: DetectorModel.HOG,
    detector_pb2.DETECTOR_MODEL_HOG: DetectorModel.HOG,
    detector_pb2.DETECTOR_MODEL_CNN: DetectorModel.CNN,
}


def detector_config(options: detector_pb2.DetectOptions) -> DetectorConfig:
    defaults = DetectorConfig()
    return DetectorConfig(
        model=_MODELS.get(options.model, DetectorModel.HOG),
        max_side=options.max_side or defaults.max_side,
        upsample=options.upsample if options.HasField("upsample") else None,
        min_face_size=options.min_face_size,
        min_score=options.min_score,
    )


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
                    faces=[
                        pb.Face(
                            box=wire.box_message((f.left, f.top, f.right, f.bottom)),
                            score=f.score,
                            face_index=n,
                        )
                        for n, f in enumerate(faces)
                    ],
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

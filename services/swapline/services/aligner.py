"""Aligner service: a thin adapter over :mod:`swapline.stages.align`."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
from swapline.stages.align import AlignedFace, AlignOptions, AlignSession, FaceType, RegionInput
from swapline.stages.track import DEFAULT_SMOOTHING
from swapline.v1 import aligner_pb2, aligner_pb2_grpc
from swapline.v1 import common_pb2 as pb

SERVICE_NAME = aligner_pb2.DESCRIPTOR.services_by_name["Aligner"].full_name

_FACE_TYPES = {
    pb.FACE_TYPE_UNSPECIFIED: FaceType.FULL,
    pb.FACE_TYPE_FULL: FaceType.FULL,
    pb.FACE_TYPE_WHOLE: FaceType.WHOLE,
}
FACE_TYPE_MESSAGES = {FaceType.FULL: pb.FACE_TYPE_FULL, FaceType.WHOLE: pb.FACE_TYPE_WHOLE}


def align_options(options: aligner_pb2.AlignOptions) -> AlignOptions:
    return AlignOptions(
        size=options.size or 256,
        face_type=_FACE_TYPES.get(options.face_type, FaceType.FULL),
        smoothing=options.smoothing if options.HasField("smoothing") else DEFAULT_SMOOTHING,
        with_crop=not options.skip_crop,
        with_mask=not options.skip_mask,
        embeddings=options.embeddings,
    )


def aligned_face_message(
    face: AlignedFace,
    ref: pb.FrameRef,
    options: AlignOptions,
    encoding: pb.ImageEncoding,
) -> pb.AlignedFace:
    aligned = face.aligned
    message = pb.AlignedFace(
        frame=ref,
        face_index=face.face_index,
        track_id=face.track_id,
        face_type=FACE_TYPE_MESSAGES[options.face_type],
        size=options.size,
        frame_to_crop=wire.affine_message(aligned.frame_to_crop),
        crop_to_frame=wire.affine_message(aligned.crop_to_frame),
        landmarks=wire.landmarks_message(face.landmarks),
        crop_landmarks=wire.landmarks_message(aligned.crop_landmarks),
        box=wire.box_message(face.box),
        score=face.score,
    )
    if aligned.crop is not None:
        message.crop.CopyFrom(wire.image_message(aligned.crop, encoding))
    if aligned.mask is not None:
        message.mask.CopyFrom(wire.image_message(aligned.mask, encoding))
    if face.embedding is not None:
        message.embedding.extend(face.embedding.tolist())
    return message


class AlignerServicer(aligner_pb2_grpc.AlignerServicer):
    def __init__(self, config: ServerConfig, workers: StageWorkers) -> None:
        self.config = config
        self.workers = workers

    def _validate(self, request: aligner_pb2.AlignRequest) -> int:
        count = require_batch(request.faces, self.config, "faces")
        require_pixel_budget((f.image for f in request.faces), self.config)
        align_options(request.options).validate()
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
            regions.append(
                RegionInput(
                    frame_index=face.frame.index,
                    face_index=face.face_index,
                    image=image,
                    origin=(face.origin.x, face.origin.y),
                    box=wire.box_tuple(face.box),
                    score=face.score,
                )
            )
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

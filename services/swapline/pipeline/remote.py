"""The stages as gRPC services: the distributed implementation of
:class:`swapline.pipeline.Stages`.

Unary calls carry deadlines and are retried on UNAVAILABLE through the
channel's service config, so a stage server that restarts mid-job costs a
retry, not the job. The aligner stream, which holds a video's tracking
state, is reopened when its server goes away.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import grpc
import numpy as np

from swapline.config import StageAddresses, check_pixel_encoding
from swapline.media import grey
from swapline.protocol import wire
from swapline.protocol.channel import CountingChannel, channel, with_retries
from swapline.protocol.options import (
    align_options_message,
    blend_options_message,
    detect_options_message,
    encode_options_message,
    swap_mask_message,
)
from swapline.protocol.results import (
    aligned_face,
    blend_item_message,
    frame_patches_message,
    model_entry,
    patch,
    region_message,
    scored_boxes,
)
from swapline.protocol.status import error_for
from swapline.stages.align import AlignedFace, AlignOptions, RegionInput
from swapline.stages.blend import BlendItem, BlendOptions
from swapline.stages.detect import NEAR_CONFIG, DetectInput, Scored
from swapline.stages.encode import EncodeOptions, EncodeSummary, FramePatches
from swapline.stages.paste import Patch
from swapline.stages.swap import ModelEntry
from swapline.v1 import (
    aligner_pb2,
    aligner_pb2_grpc,
    blender_pb2,
    blender_pb2_grpc,
    detector_pb2,
    detector_pb2_grpc,
    encoder_pb2,
    encoder_pb2_grpc,
    swapper_pb2,
    swapper_pb2_grpc,
)
from swapline.v1 import common_pb2 as pb

DETECT_SIDE = 640  # the detector downscales to this anyway: send no more
# What crosses the wire: JPEG where a stage only measures (detection,
# landmarks). Pixels that end up in the output stay lossless: raw by default
# (PNG's compression cost more CPU than every other stage together and
# halved distributed throughput, while raw crops still add up to less than
# one raw frame per frame), PNG where bandwidth is scarcer than CPU.
MEASURE_ENCODING = pb.IMAGE_ENCODING_JPEG
BLEND_REQUEST_BYTES = 24 * 1024 * 1024
PIXEL_ENCODINGS = {"raw": pb.IMAGE_ENCODING_UNSPECIFIED, "png": pb.IMAGE_ENCODING_PNG}


class _AlignStream:
    """One AlignStream per video, reopened if its server goes away."""

    def __init__(
        self, stub: aligner_pb2_grpc.AlignerStub, options: aligner_pb2.AlignOptions, what: str
    ) -> None:
        self.stub = stub
        self.options = options
        self.what = what
        self._requests: queue.Queue[aligner_pb2.AlignRequest | None] | None = None
        self._responses: Iterator[aligner_pb2.AlignResponse] | None = None

    def _open(self) -> None:
        self.close()
        requests: queue.Queue[aligner_pb2.AlignRequest | None] = queue.Queue()
        self._requests = requests
        self._responses = self.stub.AlignStream(iter(requests.get, None), timeout=24 * 3600)

    def call(self, request: aligner_pb2.AlignRequest) -> aligner_pb2.AlignResponse:
        def attempt() -> aligner_pb2.AlignResponse:
            if self._responses is None:
                self._open()
            assert self._requests is not None and self._responses is not None
            self._requests.put(request)
            try:
                return next(self._responses)
            except grpc.RpcError:
                self._responses = None  # reopened on the next attempt
                raise

        return with_retries(attempt, self.what)

    def close(self) -> None:
        if self._requests is not None:
            self._requests.put(None)
        self._requests = None
        self._responses = None


class _RemoteAlign:
    def __init__(self, stages: RemoteStages, options: AlignOptions) -> None:
        self.stages = stages
        self.options = options
        self.stream = _AlignStream(
            stages.aligner,
            align_options_message(options),
            stages.named("aligner"),
        )

    def _region_message(self, image: np.ndarray) -> pb.Image:
        """A face region as JPEG: intensity only (all the landmark predictor
        reads) unless the aligner is to cut crops from it."""
        if not self.options.with_crop:
            image = grey(image)
        return wire.image_message(np.ascontiguousarray(image), MEASURE_ENCODING, lossy_grey=True)

    def align(self, regions: Sequence[RegionInput]) -> list[AlignedFace]:
        if not regions:
            return []
        request = aligner_pb2.AlignRequest(
            options=self.stream.options,
            faces=[region_message(r, self._region_message(r.image)) for r in regions],
        )
        response = self.stream.call(request)
        return [
            aligned_face(face, region) for region, face in zip(regions, response.faces, strict=True)
        ]


class RemoteStages:
    """Every stage over gRPC at configured addresses."""

    takes_decoded_frames = False  # the encoder decodes the source itself
    detects_in_colour = False  # it asks the detector for HOG

    def __init__(
        self,
        addresses: StageAddresses,
        pixel_encoding: str = "raw",
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """``credentials``: the service certificate the stage servers ask
        for (mutual TLS); None for servers that serve without it."""
        check_pixel_encoding(pixel_encoding)
        self.addresses = addresses
        self.channels = {
            name: channel(getattr(addresses, name), credentials)
            for name in ("detector", "aligner", "swapper", "blender", "encoder")
        }
        self.bytes_sent = 0  # both ways, every stage
        self._lock = threading.Lock()
        self.counted = {
            name: CountingChannel(ch, self._count) for name, ch in self.channels.items()
        }
        self.detector = detector_pb2_grpc.DetectorStub(self.counted["detector"])
        self.aligner = aligner_pb2_grpc.AlignerStub(self.counted["aligner"])
        self.swapper = swapper_pb2_grpc.SwapperStub(self.counted["swapper"])
        self.blender = blender_pb2_grpc.BlenderStub(self.counted["blender"])
        self.encoder = encoder_pb2_grpc.EncoderStub(self.counted["encoder"])
        self.pixel_encoding = PIXEL_ENCODINGS[pixel_encoding]

    def _count(self, size: int) -> None:
        with self._lock:
            self.bytes_sent += size

    def named(self, stage: str) -> str:
        """A stage as errors name it: which one, and where."""
        return f"{stage} at {getattr(self.addresses, stage)}"

    def _call(self, stage: str, method: Any, request: Any) -> Any:
        return with_retries(lambda: method(request, wait_for_ready=True), self.named(stage))

    def model(self, name: str) -> ModelEntry:
        return model_entry(
            self._call("swapper", self.swapper.GetModel, swapper_pb2.GetModelRequest(name=name))
        )

    def detect(self, inputs: Sequence[DetectInput], near: bool = False) -> list[list[Scored]]:
        if not inputs:  # servers refuse empty batches; nothing to ask
            return []
        request = detector_pb2.DetectRequest()
        if near:  # regions already scaled by near_region: no resizing there
            request.options.CopyFrom(detect_options_message(NEAR_CONFIG))
        for item in inputs:
            height, width = item.image.shape[:2]
            source = item.source_size or (width, height)
            scale = 1.0 if near else min(1.0, DETECT_SIDE / max(width, height))
            # The default detector (HOG) reads intensity only.
            image = grey(item.image)
            if scale < 1.0:
                image = cv2.resize(
                    image,
                    (round(width * scale), round(height * scale)),
                    interpolation=cv2.INTER_AREA,
                )
            request.frames.append(
                detector_pb2.DetectFrame(
                    frame=pb.FrameRef(index=item.index),
                    image=wire.image_message(image, MEASURE_ENCODING, lossy_grey=True),
                    source_size=pb.Size(width=source[0], height=source[1]),
                    origin=pb.Point(x=item.origin[0], y=item.origin[1]),
                )
            )
        response = self._call("detector", self.detector.Detect, request)
        return [scored_boxes(frame.faces) for frame in response.frames]

    def align_session(self, options: AlignOptions) -> _RemoteAlign:
        return _RemoteAlign(self, options)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        if not len(chips):
            return np.zeros((0, 128), np.float32)
        request = aligner_pb2.EmbedRequest(
            chips=[wire.image_message(np.ascontiguousarray(c[..., ::-1])) for c in chips]
        )
        response = self._call("aligner", self.aligner.Embed, request)
        return np.array([list(e.values) for e in response.embeddings], np.float32).reshape(-1, 128)

    def swap(
        self, model: str, faces: np.ndarray, mask: str = "mask"
    ) -> tuple[np.ndarray, np.ndarray]:
        request = swapper_pb2.SwapRequest(
            model=model,
            faces=[wire.image_message(f) for f in faces],
            mask=swap_mask_message(mask),
        )
        response = self._call("swapper", self.swapper.Swap, request)
        swapped = np.stack([wire.decode_image_message(f.face) for f in response.faces])
        masks = np.stack([wire.decode_image_message(f.mask) for f in response.faces])
        return swapped, masks[..., None]

    def blend(self, items: Sequence[BlendItem], options: BlendOptions) -> list[Patch]:
        # Raw pixels are large: requests stay well under the servers' 64 MiB.
        patches: list[Patch] = []
        batch: list[BlendItem] = []
        size = 0
        for item in items:
            # The patch out (BGRA), and the ROI in if it is sent.
            item_bytes = (4 if item.roi is None else 7) * item.size[0] * item.size[1]
            if batch and size + item_bytes > BLEND_REQUEST_BYTES:
                patches += self._blend(batch, options)
                batch, size = [], 0
            batch.append(item)
            size += item_bytes
        return patches + (self._blend(batch, options) if batch else [])

    def _blend(self, items: Sequence[BlendItem], options: BlendOptions) -> list[Patch]:
        request = blender_pb2.BlendRequest(
            options=blend_options_message(options),
            items=[blend_item_message(item, self.pixel_encoding) for item in items],
        )
        request.options.output_encoding = self.pixel_encoding
        response = self._call("blender", self.blender.Blend, request)
        return [patch(p) for p in response.patches]

    def encode(
        self,
        source: str | os.PathLike[str],
        output: str | os.PathLike[str],
        patches: Iterable[FramePatches],
        options: EncodeOptions,
        model: str,
    ) -> EncodeSummary:
        def requests() -> Iterator[encoder_pb2.EncodeRequest]:
            start = encoder_pb2.EncodeRequest(
                start=encoder_pb2.EncodeStart(
                    source_uri=Path(source).absolute().as_uri(),
                    output_uri=Path(output).absolute().as_uri(),
                    model=model,
                    options=encode_options_message(options),
                )
            )
            yield start
            for item in patches:
                yield encoder_pb2.EncodeRequest(
                    frame=frame_patches_message(item, self.pixel_encoding)
                )

        failure: list[BaseException] = []

        def guarded() -> Iterator[encoder_pb2.EncodeRequest]:
            # gRPC reports a failing request iterator only as "Exception
            # iterating requests": keep the real error to raise it instead.
            try:
                yield from requests()
            except BaseException as exc:
                failure.append(exc)
                raise

        try:
            response = self.encoder.Encode(guarded(), timeout=24 * 3600)
        except grpc.RpcError as error:
            if failure:
                raise failure[0] from None
            raise error_for(error, self.named("encoder")) from None
        summary = EncodeSummary(Path(output), frames=response.frames)
        summary.bytes = response.bytes
        return summary

    def close(self) -> None:
        for ch in self.channels.values():
            ch.close()

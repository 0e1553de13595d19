"""The stages as gRPC services: the distributed implementation of
:class:`swapline.pipeline.Stages`.

Unary calls carry deadlines and are retried on UNAVAILABLE through the
channel's service config, so a stage server that restarts mid-job costs a
retry, not the job. The aligner stream, which holds a video's tracking
state, is reopened when its server goes away.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import grpc
import numpy as np

from swapline import wire
from swapline.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SwaplineError,
)
from swapline.media import grey
from swapline.services.aligner import FACE_TYPE_MESSAGES
from swapline.services.blender import blend_options_message
from swapline.services.encoder import encode_options_message
from swapline.stages.align import AlignedCrop, AlignedFace, AlignOptions, RegionInput
from swapline.stages.blend import BlendOptions
from swapline.stages.detect import NEAR_CONFIG, DetectInput, Scored
from swapline.stages.encode import EncodeOptions, EncodeSummary, FramePatches, Patch
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

T = TypeVar("T")
MAX_MESSAGE = 256 * 1024 * 1024
DETECT_SIDE = 640  # the detector downscales to this anyway: send no more
# What crosses the wire: JPEG where a stage only measures (detection,
# landmarks). Pixels that end up in the output stay lossless: raw by default
# (PNG's compression cost more CPU than every other stage together and
# halved distributed throughput, while raw crops still add up to less than
# one raw frame per frame), PNG where bandwidth is scarcer than CPU.
MEASURE_ENCODING = pb.IMAGE_ENCODING_JPEG
BLEND_REQUEST_BYTES = 24 * 1024 * 1024
PIXEL_ENCODINGS = {"raw": pb.IMAGE_ENCODING_UNSPECIFIED, "png": pb.IMAGE_ENCODING_PNG}


def pixel_encoding(env: dict[str, str] | None = None) -> pb.ImageEncoding:
    """SWAPLINE_PIXEL_ENCODING: raw (default) or png."""
    name = (env if env is not None else os.environ).get("SWAPLINE_PIXEL_ENCODING", "raw")
    if name not in PIXEL_ENCODINGS:
        raise InvalidInputError(f"SWAPLINE_PIXEL_ENCODING must be raw or png, got {name!r}")
    return PIXEL_ENCODINGS[name]


def service_config(timeout_s: float = 120.0) -> str:
    retry = {
        "maxAttempts": 5,
        "initialBackoff": "0.25s",
        "maxBackoff": "4s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [
                        {"service": "swapline.v1.Detector"},
                        {"service": "swapline.v1.Aligner", "method": "Align"},
                        {"service": "swapline.v1.Swapper"},
                        {"service": "swapline.v1.Blender"},
                    ],
                    "timeout": f"{timeout_s:.0f}s",
                    "waitForReady": True,
                    "retryPolicy": retry,
                }
            ],
        }
    )


def channel(address: str) -> grpc.Channel:
    """A client channel with retries, round-robin over every address that
    ``dns:///`` resolves (new pods get traffic after a scale-up)."""
    return grpc.insecure_channel(
        address,
        options=[
            ("grpc.service_config", service_config()),
            ("grpc.enable_retries", 1),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.keepalive_time_ms", 30_000),
        ],
    )


def domain_error(error: grpc.RpcError) -> Exception:
    """The domain error a stage's status code stands for."""
    code, details = error.code(), error.details() or str(error)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInputError(details)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFoundError(details)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDeniedError(details)
    return SwaplineError(f"stage call failed: {code.name}: {details}")


RETRY_BUDGET_S = 60.0


def with_retries(call: Callable[[], T], budget_s: float = RETRY_BUDGET_S) -> T:
    """Runs ``call``, retrying UNAVAILABLE (a stage server restarting, a pod
    being replaced) with exponential backoff for up to ``budget_s`` seconds;
    other errors become domain errors at once."""
    deadline = time.monotonic() + budget_s
    delay = 0.2
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise domain_error(error) from None
        time.sleep(delay)
        delay = min(delay * 2, 3.0)


class _CountingChannel:
    """A channel whose calls report the bytes they send and receive, as
    serialized for the wire (protobuf's ByteSize() would serialize large
    messages a second time)."""

    def __init__(self, channel: grpc.Channel, count: Callable[[int], None]) -> None:
        self._channel = channel
        self._count = count
        self.unary_unary = self._counted(channel.unary_unary)
        self.unary_stream = self._counted(channel.unary_stream)
        self.stream_unary = self._counted(channel.stream_unary)
        self.stream_stream = self._counted(channel.stream_stream)

    def _counted(self, factory: Callable[..., Any]) -> Callable[..., Any]:
        count = self._count

        def make(
            method: str,
            request_serializer: Callable[[Any], bytes] | None = None,
            response_deserializer: Callable[[bytes], Any] | None = None,
            **kwargs: Any,
        ) -> Any:
            def serialize(message: Any) -> bytes:
                data = request_serializer(message) if request_serializer else message
                count(len(data))
                return data

            def deserialize(data: bytes) -> Any:
                count(len(data))
                return response_deserializer(data) if response_deserializer else data

            return factory(
                method, request_serializer=serialize, response_deserializer=deserialize, **kwargs
            )

        return make

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)


@dataclass(frozen=True)
class StageAddresses:
    detector: str
    aligner: str
    swapper: str
    blender: str
    encoder: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StageAddresses | None:
        env = dict(os.environ if env is None else env)
        names = ("detector", "aligner", "swapper", "blender", "encoder")
        values = {n: env.get(f"SWAPLINE_{n.upper()}_ADDR", "") for n in names}
        if not any(values.values()):
            return None
        missing = [n for n, v in values.items() if not v]
        if missing:
            raise ValueError(f"distributed mode needs every stage address; missing {missing}")
        return cls(**values)


class _AlignStream:
    """One AlignStream per video, reopened if its server goes away."""

    def __init__(self, stub: aligner_pb2_grpc.AlignerStub, options: aligner_pb2.AlignOptions):
        self.stub = stub
        self.options = options
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

        return with_retries(attempt)

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
            aligner_pb2_grpc.AlignerStub(stages.counted["aligner"]),
            aligner_pb2.AlignOptions(
                size=options.size,
                face_type=FACE_TYPE_MESSAGES[options.face_type],
                smoothing=options.smoothing,
                skip_crop=not options.with_crop,
                skip_mask=not options.with_mask,
            ),
        )

    def _region_message(self, image: np.ndarray) -> pb.Image:
        """A face region as JPEG: intensity only (all the landmark predictor
        reads) unless the aligner is to cut crops from it."""
        if not self.options.with_crop:
            image = grey(image)
        return wire.image_message(np.ascontiguousarray(image), MEASURE_ENCODING, lossy_grey=True)

    def align(self, regions: Sequence[RegionInput]) -> list[AlignedFace]:
        request = aligner_pb2.AlignRequest(
            options=self.stream.options,
            faces=[
                pb.FaceRegion(
                    frame=pb.FrameRef(index=r.frame_index),
                    face_index=r.face_index,
                    image=self._region_message(r.image),
                    origin=pb.Point(x=r.origin[0], y=r.origin[1]),
                    box=wire.box_message(r.box),
                    score=r.score,
                )
                for r in regions
            ],
        )
        response = self.stream.call(request)
        out = []
        for region, face in zip(regions, response.faces, strict=True):
            landmarks = wire.landmarks_array(face.landmarks)
            out.append(
                AlignedFace(
                    frame_index=region.frame_index,
                    face_index=region.face_index,
                    track_id=face.track_id,
                    landmarks=landmarks,
                    raw_landmarks=landmarks,
                    aligned=AlignedCrop(
                        crop=(
                            wire.decode_image_message(face.crop) if face.HasField("crop") else None
                        ),
                        mask=(
                            wire.decode_image_message(face.mask) if face.HasField("mask") else None
                        ),
                        frame_to_crop=wire.affine_array(face.frame_to_crop),
                        crop_to_frame=wire.affine_array(face.crop_to_frame),
                        crop_landmarks=wire.landmarks_array(face.crop_landmarks),
                    ),
                    box=region.box,
                    score=region.score,
                    embedding=None,
                )
            )
        return out


class RemoteStages:
    """Every stage over gRPC at configured addresses."""

    takes_decoded_frames = False  # the encoder decodes the source itself
    detects_in_colour = False  # it asks the detector for HOG

    def __init__(self, addresses: StageAddresses) -> None:
        self.addresses = addresses
        self.channels = {
            name: channel(getattr(addresses, name))
            for name in ("detector", "aligner", "swapper", "blender", "encoder")
        }
        self.bytes_sent = 0  # both ways, every stage
        self._lock = threading.Lock()
        self.counted = {
            name: _CountingChannel(ch, self._count) for name, ch in self.channels.items()
        }
        self.detector = detector_pb2_grpc.DetectorStub(self.counted["detector"])
        self.swapper = swapper_pb2_grpc.SwapperStub(self.counted["swapper"])
        self.blender = blender_pb2_grpc.BlenderStub(self.counted["blender"])
        self.encoder = encoder_pb2_grpc.EncoderStub(self.counted["encoder"])
        self.pixel_encoding = pixel_encoding()

    def _count(self, size: int) -> None:
        with self._lock:
            self.bytes_sent += size

    def _call(self, method: Any, request: Any) -> Any:
        return with_retries(lambda: method(request, wait_for_ready=True))

    def model(self, name: str) -> ModelEntry:
        info = self._call(self.swapper.GetModel, swapper_pb2.GetModelRequest(name=name))
        face_type = "full" if info.face_type == pb.FACE_TYPE_FULL else "whole"
        return ModelEntry(name, Path(name), {"resolution": info.resolution, "face_type": face_type})

    def detect(self, inputs: Sequence[DetectInput], near: bool = False) -> list[list[Scored]]:
        request = detector_pb2.DetectRequest()
        if near:  # regions already scaled by near_region: no resizing there
            request.options.max_side = NEAR_CONFIG.max_side
            request.options.upsample = 0
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
        response = self._call(self.detector.Detect, request)
        return [
            [(f.box.left, f.box.top, f.box.right, f.box.bottom, f.score) for f in frame.faces]
            for frame in response.frames
        ]

    def align_session(self, options: AlignOptions) -> _RemoteAlign:
        return _RemoteAlign(self, options)

    def swap(self, model: str, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        request = swapper_pb2.SwapRequest(model=model, faces=[wire.image_message(f) for f in faces])
        response = self._call(self.swapper.Swap, request)
        swapped = np.stack([wire.decode_image_message(f.face) for f in response.faces])
        masks = np.stack([wire.decode_image_message(f.mask) for f in response.faces])
        return swapped, masks[..., None]

    def blend(self, items: Sequence[Any], options: BlendOptions) -> list[Patch]:
        # Raw pixels are large: requests stay well under the servers' 64 MiB.
        patches: list[Patch] = []
        batch: list[Any] = []
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

    def _blend(self, items: Sequence[Any], options: BlendOptions) -> list[Patch]:
        request = blender_pb2.BlendRequest(options=blend_options_message(options))
        request.options.output_encoding = self.pixel_encoding
        for item in items:
            # Only seamless cloning needs the frame's pixels; colour transfer
            # matches the original face's crop (a fraction of the bytes).
            roi = (
                pb.Image()
                if item.roi is None
                else wire.image_message(np.ascontiguousarray(item.roi), self.pixel_encoding)
            )
            request.items.append(
                blender_pb2.BlendItem(
                    region=pb.FaceRegion(
                        frame=pb.FrameRef(index=item.frame_index),
                        face_index=item.face_index,
                        image=roi,
                        origin=pb.Point(x=item.origin[0], y=item.origin[1]),
                    ),
                    region_size=pb.Size(width=item.size[0], height=item.size[1]),
                    original_face=wire.image_message(item.original),
                    swapped_face=wire.image_message(item.swapped),
                    swapped_mask=wire.image_message(item.swapped_mask),
                    hull_mask=(
                        wire.image_message(item.hull_mask)
                        if item.hull_mask is not None
                        else pb.Image()
                    ),
                    crop_to_frame=wire.affine_message(item.crop_to_frame),
                )
            )
        response = self._call(self.blender.Blend, request)
        return [
            Patch(
                (round(p.origin.x), round(p.origin.y)),
                wire.decode_image_message(p.image, keep_alpha=True),
            )
            for p in response.patches
        ]

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
                message = encoder_pb2.EncodeRequest(
                    frame=encoder_pb2.FramePatches(
                        frame=pb.FrameRef(index=item.index),
                        patches=[
                            blender_pb2.Patch(
                                image=wire.image_message(p.image, self.pixel_encoding),
                                origin=pb.Point(x=p.origin[0], y=p.origin[1]),
                            )
                            for p in item.patches
                        ],
                    )
                )
                yield message

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
            raise domain_error(error) from None
        summary = EncodeSummary(Path(output), frames=response.frames)
        summary.bytes = response.bytes
        return summary

    def close(self) -> None:
        for ch in self.channels.values():
            ch.close()

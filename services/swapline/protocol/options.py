"""Each stage's options and enumerations, message ⇄ domain type, both
directions side by side. A message's unset fields take the domain
defaults; every parsed option set is validated (INVALID_ARGUMENT)."""

from __future__ import annotations

from collections.abc import Iterable

from swapline.errors import InvalidInputError
from swapline.stages.align import AlignOptions, FaceType
from swapline.stages.blend import DEFAULT_MASKS, BlendOptions, ColorTransfer, MaskType
from swapline.stages.detect import DetectorConfig, DetectorModel
from swapline.stages.encode import EncodeOptions
from swapline.stages.model_contract import MASK_OUTPUTS
from swapline.stages.track import DEFAULT_SMOOTHING
from swapline.v1 import aligner_pb2, blender_pb2, detector_pb2, encoder_pb2, swapper_pb2
from swapline.v1 import common_pb2 as pb

_FACE_TYPES = {FaceType.FULL: pb.FACE_TYPE_FULL, FaceType.WHOLE: pb.FACE_TYPE_WHOLE}
_DETECTOR_MODELS = {
    DetectorModel.HOG: detector_pb2.DETECTOR_MODEL_HOG,
    DetectorModel.CNN: detector_pb2.DETECTOR_MODEL_CNN,
}
_COLOR_TRANSFERS = {
    ColorTransfer.NONE: blender_pb2.COLOR_TRANSFER_NONE,
    ColorTransfer.RCT: blender_pb2.COLOR_TRANSFER_RCT,
    ColorTransfer.LCT: blender_pb2.COLOR_TRANSFER_LCT,
    ColorTransfer.HIST: blender_pb2.COLOR_TRANSFER_HIST,
}
_MASK_TYPES = {
    MaskType.BOX: blender_pb2.MASK_TYPE_BOX,
    MaskType.REGION: blender_pb2.MASK_TYPE_REGION,
    MaskType.OCCLUSION: blender_pb2.MASK_TYPE_OCCLUSION,
}
# The swap model output each SwapMask value asks for.
_SWAP_MASKS = {
    swapper_pb2.SWAP_MASK_UNSPECIFIED: MASK_OUTPUTS[0],
    swapper_pb2.SWAP_MASK_REGION: MASK_OUTPUTS[1],
    swapper_pb2.SWAP_MASK_VISIBLE: MASK_OUTPUTS[2],
}
_CODECS = {
    "h264": encoder_pb2.VIDEO_CODEC_H264,
    "h265": encoder_pb2.VIDEO_CODEC_H265,
    "vp9": encoder_pb2.VIDEO_CODEC_VP9,
    "av1": encoder_pb2.VIDEO_CODEC_AV1,
}


def _reverse(mapping: dict) -> dict:
    return {message: domain for domain, message in mapping.items()}


_FACE_TYPE_OF = _reverse(_FACE_TYPES)
_DETECTOR_MODEL_OF = _reverse(_DETECTOR_MODELS)
_COLOR_TRANSFER_OF = _reverse(_COLOR_TRANSFERS)
_CODEC_OF = _reverse(_CODECS)
_MASK_TYPE_OF = _reverse(_MASK_TYPES)
_SWAP_MASK_OF = _reverse(_SWAP_MASKS)


def swap_mask(message: swapper_pb2.SwapMask) -> str:
    """The swap model output a request's mask asks for."""
    if message not in _SWAP_MASKS:
        raise InvalidInputError(f"unknown mask kind {message}")
    return _SWAP_MASKS[message]


def swap_mask_message(output: str) -> swapper_pb2.SwapMask:
    return _SWAP_MASK_OF[output]


def _masks(values: Iterable[int]) -> tuple[MaskType, ...]:
    values = list(values)
    if any(v not in _MASK_TYPE_OF for v in values):
        raise InvalidInputError(f"unknown mask type in {values}")
    return tuple(_MASK_TYPE_OF[v] for v in values) or DEFAULT_MASKS


def face_type_message(face_type: FaceType | str) -> pb.FaceType:
    """The message value of a face type (a name that is none: UNSPECIFIED)."""
    try:
        return _FACE_TYPES[FaceType(face_type)]
    except ValueError:
        return pb.FACE_TYPE_UNSPECIFIED


def face_type(message: pb.FaceType, default: FaceType) -> FaceType:
    """The face type a message value names; UNSPECIFIED gives ``default``."""
    return _FACE_TYPE_OF.get(message, default)


def align_options(message: aligner_pb2.AlignOptions) -> AlignOptions:
    options = AlignOptions(
        size=message.size or 256,
        face_type=face_type(message.face_type, FaceType.FULL),
        smoothing=message.smoothing if message.HasField("smoothing") else DEFAULT_SMOOTHING,
        with_crop=not message.skip_crop,
        with_mask=not message.skip_mask,
        embeddings=message.embeddings,
    )
    options.validate()
    return options


def align_options_message(options: AlignOptions) -> aligner_pb2.AlignOptions:
    return aligner_pb2.AlignOptions(
        size=options.size,
        face_type=face_type_message(options.face_type),
        smoothing=options.smoothing,
        skip_crop=not options.with_crop,
        skip_mask=not options.with_mask,
        embeddings=options.embeddings,
    )


def detector_config(message: detector_pb2.DetectOptions) -> DetectorConfig:
    defaults = DetectorConfig()
    config = DetectorConfig(
        model=_DETECTOR_MODEL_OF.get(message.model, DetectorModel.HOG),
        max_side=message.max_side or defaults.max_side,
        upsample=message.upsample if message.HasField("upsample") else None,
        min_face_size=message.min_face_size,
        min_score=message.min_score,
    )
    config.validate()
    return config


def detect_options_message(config: DetectorConfig) -> detector_pb2.DetectOptions:
    message = detector_pb2.DetectOptions(
        model=_DETECTOR_MODELS[config.model],
        max_side=config.max_side,
        min_face_size=config.min_face_size,
        min_score=config.min_score,
    )
    if config.upsample is not None:
        message.upsample = config.upsample
    return message


def blend_options(message: blender_pb2.BlendOptions) -> BlendOptions:
    defaults = BlendOptions()
    options = BlendOptions(
        color_transfer=_COLOR_TRANSFER_OF.get(message.color_transfer, ColorTransfer.RCT),
        erode=message.erode if message.HasField("erode") else defaults.erode,
        feather=message.feather if message.HasField("feather") else defaults.feather,
        seamless_clone=message.seamless_clone,
        sharpen=message.sharpen,
        masks=_masks(message.masks),
    )
    options.validate()
    return options


def blend_options_message(options: BlendOptions) -> blender_pb2.BlendOptions:
    return blender_pb2.BlendOptions(
        color_transfer=_COLOR_TRANSFERS[options.color_transfer],
        erode=options.erode,
        feather=options.feather,
        seamless_clone=options.seamless_clone,
        sharpen=options.sharpen,
        masks=[_MASK_TYPES[m] for m in options.masks],
    )


def _codec_of(value: int) -> str:
    if value == encoder_pb2.VIDEO_CODEC_UNSPECIFIED:
        return "h264"
    if value not in _CODEC_OF:
        raise InvalidInputError(f"unknown video codec {value}")
    return _CODEC_OF[value]


def encode_options(message: encoder_pb2.EncodeOptions) -> EncodeOptions:
    options = EncodeOptions(
        codec=_codec_of(message.codec),
        crf=message.crf if message.HasField("crf") else None,
        preset=message.preset or None,
        pixel_format=message.pixel_format or "yuv420p",
        disclosure_label=message.disclosure_label,
        metadata=dict(message.metadata),
    )
    options.validate()
    return options


def encode_options_message(options: EncodeOptions) -> encoder_pb2.EncodeOptions:
    message = encoder_pb2.EncodeOptions(
        codec=_CODECS[options.codec],
        preset=options.preset or "",
        pixel_format=options.pixel_format,
        disclosure_label=options.disclosure_label,
        metadata=options.metadata,
    )
    if options.crf is not None:
        message.crf = options.crf
    return message

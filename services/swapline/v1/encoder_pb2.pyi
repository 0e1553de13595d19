from swapline.v1 import blender_pb2 as _blender_pb2
from swapline.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VideoCodec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VIDEO_CODEC_UNSPECIFIED: _ClassVar[VideoCodec]
    VIDEO_CODEC_H264: _ClassVar[VideoCodec]
    VIDEO_CODEC_H265: _ClassVar[VideoCodec]
    VIDEO_CODEC_VP9: _ClassVar[VideoCodec]
    VIDEO_CODEC_AV1: _ClassVar[VideoCodec]
VIDEO_CODEC_UNSPECIFIED: VideoCodec
VIDEO_CODEC_H264: VideoCodec
VIDEO_CODEC_H265: VideoCodec
VIDEO_CODEC_VP9: VideoCodec
VIDEO_CODEC_AV1: VideoCodec

class EncodeOptions(_message.Message):
    __slots__ = ("codec", "crf", "preset", "pixel_format", "disclosure_label", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODEC_FIELD_NUMBER: _ClassVar[int]
    CRF_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    PIXEL_FORMAT_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_LABEL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    codec: VideoCodec
    crf: int
    preset: str
    pixel_format: str
    disclosure_label: bool
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, codec: _Optional[_Union[VideoCodec, str]] = ..., crf: _Optional[int] = ..., preset: _Optional[str] = ..., pixel_format: _Optional[str] = ..., disclosure_label: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EncodeStart(_message.Message):
    __slots__ = ("source_uri", "output_uri", "model", "options")
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    source_uri: str
    output_uri: str
    model: str
    options: EncodeOptions
    def __init__(self, source_uri: _Optional[str] = ..., output_uri: _Optional[str] = ..., model: _Optional[str] = ..., options: _Optional[_Union[EncodeOptions, _Mapping]] = ...) -> None: ...

class FramePatches(_message.Message):
    __slots__ = ("frame", "patches")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    PATCHES_FIELD_NUMBER: _ClassVar[int]
    frame: _common_pb2.FrameRef
    patches: _containers.RepeatedCompositeFieldContainer[_blender_pb2.Patch]
    def __init__(self, frame: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., patches: _Optional[_Iterable[_Union[_blender_pb2.Patch, _Mapping]]] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("start", "frame")
    START_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    start: EncodeStart
    frame: FramePatches
    def __init__(self, start: _Optional[_Union[EncodeStart, _Mapping]] = ..., frame: _Optional[_Union[FramePatches, _Mapping]] = ...) -> None: ...

class EncodeResponse(_message.Message):
    __slots__ = ("output_uri", "frames", "bytes")
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    output_uri: str
    frames: int
    bytes: int
    def __init__(self, output_uri: _Optional[str] = ..., frames: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

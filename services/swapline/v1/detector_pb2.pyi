from swapline.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DetectorModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DETECTOR_MODEL_UNSPECIFIED: _ClassVar[DetectorModel]
    DETECTOR_MODEL_HOG: _ClassVar[DetectorModel]
    DETECTOR_MODEL_CNN: _ClassVar[DetectorModel]
DETECTOR_MODEL_UNSPECIFIED: DetectorModel
DETECTOR_MODEL_HOG: DetectorModel
DETECTOR_MODEL_CNN: DetectorModel

class DetectOptions(_message.Message):
    __slots__ = ("model", "max_side", "upsample", "min_face_size", "min_score")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    UPSAMPLE_FIELD_NUMBER: _ClassVar[int]
    MIN_FACE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    model: DetectorModel
    max_side: int
    upsample: int
    min_face_size: float
    min_score: float
    def __init__(self, model: _Optional[_Union[DetectorModel, str]] = ..., max_side: _Optional[int] = ..., upsample: _Optional[int] = ..., min_face_size: _Optional[float] = ..., min_score: _Optional[float] = ...) -> None: ...

class DetectFrame(_message.Message):
    __slots__ = ("frame", "image", "source_size", "origin")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    frame: _common_pb2.FrameRef
    image: _common_pb2.Image
    source_size: _common_pb2.Size
    origin: _common_pb2.Point
    def __init__(self, frame: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., source_size: _Optional[_Union[_common_pb2.Size, _Mapping]] = ..., origin: _Optional[_Union[_common_pb2.Point, _Mapping]] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("frames", "options")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[DetectFrame]
    options: DetectOptions
    def __init__(self, frames: _Optional[_Iterable[_Union[DetectFrame, _Mapping]]] = ..., options: _Optional[_Union[DetectOptions, _Mapping]] = ...) -> None: ...

class FrameFaces(_message.Message):
    __slots__ = ("frame", "faces")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    frame: _common_pb2.FrameRef
    faces: _containers.RepeatedCompositeFieldContainer[_common_pb2.Face]
    def __init__(self, frame: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., faces: _Optional[_Iterable[_Union[_common_pb2.Face, _Mapping]]] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameFaces]
    def __init__(self, frames: _Optional[_Iterable[_Union[FrameFaces, _Mapping]]] = ...) -> None: ...

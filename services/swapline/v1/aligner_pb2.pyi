from swapline.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmbedRequest(_message.Message):
    __slots__ = ("chips",)
    CHIPS_FIELD_NUMBER: _ClassVar[int]
    chips: _containers.RepeatedCompositeFieldContainer[_common_pb2.Image]
    def __init__(self, chips: _Optional[_Iterable[_Union[_common_pb2.Image, _Mapping]]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("embeddings",)
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    embeddings: _containers.RepeatedCompositeFieldContainer[_common_pb2.FaceEmbedding]
    def __init__(self, embeddings: _Optional[_Iterable[_Union[_common_pb2.FaceEmbedding, _Mapping]]] = ...) -> None: ...

class AlignOptions(_message.Message):
    __slots__ = ("size", "face_type", "smoothing", "skip_crop", "skip_mask", "embeddings", "crop_encoding")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SMOOTHING_FIELD_NUMBER: _ClassVar[int]
    SKIP_CROP_FIELD_NUMBER: _ClassVar[int]
    SKIP_MASK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    CROP_ENCODING_FIELD_NUMBER: _ClassVar[int]
    size: int
    face_type: _common_pb2.FaceType
    smoothing: float
    skip_crop: bool
    skip_mask: bool
    embeddings: bool
    crop_encoding: _common_pb2.ImageEncoding
    def __init__(self, size: _Optional[int] = ..., face_type: _Optional[_Union[_common_pb2.FaceType, str]] = ..., smoothing: _Optional[float] = ..., skip_crop: _Optional[bool] = ..., skip_mask: _Optional[bool] = ..., embeddings: _Optional[bool] = ..., crop_encoding: _Optional[_Union[_common_pb2.ImageEncoding, str]] = ...) -> None: ...

class AlignRequest(_message.Message):
    __slots__ = ("faces", "options")
    FACES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[_common_pb2.FaceRegion]
    options: AlignOptions
    def __init__(self, faces: _Optional[_Iterable[_Union[_common_pb2.FaceRegion, _Mapping]]] = ..., options: _Optional[_Union[AlignOptions, _Mapping]] = ...) -> None: ...

class AlignResponse(_message.Message):
    __slots__ = ("faces",)
    FACES_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[_common_pb2.AlignedFace]
    def __init__(self, faces: _Optional[_Iterable[_Union[_common_pb2.AlignedFace, _Mapping]]] = ...) -> None: ...

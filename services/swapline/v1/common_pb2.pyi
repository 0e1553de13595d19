from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PixelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIXEL_FORMAT_UNSPECIFIED: _ClassVar[PixelFormat]
    PIXEL_FORMAT_BGR8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_RGB8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_GRAY8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_BGRA8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_RGBA8: _ClassVar[PixelFormat]

class ImageEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_ENCODING_UNSPECIFIED: _ClassVar[ImageEncoding]
    IMAGE_ENCODING_PNG: _ClassVar[ImageEncoding]
    IMAGE_ENCODING_JPEG: _ClassVar[ImageEncoding]
    IMAGE_ENCODING_WEBP: _ClassVar[ImageEncoding]

class FaceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FACE_TYPE_UNSPECIFIED: _ClassVar[FaceType]
    FACE_TYPE_FULL: _ClassVar[FaceType]
    FACE_TYPE_WHOLE: _ClassVar[FaceType]
PIXEL_FORMAT_UNSPECIFIED: PixelFormat
PIXEL_FORMAT_BGR8: PixelFormat
PIXEL_FORMAT_RGB8: PixelFormat
PIXEL_FORMAT_GRAY8: PixelFormat
PIXEL_FORMAT_BGRA8: PixelFormat
PIXEL_FORMAT_RGBA8: PixelFormat
IMAGE_ENCODING_UNSPECIFIED: ImageEncoding
IMAGE_ENCODING_PNG: ImageEncoding
IMAGE_ENCODING_JPEG: ImageEncoding
IMAGE_ENCODING_WEBP: ImageEncoding
FACE_TYPE_UNSPECIFIED: FaceType
FACE_TYPE_FULL: FaceType
FACE_TYPE_WHOLE: FaceType

class EncodedImage(_message.Message):
    __slots__ = ("encoding", "data")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    encoding: ImageEncoding
    data: bytes
    def __init__(self, encoding: _Optional[_Union[ImageEncoding, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("width", "height", "pixel_format", "raw", "encoded")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PIXEL_FORMAT_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    pixel_format: PixelFormat
    raw: bytes
    encoded: EncodedImage
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., pixel_format: _Optional[_Union[PixelFormat, str]] = ..., raw: _Optional[bytes] = ..., encoded: _Optional[_Union[EncodedImage, _Mapping]] = ...) -> None: ...

class FaceEmbedding(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class Size(_message.Message):
    __slots__ = ("width", "height")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("left", "top", "right", "bottom")
    LEFT_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    BOTTOM_FIELD_NUMBER: _ClassVar[int]
    left: float
    top: float
    right: float
    bottom: float
    def __init__(self, left: _Optional[float] = ..., top: _Optional[float] = ..., right: _Optional[float] = ..., bottom: _Optional[float] = ...) -> None: ...

class Landmarks(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class Affine2x3(_message.Message):
    __slots__ = ("m00", "m01", "m02", "m10", "m11", "m12")
    M00_FIELD_NUMBER: _ClassVar[int]
    M01_FIELD_NUMBER: _ClassVar[int]
    M02_FIELD_NUMBER: _ClassVar[int]
    M10_FIELD_NUMBER: _ClassVar[int]
    M11_FIELD_NUMBER: _ClassVar[int]
    M12_FIELD_NUMBER: _ClassVar[int]
    m00: float
    m01: float
    m02: float
    m10: float
    m11: float
    m12: float
    def __init__(self, m00: _Optional[float] = ..., m01: _Optional[float] = ..., m02: _Optional[float] = ..., m10: _Optional[float] = ..., m11: _Optional[float] = ..., m12: _Optional[float] = ...) -> None: ...

class Rational(_message.Message):
    __slots__ = ("num", "den")
    NUM_FIELD_NUMBER: _ClassVar[int]
    DEN_FIELD_NUMBER: _ClassVar[int]
    num: int
    den: int
    def __init__(self, num: _Optional[int] = ..., den: _Optional[int] = ...) -> None: ...

class FrameRef(_message.Message):
    __slots__ = ("media_id", "index", "pts", "time_base")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PTS_FIELD_NUMBER: _ClassVar[int]
    TIME_BASE_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    index: int
    pts: int
    time_base: Rational
    def __init__(self, media_id: _Optional[str] = ..., index: _Optional[int] = ..., pts: _Optional[int] = ..., time_base: _Optional[_Union[Rational, _Mapping]] = ...) -> None: ...

class Face(_message.Message):
    __slots__ = ("box", "score", "face_index")
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FACE_INDEX_FIELD_NUMBER: _ClassVar[int]
    box: Box
    score: float
    face_index: int
    def __init__(self, box: _Optional[_Union[Box, _Mapping]] = ..., score: _Optional[float] = ..., face_index: _Optional[int] = ...) -> None: ...

class FaceRegion(_message.Message):
    __slots__ = ("frame", "face_index", "image", "origin", "box", "score", "frame_size")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    FACE_INDEX_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FRAME_SIZE_FIELD_NUMBER: _ClassVar[int]
    frame: FrameRef
    face_index: int
    image: Image
    origin: Point
    box: Box
    score: float
    frame_size: Size
    def __init__(self, frame: _Optional[_Union[FrameRef, _Mapping]] = ..., face_index: _Optional[int] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., origin: _Optional[_Union[Point, _Mapping]] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., score: _Optional[float] = ..., frame_size: _Optional[_Union[Size, _Mapping]] = ...) -> None: ...

class AlignedFace(_message.Message):
    __slots__ = ("frame", "face_index", "track_id", "face_type", "size", "crop", "mask", "frame_to_crop", "crop_to_frame", "landmarks", "crop_landmarks", "box", "score", "embedding")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    FACE_INDEX_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    FRAME_TO_CROP_FIELD_NUMBER: _ClassVar[int]
    CROP_TO_FRAME_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    CROP_LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    frame: FrameRef
    face_index: int
    track_id: int
    face_type: FaceType
    size: int
    crop: Image
    mask: Image
    frame_to_crop: Affine2x3
    crop_to_frame: Affine2x3
    landmarks: Landmarks
    crop_landmarks: Landmarks
    box: Box
    score: float
    embedding: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, frame: _Optional[_Union[FrameRef, _Mapping]] = ..., face_index: _Optional[int] = ..., track_id: _Optional[int] = ..., face_type: _Optional[_Union[FaceType, str]] = ..., size: _Optional[int] = ..., crop: _Optional[_Union[Image, _Mapping]] = ..., mask: _Optional[_Union[Image, _Mapping]] = ..., frame_to_crop: _Optional[_Union[Affine2x3, _Mapping]] = ..., crop_to_frame: _Optional[_Union[Affine2x3, _Mapping]] = ..., landmarks: _Optional[_Union[Landmarks, _Mapping]] = ..., crop_landmarks: _Optional[_Union[Landmarks, _Mapping]] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., score: _Optional[float] = ..., embedding: _Optional[_Iterable[float]] = ...) -> None: ...

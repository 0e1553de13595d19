from swapline.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ColorTransfer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLOR_TRANSFER_UNSPECIFIED: _ClassVar[ColorTransfer]
    COLOR_TRANSFER_NONE: _ClassVar[ColorTransfer]
    COLOR_TRANSFER_RCT: _ClassVar[ColorTransfer]
    COLOR_TRANSFER_LCT: _ClassVar[ColorTransfer]
    COLOR_TRANSFER_HIST: _ClassVar[ColorTransfer]

class MaskType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MASK_TYPE_UNSPECIFIED: _ClassVar[MaskType]
    MASK_TYPE_BOX: _ClassVar[MaskType]
    MASK_TYPE_REGION: _ClassVar[MaskType]
    MASK_TYPE_OCCLUSION: _ClassVar[MaskType]
COLOR_TRANSFER_UNSPECIFIED: ColorTransfer
COLOR_TRANSFER_NONE: ColorTransfer
COLOR_TRANSFER_RCT: ColorTransfer
COLOR_TRANSFER_LCT: ColorTransfer
COLOR_TRANSFER_HIST: ColorTransfer
MASK_TYPE_UNSPECIFIED: MaskType
MASK_TYPE_BOX: MaskType
MASK_TYPE_REGION: MaskType
MASK_TYPE_OCCLUSION: MaskType

class BlendOptions(_message.Message):
    __slots__ = ("color_transfer", "erode", "feather", "seamless_clone", "sharpen", "output_encoding", "masks")
    COLOR_TRANSFER_FIELD_NUMBER: _ClassVar[int]
    ERODE_FIELD_NUMBER: _ClassVar[int]
    FEATHER_FIELD_NUMBER: _ClassVar[int]
    SEAMLESS_CLONE_FIELD_NUMBER: _ClassVar[int]
    SHARPEN_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ENCODING_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    color_transfer: ColorTransfer
    erode: float
    feather: float
    seamless_clone: bool
    sharpen: float
    output_encoding: _common_pb2.ImageEncoding
    masks: _containers.RepeatedScalarFieldContainer[MaskType]
    def __init__(self, color_transfer: _Optional[_Union[ColorTransfer, str]] = ..., erode: _Optional[float] = ..., feather: _Optional[float] = ..., seamless_clone: _Optional[bool] = ..., sharpen: _Optional[float] = ..., output_encoding: _Optional[_Union[_common_pb2.ImageEncoding, str]] = ..., masks: _Optional[_Iterable[_Union[MaskType, str]]] = ...) -> None: ...

class BlendItem(_message.Message):
    __slots__ = ("region", "swapped_face", "swapped_mask", "hull_mask", "crop_to_frame", "original_face", "region_size")
    REGION_FIELD_NUMBER: _ClassVar[int]
    SWAPPED_FACE_FIELD_NUMBER: _ClassVar[int]
    SWAPPED_MASK_FIELD_NUMBER: _ClassVar[int]
    HULL_MASK_FIELD_NUMBER: _ClassVar[int]
    CROP_TO_FRAME_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FACE_FIELD_NUMBER: _ClassVar[int]
    REGION_SIZE_FIELD_NUMBER: _ClassVar[int]
    region: _common_pb2.FaceRegion
    swapped_face: _common_pb2.Image
    swapped_mask: _common_pb2.Image
    hull_mask: _common_pb2.Image
    crop_to_frame: _common_pb2.Affine2x3
    original_face: _common_pb2.Image
    region_size: _common_pb2.Size
    def __init__(self, region: _Optional[_Union[_common_pb2.FaceRegion, _Mapping]] = ..., swapped_face: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., swapped_mask: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., hull_mask: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., crop_to_frame: _Optional[_Union[_common_pb2.Affine2x3, _Mapping]] = ..., original_face: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., region_size: _Optional[_Union[_common_pb2.Size, _Mapping]] = ...) -> None: ...

class BlendRequest(_message.Message):
    __slots__ = ("items", "options")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[BlendItem]
    options: BlendOptions
    def __init__(self, items: _Optional[_Iterable[_Union[BlendItem, _Mapping]]] = ..., options: _Optional[_Union[BlendOptions, _Mapping]] = ...) -> None: ...

class Patch(_message.Message):
    __slots__ = ("frame", "face_index", "image", "origin")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    FACE_INDEX_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    frame: _common_pb2.FrameRef
    face_index: int
    image: _common_pb2.Image
    origin: _common_pb2.Point
    def __init__(self, frame: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., face_index: _Optional[int] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., origin: _Optional[_Union[_common_pb2.Point, _Mapping]] = ...) -> None: ...

class BlendResponse(_message.Message):
    __slots__ = ("patches",)
    PATCHES_FIELD_NUMBER: _ClassVar[int]
    patches: _containers.RepeatedCompositeFieldContainer[Patch]
    def __init__(self, patches: _Optional[_Iterable[_Union[Patch, _Mapping]]] = ...) -> None: ...

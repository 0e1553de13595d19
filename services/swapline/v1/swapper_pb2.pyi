from swapline.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SwapMask(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWAP_MASK_UNSPECIFIED: _ClassVar[SwapMask]
    SWAP_MASK_REGION: _ClassVar[SwapMask]
    SWAP_MASK_VISIBLE: _ClassVar[SwapMask]
SWAP_MASK_UNSPECIFIED: SwapMask
SWAP_MASK_REGION: SwapMask
SWAP_MASK_VISIBLE: SwapMask

class SwapRequest(_message.Message):
    __slots__ = ("model", "faces", "output_encoding", "mask")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ENCODING_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    model: str
    faces: _containers.RepeatedCompositeFieldContainer[_common_pb2.Image]
    output_encoding: _common_pb2.ImageEncoding
    mask: SwapMask
    def __init__(self, model: _Optional[str] = ..., faces: _Optional[_Iterable[_Union[_common_pb2.Image, _Mapping]]] = ..., output_encoding: _Optional[_Union[_common_pb2.ImageEncoding, str]] = ..., mask: _Optional[_Union[SwapMask, str]] = ...) -> None: ...

class SwappedFace(_message.Message):
    __slots__ = ("face", "mask")
    FACE_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    face: _common_pb2.Image
    mask: _common_pb2.Image
    def __init__(self, face: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., mask: _Optional[_Union[_common_pb2.Image, _Mapping]] = ...) -> None: ...

class SwapResponse(_message.Message):
    __slots__ = ("faces",)
    FACES_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[SwappedFace]
    def __init__(self, faces: _Optional[_Iterable[_Union[SwappedFace, _Mapping]]] = ...) -> None: ...

class Identity(_message.Message):
    __slots__ = ("role", "name", "consent_reference", "embedding")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONSENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    role: str
    name: str
    consent_reference: str
    embedding: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, role: _Optional[str] = ..., name: _Optional[str] = ..., consent_reference: _Optional[str] = ..., embedding: _Optional[_Iterable[float]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "ready", "resolution", "face_type", "architecture", "identities", "training_steps", "final_loss", "created", "precision", "extra")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    FACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    TRAINING_STEPS_FIELD_NUMBER: _ClassVar[int]
    FINAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    ready: bool
    resolution: int
    face_type: _common_pb2.FaceType
    architecture: str
    identities: _containers.RepeatedCompositeFieldContainer[Identity]
    training_steps: int
    final_loss: float
    created: str
    precision: str
    extra: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., ready: _Optional[bool] = ..., resolution: _Optional[int] = ..., face_type: _Optional[_Union[_common_pb2.FaceType, str]] = ..., architecture: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[Identity, _Mapping]]] = ..., training_steps: _Optional[int] = ..., final_loss: _Optional[float] = ..., created: _Optional[str] = ..., precision: _Optional[str] = ..., extra: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class LoadModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

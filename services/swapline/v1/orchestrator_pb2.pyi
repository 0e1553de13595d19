import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from swapline.v1 import blender_pb2 as _blender_pb2
from swapline.v1 import common_pb2 as _common_pb2
from swapline.v1 import encoder_pb2 as _encoder_pb2
from swapline.v1 import swapper_pb2 as _swapper_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

class JobSpec(_message.Message):
    __slots__ = ("model", "input_uri", "input_name", "blend", "encode", "face_type", "max_faces_per_frame", "detect_every", "selection")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_URI_FIELD_NUMBER: _ClassVar[int]
    INPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    BLEND_FIELD_NUMBER: _ClassVar[int]
    ENCODE_FIELD_NUMBER: _ClassVar[int]
    FACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_FACES_PER_FRAME_FIELD_NUMBER: _ClassVar[int]
    DETECT_EVERY_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_uri: str
    input_name: str
    blend: _blender_pb2.BlendOptions
    encode: _encoder_pb2.EncodeOptions
    face_type: _common_pb2.FaceType
    max_faces_per_frame: int
    detect_every: int
    selection: FaceSelection
    def __init__(self, model: _Optional[str] = ..., input_uri: _Optional[str] = ..., input_name: _Optional[str] = ..., blend: _Optional[_Union[_blender_pb2.BlendOptions, _Mapping]] = ..., encode: _Optional[_Union[_encoder_pb2.EncodeOptions, _Mapping]] = ..., face_type: _Optional[_Union[_common_pb2.FaceType, str]] = ..., max_faces_per_frame: _Optional[int] = ..., detect_every: _Optional[int] = ..., selection: _Optional[_Union[FaceSelection, _Mapping]] = ...) -> None: ...

class FaceSelection(_message.Message):
    __slots__ = ("mode", "targets", "max_faces", "min_face_size", "order", "max_distance")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MODE_UNSPECIFIED: _ClassVar[FaceSelection.Mode]
        MODE_ALL: _ClassVar[FaceSelection.Mode]
        MODE_LARGEST: _ClassVar[FaceSelection.Mode]
        MODE_REFERENCE: _ClassVar[FaceSelection.Mode]
    MODE_UNSPECIFIED: FaceSelection.Mode
    MODE_ALL: FaceSelection.Mode
    MODE_LARGEST: FaceSelection.Mode
    MODE_REFERENCE: FaceSelection.Mode
    class Order(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ORDER_UNSPECIFIED: _ClassVar[FaceSelection.Order]
        ORDER_LARGE_SMALL: _ClassVar[FaceSelection.Order]
        ORDER_SMALL_LARGE: _ClassVar[FaceSelection.Order]
        ORDER_LEFT_RIGHT: _ClassVar[FaceSelection.Order]
        ORDER_RIGHT_LEFT: _ClassVar[FaceSelection.Order]
        ORDER_TOP_BOTTOM: _ClassVar[FaceSelection.Order]
        ORDER_BOTTOM_TOP: _ClassVar[FaceSelection.Order]
    ORDER_UNSPECIFIED: FaceSelection.Order
    ORDER_LARGE_SMALL: FaceSelection.Order
    ORDER_SMALL_LARGE: FaceSelection.Order
    ORDER_LEFT_RIGHT: FaceSelection.Order
    ORDER_RIGHT_LEFT: FaceSelection.Order
    ORDER_TOP_BOTTOM: FaceSelection.Order
    ORDER_BOTTOM_TOP: FaceSelection.Order
    MODE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    MAX_FACES_FIELD_NUMBER: _ClassVar[int]
    MIN_FACE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    mode: FaceSelection.Mode
    targets: _containers.RepeatedCompositeFieldContainer[FaceTarget]
    max_faces: int
    min_face_size: int
    order: FaceSelection.Order
    max_distance: float
    def __init__(self, mode: _Optional[_Union[FaceSelection.Mode, str]] = ..., targets: _Optional[_Iterable[_Union[FaceTarget, _Mapping]]] = ..., max_faces: _Optional[int] = ..., min_face_size: _Optional[int] = ..., order: _Optional[_Union[FaceSelection.Order, str]] = ..., max_distance: _Optional[float] = ...) -> None: ...

class FaceTarget(_message.Message):
    __slots__ = ("model", "reference_images", "reference_embeddings")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_IMAGES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    model: str
    reference_images: _containers.RepeatedCompositeFieldContainer[_common_pb2.EncodedImage]
    reference_embeddings: _containers.RepeatedCompositeFieldContainer[_common_pb2.FaceEmbedding]
    def __init__(self, model: _Optional[str] = ..., reference_images: _Optional[_Iterable[_Union[_common_pb2.EncodedImage, _Mapping]]] = ..., reference_embeddings: _Optional[_Iterable[_Union[_common_pb2.FaceEmbedding, _Mapping]]] = ...) -> None: ...

class DataChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec", "chunk")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    chunk: DataChunk
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., chunk: _Optional[_Union[DataChunk, _Mapping]] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("frames_done", "frames_total", "frames_per_second", "faces_swapped", "stage_seconds")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FRAMES_DONE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    FACES_SWAPPED_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    frames_done: int
    frames_total: int
    frames_per_second: float
    faces_swapped: int
    stage_seconds: _containers.ScalarMap[str, float]
    def __init__(self, frames_done: _Optional[int] = ..., frames_total: _Optional[int] = ..., frames_per_second: _Optional[float] = ..., faces_swapped: _Optional[int] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "spec", "state", "progress", "error", "output_uri", "created", "updated")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec: JobSpec
    state: JobState
    progress: JobProgress
    error: str
    output_uri: str
    created: _timestamp_pb2.Timestamp
    updated: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ..., error: _Optional[str] = ..., output_uri: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: JobState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SwapStreamConfig(_message.Message):
    __slots__ = ("model", "blend", "face_type", "selection")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BLEND_FIELD_NUMBER: _ClassVar[int]
    FACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    model: str
    blend: _blender_pb2.BlendOptions
    face_type: _common_pb2.FaceType
    selection: FaceSelection
    def __init__(self, model: _Optional[str] = ..., blend: _Optional[_Union[_blender_pb2.BlendOptions, _Mapping]] = ..., face_type: _Optional[_Union[_common_pb2.FaceType, str]] = ..., selection: _Optional[_Union[FaceSelection, _Mapping]] = ...) -> None: ...

class SwapStreamRequest(_message.Message):
    __slots__ = ("config", "frame")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    config: SwapStreamConfig
    frame: StreamFrame
    def __init__(self, config: _Optional[_Union[SwapStreamConfig, _Mapping]] = ..., frame: _Optional[_Union[StreamFrame, _Mapping]] = ...) -> None: ...

class StreamFrame(_message.Message):
    __slots__ = ("frame", "image")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    frame: _common_pb2.FrameRef
    image: _common_pb2.Image
    def __init__(self, frame: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ...) -> None: ...

class SwapStreamResponse(_message.Message):
    __slots__ = ("frame", "faces_swapped", "synthetic", "disclosure", "model")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    FACES_SWAPPED_FIELD_NUMBER: _ClassVar[int]
    SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    frame: StreamFrame
    faces_swapped: int
    synthetic: bool
    disclosure: str
    model: str
    def __init__(self, frame: _Optional[_Union[StreamFrame, _Mapping]] = ..., faces_swapped: _Optional[int] = ..., synthetic: _Optional[bool] = ..., disclosure: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class TrainModelRequest(_message.Message):
    __slots__ = ("name", "source_faceset_uri", "target_faceset_uri", "resolution", "architecture", "steps", "identities")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FACESET_URI_FIELD_NUMBER: _ClassVar[int]
    TARGET_FACESET_URI_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    source_faceset_uri: str
    target_faceset_uri: str
    resolution: int
    architecture: str
    steps: int
    identities: _containers.RepeatedCompositeFieldContainer[_swapper_pb2.Identity]
    def __init__(self, name: _Optional[str] = ..., source_faceset_uri: _Optional[str] = ..., target_faceset_uri: _Optional[str] = ..., resolution: _Optional[int] = ..., architecture: _Optional[str] = ..., steps: _Optional[int] = ..., identities: _Optional[_Iterable[_Union[_swapper_pb2.Identity, _Mapping]]] = ...) -> None: ...

class TrainingRun(_message.Message):
    __slots__ = ("id", "name", "state", "steps_done", "steps_total", "loss", "error", "kubernetes_job")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_DONE_FIELD_NUMBER: _ClassVar[int]
    STEPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    KUBERNETES_JOB_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    state: JobState
    steps_done: int
    steps_total: int
    loss: float
    error: str
    kubernetes_job: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., steps_done: _Optional[int] = ..., steps_total: _Optional[int] = ..., loss: _Optional[float] = ..., error: _Optional[str] = ..., kubernetes_job: _Optional[str] = ...) -> None: ...

class GetTrainingRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

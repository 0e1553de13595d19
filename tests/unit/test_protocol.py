"""The protocol's mappings, message ⇄ domain type: each way gives back what
went in, unset message fields take the domain defaults, and the status table
reads the same in both directions."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from swapline.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SwaplineError,
    UnavailableError,
)
from swapline.protocol import options, results
from swapline.protocol.status import error_for, status_for
from swapline.stages.align import AlignOptions, FaceType
from swapline.stages.blend import BlendItem, BlendOptions, ColorTransfer, MaskType
from swapline.stages.detect import NEAR_CONFIG, DetectorConfig, DetectorModel
from swapline.stages.encode import EncodeOptions
from swapline.v1 import aligner_pb2, blender_pb2, detector_pb2, encoder_pb2, swapper_pb2
from swapline.v1 import common_pb2 as pb


@pytest.mark.parametrize(
    "value",
    [
        # Fractions of the face travel as float32: values it holds exactly.
        BlendOptions(ColorTransfer.LCT, 0.25, 0.125, seamless_clone=True, sharpen=0.5),
        BlendOptions(ColorTransfer.NONE, 0.0625, 0.0),
        BlendOptions(erode=0.125, feather=0.25, masks=(MaskType.BOX, MaskType.OCCLUSION)),
        EncodeOptions("vp9", crf=30, preset="good", disclosure_label=True, metadata={"a": "b"}),
        EncodeOptions(),
        AlignOptions(size=128, face_type=FaceType.FULL, smoothing=0.0, with_crop=False),
        AlignOptions(with_mask=False, embeddings=True),
        DetectorConfig(DetectorModel.CNN, max_side=1024, upsample=2, min_face_size=30.0),
        NEAR_CONFIG,
    ],
)
def test_options_come_back_as_they_went(value: object) -> None:
    there, back = {
        BlendOptions: (options.blend_options_message, options.blend_options),
        EncodeOptions: (options.encode_options_message, options.encode_options),
        AlignOptions: (options.align_options_message, options.align_options),
        DetectorConfig: (options.detect_options_message, options.detector_config),
    }[type(value)]
    assert back(there(value)) == value


def test_unset_fields_take_the_domain_defaults() -> None:
    assert options.blend_options(blender_pb2.BlendOptions()) == BlendOptions()
    assert options.encode_options(encoder_pb2.EncodeOptions()) == EncodeOptions()
    assert options.detector_config(detector_pb2.DetectOptions()) == DetectorConfig()
    aligned = options.align_options(aligner_pb2.AlignOptions())
    assert aligned == AlignOptions(face_type=FaceType.FULL)  # the API's default face type


def test_bad_options_are_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="crf"):
        options.encode_options(encoder_pb2.EncodeOptions(crf=99))
    with pytest.raises(InvalidInputError, match="max_side"):
        options.detector_config(detector_pb2.DetectOptions(max_side=10))
    with pytest.raises(InvalidInputError, match="crop size"):
        options.align_options(aligner_pb2.AlignOptions(size=8))
    with pytest.raises(InvalidInputError, match="mask type"):
        options.blend_options(
            blender_pb2.BlendOptions(masks=[blender_pb2.MaskType.Value("MASK_TYPE_BOX"), 9])
        )
    with pytest.raises(InvalidInputError, match="each once"):
        options.blend_options(blender_pb2.BlendOptions(masks=[1, 1]))
    with pytest.raises(InvalidInputError, match="mask kind"):
        options.swap_mask(7)  # type: ignore[arg-type]


def test_swap_masks_name_the_models_outputs() -> None:
    for output in ("mask", "region", "visible"):
        assert options.swap_mask(options.swap_mask_message(output)) == output
    assert options.swap_mask(swapper_pb2.SWAP_MASK_UNSPECIFIED) == "mask"


def test_face_types() -> None:
    for kind in FaceType:
        assert options.face_type(options.face_type_message(kind), FaceType.FULL) is kind
    assert options.face_type_message("neither") == pb.FACE_TYPE_UNSPECIFIED
    assert options.face_type(pb.FACE_TYPE_UNSPECIFIED, FaceType.WHOLE) is FaceType.WHOLE


def test_a_blend_item_comes_back_as_it_went() -> None:
    rng = np.random.default_rng(0)
    item = BlendItem(
        frame_index=7,
        face_index=1,
        origin=(10, 20),
        size=(40, 30),
        original=rng.integers(0, 255, (64, 64, 3), np.uint8),
        swapped=rng.integers(0, 255, (64, 64, 3), np.uint8),
        swapped_mask=rng.integers(0, 255, (64, 64), np.uint8),
        hull_mask=None,
        crop_to_frame=np.array([[1.5, 0.1, 10.0], [-0.1, 1.5, 20.0]]),
    )
    back = results.blend_item(
        results.blend_item_message(item, pb.IMAGE_ENCODING_PNG), "item", 10**6, False
    )
    for name in ("frame_index", "face_index", "origin", "size", "hull_mask", "roi"):
        assert getattr(back, name) == getattr(item, name), name
    for name in ("original", "swapped", "swapped_mask", "crop_to_frame"):
        assert np.array_equal(getattr(back, name), getattr(item, name)), name
    with pytest.raises(InvalidInputError, match=r"seamless_clone needs region\.image"):
        results.blend_item(results.blend_item_message(item, 0), "item", 10**6, True)


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "what the server said"


@pytest.mark.parametrize(
    "kind",
    [
        InvalidInputError,
        NotFoundError,
        PermissionDeniedError,
        ResourceExhaustedError,
        UnavailableError,
    ],
)
def test_the_status_table_reads_both_ways(kind: type[SwaplineError]) -> None:
    code = status_for(kind("x"))
    assert code is not grpc.StatusCode.INTERNAL
    back = error_for(_Failed(code))
    assert type(back) is kind and "what the server said" in str(back)


def test_other_failures_name_the_call_and_the_code() -> None:
    assert status_for(ValueError("bug")) is grpc.StatusCode.INTERNAL
    error = error_for(_Failed(grpc.StatusCode.INTERNAL), "blender call")
    assert type(error) is SwaplineError
    assert str(error) == "blender call failed: INTERNAL: what the server said"

"""Pixels over the wire: raw (default) and PNG are both lossless, and a
large blend is split into several requests without changing the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import swapline.pipeline.remote as remote
from swapline.config import RemoteStagesConfig, StageAddresses
from swapline.errors import InvalidInputError
from swapline.media import open_media
from swapline.pipeline import BlendItem, EmbeddedStages
from swapline.stages.align import AlignOptions, AlignSession, RegionInput, region_around
from swapline.stages.blend import BlendOptions, roi_of
from swapline.stages.detect import FaceDetector
from tests.conftest import REPO, ServerProcess

STAGES = ("DETECTOR", "ALIGNER", "SWAPPER", "BLENDER", "ENCODER")


def blend_items(data: Path, count: int, with_pixels: bool = False) -> list[BlendItem]:
    with open_media(data / "d10.mp4") as reader:
        frames = [f for _, f in zip(range(count), reader.frames(), strict=False)]
    session = AlignSession(AlignOptions(size=64, smoothing=0.0))
    items = []
    for frame in frames:
        image = frame.image
        height, width = image.shape[:2]
        face = FaceDetector().detect(image)[0]
        box = (face.left, face.top, face.right, face.bottom)
        x0, y0, x1, y1 = region_around(box, (width, height))
        region = RegionInput(frame.index, 0, image[y0:y1, x0:x1], (float(x0), float(y0)), box)
        aligned = session.align([region])[0].aligned
        rx0, ry0, rx1, ry1 = roi_of(aligned.crop_to_frame, 64, (width, height))
        assert aligned.crop is not None
        items.append(
            BlendItem(
                frame.index,
                0,
                (rx0, ry0),
                (rx1 - rx0, ry1 - ry0),
                aligned.crop,
                255 - aligned.crop,  # any face will do
                np.full((64, 64), 255, np.uint8),
                aligned.mask,
                aligned.crop_to_frame,
                image[ry0:ry1, rx0:rx1] if with_pixels else None,
            )
        )
    return items


def test_raw_and_png_pixels_and_split_requests_give_the_embedded_result(
    blender_server: ServerProcess, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = blend_items(data, 5)
    options = BlendOptions()
    embedded = EmbeddedStages(REPO / "models" / "repository")
    expected = embedded.blend(items, options)
    embedded.close()
    for item, patch in zip(items, expected, strict=True):
        # Cut to what the alpha covers: smaller than the ROI, inside it, and
        # every edge of the patch touches the face's alpha.
        x, y = patch.origin
        h, w = patch.image.shape[:2]
        roi_w, roi_h = item.size
        assert h * w < roi_h * roi_w
        assert item.origin[0] <= x and x + w <= item.origin[0] + roi_w
        assert item.origin[1] <= y and y + h <= item.origin[1] + roi_h
        alpha = patch.image[..., 3]
        assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()
    addresses = {f"SWAPLINE_{n}_ADDR": blender_server.address for n in STAGES}
    for encoding in ("raw", "png"):
        config = RemoteStagesConfig.from_env({**addresses, "SWAPLINE_PIXEL_ENCODING": encoding})
        assert config is not None
        stages = remote.RemoteStages(
            config.addresses, config.pixel_encoding, blender_server.credentials()
        )
        whole = stages.blend(items, options)
        sent_whole = stages.bytes_sent
        monkeypatch.setattr(remote, "BLEND_REQUEST_BYTES", 1)  # one item per request
        split = stages.blend(items, options)
        monkeypatch.undo()
        stages.close()
        for got in (whole, split):
            assert len(got) == len(expected)
            for a, b in zip(got, expected, strict=True):
                assert a.origin == b.origin and np.array_equal(a.image, b.image)
        if encoding == "raw":
            raw_bytes = sent_whole
        else:
            assert sent_whole < raw_bytes  # PNG trades CPU for bytes
    with pytest.raises(InvalidInputError, match="raw or png"):
        RemoteStagesConfig.from_env({**addresses, "SWAPLINE_PIXEL_ENCODING": "gif"})
    with pytest.raises(InvalidInputError, match="raw or png"):
        remote.RemoteStages(StageAddresses(*(blender_server.address,) * 5), "gif")


def test_only_seamless_cloning_sends_the_frames_pixels(
    blender_server: ServerProcess, data: Path
) -> None:
    import grpc

    from swapline.v1 import blender_pb2, blender_pb2_grpc

    addresses = StageAddresses(*(blender_server.address,) * 5)
    embedded = EmbeddedStages(REPO / "models" / "repository")
    stages = remote.RemoteStages(addresses, credentials=blender_server.credentials())
    try:
        plain, with_pixels = blend_items(data, 2), blend_items(data, 2, with_pixels=True)
        stages.blend(plain, BlendOptions())
        without = stages.bytes_sent
        seamless = BlendOptions(seamless_clone=True)
        got = stages.blend(with_pixels, seamless)
        assert stages.bytes_sent - without > 2 * without  # the ROIs went too
        for a, b in zip(got, embedded.blend(with_pixels, seamless), strict=True):
            assert a.origin == b.origin and np.array_equal(a.image, b.image)
        with pytest.raises(InvalidInputError, match=r"seamless_clone needs region\.image"):
            stages.blend(plain, seamless)
        stub = blender_pb2_grpc.BlenderStub(stages.channels["blender"])
        bare = blender_pb2.BlendRequest(items=[blender_pb2.BlendItem()])
        with pytest.raises(grpc.RpcError) as error:
            stub.Blend(bare)
        assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "region_size and original_face" in str(error.value.details())
    finally:
        stages.close()
        embedded.close()

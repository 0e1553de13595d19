from __future__ import annotations

import numpy as np

from swapline.protocol import wire
from swapline.v1 import common_pb2 as pb


def test_grey_masks_stay_lossless_and_grey_to_measure_may_be_jpeg() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (48, 40), dtype=np.uint8)
    mask = wire.image_message(image, pb.IMAGE_ENCODING_JPEG)
    assert mask.encoded.encoding == pb.IMAGE_ENCODING_PNG
    np.testing.assert_array_equal(wire.decode_image_message(mask), image)
    measured = wire.image_message(image, pb.IMAGE_ENCODING_JPEG, lossy_grey=True)
    assert measured.encoded.encoding == pb.IMAGE_ENCODING_JPEG
    assert measured.pixel_format == pb.PIXEL_FORMAT_GRAY8
    decoded = wire.decode_image_message(measured)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8

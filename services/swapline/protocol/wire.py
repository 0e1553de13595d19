"""Conversions between numpy arrays and swapline.v1 messages, with the
validation every server applies to what it receives."""

from __future__ import annotations

import math

import cv2
import numpy as np

from swapline.errors import InvalidInputError
from swapline.media import DEFAULT_MAX_PIXELS, encode_image, probe_image_size, to_bgr8
from swapline.v1 import common_pb2 as pb

_CHANNELS = {
    pb.PIXEL_FORMAT_BGR8: 3,
    pb.PIXEL_FORMAT_RGB8: 3,
    pb.PIXEL_FORMAT_GRAY8: 1,
    pb.PIXEL_FORMAT_BGRA8: 4,
    pb.PIXEL_FORMAT_RGBA8: 4,
}
_ENCODING_NAMES: dict[pb.ImageEncoding, str] = {
    pb.IMAGE_ENCODING_PNG: "png",
    pb.IMAGE_ENCODING_JPEG: "jpeg",
    pb.IMAGE_ENCODING_WEBP: "webp",
}


def decode_image_message(
    message: pb.Image,
    what: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    keep_alpha: bool = False,
) -> np.ndarray:
    """A BGR uint8 array from an Image message (GRAY8 stays single-channel;
    BGRA8/RGBA8 stay BGRA with ``keep_alpha``).

    Geometry is checked before any pixel buffer is allocated: declared sizes
    over ``max_pixels``, raw buffers of the wrong length and encoded images
    whose header disagrees with the declared size are refused.
    """
    width, height = message.width, message.height
    if width == 0 or height == 0:
        raise InvalidInputError(f"{what}: width and height must be set")
    if width * height > max_pixels:
        raise InvalidInputError(
            f"{what}: {width}x{height} exceeds the limit of {max_pixels} pixels"
        )
    kind = message.WhichOneof("pixels")
    if kind == "raw":
        fmt = message.pixel_format
        channels = _CHANNELS.get(fmt)
        if channels is None:
            raise InvalidInputError(f"{what}: raw pixels need a pixel_format")
        expected = width * height * channels
        if len(message.raw) != expected:
            raise InvalidInputError(
                f"{what}: raw buffer has {len(message.raw)} bytes, "
                f"{width}x{height}x{channels} needs {expected}"
            )
        array = np.frombuffer(message.raw, np.uint8).reshape(height, width, channels)
        if fmt == pb.PIXEL_FORMAT_GRAY8:
            return array[:, :, 0]
        if fmt == pb.PIXEL_FORMAT_RGB8:
            return np.ascontiguousarray(array[:, :, ::-1])
        if fmt == pb.PIXEL_FORMAT_BGRA8:
            return array if keep_alpha else cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
        if fmt == pb.PIXEL_FORMAT_RGBA8:
            code = cv2.COLOR_RGBA2BGRA if keep_alpha else cv2.COLOR_RGBA2BGR
            return cv2.cvtColor(array, code)
        return array
    if kind == "encoded":
        data = message.encoded.data
        if not data:
            raise InvalidInputError(f"{what}: encoded image is empty")
        try:
            header_w, header_h = probe_image_size(data, what)
        except InvalidInputError as exc:
            raise InvalidInputError(str(exc)) from None
        if (header_w, header_h) != (width, height):
            raise InvalidInputError(
                f"{what}: header says {header_w}x{header_h}, message says {width}x{height}"
            )
        flags = (
            cv2.IMREAD_GRAYSCALE
            if message.pixel_format == pb.PIXEL_FORMAT_GRAY8
            else cv2.IMREAD_UNCHANGED
        )
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if image is None:
            raise InvalidInputError(f"{what}: cannot decode (truncated or corrupt)")
        if message.pixel_format == pb.PIXEL_FORMAT_GRAY8:
            return image
        if keep_alpha and image.ndim == 3 and image.shape[2] == 4:
            return image
        return to_bgr8(image)
    raise InvalidInputError(f"{what}: no pixels")


def image_message(
    image: np.ndarray,
    encoding: pb.ImageEncoding = pb.IMAGE_ENCODING_UNSPECIFIED,
    lossy_grey: bool = False,
) -> pb.Image:
    """An Image message from a BGR (HxWx3), BGRA (HxWx4) or grey (HxW) uint8
    array. Grey images are masks unless ``lossy_grey`` says they are
    intensity to measure: JPEG applies to them only then."""
    height, width = image.shape[:2]
    grey = image.ndim == 2
    if grey:
        fmt = pb.PIXEL_FORMAT_GRAY8
    elif image.shape[2] == 4:
        fmt = pb.PIXEL_FORMAT_BGRA8
    else:
        fmt = pb.PIXEL_FORMAT_BGR8
    name = _ENCODING_NAMES.get(encoding)
    if name is None:
        return pb.Image(
            width=width, height=height, pixel_format=fmt, raw=np.ascontiguousarray(image).tobytes()
        )
    if ((grey and not lossy_grey) or fmt == pb.PIXEL_FORMAT_BGRA8) and name == "jpeg":
        name, encoding = "png", pb.IMAGE_ENCODING_PNG  # masks and alpha stay lossless
    return pb.Image(
        width=width,
        height=height,
        pixel_format=fmt,
        encoded=pb.EncodedImage(encoding=encoding, data=encode_image(image, name)),
    )


def _finite(values: tuple[float, ...], what: str) -> None:
    if not all(math.isfinite(v) for v in values):
        raise InvalidInputError(f"{what} holds a value that is not a finite number")


def box_tuple(box: pb.Box, what: str = "box") -> tuple[float, float, float, float]:
    values = (box.left, box.top, box.right, box.bottom)
    _finite(values, what)
    return values


def point_tuple(point: pb.Point, what: str = "point") -> tuple[float, float]:
    """A point's coordinates, refused unless finite."""
    values = (point.x, point.y)
    _finite(values, what)
    return values


def pixel_origin(point: pb.Point, what: str = "origin") -> tuple[int, int]:
    """A point rounded to whole pixels, refused unless finite."""
    x, y = point_tuple(point, what)
    return round(x), round(y)


def box_message(box: tuple[float, float, float, float]) -> pb.Box:
    left, top, right, bottom = box
    return pb.Box(left=left, top=top, right=right, bottom=bottom)


def landmarks_message(points: np.ndarray) -> pb.Landmarks:
    return pb.Landmarks(points=[pb.Point(x=float(x), y=float(y)) for x, y in points])


def landmarks_array(message: pb.Landmarks, what: str = "landmarks") -> np.ndarray:
    points = np.array([[p.x, p.y] for p in message.points], np.float64).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise InvalidInputError(f"{what} holds a value that is not a finite number")
    return points


def affine_message(matrix: np.ndarray) -> pb.Affine2x3:
    m = np.asarray(matrix, np.float64)
    return pb.Affine2x3(
        m00=m[0, 0], m01=m[0, 1], m02=m[0, 2], m10=m[1, 0], m11=m[1, 1], m12=m[1, 2]
    )


def affine_array(message: pb.Affine2x3, what: str = "affine") -> np.ndarray:
    m = message
    matrix = np.array([[m.m00, m.m01, m.m02], [m.m10, m.m11, m.m12]], np.float64)
    if not np.isfinite(matrix).all():
        raise InvalidInputError(f"{what} holds a value that is not a finite number")
    return matrix

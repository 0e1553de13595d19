"""Still images: header probing (before any pixel is allocated), decode, encode."""

from __future__ import annotations

import struct

import cv2
import numpy as np

from swapline.errors import MediaError

DEFAULT_MAX_PIXELS = 36_000_000  # a little over 8K UHD

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})


def image_format(head: bytes) -> str | None:
    """The image format named by a buffer's magic bytes, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM"):
        return "bmp"
    return None


def probe_image_size(data: bytes, source: str = "image") -> tuple[int, int]:
    """Width and height from the header alone, so that a declared size can be
    refused before a decoder allocates it."""
    fmt = image_format(data[:16])
    try:
        if fmt == "png":
            if data[12:16] != b"IHDR":
                raise ValueError("missing IHDR")
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        if fmt == "jpeg":
            return _jpeg_size(data)
        if fmt == "webp":
            return _webp_size(data)
        if fmt == "bmp":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
    except (ValueError, struct.error) as exc:
        raise MediaError(source, f"corrupt {fmt} header ({exc})") from None
    raise MediaError(source, "not a supported image (png, jpeg, webp, bmp)")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    sof_markers = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("bad marker")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in sof_markers:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise ValueError("no frame header")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise ValueError("unknown webp chunk")


def check_pixels(width: int, height: int, max_pixels: int, source: str) -> None:
    if width <= 0 or height <= 0:
        raise MediaError(source, f"invalid size {width}x{height}")
    if width * height > max_pixels:
        raise MediaError(
            source, f"{width}x{height} exceeds the limit of {max_pixels} pixels per frame"
        )


def decode_image(
    data: bytes, source: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decodes an encoded image to BGR uint8 (alpha dropped, grey expanded)."""
    if not data:
        raise MediaError(source, "empty file")
    width, height = probe_image_size(data, source)
    check_pixels(width, height, max_pixels, source)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise MediaError(source, "cannot decode image (truncated or corrupt)")
    return to_bgr8(image)


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (grey, BGR, BGRA; 8 or 16 bit) as BGR uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise MediaError("image", f"unsupported sample type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image)


def grey(image: np.ndarray) -> np.ndarray:
    """The intensity of a BGR image (a grey one as it is): all that face
    detection and landmarks read, a third of the pixels to convert or send."""
    if image.ndim == 2:
        return image
    converted: np.ndarray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return converted


def encode_image(image: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """Encodes a BGR or grey uint8 image as png, jpeg or webp."""
    params: list[int] = []
    if fmt == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif fmt == "webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, quality]
    elif fmt == "png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode("." + ("jpg" if fmt == "jpeg" else fmt), image, params)
    if not ok:
        raise ValueError(f"cannot encode image as {fmt}")
    return buf.tobytes()

"""Media input: decode anything ffmpeg reads, one frame at a time."""

from swapline.media._image import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    decode_image,
    encode_image,
    grey,
    image_format,
    probe_image_size,
    to_bgr8,
)
from swapline.media._reader import (
    TEXT_DEMUXERS,
    Frame,
    MediaInfo,
    MediaReader,
    open_media,
    yuv_planes,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "TEXT_DEMUXERS",
    "Frame",
    "MediaInfo",
    "MediaReader",
    "decode_image",
    "encode_image",
    "grey",
    "image_format",
    "open_media",
    "probe_image_size",
    "to_bgr8",
    "yuv_planes",
]

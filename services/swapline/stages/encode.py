"""Writing the output: the source re-encoded with blended patches pasted in,
every audio stream copied bit-exact, timestamps kept, and the file marked as
synthetic media.

The encoder decodes the source itself, so only patches (the blended pixels
under each face) have to reach it; memory holds one frame at a time. In the
same process as the pipeline it takes the frames the pipeline decoded
instead (``FramePatches.frame``) and reads only the audio from the source.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
from av.bitstream import BitStreamFilterContext
from av.video.reformatter import VideoReformatter

from swapline.errors import (
    InvalidInputError,
    MediaError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SwaplineError,
)
from swapline.media import open_media
from swapline.stages.paste import Patch, paste, paste_yuv

SYNTHETIC_COMMENT = (
    "Synthetic media: one or more faces in this file were replaced by swapline "
    "(AI-generated face swap)."
)
LABEL_TEXT = "SYNTHETIC MEDIA - AI face swap"

# codec name: (encoder, default CRF, default preset option or None)
CODECS: dict[str, tuple[str, int, str | None]] = {
    "h264": ("libx264", 18, "medium"),
    "h265": ("libx265", 22, "medium"),
    "vp9": ("libvpx-vp9", 31, None),
    "av1": ("libsvtav1", 32, "8"),
}


@dataclass(frozen=True)
class EncodeOptions:
    codec: str = "h264"
    crf: int | None = None
    preset: str | None = None
    pixel_format: str = "yuv420p"
    disclosure_label: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.codec not in CODECS:
            raise InvalidInputError(f"unknown codec {self.codec!r} (h264, h265, vp9, av1)")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise InvalidInputError(f"crf must be in 0..63, got {self.crf}")
        formats = _pixel_formats(CODECS[self.codec][0])
        if self.pixel_format not in formats:
            raise InvalidInputError(
                f"pixel format {self.pixel_format!r} is not one {self.codec} encodes "
                f"({', '.join(sorted(formats))})"
            )


def _pixel_formats(encoder: str) -> frozenset[str]:
    codec = av.codec.Codec(encoder, "w")
    return frozenset(f.name for f in codec.video_formats or ())


@dataclass(frozen=True)
class FramePatches:
    index: int
    patches: list[Patch]
    # The source frame as decoded (not rotated), when the caller decoded it
    # already: then the encoder does not decode the source again.
    frame: av.VideoFrame | None = None


@dataclass
class EncodeSummary:
    output: Path
    frames: int = 0
    audio_packets: int = 0
    bytes: int = 0


def draw_label(image: np.ndarray) -> np.ndarray:
    """A visible disclosure in the bottom-left corner."""
    height, width = image.shape[:2]
    scale = max(0.4, width / 1600)
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(LABEL_TEXT, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = int(width * 0.02), height - int(height * 0.03)
    cv2.rectangle(image, (x - 4, y - th - 6), (x + tw + 4, y + base + 2), (0, 0, 0), -1)
    cv2.putText(
        image,
        LABEL_TEXT,
        (x, y),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return image


def _next_patches(patches: Iterator[FramePatches], index: int) -> list[Patch]:
    item = next(patches, None)
    if item is None:
        raise InvalidInputError(f"no patches for frame {index}")
    if item.index != index:
        raise InvalidInputError(f"patches for frame {item.index} arrived for frame {index}")
    return item.patches


def encode(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    patches: Iterable[FramePatches],
    options: EncodeOptions | None = None,
    model: str = "",
) -> EncodeSummary:
    """Writes ``output``: the source with each frame's patches pasted in.

    ``patches`` yields one FramePatches per source frame, in order. The
    output is written to a temporary name and renamed when complete, so a
    failure leaves no partial file.
    """
    options = options or EncodeOptions()
    options.validate()
    output = Path(output)
    if output.is_dir():
        raise InvalidInputError(f"{output}: the output is a directory")
    # One temporary name per call: two runs writing the same output never
    # share it, and the last to finish wins whole.
    partial = output.with_name(f".{output.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with open_media(source) as reader:
            kind = reader.info.kind
        if kind == "image":
            summary = _encode_image(Path(source), partial, output, iter(patches), options, model)
        else:
            summary = _encode_video(Path(source), partial, output, iter(patches), options, model)
        os.replace(partial, output)
        summary.output = output
        summary.bytes = output.stat().st_size
        return summary
    except (SwaplineError, InterruptedError):  # InterruptedError: a cancel, not a write
        raise
    except OSError as exc:  # the output's folder or file system refused
        raise output_error(output, exc) from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


def output_error(output: Path, exc: OSError | av.error.FFmpegError) -> SwaplineError:
    """What a failed write of ``output`` tells a user: out of space,
    not allowed, or another reason, naming the output (not the input)."""
    code = exc.errno
    message = f"cannot write the output {output}: {exc.strerror or exc}"
    if code in _NO_SPACE:
        return ResourceExhaustedError(message)
    if code in _NOT_ALLOWED:
        return PermissionDeniedError(message)
    return InvalidInputError(message)


def _metadata(options: EncodeOptions, model: str) -> dict[str, str]:
    return {
        **options.metadata,
        "comment": SYNTHETIC_COMMENT,
        "swapline_synthetic": "1",
        "swapline_model": model,
    }


def _encode_video(
    source: Path,
    output: Path,
    final: Path,
    patches: Iterator[FramePatches],
    options: EncodeOptions,
    model: str,
) -> EncodeSummary:
    encoder_name, default_crf, default_preset = CODECS[options.codec]
    summary = EncodeSummary(output)
    reader = open_media(source)
    reader.close()  # only its checks and rotation; the demuxer below reads
    rotation = reader.info.rotation
    try:
        inp = av.open(str(source))
    except av.error.FFmpegError as exc:
        raise MediaError(str(source), f"cannot open ({exc})") from None
    suffix = final.suffix.lower().lstrip(".")
    fmt = "mp4" if suffix in ("mp4", "mov", "m4v") else _muxer(suffix)
    container_options = {"movflags": "use_metadata_tags"} if fmt == "mp4" else {}
    try:
        output.touch()  # the muxer opens its file only at the first packet
        out = av.open(str(output), "w", format=fmt, options=container_options)
    except (OSError, av.error.FFmpegError) as exc:
        inp.close()
        raise output_error(final, exc) from None
    try:
        video_in = inp.streams.video[0]
        video_in.thread_type = "AUTO"
        audio_in = list(inp.streams.audio)
        video_out = cast(
            av.video.stream.VideoStream,
            out.add_stream(encoder_name, rate=video_in.average_rate or Fraction(30)),
        )
        video_out.width = reader.info.width
        video_out.height = reader.info.height
        video_out.pix_fmt = options.pixel_format
        time_base = video_in.time_base or Fraction(1, 90000)
        video_out.time_base = time_base
        video_out.codec_context.time_base = time_base
        codec_options: dict[str, str] = {
            "crf": str(options.crf if options.crf is not None else default_crf)
        }
        preset = options.preset or default_preset
        if preset:
            codec_options["preset"] = preset
        if options.codec == "vp9":
            codec_options["b"] = "0"
        video_out.options = dict(codec_options)
        audio_out = {s.index: out.add_stream_from_template(s) for s in audio_in}
        for key, value in _metadata(options, model).items():
            out.metadata[key] = value
        converter = VideoReformatter()  # one for all frames (see MediaReader.frames)
        marked = MarkedVideo(out, video_out, options.codec)

        def write(frame: av.VideoFrame, frame_patches: list[Patch]) -> None:
            if rotation or options.disclosure_label or options.pixel_format != "yuv420p":
                image: np.ndarray = converter.reformat(
                    frame, format="bgr24", threads=1
                ).to_ndarray()
                if rotation:
                    image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
                image = paste(image, frame_patches)
                if options.disclosure_label:
                    image = draw_label(image)
                new = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            else:
                new = paste_yuv(frame, frame_patches, converter)
            new.pts = frame.pts
            new.time_base = frame.time_base
            for out_packet in video_out.encode(new):
                marked.mux(out_packet)

        def copy_audio(packet: av.Packet) -> None:
            packet.stream = audio_out[packet.stream.index]
            out.mux(packet)
            summary.audio_packets += 1

        first = next(patches, None)
        items = patches if first is None else itertools.chain([first], patches)
        if first is not None and first.frame is not None:
            index = _write_decoded(items, inp, audio_in, write, copy_audio)
        else:
            index = 0
            for packet in inp.demux(video_in, *audio_in):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        copy_audio(packet)
                    continue
                for decoded in packet.decode():
                    write(cast(av.VideoFrame, decoded), _next_patches(items, index))
                    index += 1
        for out_packet in video_out.encode():
            marked.mux(out_packet)
        marked.flush()
        summary.frames = index
    except BaseException as exc:
        with contextlib.suppress(av.error.FFmpegError):  # the first error is the one to report
            out.close()
        if not isinstance(exc, av.error.FFmpegError):
            raise
        if exc.filename == str(output) or exc.errno in _NO_SPACE:
            raise output_error(final, exc) from None
        raise MediaError(str(source), f"cannot transcode ({exc})") from None
    finally:
        inp.close()
    try:
        out.close()  # writes the index: a failure here is a failed output too
    except av.error.FFmpegError as exc:
        raise output_error(final, exc) from None
    return summary


# The mark H.264 outputs carry in the video itself (an SEI "user data
# unregistered" message, ITU-T H.264 D.2.7): it survives a stream-copy remux
# into any container, which container metadata need not.
MARK_UUID = "7c1f5a2e9b3d4e6f8a0b1c2d3e4f5a6b"
MARK_TEXT = "SYNTHETIC MEDIA - faces replaced by swapline (AI face swap)"  # no : , = here


class MarkedVideo:
    """Muxes the encoder's packets, through FFmpeg's h264_metadata filter
    for H.264 so that the first access unit carries the synthetic-media
    SEI message (see :func:`bitstream_mark`)."""

    def __init__(
        self,
        out: av.container.OutputContainer,
        stream: Any,
        codec: str,
        every_keyframe: bool = False,
    ) -> None:
        """``every_keyframe``: mark each keyframe, not only the first (a
        live stream's viewers join at any keyframe; Annex B streams)."""
        self.out = out
        self.stream = stream
        self.marks = codec == "h264"
        self.every_keyframe = every_keyframe
        self.filter: BitStreamFilterContext | None = None

    def mux(self, packet: av.Packet) -> None:
        if not self.marks:
            self.out.mux(packet)
            return
        if self.every_keyframe:
            if packet.is_keyframe:
                packet = _marked_packet(packet)
            self.out.mux(packet)
            return
        if self.filter is None:
            # The filter reads the stream's parameters, which the container
            # takes from the opened encoder when it starts.
            self.out.start_encoding()
            self.filter = BitStreamFilterContext(
                f"h264_metadata=sei_user_data={MARK_UUID}+{MARK_TEXT}", self.stream
            )
        for filtered in self.filter.filter(packet):
            filtered.stream = self.stream
            self.out.mux(filtered)

    def flush(self) -> None:
        if self.filter is not None:
            for filtered in self.filter.filter(None):
                filtered.stream = self.stream
                self.out.mux(filtered)


def _mark_nal() -> bytes:
    """The synthetic-media SEI NAL unit (user data unregistered), Annex B."""
    payload = bytes.fromhex(MARK_UUID) + MARK_TEXT.encode() + b"\x00"
    assert len(payload) < 255 and b"\x00\x00" not in payload[:-1]  # no emulation bytes needed
    return b"\x00\x00\x00\x01\x06\x05" + bytes([len(payload)]) + payload + b"\x80"


_MARK_NAL = _mark_nal()


def _marked_packet(packet: av.Packet) -> av.Packet:
    """``packet`` (an Annex B access unit) with the mark's SEI before its
    first slice, as a viewer joining at this keyframe reads it."""
    data = bytes(packet)
    at = 0
    while True:
        start = data.find(b"\x00\x00\x01", at)
        if start < 0 or start + 3 >= len(data):
            return packet  # not Annex B: left as it is
        if data[start + 3] & 0x1F in (1, 5):  # the first slice
            begin = start - 1 if start > 0 and data[start - 1] == 0 else start
            break
        at = start + 3
    marked = av.Packet(data[:begin] + _MARK_NAL + data[begin:])
    marked.pts, marked.dts, marked.time_base = packet.pts, packet.dts, packet.time_base
    marked.is_keyframe = True
    marked.stream = packet.stream
    return marked


def bitstream_mark(path: str | os.PathLike[str], packets: int = 8) -> str | None:
    """The synthetic-media words in the first video packets of ``path``
    (see :class:`MarkedVideo`), or None when there are none."""
    marker = bytes.fromhex(MARK_UUID)
    with av.open(str(path)) as container:
        for n, packet in enumerate(container.demux(video=0)):
            data = bytes(packet)
            if marker in data:
                text = data.split(marker, 1)[1].split(b"\x00", 1)[0].split(b"\x80", 1)[0]
                return text.decode("utf-8", "replace")
            if n + 1 >= packets:
                break
    return None


def _write_decoded(
    items: Iterator[FramePatches],
    inp: av.container.InputContainer,
    audio_in: list[av.audio.stream.AudioStream],
    write: Callable[[av.VideoFrame, list[Patch]], None],
    copy_audio: Callable[[av.Packet], None],
) -> int:
    """Writes frames the caller decoded, each with its patches, and copies
    the source's audio packets in between, each before the first frame that
    is later: audio is read as far as the video has got. Returns the number
    of frames."""
    audio = (p for p in inp.demux(*audio_in) if p.dts is not None) if audio_in else iter(())
    waiting = next(audio, None)
    index = 0
    for item in items:
        if item.index != index:
            raise InvalidInputError(f"patches for frame {item.index} arrived for frame {index}")
        if item.frame is None:
            raise InvalidInputError(f"frame {item.index} arrived without its decoded frame")
        frame = item.frame
        until = float((frame.pts or 0) * (frame.time_base or 0))
        while waiting is not None and _seconds(waiting) <= until:
            copy_audio(waiting)
            waiting = next(audio, None)
        write(frame, item.patches)
        index += 1
    while waiting is not None:
        copy_audio(waiting)
        waiting = next(audio, None)
    return index


def _seconds(packet: av.Packet) -> float:
    return float((packet.pts if packet.pts is not None else packet.dts or 0) * packet.time_base)


def _muxer(suffix: str) -> str:
    return {"mkv": "matroska", "webm": "webm", "mov": "mov", "mp4": "mp4"}.get(suffix, "mp4")


def _encode_image(
    source: Path,
    output: Path,
    final: Path,
    patches: Iterator[FramePatches],
    options: EncodeOptions,
    model: str,
) -> EncodeSummary:
    with open_media(source) as reader:
        image = next(reader.frames()).image
    image = paste(image, _next_patches(patches, 0))
    if options.disclosure_label:
        image = draw_label(image)
    suffix = final.suffix.lower()
    fmt = "jpeg" if suffix in (".jpg", ".jpeg") else "png"
    ok, data = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", image)
    if not ok:
        raise InvalidInputError(f"cannot encode {output.name}")
    text = f"{SYNTHETIC_COMMENT} swapline_model={model}"
    output.write_bytes(with_comment(data.tobytes(), fmt, text))
    return EncodeSummary(output, frames=1)


def with_comment(data: bytes, fmt: str, text: str) -> bytes:
    """Adds a PNG tEXt 'Comment' chunk or a JPEG COM segment."""
    import struct
    import zlib

    payload = text.encode("latin-1", "replace")
    if fmt == "png":
        body = b"Comment\x00" + payload
        chunk = struct.pack(">I", len(body)) + b"tEXt" + body
        chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body))
        return data[:33] + chunk + data[33:]  # after the signature and IHDR
    segment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]

"""``swapline extract``: videos and images in, a faceset out.

A faceset is a folder that the trainer reads:

* ``manifest.json`` — format, crop size, face type, the sources and counts;
* ``faces.jsonl`` — one JSON record per face: crop and mask file, source,
  frame index, pts and time base, time in seconds, track, box, score,
  landmarks in frame and crop coordinates, the frame-to-crop matrix;
* ``faces/*.jpg`` (or ``.png``) aligned crops and ``masks/*.png`` hull masks.

Records are appended as faces are found, so memory does not grow with the
length of the input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from swapline import __version__
from swapline.concurrency import ordered_map
from swapline.errors import InvalidInputError, MediaError
from swapline.media import Frame, MediaReader, encode_image, open_media
from swapline.stages.align import (
    AlignedFace,
    AlignOptions,
    AlignSession,
    FaceType,
    Measurement,
    RegionInput,
    region_around,
)
from swapline.stages.detect import DetectorConfig, FaceDetector
from swapline.stages.select import Selection, SelectMode, select_faces
from swapline.stages.track import DEFAULT_MAX_GAP

FACESET_FORMAT = "swapline-faceset"
FACESET_VERSION = 1
MANIFEST = "manifest.json"
RECORDS = "faces.jsonl"
# A face seen in fewer analysed frames in a row is taken for a false
# detection, as in the swap pipeline (SwapOptions.min_track_frames).
MIN_TRACK_FRAMES = 3


@dataclass(frozen=True)
class ExtractOptions:
    size: int = 256
    face_type: FaceType = FaceType.WHOLE
    every: int = 1
    selection: Selection = field(default_factory=lambda: Selection(SelectMode.LARGEST))
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    smoothing: float = 0.5
    crop_format: str = "jpeg"
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    first_frame: int = 0
    last_frame: int | None = None  # exclusive
    identity: str = ""
    consent_reference: str = ""

    def validate(self) -> None:
        if self.every < 1:
            raise InvalidInputError(f"--every must be >= 1, got {self.every}")
        if self.first_frame < 0 or (
            self.last_frame is not None and self.last_frame <= self.first_frame
        ):
            raise InvalidInputError("--frames must be START:END with 0 <= START < END")
        if self.crop_format not in ("jpeg", "png"):
            raise InvalidInputError(f"crop format must be jpeg or png, got {self.crop_format}")
        self.detector.validate()
        self.align_options.validate()

    @property
    def align_options(self) -> AlignOptions:
        return AlignOptions(
            size=self.size,
            face_type=self.face_type,
            smoothing=self.smoothing,
            embeddings=self.selection.needs_embeddings,
        )


@dataclass
class SourceSummary:
    path: str
    kind: str
    width: int
    height: int
    frames_total: int
    frames_read: int = 0
    frames_analysed: int = 0
    frames_with_face: int = 0
    faces: int = 0
    error: str | None = None


@dataclass
class ExtractSummary:
    out: Path
    sources: list[SourceSummary]

    @property
    def faces(self) -> int:
        return sum(s.faces for s in self.sources)

    @property
    def frames_analysed(self) -> int:
        return sum(s.frames_analysed for s in self.sources)

    @property
    def frames_with_face(self) -> int:
        return sum(s.frames_with_face for s in self.sources)


ProgressFactory = Callable[[int, str], Any]


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class MeasuredFrame:
    frame: Frame
    regions: list[RegionInput]
    measured: list[Measurement]


def measure_frame(frame: Frame, detector: FaceDetector, session: AlignSession) -> MeasuredFrame:
    """The stateless, parallel part of a frame's analysis: detection,
    landmarks and (if asked) embeddings."""
    height, width = frame.image.shape[:2]
    regions = []
    for face_index, det in enumerate(detector.detect(frame.image)):
        box = (det.left, det.top, det.right, det.bottom)
        x0, y0, x1, y1 = region_around(box, (width, height))
        regions.append(
            RegionInput(
                frame_index=frame.index,
                face_index=face_index,
                image=frame.image[y0:y1, x0:x1],
                origin=(float(x0), float(y0)),
                box=box,
                score=det.score,
            )
        )
    return MeasuredFrame(frame, regions, session.measure(regions))


def finish_frame(
    measured: MeasuredFrame, session: AlignSession, selection: Selection
) -> list[AlignedFace]:
    """The ordered part: tracking, smoothing, warping and selection."""
    aligned = session.align(measured.regions, measured.measured)
    embeddings = None
    if selection.needs_embeddings:
        embeddings = [a.embedding for a in aligned if a.embedding is not None]
    keep = select_faces(
        selection, [(a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) for a in aligned], embeddings
    )
    return [aligned[i] for i in keep]


def analyse_frame(
    frame: Frame, detector: FaceDetector, session: AlignSession, selection: Selection
) -> list[AlignedFace]:
    """Detects, aligns and selects the faces of one frame."""
    return finish_frame(measure_frame(frame, detector, session), session, selection)


def analyse_frames(
    frames: Iterable[Frame],
    detector: FaceDetector,
    session: AlignSession,
    selection: Selection,
    workers: int,
) -> Iterator[tuple[Frame, list[AlignedFace]]]:
    """Analyses a stream of frames, measuring several at once on ``workers``
    threads (dlib releases the GIL) and finishing them in order."""
    measured = ordered_map(lambda f: measure_frame(f, detector, session), frames, workers)
    for item in measured:
        yield item.frame, finish_frame(item, session, selection)


class FacesetWriter:
    """Writes aligned faces into a faceset folder as they arrive."""

    def __init__(self, out: Path, options: ExtractOptions, overwrite: bool = False) -> None:
        self.out = out
        self.options = options
        if (out / MANIFEST).exists() and not overwrite:
            raise InvalidInputError(f"{out}: already holds a faceset (use --overwrite)")
        (out / "faces").mkdir(parents=True, exist_ok=True)
        (out / "masks").mkdir(parents=True, exist_ok=True)
        self._records: IO[str] = open(out / RECORDS, "w", encoding="utf-8")  # noqa: SIM115
        self._suffix = "jpg" if options.crop_format == "jpeg" else "png"

    def write(self, source_index: int, frame: Frame, face: AlignedFace) -> None:
        name = f"{source_index:03d}_{frame.index:06d}_{face.face_index:02d}"
        crop_file = f"faces/{name}.{self._suffix}"
        mask_file = f"masks/{name}.png"
        aligned = face.aligned
        assert aligned.crop is not None and aligned.mask is not None
        (self.out / crop_file).write_bytes(encode_image(aligned.crop, self.options.crop_format))
        (self.out / mask_file).write_bytes(encode_image(aligned.mask, "png"))
        record = {
            "file": crop_file,
            "mask": mask_file,
            "source": source_index,
            "frame_index": frame.index,
            "pts": frame.pts,
            "time_base": f"{frame.time_base.numerator}/{frame.time_base.denominator}",
            "time_s": round(frame.time_s, 6),
            "face_index": face.face_index,
            "track_id": face.track_id,
            "box": [round(v, 2) for v in face.box],
            "score": round(face.score, 4),
            "landmarks": np.round(face.landmarks, 2).tolist(),
            "crop_landmarks": np.round(aligned.crop_landmarks, 2).tolist(),
            "frame_to_crop": np.round(aligned.frame_to_crop, 6).tolist(),
        }
        if face.embedding is not None:
            record["embedding"] = np.round(face.embedding, 5).tolist()
        self._records.write(json.dumps(record, separators=(",", ":")) + "\n")

    def finish(self, summary: ExtractSummary) -> None:
        self._records.close()
        manifest = {
            "format": FACESET_FORMAT,
            "version": FACESET_VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "swapline_version": __version__,
            "size": self.options.size,
            "face_type": self.options.face_type.value,
            "crop_format": self.options.crop_format,
            "every": self.options.every,
            "selection": self.options.selection.mode.value,
            "frames": [self.options.first_frame, self.options.last_frame],
            "identity": self.options.identity,
            "consent_reference": self.options.consent_reference,
            "faces": summary.faces,
            "records": RECORDS,
            "sources": [vars(s) for s in summary.sources],
        }
        tmp = self.out / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.out / MANIFEST)


def extract(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: ExtractOptions | None = None,
    progress: ProgressFactory | None = None,
    overwrite: bool = False,
) -> ExtractSummary:
    """Extracts aligned faces from every input into the faceset at ``out``.

    Every input is opened (and its first frame decoded) before any work, so a
    bad file fails fast. A file that breaks part-way keeps the faces found so
    far; the manifest records the error and MediaError is raised afterwards.
    """
    options = options or ExtractOptions()
    options.validate()
    if not inputs:
        raise InvalidInputError("no input given")
    readers: list[MediaReader] = []
    try:
        for path in inputs:
            readers.append(open_media(path))
        writer = FacesetWriter(Path(out), options, overwrite)
        detector = FaceDetector(options.detector)
        summary = ExtractSummary(Path(out), [])
        failure: MediaError | None = None
        for source_index, reader in enumerate(readers):
            info = reader.info
            stats = SourceSummary(reader.path, info.kind, info.width, info.height, info.frame_count)
            summary.sources.append(stats)
            bar = (progress or _no_progress)(info.frame_count, Path(reader.path).name)
            try:
                _extract_source(source_index, reader, stats, bar, detector, writer, options)
            except MediaError as exc:
                stats.error = exc.reason
                failure = failure or exc
            finally:
                bar.close()
                reader.close()
        writer.finish(summary)
        if failure is not None:
            raise failure
        return summary
    finally:
        for reader in readers:
            reader.close()


def _no_progress(total: int, desc: str) -> _NoProgress:
    return _NoProgress()


def _extract_source(
    source_index: int,
    reader: MediaReader,
    stats: SourceSummary,
    bar: Any,
    detector: FaceDetector,
    writer: FacesetWriter,
    options: ExtractOptions,
) -> None:
    def sampled() -> Iterator[Frame]:
        for frame in reader.frames():
            if options.last_frame is not None and frame.index >= options.last_frame:
                break
            stats.frames_read += 1
            bar.update(1)
            if frame.index >= options.first_frame and frame.index % options.every == 0:
                yield frame

    # A still image is all there is: its faces need no track behind them.
    least = 1 if reader.info.kind == "image" else MIN_TRACK_FRAMES
    tracks = TrackFilter(least, gap=DEFAULT_MAX_GAP * options.every)
    session = AlignSession(options.align_options, frame_step=options.every)
    with_face: set[int] = set()

    def write(ready: list[tuple[Frame, AlignedFace]]) -> None:
        for frame, face in ready:
            writer.write(source_index, frame, face)
            stats.faces += 1
            with_face.add(frame.index)

    for frame, faces in analyse_frames(
        sampled(), detector, session, options.selection, options.workers
    ):
        stats.frames_analysed += 1
        write(tracks.add(frame, faces))
    write(tracks.end())
    stats.frames_with_face = len(with_face)


class TrackFilter:
    """Holds each face until its track has been seen in ``least`` analysed
    frames; a track that ends shorter was a false detection (a cartoon, a
    pattern) and its faces are dropped, as the swap pipeline drops them."""

    def __init__(self, least: int, gap: int) -> None:
        self.least = least
        self.gap = gap  # frames without a face that end a track
        self._seen: dict[int, tuple[int, int]] = {}  # track: (faces, last frame index)
        self._held: dict[int, list[tuple[Frame, AlignedFace]]] = {}

    def add(self, frame: Frame, faces: list[AlignedFace]) -> list[tuple[Frame, AlignedFace]]:
        """The faces that can be written now (``frame``'s and earlier ones)."""
        for track, (_, last) in list(self._seen.items()):
            if frame.index - last > self.gap:  # ended
                del self._seen[track]
                self._held.pop(track, None)
        ready: list[tuple[Frame, AlignedFace]] = []
        for face in faces:
            count = self._seen.get(face.track_id, (0, 0))[0] + 1
            self._seen[face.track_id] = (count, frame.index)
            if count < self.least:
                self._held.setdefault(face.track_id, []).append((frame, face))
            else:
                ready += self._held.pop(face.track_id, [])
                ready.append((frame, face))
        return ready

    def end(self) -> list[tuple[Frame, AlignedFace]]:
        """Nothing more: the faces still held belong to tracks too short."""
        self._held.clear()
        self._seen.clear()
        return []


def reference_embedding(
    path: str | os.PathLike[str], detector: DetectorConfig | None = None
) -> np.ndarray:
    """The face embedding of the largest face in the first frame of ``path``."""
    with open_media(path) as reader:
        frame = next(reader.frames())
    session = AlignSession(
        AlignOptions(with_crop=False, with_mask=False, embeddings=True, smoothing=0.0)
    )
    faces = analyse_frame(frame, FaceDetector(detector), session, Selection(SelectMode.LARGEST))
    if not faces or faces[0].embedding is None:
        raise InvalidInputError(f"{path}: no face found in the reference image")
    return faces[0].embedding

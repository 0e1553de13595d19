"""The swap pipeline: detect -> align -> swap -> blend -> encode.

One code path for every mode: the pipeline talks to a ``Stages`` object,
which runs the stage libraries in this process (``EmbeddedStages``) or calls
the stage services over gRPC. Frames are processed in windows: a window's
faces go to the swapper as one batch, and memory holds one window.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, TypeVar

import av
import numpy as np

from swapline import dlib_models
from swapline._ordered import lower_thread_priority, on_every_thread, ordered_map, read_ahead
from swapline.errors import InvalidInputError
from swapline.media import Frame, open_media
from swapline.stages.align import (
    AlignedFace,
    AlignOptions,
    AlignSession,
    FaceType,
    Measurement,
    RegionInput,
    region_around,
    warp_crop,
)
from swapline.stages.blend import BlendOptions, blend_patch, mask_footprint, roi_of
from swapline.stages.blend import prepare as prepare_blending
from swapline.stages.detect import (
    NEAR_CONFIG,
    NEAR_FACE_SIDE,
    DetectInput,
    Detection,
    DetectorConfig,
    FaceDetector,
    Scored,
    merge_detections,
    near_region,
)
from swapline.stages.encode import EncodeOptions, EncodeSummary, FramePatches, Patch, encode
from swapline.stages.swap import ModelEntry, ModelRepository, OnnxEngine

Box = tuple[float, float, float, float]
In = TypeVar("In")
Out = TypeVar("Out")


class AlignStage(Protocol):
    def align(self, regions: Sequence[RegionInput]) -> list[AlignedFace]: ...


class Stages(Protocol):
    """What the pipeline needs from the stages, wherever they run."""

    # The encoder runs in this process and takes the frames the pipeline
    # decoded (FramePatches.frame) instead of decoding the source again.
    takes_decoded_frames: bool

    def model(self, name: str) -> ModelEntry: ...

    @property
    def detects_in_colour(self) -> bool:
        """Whether detection reads colour (the CNN) or intensity only (HOG)."""
        ...

    def detect(self, inputs: Sequence[DetectInput], near: bool = False) -> list[list[Scored]]:
        """Boxes (left, top, right, bottom, score) per input, frame pixels.

        Whole frames, or with ``near`` regions around known faces, already
        scaled by :func:`near_region`.
        """
        ...

    def align_session(self, options: AlignOptions) -> AlignStage: ...

    def swap(self, model: str, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def blend(self, items: Sequence[BlendItem], options: BlendOptions) -> list[Patch]:
        """One BGRA patch (face and alpha) per item, cut to what its alpha
        covers of the item's ROI."""
        ...

    def encode(
        self,
        source: str | os.PathLike[str],
        output: str | os.PathLike[str],
        patches: Iterable[FramePatches],
        options: EncodeOptions,
        model: str,
    ) -> EncodeSummary: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BlendItem:
    """One face to blend into the frame rectangle at ``origin`` of ``size``
    (width, height)."""

    frame_index: int
    face_index: int
    origin: tuple[int, int]
    size: tuple[int, int]
    original: np.ndarray  # the face replaced, as an aligned crop
    swapped: np.ndarray
    swapped_mask: np.ndarray
    hull_mask: np.ndarray | None
    crop_to_frame: np.ndarray
    roi: np.ndarray | None = None  # the frame's pixels there: seamless cloning needs them


class _EmbeddedAlign:
    def __init__(self, options: AlignOptions, stages: EmbeddedStages) -> None:
        self.session = AlignSession(options)
        self.stages = stages

    def align(self, regions: Sequence[RegionInput]) -> list[AlignedFace]:
        measured: list[Measurement] = [
            m
            for group in self.stages.map(self.session.measure, [[r] for r in regions])
            for m in group
        ]
        return self.session.align(regions, measured)


class EmbeddedStages:
    """Every stage in this process: the default, no servers needed."""

    takes_decoded_frames = True

    def __init__(
        self,
        repository: str | Path,
        detector: DetectorConfig | None = None,
        workers: int | None = None,
    ) -> None:
        self.repository = ModelRepository(repository)
        # Inference on the (background-priority) swapping thread itself: an
        # ONNX Runtime pool thread would run at the encoder's priority.
        self.engine = OnnxEngine(self.repository, threads=1)
        self.detector = FaceDetector(detector)
        self.near_detector = FaceDetector(replace(NEAR_CONFIG, model=self.detector.config.model))
        self.workers = workers or os.cpu_count() or 1
        # One long-lived pool: its threads keep their dlib models loaded.
        # Below the encoder's priority: see lower_thread_priority.
        self._pool = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="stage", initializer=lower_thread_priority
        )
        self._warm()

    def _warm(self) -> None:
        """Loads the dlib models into every pool thread now, as a stage
        server does at startup, rather than during a job's first frames."""
        names = (self.detector.model_name, dlib_models.LANDMARKS_68)
        on_every_thread(self._pool, self.workers, lambda: dlib_models.warm(names))
        prepare_blending()

    @property
    def detects_in_colour(self) -> bool:
        return self.detector.reads_colour

    def map(self, work: Callable[[In], Out], items: Iterable[In]) -> Iterator[Out]:
        return ordered_map(work, items, self.workers, pool=self._pool)

    def model(self, name: str) -> ModelEntry:
        return self.engine.load(name)

    def detect(self, inputs: Sequence[DetectInput], near: bool = False) -> list[list[Scored]]:
        detector = self.near_detector if near else self.detector

        def one(item: DetectInput) -> list[Scored]:
            found = detector.detect(item.image, item.source_size, item.origin)
            return [(d.left, d.top, d.right, d.bottom, d.score) for d in found]

        return list(self.map(one, inputs))

    def align_session(self, options: AlignOptions) -> AlignStage:
        return _EmbeddedAlign(options, self)

    def swap(self, model: str, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.engine.infer(model, faces)

    def blend(self, items: Sequence[BlendItem], options: BlendOptions) -> list[Patch]:
        def one(item: BlendItem) -> Patch:
            patch, origin = blend_patch(
                item.roi,
                item.origin,
                item.swapped,
                item.swapped_mask,
                item.hull_mask,
                item.crop_to_frame,
                options,
                original=item.original,
                size=item.size,
            )
            return Patch(origin, patch)

        return list(map(one, items))

    def encode(
        self,
        source: str | os.PathLike[str],
        output: str | os.PathLike[str],
        patches: Iterable[FramePatches],
        options: EncodeOptions,
        model: str,
    ) -> EncodeSummary:
        return encode(source, output, patches, options, model)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class SwapOptions:
    model: str
    blend: BlendOptions = field(default_factory=BlendOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    window: int = 16  # frames per batch of work
    max_faces_per_frame: int = 0  # 0 = every face
    min_track_frames: int = 3  # shorter tracks are false detections
    smoothing: float = 0.5
    # Search whole frames every n-th frame; in between, only around the
    # faces already found (1 = search every whole frame).
    detect_every: int = 4

    def validate(self) -> None:
        if not 1 <= self.detect_every <= 30:
            raise InvalidInputError(f"detect_every must be in 1..30, got {self.detect_every}")
        if self.window < 1:
            raise InvalidInputError(f"window must be >= 1, got {self.window}")


@dataclass
class Progress:
    frames_done: int = 0
    frames_total: int = 0
    faces_swapped: int = 0
    started: float = field(default_factory=time.monotonic)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.frames_done / elapsed if elapsed > 0 else 0.0

    def timed(self, stage: str, start: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - start


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class FrameSlot:
    """A frame past analysis: its place in the output and, when the encoder
    runs in this process, its decoded picture. The full image is dropped:
    what blending needs of it travels in each face's ``Cut``."""

    index: int
    decoded: av.VideoFrame | None = None


@dataclass(frozen=True)
class Cut:
    """An aligned face, its crop (cut from the frame's colour pixels) and
    the frame rectangle the crop lands on (``origin``, ``size``), with the
    frame's pixels there when blending needs them (seamless cloning): all
    that swapping and blending need of the frame."""

    face: AlignedFace
    crop: np.ndarray
    origin: tuple[int, int]
    size: tuple[int, int]
    roi: np.ndarray | None


# A window past analysis: its frames and the faces in it to swap.
Judged = tuple[list[FrameSlot], list[Cut]]


@dataclass(frozen=True)
class Swapped:
    """A judged window with its faces swapped (one row per cut)."""

    frames: list[FrameSlot]
    cuts: list[Cut]
    faces: np.ndarray | None
    masks: np.ndarray | None


def _windows(frames: Iterator[Frame], size: int, first: int | None = None) -> Iterator[list[Frame]]:
    """Consecutive frames in windows of ``size``. With ``first``, the first
    windows are smaller, doubling up to ``size``: the encoder gets its first
    frames sooner instead of idling while whole windows are analysed."""
    target = min(size, first or size)
    window: list[Frame] = []
    for frame in frames:
        window.append(frame)
        if len(window) == target:
            yield window
            window = []
            target = min(size, target * 2)
    if window:
        yield window


def frame_patches(
    source: str | os.PathLike[str],
    stages: Stages,
    options: SwapOptions,
    progress: Progress,
    on_progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[FramePatches]:
    """The blended patches of every frame of ``source``, in order.

    Analysis (detection and alignment), swapping and blending each run on a
    thread of their own, a window apart: with stages over gRPC, servers work
    at once instead of waiting for the one before. Full frames stay only
    until their window is analysed (a thread of its own for detection would
    keep twice as many, for little gain); past that a window holds where
    its faces are, so the later stages' depth costs little memory.
    """
    with open_media(source) as reader:
        if reader.info.kind == "image":
            options = replace(options, min_track_frames=1)  # one frame is all there is
        swapper = FrameSwapper(stages, options)
        progress.frames_total = reader.info.frame_count
        # Windows of at least min_track_frames judge tracks as full ones do.
        first = max(4, options.min_track_frames)
        share = stages.takes_decoded_frames and reader.info.kind == "video"

        def judged() -> Iterator[Judged]:
            frames = reader.frames(keep_decoded=share)
            for window in _windows(frames, options.window, first):
                _check(cancelled)
                yield from swapper.analyse(window, progress, cancelled)
            yield from swapper.flush_analysed()

        def swapped() -> Iterator[Swapped]:
            for window in read_ahead(judged(), depth=1):
                _check(cancelled)
                yield swapper.swap(window, progress)

        for window in read_ahead(swapped(), depth=1):
            _check(cancelled)
            yield from swapper.blend(window, progress)
            if on_progress is not None:
                on_progress(progress)
        if on_progress is not None:
            on_progress(progress)


class FrameSwapper:
    """Swaps the faces of consecutive frames of one video or live stream;
    tracking and smoothing carry over from call to call.

    A face seen in fewer than ``min_track_frames`` frames in a row is taken
    for a false detection (a cartoon, a pattern) and left alone. A window
    with a track still shorter than that at its end comes out with the next
    window, when the track's length is known; :meth:`flush` returns the last
    one. Other windows (every face in a long track, or no face) come out at
    once.

    The steps (:meth:`detect`, :meth:`align`, :meth:`judge`, :meth:`swap`,
    :meth:`blend`) may run on different threads, each step's calls in order.
    """

    def __init__(self, stages: Stages, options: SwapOptions) -> None:
        options.validate()
        self.stages = stages
        self.options = options
        self.entry = stages.model(options.model)
        face_type = FaceType(self.entry.metadata.get("face_type", "whole"))
        # The align stage measures intensity; crops are cut here, from the
        # frame's own pixels (see _cut).
        self.session = stages.align_session(
            AlignOptions(
                size=self.entry.resolution,
                face_type=face_type,
                smoothing=options.smoothing,
                with_crop=False,
            )
        )
        self._track_frames: dict[int, int] = {}
        self._pending: Judged | None = None
        self._frames_seen = 0
        # Where the faces of the last analysed frame are: the next frames'
        # hints until the detector runs again.
        self._last_boxes: list[Box] = []

    def process(
        self,
        window: list[Frame],
        progress: Progress,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Iterator[FramePatches]:
        """Every step for ``window``, on this thread: the patches of every
        window judged by now (the previous one, or this one when nothing is
        delayed)."""
        for judged in self.analyse(window, progress, cancelled):
            yield from self.finish(judged, progress, cancelled)

    def flush(self, progress: Progress) -> Iterator[FramePatches]:
        for judged in self.flush_analysed():
            yield from self.finish(judged, progress)

    def analyse(
        self,
        window: list[Frame],
        progress: Progress,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> list[Judged]:
        """Detects and aligns ``window``'s faces and returns the windows
        whose faces can now be judged."""
        boxes = self.detect(window, progress)
        _check(cancelled)
        aligned = self.align(window, boxes, progress)
        _check(cancelled)
        return self.judge(window, aligned)

    def finish(
        self,
        judged: Judged,
        progress: Progress,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Iterator[FramePatches]:
        """Swaps and blends the kept faces of a judged window."""
        swapped = self.swap(judged, progress)
        _check(cancelled)
        return self.blend(swapped, progress)

    def judge(self, window: list[Frame], aligned: list[AlignedFace]) -> list[Judged]:
        """Counts ``window``'s faces into their tracks (windows in order)
        and returns the windows whose faces can now be judged, with the
        faces kept and the frame pixels under them."""
        for face in aligned:
            self._track_frames[face.track_id] = self._track_frames.get(face.track_id, 0) + 1
        current = self._cut(window, aligned)
        least = self.options.min_track_frames
        judged = [] if self._pending is None else [self._kept(self._pending)]
        self._pending = None
        if all(self._track_frames[face.track_id] >= least for face in aligned):
            judged.append(current)  # every face's track is long enough already
        else:
            self._pending = current
        return judged

    def flush_analysed(self) -> list[Judged]:
        """The last window, judged on what was seen."""
        pending, self._pending = self._pending, None
        return [] if pending is None else [self._kept(pending)]

    def _kept(self, judged: Judged) -> Judged:
        frames, cuts = judged
        least = self.options.min_track_frames
        return frames, [c for c in cuts if self._track_frames.get(c.face.track_id, 0) >= least]

    def _cut(self, window: list[Frame], aligned: list[AlignedFace]) -> Judged:
        """The window without its full images: each face gets its crop, cut
        from the colour pixels of the rectangle it lands on (all of the
        frame converted to BGR), and keeps where that is (and the pixels,
        if blending needs them)."""
        frames = {frame.index: frame for frame in window}
        keep_pixels = self.options.blend.seamless_clone
        size = self.entry.resolution
        cuts: list[Cut] = []
        for face in aligned:
            frame = frames[face.frame_index]
            x0, y0, x1, y1 = roi_of(face.aligned.crop_to_frame, size, frame.size)
            if x1 > x0 and y1 > y0:
                pixels = frame.region(x0, y0, x1, y1)
                crop = warp_crop(pixels, face.aligned.frame_to_crop, size, (x0, y0))
                roi = np.ascontiguousarray(pixels) if keep_pixels else None
                cuts.append(Cut(face, crop, (x0, y0), (x1 - x0, y1 - y0), roi))
        return [FrameSlot(frame.index, frame.decoded) for frame in window], cuts

    def align(
        self, window: list[Frame], boxes: list[list[Scored]], progress: Progress
    ) -> list[AlignedFace]:
        """Landmarks, crops and masks of the faces found (frames in order:
        tracking carries over)."""
        regions: list[RegionInput] = []
        for frame, found in zip(window, boxes, strict=True):
            if self.options.max_faces_per_frame:
                found = found[: self.options.max_faces_per_frame]
            for face_index, (left, top, right, bottom, score) in enumerate(found):
                box = (left, top, right, bottom)
                x0, y0, x1, y1 = region_around(box, frame.size)
                regions.append(
                    RegionInput(
                        frame.index,
                        face_index,
                        frame.grey[y0:y1, x0:x1],
                        (float(x0), float(y0)),
                        box,
                        score,
                    )
                )
        start = time.perf_counter()
        aligned = self.session.align(regions) if regions else []
        progress.timed("align", start)
        return aligned

    def detect(self, window: list[Frame], progress: Progress) -> list[list[Scored]]:
        """Boxes per frame, largest first. Every ``detect_every``-th frame is
        searched whole; the frames in between only around the faces of the
        last searched frame, which costs a fraction and keeps each box a
        real detection. A face entering the picture is found at the next
        whole-frame search."""
        start = time.perf_counter()
        every = self.options.detect_every
        first = self._frames_seen
        self._frames_seen += len(window)
        keyframes = [f for i, f in enumerate(window) if (first + i) % every == 0]
        whole = self.stages.detect([DetectInput(f.index, self._picture(f)) for f in keyframes])
        found: dict[int, list[Scored]] = {
            f.index: _largest_first(faces) for f, faces in zip(keyframes, whole, strict=True)
        }
        near: list[DetectInput] = []
        small: list[Frame] = []
        hints = self._last_boxes
        for frame in window:
            if frame.index in found:
                hints = [b[:4] for b in found[frame.index]]
            elif any(max(b[2] - b[0], b[3] - b[1]) < NEAR_FACE_SIDE for b in hints):
                # A region would have to be enlarged: its boxes would differ
                # from whole-frame ones, and small frames are cheap anyway.
                small.append(frame)
            else:
                picture = self._picture(frame)
                near.extend(near_region(frame.index, picture, box) for box in hints)
        if small:
            more = self.stages.detect([DetectInput(f.index, self._picture(f)) for f in small])
            found.update(
                (f.index, _largest_first(faces)) for f, faces in zip(small, more, strict=True)
            )
        if near:
            by_frame: dict[int, list[Detection]] = {}
            for item, faces in zip(near, self.stages.detect(near, near=True), strict=True):
                by_frame.setdefault(item.index, []).extend(Detection(*b) for b in faces)
            for index, detections in by_frame.items():
                merged = merge_detections(detections)
                found[index] = _largest_first(
                    (d.left, d.top, d.right, d.bottom, d.score) for d in merged
                )
        boxes = [found.get(frame.index, []) for frame in window]
        self._last_boxes = [b[:4] for b in boxes[-1]] if every > 1 else []
        progress.timed("detect", start)
        return boxes

    def _picture(self, frame: Frame) -> np.ndarray:
        """What the detector reads of a frame: intensity unless it needs colour."""
        return frame.image if self.stages.detects_in_colour else frame.grey

    def swap(self, judged: Judged, progress: Progress) -> Swapped:
        """The window's kept faces through the swap model, one batch."""
        frames, cuts = judged
        if not cuts:
            return Swapped(frames, cuts, None, None)
        start = time.perf_counter()
        crops = np.stack([c.crop for c in cuts])
        faces, masks = self.stages.swap(self.options.model, crops)
        progress.timed("swap", start)
        return Swapped(frames, cuts, faces, masks)

    def blend(self, swapped: Swapped, progress: Progress) -> Iterator[FramePatches]:
        """Blends a swapped window's faces and yields every frame's patches."""
        items: list[BlendItem] = []
        size = self.entry.resolution
        for i, cut in enumerate(swapped.cuts):
            assert swapped.faces is not None and swapped.masks is not None
            face = cut.face
            mask = swapped.masks[i][..., 0]
            # Only the part of the crop the blended face can cover.
            footprint = mask_footprint(size, mask, face.aligned.mask, self.options.blend)
            cx, cy = cut.origin
            x0, y0, x1, y1 = roi_of(
                face.aligned.crop_to_frame - np.array([[0, 0, cx], [0, 0, cy]]),
                size,
                cut.size,
                footprint=footprint,
            )
            if x1 <= x0 or y1 <= y0:
                continue
            items.append(
                BlendItem(
                    face.frame_index,
                    face.face_index,
                    (cx + x0, cy + y0),
                    (x1 - x0, y1 - y0),
                    cut.crop,
                    swapped.faces[i],
                    mask,
                    face.aligned.mask,
                    face.aligned.crop_to_frame,
                    None if cut.roi is None else cut.roi[y0:y1, x0:x1],
                )
            )
        start = time.perf_counter()
        blended = self.stages.blend(items, self.options.blend) if items else []
        progress.timed("blend", start)
        by_frame: dict[int, list[Patch]] = {}
        for item, patch in zip(items, blended, strict=True):
            by_frame.setdefault(item.frame_index, []).append(patch)
        for frame in swapped.frames:
            patches = by_frame.get(frame.index, [])
            progress.faces_swapped += len(patches)
            progress.frames_done += 1
            yield FramePatches(frame.index, patches, frame.decoded)


def _largest_first(boxes: Iterable[Scored]) -> list[Scored]:
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def _check(cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise InterruptedError("cancelled")


def swap_file(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    stages: Stages,
    options: SwapOptions,
    on_progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[EncodeSummary, Progress]:
    """Swaps every face of ``source`` and writes ``output``.

    The model is looked up and the input opened before any work; a failure
    leaves no output file behind.
    """
    stages.model(options.model)  # NOT_FOUND before any work
    with open_media(source) as reader:
        if reader.info.kind == "image" and Path(output).suffix.lower() not in (
            ".png",
            ".jpg",
            ".jpeg",
        ):
            raise InvalidInputError(f"{output}: a still image needs a .png or .jpg output")
    progress = Progress()
    patches = read_ahead(
        frame_patches(source, stages, options, progress, on_progress, cancelled),
        depth=options.window,
        background=True,
    )
    summary = stages.encode(source, output, patches, options.encode, options.model)
    return summary, progress

"""The frame driver: detect -> align -> judge -> swap -> blend over the
windows of a video, with the stages wherever they run (:class:`Stages`),
and :func:`swap_file`, which encodes what it yields.

Frames are processed in windows: a window's faces go to the swapper as one
batch, and memory holds a window or two.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from swapline.concurrency import read_ahead
from swapline.errors import InvalidInputError
from swapline.media import Frame, open_media
from swapline.pipeline.contract import Stages
from swapline.pipeline.judge import TrackJudge
from swapline.pipeline.options import Progress, ProgressCallback, SwapOptions
from swapline.pipeline.references import prepare_swap
from swapline.pipeline.steps import Cut, FrameSlot, Judged, Swapped, blend_area, cut_face
from swapline.stages.align import (
    AlignedFace,
    AlignOptions,
    FaceType,
    RegionInput,
    face_chip,
    region_around,
)
from swapline.stages.blend import BlendItem
from swapline.stages.detect import (
    NEAR_FACE_SIDE,
    DetectInput,
    Detection,
    Scored,
    merge_detections,
    near_region,
)
from swapline.stages.encode import EncodeSummary, FramePatches
from swapline.stages.follow import FaceFollower, ShotCuts, is_followed
from swapline.stages.paste import Patch
from swapline.stages.select import SelectMode, TrackVotes, choose_faces
from swapline.stages.swap import ModelEntry

Box = tuple[float, float, float, float]
# Votes of a track not sampled for this many frames are dropped (it ended).
_VOTES_KEPT_FRAMES = 600
T = TypeVar("T")


def _never() -> bool:
    return False


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
    cancelled: Callable[[], bool] = _never,
) -> Iterator[FramePatches]:
    """The blended patches of every frame of ``source``, in order, with the
    steps on threads of their own (:meth:`FrameSwapper.run`)."""
    with open_media(source) as reader:
        if reader.info.kind == "image":
            options = replace(options, min_track_frames=1)  # one frame is all there is
        swapper = FrameSwapper(stages, options)
        progress.frames_total = reader.info.frame_count
        # Windows of at least min_track_frames judge tracks as full ones do.
        first = max(4, options.min_track_frames)
        share = stages.takes_decoded_frames and reader.info.kind == "video"
        windows = _windows(reader.frames(keep_decoded=share), options.window, first)
        yield from swapper.run(windows, progress, cancelled, on_progress=on_progress, threaded=True)


class FrameSwapper:
    """Swaps the faces of consecutive frames of one video or live stream;
    tracking and smoothing carry over from call to call.

    A face the detector misses for a few frames in the middle of a shot (a
    hand or a microphone over it, a flash, a quick turn) is followed
    (:class:`~swapline.stages.follow.FaceFollower`) and swapped once it is
    found again, so a swapped face never turns back into the real one for a
    moment. A face seen in fewer than ``min_track_frames`` frames is taken
    for a false detection and left alone. Windows wait for what later
    frames show (:class:`~swapline.pipeline.judge.TrackJudge`).

    :meth:`run` drives the steps (:meth:`detect`, :meth:`align`,
    :meth:`judge`, :meth:`end`, :meth:`swap`, :meth:`blend`), on one thread
    or a thread each; each step's calls come in order.
    """

    def __init__(self, stages: Stages, options: SwapOptions) -> None:
        options.validate()
        self.stages = stages
        options = prepare_swap(options, stages)
        self.options = options
        self.entry = _common_geometry([stages.model(m) for m in options.models])
        face_type = FaceType(self.entry.face_type)
        self._votes = (
            TrackVotes(options.selection)
            if options.selection.mode is SelectMode.REFERENCE
            else None
        )
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
        self._judge = TrackJudge(options.min_track_frames)
        self._follower = FaceFollower()
        self._shots = ShotCuts()
        self._shot_of: dict[int, int] = {}  # frame index -> shot, frames in flight
        self._track_area: dict[int, tuple[float, int, int]] = {}  # sum, count, last frame
        self._frames_seen = 0
        # Where the faces of the last analysed frame are: the next frames'
        # hints until the detector runs again.
        self._last_boxes: list[Box] = []

    def run(
        self,
        windows: Iterable[list[Frame]],
        progress: Progress,
        cancelled: Callable[[], bool] = _never,
        *,
        end: bool = True,
        threaded: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Iterator[FramePatches]:
        """The patches of every frame of ``windows``, in order: the one way
        to drive the steps.

        With ``end`` False a window whose tracks cannot be judged yet stays
        back for the next call (a live stream); with ``end`` the last one
        comes out judged on what was seen. ``threaded`` runs analysis
        (detection and alignment), swapping and blending on a thread each, a
        window apart: with stages over gRPC, servers work at once instead of
        waiting for the one before. Full frames stay only until their window
        is analysed (a thread of its own for detection would keep twice as
        many, for little gain); past that a window holds where its faces
        are, so the later steps' depth costs little memory.
        """

        def judged() -> Iterator[Judged]:
            for window in windows:
                _check(cancelled)
                yield from self.analyse(window, progress, cancelled)
            if end:
                yield from self.end()

        def swapped(windows: Iterable[Judged]) -> Iterator[Swapped]:
            for window in windows:
                _check(cancelled)
                yield self.swap(window, progress)

        # Closed on the way out, whatever ends the run, outer first: the
        # read-ahead threads stop before the caller closes the input they
        # decode.
        analysed = _ahead(judged(), threaded)
        ahead = _ahead(swapped(analysed), threaded)
        try:
            for window in ahead:
                _check(cancelled)
                yield from self.blend(window, progress)
                if on_progress is not None:
                    on_progress(progress)
        finally:
            for reader in (ahead, analysed):
                getattr(reader, "close", lambda: None)()
        if on_progress is not None:
            on_progress(progress)

    def analyse(
        self,
        window: list[Frame],
        progress: Progress,
        cancelled: Callable[[], bool] = _never,
    ) -> list[Judged]:
        """Detects and aligns ``window``'s faces and returns the windows
        whose faces can now be judged."""
        boxes = self.detect(window, progress)
        _check(cancelled)
        aligned = self.align(window, boxes, progress)
        _check(cancelled)
        self._count_areas(aligned)
        if self._votes is not None:
            self.identify(window, aligned, progress)
        return self.judge(window, aligned)

    def identify(self, window: list[Frame], aligned: list[AlignedFace], progress: Progress) -> None:
        """Embeds the faces whose tracks want another vote (a few per track:
        see :class:`~swapline.stages.select.TrackVotes`); what travels is a
        small chip per face."""
        votes = self._votes
        if votes is None:
            return
        frames = {frame.index: frame for frame in window}
        sampled: list[tuple[int, int]] = []
        chips: list[np.ndarray] = []
        for face in aligned:
            key = self._track_key(face)
            if is_followed(face.score) or not votes.take_sample(key, face.frame_index):
                continue
            frame = frames[face.frame_index]
            x0, y0, x1, y1 = region_around(face.box, frame.size)
            chips.append(face_chip(frame.region(x0, y0, x1, y1), face.raw_landmarks, (x0, y0)))
            sampled.append(key)
        if chips:
            start = time.perf_counter()
            embeddings = self.stages.embed(np.stack(chips))
            progress.timed("identify", start)
            for key, embedding in zip(sampled, embeddings, strict=True):
                votes.add(key, embedding)
        if window:
            oldest = window[-1].index - _VOTES_KEPT_FRAMES
            votes.forget_before(oldest)

    def _track_key(self, face: AlignedFace) -> tuple[int, int]:
        return face.track_id, self._shot_of.get(face.frame_index, 0)

    def judge(self, window: list[Frame], aligned: list[AlignedFace]) -> list[Judged]:
        """The windows whose faces can now be judged (see
        :class:`~swapline.pipeline.judge.TrackJudge`), with the faces kept
        and the frame pixels under them."""
        return [self._drawn(j) for j in self._judge.add(self._cut(window, aligned), aligned)]

    def end(self) -> list[Judged]:
        """Every window held back, judged on what was seen (the end of a
        video)."""
        return [self._drawn(j) for j in self._judge.end()]

    def _drawn(self, judged: Judged) -> Judged:
        """The judged window's faces that the selection keeps, each with the
        model that draws it; with reference selection, only faces whose
        track matched a target."""
        frames, cuts = judged
        matched: list[Cut] = []
        for cut in cuts:
            if self._votes is None:
                matched.append(replace(cut, model=self.options.model))
                continue
            target = self._votes.target(self._track_key(cut.face))
            if target is not None:
                matched.append(replace(cut, model=target.model))
        by_frame: dict[int, list[Cut]] = {}
        for cut in matched:
            by_frame.setdefault(cut.face.frame_index, []).append(cut)
        drawn: list[Cut] = []
        for frame_cuts in by_frame.values():
            areas = [self._mean_area(c.face.track_id) for c in frame_cuts]
            boxes = [c.face.box for c in frame_cuts]
            drawn.extend(frame_cuts[i] for i in choose_faces(self.options.selection, boxes, areas))
        return frames, drawn

    def _count_areas(self, aligned: list[AlignedFace]) -> None:
        """Each track's mean face area so far (what ``largest`` ranks by)."""
        for face in aligned:
            left, top, right, bottom = face.box
            total, count, _ = self._track_area.get(face.track_id, (0.0, 0, 0))
            area = (right - left) * (bottom - top)
            self._track_area[face.track_id] = (total + area, count + 1, face.frame_index)
        if aligned:
            oldest = aligned[-1].frame_index - _VOTES_KEPT_FRAMES
            for track in [t for t, (_, _, last) in self._track_area.items() if last < oldest]:
                del self._track_area[track]

    def _mean_area(self, track_id: int) -> float:
        total, count, _ = self._track_area.get(track_id, (0.0, 1, 0))
        return total / max(count, 1)

    def _cut(self, window: list[Frame], aligned: list[AlignedFace]) -> Judged:
        """The window without its full images: each face's :class:`Cut`."""
        frames = {frame.index: frame for frame in window}
        keep_pixels = self.options.blend.seamless_clone
        size = self.entry.resolution
        cuts = [cut_face(frames[face.frame_index], face, size, keep_pixels) for face in aligned]
        slots = [FrameSlot(frame.index, frame.decoded) for frame in window]
        return slots, [cut for cut in cuts if cut is not None]

    def align(
        self, window: list[Frame], boxes: list[list[Scored]], progress: Progress
    ) -> list[AlignedFace]:
        """Landmarks, crops and masks of the faces found (frames in order:
        tracking carries over)."""
        regions: list[RegionInput] = []
        for frame, found in zip(window, boxes, strict=True):
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
        # A new shot is searched whole at once (a face that just came on
        # screen is found now, not at the next whole-frame search).
        cuts = set()
        for frame in window:
            if self._shots.update(frame.grey):
                cuts.add(frame.index)
            self._shot_of[frame.index] = self._shots.shot
        if window:  # frames long judged are forgotten: memory stays bounded
            oldest = window[-1].index - _VOTES_KEPT_FRAMES
            for index in [i for i in self._shot_of if i < oldest]:
                del self._shot_of[index]
        keyframes = [f for i, f in enumerate(window) if (first + i) % every == 0 or f.index in cuts]
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
        # Faces the detector missed but were there a frame before are
        # followed (kept only once found again: see TrackJudge).
        boxes = [
            _largest_first(self._follower.update(frame.grey, found.get(frame.index, [])))
            for frame in window
        ]
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
        mask = self.options.blend.model_mask
        size = self.entry.resolution
        faces = np.empty((len(cuts), size, size, 3), np.uint8)
        masks = np.empty((len(cuts), size, size, 1), np.uint8)
        # One batch per model (one model, one batch, unless faces are mapped).
        for model in dict.fromkeys(c.model for c in cuts):
            rows = [i for i, c in enumerate(cuts) if c.model == model]
            drawn, drawn_masks = self.stages.swap(
                model, np.stack([cuts[i].crop for i in rows]), mask
            )
            faces[rows], masks[rows] = drawn, drawn_masks
        progress.timed("swap", start)
        return Swapped(frames, cuts, faces, masks)

    def blend(self, swapped: Swapped, progress: Progress) -> Iterator[FramePatches]:
        """Blends a swapped window's faces and yields every frame's patches."""
        items: list[BlendItem] = []
        if swapped.faces is not None and swapped.masks is not None:
            for cut, face, mask in zip(swapped.cuts, swapped.faces, swapped.masks, strict=True):
                size = self.entry.resolution
                item = blend_area(cut, face, mask[..., 0], size, self.options.blend)
                if item is not None:
                    items.append(item)
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


def _common_geometry(entries: list[ModelEntry]) -> ModelEntry:
    """The first entry, once every model is known to cut faces alike: the
    faces of one pass are aligned once, at one size and face type."""
    first = entries[0]
    for entry in entries[1:]:
        if (entry.resolution, entry.face_type) != (first.resolution, first.face_type):
            raise InvalidInputError(
                f"models mapped in one pass must share resolution and face type: "
                f"{first.name} is {first.resolution} px {first.face_type}, "
                f"{entry.name} {entry.resolution} px {entry.face_type}"
            )
    return first


def _largest_first(boxes: Iterable[Scored]) -> list[Scored]:
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def _ahead(items: Iterator[T], threaded: bool) -> Iterator[T]:
    """``items`` produced on a thread of their own one ahead, if ``threaded``."""
    return read_ahead(items, depth=1) if threaded else items


def _check(cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise InterruptedError("cancelled")


def swap_file(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    stages: Stages,
    options: SwapOptions,
    on_progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] = _never,
) -> tuple[EncodeSummary, Progress]:
    """Swaps every face of ``source`` and writes ``output``.

    The model is looked up and the input opened before any work; a failure
    leaves no output file behind.
    """
    options = prepare_swap(options, stages)  # NOT_FOUND, references: before any work
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
    try:
        summary = stages.encode(source, output, patches, options.encode, ",".join(options.models))
    finally:
        # Whatever stopped the encoder, the face work stops too, now: its
        # threads must not outlive the call (nor run on while Python exits).
        patches.close()
    return summary, progress

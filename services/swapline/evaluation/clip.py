"""``swapline eval``: how a swapped clip looks, measured against its input.

For every frame of the input with a face (the largest one), on the input
and the swapped output at the same place:

* identity — whether the output face's dlib embedding is nearer the source
  identity (A, from a reference clip, image or faceset) than the target
  identity (B: by default the input's own faces), and its cosine similarity
  to A;
* expression and pose — the 68-landmark distance between output and input
  face, in inter-ocular distances;
* temporal stability — frame-to-frame jitter (second differences) of the
  landmarks and of the face region's mean colour, output against input;
* background — PSNR outside the region the blender may change.

The report's contact sheets show whole frames (input, output) and, at full
resolution around the face, input, what the swap changed and output (the
close-ups: whether a hand or a microphone stayed in front of the face).

Frames are read in lockstep and measured one at a time; only per-frame
numbers and a few contact-sheet thumbnails are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from swapline.errors import InvalidInputError
from swapline.evaluation.appearance import CHANGED, Appearance, change, sharpness
from swapline.evaluation.quality import (
    MaskedPsnr,
    identity_nearness,
    inter_ocular,
    jitter,
    landmark_error,
)
from swapline.media import Frame, open_media
from swapline.stages.align import (
    FaceType,
    face_embedding,
    find_landmarks,
    frame_to_crop_matrix,
    invert_affine,
)
from swapline.stages.blend import roi_of
from swapline.stages.detect import FaceDetector

THUMB_WIDTH = 320
CLOSEUP_HEIGHT = 256  # close-ups smaller than this are enlarged (nearest)


@dataclass(frozen=True)
class Closeup:
    """The face region of one frame at full resolution: input, the pixels
    the swap changed (red over the dimmed input), output."""

    index: int
    input: np.ndarray
    changed: np.ndarray
    output: np.ndarray


@dataclass
class FrameMeasure:
    index: int
    nearer_source: bool
    source_cosine: float
    expression_error: float


@dataclass
class ClipEvaluation:
    frames: int
    faces: int
    identity_score: float
    source_cosine: float
    expression_error: float
    landmark_jitter_input: float
    landmark_jitter_output: float
    landmark_jitter_increase: float
    colour_jitter_input: float
    colour_jitter_output: float
    colour_jitter_increase: float
    background_psnr_db: float
    sharpness_output: float = 0.0
    sharpness_vs_input: float = 0.0
    sharpness_vs_source: float = 0.0  # 0 when the source's sharpness is unknown
    seam_vs_input: float = 0.0
    spill_share: float = 0.0
    flicker_vs_input: float = 0.0
    per_frame: list[FrameMeasure] = field(default_factory=list)
    landmark_jitter_per_frame: dict[str, list[float]] = field(default_factory=dict)
    appearance_per_frame: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int | str]:
        out: dict[str, float | int | str] = {}
        for key, value in asdict(self).items():
            if key in ("per_frame", "landmark_jitter_per_frame", "appearance_per_frame"):
                continue
            out[key] = "inf" if isinstance(value, float) and math.isinf(value) else value
        return out


def _largest(detector: FaceDetector, image: np.ndarray) -> tuple[float, float, float, float] | None:
    faces = detector.detect(image)
    if not faces:
        return None
    best = max(faces, key=lambda d: d.area)
    return (best.left, best.top, best.right, best.bottom)


def _frames(path: str | Path, every: int = 1) -> Iterator[Frame]:
    with open_media(path) as reader:
        for frame in reader.frames():
            if frame.index % every == 0:
                yield frame


def reference_embedding(
    path: str | Path, detector: FaceDetector | None = None, limit: int = 40
) -> np.ndarray:
    """The mean dlib embedding of one person: the largest face of up to
    ``limit`` frames spread over a clip, an image, or a faceset's crops."""
    return reference_measures(path, detector, limit)[0]


def reference_measures(
    path: str | Path, detector: FaceDetector | None = None, limit: int = 40
) -> tuple[np.ndarray, float]:
    """:func:`reference_embedding` and the mean sharpness of the same faces
    (see :func:`swapline.evaluation.appearance.sharpness`)."""
    path = Path(path)
    detector = detector or FaceDetector()
    if path.is_dir():
        crops = sorted((path / "faces").glob("*.*")) or sorted(path.glob("*.jpg"))
        step = max(1, len(crops) // limit)
        images: Iterator[np.ndarray] = (
            image for p in crops[::step] if (image := cv2.imread(str(p))) is not None
        )
    else:
        with open_media(path) as reader:
            total = reader.info.frame_count or limit
        images = (f.image for f in _frames(path, max(1, total // limit)))
    embeddings, sharp = [], []
    for image in images:
        box = _largest(detector, image)
        if box is not None:
            landmarks = find_landmarks(image, box)
            embeddings.append(face_embedding(image, landmarks))
            sharp.append(sharpness(image, landmarks))
        if len(embeddings) >= limit:
            break
    if not embeddings:
        raise InvalidInputError(f"{path}: no face found to take the identity from")
    return np.mean(embeddings, axis=0), float(np.mean(sharp))


def changeable_region(
    landmarks: np.ndarray, frame_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The rectangle a whole-face swap may change: the crop's square in the
    frame with a 10% margin (smoothing can shift it a little)."""
    size = 256
    crop_to_frame = invert_affine(frame_to_crop_matrix(landmarks, size, FaceType.WHOLE))
    x0, y0, x1, y1 = roi_of(crop_to_frame, size, frame_size)
    pad = (x1 - x0) // 10
    width, height = frame_size
    return max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad)


def _hull_mean(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    x0, y0 = np.floor(landmarks.min(0)).astype(int).clip(0)
    x1, y1 = np.ceil(landmarks.max(0)).astype(int) + 1
    region = image[y0:y1, x0:x1]
    if region.size == 0:
        return np.zeros(3)
    mask = np.zeros(region.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull((landmarks - [x0, y0]).astype(np.int32)), (255,))
    return np.asarray(cv2.mean(region, mask=mask)[:3])


def _lockstep(original: str | Path, swapped: str | Path) -> Iterator[tuple[Frame, Frame]]:
    try:
        yield from zip(_frames(original), _frames(swapped), strict=True)
    except ValueError:
        raise InvalidInputError(
            f"{Path(swapped).name} and {Path(original).name} differ in frame count"
        ) from None


def _thumb(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    return cv2.resize(image, (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width))))


def closeup(
    index: int, before: np.ndarray, after: np.ndarray, region: tuple[int, int, int, int]
) -> Closeup:
    """``region`` (x0, y0, x1, y1) of input and output, and the change."""
    x0, y0, x1, y1 = region
    a, b = before[y0:y1, x0:x1], after[y0:y1, x0:x1]
    diff = change(a, b)
    changed = (cv2.cvtColor(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) * 0.35).astype(
        np.uint8
    )
    hot = diff > CHANGED
    changed[hot, 2] = np.clip(96 + diff[hot].astype(np.int32) * 4, 0, 255).astype(np.uint8)
    scale = max(1.0, CLOSEUP_HEIGHT / max(1, y1 - y0))
    images = [
        cv2.resize(i, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        if scale > 1
        else i.copy()
        for i in (a, changed, b)
    ]
    return Closeup(index, *images)


def _face_region(
    box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The face box widened by half its size each way, inside the frame."""
    left, top, right, bottom = box
    pad = 0.5 * max(right - left, bottom - top)
    width, height = size
    return (
        max(0, int(left - pad)),
        max(0, int(top - pad)),
        min(width, int(right + pad)),
        min(height, int(bottom + pad)),
    )


def evaluate_clip(
    original: str | Path,
    swapped: str | Path,
    source: np.ndarray,
    target: np.ndarray | None = None,
    frames: tuple[int, int | None] = (0, None),
    contact: int = 6,
    on_frame: Callable[[int], None] | None = None,
    closeups: tuple[int, int | None] | None = None,
    closeup_count: int = 7,
    source_sharpness: float | None = None,
) -> tuple[ClipEvaluation, list[tuple[int, np.ndarray, np.ndarray]], list[Closeup]]:
    """Measures ``swapped`` against ``original`` (the same frames in the same
    order). ``source``/``target`` are mean embeddings of identities A and B;
    B defaults to the mean of the original's own faces. Also returns up to
    ``contact`` (index, input, output) thumbnails for a contact sheet, and
    ``closeup_count`` close-ups of the face spread over the frames
    ``closeups`` (START, END; default: the thumbnails' frames). A frame
    where no face is found is shown where the face was last seen.
    ``source_sharpness`` (see :func:`reference_measures`) makes the output's
    sharpness also a ratio to the source identity's own faces."""
    detector = FaceDetector()
    start, end = frames
    with open_media(original) as reader, open_media(swapped) as other:
        total = reader.info.frame_count
        sizes = (reader.info.width, reader.info.height), (other.info.width, other.info.height)
        if other.info.frame_count != total or sizes[0] != sizes[1]:
            raise InvalidInputError(
                f"{Path(swapped).name} is not a swapped version of {Path(original).name}: "
                f"{other.info.frame_count} frames of {sizes[1][0]}x{sizes[1][1]} against "
                f"{total} of {sizes[0][0]}x{sizes[0][1]}"
            )
    stop = min(end if end is not None else total, total)
    picks = set(np.linspace(start, max(start, stop - 1), contact).round().astype(int).tolist())
    if closeups is None:
        close_picks = picks
    else:
        first = closeups[0]
        last = stop if closeups[1] is None else min(closeups[1], stop)
        close_picks = set(
            np.linspace(first, max(first, last - 1), closeup_count).round().astype(int).tolist()
        )
    close: list[Closeup] = []
    last_box: tuple[float, float, float, float] | None = None
    background = MaskedPsnr()
    appearance = Appearance()
    indices: list[int] = []
    errors: list[float] = []
    # per measured frame: output embedding, landmarks and face colour in/out
    embeddings: list[np.ndarray] = []
    inputs: list[np.ndarray] = []
    outputs: list[np.ndarray] = []
    colours_in: list[np.ndarray] = []
    colours_out: list[np.ndarray] = []
    originals: list[np.ndarray] = []
    thumbs: list[tuple[int, np.ndarray, np.ndarray]] = []
    evaluated = 0
    for before, after in _lockstep(original, swapped):
        if before.index < start or (end is not None and before.index >= end):
            continue
        if before.image.shape != after.image.shape:
            raise InvalidInputError("the swapped clip's frames differ in size from the input's")
        evaluated += 1
        a, b = before.image, after.image
        height, width = a.shape[:2]
        keep = np.ones((height, width), bool)
        box = _largest(detector, a)
        last_box = box or last_box
        if before.index in close_picks and last_box is not None:
            close.append(closeup(before.index, a, b, _face_region(last_box, (width, height))))
        if box is not None:
            lm_in = find_landmarks(a, box)
            lm_out = find_landmarks(b, box)
            x0, y0, x1, y1 = changeable_region(lm_in, (width, height))
            keep[y0:y1, x0:x1] = False
            indices.append(before.index)
            embeddings.append(face_embedding(b, lm_out))
            if target is None:
                originals.append(face_embedding(a, lm_in))
            inputs.append(lm_in)
            outputs.append(lm_out)
            colours_in.append(_hull_mean(a, lm_in))
            colours_out.append(_hull_mean(b, lm_out))
            errors.append(landmark_error(lm_out, lm_in))
            appearance.add(a, b, lm_in)
        else:
            appearance.gap()
        background.add(a, b, keep)
        if before.index in picks:
            thumbs.append((before.index, _thumb(a), _thumb(b)))
        if on_frame is not None:
            on_frame(before.index)
    if not indices:
        raise InvalidInputError(f"{original}: no face in the evaluated frames")
    target_mean = target if target is not None else np.mean(originals, axis=0)
    nearer, cosine = identity_nearness(np.array(embeddings), source, target_mean)
    scales = np.array([inter_ocular(lm) for lm in inputs])
    jitter_in = jitter(np.array(inputs), scales)
    jitter_out = jitter(np.array(outputs), scales)
    colour_in = jitter(np.array(colours_in)[:, None, :])
    colour_out = jitter(np.array(colours_out)[:, None, :])

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if len(values) else 0.0

    looks = appearance.summary(source_sharpness)
    evaluation = ClipEvaluation(
        frames=evaluated,
        faces=len(indices),
        identity_score=float(nearer.mean()),
        source_cosine=float(cosine.mean()),
        expression_error=float(np.mean(errors)),
        landmark_jitter_input=mean(jitter_in),
        landmark_jitter_output=mean(jitter_out),
        landmark_jitter_increase=mean(jitter_out) - mean(jitter_in),
        colour_jitter_input=mean(colour_in),
        colour_jitter_output=mean(colour_out),
        colour_jitter_increase=mean(colour_out) - mean(colour_in),
        background_psnr_db=background.value,
        sharpness_output=looks["sharpness_output"],
        sharpness_vs_input=looks["sharpness_vs_input"],
        sharpness_vs_source=looks.get("sharpness_vs_source", 0.0),
        seam_vs_input=looks["seam_vs_input"],
        spill_share=looks["spill_share"],
        flicker_vs_input=looks["flicker_vs_input"],
        appearance_per_frame=appearance.per_frame(),
        per_frame=[
            FrameMeasure(i, bool(n), float(c), float(e))
            for i, n, c, e in zip(indices, nearer, cosine, errors, strict=True)
        ],
        landmark_jitter_per_frame={
            "frames": [float(i) for i in indices[1:-1]],
            "input": jitter_in.tolist(),
            "output": jitter_out.tolist(),
        },
    )
    return evaluation, thumbs, close


def _stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    return np.vstack(
        [cv2.copyMakeBorder(r, 0, 4, 0, width - r.shape[1], cv2.BORDER_CONSTANT) for r in rows]
    )


def _caption(image: np.ndarray, text: str) -> None:
    cv2.putText(
        image, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA
    )


def write_report(
    evaluation: ClipEvaluation,
    thumbs: list[tuple[int, np.ndarray, np.ndarray]],
    out_dir: str | Path,
    title: str,
    closeups: list[Closeup] | None = None,
) -> dict[str, Path]:
    """eval.json, report.md, identity.png, jitter.png, contact_sheet.jpg and,
    with close-ups, closeups.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "eval.json",
        "report": out / "report.md",
        "identity": out / "identity.png",
        "jitter": out / "jitter.png",
        "contact_sheet": out / "contact_sheet.jpg",
        "closeups": out / "closeups.png",
        "sharpness": out / "sharpness.png",
    }
    per_frame = [asdict(m) for m in evaluation.per_frame]
    paths["json"].write_text(
        json.dumps(
            {
                "summary": evaluation.summary(),
                "per_frame": per_frame,
                "appearance_per_frame": evaluation.appearance_per_frame,
            },
            indent=2,
        )
        + "\n"
    )

    frames = [m.index for m in evaluation.per_frame]
    figure, axis = plt.subplots(figsize=(9, 3.2))
    axis.plot(frames, [m.source_cosine for m in evaluation.per_frame], label="cosine to source")
    axis.scatter(
        frames,
        [1.02 if m.nearer_source else -0.02 for m in evaluation.per_frame],
        s=4,
        c=["tab:green" if m.nearer_source else "tab:red" for m in evaluation.per_frame],
        label="nearer source (1) / target (0)",
    )
    axis.set_xlabel("frame")
    axis.set_ylim(-0.1, 1.1)
    axis.set_title("Identity per frame")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(paths["identity"], dpi=100)
    plt.close(figure)

    series = evaluation.landmark_jitter_per_frame
    _input_output_plot(
        paths["jitter"],
        (series["frames"], series["input"], series["output"]),
        ("frame", "inter-ocular distances", "Landmark jitter per frame (second difference)"),
    )
    looks = evaluation.appearance_per_frame
    sharp_in = looks.get("sharpness_input", [])
    _input_output_plot(
        paths["sharpness"],
        (list(range(len(sharp_in))), sharp_in, looks.get("sharpness_output", [])),
        ("measured face", "Laplacian variance, 256 px crop", "Sharpness of the inner face"),
    )

    rows = []
    for index, before, after in thumbs:
        pair = np.hstack([before, after])
        _caption(pair, f"frame {index}: input | output")
        rows.append(pair)
    if rows:
        cv2.imwrite(str(paths["contact_sheet"]), _stack_rows(rows))
    close_rows = []
    for shot in closeups or []:
        row = np.hstack([shot.input, shot.changed, shot.output])
        _caption(row, f"frame {shot.index}: input | changed | output")
        close_rows.append(row)
    if close_rows:
        cv2.imwrite(str(paths["closeups"]), _stack_rows(close_rows))
    else:
        del paths["closeups"]

    summary = evaluation.summary()
    lines = [
        f"# {title}",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {key.replace('_', ' ')} | {_fmt(value)} |" for key, value in summary.items()],
        "",
        "Identity: share of faces nearer the source identity than the target "
        "(dlib embeddings), and mean cosine similarity to the source. Expression "
        "error and jitter are in inter-ocular distances; colour jitter in 8-bit "
        "levels; background PSNR outside the region a swap may change.",
        "",
        "![identity per frame](identity.png)",
        "",
        "![landmark jitter per frame](jitter.png)",
        "",
        "Sharpness: variance of the Laplacian of the inner face on 256 px aligned "
        "crops, output against input and against the source identity's own faces. "
        "Seam: the colour and brightness edge along the face region's border, output "
        "against input. Spill: of the changed pixels, the share outside the face "
        "region. Flicker: frame-to-frame change of the inner face, output against input.",
        "",
        "![sharpness per frame](sharpness.png)",
        "",
        "![input and output frames](contact_sheet.jpg)",
        "",
    ]
    if close_rows:
        lines += [
            "Close-ups at full resolution around the face: input, the pixels the swap "
            f"changed by more than {CHANGED} levels (red), output. What covers "
            "the face (a hand, a microphone) should stay unchanged.",
            "",
            "![face close-ups: input, changed, output](closeups.png)",
            "",
        ]
    paths["report"].write_text("\n".join(lines))
    return paths


def _input_output_plot(
    path: Path, series: tuple[list[float], list[float], list[float]], labels: tuple[str, str, str]
) -> None:
    """One measure per frame, input against output (x, input, output;
    x label, y label, title)."""
    import matplotlib.pyplot as plt

    xs, before, after = series
    figure, axis = plt.subplots(figsize=(9, 3.2))
    axis.plot(xs, before, label="input", linewidth=1)
    axis.plot(xs, after, label="output", linewidth=1)
    axis.set_xlabel(labels[0])
    axis.set_ylabel(labels[1])
    axis.set_title(labels[2])
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _fmt(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)

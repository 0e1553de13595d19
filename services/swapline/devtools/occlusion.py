"""The occlusion check: a clip with things moved across a face, and how a
swap treats them.

``make_occluded_clip`` paints occluders over frames 360-447 of d10.mp4,
placed by the face's own landmarks: sunglasses that slide from the eyes
down to the mouth, then a hand that sweeps across the lower face, then a
hand-held microphone in front of the mouth. It writes the clip (lossless)
and, per frame, the occluder's mask and the face's landmark hull.

``measure`` compares a swapped version of that clip with it: in each frame
where an occluder covers part of the face, whether the occluder came out
unchanged (PSNR inside it at least 30 dB) and whether the visible rest of
the face was swapped (changed by more than a few levels on average).

``python -m swapline.devtools.occlusion --out DIR`` does both with the
demo model and prints the shares.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from swapline.media import open_media
from swapline.stages.align import find_landmarks
from swapline.stages.detect import FaceDetector

FIRST, LAST = 360, 448  # d10's frames the demo model never trained on
OCCLUDER_PSNR = 30.0  # dB inside the occluder: it stayed in front
SWAPPED_LEVELS = 6.0  # mean change of the visible face: it was swapped


@dataclass(frozen=True)
class FrameResult:
    index: int
    covered: float  # share of the face the occluder covers
    occluder_psnr: float
    visible_change: float

    @property
    def in_front(self) -> bool:
        return self.occluder_psnr >= OCCLUDER_PSNR

    @property
    def swapped(self) -> bool:
        return self.visible_change >= SWAPPED_LEVELS


def _pt(point: np.ndarray) -> tuple[int, int]:
    return round(float(point[0])), round(float(point[1]))


def _hull(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(landmarks.astype(np.int32))
    cv2.fillConvexPoly(mask, hull, (255,))
    return mask


def _sunglasses(image: np.ndarray, mask: np.ndarray, points: np.ndarray, t: float) -> None:
    """Dark lenses and a frame, slid from the eyes (t=0) to the mouth (t=1)."""
    eyes = points[36:42].mean(0), points[42:48].mean(0)
    mouth = points[48:68].mean(0)
    shift = (mouth - (eyes[0] + eyes[1]) / 2) * t
    span = float(np.linalg.norm(eyes[1] - eyes[0]))
    angle = math.degrees(math.atan2(*(eyes[1] - eyes[0])[::-1]))
    axes = (round(span * 0.42), round(span * 0.3))
    for centre in eyes:
        c = _pt(centre + shift)
        cv2.ellipse(image, c, axes, angle, 0, 360, (25, 20, 18), -1, cv2.LINE_AA)
        cv2.ellipse(image, c, axes, angle, 0, 360, (60, 60, 70), max(2, round(span / 25)))
        cv2.ellipse(mask, c, axes, angle, 0, 360, (255,), -1)
    a, b = (_pt(e + shift) for e in eyes)
    cv2.line(image, a, b, (60, 60, 70), max(3, round(span / 12)), cv2.LINE_AA)
    cv2.line(mask, a, b, (255,), max(3, round(span / 12)))


def _hand(image: np.ndarray, mask: np.ndarray, points: np.ndarray, t: float) -> None:
    """A palm and four fingers sweeping from the left across the chin."""
    face = points.max(0) - points.min(0)
    size = float(face[0])
    centre = np.array([points[:, 0].min() - 0.4 * size + 1.1 * size * t, points[57, 1]])
    shape = np.zeros(mask.shape, np.uint8)
    palm = (round(size * 0.32), round(size * 0.4))
    cv2.ellipse(shape, _pt(centre), palm, 15, 0, 360, (255,), -1)
    for k in range(4):
        base = centre + np.array([size * 0.2, -size * 0.3 + k * size * 0.17])
        tip = base + np.array([size * 0.35, -size * 0.05])
        cv2.line(shape, _pt(base), _pt(tip), (255,),
                 round(size * 0.11))  # fmt: skip
    skin = np.zeros_like(image)
    skin[:] = (120, 150, 205)
    shade = cv2.GaussianBlur(shape, (0, 0), size * 0.08).astype(np.float32) / 255
    skin = (skin * (0.75 + 0.25 * shade[..., None])).astype(np.uint8)
    image[shape > 0] = skin[shape > 0]
    mask |= shape


def _microphone(image: np.ndarray, mask: np.ndarray, points: np.ndarray, t: float) -> None:
    """A microphone held in front of the mouth, swaying a little."""
    face = points.max(0) - points.min(0)
    size = float(face[0])
    head = points[62] + np.array([math.sin(t * 6) * size * 0.05, size * 0.05])
    handle_end = head + np.array([size * 0.15, size * 0.9])
    cv2.line(image, _pt(head), _pt(handle_end),
             (40, 40, 45), round(size * 0.12), cv2.LINE_AA)  # fmt: skip
    cv2.line(mask, _pt(head), _pt(handle_end), (255,),
             round(size * 0.12))  # fmt: skip
    radius = round(size * 0.14)
    cv2.circle(image, _pt(head), radius, (90, 90, 95), -1, cv2.LINE_AA)
    for k in range(-radius, radius, max(2, radius // 4)):  # the grille
        cv2.line(image, (int(head[0]) + k, int(head[1]) - radius),
                 (int(head[0]) + k, int(head[1]) + radius), (55, 55, 60), 1)  # fmt: skip
    cv2.circle(mask, _pt(head), radius, (255,), -1)


def make_occluded_clip(source: Path, out: Path) -> Path:
    """Writes ``out`` (a lossless clip of d10's frames 360-447 with
    occluders) and ``out`` + ``.npz`` (per frame: occluder masks, face hulls)."""
    detector = FaceDetector()
    masks, hulls = [], []
    with open_media(source) as reader, av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.options = {"crf": "0", "preset": "veryfast"}
        stream.pix_fmt = "yuv444p"
        stream.width, stream.height = reader.info.width, reader.info.height
        for frame in reader.frames():
            if frame.index < FIRST:
                continue
            if frame.index >= LAST:
                break
            image = frame.image.copy()
            box = detector.detect(frame.grey)[0]
            points = find_landmarks(frame.grey, (box.left, box.top, box.right, box.bottom))
            mask = np.zeros(image.shape[:2], np.uint8)
            step = frame.index - FIRST
            if step < 30:
                _sunglasses(image, mask, points, step / 29)
            elif step < 60:
                _hand(image, mask, points, (step - 30) / 29)
            else:
                _microphone(image, mask, points, (step - 60) / 27)
            masks.append(mask)
            hulls.append(_hull(points, image.shape[:2]))
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    np.savez_compressed(out.with_suffix(".npz"), occluders=np.stack(masks), hulls=np.stack(hulls))
    return out


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def measure(occluded: Path, swapped: Path) -> list[FrameResult]:
    """Per frame where an occluder covers at least 5 % of the face."""
    layers = np.load(occluded.with_suffix(".npz"))
    results = []
    before, after = _frames(occluded), _frames(swapped)
    for index, (a, b) in enumerate(zip(before, after, strict=True)):
        occluder = layers["occluders"][index] > 0
        face = layers["hulls"][index] > 0
        covered = float((occluder & face).sum() / max(1, face.sum()))
        if covered < 0.05:
            continue
        inside = occluder & face
        mse = float(np.mean((a[inside].astype(np.float64) - b[inside]) ** 2))
        psnr = float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)
        visible = face & ~cv2.dilate(occluder.astype(np.uint8), np.ones((9, 9))).astype(bool)
        change = float(np.abs(a[visible].astype(np.int16) - b[visible]).mean())
        results.append(FrameResult(FIRST + index, covered, psnr, change))
    return results


def summary(results: list[FrameResult]) -> dict[str, float]:
    both = [r for r in results if r.in_front and r.swapped]
    return {
        "frames_occluded": len(results),
        "occluder_in_front": round(sum(r.in_front for r in results) / max(1, len(results)), 3),
        "visible_face_swapped": round(sum(r.swapped for r in results) / max(1, len(results)), 3),
        "both": round(len(both) / max(1, len(results)), 3),
    }


def main(argv: list[str] | None = None) -> int:
    from swapline.pipeline import EmbeddedStages, SwapOptions, swap_file
    from swapline.stages.encode import EncodeOptions

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("tests/data"))
    parser.add_argument("--repository", type=Path, default=Path("models/repository"))
    parser.add_argument("--model", default="d6_to_d10")
    parser.add_argument("--out", type=Path, default=Path("out/occlusion"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    occluded = make_occluded_clip(args.data / "d10.mp4", args.out / "occluded.mp4")
    swapped = args.out / "swapped.mp4"
    stages = EmbeddedStages(args.repository)
    try:
        options = SwapOptions(model=args.model, encode=EncodeOptions(crf=0))
        swap_file(occluded, swapped, stages, options)
    finally:
        stages.close()
    results = measure(occluded, swapped)
    report = {**summary(results), "frames": [vars(r) for r in results]}
    (args.out / "occlusion.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(summary(results), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

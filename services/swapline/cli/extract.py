"""``swapline extract``: aligned faces of videos and images into a faceset."""

from __future__ import annotations

import argparse
from typing import Any

from swapline.cli._common import Subparsers, frame_range
from swapline.cli._progress import add_quiet, progress_bar


def register(sub: Subparsers) -> None:
    ex = sub.add_parser("extract", help="extract aligned faces into a faceset")
    ex.add_argument("inputs", nargs="+", metavar="INPUT", help="videos or images")
    ex.add_argument("--out", required=True, metavar="FACESET", help="faceset folder")
    ex.add_argument("--size", type=int, default=256, help="crop size in pixels (64..512)")
    ex.add_argument("--face-type", choices=["whole", "full"], default="whole")
    ex.add_argument("--every", type=int, default=1, metavar="N", help="use every Nth frame")
    ex.add_argument(
        "--select",
        type=_selection,
        default="largest",
        help="largest, all, or ref=IMAGE (the face nearest that person)",
    )
    ex.add_argument("--detector", choices=["hog", "cnn"], default="hog")
    ex.add_argument(
        "--max-side", type=int, default=640, help="downscale frames to this long side for detection"
    )
    ex.add_argument(
        "--upsample",
        type=int,
        default=None,
        help="times to double small frames (default: automatic)",
    )
    ex.add_argument("--min-face-size", type=float, default=0.0, metavar="PX")
    ex.add_argument(
        "--smoothing", type=float, default=0.5, help="temporal landmark smoothing, 0 (off) .. 1"
    )
    ex.add_argument("--format", choices=["jpeg", "png"], default="jpeg", help="crop format")
    ex.add_argument(
        "--frames",
        type=frame_range,
        default=(0, None),
        metavar="START:END",
        help="only frames START (inclusive) to END (exclusive)",
    )
    ex.add_argument("--identity", default="", help="who these faces belong to")
    ex.add_argument(
        "--consent",
        default="",
        metavar="REF",
        help="reference to the consent that covers this use of the faces",
    )
    ex.add_argument("--overwrite", action="store_true", help="replace an existing faceset")
    add_quiet(ex)
    ex.set_defaults(func=run_extract)


def _selection(value: str) -> str:
    if value in ("largest", "all") or (value.startswith("ref=") and len(value) > 4):
        return value
    raise argparse.ArgumentTypeError("expected largest, all or ref=IMAGE")


def run_extract(args: argparse.Namespace) -> int:
    from swapline.model.extract import ExtractOptions, extract, reference_embedding
    from swapline.stages.align import FaceType
    from swapline.stages.detect import DetectorConfig, DetectorModel
    from swapline.stages.select import Selection, SelectMode

    detector = DetectorConfig(
        model=DetectorModel(args.detector),
        max_side=args.max_side,
        upsample=args.upsample,
        min_face_size=args.min_face_size,
    )
    if args.select.startswith("ref="):
        reference = reference_embedding(args.select[4:], detector)
        selection = Selection(SelectMode.REFERENCE, reference)
    else:
        selection = Selection(SelectMode(args.select))
    options = ExtractOptions(
        size=args.size,
        face_type=FaceType(args.face_type),
        every=args.every,
        selection=selection,
        detector=detector,
        smoothing=args.smoothing,
        crop_format=args.format,
        first_frame=args.frames[0],
        last_frame=args.frames[1],
        identity=args.identity,
        consent_reference=args.consent,
    )

    def progress(total: int, desc: str) -> Any:
        return progress_bar(desc, "frame", args.quiet, total)

    summary = extract(args.inputs, args.out, options, progress, overwrite=args.overwrite)
    for source in summary.sources:
        print(
            f"{source.path}: {source.faces} faces from {source.frames_with_face} of "
            f"{source.frames_analysed} analysed frames"
        )
    if summary.faces == 0:
        print(f"no faces found; wrote an empty faceset to {summary.out}")
    else:
        print(f"wrote {summary.faces} aligned faces to {summary.out}")
    return 0

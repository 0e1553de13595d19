"""The ``swapline`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from swapline.errors import SwaplineError


def _extract(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from swapline.extract import ExtractOptions, extract, reference_embedding
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
    )

    def progress(total: int, desc: str) -> Any:
        return tqdm(
            total=total or None,
            desc=desc,
            unit="frame",
            disable=args.quiet,
            file=sys.stderr,
            dynamic_ncols=True,
        )

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


def _serve(args: argparse.Namespace) -> int:
    from swapline.runtime.config import ServerConfig
    from swapline.runtime.server import run_server

    config = ServerConfig.from_env(args.service)
    config = config.with_overrides(port=args.port, metrics_port=args.metrics_port, host=args.host)
    run_server(config)
    return 0


def _check_select(value: str) -> str:
    if value in ("largest", "all") or (value.startswith("ref=") and len(value) > 4):
        return value
    raise argparse.ArgumentTypeError("expected largest, all or ref=IMAGE")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swapline", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("extract", help="extract aligned faces into a faceset")
    ex.add_argument("inputs", nargs="+", metavar="INPUT", help="videos or images")
    ex.add_argument("--out", required=True, metavar="FACESET", help="faceset folder")
    ex.add_argument("--size", type=int, default=256, help="crop size in pixels (64..512)")
    ex.add_argument("--face-type", choices=["whole", "full"], default="whole")
    ex.add_argument("--every", type=int, default=1, metavar="N", help="use every Nth frame")
    ex.add_argument(
        "--select",
        type=_check_select,
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
    ex.add_argument("--overwrite", action="store_true", help="replace an existing faceset")
    ex.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ex.set_defaults(func=_extract)

    sv = sub.add_parser("serve", help="run one stage as a gRPC server")
    sv.add_argument("service", choices=["detector", "aligner"])
    sv.add_argument("--host", default=None, help="bind address (default [::])")
    sv.add_argument("--port", type=int, default=None, help="gRPC port")
    sv.add_argument("--metrics-port", type=int, default=None, help="Prometheus /metrics port")
    sv.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except SwaplineError as exc:
        print(f"swapline: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("swapline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

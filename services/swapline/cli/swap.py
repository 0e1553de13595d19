"""``swapline swap`` (here, or through an orchestrator) and ``swapline eval``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from swapline.cli._common import DEFAULT_REPOSITORY, Subparsers, frame_range, mask_types
from swapline.cli._progress import add_quiet, progress_bar, show_frames
from swapline.errors import InvalidInputError
from swapline.stages.select import (
    SAME_PERSON_DISTANCE,
    FaceOrder,
    FaceSelection,
    SelectMode,
    Target,
)

if TYPE_CHECKING:  # the pipeline loads when a command needs it
    from swapline.pipeline.options import Progress, SwapOptions
    from swapline.stages.encode import EncodeSummary


def register(sub: Subparsers) -> None:
    sw = sub.add_parser("swap", help="replace faces in a video or image with a trained model")
    sw.add_argument(
        "--model",
        default=None,
        help="model name in the repository (with --map, the models come from the mapping)",
    )
    sw.add_argument("--input", required=True, help="video or image")
    sw.add_argument("--output", required=True, help="output file (.mp4, .mkv, .webm; .png/.jpg)")
    sw.add_argument("--repository", default=DEFAULT_REPOSITORY, metavar="MODEL_REPO")
    sw.add_argument("--remote", default=None, metavar="ADDR", help="orchestrator address")
    sw.add_argument("--color", choices=["rct", "lct", "hist", "none"], default="rct")
    sw.add_argument(
        "--mask",
        type=mask_types,
        default=("region", "occlusion"),
        metavar="TYPES",
        help="what the face is drawn on, combined: box, region (face region), occlusion "
        "(only where nothing covers the face; a model without an occlusion segmenter "
        "falls back to the region); default region,occlusion",
    )
    sw.add_argument("--seamless", action="store_true", help="Poisson seamless cloning")
    sw.add_argument("--sharpen", type=float, default=0.0)
    sw.add_argument("--codec", choices=["h264", "h265", "vp9", "av1"], default="h264")
    sw.add_argument("--crf", type=int, default=None)
    sw.add_argument("--preset", default=None)
    sw.add_argument("--label", action="store_true", help="burn in a visible disclosure label")
    sw.add_argument(
        "--detect-every",
        type=int,
        default=4,
        metavar="N",
        help="run the face detector on every N-th frame, follow faces in between (1 = all)",
    )
    add_selection_arguments(sw)
    add_quiet(sw)
    sw.set_defaults(func=run_swap)

    live = sub.add_parser(
        "live", help="swap faces in a live stream: camera, network stream or file, in real time"
    )
    live.add_argument(
        "--input",
        required=True,
        help="a camera (/dev/video0), a stream URL (udp://, rtsp://, rtmp://, srt://...) "
        "or a file (played in real time)",
    )
    live.add_argument(
        "--output",
        required=True,
        help="a stream URL (udp://HOST:PORT, rtmp://..., srt://...; MPEG-TS or FLV) or a file",
    )
    live.add_argument("--model", default=None, help="model name in the repository")
    live.add_argument("--repository", default=DEFAULT_REPOSITORY, metavar="MODEL_REPO")
    live.add_argument("--remote", default=None, metavar="ADDR", help="orchestrator address")
    live.add_argument("--seconds", type=float, default=None, help="stop after this long")
    live.add_argument(
        "--no-realtime",
        dest="realtime",
        action="store_false",
        default=None,
        help="read a file input as fast as it decodes (default: at its own pace)",
    )
    live.add_argument("--crf", type=int, default=23)
    live.add_argument("--preset", default="veryfast")
    live.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        metavar="PORT",
        help="serve Prometheus metrics (frame latency, drops) on 127.0.0.1:PORT",
    )
    live.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the input and output"
    )
    live.add_argument("--json", default=None, metavar="PATH", help="write the summary here")
    add_selection_arguments(live)
    add_quiet(live)
    live.set_defaults(func=run_live_command)

    ev = sub.add_parser(
        "eval", help="quality of a swapped clip: identity, expression, stability, background"
    )
    ev.add_argument("--input", required=True, help="the original clip")
    ev.add_argument(
        "--source", required=True, help="clip, image or faceset of the source identity (A)"
    )
    ev.add_argument(
        "--target", default=None, help="the same of identity B (default: the input's own faces)"
    )
    which = ev.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="swap the input with this model first (embedded)")
    which.add_argument("--swapped", help="an already swapped version of the input")
    ev.add_argument("--repository", default=DEFAULT_REPOSITORY, metavar="MODEL_REPO")
    ev.add_argument(
        "--frames",
        type=frame_range,
        default=(0, None),
        metavar="START:END",
        help="evaluate only these frames (e.g. ones the model never trained on)",
    )
    ev.add_argument(
        "--closeups",
        type=frame_range,
        default=None,
        metavar="START:END",
        help="frames for the close-up sheet of the face (default: the contact sheet's)",
    )
    ev.add_argument("--out", default="out/eval", help="report folder")
    add_quiet(ev)
    ev.set_defaults(func=run_eval)


def _options(args: argparse.Namespace) -> SwapOptions:
    from swapline.pipeline.options import SwapOptions
    from swapline.stages.blend import BlendOptions, ColorTransfer, MaskType
    from swapline.stages.encode import EncodeOptions

    model, selection = _faces(args)
    return SwapOptions(
        model=model,
        selection=selection,
        blend=BlendOptions(
            color_transfer=ColorTransfer(args.color),
            masks=tuple(MaskType(m) for m in args.mask),
            seamless_clone=args.seamless,
            sharpen=args.sharpen,
        ),
        encode=EncodeOptions(
            codec=args.codec, crf=args.crf, preset=args.preset, disclosure_label=args.label
        ),
        detect_every=args.detect_every,
    )


def _faces(args: argparse.Namespace) -> tuple[str, FaceSelection]:
    """The model and the faces it swaps, from ``--model`` and the flags of
    :func:`add_selection_arguments`."""
    selection = face_selection(args)
    model = args.model or (selection.targets[0].model if selection.targets else "")
    if not model:
        raise InvalidInputError("name a model: --model NAME, or --map NAME=REFERENCE")
    return model, selection


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """Which faces to swap: the flags ``swap`` and ``live`` share."""
    group = parser.add_argument_group("which faces")
    group.add_argument(
        "--select",
        choices=["all", "largest", "reference"],
        default=None,
        help="every face (default), the largest of each frame, or faces like a reference "
        "(implied by --reference and --map)",
    )
    group.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="IMAGE",
        help="swap only the person this image (or folder of images) shows; repeat for "
        "more pictures of the same person. They must be in the model's consent record",
    )
    group.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="MODEL=IMAGE[,IMAGE]",
        help="swap the person the images show with MODEL; repeat to map several models to "
        "several people in one pass; faces matching no reference stay untouched",
    )
    group.add_argument(
        "--max-faces", type=int, default=0, metavar="N", help="at most N faces per frame"
    )
    group.add_argument(
        "--min-face", type=int, default=0, metavar="PX", help="leave faces smaller than this"
    )
    group.add_argument(
        "--order",
        choices=[o.value for o in FaceOrder],
        default=FaceOrder.LARGE_SMALL.value,
        help="which faces --max-faces keeps first",
    )
    group.add_argument(
        "--match-distance",
        type=float,
        default=SAME_PERSON_DISTANCE,
        metavar="D",
        help=f"face embedding distance that counts as one person (default {SAME_PERSON_DISTANCE})",
    )


def _reference_images(spec: str) -> tuple[tuple[str, bytes], ...]:
    """Encoded images from a file, or every image of a folder (a faceset)."""
    from swapline.media import IMAGE_SUFFIXES

    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:16]
        if not files:
            raise InvalidInputError(f"reference {spec}: the folder holds no images")
    elif path.is_file():
        files = [path]
    else:
        raise InvalidInputError(f"reference {spec}: no such file or folder")
    return tuple((str(f), f.read_bytes()) for f in files)


def face_selection(args: argparse.Namespace) -> FaceSelection:
    """The faces the flags of :func:`add_selection_arguments` choose."""
    targets: list[Target] = []
    if args.reference:
        if not args.model:
            raise InvalidInputError("--reference needs --model (or use --map MODEL=IMAGE)")
        images = tuple(i for spec in args.reference for i in _reference_images(spec))
        targets.append(Target(args.model, images=images))
    for mapping in args.map:
        model, sep, references = mapping.partition("=")
        if not sep or not model or not references:
            raise InvalidInputError(f"--map {mapping}: expected MODEL=IMAGE[,IMAGE...]")
        images = tuple(i for spec in references.split(",") for i in _reference_images(spec))
        targets.append(Target(model, images=images))
    if args.select and args.select != "reference" and targets:
        raise InvalidInputError(f"--select {args.select} chooses no faces by reference")
    if args.select == "reference" and not targets:
        raise InvalidInputError("--select reference needs --reference IMAGE or --map MODEL=IMAGE")
    mode = SelectMode.REFERENCE if targets else SelectMode(args.select or "all")
    selection = FaceSelection(
        mode=mode,
        targets=tuple(targets),
        max_faces=args.max_faces,
        min_size=float(args.min_face),
        order=FaceOrder(args.order),
        max_distance=args.match_distance,
    )
    selection.validate()
    return selection


def _swap_here(
    args: argparse.Namespace, source: str | Path, output: str | Path, options: SwapOptions
) -> tuple[EncodeSummary, Progress]:
    """Swaps with the stages in this process, showing progress."""
    from swapline.pipeline import EmbeddedStages, swap_file

    stages = EmbeddedStages(args.repository, cpu_int8=args.config.cpu_int8)
    bar = progress_bar("swap", "frame", args.quiet)
    try:
        summary, progress = swap_file(
            source,
            output,
            stages,
            options,
            lambda p: show_frames(bar, p.frames_done, p.frames_total, p.faces_swapped),
        )
    finally:
        bar.close()
        stages.close()
    return summary, progress


def run_swap(args: argparse.Namespace) -> int:
    options = _options(args)
    if args.remote:
        return _swap_remote(args, options)
    summary, progress = _swap_here(args, args.input, args.output, options)
    print(
        f"wrote {summary.output}: {summary.frames} frames, {progress.faces_swapped} faces "
        f"swapped with {', '.join(options.models)}, {summary.audio_packets} audio packets copied, "
        f"{progress.frames_per_second:.1f} frames/s"
    )
    return 0


def _swap_remote(args: argparse.Namespace, options: SwapOptions) -> int:
    from swapline.client import remote_swap
    from swapline.protocol.jobs import job_spec_message
    from swapline.v1 import orchestrator_pb2 as opb

    bar = progress_bar("swap", "frame", args.quiet)

    def on_progress(job: opb.Job) -> None:
        done = job.progress
        show_frames(bar, done.frames_done, done.frames_total, done.faces_swapped)

    try:
        spec = job_spec_message(options)
        credentials = args.config.api_credentials()
        job = remote_swap(args.remote, args.input, args.output, spec, on_progress, credentials)
    finally:
        bar.close()
    print(
        f"wrote {args.output}: job {job.id}, {job.progress.frames_done} frames, "
        f"{job.progress.faces_swapped} faces swapped with {', '.join(options.models)}, "
        f"{job.progress.frames_per_second:.1f} frames/s"
    )
    return 0


def run_live_command(args: argparse.Namespace) -> int:
    from swapline.pipeline.live import (
        LiveOptions,
        RemoteSwap,
        embedded_swap,
        run_live,
        summary_line,
    )
    from swapline.pipeline.options import SwapOptions

    model, selection = _faces(args)
    options = SwapOptions(model=model, selection=selection)  # default blending
    live = LiveOptions(
        input=args.input,
        output=args.output,
        realtime=args.realtime,
        seconds=args.seconds,
        open_timeout=args.timeout,
        crf=args.crf,
        preset=args.preset,
    )
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1")
    from swapline.runtime.metrics import LiveMetrics

    observer = LiveMetrics()
    if args.remote:
        from swapline.protocol.jobs import selection_message
        from swapline.protocol.options import blend_options_message
        from swapline.v1 import orchestrator_pb2 as opb

        config = opb.SwapStreamConfig(
            model=options.model,
            blend=blend_options_message(options.blend),
            selection=selection_message(options.selection),
        )
        remote = RemoteSwap(args.remote, config, args.config.api_credentials())
        try:
            summary = run_live(live, remote, ",".join(options.models), observer=observer)
        finally:
            remote.close()
    else:
        from swapline.pipeline import EmbeddedStages

        stages = EmbeddedStages(
            args.repository, cpu_int8=args.config.cpu_int8, inference_threads=os.cpu_count() or 1
        )
        try:
            swap = embedded_swap(stages, options)
            summary = run_live(live, swap, ",".join(options.models), observer=observer)
        finally:
            stages.close()
    print(f"live {args.input} -> {args.output}: {summary_line(summary)}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary.report(), indent=2) + "\n")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from swapline.evaluation.clip import (
        evaluate_clip,
        reference_embedding,
        reference_measures,
        write_report,
    )

    out = Path(args.out)
    swapped = Path(args.swapped) if args.swapped else out / "swapped.mp4"
    if args.model:
        from swapline.pipeline.options import SwapOptions

        _swap_here(args, args.input, swapped, SwapOptions(model=args.model))
    source, source_sharpness = reference_measures(args.source)
    target = reference_embedding(args.target) if args.target else None
    bar = progress_bar("swap", "frame", args.quiet)
    try:
        evaluation, thumbs, closeups = evaluate_clip(
            args.input,
            swapped,
            source,
            target,
            args.frames,
            on_frame=lambda _: bar.update(1),
            closeups=args.closeups,
            source_sharpness=source_sharpness,
        )
    finally:
        bar.close()
    title = f"swapline eval: {Path(args.input).name}" + (
        f" with {args.model}" if args.model else ""
    )
    paths = write_report(evaluation, thumbs, out, title, closeups)
    print(json.dumps(evaluation.summary(), indent=2))
    print(f"wrote {paths['json']} and {paths['report']}")
    return 0

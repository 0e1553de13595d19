"""The ``swapline`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swapline.errors import InvalidInputError, SwaplineError
from swapline.runtime.config import DEFAULT_PORTS


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
        first_frame=args.frames[0],
        last_frame=args.frames[1],
        identity=args.identity,
        consent_reference=args.consent,
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


def _frame_range(value: str) -> tuple[int, int | None]:
    start, _, end = value.partition(":")
    try:
        return int(start or 0), (int(end) if end else None)
    except ValueError:
        raise argparse.ArgumentTypeError("expected START:END frame indices") from None


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from swapline.train.model import ModelConfig
    from swapline.train.trainer import Identity, TrainOptions, train

    identities = None
    if args.src_consent or args.dst_consent:
        identities = (
            Identity("source", args.src_name or Path(args.src).name, args.src_consent or ""),
            Identity("target", args.dst_name or Path(args.dst).name, args.dst_consent or ""),
        )
    options = TrainOptions(
        src=Path(args.src),
        dst=Path(args.dst),
        out=Path(args.out),
        model=ModelConfig(
            resolution=args.res,
            architecture=args.arch,
            encoder_dims=args.encoder_dims,
            bottleneck_dims=args.bottleneck_dims,
            decoder_dims=args.decoder_dims,
        ),
        batch=args.batch,
        steps=args.steps,
        minutes=args.minutes,
        device=args.device,
        seed=args.seed,
        learning_rate=args.lr,
        priority_weight=args.eyes_mouth_priority,
        checkpoint_every=args.checkpoint_every,
        preview_every=args.preview_every,
        identities=identities,
    )

    def progress(total: int | None, initial: int) -> Any:
        return tqdm(
            total=total,
            initial=initial,
            desc="train",
            unit="step",
            disable=args.quiet,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    try:
        result = train(options, progress)
    except ValueError as exc:  # model configuration
        raise SwaplineError(str(exc)) from None
    print(
        f"trained {result.out} to step {result.steps} on {result.device}: loss "
        f"{result.first_loss:.4f} -> {result.loss:.4f}, {result.steps_per_second:.2f} steps/s"
    )
    if args.export_to:
        from swapline.export import export_model

        exported = export_model(result.out, args.export_to)
        print(f"exported {exported.entry}")
        try:
            _add_int8(exported.entry, args.dst)
        except InvalidInputError as exc:  # the float model serves everywhere
            print(f"no int8 variant: {exc}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from swapline.export import export_model

    result = export_model(
        args.model, args.repository, name=args.name, fp16=args.fp16, max_batch=args.max_batch
    )
    print(
        f"exported {result.entry} ({result.onnx_bytes / 1e6:.1f} MB ONNX); against torch: "
        f"max {result.max_abs_diff}, mean {result.mean_abs_diff:.4f} levels of 255"
    )
    if args.int8_faceset:
        _add_int8(result.entry, args.int8_faceset)
    return 0


def _add_int8(entry: str | os.PathLike[str], faceset: str) -> None:
    from swapline.quantize import add_cpu_int8_from_faceset

    result = add_cpu_int8_from_faceset(entry, faceset)
    print(
        f"int8 variant {result.path} ({result.path.stat().st_size / 1e6:.1f} MB), calibrated on "
        f"{result.calibration_faces} faces; against the float model on {result.check_faces} "
        f"others: mean {result.mean_abs_diff:.3f}, 99th percentile {result.p99_abs_diff:.0f} "
        "levels of 255"
    )


def _quantize(args: argparse.Namespace) -> int:
    from swapline.stages.swap import ModelRepository

    entry = Path(args.model)
    ModelRepository(entry.parent).get(entry.name)  # a clear error for a wrong path
    _add_int8(entry, args.faceset)
    return 0


def _triton(args: argparse.Namespace) -> int:
    from swapline.triton_server import run

    run(args.repository, args.grpc_port, args.http_port, args.metrics_port)
    return 0


def _eval_identity(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from swapline.evaluate import evaluate_identity, load_swap_function, source_faceset_of

    swap, resolution = load_swap_function(args.model)
    source = Path(args.src) if args.src else source_faceset_of(Path(args.model))
    report = evaluate_identity(swap, resolution, source, args.dst_holdout, limit=args.limit)
    print(f"faces evaluated     {report.faces}")
    print(f"identity score      {report.identity_score:.3f}  (share nearer A than B)")
    print(
        f"distance to A / B   {report.mean_distance_to_source:.3f} / "
        f"{report.mean_distance_to_target:.3f}"
    )
    print(f"expression error    {report.expression_error:.4f}  (landmarks, / inter-ocular)")
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 0


def _frame_bar(args: argparse.Namespace) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=None,
        desc="swap",
        unit="frame",
        disable=args.quiet,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _show(bar: Any, done: int, total: int, faces: int) -> None:
    bar.total = total or None
    bar.n = done
    bar.set_postfix(faces=faces, refresh=True)


def _swap(args: argparse.Namespace) -> int:
    from swapline.pipeline import EmbeddedStages, Progress, SwapOptions, swap_file
    from swapline.stages.blend import BlendOptions, ColorTransfer
    from swapline.stages.encode import EncodeOptions

    blend = BlendOptions(
        color_transfer=ColorTransfer(args.color), seamless_clone=args.seamless, sharpen=args.sharpen
    )
    encode = EncodeOptions(
        codec=args.codec, crf=args.crf, preset=args.preset, disclosure_label=args.label
    )
    if args.remote:
        return _swap_remote(args, blend, encode)
    stages = EmbeddedStages(args.repository)
    bar = _frame_bar(args)

    def on_progress(p: Progress) -> None:
        _show(bar, p.frames_done, p.frames_total, p.faces_swapped)

    try:
        summary, progress = swap_file(
            args.input,
            args.output,
            stages,
            SwapOptions(
                model=args.model, blend=blend, encode=encode, detect_every=args.detect_every
            ),
            on_progress,
        )
    finally:
        bar.close()
        stages.close()
    print(
        f"wrote {summary.output}: {summary.frames} frames, {progress.faces_swapped} faces "
        f"swapped with {args.model}, {summary.audio_packets} audio packets copied, "
        f"{progress.frames_per_second:.1f} frames/s"
    )
    return 0


def _swap_remote(args: argparse.Namespace, blend: Any, encode: Any) -> int:
    from swapline.client import remote_swap
    from swapline.services.blender import blend_options_message
    from swapline.services.encoder import encode_options_message
    from swapline.v1 import orchestrator_pb2 as opb

    spec = opb.JobSpec(
        model=args.model,
        blend=blend_options_message(blend),
        encode=encode_options_message(encode),
        detect_every=args.detect_every,
    )
    bar = _frame_bar(args)

    def on_progress(job: Any) -> None:
        _show(bar, job.progress.frames_done, job.progress.frames_total, job.progress.faces_swapped)

    try:
        job = remote_swap(args.remote, args.input, args.output, spec, on_progress)
    finally:
        bar.close()
    print(
        f"wrote {args.output}: job {job.id}, {job.progress.frames_done} frames, "
        f"{job.progress.faces_swapped} faces swapped with {args.model}, "
        f"{job.progress.frames_per_second:.1f} frames/s"
    )
    return 0


def _check_select(value: str) -> str:
    if value in ("largest", "all") or (value.startswith("ref=") and len(value) > 4):
        return value
    raise argparse.ArgumentTypeError("expected largest, all or ref=IMAGE")


def _eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from swapline.evaluate_clip import evaluate_clip, reference_embedding, write_report
    from swapline.pipeline import EmbeddedStages, SwapOptions, swap_file

    out = Path(args.out)
    swapped = Path(args.swapped) if args.swapped else out / "swapped.mp4"
    if args.model:
        stages = EmbeddedStages(args.repository)
        bar = _frame_bar(args)
        try:
            swap_file(
                args.input,
                swapped,
                stages,
                SwapOptions(model=args.model),
                lambda p: _show(bar, p.frames_done, p.frames_total, p.faces_swapped),
            )
        finally:
            bar.close()
            stages.close()
    source = reference_embedding(args.source)
    target = reference_embedding(args.target) if args.target else None
    bar = _frame_bar(args)
    try:
        evaluation, thumbs = evaluate_clip(
            args.input,
            swapped,
            source,
            target,
            args.frames,
            on_frame=lambda _: bar.update(1),
        )
    finally:
        bar.close()
    title = f"swapline eval: {Path(args.input).name}" + (
        f" with {args.model}" if args.model else ""
    )
    paths = write_report(evaluation, thumbs, out, title)
    print(json.dumps(evaluation.summary(), indent=2))
    print(f"wrote {paths['json']} and {paths['report']}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from swapline.benchmarks import suite

    argv = ["--model", args.model, "--repository", args.repository, "--json", args.json]
    for clip in args.clip or []:
        argv += ["--clip", clip]
    return suite.main(argv + (["--quick"] if args.quick else []))


def _capacity(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from swapline.capacity import capacity_markdown

    try:
        bench = json.loads(Path(args.bench).read_text())
        gpu = json.loads(Path(args.gpu).read_text()) if args.gpu else None
    except (OSError, ValueError) as exc:
        raise SwaplineError(f"cannot read the measurements: {exc}") from None
    streams = tuple(int(n) for n in args.streams.split(","))
    text = capacity_markdown(bench, streams, gpu)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


def _stack(args: argparse.Namespace) -> int:
    from swapline import stack

    if args.action == "down":
        try:
            stopped = stack.down(args.dir)
        except FileNotFoundError as exc:
            raise SwaplineError(str(exc)) from None
        print(f"stopped {', '.join(stopped.pids)}")
        return 0
    running = stack.up(args.dir, args.repository)
    print(f"orchestrator  {running.orchestrator}   (swapline swap --remote {running.orchestrator})")
    print(f"triton        {running.triton}")
    print(f"prometheus    {running.prometheus}   (rules: deploy/prometheus/rules)")
    print(f"logs          {args.dir}/*.log; stop with `make down`")
    return 0


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
    ex.add_argument(
        "--frames",
        type=_frame_range,
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
    ex.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ex.set_defaults(func=_extract)

    tr = sub.add_parser("train", help="train a swap model for one identity pair")
    tr.add_argument("--src", required=True, metavar="FACESET_A", help="source identity (put in)")
    tr.add_argument("--dst", required=True, metavar="FACESET_B", help="target identity (replaced)")
    tr.add_argument("--out", required=True, metavar="MODELS/NAME")
    tr.add_argument("--res", type=int, default=64, help="resolution, multiple of 16 in 64..512")
    tr.add_argument("--arch", choices=["df", "liae"], default="df")
    tr.add_argument("--encoder-dims", type=int, default=32)
    tr.add_argument("--bottleneck-dims", type=int, default=128)
    tr.add_argument("--decoder-dims", type=int, default=32)
    tr.add_argument("--batch", type=int, default=16, help="faces per identity per step")
    limit = tr.add_mutually_exclusive_group(required=True)
    limit.add_argument("--steps", type=int, help="train until this many steps in total")
    limit.add_argument("--minutes", type=float, help="train for this long")
    tr.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--export-to",
        default=None,
        metavar="MODEL_REPO",
        help="export the trained model into this Triton model repository",
    )
    tr.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    tr.add_argument(
        "--eyes-mouth-priority",
        type=float,
        default=1.0,
        help="extra loss weight on eyes and mouth (0 = off)",
    )
    tr.add_argument("--checkpoint-every", type=int, default=500, metavar="N")
    tr.add_argument("--preview-every", type=int, default=500, metavar="N")
    tr.add_argument("--src-name", default="", help="name of identity A")
    tr.add_argument("--dst-name", default="", help="name of identity B")
    tr.add_argument(
        "--src-consent",
        default="",
        metavar="REF",
        help="consent reference for A's face (default: from its faceset)",
    )
    tr.add_argument(
        "--dst-consent",
        default="",
        metavar="REF",
        help="consent reference for B's face (default: from its faceset)",
    )
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_train)

    exp = sub.add_parser("export", help="export a trained model into a Triton model repository")
    exp.add_argument("model", metavar="MODELS/NAME")
    exp.add_argument("--repository", required=True, metavar="MODEL_REPO")
    exp.add_argument("--name", default=None, help="model name (default: the folder name)")
    exp.add_argument(
        "--fp16", action="store_true", help="half-size fp16 weights; TensorRT FP16 on GPUs"
    )
    exp.add_argument("--max-batch", type=int, default=256)
    exp.add_argument(
        "--int8-faceset",
        default=None,
        metavar="FACESET_B",
        help="also write an int8 variant for CPUs, calibrated on this faceset of the target",
    )
    exp.set_defaults(func=_export)

    qua = sub.add_parser(
        "quantize", help="add an int8 variant for CPUs to a model repository entry"
    )
    qua.add_argument("model", metavar="MODEL_REPO/NAME")
    qua.add_argument(
        "--faceset", required=True, metavar="FACESET_B", help="faces of the target identity"
    )
    qua.set_defaults(func=_quantize)

    tri = sub.add_parser("triton", help="serve a model repository with NVIDIA Triton")
    tri.add_argument("--repository", required=True, metavar="MODEL_REPO")
    tri.add_argument("--grpc-port", type=int, default=8001)
    tri.add_argument("--http-port", type=int, default=8000)
    tri.add_argument("--metrics-port", type=int, default=8002)
    tri.set_defaults(func=_triton)

    ev = sub.add_parser("eval-identity", help="identity score and expression error of a model")
    ev.add_argument("model", metavar="MODEL", help="MODELS/NAME or MODEL_REPO/NAME")
    ev.add_argument(
        "--dst-holdout",
        required=True,
        metavar="FACESET",
        help="faces of B that were not used in training",
    )
    ev.add_argument(
        "--src",
        default=None,
        metavar="FACESET_A",
        help="faces of A (default: the model's training faceset)",
    )
    ev.add_argument("--limit", type=int, default=200, help="faces to use at most")
    ev.add_argument("--json", default=None, metavar="OUT", help="also write the report here")
    ev.set_defaults(func=_eval_identity)

    sw = sub.add_parser("swap", help="replace faces in a video or image with a trained model")
    sw.add_argument("--model", required=True, help="model name in the repository")
    sw.add_argument("--input", required=True, help="video or image")
    sw.add_argument("--output", required=True, help="output file (.mp4, .mkv, .webm; .png/.jpg)")
    sw.add_argument("--repository", default="models/repository", metavar="MODEL_REPO")
    sw.add_argument("--remote", default=None, metavar="ADDR", help="orchestrator address")
    sw.add_argument("--color", choices=["rct", "lct", "hist", "none"], default="rct")
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
    sw.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=_swap)

    ev2 = sub.add_parser(
        "eval", help="quality of a swapped clip: identity, expression, stability, background"
    )
    ev2.add_argument("--input", required=True, help="the original clip")
    ev2.add_argument(
        "--source", required=True, help="clip, image or faceset of the source identity (A)"
    )
    ev2.add_argument(
        "--target", default=None, help="the same of identity B (default: the input's own faces)"
    )
    which = ev2.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="swap the input with this model first (embedded)")
    which.add_argument("--swapped", help="an already swapped version of the input")
    ev2.add_argument("--repository", default="models/repository", metavar="MODEL_REPO")
    ev2.add_argument(
        "--frames",
        type=_frame_range,
        default=(0, None),
        metavar="START:END",
        help="evaluate only these frames (e.g. ones the model never trained on)",
    )
    ev2.add_argument("--out", default="out/eval", help="report folder")
    ev2.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev2.set_defaults(func=_eval)

    be = sub.add_parser("bench", help="the benchmark suite: a table and JSON")
    be.add_argument("--clip", action="append", help="clip to measure (default s18.mp4)")
    be.add_argument("--model", default="d6_to_d10")
    be.add_argument("--repository", default="models/repository", metavar="MODEL_REPO")
    be.add_argument("--json", default="out/bench.json")
    be.add_argument("--quick", action="store_true", help="leave out the 120 s clip")
    be.set_defaults(func=_bench)

    ca = sub.add_parser("capacity", help="replicas and GPUs for N streams, from bench results")
    ca.add_argument("--bench", default="out/bench.json")
    ca.add_argument("--gpu", default=None, help="`make gpu-bench` JSON, if measured")
    ca.add_argument("--streams", default="1,10,50,100", help="comma-separated stream counts")
    ca.add_argument("--out", default="docs/capacity.md")
    ca.set_defaults(func=_capacity)

    st = sub.add_parser("stack", help="the local stack: every service, Triton and Prometheus")
    st.add_argument("action", choices=["up", "down"])
    st.add_argument("--dir", default=".stack", help="state and logs (default .stack)")
    st.add_argument("--repository", default="models/repository", metavar="MODEL_REPO")
    st.set_defaults(func=_stack)

    sv = sub.add_parser("serve", help="run one stage as a gRPC server")
    sv.add_argument("service", choices=list(DEFAULT_PORTS))
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

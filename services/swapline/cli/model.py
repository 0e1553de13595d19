"""The identity model's life: ``train``, ``export``, ``quantize``, ``triton``
and ``eval-identity``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from swapline.cli._common import Subparsers
from swapline.cli._progress import add_quiet, progress_bar
from swapline.errors import InvalidInputError, SwaplineError


def register(sub: Subparsers) -> None:
    _register_train(sub)
    _register_export(sub)
    _register_quantize(sub)
    _register_consent(sub)
    _register_train_occlusion(sub)
    _register_triton(sub)
    _register_eval_identity(sub)


def _register_train(sub: Subparsers) -> None:
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
    tr.add_argument(
        "--progress-file",
        default=None,
        metavar="FILE",
        help="keep steps and loss in this JSON file while training (for an orchestrator)",
    )
    add_quiet(tr)
    tr.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
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

    if args.export_to:
        from swapline.model.export import staging_parent

        staging_parent(args.export_to)  # fails now, not after training

    def progress(total: int | None, initial: int) -> Any:
        bar = progress_bar("train", "step", args.quiet, total, initial)
        if args.progress_file:
            from swapline.jobs import ProgressFile

            return _ReportedProgress(bar, ProgressFile(Path(args.progress_file)), total, initial)
        return bar

    try:
        result = train(options, progress)
    except ValueError as exc:  # model configuration
        raise SwaplineError(str(exc)) from None
    print(
        f"trained {result.out} to step {result.steps} on {result.device}: loss "
        f"{result.first_loss:.4f} -> {result.loss:.4f}, {result.steps_per_second:.2f} steps/s"
    )
    if args.export_to:
        from swapline.model.export import export_model

        exported = export_model(result.out, args.export_to)
        print(f"exported {exported.entry}")
        try:
            _add_int8(exported.entry, args.dst)
        except InvalidInputError as exc:  # the float model serves everywhere
            print(f"no int8 variant: {exc}")
    return 0


class _ReportedProgress:
    """The progress bar, also kept in a progress file."""

    def __init__(self, bar: Any, file: Any, total: int | None, initial: int) -> None:
        self.bar, self.file = bar, file
        self.total, self.done, self.loss = total or 0, initial, float("nan")

    def update(self, steps: int) -> None:
        self.bar.update(steps)
        self.done += steps

    def set_postfix(self, loss: str, refresh: bool = False) -> None:
        self.bar.set_postfix(loss=loss, refresh=refresh)
        self.loss = float(loss)
        self.file.write(self.done, self.total, self.loss)

    def close(self) -> None:
        self.bar.close()
        self.file.write(self.done, self.total, self.loss, force=True)


def _register_export(sub: Subparsers) -> None:
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
    exp.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from swapline.model.export import export_model

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
    from swapline.model.quantize import add_cpu_int8_from_faceset

    result = add_cpu_int8_from_faceset(entry, faceset)
    print(
        f"int8 variant {result.path} ({result.path.stat().st_size / 1e6:.1f} MB), calibrated on "
        f"{result.calibration_faces} faces; against the float model on {result.check_faces} "
        f"others: mean {result.mean_abs_diff:.3f}, 99th percentile {result.p99_abs_diff:.0f} "
        "levels of 255"
    )


def _register_quantize(sub: Subparsers) -> None:
    qua = sub.add_parser(
        "quantize", help="add an int8 variant for CPUs to a model repository entry"
    )
    qua.add_argument("model", metavar="MODEL_REPO/NAME")
    qua.add_argument(
        "--faceset", required=True, metavar="FACESET_B", help="faces of the target identity"
    )
    qua.set_defaults(func=run_quantize)


def run_quantize(args: argparse.Namespace) -> int:
    from swapline.stages.swap import ModelRepository

    entry = Path(args.model)
    ModelRepository(entry.parent).get(entry.name)  # a clear error for a wrong path
    _add_int8(entry, args.faceset)
    return 0


def _register_consent(sub: Subparsers) -> None:
    con = sub.add_parser(
        "consent",
        help="record a person's face in a model's consent record, so references may choose them",
    )
    con.add_argument("model", metavar="MODEL_REPO/NAME")
    con.add_argument("--name", required=True, help="the person, as the record names them")
    con.add_argument("--face", required=True, metavar="IMAGE", help="a picture of their face")
    con.add_argument(
        "--consent-reference",
        default="",
        help="the consent that covers their face (required for a person not yet recorded)",
    )
    con.add_argument("--role", choices=["source", "target"], default="target")
    con.set_defaults(func=run_consent)


def run_consent(args: argparse.Namespace) -> int:
    from swapline.model.consent import record_consent
    from swapline.pipeline import EmbeddedStages
    from swapline.pipeline.references import reference_embedding

    entry = Path(args.model)
    face = Path(args.face)
    if not face.is_file():
        raise InvalidInputError(f"--face {face}: no such file")
    stages = EmbeddedStages(entry.parent, workers=1)
    try:
        embedding = reference_embedding(str(face), face.read_bytes(), stages)
    finally:
        stages.close()
    identity = record_consent(entry, args.name, embedding, args.consent_reference, args.role)
    print(
        f"recorded {identity['name']} ({identity['role']}) in {entry}: consent "
        f"{identity.get('consent_reference', '')!r}; references showing them may now be chosen"
    )
    return 0


def _register_train_occlusion(sub: Subparsers) -> None:
    occ = sub.add_parser(
        "train-occlusion",
        help="train the occlusion segmenter and join it to a repository entry's swap model",
    )
    occ.add_argument("model", metavar="MODEL_REPO/NAME")
    occ.add_argument(
        "--faceset",
        action="append",
        required=True,
        metavar="FACESET",
        help="faces to paste occluders over (repeat; any identities)",
    )
    occ.add_argument(
        "--textures",
        nargs="*",
        default=[],
        metavar="FILE",
        help="pictures or videos without faces to cut occluder textures from",
    )
    limit = occ.add_mutually_exclusive_group()
    limit.add_argument("--minutes", type=float, default=4.0, help="training time")
    limit.add_argument("--steps", type=int, default=None, help="train this many steps instead")
    occ.add_argument(
        "--int8-faceset",
        default=None,
        metavar="FACESET_B",
        help="also make the int8 variant again, calibrated on this faceset of the target",
    )
    occ.set_defaults(func=run_train_occlusion)


def run_train_occlusion(args: argparse.Namespace) -> int:
    from swapline.model.occlusion import add_occlusion

    minutes = args.minutes if args.steps is None else 24 * 60.0
    result = add_occlusion(args.model, args.faceset, args.textures, minutes, args.steps)
    print(
        f"occlusion segmenter trained on {result.faces} faces, {result.steps} steps in "
        f"{result.seconds:.0f} s (visible-face IoU on synthetic pairs {result.iou_visible:.3f}); "
        f"joined to {result.entry}"
    )
    if args.int8_faceset:
        _add_int8(result.entry, args.int8_faceset)
    return 0


def _register_triton(sub: Subparsers) -> None:
    tri = sub.add_parser("triton", help="serve a model repository with NVIDIA Triton")
    tri.add_argument("--repository", required=True, metavar="MODEL_REPO")
    tri.add_argument("--grpc-port", type=int, default=8001)
    tri.add_argument("--http-port", type=int, default=8000)
    tri.add_argument("--metrics-port", type=int, default=8002)
    tri.set_defaults(func=run_triton)


def run_triton(args: argparse.Namespace) -> int:
    from swapline.model.triton import run

    run(
        args.repository,
        args.grpc_port,
        args.http_port,
        args.metrics_port,
        cpu_int8=args.config.cpu_int8,
    )
    return 0


def _register_eval_identity(sub: Subparsers) -> None:
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
    ev.set_defaults(func=run_eval_identity)


def run_eval_identity(args: argparse.Namespace) -> int:
    from swapline.evaluation.identity import (
        evaluate_identity,
        load_swap_function,
        source_faceset_of,
    )

    swap, resolution = load_swap_function(args.model, cpu_int8=args.config.cpu_int8)
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

"""``swapline train``: the training loop, checkpoints with exact resume,
previews and model metadata."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from swapline import __version__
from swapline.errors import InvalidInputError
from swapline.train.data import BatchSampler, Faceset, load_faceset
from swapline.train.losses import face_loss, gaussian_kernel, mask_loss
from swapline.train.model import ModelConfig, SwapModel, parameter_count

CHECKPOINT = "checkpoint.pt"
METADATA = "model.json"
PREVIEW = "preview.png"


@dataclass(frozen=True)
class Identity:
    role: str  # "source" (A) or "target" (B)
    name: str
    consent_reference: str

    def validate(self) -> None:
        if not self.consent_reference.strip():
            raise InvalidInputError(
                f"no consent reference for the {self.role} face ({self.name}): record who "
                "agreed to this use with --src-consent/--dst-consent or `extract --consent`"
            )


@dataclass(frozen=True)
class TrainOptions:
    src: Path
    dst: Path
    out: Path
    model: ModelConfig = field(default_factory=ModelConfig)
    batch: int = 16
    steps: int | None = None
    minutes: float | None = None
    device: str = "auto"
    seed: int = 0
    learning_rate: float = 1e-4
    clip_norm: float = 1.0
    priority_weight: float = 1.0  # extra loss weight on eyes and mouth
    checkpoint_every: int = 500
    preview_every: int = 500
    identities: tuple[Identity, Identity] | None = None
    threads: int | None = None


@dataclass
class TrainResult:
    out: Path
    steps: int
    loss: float
    first_loss: float
    steps_per_second: float
    device: str


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("--device cuda: no CUDA device is available")
    if requested not in ("cpu", "cuda"):
        raise InvalidInputError(f"unknown device {requested!r}")
    return torch.device(requested)


def identities_from(options: TrainOptions, src: Faceset, dst: Faceset) -> tuple[Identity, Identity]:
    if options.identities is not None:
        pair = options.identities
    else:
        pair = tuple(
            Identity(
                role,
                str(f.manifest.get("identity") or f.path.name),
                str(f.manifest.get("consent_reference") or ""),
            )
            for role, f in (("source", src), ("target", dst))
        )  # type: ignore[assignment]
    for identity in pair:
        identity.validate()
    return pair


class Trainer:
    """Owns the model, the optimiser and both samplers; ``step()`` trains one
    batch per identity."""

    def __init__(self, options: TrainOptions) -> None:
        options.model.validate()
        if options.batch < 1:
            raise InvalidInputError("--batch must be at least 1")
        self.options = options
        self.device = pick_device(options.device)
        if options.threads:
            torch.set_num_threads(options.threads)
        res = options.model.resolution
        self.src = load_faceset(options.src, res)
        self.dst = load_faceset(options.dst, res)
        self.identities = identities_from(options, self.src, self.dst)
        torch.manual_seed(options.seed)
        random.seed(options.seed)
        self.model = SwapModel(options.model).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=options.learning_rate,
            betas=(0.9, 0.999),
            weight_decay=1e-4,
        )
        self.sampler_a = BatchSampler(self.src, options.seed * 2 + 1)
        self.sampler_b = BatchSampler(self.dst, options.seed * 2 + 2)
        self.kernel = gaussian_kernel(max(3, (res // 6) | 1), res / 48 + 0.5, self.device)
        self.step_count = 0
        self.last_loss = float("nan")
        self.first_loss = float("nan")
        self.autocast_dtype = torch.bfloat16 if self.device.type == "cuda" else None

    def _tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {
            k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in batch.items()
        }

    def step(self) -> float:
        self.model.train()
        a = self._tensors(self.sampler_a.sample(self.options.batch))
        b = self._tensors(self.sampler_b.sample(self.options.batch))
        with torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        ):
            face_a, mask_a = self.model.reconstruct(a["inputs"], "a")
            face_b, mask_b = self.model.reconstruct(b["inputs"], "b")
        loss = torch.zeros((), device=self.device)
        for face, mask, batch in ((face_a, mask_a, a), (face_b, mask_b, b)):
            loss = loss + face_loss(
                face.float(),
                batch["targets"],
                batch["masks"],
                batch["priority"],
                self.kernel,
                self.options.priority_weight,
            )
            loss = loss + mask_loss(mask.float(), batch["masks"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.clip_norm)
        self.optimizer.step()
        self.step_count += 1
        self.last_loss = float(loss.detach())
        if self.step_count == 1:
            self.first_loss = self.last_loss
        return self.last_loss

    # -- checkpoints -----------------------------------------------------
    def save(self) -> None:
        out = self.options.out
        out.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step_count,
            "last_loss": self.last_loss,
            "first_loss": self.first_loss,
            "config": self.options.model.as_dict(),
            "rng": {
                "sampler_a": self.sampler_a.state(),
                "sampler_b": self.sampler_b.state(),
                "torch": torch.get_rng_state(),
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }
        tmp = out / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, out / CHECKPOINT)
        self.write_metadata()

    def resume(self) -> bool:
        path = self.options.out / CHECKPOINT
        if not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=False)
        if ModelConfig(**state["config"]) != self.options.model:
            raise InvalidInputError(
                f"{path}: checkpoint was trained with {state['config']}, "
                f"not {self.options.model.as_dict()}"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count = int(state["step"])
        self.last_loss = float(state["last_loss"])
        self.first_loss = float(state["first_loss"])
        rng = state["rng"]
        self.sampler_a.set_state(rng["sampler_a"])
        self.sampler_b.set_state(rng["sampler_b"])
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        return True

    def write_metadata(self, extra: dict[str, Any] | None = None) -> None:
        path = self.options.out / METADATA
        previous = json.loads(path.read_text()) if path.exists() else {}
        metadata = {
            **previous,
            "format": "swapline-model",
            "version": 1,
            "name": self.options.out.name,
            "architecture": self.options.model.architecture,
            "resolution": self.options.model.resolution,
            "face_type": self.src.manifest.get("face_type", "whole"),
            "config": self.options.model.as_dict(),
            "parameters": parameter_count(self.model),
            "identities": [vars(i) for i in self.identities],
            "facesets": {"source": str(self.options.src), "target": str(self.options.dst)},
            "training_steps": self.step_count,
            "batch_per_identity": self.options.batch,
            "final_loss": round(self.last_loss, 6),
            "first_loss": round(self.first_loss, 6),
            "device": self.device.type,
            "device_name": (
                torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
            ),
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "swapline_version": __version__,
        }
        metadata.setdefault("created", metadata["updated"])
        metadata.update(extra or {})
        path.write_text(json.dumps(metadata, indent=2) + "\n")

    # -- previews --------------------------------------------------------
    def _fixed_batches(self, rows: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The same unwarped faces every time, leaving the training RNGs as
        they were (previews and evaluation must not change the run)."""
        saved = (self.sampler_a.rng, self.sampler_b.rng)
        try:
            self.sampler_a.rng = np.random.default_rng(12345)
            self.sampler_b.rng = np.random.default_rng(54321)
            a = self._tensors(self.sampler_a.sample(rows, warp=False))
            b = self._tensors(self.sampler_b.sample(rows, warp=False))
        finally:
            self.sampler_a.rng, self.sampler_b.rng = saved
        return a, b

    @torch.no_grad()
    def evaluate(self, rows: int = 16) -> float:
        """Reconstruction loss on a fixed set of unwarped faces of A and B."""
        self.model.eval()
        a, b = self._fixed_batches(rows)
        loss = 0.0
        for batch, identity in ((a, "a"), (b, "b")):
            face, mask = self.model.reconstruct(batch["targets"], identity)
            loss += float(face_loss(face, batch["targets"], batch["masks"], None, self.kernel))
            loss += float(mask_loss(mask, batch["masks"]))
        return loss

    @torch.no_grad()
    def preview(self, rows: int = 4) -> np.ndarray:
        """Rows of A, A->A, B, B->B, B->A (unwarped samples)."""
        self.model.eval()
        batch_a, batch_b = self._fixed_batches(rows)
        a, b = batch_a["targets"], batch_b["targets"]
        columns = [
            a,
            self.model.reconstruct(a, "a")[0],
            b,
            self.model.reconstruct(b, "b")[0],
            self.model.swap(b)[0],
        ]
        grid = torch.cat([torch.cat(list(c.float()), dim=1) for c in columns], dim=2)
        return (grid.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)

    def write_preview(self) -> None:
        cv2.imwrite(str(self.options.out / PREVIEW), self.preview())


ProgressFactory = Callable[[int | None, int], Any]


def train(options: TrainOptions, progress: ProgressFactory | None = None) -> TrainResult:
    """Trains (or resumes) until ``steps`` in total or for ``minutes``."""
    if options.steps is None and options.minutes is None:
        raise InvalidInputError("give --steps or --minutes")
    trainer = Trainer(options)
    trainer.resume()
    target = options.steps
    deadline = time.monotonic() + options.minutes * 60 if options.minutes else None
    bar = progress(target, trainer.step_count) if progress else None
    start_step, start = trainer.step_count, time.perf_counter()
    try:
        while (target is None or trainer.step_count < target) and (
            deadline is None or time.monotonic() < deadline
        ):
            loss = trainer.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if not np.isfinite(loss):
                raise InvalidInputError(f"training diverged at step {trainer.step_count}")
            if trainer.step_count % options.checkpoint_every == 0:
                trainer.save()
            if trainer.step_count % options.preview_every == 0:
                trainer.write_preview()
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - start
    steps_done = trainer.step_count - start_step
    rate = steps_done / elapsed if elapsed > 0 else 0.0
    trainer.save()
    trainer.write_preview()
    trainer.write_metadata({"last_run_steps_per_second": round(rate, 3)})
    return TrainResult(
        options.out,
        trainer.step_count,
        trainer.last_loss,
        trainer.first_loss,
        rate,
        trainer.device.type,
    )

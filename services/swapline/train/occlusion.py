"""The occlusion segmenter: which pixels of an aligned face crop are the
face itself, and which are something in front of it (a hand, a microphone,
glasses, hair), learned without a single hand-drawn label.

Training pairs are made on the fly: a face crop from a faceset, with random
occluders pasted over it (polygons, bars, strokes, blobs, filled with
textures cut from non-face pictures, skin tones or flat colours, with soft
edges and a shadow on the face); the label is the face's landmark hull
minus the occluder. The net is a small U-Net on the crop.

It is served inside the swap model: :func:`merge_into_swap_model` joins the
two ONNX graphs so that the swap model's ``mask`` output becomes its learned
mask times the segmenter's, and every engine (ONNX Runtime in this process,
the Swapper, Triton) draws the swapped face only where the face is visible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapline.errors import InvalidInputError
from swapline.stages.model_contract import INPUT, OUTPUTS

SKIN = ((80, 110, 170), (120, 150, 205), (60, 80, 130), (150, 180, 225), (40, 55, 90))


@dataclass(frozen=True)
class OcclusionTrainResult:
    steps: int
    loss: float
    seconds: float
    iou_visible: float  # on held-out synthetic pairs


def load_crops(facesets: Sequence[Path], resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Face crops (BGR) and their landmark-hull masks from facesets, resized
    to ``resolution``."""
    from swapline.train.data import load_faceset

    faces, masks = [], []
    for faceset in facesets:
        loaded = load_faceset(faceset, resolution)
        faces.append(loaded.faces)
        masks.append(loaded.masks)
    if not faces or sum(len(f) for f in faces) < 16:
        raise InvalidInputError("occlusion training needs at least 16 faces")
    return np.concatenate(faces), np.concatenate(masks)


def texture_pool(images: Sequence[np.ndarray], size: int, count: int = 256) -> np.ndarray:
    """Square patches cut from non-face pictures, ``size`` pixels."""
    rng = np.random.default_rng(1)
    patches = []
    for _ in range(count):
        image = images[rng.integers(len(images))]
        height, width = image.shape[:2]
        side = int(rng.integers(max(8, min(height, width) // 8), max(9, min(height, width) // 2)))
        y, x = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        patches.append(cv2.resize(image[y : y + side, x : x + side], (size, size)))
    return np.stack(patches)


def _shape(rng: np.random.Generator, size: int) -> np.ndarray:
    """One occluder's silhouette on a ``size`` square, 0/255."""
    canvas = np.zeros((size, size), np.uint8)
    kind = rng.integers(4)
    if kind == 0:  # a polygon: a cup, a hand's palm, a sign
        centre = rng.uniform(0.1, 0.9, 2) * size
        radius = rng.uniform(0.15, 0.45) * size
        count = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, count))
        radii = radius * rng.uniform(0.5, 1.0, count)
        points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
        cv2.fillPoly(canvas, [points.astype(np.int32)], (255,))
    elif kind == 1:  # a bar: a microphone, a pen, a glasses' arm
        start = rng.uniform(-0.2, 1.2, 2) * size
        angle = rng.uniform(0, math.pi)
        end = start + np.array([math.cos(angle), math.sin(angle)]) * size * rng.uniform(0.4, 1.5)
        width = int(rng.uniform(0.05, 0.25) * size) + 1
        cv2.line(canvas, _pt(start), _pt(end), (255,), width)
    elif kind == 2:  # strokes: fingers, hair strands
        for _ in range(int(rng.integers(1, 6))):
            points = np.cumsum(rng.normal(0, 0.12, (4, 2)), 0) * size + rng.uniform(0, 1, 2) * size
            width = int(rng.uniform(0.02, 0.1) * size) + 1
            cv2.polylines(canvas, [points.astype(np.int32)], False, (255,), width)
    else:  # blobs: a ball, a lens
        for _ in range(int(rng.integers(1, 3))):
            centre = rng.uniform(0.1, 0.9, 2) * size
            axes = rng.uniform(0.06, 0.25, 2) * size
            cv2.ellipse(
                canvas, _pt(centre), _pt(axes), float(rng.uniform(0, 180)), 0, 360, (255,), -1
            )
    return canvas


def _pt(point: np.ndarray) -> tuple[int, int]:
    return int(point[0]), int(point[1])


def synthetic_pair(
    face: np.ndarray, hull: np.ndarray, textures: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A face with occluders over it, and the visible face (0/1 float)."""
    size = face.shape[0]
    image = face.astype(np.float32)
    occluder = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(0, 3))):  # a quarter of pairs stay clean
        shape = _shape(rng, size).astype(np.float32) / 255
        if shape.sum() < 4:
            continue
        fill_kind = rng.integers(3)
        if fill_kind == 0:
            fill = textures[rng.integers(len(textures))].astype(np.float32)
        elif fill_kind == 1:
            tone = np.array(SKIN[rng.integers(len(SKIN))], np.float32)
            fill = np.broadcast_to(tone * rng.uniform(0.7, 1.2), image.shape).copy()
        else:
            fill = np.broadcast_to(rng.uniform(0, 255, 3).astype(np.float32), image.shape).copy()
        fill += rng.normal(0, 6, image.shape).astype(np.float32)
        soft = cv2.GaussianBlur(shape, (0, 0), rng.uniform(0.3, 1.5))
        shift = rng.integers(-3, 4, 2)
        shadow = np.roll(cv2.GaussianBlur(shape, (0, 0), 3.0), tuple(shift), (0, 1))
        image *= (1 - 0.35 * shadow * rng.uniform(0, 1))[..., None]
        image = image * (1 - soft[..., None]) + fill * soft[..., None]
        occluder = np.maximum(occluder, shape)
    visible = (hull.astype(np.float32) / 255) * (1 - occluder)
    if rng.random() < 0.5:  # a small face in its frame: crops upscaled from few pixels
        small = max(8, int(size * rng.uniform(0.25, 0.9)))
        shrunk = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
        image = np.asarray(
            cv2.resize(shrunk, (size, size), interpolation=cv2.INTER_LINEAR), np.float32
        )
    if rng.random() < 0.5:  # blur and brightness, as in a video
        image = np.asarray(cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.2)), np.float32)
    image = image * rng.uniform(0.8, 1.2) + rng.uniform(-15, 15)
    return np.clip(image, 0, 255).astype(np.uint8), (visible > 0.5).astype(np.float32)


def make_net(channels: int = 16) -> Any:
    """A small U-Net: uint8 BGR crops [N, R, R, 3] in, visible-face logits
    [N, 1, R, R] out."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = channels
            self.down1, self.down2, self.down3 = block(3, c), block(c, 2 * c), block(2 * c, 4 * c)
            self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
            self.dec2 = block(4 * c, 2 * c)
            self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
            self.dec1 = block(2 * c, c)
            self.head = nn.Conv2d(c, 1, 1)

        def forward(self, faces: torch.Tensor) -> torch.Tensor:
            x = faces.permute(0, 3, 1, 2).float() / 127.5 - 1
            d1 = self.down1(x)
            d2 = self.down2(nn.functional.max_pool2d(d1, 2))
            d3 = self.down3(nn.functional.max_pool2d(d2, 2))
            u2 = self.dec2(torch.cat([self.up2(d3), d2], 1))
            u1 = self.dec1(torch.cat([self.up1(u2), d1], 1))
            return self.head(u1)

    return UNet()


def _batch(
    faces: np.ndarray, hulls: np.ndarray, textures: np.ndarray, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    picks = rng.integers(0, len(faces), n)
    pairs = [synthetic_pair(faces[i], hulls[i], textures, rng) for i in picks]
    flips = rng.random(n) < 0.5
    images = np.stack([p[0][:, ::-1] if f else p[0] for p, f in zip(pairs, flips, strict=True)])
    labels = np.stack([p[1][:, ::-1] if f else p[1] for p, f in zip(pairs, flips, strict=True)])
    return np.ascontiguousarray(images), np.ascontiguousarray(labels)


def train_segmenter(
    faces: np.ndarray,
    hulls: np.ndarray,
    textures: np.ndarray,
    minutes: float,
    batch: int = 32,
    seed: int = 0,
    max_steps: int | None = None,
) -> tuple[Any, OcclusionTrainResult]:
    """Trains the segmenter for ``minutes`` (or ``max_steps``) on CPU."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = make_net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    bce = torch.nn.BCEWithLogitsLoss()
    start, steps, loss_value = time.monotonic(), 0, float("nan")
    net.train()
    while time.monotonic() - start < minutes * 60 and (max_steps is None or steps < max_steps):
        images, labels = _batch(faces, hulls, textures, rng, batch)
        logits = net(torch.from_numpy(images))
        target = torch.from_numpy(labels)[:, None]
        probs = torch.sigmoid(logits)
        dice = 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)
        loss = bce(logits, target) + dice
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        loss_value = float(loss.detach())
    net.eval()
    images, labels = _batch(faces, hulls, textures, np.random.default_rng(seed + 1), 64)
    with torch.no_grad():
        predicted = torch.sigmoid(net(torch.from_numpy(images)))[:, 0].numpy() > 0.5
    truth = labels > 0.5
    iou = float((predicted & truth).sum() / max(1, (predicted | truth).sum()))
    return net, OcclusionTrainResult(steps, loss_value, time.monotonic() - start, iou)


def export_segmenter(net: Any, resolution: int, path: Path) -> Path:
    """The segmenter as ONNX: (faces uint8 [N,R,R,3], mask uint8 [N,R,R,1])
    in, the mask kept only where the face is visible out."""
    import torch

    class Masked(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, faces: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            visible = torch.sigmoid(self.net(faces)).permute(0, 2, 3, 1)
            return torch.round(mask.float() * visible).clamp(0, 255).to(torch.uint8)

    faces = torch.zeros((2, resolution, resolution, 3), dtype=torch.uint8)
    mask = torch.zeros((2, resolution, resolution, 1), dtype=torch.uint8)
    torch.onnx.export(
        Masked().eval(),
        (faces, mask),
        str(path),
        input_names=["occlusion_faces", "swap_mask"],
        output_names=["occlusion_mask"],
        dynamic_axes={n: {0: "batch"} for n in ("occlusion_faces", "swap_mask", "occlusion_mask")},
        opset_version=17,
        dynamo=False,
    )
    return path


def merge_into_swap_model(swap: Path, segmenter: Path, out: Path) -> Path:
    """A swap model whose ``mask`` output is its own mask times the
    segmenter's visible face: same inputs and outputs as before."""
    import onnx
    from onnx import compose, helper

    model = onnx.load(str(swap))
    graph = model.graph
    mask_name = OUTPUTS[1]
    # The swap graph's own mask and a copy of its input become outputs the
    # segmenter's graph takes.
    for node in graph.node:
        node.output[:] = ["swap_mask" if o == mask_name else o for o in node.output]
        node.input[:] = ["swap_mask" if i == mask_name else i for i in node.input]
    for output in graph.output:
        if output.name == mask_name:
            output.name = "swap_mask"
    graph.node.append(helper.make_node("Identity", [INPUT], ["faces_copy"]))
    graph.output.append(helper.make_tensor_value_info("faces_copy", onnx.TensorProto.UINT8, None))
    seg = compose.add_prefix(onnx.load(str(segmenter)), "occlusion/")
    seg.ir_version = model.ir_version
    merged = compose.merge_models(
        model,
        seg,
        io_map=[
            ("faces_copy", "occlusion/occlusion_faces"),
            ("swap_mask", "occlusion/swap_mask"),
        ],
    )
    # One import per domain (merge_models lists the shared opset twice,
    # which ONNX Runtime's quantizer refuses).
    opsets = {o.domain: o.version for o in merged.opset_import}
    del merged.opset_import[:]
    merged.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets.items())
    for node in merged.graph.node:
        node.output[:] = [mask_name if o == "occlusion/occlusion_mask" else o for o in node.output]
    for output in list(merged.graph.output):
        if output.name == "occlusion/occlusion_mask":
            output.name = mask_name
        elif output.name in ("faces_copy", "swap_mask"):
            merged.graph.output.remove(output)
    onnx.checker.check_model(merged)
    onnx.save(merged, str(out))
    return out

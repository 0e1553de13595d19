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
from swapline.stages.model_contract import INPUT, OUTPUTS, REGION, VISIBLE

# The exported segmenter's outputs, in the swap model's names.
SEGMENTER_OUTPUTS = (OUTPUTS[1], VISIBLE, REGION)
EYES_AND_MOUTH_WEIGHT = 1.0
SKIN = ((80, 110, 170), (120, 150, 205), (60, 80, 130), (150, 180, 225), (40, 55, 90))


@dataclass(frozen=True)
class OcclusionTrainResult:
    steps: int
    loss: float
    seconds: float
    iou_visible: float  # on held-out synthetic pairs


def load_crops(
    facesets: Sequence[Path], resolution: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face crops (BGR), their landmark-hull masks and their eyes-and-mouth
    masks from facesets, resized to ``resolution``."""
    from swapline.train.data import load_faceset

    faces, masks, priority = [], [], []
    for faceset in facesets:
        loaded = load_faceset(faceset, resolution)
        faces.append(loaded.faces)
        masks.append(loaded.masks)
        priority.append(loaded.priority)
    if not faces or sum(len(f) for f in faces) < 16:
        raise InvalidInputError("occlusion training needs at least 16 faces")
    return np.concatenate(faces), np.concatenate(masks), np.concatenate(priority)


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
    kind = rng.integers(6)
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
    elif kind == 3:  # blobs: a ball, a lens
        for _ in range(int(rng.integers(1, 3))):
            centre = rng.uniform(0.1, 0.9, 2) * size
            axes = rng.uniform(0.06, 0.25, 2) * size
            cv2.ellipse(
                canvas, _pt(centre), _pt(axes), float(rng.uniform(0, 180)), 0, 360, (255,), -1
            )
    elif kind == 4:  # a hand: a palm and fingers, from any side
        _hand_shape(canvas, rng, size)
    else:  # glasses: two lenses, a bridge, arms
        _glasses_shape(canvas, rng, size)
    return canvas


def _hand_shape(canvas: np.ndarray, rng: np.random.Generator, size: int) -> None:
    centre = rng.uniform(-0.1, 1.1, 2) * size
    palm = rng.uniform(0.12, 0.3) * size
    direction = rng.uniform(0, 2 * math.pi)
    cv2.ellipse(
        canvas, _pt(centre), _pt(np.array([palm, palm * rng.uniform(0.7, 1.3)])),
        math.degrees(direction), 0, 360, (255,), -1,
    )  # fmt: skip
    fingers = int(rng.integers(1, 6))
    spread = rng.uniform(0.3, 1.2)
    for k in range(fingers):
        angle = direction + (k - (fingers - 1) / 2) * spread / max(1, fingers - 1)
        length = palm * rng.uniform(1.0, 2.2)
        base = centre + palm * 0.7 * np.array([math.cos(angle), math.sin(angle)])
        bend = rng.normal(0, 0.25)
        mid = base + 0.5 * length * np.array([math.cos(angle), math.sin(angle)])
        tip = mid + 0.5 * length * np.array([math.cos(angle + bend), math.sin(angle + bend)])
        width = max(1, int(palm * rng.uniform(0.25, 0.45)))
        cv2.polylines(canvas, [np.array([base, mid, tip]).astype(np.int32)], False, (255,), width)


def _glasses_shape(canvas: np.ndarray, rng: np.random.Generator, size: int) -> None:
    centre = rng.uniform(0.2, 0.8, 2) * size
    span = rng.uniform(0.3, 0.6) * size
    angle = rng.normal(0, 0.2)
    axis = np.array([math.cos(angle), math.sin(angle)])
    lens = np.array([span * rng.uniform(0.3, 0.5), span * rng.uniform(0.2, 0.4)])
    thick = max(1, int(size * rng.uniform(0.01, 0.04)))
    filled = rng.random() < 0.7  # dark lenses; otherwise frames only
    lenses = [centre - axis * span / 2, centre + axis * span / 2]
    round_lenses = rng.random() < 0.5
    for middle in lenses:
        if round_lenses:
            cv2.ellipse(
                canvas, _pt(middle), _pt(lens), math.degrees(angle), 0, 360, (255,),
                -1 if filled else thick,
            )  # fmt: skip
        else:
            box = (
                (float(middle[0]), float(middle[1])),
                (2 * lens[0], 2 * lens[1]),
                math.degrees(angle),
            )
            corners = cv2.boxPoints(box).astype(np.int32)
            if filled:
                cv2.fillConvexPoly(canvas, corners, (255,))
            else:
                cv2.polylines(canvas, [corners], True, (255,), thick)
    cv2.line(canvas, _pt(lenses[0]), _pt(lenses[1]), (255,), thick)
    if rng.random() < 0.7:
        for sign, middle in ((-1, lenses[0]), (1, lenses[1])):
            start = middle + sign * axis * lens[0]
            cv2.line(canvas, _pt(start), _pt(start + sign * axis * span), (255,), thick)


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
        fill_kind = rng.integers(4)
        if fill_kind == 0:
            fill = textures[rng.integers(len(textures))].astype(np.float32)
        elif fill_kind == 1:
            tone = np.array(SKIN[rng.integers(len(SKIN))], np.float32)
            fill = np.broadcast_to(tone * rng.uniform(0.7, 1.2), image.shape).copy()
        elif fill_kind == 2:
            fill = np.broadcast_to(rng.uniform(0, 255, 3).astype(np.float32), image.shape).copy()
        else:  # the person's own hand: their skin, lit from one side
            tone = np.asarray(cv2.mean(face, mask=hull)[:3], np.float32)
            ramp = np.linspace(
                rng.uniform(0.7, 1.0), rng.uniform(1.0, 1.25), size, dtype=np.float32
            )
            light = np.rot90(np.broadcast_to(ramp, (size, size)), int(rng.integers(4)))
            fill = tone * light[..., None]
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
    if rng.random() < 0.5:  # blur, as in a video
        image = np.asarray(cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.2)), np.float32)
    image = _recolour(np.clip(image, 0, 255).astype(np.uint8), rng)
    return image, (visible > 0.5).astype(np.float32)


def _recolour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another camera, light and skin: white balance, hue, saturation,
    gamma, contrast, sometimes grey, noise and JPEG. The few identities of
    the facesets would otherwise teach the net that "face" means their
    skin under their light, and call every other face an occluder."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
    hsv[..., 1] *= rng.uniform(0.5, 1.4)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    out = out.astype(np.float32) * rng.uniform(0.88, 1.12, 3)
    out = 255 * (np.clip(out, 0, 255) / 255) ** rng.uniform(0.6, 1.6)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.6, 1.3) + mean + rng.uniform(-25, 25)
    if rng.random() < 0.05:
        out[:] = out.mean(2, keepdims=True)
    out += rng.normal(0, rng.uniform(0, 6), out.shape)
    out8 = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        quality = int(rng.integers(30, 90))
        _, data = cv2.imencode(".jpg", out8, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out8 = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return out8


def make_net(channels: int = 12) -> Any:
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
    faces: np.ndarray,
    hulls: np.ndarray,
    priority: np.ndarray,
    textures: np.ndarray,
    rng: np.random.Generator,
    n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, labels and per-pixel loss weights: eyes and mouth left
    visible weigh more, as calling them covered shows most (a patchwork of
    real and swapped features)."""
    picks = rng.integers(0, len(faces), n)
    pairs = [synthetic_pair(faces[i], hulls[i], textures, rng) for i in picks]
    weights = [
        1 + EYES_AND_MOUTH_WEIGHT * (priority[i] > 127) * p[1]
        for i, p in zip(picks, pairs, strict=True)
    ]
    flips = rng.random(n) < 0.5

    def flipped(arrays: Sequence[np.ndarray]) -> np.ndarray:
        return np.ascontiguousarray(
            np.stack([a[:, ::-1] if f else a for a, f in zip(arrays, flips, strict=True)])
        )

    return (
        flipped([p[0] for p in pairs]),
        flipped([p[1] for p in pairs]),
        flipped(weights).astype(np.float32),
    )


def train_segmenter(
    faces: np.ndarray,
    hulls: np.ndarray,
    priority: np.ndarray,
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
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    start, steps, loss_value = time.monotonic(), 0, float("nan")
    net.train()
    while time.monotonic() - start < minutes * 60 and (max_steps is None or steps < max_steps):
        images, labels, weights = _batch(faces, hulls, priority, textures, rng, batch)
        logits = net(torch.from_numpy(images))
        target = torch.from_numpy(labels)[:, None]
        probs = torch.sigmoid(logits)
        dice = 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)
        loss: Any = bce(logits, target, weight=torch.from_numpy(weights)[:, None]) + dice
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        loss_value = float(loss.detach())
    net.eval()
    images, labels, _ = _batch(
        faces, hulls, priority, textures, np.random.default_rng(seed + 1), 64
    )
    with torch.no_grad():
        predicted = torch.sigmoid(net(torch.from_numpy(images)))[:, 0].numpy() > 0.5
    truth = labels > 0.5
    iou = float((predicted & truth).sum() / max(1, (predicted | truth).sum()))
    return net, OcclusionTrainResult(steps, loss_value, time.monotonic() - start, iou)


def covered(occluded: Any) -> Any:
    """What the blend treats as covered, from the net's soft ``occluded``
    ([N, 1, R, R], 0..1): doubt below a quarter counts as visible and above
    three quarters as covered, and the covered part grows two pixels, so
    that the blend's feathering, which spreads the swapped face over the
    border, stops at the occluder's edge instead of running over it, and
    thin tips (fingers) the net half sees are covered whole."""
    import torch
    from torch import nn

    hard = torch.clamp(2 * occluded - 0.5, 0, 1)
    return nn.functional.max_pool2d(hard, 5, 1, 2)


def export_segmenter(net: Any, resolution: int, path: Path) -> Path:
    """The segmenter as ONNX: (faces uint8 [N,R,R,3], the swap model's
    learned region uint8 [N,R,R,1]) in; the region kept only where the face
    is visible, the visible face, and the region passed through out (all
    uint8 [N,R,R,1])."""
    import torch

    class Masked(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(
            self, faces: torch.Tensor, region: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            occluded = 1 - torch.sigmoid(self.net(faces))
            visible = (1 - covered(occluded)).permute(0, 2, 3, 1)
            mask = torch.round(region.float() * visible).clamp(0, 255).to(torch.uint8)
            visible8 = torch.round(visible * 255).clamp(0, 255).to(torch.uint8)
            return mask, visible8, region + 0

    faces = torch.zeros((2, resolution, resolution, 3), dtype=torch.uint8)
    region = torch.zeros((2, resolution, resolution, 1), dtype=torch.uint8)
    names = ["occlusion_faces", "occlusion_region_in", *SEGMENTER_OUTPUTS]
    torch.onnx.export(
        Masked().eval(),
        (faces, region),
        str(path),
        input_names=names[:2],
        output_names=names[2:],
        dynamic_axes={n: {0: "batch"} for n in names},
        opset_version=17,
        dynamo=False,
    )
    return path


def merge_into_swap_model(swap: Path, segmenter: Path, out: Path) -> Path:
    """A swap model with the segmenter joined: ``swapped`` as before;
    ``mask`` its learned region times the visible face; ``region`` and
    ``visible`` on their own (see :mod:`swapline.stages.model_contract`)."""
    import onnx
    from onnx import compose, helper

    model = onnx.load(str(swap))
    graph = model.graph
    mask_name = OUTPUTS[1]
    # The swap graph's learned mask and a copy of its input become outputs
    # the segmenter's graph takes.
    for node in graph.node:
        node.output[:] = ["learned_region" if o == mask_name else o for o in node.output]
        node.input[:] = ["learned_region" if i == mask_name else i for i in node.input]
    for output in graph.output:
        if output.name == mask_name:
            output.name = "learned_region"
    graph.node.append(helper.make_node("Identity", [INPUT], ["faces_copy"]))
    graph.output.append(helper.make_tensor_value_info("faces_copy", onnx.TensorProto.UINT8, None))
    seg = compose.add_prefix(onnx.load(str(segmenter)), "occlusion/")
    seg.ir_version = model.ir_version
    merged = compose.merge_models(
        model,
        seg,
        io_map=[
            ("faces_copy", "occlusion/occlusion_faces"),
            ("learned_region", "occlusion/occlusion_region_in"),
        ],
        outputs=[OUTPUTS[0], *(f"occlusion/{name}" for name in SEGMENTER_OUTPUTS)],
    )
    # One import per domain (merge_models lists the shared opset twice,
    # which ONNX Runtime's quantizer refuses).
    opsets = {o.domain: o.version for o in merged.opset_import}
    del merged.opset_import[:]
    merged.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets.items())
    renames = {f"occlusion/{name}": name for name in SEGMENTER_OUTPUTS}
    for node in merged.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
    for output in merged.graph.output:
        output.name = renames.get(output.name, output.name)
    onnx.checker.check_model(merged)
    onnx.save(merged, str(out))
    return out

"""Masked DSSIM + L1 face loss and the mask loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_kernel(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim_map(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of two NCHW images in [0, 1] (3 channels)."""
    pad = kernel.shape[-1] // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (pad,) * 4, mode="reflect"), kernel, groups=3)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def blur_mask(mask: torch.Tensor, resolution: int) -> torch.Tensor:
    """Soften the landmark mask edge (about 1/32 of the face) so the loss also
    sees the skin just outside the hull."""
    size = max(3, (resolution // 32) | 1)
    return F.avg_pool2d(F.pad(mask, (size // 2,) * 4, mode="replicate"), size, stride=1)


def face_loss(
    predicted: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    priority: torch.Tensor | None,
    kernel: torch.Tensor,
    priority_weight: float = 0.0,
) -> torch.Tensor:
    """DSSIM + L1 inside the blurred mask, with optional extra weight on the
    eyes and mouth."""
    soft = blur_mask(mask, predicted.shape[-1])
    weight = soft
    if priority is not None and priority_weight > 0:
        weight = soft * (1.0 + priority_weight * priority)
    dssim = (1.0 - ssim_map(predicted * soft, target * soft, kernel)) / 2.0
    norm = weight.sum() * 3 + 1e-6
    l1 = (weight * (predicted - target).abs()).sum() / norm
    return 2.0 * (weight * dssim).sum() / norm + l1


def mask_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(predicted, target)

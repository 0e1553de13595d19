"""The swap autoencoders.

``df``: a shared encoder and bottleneck ("inter"), one decoder per identity.
Swapping encodes a face of B and decodes it with A's decoder.

``liae``: a shared encoder and decoder; two bottlenecks, one fed by both
identities (AB) and one by B only. A face is decoded from the concatenation
of its two codes; swapping uses the AB code twice, which carries B's pose and
expression but decodes to A's appearance.

Each decoder predicts the face (3 channels, sigmoid) and its mask (1 channel).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    resolution: int = 64
    architecture: str = "df"
    encoder_dims: int = 32
    bottleneck_dims: int = 128
    decoder_dims: int = 32

    def validate(self) -> None:
        if self.resolution % 16 or not 64 <= self.resolution <= 512:
            raise ValueError(
                f"resolution must be a multiple of 16 in 64..512, got {self.resolution}"
            )
        if self.architecture not in ("df", "liae"):
            raise ValueError(f"architecture must be df or liae, got {self.architecture}")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2), nn.LeakyReLU(0.1)
    )


class Upscale(nn.Module):
    """Conv to 4x channels, then pixel shuffle: doubles the resolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.act(self.conv(x)))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


class Encoder(nn.Module):
    """Four 5x5 stride-2 convolutions: res -> res/16."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _conv(3, dims, 5, 2),
            _conv(dims, dims * 2, 5, 2),
            _conv(dims * 2, dims * 4, 5, 2),
            _conv(dims * 4, dims * 8, 5, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.net(x), 1)


class Inter(nn.Module):
    """Dense bottleneck back to a res/8 feature map."""

    def __init__(self, in_features: int, bottleneck: int, out_channels: int, res: int) -> None:
        super().__init__()
        self.side = res // 16
        self.out_channels = out_channels
        self.dense1 = nn.Linear(in_features, bottleneck)
        self.dense2 = nn.Linear(bottleneck, self.side * self.side * out_channels)
        self.upscale = Upscale(out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense2(self.dense1(x))
        x = x.view(-1, self.out_channels, self.side, self.side)
        return self.upscale(x)


class Decoder(nn.Module):
    """res/8 -> res with three upscales; a face head and a mask head."""

    def __init__(self, in_channels: int, dims: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            Upscale(in_channels, dims * 4),
            ResidualBlock(dims * 4),
            Upscale(dims * 4, dims * 2),
            ResidualBlock(dims * 2),
            Upscale(dims * 2, dims),
            ResidualBlock(dims),
        )
        self.face = nn.Conv2d(dims, 3, 1)
        self.mask_trunk = nn.Sequential(
            Upscale(in_channels, dims * 2),
            Upscale(dims * 2, dims),
            Upscale(dims, max(8, dims // 2)),
        )
        self.mask = nn.Conv2d(max(8, dims // 2), 1, 1)
        for head in (self.face, self.mask):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        face = torch.sigmoid(self.face(self.trunk(x)))
        mask = torch.sigmoid(self.mask(self.mask_trunk(x)))
        return face, mask


class SwapModel(nn.Module):
    """Both architectures behind one interface: reconstruct A, reconstruct B,
    and swap B to A. Images are float NCHW in [0, 1], BGR."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        res, e, b, d = (
            config.resolution,
            config.encoder_dims,
            config.bottleneck_dims,
            config.decoder_dims,
        )
        self.encoder = Encoder(e)
        flat = e * 8 * (res // 16) ** 2
        if config.architecture == "df":
            self.inter = Inter(flat, b, b, res)
            self.decoder_a = Decoder(b, d)
            self.decoder_b = Decoder(b, d)
        else:
            self.inter_ab = Inter(flat, b, b, res)
            self.inter_b = Inter(flat, b, b, res)
            self.decoder = Decoder(2 * b, d)

    def reconstruct(self, x: torch.Tensor, identity: str) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(x)
        if self.config.architecture == "df":
            decoder = self.decoder_a if identity == "a" else self.decoder_b
            return decoder(self.inter(code))
        ab = self.inter_ab(code)
        if identity == "a":
            return self.decoder(torch.cat([ab, ab], 1))
        return self.decoder(torch.cat([self.inter_b(code), ab], 1))

    def swap(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Faces of B in, the same faces with A's identity out (and masks)."""
        return self.reconstruct(x, "a")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.swap(x)


class SwapExport(nn.Module):
    """What is exported and served: uint8 NHWC BGR faces in, uint8 swapped
    faces and masks out. Integer tensors move a quarter of the bytes of
    float32 between the Swapper and Triton."""

    def __init__(self, model: SwapModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = faces.permute(0, 3, 1, 2).float() / 255.0
        face, mask = self.model.swap(x)
        face = (face * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        mask = (mask * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return face, mask


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

"""Encoders (SPEC §4): torchvision ResNets, with the CIFAR stem for small images.

- ``resnet18_cifar``: torchvision ResNet-18 whose stem is a 3x3 stride-1 convolution and no
  max-pool (the usual CIFAR variant, as in SimSiam's CIFAR experiments), 512-d output.
- ``resnet18`` / ``resnet50``: the standard torchvision models (224 px), 512-d / 2048-d output.
- ``tiny_cnn``: a four-layer CNN of configurable width for 8x8 digits, so the CPU demo stays fast.

Every backbone maps (B, 3, H, W) float images to (B, d) features; ``fc`` is removed.
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn


class TinyCNN(nn.Module):
    """conv3x3(w) -> conv3x3(w) -> conv3x3/2(2w) -> conv3x3(2w) -> global average pool; (B,3,H,W) -> (B, 2w)."""

    def __init__(self, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.net = nn.Sequential(*block(3, width), *block(width, width), *block(width, 2 * width, 2),
                                 *block(2 * width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _resnet(name: str, cifar_stem: bool) -> tuple[nn.Module, int]:
    model = getattr(torchvision.models, name)(weights=None)  # weights=None: nothing is downloaded
    if cifar_stem:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    dim = model.fc.in_features
    model.fc = nn.Identity()
    return model, dim


BACKBONES = ("resnet18_cifar", "resnet18", "resnet50", "tiny_cnn")


def resolve_backbone(name: str, image_size: int) -> str:
    """'auto' -> tiny_cnn (<= 16 px), resnet18_cifar (<= 64 px) or resnet18."""
    if name != "auto":
        if name not in BACKBONES:
            raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
        return name
    if image_size <= 16:
        return "tiny_cnn"
    return "resnet18_cifar" if image_size <= 64 else "resnet18"


def build_backbone(name: str, image_size: int, width: int = 32) -> tuple[nn.Module, int]:
    """Return (module mapping (B,3,H,W) -> (B,d), d)."""
    name = resolve_backbone(name, image_size)
    if name == "tiny_cnn":
        net = TinyCNN(width)
        return net, net.out_dim
    if name == "resnet18_cifar":
        return _resnet("resnet18", cifar_stem=True)
    return _resnet(name, cifar_stem=False)

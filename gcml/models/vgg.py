"""VGG16 feature extractor for pi-DOC's perceptual loss, from weights the user supplies.

Chardin & Bianchini (2021) train their mass-map encoder-decoder with a perceptual loss: the distance
between VGG16 features (Simonyan & Zisserman 2015) of the predicted and the true map (Johnson, Alahi &
Fei-Fei 2016). The ImageNet weights cannot be downloaded by gcml (nothing reaches the network), so the user
passes a file: a PyTorch state dict in torchvision's layout (``features.0.weight`` ... as in torchvision's
``vgg16-397923af.pth``, or the same keys without the ``features.`` prefix). It is loaded with
``torch.load(weights_only=True)``; the network is built here by hand (no torchvision dependency).

The features are taken after ``relu3_3`` (the third block, 256 channels at 1/4 resolution) by default,
the layer Johnson et al. use for their feature-reconstruction loss at the coarser scale; ``relu2_2`` is
the alternative. The single-channel map (standardised log10 mass) is repeated over the three colour
channels.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gcml.errors import ConfigError, FormatError, InputError

#: VGG16 configuration "D": convolution widths, "M" = 2x2 max pooling.
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: Index (in torchvision's ``features`` Sequential) of the ReLU after which each named layer ends.
LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}


def vgg16_features(upto: str = "relu3_3") -> nn.Sequential:
    """torchvision-compatible ``features`` Sequential of VGG16, cut after layer ``upto``."""
    if upto not in LAYERS:
        raise ConfigError(f"VGG16 layer '{upto}' unknown; expected one of {', '.join(LAYERS)}")
    layers: list[nn.Module] = []
    c_in = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(v)
    return nn.Sequential(*layers[: LAYERS[upto] + 1])


def load_vgg16_features(path: str | Path, *, upto: str = "relu3_3") -> nn.Sequential:
    """Build VGG16 features up to ``upto`` and load the user's weights; frozen, in eval mode."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: VGG16 weights file not found")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors of many kinds
        raise FormatError(f"{p}: not a PyTorch state dict of VGG16 weights ({type(exc).__name__})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise FormatError(f"{p}: expected a state dict (name -> tensor) of VGG16 weights")
    net = vgg16_features(upto)
    want = net.state_dict()
    got = {}
    for k in want:
        for cand in (f"features.{k}", k):
            if cand in sd:
                got[k] = sd[cand]
                break
        else:
            raise FormatError(f"{p}: VGG16 weight 'features.{k}' missing (expected torchvision's vgg16 layout)")
        if tuple(got[k].shape) != tuple(want[k].shape):
            raise FormatError(f"{p}: VGG16 weight 'features.{k}' has shape {tuple(got[k].shape)}, "
                              f"expected {tuple(want[k].shape)}")
    net.load_state_dict(got)
    for q in net.parameters():
        q.requires_grad_(False)
    return net.eval()


class PerceptualLoss(nn.Module):
    """Mean squared difference of VGG16 features of two single-channel maps (B, 1, H, W)."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features

    def forward(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        self.features.eval()  # the loss network never trains (no dropout, frozen weights)
        if next(self.features.parameters()).device != pred.device:
            self.features.to(pred.device)
        fp = self.features(pred.expand(-1, 3, -1, -1))
        with torch.no_grad():
            ft = self.features(true.expand(-1, 3, -1, -1))
        return torch.mean((fp - ft) ** 2)

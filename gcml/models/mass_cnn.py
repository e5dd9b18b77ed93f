"""``mass-cnn``: the galaxy-mass CNN of Kaur, Bekki, Hassan & Datta (2021, MNRAS 508, 868), and gcml's variant.

Paper architecture (their Section 2.3 / Fig. 4), for an input of shape (C, 10, 10)::

    Conv2d 32 @ 3x3, valid, ReLU
    Conv2d 64 @ 3x3, valid, ReLU
    [Conv2d 128 @ 3x3, valid, ReLU;  Conv2d 256 @ 3x3, valid, ReLU]     (depth 4 only)
    MaxPool 2x2 (stride 2), Dropout 0.25, Flatten
    Dense 128, ReLU, Dropout 0.5
    Dense 1, linear

With one input channel this has 92,801 (depth 2) and 420,865 (depth 4) trainable parameters. The paper
quotes 92,930 and 420,994: 129 more in both cases, exactly the size of one extra 128 -> 1 dense layer
(128 weights + 1 bias); see docs/models.md.

gcml's variant ``mass-cnn-gcml`` keeps the same layer sequence but uses "same" padding (so the 10x10 map
is not shrunk to 6x6 / 2x2 before pooling and border pixels carry as much weight as central ones),
batch normalisation after each convolution, and by default reads the three channels sigma, v and count
(the count channel tells the network which pixels are empty) and predicts a mean and a log-variance.
"""

from __future__ import annotations

import torch
from torch import nn

from gcml.errors import ConfigError
from gcml.models.registry import ModelSpec

#: ``--channels`` given as a count means these MapSet channels (paper: 1 = sigma, 2 = sigma and V).
CHANNEL_PRESETS = {1: ["sigma"], 2: ["sigma", "v"], 3: ["sigma", "v", "count"]}


class MassCNN(nn.Module):
    """Kaur et al. (2021) CNN for scalar targets from small kinematic maps.

    Parameters
    ----------
    in_channels : int
        Number of input map channels (1 = sigma, 2 = sigma + V, 3 = + count).
    n_outputs : int
        Output units of the last linear layer (1 for the paper's single mass; 2 per target for a
        mean + log-variance head). Set by the training task.
    depth : {2, 4}
        Number of convolutions (the paper's "2 convolutions" and "4 convolutions" networks).
    padding : {"valid", "same"}
        Convolution padding; the paper uses "valid".
    batchnorm : bool
        Batch normalisation after every convolution (gcml variant); the paper has none.
    dropout_conv, dropout_dense : float
        Dropout after pooling (paper 0.25) and after the 128-unit dense layer (paper 0.5).
    input_size : int
        Side of the square input map in pixels (paper: 10).
    hidden : int
        Units of the hidden dense layer (paper: 128).
    """

    def __init__(self, in_channels: int = 1, n_outputs: int = 1, depth: int = 2, padding: str = "valid",
                 batchnorm: bool = False, dropout_conv: float = 0.25, dropout_dense: float = 0.5,
                 input_size: int = 10, hidden: int = 128) -> None:
        super().__init__()
        if depth not in (2, 4):
            raise ConfigError(f"mass-cnn: depth must be 2 or 4, got {depth}")
        if padding not in ("valid", "same"):
            raise ConfigError(f"mass-cnn: padding must be 'valid' or 'same', got '{padding}'")
        if in_channels < 1 or n_outputs < 1:
            raise ConfigError("mass-cnn: in_channels and n_outputs must be at least 1")
        widths = [32, 64, 128, 256][:depth]
        pad = 1 if padding == "same" else 0
        layers: list[nn.Module] = []
        c, size = in_channels, int(input_size)
        for w in widths:
            layers.append(nn.Conv2d(c, w, 3, padding=pad, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.ReLU(inplace=True))
            c = w
            size = size if pad else size - 2
        if size < 2:
            raise ConfigError(f"mass-cnn: a {input_size}x{input_size} map is too small for depth {depth} "
                              "with valid convolutions")
        layers += [nn.MaxPool2d(2), nn.Dropout(dropout_conv), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        flat = c * (size // 2) ** 2
        self.head = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout_dense),
                                  nn.Linear(hidden, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_mass_cnn(**kwargs) -> MassCNN:
    return MassCNN(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (what Keras' ``model.summary()`` reports as trainable)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def resolve_channels(channels: int | str | list[str] | tuple[str, ...]) -> list[str]:
    """``--channels`` as a count (1 = sigma, 2 = sigma,v, 3 = sigma,v,count) or comma-separated names."""
    if isinstance(channels, (list, tuple)):
        names = [str(c).strip() for c in channels if str(c).strip()]
    else:
        s = str(channels).strip()
        if s.isdigit():
            k = int(s)
            if k not in CHANNEL_PRESETS:
                raise ConfigError(f"option `channels`: a count must be 1, 2 or 3, got {k}")
            return list(CHANNEL_PRESETS[k])
        names = [c.strip() for c in s.split(",") if c.strip()]
    if not names:
        raise ConfigError("option `channels`: expected a count (1, 2, 3) or channel names like 'sigma,v'")
    if len(set(names)) != len(names):
        raise ConfigError(f"option `channels`: channel names repeat in {','.join(names)}")
    return names


#: the architectures of this module (read by gcml.models.registry, which lists this module by name)
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="mass-cnn", builder=build_mass_cnn, data_kind="kinematics", output="scalar",
        default_data="maps.h5", paper=True,
        description="Kaur et al. 2021 galaxy-mass CNN (valid 3x3 convs, depth 2 or 4) on V/sigma maps",
        defaults={"depth": 2, "padding": "valid", "batchnorm": False},
        task="scalar-regression", default_channels=("sigma", "v"), default_targets=("log10_mass_total",),
    ),
    ModelSpec(
        name="mass-cnn-gcml", builder=build_mass_cnn, data_kind="kinematics", output="scalar",
        default_data="maps.h5", paper=False,
        description="gcml variant of mass-cnn: same-padding convs + batch norm, sigma/v/count input, mean+log-variance",
        defaults={"depth": 2, "padding": "same", "batchnorm": True, "dropout_conv": 0.1, "dropout_dense": 0.2},
        task="scalar-regression", default_channels=("sigma", "v", "count"), default_targets=("log10_mass_total",),
    ),
)

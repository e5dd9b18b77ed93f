"""pi-DOC networks (Chardin & Bianchini 2021, MNRAS 504, 5656) in PyTorch, and gcml's faster variants.

Published architectures (layer for layer as the authors' Keras 2.3.1 model JSON files,
paolobianchini87/piDOC ``trained_piDOC/{CNN,CED}.json``; input (N, 1, 160, 160), NCHW):

``pidoc-cnn`` (age and distance)::

    4 x [Conv k x k valid + ReLU, BatchNorm, SpatialDropout2D(0.00316), ReLU, MaxPool 2]
         filters 16, 32, 64, 128; kernels 10, 10, 5, 5 (160 -> 151 -> 75 -> 66 -> 33 -> 29 -> 14 -> 10 -> 5)
    Flatten (Keras order H, W, C), Dropout 0.1,
    3 x [Dense + ReLU, BatchNorm, ReLU] with 64, 32, 16 units; Dense 2 linear -> (distance, age)

``pidoc-ced`` (mass map; a U-Net-like convolutional encoder-decoder)::

    encoder level k (filters 32, 64, 128, 128):
        a = SD(BN(ReLU(Conv3x3(x)))); b = SD(BN(ReLU(Conv3x3(a)))); x = MaxPool2(concat(b, a))
    bottleneck: z = SD(BN(ReLU(Conv3x3 128(x))))
    decoder level k = 4, 3, 2 (filters 128, 64, 32):
        c = SD(BN(ReLU(Conv3x3(concat(Up2(z), a_k))))); z = SD(BN(ReLU(Conv3x3(concat(c, input_k)))))
    output: Conv3x3 1 linear (concat(Up2(z), a_1))

All convolutions of the encoder-decoder use Keras ``padding="same"``; :class:`Conv2dSame` reproduces
TensorFlow's rule (total padding ``(ceil(n/s) - 1) s + d (k - 1) + 1 - n``, the smaller half before), which is
asymmetric for even kernels. Keras BatchNorm ``momentum=0.99, epsilon=1e-3`` become PyTorch
``momentum=0.01, eps=1e-3`` (PyTorch's momentum weighs the new batch). Kernels use Keras' Glorot-uniform
initialisation and zero biases, so training from scratch starts as the authors' did.

gcml variants (not in the paper; see docs/pidoc.md for the measurements that justify them):

``pidoc-ced-lite``
    A U-Net on an 80 x 80 grid (a 2x2 stride-2 "patchify" convolution as stem) with fewer channels, the
    output upsampled bilinearly to 160 x 160. The training mass maps are smoothed with a Gaussian of sigma = 4 px
    (pi-DOC Section 2.3), so they carry almost no power at the scales a 2x resampling removes.
``pidoc-cnn-lite``
    A 4x4 stride-4 patchify stem, 3x3 convolutions with batch norm and global average + max pooling in
    place of the large 10x10 kernels and the 3200-unit flatten.
``pidoc-net``
    One network for the mass map, age and distance together: a shared lite encoder, a U-Net decoder for the
    map and a pooled head for the scalars, each with a log-variance (uncertainty) output. ``forward``
    returns a dict ``{"map": (N, 2, H, W), "scalar": (N, 2 n_targets)}`` (means, then log-variances).

Output conventions: map networks return ``(N, out_channels, H, W)``; with ``uncertainty=True`` channel 0 is
the mean and channel 1 the log-variance (Gaussian negative log-likelihood). Scalar networks return
``(N, n_outputs)``; with ``uncertainty=True`` the first ``n_targets`` columns are means and the last
``n_targets`` log-variances. Every network has the attributes ``n_targets`` and ``uncertainty``.

Why one module of ~700 lines: the published networks and gcml's variants share the Keras 'same'
padding, the blocks and the BatchNorm folding; keeping them together keeps the layer-for-layer
correspondence with the authors' JSON in one place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gcml.errors import ConfigError
from gcml.models.registry import ModelSpec

#: pi-DOC maps: 160 x 160 px of 0.25", 40" x 40" (Chardin & Bianchini 2021, Section 2.3).
PIDOC_SIZE = 160
#: SpatialDropout2D rate in the published JSON files (10^-2.5).
PIDOC_SPATIAL_DROPOUT = 0.0031622776601683794


# --------------------------------------------------------------------------------------------------
# Keras-compatible building blocks
# --------------------------------------------------------------------------------------------------

def keras_same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow/Keras ``padding="same"``: (before, after) padding of one axis.

    The output has ``ceil(size / stride)`` samples; the total padding is
    ``max((ceil(size/stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)`` and TensorFlow puts
    the smaller half *before* (top/left), so an even kernel pads one more pixel after (bottom/right).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with Keras' ``padding="same"`` semantics (asymmetric for even kernels or strides > 1).

    When the padding is symmetric and independent of the input size (stride 1, odd kernel) it is done by
    the convolution itself; otherwise the input is zero-padded with :func:`torch.nn.functional.pad` first.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1,
                 bias: bool = True) -> None:
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        s = (stride, stride) if isinstance(stride, int) else tuple(stride)
        d = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
        symmetric = all(si == 1 and (di * (ki - 1)) % 2 == 0 for ki, si, di in zip(k, s, d, strict=False))
        pad = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d, strict=False)) if symmetric else (0, 0)
        super().__init__(in_channels, out_channels, k, stride=s, padding=pad, dilation=d, bias=bias)
        self._explicit_pad = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._explicit_pad:
            top, bottom = keras_same_padding(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
            left, right = keras_same_padding(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def keras_conv(in_channels: int, out_channels: int, kernel: int, padding: str = "same") -> nn.Conv2d:
    """A Keras-equivalent Conv2D (stride 1) with ``padding`` "same" or "valid"."""
    if padding == "same":
        return Conv2dSame(in_channels, out_channels, kernel)
    if padding == "valid":
        return nn.Conv2d(in_channels, out_channels, kernel)
    raise ConfigError(f"pidoc: padding must be 'same' or 'valid', got '{padding}'")


def keras_maxpool(x: torch.Tensor, padding: str = "valid") -> torch.Tensor:
    """Keras ``MaxPooling2D(2)``; ``padding="same"`` pads odd sizes at the bottom/right (ceil mode)."""
    return F.max_pool2d(x, 2, 2, ceil_mode=(padding == "same"))


def _bn2d(c: int, eps: float, momentum: float) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=eps, momentum=1.0 - momentum)


def _bn1d(c: int, eps: float, momentum: float) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(c, eps=eps, momentum=1.0 - momentum)


def keras_init(module: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases (applied to every Conv2d and Linear)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _check_positive(name: str, **values: object) -> None:
    for key, val in values.items():
        seq = val if isinstance(val, (list, tuple)) else [val]
        if not seq or any((not isinstance(v, int)) or v < 1 for v in seq):
            raise ConfigError(f"{name}: {key} must be positive integers, got {val!r}")


def _check_rate(name: str, **rates: float) -> None:
    for key, val in rates.items():
        if not 0.0 <= float(val) < 1.0:
            raise ConfigError(f"{name}: {key} must be in [0, 1), got {val}")


# --------------------------------------------------------------------------------------------------
# Published architectures
# --------------------------------------------------------------------------------------------------

class PidocCNN(nn.Module):
    """The published pi-DOC age/distance CNN (Chardin & Bianchini 2021, Section 3.2; authors' CNN.json).

    Parameters
    ----------
    in_channels : int
        Input channels (1: the standardised log10 V-band flux map).
    input_size : int
        Side of the square input in pixels (160).
    filters, kernels : sequence of int
        Filters and kernel sizes of the convolution blocks (16, 32, 64, 128) and (10, 10, 5, 5).
    padding : {"valid", "same"}
        Convolution padding (published: "valid").
    dense : sequence of int
        Hidden dense layers (64, 32, 16), each followed by ReLU, BatchNorm and ReLU as in the JSON.
    n_outputs : int
        Outputs of the last linear layer (published: 2 = distance, age).
    uncertainty : bool
        If True the outputs are ``n_outputs / 2`` means followed by as many log-variances.
    spatial_dropout, dropout : float
        SpatialDropout2D rate after every convolution block's BatchNorm, Dropout rate after Flatten.
    bn_eps, bn_momentum : float
        Keras BatchNormalization epsilon and momentum (1e-3, 0.99).
    """

    def __init__(self, in_channels: int = 1, input_size: int = PIDOC_SIZE,
                 filters: Sequence[int] = (16, 32, 64, 128), kernels: Sequence[int] = (10, 10, 5, 5),
                 padding: str = "valid", dense: Sequence[int] = (64, 32, 16), n_outputs: int = 2,
                 uncertainty: bool = False, spatial_dropout: float = PIDOC_SPATIAL_DROPOUT,
                 dropout: float = 0.1, bn_eps: float = 1e-3, bn_momentum: float = 0.99) -> None:
        super().__init__()
        filters, kernels, dense = list(filters), list(kernels), list(dense)
        _check_positive("pidoc-cnn", in_channels=in_channels, input_size=input_size, filters=filters,
                        kernels=kernels, n_outputs=n_outputs)
        if dense:
            _check_positive("pidoc-cnn", dense=dense)
        _check_rate("pidoc-cnn", spatial_dropout=spatial_dropout, dropout=dropout)
        if len(filters) != len(kernels):
            raise ConfigError(f"pidoc-cnn: filters ({len(filters)}) and kernels ({len(kernels)}) differ in length")
        if uncertainty and n_outputs % 2:
            raise ConfigError(f"pidoc-cnn: with uncertainty=True n_outputs must be even, got {n_outputs}")
        self.uncertainty = bool(uncertainty)
        self.n_targets = n_outputs // 2 if uncertainty else n_outputs
        self.padding = padding
        self.input_size = int(input_size)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        c, size = in_channels, int(input_size)
        for f, k in zip(filters, kernels, strict=False):
            self.convs.append(keras_conv(c, f, k, padding))
            self.bns.append(_bn2d(f, bn_eps, bn_momentum))
            size = size if padding == "same" else size - k + 1
            if size < 2:
                raise ConfigError(f"pidoc-cnn: a {input_size}x{input_size} input is too small for kernels {kernels}")
            size //= 2
            c = f
        #: (C, H, W) of the feature map that Flatten reads (Keras flattens it in H, W, C order)
        self.flat_shape = (c, size, size)
        self.sdrop = nn.Dropout2d(spatial_dropout)
        self.drop = nn.Dropout(dropout)
        self.denses = nn.ModuleList()
        self.dense_bns = nn.ModuleList()
        n = c * size * size
        for u in dense:
            self.denses.append(nn.Linear(n, u))
            self.dense_bns.append(_bn1d(u, bn_eps, bn_momentum))
            n = u
        self.out = nn.Linear(n, n_outputs)
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ConfigError(f"pidoc-cnn: input of {x.shape[-2]}x{x.shape[-1]} px; this network was built for "
                              f"{self.input_size}x{self.input_size} (its dense layers fix the size)")
        for conv, bn in zip(self.convs, self.bns, strict=False):
            x = F.max_pool2d(F.relu(self.sdrop(bn(F.relu(conv(x))))), 2)
        x = self.drop(torch.flatten(x, 1))
        for lin, bn in zip(self.denses, self.dense_bns, strict=False):
            x = F.relu(bn(F.relu(lin(x))))
        return self.out(x)

    def keras_graph(self) -> list[tuple[str, list[int]]]:
        """The Keras layer graph this module computes: (class name, inbound indices), index 0 = input."""
        g: list[tuple[str, list[int]]] = [("InputLayer", [])]

        def add(cls: str, src: int) -> int:
            g.append((cls, [src]))
            return len(g) - 1

        i = 0
        for _ in self.convs:
            for cls in ("Conv2D", "BatchNormalization", "SpatialDropout2D", "Activation", "MaxPooling2D"):
                i = add(cls, i)
        i = add("Flatten", i)
        i = add("Dropout", i)
        for _ in self.denses:
            for cls in ("Dense", "BatchNormalization", "Activation"):
                i = add(cls, i)
        add("Dense", i)
        return g

    def keras_weight_modules(self) -> list[nn.Module]:
        """Modules with weights in the order of the Keras layers that carry them."""
        mods: list[nn.Module] = []
        for conv, bn in zip(self.convs, self.bns, strict=False):
            mods += [conv, bn]
        for lin, bn in zip(self.denses, self.dense_bns, strict=False):
            mods += [lin, bn]
        return mods + [self.out]


class _ConvBN(nn.Module):
    """Keras ``Conv2D(activation="relu") -> BatchNormalization -> SpatialDropout2D`` (pi-DOC's block)."""

    def __init__(self, cin: int, cout: int, kernel: int, sdrop: float, eps: float, momentum: float) -> None:
        super().__init__()
        self.conv = keras_conv(cin, cout, kernel, "same")
        self.bn = _bn2d(cout, eps, momentum)
        self.sdrop = nn.Dropout2d(sdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sdrop(self.bn(F.relu(self.conv(x))))


class PidocCED(nn.Module):
    """The published pi-DOC mass-map convolutional encoder-decoder (Chardin & Bianchini 2021, Section 3.1).

    Parameters
    ----------
    in_channels : int
        Input channels (1: the standardised log10 V-band flux map).
    encoder_filters : sequence of int
        Filters of the encoder levels (32, 64, 128, 128); each level has two 3x3 convolutions.
    bottleneck_filters : int
        Filters of the bottleneck convolution (128).
    decoder_filters : sequence of int
        Filters of the decoder levels from the deepest up, ``len(encoder_filters) - 1`` values (128, 64, 32).
    out_channels : int
        Output channels (1: standardised log10 mass per pixel; 2 with ``uncertainty``).
    uncertainty : bool
        If True, channel 1 of the output is a log-variance.
    kernel : int
        Convolution kernel size (3).
    spatial_dropout : float
        SpatialDropout2D rate after every BatchNorm (10^-2.5).
    bn_eps, bn_momentum : float
        Keras BatchNormalization epsilon and momentum (1e-3, 0.99).
    pool_padding : {"same", "valid"}
        Keras MaxPooling2D padding (published: "same").

    The input side must be divisible by ``2 ** len(encoder_filters)`` (160 = 10 x 16).
    """

    def __init__(self, in_channels: int = 1, encoder_filters: Sequence[int] = (32, 64, 128, 128),
                 bottleneck_filters: int = 128, decoder_filters: Sequence[int] = (128, 64, 32),
                 out_channels: int = 1, uncertainty: bool = False, kernel: int = 3,
                 spatial_dropout: float = PIDOC_SPATIAL_DROPOUT, bn_eps: float = 1e-3,
                 bn_momentum: float = 0.99, pool_padding: str = "same") -> None:
        super().__init__()
        enc, dec = list(encoder_filters), list(decoder_filters)
        _check_positive("pidoc-ced", in_channels=in_channels, encoder_filters=enc,
                        bottleneck_filters=bottleneck_filters, out_channels=out_channels, kernel=kernel)
        _check_rate("pidoc-ced", spatial_dropout=spatial_dropout)
        if len(dec) != len(enc) - 1 or (dec and any(not isinstance(v, int) or v < 1 for v in dec)):
            raise ConfigError(f"pidoc-ced: decoder_filters needs {len(enc) - 1} positive integers "
                              f"(one per encoder level but the first), got {dec!r}")
        if uncertainty and out_channels != 2:
            raise ConfigError(f"pidoc-ced: uncertainty=True needs out_channels=2, got {out_channels}")
        if pool_padding not in ("same", "valid"):
            raise ConfigError(f"pidoc-ced: pool_padding must be 'same' or 'valid', got '{pool_padding}'")
        self.uncertainty = bool(uncertainty)
        self.n_targets = 1
        self.pool_padding = pool_padding
        self.levels = len(enc)
        args = (kernel, spatial_dropout, bn_eps, bn_momentum)
        self.enc_a = nn.ModuleList()
        self.enc_b = nn.ModuleList()
        c = in_channels
        in_ch = []  # channels entering each encoder level
        for f in enc:
            in_ch.append(c)
            self.enc_a.append(_ConvBN(c, f, *args))
            self.enc_b.append(_ConvBN(f, f, *args))
            c = 2 * f
        self.bottleneck = _ConvBN(c, bottleneck_filters, *args)
        c = bottleneck_filters
        self.dec_a = nn.ModuleList()
        self.dec_b = nn.ModuleList()
        # decoder level for encoder level k = L-1 ... 1 (0-based), deepest first
        for j, f in enumerate(dec):
            k = self.levels - 1 - j
            self.dec_a.append(_ConvBN(c + enc[k], f, *args))
            self.dec_b.append(_ConvBN(f + in_ch[k], f, *args))
            c = f
        self.out = keras_conv(c + enc[0], out_channels, kernel, "same")
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = 2 ** self.levels
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ConfigError(f"pidoc-ced: input of {x.shape[-2]}x{x.shape[-1]} px; both sides must be "
                              f"divisible by {m}")
        skips_a, inputs = [], []
        for conv_a, conv_b in zip(self.enc_a, self.enc_b, strict=False):
            inputs.append(x)
            a = conv_a(x)
            b = conv_b(a)
            skips_a.append(a)
            x = keras_maxpool(torch.cat([b, a], 1), self.pool_padding)
        z = self.bottleneck(x)
        for j, (conv_a, conv_b) in enumerate(zip(self.dec_a, self.dec_b, strict=False)):
            k = self.levels - 1 - j
            c = conv_a(torch.cat([F.interpolate(z, scale_factor=2, mode="nearest"), skips_a[k]], 1))
            z = conv_b(torch.cat([c, inputs[k]], 1))
        return self.out(torch.cat([F.interpolate(z, scale_factor=2, mode="nearest"), skips_a[0]], 1))

    def keras_graph(self) -> list[tuple[str, list[int]]]:
        """The Keras layer graph this module computes: (class name, inbound indices), index 0 = input."""
        g: list[tuple[str, list[int]]] = [("InputLayer", [])]

        def add(cls: str, *src: int) -> int:
            g.append((cls, list(src)))
            return len(g) - 1

        def block(src: int) -> int:
            return add("SpatialDropout2D", add("BatchNormalization", add("Conv2D", src)))

        x, skips_a, inputs = 0, [], []
        for _ in range(self.levels):
            inputs.append(x)
            a = block(x)
            b = block(a)
            skips_a.append(a)
            x = add("MaxPooling2D", add("Concatenate", b, a))
        z = block(x)
        for j in range(self.levels - 1):
            k = self.levels - 1 - j
            c = block(add("Concatenate", add("UpSampling2D", z), skips_a[k]))
            z = block(add("Concatenate", c, inputs[k]))
        add("Conv2D", add("Concatenate", add("UpSampling2D", z), skips_a[0]))
        return g

    def keras_weight_modules(self) -> list[nn.Module]:
        """Modules with weights in the order of the Keras layers that carry them (creation order)."""
        mods: list[nn.Module] = []
        for blk in [*[b for pair in zip(self.enc_a, self.enc_b, strict=False) for b in pair], self.bottleneck,
                    *[b for pair in zip(self.dec_a, self.dec_b, strict=False) for b in pair]]:
            mods += [blk.conv, blk.bn]
        return mods + [self.out]


# --------------------------------------------------------------------------------------------------
# gcml variants
# --------------------------------------------------------------------------------------------------

class _ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _LiteEncoder(nn.Module):
    """Patchify stem, then per level: 2x max pooling (from the second level) and conv-BN-ReLU (x ``convs``).

    The stem is a ``p x p`` convolution with stride ``p`` (``p = input_pool``) followed by BN and ReLU: it
    sees every input pixel once and can learn any linear map of each ``p x p`` patch, so unlike average
    pooling it loses nothing a linear filter could keep.
    """

    def __init__(self, in_channels: int, filters: Sequence[int], input_pool: int, convs: int = 1) -> None:
        super().__init__()
        self.input_pool = int(input_pool)
        p = self.input_pool
        self.stem = nn.Sequential(nn.Conv2d(in_channels, filters[0], p, stride=p, bias=False),
                                  nn.BatchNorm2d(filters[0]), nn.ReLU(inplace=True))
        self.levels = nn.ModuleList()
        c = filters[0]
        for i, f in enumerate(filters):
            n = convs - 1 if i == 0 else convs
            layers = [_ConvBNReLU(c if j == 0 else f, f) for j in range(n)]
            self.levels.append(nn.Sequential(*layers))
            c = f
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.stem(x)
        skips = []
        for i, level in enumerate(self.levels):
            if i:
                x = F.max_pool2d(x, 2)
            x = level(x)
            skips.append(x)
        return x, skips


class _LiteDecoder(nn.Module):
    """U-Net decoder: nearest 2x upsampling, concatenation with the encoder level, conv-BN-ReLU."""

    def __init__(self, filters: Sequence[int], out_channels: int) -> None:
        super().__init__()
        f = list(filters)
        self.ups = nn.ModuleList(_ConvBNReLU(f[i] + f[i - 1], f[i - 1]) for i in range(len(f) - 1, 0, -1))
        self.head = nn.Conv2d(f[0], out_channels, 1)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        for j, conv in enumerate(self.ups):
            skip = skips[-2 - j]
            x = conv(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], 1))
        x = self.head(x)
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x


def _check_lite(name: str, filters: Sequence[int], input_pool: int) -> list[int]:
    f = list(filters)
    _check_positive(name, filters=f, input_pool=input_pool)
    if len(f) < 2:
        raise ConfigError(f"{name}: filters needs at least 2 levels, got {f!r}")
    return f


class PidocCEDLite(nn.Module):
    """gcml's fast mass-map network: a small U-Net on an 80 x 80 grid, upsampled back to full size.

    Parameters
    ----------
    in_channels : int
        Input channels (1: standardised log10 flux).
    filters : sequence of int
        Channels of the encoder levels (12, 24, 48, 96); the decoder mirrors them.
    input_pool : int
        Stride of the patchify stem (2): the network works on an 80 x 80 grid and its output is upsampled
        bilinearly. The mass maps pi-DOC learns are smoothed with a sigma = 4 px Gaussian, so a 2x coarser
        grid loses little (for Plummer-cluster maps smoothed like pi-DOC's, 2x average pooling followed by
        bilinear upsampling changes log-mass pixels by 0.7 % on average and the total mass by 0.25 %).
    convs : int
        Convolutions per encoder level (1).
    out_channels : int
        1 (mean) or 2 (mean, log-variance) with ``uncertainty``.
    uncertainty : bool
        Predict a per-pixel log-variance as channel 1.
    """

    def __init__(self, in_channels: int = 1, filters: Sequence[int] = (12, 24, 48, 96), input_pool: int = 2,
                 convs: int = 1, out_channels: int = 1, uncertainty: bool = False) -> None:
        super().__init__()
        f = _check_lite("pidoc-ced-lite", filters, input_pool)
        _check_positive("pidoc-ced-lite", in_channels=in_channels, out_channels=out_channels, convs=convs)
        if uncertainty and out_channels != 2:
            raise ConfigError(f"pidoc-ced-lite: uncertainty=True needs out_channels=2, got {out_channels}")
        self.uncertainty = bool(uncertainty)
        self.n_targets = 1
        self.encoder = _LiteEncoder(in_channels, f, input_pool, convs)
        self.decoder = _LiteDecoder(f, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, skips = self.encoder(x)
        return self.decoder(z, skips, tuple(x.shape[-2:]))


class _ScalarHead(nn.Module):
    """Global average and max pooling, one hidden layer, linear outputs."""

    def __init__(self, channels: int, hidden: int, n_outputs: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(hidden, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([x.mean((-2, -1)), x.amax((-2, -1))], 1))


class PidocCNNLite(nn.Module):
    """gcml's fast age/distance network: a 4x4 stride-4 stem, 3x3 conv-BN-ReLU blocks, pooled head.

    Parameters
    ----------
    in_channels : int
        Input channels (1).
    filters : sequence of int
        Channels per level (16, 32, 64, 128) on the 40 x 40 grid after the stem, then 20, 10 and 5.
    input_pool : int
        Stride of the patchify stem (4). Distance and age are global properties of the image.
    hidden : int
        Hidden units of the head (64).
    n_outputs : int
        Outputs (2 = distance, age; 4 with ``uncertainty``: means then log-variances).
    uncertainty : bool
        Log-variance outputs.
    dropout : float
        Dropout before the last layer (0.1).
    """

    def __init__(self, in_channels: int = 1, filters: Sequence[int] = (16, 32, 64, 128), input_pool: int = 4,
                 hidden: int = 64, n_outputs: int = 2, uncertainty: bool = False, dropout: float = 0.1) -> None:
        super().__init__()
        f = _check_lite("pidoc-cnn-lite", filters, input_pool)
        _check_positive("pidoc-cnn-lite", in_channels=in_channels, hidden=hidden, n_outputs=n_outputs)
        _check_rate("pidoc-cnn-lite", dropout=dropout)
        if uncertainty and n_outputs % 2:
            raise ConfigError(f"pidoc-cnn-lite: with uncertainty=True n_outputs must be even, got {n_outputs}")
        self.uncertainty = bool(uncertainty)
        self.n_targets = n_outputs // 2 if uncertainty else n_outputs
        self.encoder = _LiteEncoder(in_channels, f, input_pool)
        self.head = _ScalarHead(f[-1], hidden, n_outputs, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.encoder(x)
        return self.head(z)


class PidocNet(nn.Module):
    """gcml's joint network: mass map, distance and age with uncertainties from one shared encoder.

    Parameters
    ----------
    in_channels : int
        Input channels (1).
    filters : sequence of int
        Encoder channels per level (12, 24, 48, 96) after the stride-2 stem; the map decoder mirrors them.
    input_pool : int
        Stride of the patchify stem (2).
    n_targets : int
        Scalar targets (2: distance, age).
    hidden : int
        Hidden units of the scalar head (64).
    uncertainty : bool
        Log-variance outputs for the map (channel 1) and the scalars (last ``n_targets`` columns).
    dropout : float
        Dropout in the scalar head.

    Returns (``forward``) a dict: ``"map"`` (N, 1 or 2, H, W) and ``"scalar"`` (N, n_targets or 2 n_targets).
    """

    def __init__(self, in_channels: int = 1, filters: Sequence[int] = (12, 24, 48, 96), input_pool: int = 2,
                 n_targets: int = 2, hidden: int = 64, uncertainty: bool = True, dropout: float = 0.1) -> None:
        super().__init__()
        f = _check_lite("pidoc-net", filters, input_pool)
        _check_positive("pidoc-net", in_channels=in_channels, n_targets=n_targets, hidden=hidden)
        _check_rate("pidoc-net", dropout=dropout)
        self.uncertainty = bool(uncertainty)
        self.n_targets = int(n_targets)
        k = 2 if uncertainty else 1
        self.encoder = _LiteEncoder(in_channels, f, input_pool)
        self.decoder = _LiteDecoder(f, k)
        self.head = _ScalarHead(f[-1], hidden, k * n_targets, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z, skips = self.encoder(x)
        return {"map": self.decoder(z, skips, tuple(x.shape[-2:])), "scalar": self.head(z)}


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution into it (evaluation mode only, in place).

    ``y = gamma (W x + b - mu) / sqrt(var + eps) + beta`` is itself a convolution, so the fused network
    computes the same function with one pass over each feature map fewer. The published pi-DOC networks
    put a ReLU between convolution and BatchNorm, so only gcml's variants are affected. Returns ``model``.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Sequential) and len(m) >= 2 and isinstance(m[0], nn.Conv2d) \
                and isinstance(m[1], nn.BatchNorm2d):
            m[0] = fuse_conv_bn_eval(m[0], m[1])
            m[1] = nn.Identity()
    return model


def count_keras_parameters(model: nn.Module) -> int:
    """Parameters as Keras counts them: trainable weights plus BatchNorm moving mean and variance."""
    n = sum(p.numel() for p in model.parameters())
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            n += m.running_mean.numel() + m.running_var.numel()
    return n


def flops_per_image(model: nn.Module, input_size: int = PIDOC_SIZE) -> int:
    """Multiply-accumulates of the convolutions and linear layers for one (1, size, size) image."""
    total = 0

    def conv_hook(mod: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        k = math.prod(mod.kernel_size) * mod.in_channels // mod.groups
        total += int(out[0].numel()) * k

    def lin_hook(mod: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += int(out[0].numel()) * mod.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------

def _builder(cls: type[nn.Module]):
    def build(**kwargs) -> nn.Module:
        return cls(**kwargs)

    build.__doc__ = f"Build :class:`{cls.__name__}`."
    return build


def _map_builder(cls: type[nn.Module]):
    """Builder of a map network; ``n_outputs`` (what the training loop passes) sets the output channels,
    and 2 output channels mean (mean, log-variance) unless ``uncertainty`` is given."""

    def build(n_outputs: int | None = None, **kwargs) -> nn.Module:
        if n_outputs is not None:
            kwargs["out_channels"] = int(n_outputs)
            kwargs.setdefault("uncertainty", int(n_outputs) == 2)
        return cls(**kwargs)

    build.__doc__ = f"Build :class:`{cls.__name__}` (``n_outputs`` = output channels)."
    return build


_CHANNELS = ("flux",)  # the photometry MapSet channel written by gcml mock-observe
_SCALARS = ("distance", "age")  # pi-DOC's output order (authors' functions.py: column 0 distance, 1 age)

#: the architectures of this module (read by gcml.models.registry, which lists this module by name)
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="pidoc-cnn", builder=_builder(PidocCNN), data_kind="photometry", output="scalar",
        default_data="images.h5", paper=True,
        description="pi-DOC age/distance CNN (Chardin & Bianchini 2021), layer for layer as the Keras model",
        task="scalar-regression", default_channels=_CHANNELS, default_targets=_SCALARS,
    ),
    ModelSpec(
        name="pidoc-ced", builder=_map_builder(PidocCED), data_kind="photometry", output="map",
        default_data="images.h5", paper=True,
        description="pi-DOC mass-map encoder-decoder (Chardin & Bianchini 2021), layer for layer as the Keras model",
        task="map-regression", default_channels=_CHANNELS, default_targets=("mass",),
    ),
    ModelSpec(
        name="pidoc-cnn-lite", builder=_builder(PidocCNNLite), data_kind="photometry", output="scalar",
        default_data="images.h5", paper=False,
        description="gcml fast age/distance CNN: 4x4 stride-4 stem, 3x3 conv-BN blocks, pooled head",
        task="scalar-regression", default_channels=_CHANNELS, default_targets=_SCALARS,
    ),
    ModelSpec(
        name="pidoc-ced-lite", builder=_map_builder(PidocCEDLite), data_kind="photometry", output="map",
        default_data="images.h5", paper=False,
        description="gcml fast mass-map U-Net on an 80x80 grid, upsampled (mass maps are smoothed, sigma = 4 px)",
        task="map-regression", default_channels=_CHANNELS, default_targets=("mass",),
    ),
    ModelSpec(
        name="pidoc-net", builder=_builder(PidocNet), data_kind="photometry", output="map+scalar",
        default_data="images.h5", paper=False,
        description="gcml joint network: mass map + distance + age, each with a log-variance head",
        task="map-scalar-regression", default_channels=_CHANNELS, default_targets=("mass", *_SCALARS),
    ),
)

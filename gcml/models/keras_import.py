"""Import the published pi-DOC Keras models (architecture JSON + HDF5 weights) into gcml model bundles.

The authors of pi-DOC (Chardin & Bianchini 2021, MNRAS 504, 5656; paolobianchini87/piDOC, MIT) published
their networks as Keras 2.3.1 model JSON files (``CNN.json``, ``CED.json``) and HDF5 weights
(``CNN_100.h5``). This module reads both with ``json`` and ``h5py`` only (no TensorFlow):

* the JSON is parsed into a layer graph, checked against the graph that :mod:`gcml.models.pidoc`
  computes (layer classes and connections), and turned into the keyword arguments of
  ``pidoc-cnn`` or ``pidoc-ced`` (filters, kernels, padding, dropout rates, BatchNorm epsilon/momentum);
* the weights file's root (or ``model_weights`` group of a full-model file) lists ``layer_names``; each
  layer group lists ``weight_names`` (e.g. ``Conv-1_1/kernel:0``). Layers with weights are matched in
  order, as Keras' ``load_weights`` does, and every shape is checked;
* Conv2D kernels go from Keras' HWIO to PyTorch's OIHW, Dense kernels are transposed (and, after a
  Flatten, their rows reordered from Keras' H, W, C to PyTorch's C, H, W), BatchNorm gamma, beta, moving
  mean and variance become weight, bias, running_mean and running_var;
* the authors' training standardisation (``standardization_constants.json``) is stored in the bundle
  so that :meth:`gcml.models.trained.TrainedModel.predict` returns Msun per pixel, kpc and Gyr.

Output order of the CNN: **(distance, age)**. The authors' ``functions.py`` labels column 0 of the
de-standardised CNN output "D = ... kpc" and column 1 "A = ... Gyr", and ``pdf_distances`` reads the
distance as ``[:, 0]``; one scalar mean and standard deviation (``mean_distance_age_train``) de-standardise
both columns.

Why one module of ~650 lines: reading the Keras JSON, mapping its weights layer by layer and the
authors' standardisation form one conversion whose parts check each other (shapes, parameter counts).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import FormatError, InputError

#: Keras layer classes the importer understands.
SUPPORTED = ("InputLayer", "Conv2D", "BatchNormalization", "SpatialDropout2D", "Dropout", "Activation",
             "MaxPooling2D", "Flatten", "Dense", "Concatenate", "UpSampling2D")
WEIGHTED = ("Conv2D", "Dense", "BatchNormalization")
KINDS = {"cnn": "pidoc-cnn", "ced": "pidoc-ced"}

#: pi-DOC map geometry (Chardin & Bianchini 2021, Section 2.3).
PIDOC_GEOMETRY = {
    "kind": "photometry", "shape": [160, 160], "pixel_scale": 0.25, "pixel_unit": "arcsec",
    "extent": [-20.0, 20.0, -20.0, 20.0], "origin": "lower", "flux_unit": "Lsun/kpc2",
    "flux_band": "V", "smoothing_sigma_px": 4.0, "psf": "Moffat beta=2.5, FWHM 0.5-1.5 arcsec",
    "distance_kpc_range": [10.0, 100.0],
}


@dataclass
class KerasLayer:
    """One layer of a Keras functional-model JSON."""

    name: str
    class_name: str
    config: dict[str, Any]
    inbound: list[str]


@dataclass
class KerasArchitecture:
    """A parsed Keras model JSON.

    Attributes
    ----------
    path : the JSON file
    layers : layers in file order
    kind : "cnn" (age/distance) or "ced" (mass map)
    architecture : gcml registry name ("pidoc-cnn" or "pidoc-ced")
    arch_kwargs : keyword arguments that rebuild it in PyTorch
    shapes : output shape (H, W, C) or (units,) of every layer, by name
    keras_version, backend : from the JSON
    """

    path: Path
    layers: list[KerasLayer]
    kind: str
    architecture: str
    arch_kwargs: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    keras_version: str = ""
    backend: str = ""

    def weight_shapes(self, layer: KerasLayer) -> list[tuple[int, ...]]:
        """Shapes of the layer's Keras weights, in Keras order."""
        if layer.class_name == "Conv2D":
            cin = self.shapes[layer.inbound[0]][-1]
            kh, kw = layer.config["kernel_size"]
            f = layer.config["filters"]
            return [(kh, kw, cin, f), (f,)] if layer.config.get("use_bias", True) else [(kh, kw, cin, f)]
        if layer.class_name == "Dense":
            nin = self.shapes[layer.inbound[0]][-1]
            u = layer.config["units"]
            return [(nin, u), (u,)] if layer.config.get("use_bias", True) else [(nin, u)]
        if layer.class_name == "BatchNormalization":
            c = self.shapes[layer.inbound[0]][-1]
            return [(c,)] * 4
        return []

    @property
    def n_params(self) -> int:
        """Parameters as Keras' ``count_params`` reports them (BatchNorm moving statistics included)."""
        return int(sum(int(np.prod(s)) for lay in self.layers for s in self.weight_shapes(lay)))


@dataclass
class KerasImportResult:
    """What :func:`import_keras` made."""

    bundle: dict[str, Any]
    architecture: KerasArchitecture
    n_params: int
    path: Path | None = None
    weights_file: Path | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Architecture JSON
# --------------------------------------------------------------------------------------------------

def _inbound_names(path: Path, layer: dict) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    if not nodes:
        return []
    if len(nodes) != 1:
        raise FormatError(f"{path}: layer '{layer.get('config', {}).get('name')}' is called "
                          f"{len(nodes)} times; expected a plain functional model")
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3 style {"args": [...]} is not the published format
        raise FormatError(f"{path}: layer '{layer.get('config', {}).get('name')}' has Keras 3 inbound "
                          "nodes; expected a TF 2.x (Keras 2) model JSON")
    return [str(entry[0]) for entry in node]


def read_keras_architecture(path: str | Path, *, kind: str | None = None) -> KerasArchitecture:
    """Parse a Keras (TF 2.x) functional-model JSON of a pi-DOC network.

    Parameters
    ----------
    path : the ``model.to_json()`` file (the authors' ``CNN.json`` or ``CED.json``)
    kind : "cnn" or "ced" to insist on one network; detected from the layers when None

    Raises
    ------
    FormatError
        Not a Keras model JSON, an unsupported layer, or a graph that is not a pi-DOC network.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: architecture file not found")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{p}: not a Keras model JSON (cannot parse JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("class_name") not in ("Model", "Functional") \
            or not isinstance(doc.get("config"), dict) or not isinstance(doc["config"].get("layers"), list):
        raise FormatError(f"{p}: not a Keras model JSON (expected class_name 'Model' or 'Functional' "
                          "with config.layers, as written by model.to_json())")
    layers = []
    for i, raw in enumerate(doc["config"]["layers"]):
        if not isinstance(raw, dict) or "class_name" not in raw or "config" not in raw:
            raise FormatError(f"{p}: layer {i} has no class_name/config; expected a Keras model JSON")
        cfg = raw["config"]
        name = str(raw.get("name", cfg.get("name", f"layer_{i}")))
        if raw["class_name"] not in SUPPORTED:
            raise FormatError(f"{p}: layer '{name}' is a {raw['class_name']}, which gcml cannot import "
                              f"(supported: {', '.join(SUPPORTED)})")
        layers.append(KerasLayer(name, raw["class_name"], cfg, _inbound_names(p, raw)))
    names = {lay.name for lay in layers}
    for lay in layers:
        missing = [n for n in lay.inbound if n not in names]
        if missing:
            raise FormatError(f"{p}: layer '{lay.name}' reads layer '{missing[0]}', which the file does not define")
    if not layers or layers[0].class_name != "InputLayer":
        raise FormatError(f"{p}: the first layer must be an InputLayer")
    shapes = _infer_shapes(p, layers)
    classes = {lay.class_name for lay in layers}
    detected = "ced" if "UpSampling2D" in classes else "cnn" if "Dense" in classes else None
    if detected is None:
        raise FormatError(f"{p}: neither a pi-DOC CNN (Dense output) nor a pi-DOC encoder-decoder "
                          "(UpSampling2D); cannot tell which network this is")
    if kind is not None:
        kind = kind.lower()
        if kind not in KINDS:
            raise InputError(f"option `kind`: expected 'cnn' or 'ced', got '{kind}'")
        if kind != detected:
            raise FormatError(f"{p}: `kind` {kind} was given but the file describes a pi-DOC {detected.upper()} "
                              f"({'has UpSampling2D layers' if detected == 'ced' else 'ends in Dense layers'})")
    arch = KerasArchitecture(p, layers, detected, KINDS[detected], {}, shapes,
                             str(doc.get("keras_version", "")), str(doc.get("backend", "")))
    arch.arch_kwargs = _cnn_kwargs(arch) if detected == "cnn" else _ced_kwargs(arch)
    _check_graph(arch)
    return arch


def _same(n: int, s: int) -> int:
    return -(-n // s)


def _infer_shapes(p: Path, layers: list[KerasLayer]) -> dict[str, tuple[int, ...]]:
    """Output shape of every layer (without the batch axis), channels last as in Keras."""
    shapes: dict[str, tuple[int, ...]] = {}
    for lay in layers:
        c = lay.config
        try:
            if lay.class_name == "InputLayer":
                bis = c.get("batch_input_shape") or c.get("batch_shape")
                if not bis or len(bis) != 4 or any(v is None for v in bis[1:]):
                    raise FormatError(f"{p}: input layer '{lay.name}' must have a fixed shape (None, H, W, C), "
                                      f"got {bis}")
                shapes[lay.name] = tuple(int(v) for v in bis[1:])
                continue
            ins = [shapes[n] for n in lay.inbound]
            if not ins:
                raise FormatError(f"{p}: layer '{lay.name}' has no input")
            x = ins[0]
            if lay.class_name in ("Conv2D", "MaxPooling2D", "UpSampling2D", "Concatenate", "Flatten") \
                    and c.get("data_format", "channels_last") != "channels_last":
                raise FormatError(f"{p}: layer '{lay.name}' uses data_format {c.get('data_format')}; "
                                  "expected channels_last")
            if lay.class_name == "Conv2D":
                k, s, d = c["kernel_size"], c.get("strides", [1, 1]), c.get("dilation_rate", [1, 1])
                if list(s) != [1, 1] or list(d) != [1, 1] or c.get("groups", 1) != 1:
                    raise FormatError(f"{p}: layer '{lay.name}': only stride 1, dilation 1, groups 1 convolutions "
                                      "are supported")
                if c["padding"] == "same":
                    shapes[lay.name] = (x[0], x[1], int(c["filters"]))
                else:
                    shapes[lay.name] = (x[0] - k[0] + 1, x[1] - k[1] + 1, int(c["filters"]))
            elif lay.class_name == "MaxPooling2D":
                if list(c["pool_size"]) != [2, 2] or list(c.get("strides") or [2, 2]) != [2, 2]:
                    raise FormatError(f"{p}: layer '{lay.name}': only 2x2 pooling with stride 2 is supported")
                f = _same if c["padding"] == "same" else (lambda n, s: n // s)
                shapes[lay.name] = (f(x[0], 2), f(x[1], 2), x[2])
            elif lay.class_name == "UpSampling2D":
                if list(c.get("size", [2, 2])) != [2, 2] or c.get("interpolation", "nearest") != "nearest":
                    raise FormatError(f"{p}: layer '{lay.name}': only 2x nearest upsampling is supported")
                shapes[lay.name] = (2 * x[0], 2 * x[1], x[2])
            elif lay.class_name == "Concatenate":
                if c.get("axis", -1) not in (-1, 3):
                    raise FormatError(f"{p}: layer '{lay.name}': only channel concatenation is supported")
                if any(s[:2] != x[:2] for s in ins):
                    raise FormatError(f"{p}: layer '{lay.name}' concatenates maps of different sizes "
                                      f"{[s[:2] for s in ins]}")
                shapes[lay.name] = (x[0], x[1], sum(s[2] for s in ins))
            elif lay.class_name == "Flatten":
                shapes[lay.name] = (int(np.prod(x)),)
            elif lay.class_name == "Dense":
                if len(x) != 1:
                    raise FormatError(f"{p}: layer '{lay.name}': Dense on a {len(x)}-d input is not supported")
                shapes[lay.name] = (int(c["units"]),)
            else:  # BatchNormalization, dropouts, Activation keep the shape
                if lay.class_name == "BatchNormalization" and c.get("axis", -1) not in (-1, len(x), [-1], [len(x)]):
                    raise FormatError(f"{p}: layer '{lay.name}': BatchNormalization must act on the last axis")
                shapes[lay.name] = x
        except (KeyError, TypeError, IndexError) as exc:
            raise FormatError(f"{p}: layer '{lay.name}' ({lay.class_name}) has an unreadable config "
                              f"(field {exc})") from None
        if any(v < 1 for v in shapes[lay.name]):
            raise FormatError(f"{p}: layer '{lay.name}' would have an empty output {shapes[lay.name]}")
    return shapes


def _by_class(arch: KerasArchitecture, cls: str) -> list[KerasLayer]:
    return [lay for lay in arch.layers if lay.class_name == cls]


def _one(p: Path, values: list, what: str) -> Any:
    vals = {json.dumps(v, sort_keys=True) for v in values}
    if len(vals) > 1:
        raise FormatError(f"{p}: layers differ in {what} ({', '.join(sorted(vals))}); gcml's pi-DOC "
                          "networks use one value")
    return values[0] if values else None


def _common_kwargs(arch: KerasArchitecture) -> dict[str, Any]:
    p = arch.path
    bns = _by_class(arch, "BatchNormalization")
    sds = _by_class(arch, "SpatialDropout2D")
    for bn in bns:
        if not (bn.config.get("center", True) and bn.config.get("scale", True)):
            raise FormatError(f"{p}: layer '{bn.name}': BatchNormalization without center/scale is not supported")
    kw: dict[str, Any] = {"in_channels": int(arch.shapes[arch.layers[0].name][2])}
    if bns:
        kw["bn_eps"] = float(_one(p, [b.config["epsilon"] for b in bns], "BatchNormalization epsilon"))
        kw["bn_momentum"] = float(_one(p, [b.config["momentum"] for b in bns], "BatchNormalization momentum"))
    if sds:
        kw["spatial_dropout"] = float(_one(p, [s.config["rate"] for s in sds], "SpatialDropout2D rate"))
    return kw


def _cnn_kwargs(arch: KerasArchitecture) -> dict[str, Any]:
    p = arch.path
    convs = _by_class(arch, "Conv2D")
    dense = _by_class(arch, "Dense")
    h, w, _ = arch.shapes[arch.layers[0].name]
    if h != w:
        raise FormatError(f"{p}: input {h}x{w}; the pi-DOC CNN takes square images")
    kernels = []
    for c in convs:
        k = c.config["kernel_size"]
        if k[0] != k[1]:
            raise FormatError(f"{p}: layer '{c.name}' has a non-square kernel {k}")
        kernels.append(int(k[0]))
    kw = _common_kwargs(arch)
    drops = _by_class(arch, "Dropout")
    kw.update(
        input_size=int(h), filters=[int(c.config["filters"]) for c in convs], kernels=kernels,
        padding=str(_one(p, [c.config["padding"] for c in convs], "Conv2D padding")),
        dense=[int(d.config["units"]) for d in dense[:-1]], n_outputs=int(dense[-1].config["units"]),
    )
    if drops:
        kw["dropout"] = float(drops[0].config["rate"])
    return kw


def _ced_kwargs(arch: KerasArchitecture) -> dict[str, Any]:
    p = arch.path
    convs = _by_class(arch, "Conv2D")
    pools = _by_class(arch, "MaxPooling2D")
    levels = len(pools)
    if len(convs) != 4 * levels:
        raise FormatError(f"{p}: {len(convs)} Conv2D layers for {levels} pooling levels; a pi-DOC encoder-decoder "
                          f"has {4 * levels} (2 per encoder level, 1 bottleneck, 2 per decoder level, 1 output)")
    kernel = _one(p, [c.config["kernel_size"] for c in convs], "Conv2D kernel_size")
    if kernel[0] != kernel[1]:
        raise FormatError(f"{p}: non-square kernel {kernel}")
    if _one(p, [c.config["padding"] for c in convs], "Conv2D padding") != "same":
        raise FormatError(f"{p}: the pi-DOC encoder-decoder uses padding 'same' in every Conv2D")
    f = [int(c.config["filters"]) for c in convs]
    kw = _common_kwargs(arch)
    kw.update(
        encoder_filters=f[0:2 * levels:2], bottleneck_filters=f[2 * levels],
        decoder_filters=f[2 * levels + 1:-1:2], out_channels=f[-1], kernel=int(kernel[0]),
        pool_padding=str(_one(p, [q.config["padding"] for q in pools], "MaxPooling2D padding")),
    )
    return kw


def _check_graph(arch: KerasArchitecture) -> None:
    """Check layer classes, activations and connections against the PyTorch module's graph."""
    from gcml.models.registry import build_model

    p = arch.path
    try:
        model = build_model(arch.architecture, **arch.arch_kwargs)
    except InputError as exc:
        raise FormatError(f"{p}: cannot build {arch.architecture} from this file ({exc})") from None
    expected = model.keras_graph()
    index = {lay.name: i for i, lay in enumerate(arch.layers)}
    got = [(lay.class_name, [index[n] for n in lay.inbound]) for lay in arch.layers]
    for i, (exp, have) in enumerate(zip(expected, got, strict=False)):
        if exp != have:
            lay = arch.layers[i]
            exp_in = [arch.layers[j].name if j < len(arch.layers) else f"#{j}" for j in exp[1]]
            raise FormatError(f"{p}: layer {i} '{lay.name}' is a {lay.class_name} reading {lay.inbound}; "
                              f"{arch.architecture} expects a {exp[0]} reading {exp_in}")
    if len(expected) != len(got):
        raise FormatError(f"{p}: {len(got)} layers; {arch.architecture} built from it has {len(expected)}")
    # activations: every hidden Conv2D/Dense is ReLU, every Activation layer is ReLU, the output linear
    weighted = [lay for lay in arch.layers if lay.class_name in ("Conv2D", "Dense")]
    for lay in arch.layers:
        act = lay.config.get("activation")
        if lay.class_name == "Activation" or (lay.class_name in ("Conv2D", "Dense") and lay is not weighted[-1]):
            want = "relu"
        elif lay is weighted[-1]:
            want = "linear"
        else:
            continue
        if act != want:
            raise FormatError(f"{p}: layer '{lay.name}' has activation '{act}'; {arch.architecture} expects '{want}'")


# --------------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------------

def _dec(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def read_keras_weights(path: str | Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Read a Keras HDF5 weights file: layer name -> [(weight name, array), ...] in Keras order.

    Accepts ``model.save_weights("x.h5")`` files (attrs ``layer_names`` at the root) and full-model
    ``model.save("x.h5")`` files (the same under ``model_weights``). Layers without weights are omitted.
    """
    import h5py

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: weights file not found")
    try:
        fh = h5py.File(p, "r")
    except OSError:
        raise FormatError(f"{p}: not an HDF5 file; expected Keras HDF5 weights (model.save_weights)") from None
    with fh:
        g = fh["model_weights"] if "model_weights" in fh else fh
        if "layer_names" not in g.attrs:
            raise FormatError(f"{p}: no 'layer_names' attribute; expected Keras HDF5 weights (model.save_weights)")
        out: dict[str, list[tuple[str, np.ndarray]]] = {}
        for lname in (_dec(n) for n in g.attrs["layer_names"]):
            if lname not in g:
                raise FormatError(f"{p}: layer '{lname}' is listed in layer_names but has no group")
            wnames = [_dec(n) for n in g[lname].attrs.get("weight_names", [])]
            arrays = []
            for wn in wnames:
                if wn not in g[lname]:
                    raise FormatError(f"{p}: layer '{lname}' lists weight '{wn}' but the file lacks it")
                arrays.append((wn, np.asarray(g[lname][wn][()], dtype=np.float32)))
            if arrays:
                out[lname] = arrays
        return out


def _short(wname: str) -> str:
    return wname.rsplit("/", 1)[-1].split(":")[0]


def keras_state_dict(arch: KerasArchitecture, weights: dict[str, list[tuple[str, np.ndarray]]],
                     weights_path: str | Path = "weights") -> dict[str, Any]:
    """Convert Keras weights for ``arch`` into a PyTorch state_dict of the gcml model.

    Layers with weights are matched in order (as Keras' ``load_weights``); names must agree up to the
    suffix Keras adds on reloading (``Out`` vs ``Out_2``), shapes must agree exactly.
    """
    import torch

    from gcml.models.registry import build_model

    wp = Path(weights_path)
    model = build_model(arch.architecture, **arch.arch_kwargs)
    layers = [lay for lay in arch.layers if lay.class_name in WEIGHTED]
    file_layers = list(weights)
    if len(file_layers) != len(layers):
        need = [lay.name for lay in layers if lay.name not in weights]
        extra = [n for n in file_layers if n not in {lay.name for lay in layers}]
        detail = (f"missing layer(s) {', '.join(need[:4])}" if need else
                  f"unexpected layer(s) {', '.join(extra[:4])}" if extra else "")
        raise FormatError(f"{wp}: {len(file_layers)} layers with weights but {arch.path} has {len(layers)}"
                          f"{'; ' + detail if detail else ''}")
    modules = model.keras_weight_modules()
    sd: dict[str, Any] = {}
    names = {id(m): n for n, m in model.named_modules()}
    prev_flatten = _dense_after_flatten(arch)
    for lay, fname, mod in zip(layers, file_layers, modules, strict=False):
        if fname != lay.name:
            raise FormatError(f"{wp}: weights for layer '{fname}' come where {arch.path} has layer '{lay.name}'; "
                              "the weights do not belong to this architecture")
        arrays = weights[fname]
        shapes = arch.weight_shapes(lay)
        if len(arrays) != len(shapes):
            raise FormatError(f"{wp}: layer '{fname}' has {len(arrays)} weights, {lay.class_name} needs {len(shapes)}")
        for (wn, a), s in zip(arrays, shapes, strict=False):
            if tuple(a.shape) != tuple(s):
                raise FormatError(f"{wp}: layer '{fname}' weight '{wn}' has shape {tuple(a.shape)}, the architecture "
                                  f"expects {tuple(s)}")
        prefix = names[id(mod)]
        t = {_short(wn): a for wn, a in arrays}
        if lay.class_name == "Conv2D":
            sd[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(t["kernel"].transpose(3, 2, 0, 1)))
            if "bias" in t:
                sd[f"{prefix}.bias"] = torch.from_numpy(t["bias"])
        elif lay.class_name == "Dense":
            k = t["kernel"]
            if lay.name in prev_flatten:  # rows in Keras' (H, W, C) flatten order -> PyTorch's (C, H, W)
                h, w, c = prev_flatten[lay.name]
                k = k.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
            sd[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(k.T))
            if "bias" in t:
                sd[f"{prefix}.bias"] = torch.from_numpy(t["bias"])
        else:
            missing = [k for k in ("gamma", "beta", "moving_mean", "moving_variance") if k not in t]
            if missing:
                raise FormatError(f"{wp}: BatchNormalization layer '{fname}' lacks {', '.join(missing)}")
            sd[f"{prefix}.weight"] = torch.from_numpy(t["gamma"])
            sd[f"{prefix}.bias"] = torch.from_numpy(t["beta"])
            sd[f"{prefix}.running_mean"] = torch.from_numpy(t["moving_mean"])
            sd[f"{prefix}.running_var"] = torch.from_numpy(t["moving_variance"])
            sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    result = model.load_state_dict(sd, strict=True)
    if result.missing_keys or result.unexpected_keys:  # pragma: no cover - strict=True raises first
        raise FormatError(f"{wp}: weights do not cover {result.missing_keys}")
    return model.state_dict()


def _dense_after_flatten(arch: KerasArchitecture) -> dict[str, tuple[int, int, int]]:
    """Dense layers fed (directly or through Dropout) by a Flatten of an (H, W, C) map."""
    by_name = {lay.name: lay for lay in arch.layers}
    out = {}
    for lay in arch.layers:
        if lay.class_name != "Dense":
            continue
        src = by_name[lay.inbound[0]]
        while src.class_name in ("Dropout", "Activation"):
            src = by_name[src.inbound[0]]
        if src.class_name == "Flatten":
            shape = arch.shapes[src.inbound[0]]
            if len(shape) == 3:
                out[lay.name] = shape
    return out


# --------------------------------------------------------------------------------------------------
# Standardisation and bundle
# --------------------------------------------------------------------------------------------------

STANDARDIZATION_KEYS = ("meanluminosityVtrain", "stdluminosityVtrain", "meanmasstrain", "stdmasstrain",
                        "mean_distance_age_train", "std_distance_age_train")


def load_standardization(path: str | Path | None = None) -> dict[str, float]:
    """The pi-DOC training standardisation constants (the authors' six ``.npy`` scalars, as JSON).

    With ``path=None`` the copy shipped in ``gcml/data/pidoc/standardization_constants.json`` is used.
    """
    if path is None:
        text = (Path(__file__).resolve().parents[1] / "data" / "pidoc" / "standardization_constants.json").read_text(
            encoding="utf-8")
        src = "gcml/data/pidoc/standardization_constants.json"
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: standardisation file not found")
        text, src = p.read_text(encoding="utf-8"), str(p)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{src}: not a JSON file of standardisation constants ({exc})") from None
    if not isinstance(doc, dict):
        raise FormatError(f"{src}: expected a JSON object with {', '.join(STANDARDIZATION_KEYS)}")
    missing = [k for k in STANDARDIZATION_KEYS if k not in doc]
    if missing:
        raise FormatError(f"{src}: missing standardisation constant(s) {', '.join(missing)}")
    out = {}
    for k in STANDARDIZATION_KEYS:
        try:
            out[k] = float(doc[k])
        except (TypeError, ValueError):
            raise FormatError(f"{src}: field {k} must be a number, got {doc[k]!r}") from None
        if not np.isfinite(out[k]) or (k.startswith("std") and out[k] <= 0):
            raise FormatError(f"{src}: field {k} must be a finite{' positive' if k.startswith('std') else ''} "
                              f"number, got {out[k]}")
    return out


#: what the authors' "F" may be, in terms of gcml's flux F = L_V / (4 pi d^2) (docs/pidoc.md, docs/mock-observe.md)
FLUX_DEFINITIONS = {"4pi": ("F = L_V / (4 pi d^2)", 0.0), "d2": ("F = L_V / d^2", math.log10(4 * math.pi))}


def pidoc_norms(kind: str, consts: dict[str, float], *, flux_definition: str = "4pi"
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bundle ``inputs`` and ``targets`` entries for a pi-DOC network with the authors' standardisation.

    Input: ``x = (log10 F_a - mean) / std`` with ``F_a`` the V-band flux per 0.25" pixel in Lsun/kpc^2 as the
    authors defined it. The bundle always takes gcml's flux ``F = L_V / (4 pi d^2)``; with
    ``flux_definition="d2"`` (``F_a = L_V / d^2 = 4 pi F``) the stored mean is lowered by log10(4 pi) so that
    ``(log10 F - mean') / std = (log10 F_a - mean) / std``.
    CED output: ``log10(M / Msun per pixel) = y * std + mean``; CNN output: ``(distance kpc, age Gyr) =
    y * std + mean`` with one scalar pair for both columns.
    """
    if flux_definition not in FLUX_DEFINITIONS:
        raise InputError(f"option `flux_definition`: expected '4pi' or 'd2', got '{flux_definition}'")
    text, offset = FLUX_DEFINITIONS[flux_definition]
    mean_l, std_l = consts["meanluminosityVtrain"] - offset, consts["stdluminosityVtrain"]
    inputs = {"channels": ["flux"], "units": ["Lsun/kpc2"],
              "flux_definition": f"network trained on log10 of {text}; bundle input is gcml's F = L_V / (4 pi d^2)",
              "norm": {"transform": ["log10"], "mean": [mean_l], "std": [std_l],
                       "floor": [float(10 ** (mean_l - 8 * std_l))]}}
    if kind == "ced":
        targets = {"names": ["mass"], "units": ["Msun"], "output": "map",
                   "description": ["stellar mass per 0.25 arcsec pixel"],
                   "norm": {"transform": ["log10"], "mean": [consts["meanmasstrain"]],
                            "std": [consts["stdmasstrain"]]}}
    else:
        m, s = consts["mean_distance_age_train"], consts["std_distance_age_train"]
        targets = {"names": ["distance", "age"], "units": ["kpc", "Gyr"], "output": "scalar",
                   "norm": {"transform": ["none", "none"], "mean": [m, m], "std": [s, s]}}
    return inputs, targets


def import_keras(arch_json: str | Path, weights_h5: str | Path, output: str | Path | None = None, *,
                 kind: str | None = None, standardization: str | Path | None = None,
                 flux_definition: str = "4pi", overwrite: bool = False) -> KerasImportResult:
    """Convert a published pi-DOC Keras model (JSON + HDF5 weights) into a gcml model bundle.

    Parameters
    ----------
    arch_json : Keras model JSON (``CNN.json`` or ``CED.json``)
    weights_h5 : Keras HDF5 weights (``CNN_100.h5``)
    output : bundle path to write (``.pt``); None returns the bundle without writing
    kind : "cnn" or "ced" to insist on one network (detected when None)
    standardization : JSON with the authors' six constants; None uses the copy shipped with gcml
    flux_definition : what the authors' input flux was: "4pi" (``L/(4 pi d^2)``, gcml's F, the default) or
        "d2" (``L/d^2``); the paper does not say (docs/pidoc.md). The bundle always reads gcml's F.
    overwrite : replace an existing ``output``

    Returns
    -------
    KerasImportResult
        The bundle dict (loadable by :meth:`gcml.models.trained.TrainedModel.load`), the parsed architecture,
        the Keras parameter count and the written path.
    """
    from gcml.io.bundle import save_bundle
    from gcml.io.common import check_output_path, sha256_file

    if output is not None:
        check_output_path(output, overwrite=overwrite)
    arch = read_keras_architecture(arch_json, kind=kind)
    weights = read_keras_weights(weights_h5)
    state = keras_state_dict(arch, weights, weights_h5)
    consts = load_standardization(standardization)
    inputs, targets = pidoc_norms(arch.kind, consts, flux_definition=flux_definition)
    n_file = int(sum(a.size for arrs in weights.values() for _, a in arrs))
    geometry = dict(PIDOC_GEOMETRY)
    h, w, _ = arch.shapes[arch.layers[0].name]
    geometry["shape"] = [int(h), int(w)]
    std_src = Path(standardization) if standardization is not None else None
    bundle: dict[str, Any] = {
        "architecture": arch.architecture,
        "arch_kwargs": arch.arch_kwargs,
        "state_dict": state,
        "inputs": inputs,
        "targets": targets,
        "geometry": geometry,
        "training": {"source": "keras-import", "paper": "Chardin & Bianchini 2021, MNRAS 504, 5656",
                     "code": "paolobianchini87/piDOC (MIT)", "keras_version": arch.keras_version,
                     "backend": arch.backend},
        "provenance": {
            "architecture_json": {"path": str(arch.path), "sha256": sha256_file(arch.path)},
            "weights": {"path": str(weights_h5), "sha256": sha256_file(weights_h5)},
            "standardization": {"path": str(std_src) if std_src else "gcml/data/pidoc/standardization_constants.json",
                                "sha256": sha256_file(std_src) if std_src else None},
        },
        "metrics": {},
        "calibration": {},
        "extra": {"keras_n_params": arch.n_params,
                  "output_order": targets["names"],
                  "keras_layers": [lay.name for lay in arch.layers]},
    }
    # the authors' normalisation (pidoc_norms) as the equivalent task: the one bundle layout
    from gcml.models.bundle import ModelBundle

    bundle = ModelBundle.from_dict(bundle).to_dict()
    result = KerasImportResult(bundle=bundle, architecture=arch, n_params=n_file)
    if output is not None:
        result.path = save_bundle(output, bundle, overwrite=overwrite)
    result.weights_file = Path(weights_h5)
    return result

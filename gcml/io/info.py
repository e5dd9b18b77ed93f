"""Summaries of any gcml file, for ``gcml info``.

Each file format registers a function ``describe(path) -> dict`` under its ``format`` attribute (HDF5
files) or file suffix (model bundles); :func:`describe` dispatches on what it finds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gcml.errors import FormatError, InputError

DESCRIBERS: dict[str, Callable[[Path], dict[str, Any]]] = {}
SUFFIX_DESCRIBERS: dict[str, Callable[[Path], dict[str, Any]]] = {}


def register(fmt: str) -> Callable:
    def deco(fn: Callable[[Path], dict[str, Any]]) -> Callable[[Path], dict[str, Any]]:
        DESCRIBERS[fmt] = fn
        return fn

    return deco


def describe(path: str | Path) -> dict[str, Any]:
    """Return a JSON-friendly summary of a gcml file (kind decided by its ``format`` attribute)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a folder; give a gcml file (MapSet, snapshot or model bundle)")
    _load_plugins()
    if p.suffix in SUFFIX_DESCRIBERS:
        return SUFFIX_DESCRIBERS[p.suffix](p)
    try:
        with h5py.File(p, "r") as f:
            fmt = f.attrs.get("format")
    except OSError:
        raise FormatError(
            f"{p}: not a gcml file (not HDF5 and no known suffix among {sorted(SUFFIX_DESCRIBERS) or ['.h5']})"
        ) from None
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt not in DESCRIBERS:
        raise FormatError(f"{p}: HDF5 file without a known gcml 'format' attribute (found {fmt!r})")
    return DESCRIBERS[fmt](p)


def _load_plugins() -> None:
    # Importing a format module registers its describer.
    import importlib

    for mod in ("gcml.io.snapshots", "gcml.io.bundle"):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass


@register("gcml.mapset")
def describe_mapset(path: Path) -> dict[str, Any]:
    from gcml.io.mapset import SPLIT_NAMES, _read_meta, read_mapset_header

    with h5py.File(path, "r") as f:
        hdr = read_mapset_header(f, path)
        split = f["split"][()]
        targets = {}
        for name in hdr["targets"]:
            v = f["targets"][name][()]
            fin = v[np.isfinite(v)]
            targets[name] = {
                "unit": f["targets"][name].attrs.get("unit", ""),
                "min": float(fin.min()) if fin.size else None,
                "max": float(fin.max()) if fin.size else None,
                "description": f["targets"][name].attrs.get("description", ""),
            }
        meta = {}
        for name in hdr["meta"]:
            ds = f["meta"][name]
            v = _read_meta(ds, slice(None))
            if v.dtype.kind in "US":
                u, c = np.unique(v, return_counts=True)
                meta[name] = {"values": {str(a): int(b) for a, b in zip(u[:10], c[:10], strict=False)}}
            else:
                fin = v[np.isfinite(v)] if v.dtype.kind == "f" else v
                meta[name] = {"unit": ds.attrs.get("unit", ""),
                              "min": float(np.min(fin)) if fin.size else None,
                              "max": float(np.max(fin)) if fin.size else None}
                if fin.size < v.size:
                    meta[name]["NaN"] = int(v.size - fin.size)
        sample = f["maps"][: min(hdr["n"], 256)]
    chans = []
    for i, (c, u) in enumerate(zip(hdr["channels"], hdr["units"], strict=False)):
        x = sample[:, i] if sample.size else np.zeros(1)
        chans.append({"name": c, "unit": u, "min": float(np.nanmin(x)), "max": float(np.nanmax(x))})
    attrs = hdr["attrs"]
    return {
        "file": str(path),
        "format": f"{attrs.get('format')} {attrs.get('format_version')}",
        "kind": hdr["kind"],
        "maps": {"n": hdr["n"], "shape": list(hdr["shape"]), "pixel_scale": hdr["pixel_scale"],
                 "pixel_unit": hdr["pixel_unit"], "extent": hdr["map_attrs"].get("extent")},
        "channels": chans,
        "targets": targets,
        "truth": hdr["truth"],
        "meta": meta,
        "splits": {SPLIT_NAMES.get(int(k), str(k)): int(v) for k, v in zip(*np.unique(split, return_counts=True), strict=False)},
        "provenance": {k: attrs.get(k) for k in ("gcml_version", "created_utc", "command", "seed", "config", "options", "parents")},
    }

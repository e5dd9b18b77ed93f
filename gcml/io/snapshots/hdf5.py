"""gcml's own snapshot files: HDF5 format ``gcml.snapshot`` 1.0 (see the package docstring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gcml.errors import FormatError, InputError
from gcml.io.common import (
    atomic_output,
    attr_json,
    attr_str,
    check_format,
    open_h5,
    provenance,
    read_quantity,
    write_quantity,
)
from gcml.io.snapshots.snapshot import _DTYPES, OPTIONAL_FIELDS, UNITS, Snapshot

FORMAT = "gcml.snapshot"
FORMAT_VERSION = "1.0"


def write_snapshot(
    path: str | Path, snap: Snapshot, *, overwrite: bool = False, command: str | None = None,
    config: dict | None = None, seed: int | None = None, parents: list[str | Path] | None = None,
    dtype: str = "float32", compression: str | None = None, options: dict[str, Any] | None = None,
) -> Path:
    """Write a snapshot as a ``gcml.snapshot`` 1.0 HDF5 file (atomically; refuses to overwrite).

    Parameters
    ----------
    path
        Output file (``.h5``).
    snap
        The snapshot.
    overwrite
        Replace an existing file.
    command, config, seed, parents, options
        Provenance recorded in the root attributes (see :func:`gcml.io.common.provenance`).
    dtype
        Floating-point type on disk (``"float32"`` halves the size; ``"float64"`` round-trips exactly).
    compression
        h5py compression filter (``None``, ``"lzf"`` or ``"gzip"``).

    Returns
    -------
    Path of the written file.
    """
    p = Path(path)
    with atomic_output(p, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            for k, v in provenance(command=command, config=config, seed=seed, parents=parents,
                                                options=options).items():
                f.attrs[k] = v
            f.attrs["age"] = np.nan if snap.age is None else float(snap.age)
            f.attrs["time"] = np.nan if snap.time is None else float(snap.time)
            f.attrs["metallicity"] = np.nan if snap.metallicity is None else float(snap.metallicity)
            f.attrs["simulation"] = str(snap.simulation)
            f.attrs["units"] = json.dumps({k: UNITS[k] for k in ("age", "time", "metallicity")}
                                          | {"length": "pc", "velocity": "km/s", "mass": "Msun",
                                             "luminosity": "Lsun", "temperature": "K", "radius": "Rsun"})
            from gcml.config import to_jsonable

            f.attrs["meta"] = json.dumps(to_jsonable(snap.meta), sort_keys=True)
            f.attrs["n_particles"] = snap.n
            g = f.create_group("particles")
            kw: dict[str, Any] = {"compression": compression} if compression else {}
            for name in ("pos", "vel", "mass", *OPTIONAL_FIELDS):
                v = getattr(snap, name)
                if v is None:
                    continue
                arr = v.astype(_DTYPES.get(name, dtype))
                write_quantity(g, name, arr, UNITS[name], **kw)
    return p


def _open_h5(path: Path) -> h5py.File:
    return open_h5(path, "a gcml snapshot")


def _nan_to_none(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if not np.isfinite(v) else v


def read_gcml_snapshot(path: str | Path) -> Snapshot:
    """Read a ``gcml.snapshot`` HDF5 file (checks format, major version and units)."""
    p = Path(path)
    with _open_h5(p) as f:
        check_format(f.attrs, p, FORMAT, int(FORMAT_VERSION.split(".")[0]))
        if "particles" not in f:
            raise FormatError(f"{p}: missing group '/particles'")
        g = f["particles"]
        data: dict[str, Any] = {}
        for name in ("pos", "vel", "mass", *OPTIONAL_FIELDS):
            if name not in g and name in OPTIONAL_FIELDS:
                data[name] = None
                continue
            arr, unit = read_quantity(g, name, p)
            if unit != UNITS[name]:
                raise FormatError(f"{p}: /particles/{name} has unit '{unit}', expected '{UNITS[name]}'")
            data[name] = arr.astype(_DTYPES.get(name, float))
        attrs = {k: attr_str(f.attrs, k) for k in ("gcml_version", "created_utc", "command", "format_version")}
        attrs["seed"] = int(f.attrs.get("seed", -1))
        attrs["config"] = attr_json(f.attrs, "config", {})
        attrs["parents"] = attr_json(f.attrs, "parents", [])
        snap_kw = {
            "age": _nan_to_none(f.attrs.get("age")),
            "time": _nan_to_none(f.attrs.get("time")),
            "metallicity": _nan_to_none(f.attrs.get("metallicity")),
            "simulation": attr_str(f.attrs, "simulation"),
            "meta": attr_json(f.attrs, "meta", {}),
        }
    try:
        return Snapshot(**data, **snap_kw, attrs=attrs)
    except InputError as exc:
        raise FormatError(f"{p}: inconsistent particle arrays ({exc})") from None


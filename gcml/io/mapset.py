"""The MapSet: a self-describing HDF5 file of 2D maps with targets, truth maps, metadata and splits.

Layout (format ``gcml.mapset`` version 1.0; see docs/formats.md)::

    / attrs: format, format_version, gcml_version, created_utc, command, seed, config (JSON),
             kind ("kinematics" | "photometry"), parents (JSON list of {path, sha256})
    /maps            float32 (N, C, H, W); attrs channels, units, pixel_scale, pixel_unit, extent, origin
    /targets/<name>  float32 (N,); attrs unit, description
    /truth/<name>    float32 (N, 1, H, W); attrs unit, description
    /meta/<name>     (N,) numbers or strings; attrs unit
    /split           uint8 (N,): 0 train, 1 val, 2 test, 3 ood
    /catalogue/...   optional ragged GC catalogue of every map (gcml.io.catalogues)

Arrays are (N, C, H, W) with y (rows) before x (columns); pixel (0, 0) is the lower-left corner
(``origin = "lower"``), ``extent = (x_min, x_max, y_min, y_max)`` in ``pixel_unit``.

Why one module of ~600 lines: it is the one reader and writer of the MapSet format (DEVELOPERS.md:
"MapSets only through gcml.io.mapset"); the streaming writer, reader and merge share the layout checks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
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
)

FORMAT = "gcml.mapset"
FORMAT_VERSION = "1.0"
SPLITS = {"train": 0, "val": 1, "test": 2, "ood": 3}
SPLIT_NAMES = {v: k for k, v in SPLITS.items()}
KINDS = ("kinematics", "photometry")


@dataclass
class MapSet:
    """Maps and everything that describes them, in memory.

    Attributes
    ----------
    maps : ndarray, float32, shape (N, C, H, W)
    channels, units : list of str
        Channel names (e.g. ``["v", "sigma", "count"]``) and their units (``"km/s"``).
    pixel_scale : float
        Pixel size in ``pixel_unit`` (``"kpc"`` or ``"arcsec"``).
    kind : str
        ``"kinematics"`` or ``"photometry"``.
    targets : dict of name -> (N,) float32
    target_units, target_descriptions : dict of name -> str
    truth : dict of name -> (N, 1, H, W) float32 per-pixel truth maps
    meta : dict of name -> (N,) array (numbers or strings)
    split : (N,) uint8
    attrs : dict
        Provenance read from a file (command, config, seed, ...); filled by the writer.
    """

    maps: np.ndarray
    channels: list[str]
    units: list[str]
    pixel_scale: float
    pixel_unit: str
    kind: str
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    target_units: dict[str, str] = field(default_factory=dict)
    target_descriptions: dict[str, str] = field(default_factory=dict)
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    truth_units: dict[str, str] = field(default_factory=dict)
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    meta_units: dict[str, str] = field(default_factory=dict)
    split: np.ndarray | None = None
    map_attrs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.maps = np.asarray(self.maps, dtype=np.float32)
        if self.maps.ndim != 4:
            raise InputError(f"maps must have shape (N, C, H, W), got {self.maps.shape}")
        n, c = self.maps.shape[:2]
        if len(self.channels) != c or len(self.units) != c:
            raise InputError(f"{c} map channels but {len(self.channels)} names and {len(self.units)} units")
        if self.kind not in KINDS:
            raise InputError(f"MapSet kind must be one of {KINDS}, got '{self.kind}'")
        if self.split is None:
            self.split = np.zeros(n, np.uint8)
        self.split = np.asarray(self.split, dtype=np.uint8)
        for label, d in (("targets", self.targets), ("meta", self.meta), ("truth", self.truth)):
            for k, v in d.items():
                if len(v) != n:
                    raise InputError(f"{label}/{k} has {len(v)} rows, maps have {n}")
        if len(self.split) != n:
            raise InputError(f"split has {len(self.split)} rows, maps have {n}")

    @property
    def n(self) -> int:
        return int(self.maps.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.maps.shape[2]), int(self.maps.shape[3])

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max), centred on the map centre, in ``pixel_unit``."""
        if "extent" in self.map_attrs:
            return tuple(float(v) for v in self.map_attrs["extent"])  # type: ignore[return-value]
        h, w = self.shape
        return (-w * self.pixel_scale / 2, w * self.pixel_scale / 2,
                -h * self.pixel_scale / 2, h * self.pixel_scale / 2)

    def select(self, mask_or_index: np.ndarray) -> MapSet:
        """A new MapSet with the rows selected by a boolean mask or index array."""
        idx = np.asarray(mask_or_index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return MapSet(
            maps=self.maps[idx], channels=list(self.channels), units=list(self.units),
            pixel_scale=self.pixel_scale, pixel_unit=self.pixel_unit, kind=self.kind,
            targets={k: v[idx] for k, v in self.targets.items()},
            target_units=dict(self.target_units), target_descriptions=dict(self.target_descriptions),
            truth={k: v[idx] for k, v in self.truth.items()}, truth_units=dict(self.truth_units),
            meta={k: v[idx] for k, v in self.meta.items()}, meta_units=dict(self.meta_units),
            split=self.split[idx], map_attrs=dict(self.map_attrs), attrs=dict(self.attrs),
        )

    def split_mask(self, split: str) -> np.ndarray:
        """Boolean mask of a split name (``train``, ``val``, ``test``, ``ood``) or ``all``."""
        if split == "all":
            return np.ones(self.n, bool)
        if split not in SPLITS:
            raise InputError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)} or all")
        return self.split == SPLITS[split]


def assign_splits(group_ids: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Assign train/val/test (0/1/2) by group, so no group (galaxy, simulation) is in two splits.

    Each group draws one uniform number from its own stream (seeded by ``seed`` and the group id),
    so the assignment of a group does not depend on which other groups are in the run, on sharding,
    or on the number of workers.
    """
    f = np.asarray(fractions, float)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise InputError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    gids = np.asarray(group_ids, dtype=np.int64)
    uniq, inv = np.unique(gids, return_inverse=True)
    # A stateless hash (SplitMix64) of (seed, group id) gives each group its own uniform number.
    z = (uniq.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(seed * 2654435761 % 2**64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) / float(2**53)
    cuts = np.cumsum(f)
    s = np.searchsorted(cuts[:2], u, side="right").astype(np.uint8)
    return s[inv]


def _string_or_number(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "USO":
        return np.asarray([str(v) for v in arr], dtype=h5py.string_dtype())
    return arr


class MapSetWriter:
    """Stream a MapSet to disk in blocks; the file appears under its name only when closed cleanly.

    Use as a context manager::

        with MapSetWriter(path, n=1000, channels=[...], units=[...], pixel_scale=1.0,
                          pixel_unit="kpc", shape=(10, 10), kind="kinematics", ...) as w:
            w.write(start, maps=..., targets={...}, meta={...}, split=..., truth={...})
    """

    def __init__(
        self, path: str | Path, *, n: int, channels: Sequence[str], units: Sequence[str],
        pixel_scale: float, pixel_unit: str, shape: tuple[int, int], kind: str,
        targets: dict[str, tuple[str, str]], meta: dict[str, tuple[str, str]],
        truth: dict[str, tuple[str, str]] | None = None, map_attrs: dict[str, Any] | None = None,
        overwrite: bool = False, command: str | None = None, config: dict | None = None,
        seed: int | None = None, parents: Sequence[str | Path] | None = None,
        compression: str | None = "gzip", catalogues: bool = False, options: dict[str, Any] | None = None,
    ) -> None:
        """``targets``/``truth`` map name -> (unit, description); ``meta`` name -> (unit, dtype) where
        dtype is a numpy dtype string or ``"str"``; ``catalogues``: every ``write`` also gives the GC
        catalogues of its maps (:mod:`gcml.io.catalogues`), written in map order; ``command``, ``config``,
        ``seed``, ``parents``, ``options``: provenance (:func:`gcml.io.common.provenance`)."""
        if kind not in KINDS:
            raise InputError(f"MapSet kind must be one of {KINDS}, got '{kind}'")
        self.path = Path(path)
        self.n = int(n)
        self._ctx = atomic_output(self.path, overwrite=overwrite)
        self._prov = provenance(command=command, config=config, seed=seed, parents=list(parents or []),
                                options=options)
        self._spec = dict(channels=list(channels), units=list(units), pixel_scale=float(pixel_scale),
                          pixel_unit=pixel_unit, shape=tuple(shape), kind=kind, targets=targets,
                          meta=meta, truth=truth or {}, map_attrs=map_attrs or {}, compression=compression,
                          catalogues=bool(catalogues))
        self._h5: h5py.File | None = None
        self._written = np.zeros(self.n, bool)

    def __enter__(self) -> MapSetWriter:
        tmp = self._ctx.__enter__()
        s = self._spec
        try:
            f = h5py.File(tmp, "w")
        except OSError as exc:
            self._ctx.__exit__(type(exc), exc, None)
            raise InputError(f"cannot write {self.path}: {exc}") from None
        self._h5 = f
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["kind"] = s["kind"]
        for k, v in self._prov.items():
            f.attrs[k] = v
        h, w = s["shape"]
        c = len(s["channels"])
        comp = {"compression": s["compression"], "compression_opts": 1} if s["compression"] == "gzip" else {}
        nchunk = max(1, min(self.n, max(1, 65536 // max(1, c * h * w))))
        d = f.create_dataset("maps", shape=(self.n, c, h, w), dtype="f4",
                             chunks=(nchunk, c, h, w) if self.n else None, shuffle=bool(comp), **comp)
        d.attrs["channels"] = json.dumps(s["channels"])
        d.attrs["units"] = json.dumps(s["units"])
        d.attrs["pixel_scale"] = s["pixel_scale"]
        d.attrs["pixel_unit"] = s["pixel_unit"]
        ext = s["map_attrs"].get("extent") or (-w * s["pixel_scale"] / 2, w * s["pixel_scale"] / 2,
                                               -h * s["pixel_scale"] / 2, h * s["pixel_scale"] / 2)
        d.attrs["extent"] = np.asarray(ext, float)
        d.attrs["origin"] = "lower"
        for k, v in s["map_attrs"].items():
            if k != "extent":
                d.attrs[k] = v if not isinstance(v, (dict, list)) else json.dumps(v)
        g = f.create_group("targets")
        for name, (unit, desc) in s["targets"].items():
            t = g.create_dataset(name, shape=(self.n,), dtype="f4")
            t.attrs["unit"] = unit
            t.attrs["description"] = desc
        g = f.create_group("truth")
        for name, (unit, desc) in s["truth"].items():
            t = g.create_dataset(name, shape=(self.n, 1, h, w), dtype="f4",
                                 chunks=(nchunk, 1, h, w) if self.n else None, shuffle=bool(comp), **comp)
            t.attrs["unit"] = unit
            t.attrs["description"] = desc
        g = f.create_group("meta")
        for name, (unit, dtype) in s["meta"].items():
            dt = h5py.string_dtype() if dtype == "str" else np.dtype(dtype)
            t = g.create_dataset(name, shape=(self.n,), dtype=dt)
            t.attrs["unit"] = unit
        f.create_dataset("split", shape=(self.n,), dtype="u1")
        if s["catalogues"]:
            from gcml.io.catalogues import create_datasets

            create_datasets(f, self.n)
        return self

    def write(self, start: int, *, maps: np.ndarray, targets: dict[str, np.ndarray],
              meta: dict[str, np.ndarray], split: np.ndarray, truth: dict[str, np.ndarray] | None = None,
              catalogues: Any = None) -> None:
        """Write rows ``start:start+len(maps)``; every declared target, meta and truth must be given
        (and the maps' :class:`gcml.io.catalogues.Catalogues` when the writer was opened with them)."""
        assert self._h5 is not None, "use MapSetWriter as a context manager"
        f = self._h5
        m = np.asarray(maps, np.float32)
        stop = start + m.shape[0]
        if stop > self.n:
            raise InputError(f"MapSetWriter: rows {start}:{stop} exceed the declared {self.n}")
        f["maps"][start:stop] = m
        for grp, data, declared in (("targets", targets, self._spec["targets"]),
                                    ("meta", meta, self._spec["meta"]),
                                    ("truth", truth or {}, self._spec["truth"])):
            missing = set(declared) - set(data)
            if missing:
                raise InputError(f"MapSetWriter: {grp} {sorted(missing)} not given")
            for name in declared:
                if len(data[name]) != m.shape[0]:
                    raise InputError(f"{self.path}: {grp}/{name} has {len(data[name])} rows for "
                                     f"{m.shape[0]} maps")
                f[grp][name][start:stop] = _string_or_number(data[name])
        if self._spec["catalogues"]:
            from gcml.io.catalogues import append

            if catalogues is None or catalogues.n != m.shape[0]:
                raise InputError(f"MapSetWriter: the GC catalogues of maps {start}:{stop} were not given")
            append(f, start, catalogues, self.path)
        f["split"][start:stop] = np.asarray(split, np.uint8)
        self._written[start:stop] = True

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._h5 is not None:
            f, self._h5 = self._h5, None
            try:
                f.close()  # flushes: a full disk may show only here
            except Exception as close_exc:  # noqa: BLE001 - HDF5 reports failed writes with several types
                if exc_type is None:
                    # removes the temporary file and turns a disk-full error into one sentence
                    self._ctx.__exit__(type(close_exc), close_exc, close_exc.__traceback__)
                    raise
        if exc_type is None and not self._written.all():
            err = InputError(f"{self.path}: only {int(self._written.sum())} of {self.n} rows were written")
            self._ctx.__exit__(InputError, err, None)  # removes the temporary file
            raise err
        # On success renames the temporary file; on error removes it and lets the error propagate.
        return bool(self._ctx.__exit__(exc_type, exc, tb))


def write_mapset(path: str | Path, ms: MapSet, *, overwrite: bool = False, command: str | None = None,
                 config: dict | None = None, seed: int | None = None,
                 parents: Sequence[str | Path] | None = None, options: dict[str, Any] | None = None) -> Path:
    """Write a complete in-memory MapSet to ``path`` (atomically; refuses to overwrite unless asked)."""
    h, w = ms.shape
    meta_spec = {}
    for k, v in ms.meta.items():
        v = np.asarray(v)
        meta_spec[k] = (ms.meta_units.get(k, ""), "str" if v.dtype.kind in "USO" else v.dtype.str)
    with MapSetWriter(
        path, n=ms.n, channels=ms.channels, units=ms.units, pixel_scale=ms.pixel_scale,
        pixel_unit=ms.pixel_unit, shape=(h, w), kind=ms.kind,
        targets={k: (ms.target_units.get(k, ""), ms.target_descriptions.get(k, "")) for k in ms.targets},
        truth={k: (ms.truth_units.get(k, ""), "") for k in ms.truth},
        meta=meta_spec, map_attrs=dict(ms.map_attrs), overwrite=overwrite, command=command,
        config=config, seed=seed, parents=parents, options=options,
    ) as wr:
        if ms.n:
            wr.write(0, maps=ms.maps, targets=ms.targets, meta=ms.meta, split=ms.split, truth=ms.truth)
    return Path(path)


def _open(path: str | Path) -> h5py.File:
    return open_h5(path, "a gcml MapSet")


def _decode_json_list(attrs: Any, key: str, path: Path) -> list[str]:
    v = attrs.get(key)
    if v is None:
        raise FormatError(f"{path}: /maps has no '{key}' attribute")
    if isinstance(v, bytes):
        v = v.decode()
    try:
        return [str(x) for x in json.loads(v)]
    except (TypeError, ValueError):
        raise FormatError(f"{path}: /maps attribute '{key}' is not a JSON list") from None


def read_mapset_header(f: h5py.File, path: str | Path) -> dict[str, Any]:
    """Validate an open MapSet file and return its description (no bulk data read)."""
    p = Path(path)
    check_format(f.attrs, p, FORMAT, int(FORMAT_VERSION.split(".")[0]))
    check_virtual_sources(f, p)
    for name in ("maps", "split"):
        if name not in f:
            raise FormatError(f"{p}: missing dataset '/{name}'")
    d = f["maps"]
    if d.ndim != 4:
        raise FormatError(f"{p}: /maps has shape {d.shape}, expected (N, C, H, W)")
    channels = _decode_json_list(d.attrs, "channels", p)
    units = _decode_json_list(d.attrs, "units", p)
    if len(channels) != d.shape[1]:
        raise FormatError(f"{p}: /maps has {d.shape[1]} channels but {len(channels)} channel names")
    map_attrs = {}
    for k, v in d.attrs.items():
        if k in ("channels", "units", "pixel_scale", "pixel_unit"):
            continue
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, str) and v[:1] in "[{":
            try:
                v = json.loads(v)
            except ValueError:
                pass
        map_attrs[k] = v
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    for k in ("config", "parents"):
        attrs[k] = attr_json(f.attrs, k, {} if k == "config" else [])
    return dict(
        n=int(d.shape[0]), channels=channels, units=units,
        pixel_scale=float(d.attrs.get("pixel_scale", np.nan)),
        pixel_unit=attr_str(d.attrs, "pixel_unit"), kind=attr_str(f.attrs, "kind"),
        shape=(int(d.shape[2]), int(d.shape[3])), map_attrs=map_attrs, attrs=attrs,
        targets=sorted(f["targets"].keys()) if "targets" in f else [],
        truth=sorted(f["truth"].keys()) if "truth" in f else [],
        meta=sorted(f["meta"].keys()) if "meta" in f else [],
    )


def read_header(path: str | Path) -> dict[str, Any]:
    """The header of the MapSet file ``path`` (see :func:`read_mapset_header`) without reading its arrays."""
    with _open(path) as f:
        return read_mapset_header(f, path)


def _fingerprint(path: Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of the file's first and last MiB (with its size): cheap enough to check at every open."""
    import hashlib

    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as fh:
        h.update(fh.read(chunk))
        if size > chunk:
            fh.seek(max(chunk, size - chunk))
            h.update(fh.read(chunk))
    h.update(str(size).encode())
    return h.hexdigest()


def virtual_source_record(path: str | Path) -> dict[str, Any]:
    """What a virtual merge records of one source: absolute path, size, fingerprint and SHA-256."""
    from gcml.io.common import sha256_file

    p = Path(path).resolve()
    return {"path": str(p), "size": p.stat().st_size, "fingerprint": _fingerprint(p), "sha256": sha256_file(p)}


def check_virtual_sources(f: h5py.File, path: str | Path) -> None:
    """A virtual MapSet (``gcml merge --virtual``) reads its maps from its sources: refuse to open it when a
    source is missing or changed since the merge (HDF5 would silently read zeros / other data)."""
    rec = attr_json(f.attrs, "virtual_sources", None)
    if rec is None:
        return
    if not isinstance(rec, list):
        raise FormatError(f"{path}: attribute 'virtual_sources' is not a JSON list")
    for r in rec:
        src = Path(str(r.get("path", "")))
        if not src.is_file():
            raise InputError(f"{path}: virtual MapSet source {src} is missing (moved or deleted after "
                             "'gcml merge --virtual'); put it back or merge again")
        try:
            size = src.stat().st_size
            fp = _fingerprint(src) if size == r.get("size") else None
        except OSError as exc:
            raise InputError(f"{path}: cannot read virtual MapSet source {src}: {exc.strerror}") from None
        if size != r.get("size") or fp != r.get("fingerprint"):
            raise InputError(f"{path}: virtual MapSet source {src} changed after 'gcml merge --virtual' "
                             f"(size or checksum differs from the one recorded); merge again")


def _read_meta(ds: h5py.Dataset, idx: Any) -> np.ndarray:
    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.asarray(ds.asstr()[idx], dtype=object).astype(str)
    return ds[idx]


def read_mapset(path: str | Path, *, split: str | None = None, channels: Sequence[str] | None = None,
                with_truth: bool = True) -> MapSet:
    """Read a MapSet file into memory, optionally only one split and some channels.

    Raises
    ------
    FormatError
        If the file is not a gcml MapSet of a supported version, or lacks units.
    """
    p = Path(path)
    with _open(p) as f:
        hdr = read_mapset_header(f, p)
        sp = f["split"][()]
        if split is None or split == "all":
            idx: Any = slice(None)
            sel = np.arange(hdr["n"])
        else:
            if split not in SPLITS:
                raise InputError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)} or all")
            sel = np.flatnonzero(sp == SPLITS[split])
            idx = sel
        ch_idx = list(range(len(hdr["channels"])))
        if channels is not None:
            missing = [c for c in channels if c not in hdr["channels"]]
            if missing:
                raise InputError(
                    f"{p}: channel(s) {', '.join(missing)} not in the MapSet (it has {', '.join(hdr['channels'])})"
                )
            ch_idx = [hdr["channels"].index(c) for c in channels]
        maps = f["maps"][idx] if isinstance(idx, slice) else (f["maps"][idx] if len(sel) else
                                                               np.zeros((0, *f["maps"].shape[1:]), np.float32))
        maps = maps[:, ch_idx]
        targets, tunits, tdesc = {}, {}, {}
        for name in hdr["targets"]:
            v, u = read_quantity(f["targets"], name, p)
            targets[name] = v[sel]
            tunits[name] = u
            tdesc[name] = attr_str(f["targets"][name].attrs, "description")
        truth, truth_units = {}, {}
        if with_truth:
            for name in hdr["truth"]:
                ds = f["truth"][name]
                if "unit" not in ds.attrs:
                    raise FormatError(f"{p}: dataset '{ds.name}' has no 'unit' attribute")
                truth[name] = ds[idx] if len(sel) else np.zeros((0, *ds.shape[1:]), np.float32)
                truth_units[name] = attr_str(ds.attrs, "unit")
        meta, munits = {}, {}
        for name in hdr["meta"]:
            ds = f["meta"][name]
            meta[name] = _read_meta(ds, slice(None))[sel]
            munits[name] = attr_str(ds.attrs, "unit")
    return MapSet(
        maps=maps, channels=[hdr["channels"][i] for i in ch_idx], units=[hdr["units"][i] for i in ch_idx],
        pixel_scale=hdr["pixel_scale"], pixel_unit=hdr["pixel_unit"], kind=hdr["kind"],
        targets=targets, target_units=tunits, target_descriptions=tdesc, truth=truth,
        truth_units=truth_units, meta=meta, meta_units=munits, split=sp[sel],
        map_attrs=hdr["map_attrs"], attrs=hdr["attrs"],
    )


def check_finite(ms: MapSet, path: str | Path) -> None:
    """Raise InputError naming the first field with NaN or inf values."""
    if not np.isfinite(ms.maps).all():
        bad = np.flatnonzero(~np.isfinite(ms.maps).all(axis=(1, 2, 3)))
        raise InputError(f"{path}: /maps has NaN or inf values (first in map {int(bad[0])})")
    for k, v in ms.targets.items():
        if not np.isfinite(v).all():
            raise InputError(f"{path}: /targets/{k} has NaN or inf values")


def _group_id_offsets(inputs: Sequence[str | Path], hdrs: list[dict[str, Any]], renumber: bool) -> list[int]:
    """Offsets added to each input's ``/meta/group_id`` so that galaxies of different runs keep distinct ids.

    Shards of one run (same seed and options but ``shard``) hold disjoint galaxy ids by construction.
    ``simulate-maps`` numbers the galaxies of every run from 0, so two runs overlap: without ``renumber``
    that is an error (one id would name two galaxies), with it each later run's ids are shifted past the
    largest id before it. Photometry ids name simulations (a hash of the name), so equal ids are the
    same cluster and are kept.
    """
    offsets = [0] * len(inputs)
    if hdrs[0]["kind"] != "kinematics" or "group_id" not in hdrs[0]["meta"]:
        return offsets

    def run_key(h: dict[str, Any]) -> str:
        cfg = {k: v for k, v in (h["attrs"].get("config") or {}).items() if k != "shard"}
        return json.dumps([h["attrs"].get("seed"), cfg], sort_keys=True, default=str)

    runs: dict[str, list[int]] = {}  # run key -> input indices, in order of first appearance
    for i, h in enumerate(hdrs):
        runs.setdefault(run_key(h), []).append(i)
    placed: list[tuple[np.ndarray, int]] = []  # (ids of an earlier run, after its shift; its first input)
    top = -1
    for members in runs.values():
        parts = []
        for i in members:
            with h5py.File(inputs[i], "r") as f:
                parts.append(f["meta/group_id"][()].astype(np.int64))
        ids = np.unique(np.concatenate(parts))
        if not len(ids):
            continue
        clash = next((j for prev, j in placed if len(np.intersect1d(ids, prev))), None)
        off = 0
        if clash is not None:
            if not renumber:
                raise InputError(
                    f"{inputs[members[0]]}: galaxy ids (/meta/group_id {ids.min()}-{ids.max()}) overlap those of "
                    f"{inputs[clash]}, which comes from another run (other seed or options), so one id would name "
                    "two galaxies; pass `renumber` to shift this run's ids, or merge only shards of one run")
            off = top + 1 - int(ids.min())
        for i in members:
            offsets[i] = off
        placed.append((ids + off, members[0]))
        top = max(top, int(ids.max()) + off)
    return offsets


def merge_mapsets(inputs: Sequence[str | Path], output: str | Path, *, overwrite: bool = False,
                  virtual: bool = False, renumber: bool = False, command: str | None = None,
                  options: dict[str, Any] | None = None) -> Path:
    """Join MapSets with the same channels, units, geometry and fields into one file.

    With ``virtual=True`` the output is an HDF5 virtual dataset referring to the inputs (which must
    then stay where they are); otherwise the data are copied. ``renumber``: shift the galaxy ids
    (``/meta/group_id``) of runs whose ids overlap an earlier input's (see :func:`_group_id_offsets`;
    the offsets are stored in the attribute ``offsets`` of ``/meta/group_id``).
    """
    if len(inputs) < 1:
        raise InputError("merge needs at least one input MapSet")
    hdrs = []
    for pth in inputs:
        with _open(pth) as f:
            hdrs.append(read_mapset_header(f, pth))
    ref = hdrs[0]
    for pth, h in zip(inputs[1:], hdrs[1:], strict=False):
        for key in ("channels", "units", "pixel_scale", "pixel_unit", "kind", "shape", "targets", "meta", "truth"):
            if h[key] != ref[key]:
                raise InputError(f"{pth}: {key} {h[key]} differs from {inputs[0]} ({ref[key]}); cannot merge")
    seen: dict[Path, str | Path] = {}
    for pth in inputs:
        rp = Path(pth).resolve()
        if rp in seen:
            raise InputError(f"{pth}: given twice (also as {seen[rp]}); each MapSet can be merged once")
        seen[rp] = pth
    # Shards of one run differ in their --shard; two inputs made by a command with the same seed and the
    # same resolved options (shard included) hold the same maps (a shard given twice, or a merged file,
    # which keeps its first input's options, together with that input).
    made: dict[tuple[Any, str], str | Path] = {}
    for pth, h in zip(inputs, hdrs, strict=True):
        cfg_h, seed = h["attrs"].get("config", {}), h["attrs"].get("seed")
        if seed is None or not cfg_h:
            continue
        key = (seed, json.dumps(cfg_h, sort_keys=True, default=str))
        if key in made:
            raise InputError(f"{pth}: made with the same seed and options (shard included) as {made[key]}, so it "
                             "holds the same maps; expected disjoint shards (`shard` K/N) of one run")
        made[key] = pth
    offsets = _group_id_offsets(inputs, hdrs, renumber)
    if virtual and any(offsets):
        raise InputError("merge: `renumber` rewrites /meta/group_id, which a virtual dataset cannot; "
                         "merge without `virtual`")
    ns = [h["n"] for h in hdrs]
    total = int(sum(ns))
    out = Path(output)
    # Seed and config of the first input are kept; parents record every input.
    cfg = ref["attrs"].get("config", {})
    seed = ref["attrs"].get("seed")
    with atomic_output(out, overwrite=overwrite) as tmp:
        prov = provenance(command=command, config=cfg, seed=None if seed is None else int(seed), parents=list(inputs),
                          options=options)
        with h5py.File(tmp, "w", rdcc_nbytes=0) as fo:  # no chunk cache: a failed write leaves nothing to flush
            fo.attrs["format"] = FORMAT
            fo.attrs["format_version"] = FORMAT_VERSION
            fo.attrs["kind"] = ref["kind"]
            for k, v in prov.items():
                fo.attrs[k] = v
            if virtual:
                fo.attrs["virtual_sources"] = json.dumps([virtual_source_record(pth) for pth in inputs])
            srcs = [h5py.File(pth, "r") for pth in inputs]
            try:
                names = ["maps", "split"] + [f"targets/{t}" for t in ref["targets"]] + \
                        [f"meta/{m}" for m in ref["meta"]] + [f"truth/{t}" for t in ref["truth"]]
                for name in names:
                    d0 = srcs[0][name]
                    shape = (total, *d0.shape[1:])
                    if virtual:
                        layout = h5py.VirtualLayout(shape=shape, dtype=d0.dtype)
                        start = 0
                        for pth, s, n in zip(inputs, srcs, ns, strict=False):
                            rel = str(Path(pth).resolve())
                            layout[start:start + n] = h5py.VirtualSource(rel, name, shape=s[name].shape)
                            start += n
                        dst = fo.create_virtual_dataset(name, layout)
                    else:
                        kw = {}
                        if d0.chunks is not None:
                            kw = dict(chunks=d0.chunks, compression=d0.compression,
                                      compression_opts=d0.compression_opts, shuffle=d0.shuffle)
                        dst = fo.create_dataset(name, shape=shape, dtype=d0.dtype, **kw)
                        start = 0
                        for s, n, off in zip(srcs, ns, offsets, strict=True):
                            if n:
                                dst[start:start + n] = s[name][()] + off if name == "meta/group_id" else s[name][()]
                            start += n
                    for k, v in d0.attrs.items():
                        dst.attrs[k] = v
                    if name == "meta/group_id" and any(offsets):
                        dst.attrs["offsets"] = json.dumps([{"path": str(p), "offset": o}
                                                           for p, o in zip(inputs, offsets, strict=True)])
                from gcml.io.catalogues import merge_into

                merge_into(fo, srcs, inputs)  # ragged GC catalogues are copied (also with virtual=True)
            finally:
                for s in srcs:
                    s.close()
    return out

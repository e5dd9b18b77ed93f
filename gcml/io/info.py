"""Summaries of every file gcml writes or reads, for ``gcml info``.

HDF5 files are told apart by their ``format`` attribute (:data:`DESCRIBERS`: MapSets, snapshots); other
kinds by suffix (:data:`SUFFIX_DESCRIBERS`: model bundles ``.pt``; FITS images, JSON, ECSV/CSV/
VOTable/VizieR tables, ``.npz`` arrays) or, for N-body files without a telling suffix, by content
(binary: NBODY6/NBODY6++ ``conf.3``; text: an ASCII particle table). :func:`describe` dispatches and, unless
``verbose``, keeps the summary short: no hashes, no stored configurations, long arrays as a count and range.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gcml.errors import FormatError, InputError
from gcml.io.bundle import describe_bundle

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fz", ".fits.gz", ".fit.gz")
TABLE_SUFFIXES = (".ecsv", ".csv", ".tsv", ".vot", ".votable", ".xml")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: arrays longer than this are summarised (count, min, max) unless verbose
MAX_LIST = 8
MAX_TEXT = 300


def _suffix(p: Path) -> str:
    name = p.name.lower()
    for s in FITS_SUFFIXES:
        if name.endswith(s):
            return s
    return p.suffix.lower()


def describe(path: str | Path, *, verbose: bool = False) -> dict[str, Any]:
    """A JSON-friendly summary of a file gcml writes or reads.

    ``verbose``: everything (sha256 hashes, stored configurations and options, full provenance, whole
    arrays, every FITS header card); otherwise a short summary.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a folder; give a file (MapSet, snapshot, model bundle, FITS, JSON, table, ...)")
    d = _describe(p, verbose)
    return d if verbose else compact(d)


def _describe(p: Path, verbose: bool) -> dict[str, Any]:
    suf = _suffix(p)
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if suf in SUFFIX_DESCRIBERS:
        return SUFFIX_DESCRIBERS[suf](p)
    if suf in FITS_SUFFIXES or head.startswith(b"SIMPLE  ="):
        return describe_fits(p, verbose=verbose)
    if suf == ".json":
        return describe_json(p)
    if suf == ".npz":
        return describe_npz(p)
    if suf in TABLE_SUFFIXES:
        return describe_table(p)
    if head.startswith(HDF5_MAGIC):
        from gcml.io.common import open_h5

        with open_h5(p, "a gcml file") as f:
            fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt not in DESCRIBERS:
            raise FormatError(f"{p}: HDF5 file without a known gcml 'format' attribute (found {fmt!r}); "
                              f"expected one of {', '.join(sorted(DESCRIBERS))}")
        return DESCRIBERS[fmt](p)
    if not head:
        raise InputError(f"{p}: the file is empty")
    # N-body files: binary -> NBODY6/NBODY6++ conf.3; text -> an ASCII particle table (or another table)
    from gcml.io.snapshots import read_snapshot

    if b"\x00" in head:
        try:
            snap = read_snapshot(p, format="conf3")
        except InputError as exc:
            raise FormatError(f"{p}: not a file gcml reads (binary, and not an NBODY6/NBODY6++ conf.3 "
                              f"snapshot: {exc})") from None
        return summarise_snapshot(snap, p, "NBODY6/NBODY6++ conf.3 (Fortran unformatted)")
    try:
        snap = read_snapshot(p, format="ascii")
    except InputError as exc:
        try:
            return describe_table(p)
        except InputError:
            raise FormatError(f"{p}: a text file that is neither an ASCII particle table ({exc}) nor a "
                              "table astropy reads") from None
    d = summarise_snapshot(snap, p, "ASCII particle table")
    d["columns assumed"] = ("m x y z vx vy vz in Msun, pc, km/s (the reader's defaults; N-body units need "
                            "mock-observe's column and unit options)")
    return d


# ------------------------------------------------------------------------------------------------
# short summaries
# ------------------------------------------------------------------------------------------------

def _range(values: list | np.ndarray) -> str:
    a = np.asarray(values)
    try:
        a = a.astype(float)
    except (TypeError, ValueError):
        return f"{a.size} values"
    fin = a[np.isfinite(a)]
    shape = "x".join(str(n) for n in a.shape)
    if not fin.size:
        return f"{shape} values, none finite"
    return f"{shape} values, {fin.min():.4g} .. {fin.max():.4g}" + (
        f" ({a.size - fin.size} not finite)" if fin.size < a.size else "")


def _numeric_list(v: Any) -> bool:
    if not isinstance(v, list) or not v:
        return False
    flat = v
    while flat and isinstance(flat[0], list):
        flat = [x for row in flat for x in row]
    return bool(flat) and all(isinstance(x, (int, float)) and not isinstance(x, bool) or x is None for x in flat)


def compact(d: Any, key: str = "") -> Any:
    """The short form of a summary: hashes and stored configurations left out (``--verbose`` shows them),
    long numeric arrays as 'N values, min .. max', long lists and texts cut."""
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            lk = str(k).lower()
            if "sha256" in lk or lk in ("config", "options", "training"):
                continue
            if lk == "parents":
                out[k] = _parents(v)
                continue
            out[k] = compact(v, lk)
        return out
    if isinstance(d, list):
        if _numeric_list(d) and (len(d) > MAX_LIST or isinstance(d[0], list)):
            return _range([np.nan if x is None else x for x in d]) if not isinstance(d[0], list) else _range(d)
        if len(d) > MAX_LIST:
            return [compact(x) for x in d[:MAX_LIST]] + [f"... {len(d) - MAX_LIST} more"]
        return [compact(x) for x in d]
    if isinstance(d, str) and len(d) > MAX_TEXT:
        return d[:MAX_TEXT] + f"... ({len(d)} characters; --verbose shows all)"
    return d


def _parents(v: Any) -> Any:
    try:
        items = json.loads(v) if isinstance(v, str) else v
    except ValueError:
        return compact(v)
    if not isinstance(items, list):
        return compact(items)
    paths = [str(x.get("path", x)) if isinstance(x, dict) else str(x) for x in items]
    if len(paths) <= 3:
        return ", ".join(paths)
    return f"{len(paths)} files: {', '.join(paths[:3])}, ... (--verbose lists them with hashes)"


# ------------------------------------------------------------------------------------------------
# non-HDF5 kinds
# ------------------------------------------------------------------------------------------------

def summarise_snapshot(s: Any, path: Path, fmt: str) -> dict[str, Any]:
    """Summary of a :class:`gcml.io.snapshots.Snapshot` read from any format."""
    from gcml.io.snapshots import OPTIONAL_FIELDS, UNITS, half_mass_radius

    r = np.sqrt((s.pos**2).sum(axis=1))
    out: dict[str, Any] = {
        "file": str(path),
        "format": fmt,
        "kind": "snapshot",
        "simulation": s.simulation,
        "age_gyr": s.age,
        "time_myr": s.time,
        "metallicity": s.metallicity,
        "particles": {"n": s.n, "mass_total_msun": s.mass_total,
                      "lum_v_total_lsun": None if s.lum_v is None else s.lum_v_total,
                      "r_half_mass_pc": half_mass_radius(s) if s.n else None,
                      "r_max_pc": float(r.max()) if s.n else None},
        "fields": {name: {"unit": UNITS[name],
                          "min": float(np.min(getattr(s, name))) if s.n else None,
                          "max": float(np.max(getattr(s, name))) if s.n else None}
                   for name in ("pos", "vel", "mass", *OPTIONAL_FIELDS) if getattr(s, name) is not None},
        "meta": s.meta,
        "provenance": {k: s.attrs.get(k) for k in ("gcml_version", "created_utc", "command", "seed")
                       if s.attrs.get(k) is not None},
    }
    if s.kstar is not None:
        u, c = np.unique(s.kstar, return_counts=True)
        out["stellar_types"] = {str(int(a)): int(b) for a, b in zip(u, c, strict=True)}
    return out


def describe_fits(path: Path, *, verbose: bool = False) -> dict[str, Any]:
    """HDUs (name, type, shape, BUNIT, WCS), gcml's keywords and HISTORY of a FITS file."""
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    try:
        hdul = fits.open(path, memmap=False)
    except Exception as exc:  # astropy raises OSError, ValueError, ...
        raise FormatError(f"{path}: not a readable FITS file ({str(exc).strip()[:160]})") from None
    with hdul:
        hdus = []
        for i, h in enumerate(hdul):
            e: dict[str, Any] = {"index": i, "name": h.name, "type": type(h).__name__,
                                 "shape": "x".join(str(n) for n in (h.shape or ())) if hasattr(h, "shape") else ""}
            hdr = h.header
            e["BUNIT"] = hdr.get("BUNIT", "")
            if h.is_image and h.data is not None and hdr.get("NAXIS", 0) >= 2:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FITSFixedWarning)
                    try:
                        w = WCS(hdr).celestial
                    except Exception:  # noqa: BLE001 -- a broken WCS is reported, not fatal
                        w = None
                if w is not None and w.has_celestial:
                    ny, nx = h.shape[-2:]
                    c = w.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
                    from astropy.wcs.utils import proj_plane_pixel_scales

                    scale = proj_plane_pixel_scales(w).mean() * 3600
                    e["wcs"] = (f"{'/'.join(w.wcs.ctype)}, centre RA {c.ra.deg:.5f} Dec {c.dec.deg:+.5f} deg, "
                                f"{scale:.4g} arcsec/px")
                else:
                    e["wcs"] = "none"
                d = np.asarray(h.data, dtype=float)
                e["data"] = _range(d.ravel()) .replace(f"{d.size} values", f"{d.size} px")
            if isinstance(h, (fits.BinTableHDU, fits.TableHDU)):
                e["columns"] = ", ".join(f"{c.name} [{c.unit}]" if c.unit else c.name for c in h.columns)
            hdus.append(e)
        prim = hdul[0].header
        keys = {k: prim[k] for k in prim if k.startswith("GCML") or k in ("ORIGIN", "DATE", "OBJECT", "TELESCOP",
                                                                          "FILTER", "EXPTIME")}
        history = [str(v) for v in prim.get("HISTORY", [])]
        comments = [str(v) for v in prim.get("COMMENT", [])]
        out: dict[str, Any] = {"file": str(path), "format": "FITS", "hdus": hdus, "keywords": keys}
        if history:
            out["history"] = history if verbose else history[-6:]
        if comments:
            out["comments"] = comments if verbose else comments[:6]
        if verbose:
            out["headers"] = {f"{i} {h.name}": {k: str(v) for k, v in h.header.items() if k not in ("HISTORY", "COMMENT")}
                              for i, h in enumerate(hdul)}
    return out


def describe_json(path: Path) -> dict[str, Any]:
    """A JSON file gcml wrote (prediction, metrics, summary) or reads (model standardisation, ...)."""
    try:
        obj = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: not valid JSON ({str(exc)[:120]})") from None
    out: dict[str, Any] = {"file": str(path), "format": "JSON"}
    if isinstance(obj, dict):
        if "format" in obj and isinstance(obj["format"], str):
            out["format"] = f"JSON ({obj['format']} {obj.get('format_version', '')})".replace(" )", ")")
        scalars = {k: v for k, v in obj.items() if not isinstance(v, (dict, list)) and k not in ("format",
                                                                                                "format_version")}
        if scalars:
            out["values"] = scalars
        out.update({k: v for k, v in obj.items() if isinstance(v, (dict, list))})
    else:
        out["content"] = obj
    return out


def describe_npz(path: Path) -> dict[str, Any]:
    """The arrays of an ``.npz`` file (shape, dtype, range)."""
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise FormatError(f"{path}: not a readable .npz file ({str(exc)[:120]})") from None
    arrays = {}
    with z:
        for name in z.files:
            a = z[name]
            e: dict[str, Any] = {"shape": "x".join(str(n) for n in a.shape) or "scalar", "dtype": str(a.dtype)}
            if a.dtype.kind in "fiub" and a.size:
                fin = a[np.isfinite(a)] if a.dtype.kind == "f" else a
                e["min"] = float(fin.min()) if fin.size else None
                e["max"] = float(fin.max()) if fin.size else None
            arrays[name] = e
    return {"file": str(path), "format": "NumPy .npz", "arrays": arrays}


def describe_table(path: Path) -> dict[str, Any]:
    """A table astropy reads (ECSV, CSV, VOTable, VizieR TSV, FITS table): rows, columns with units."""
    from gcml.io.tables import read_table

    t = read_table(path)
    cols = {}
    for name in t.colnames:
        c = t[name]
        e: dict[str, Any] = {"unit": str(c.unit) if c.unit is not None else "", "dtype": str(c.dtype)}
        if c.dtype.kind in "fiu" and len(c):
            v = np.asarray(c, dtype=float)
            fin = v[np.isfinite(v)]
            e["min"] = float(fin.min()) if fin.size else None
            e["max"] = float(fin.max()) if fin.size else None
        if getattr(c, "description", None):
            e["description"] = str(c.description)
        cols[name] = e
    fmt = {".ecsv": "ECSV", ".csv": "CSV", ".vot": "VOTable", ".votable": "VOTable", ".xml": "VOTable"}.get(
        _suffix(path), "table")
    out: dict[str, Any] = {"file": str(path), "format": fmt, "rows": len(t), "columns": cols}
    meta = {k: v for k, v in t.meta.items() if not isinstance(v, (dict, list))}
    if fmt == "VOTable":
        meta.update(_votable_infos(path))
    if meta:
        out["meta"] = meta
    return out


def _votable_infos(path: Path) -> dict[str, str]:
    """The table-level INFO elements of a VOTable (where gcml writes a result table's metadata;
    astropy's ``Table.read`` leaves them out)."""
    import warnings

    from astropy.io.votable import parse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {str(i.name): str(i.value) for i in parse(str(path)).get_first_table().infos}
    except Exception:  # the columns were read; missing metadata is no reason to fail
        return {}


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


def describe_snapshot(path: Path) -> dict[str, Any]:
    """Summary of a gcml HDF5 snapshot."""
    from gcml.io.snapshots import FORMAT, read_gcml_snapshot

    s = read_gcml_snapshot(path)
    return summarise_snapshot(s, path, f"{FORMAT} {s.attrs.get('format_version', '')}")


#: HDF5 ``format`` attribute -> describer (written out here: no format registers itself on import).
DESCRIBERS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "gcml.mapset": describe_mapset,
    "gcml.snapshot": describe_snapshot,
}
#: File suffix -> describer, for files that are not HDF5.
SUFFIX_DESCRIBERS: dict[str, Callable[[Path], dict[str, Any]]] = {".pt": describe_bundle}

"""GC catalogues stored with a MapSet: one ragged table per map (the GCs behind that map's view).

Layout inside a MapSet (see docs/formats.md)::

    /catalogue/offsets  int64 (N + 1,): the GCs of map i are rows offsets[i]:offsets[i + 1]
    /catalogue/x        float32 (M,) projected position on the sky [kpc] (map x axis, galaxy centre at 0)
    /catalogue/y        float32 (M,) [kpc]
    /catalogue/v_los    float32 (M,) line-of-sight velocity relative to the galaxy [km/s], measurement error included
    /catalogue/v_err    float32 (M,) its 1-sigma error [km/s] (0 for error-free mocks)
    /catalogue/in_map   uint8   (M,) 1 if the GC lies inside the map's field (and so behind its pixels)

Each dataset carries its ``unit`` attribute. The catalogue holds exactly the GCs the map was made from
(after random subsampling), so maps and catalogues describe the same galaxies and views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gcml.errors import FormatError, InputError

GROUP = "catalogue"
#: Column -> (unit, HDF5 dtype, description)
COLUMNS: dict[str, tuple[str, str, str]] = {
    "x": ("kpc", "f4", "projected x on the sky (map x axis), galaxy centre at 0"),
    "y": ("kpc", "f4", "projected y on the sky (map y axis), galaxy centre at 0"),
    "v_los": ("km/s", "f4", "line-of-sight velocity relative to the galaxy, measurement error included"),
    "v_err": ("km/s", "f4", "1-sigma velocity error (0: error-free)"),
    "in_map": ("", "u1", "1 if the GC lies inside the map's field"),
}


@dataclass
class Catalogues:
    """Ragged GC catalogues of N maps: flat columns and ``offsets`` (N + 1,)."""

    offsets: np.ndarray
    x: np.ndarray
    y: np.ndarray
    v_los: np.ndarray
    v_err: np.ndarray
    in_map: np.ndarray

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, np.int64)
        for c, (_, dt, _) in COLUMNS.items():
            setattr(self, c, np.asarray(getattr(self, c), np.dtype(dt)))
        m = int(self.offsets[-1]) if len(self.offsets) else 0
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise InputError("catalogues: offsets must start at 0 and never decrease")
        for c in COLUMNS:
            if len(getattr(self, c)) != m:
                raise InputError(f"catalogues: column {c} has {len(getattr(self, c))} rows, offsets say {m}")

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_padded(cls, x: np.ndarray, y: np.ndarray, v_los: np.ndarray, v_err: np.ndarray | None,
                    in_map: np.ndarray, mask: np.ndarray) -> Catalogues:
        """From (B, N) arrays where ``mask`` marks the GCs that exist (row-major order is kept)."""
        mask = np.asarray(mask, bool)
        counts = mask.sum(1)
        off = np.zeros(len(mask) + 1, np.int64)
        np.cumsum(counts, out=off[1:])
        ve = np.zeros(mask.shape, np.float32) if v_err is None else np.broadcast_to(v_err, mask.shape)
        return cls(off, np.asarray(x)[mask], np.asarray(y)[mask], np.asarray(v_los)[mask], ve[mask],
                   np.asarray(in_map)[mask].astype(np.uint8))

    @classmethod
    def concatenate(cls, parts: Sequence[Catalogues]) -> Catalogues:
        if not parts:
            return cls(np.zeros(1, np.int64), *[np.zeros(0, np.dtype(d)) for _, d, _ in COLUMNS.values()])
        offs = [np.zeros(1, np.int64)]
        top = 0
        for p in parts:
            offs.append(p.offsets[1:] + top)
            top += int(p.offsets[-1])
        return cls(np.concatenate(offs), *[np.concatenate([getattr(p, c) for p in parts]) for c in COLUMNS])

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        counts = self.counts[idx]
        starts = self.offsets[idx]
        total = int(counts.sum())
        rep = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        return rep + np.arange(total)

    def select(self, idx: np.ndarray) -> Catalogues:
        """The catalogues of maps ``idx`` (index array or boolean mask), in that order."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        rows = self._rows(idx)
        off = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(self.counts[idx], out=off[1:])
        return Catalogues(off, *[getattr(self, c)[rows] for c in COLUMNS])

    def table(self, i: int) -> dict[str, np.ndarray]:
        """The columns of map ``i``."""
        s = slice(int(self.offsets[i]), int(self.offsets[i + 1]))
        return {c: getattr(self, c)[s] for c in COLUMNS}

    def padded(self, idx: np.ndarray | None = None, n_max: int | None = None) -> np.ndarray:
        """(B, n_max, 6) float32: x, y, v_los, v_err, in_map, valid (1 for a GC, 0 for padding).

        ``n_max`` defaults to the largest catalogue of the selection; a catalogue longer than ``n_max``
        is an error (no GC is dropped silently).
        """
        idx = np.arange(self.n) if idx is None else np.asarray(idx, np.int64)
        counts = self.counts[idx]
        nm = int(counts.max()) if len(idx) and n_max is None else int(n_max or 0)
        if len(idx) and counts.max() > nm:
            raise InputError(f"catalogues: a catalogue has {int(counts.max())} GCs, more than n_max = {nm}")
        out = np.zeros((len(idx), max(nm, 1), 6), np.float32)
        j = np.arange(max(nm, 1))
        valid = j[None, :] < counts[:, None]
        src = np.where(valid, self.offsets[idx][:, None] + j[None, :], 0)
        for k, c in enumerate(COLUMNS):
            col = getattr(self, c)
            if len(col):
                out[..., k] = np.where(valid, col[src], 0)
        out[..., 5] = valid
        return out


def create_datasets(f: h5py.File, n: int) -> None:
    """Empty, growable catalogue datasets in an open MapSet being written (``n`` maps)."""
    g = f.create_group(GROUP)
    g.attrs["description"] = "GC catalogue of every map (ragged: rows offsets[i]:offsets[i+1] belong to map i)"
    d = g.create_dataset("offsets", shape=(n + 1,), dtype="i8")
    d[0] = 0
    for c, (unit, dt, desc) in COLUMNS.items():
        d = g.create_dataset(c, shape=(0,), maxshape=(None,), dtype=dt, chunks=(65536,))
        d.attrs["unit"] = unit
        d.attrs["description"] = desc


def append(f: h5py.File, start: int, cats: Catalogues, path: Path | str) -> None:
    """Write the catalogues of maps ``start:start + cats.n``; maps must be written in order."""
    g = f[GROUP]
    top = int(g["x"].shape[0])
    if start > 0 and int(g["offsets"][start]) != top:
        raise InputError(f"{path}: catalogues must be written in map order (maps {start}+ after {top} GCs)")
    m = int(cats.offsets[-1])
    for c in COLUMNS:
        d = g[c]
        d.resize((top + m,))
        d[top:] = getattr(cats, c)
    g["offsets"][start + 1:start + cats.n + 1] = cats.offsets[1:] + top


def has_catalogues(path: str | Path) -> bool:
    with h5py.File(path, "r") as f:
        return GROUP in f


def read_catalogues(path: str | Path, rows: np.ndarray | None = None) -> Catalogues:
    """The catalogues of a MapSet (all maps, or the maps ``rows``)."""
    p = Path(path)
    with h5py.File(p, "r") as f:
        if GROUP not in f:
            raise InputError(f"{p}: has no GC catalogues (/{GROUP}); make it with gcml simulate-maps "
                             "(catalogues are stored unless --no-catalogues)")
        g = f[GROUP]
        for c in ("offsets", *COLUMNS):
            if c not in g:
                raise FormatError(f"{p}: /{GROUP}/{c} is missing")
        for c, (unit, _, _) in COLUMNS.items():
            if str(g[c].attrs.get("unit", "<none>")) != unit:
                raise FormatError(f"{p}: /{GROUP}/{c} must have unit '{unit}', has {g[c].attrs.get('unit', 'none')!r}")
        off = g["offsets"][()]
        n_maps = f["maps"].shape[0] if "maps" in f else len(off) - 1
        if len(off) != n_maps + 1:
            raise FormatError(f"{p}: /{GROUP}/offsets has {len(off)} entries for {n_maps} maps (expected N + 1)")
        cols = {c: g[c][()] for c in COLUMNS}
    cat = Catalogues(off, **cols)
    return cat if rows is None else cat.select(rows)


def merge_into(fo: h5py.File, srcs: Sequence[h5py.File], inputs: Sequence[Any]) -> None:
    """Concatenate the catalogues of the MapSets ``srcs`` (all or none must have them) into ``fo``."""
    have = [GROUP in s for s in srcs]
    if not any(have):
        return
    if not all(have):
        bad = inputs[have.index(False)]
        raise InputError(f"{bad}: has no GC catalogues while {inputs[have.index(True)]} has; cannot merge")
    n = sum(s["maps"].shape[0] for s in srcs)
    create_datasets(fo, n)
    start = 0
    for s in srcs:
        g = s[GROUP]
        cat = Catalogues(g["offsets"][()], **{c: g[c][()] for c in COLUMNS})
        append(fo, start, cat, fo.filename)
        start += cat.n

"""Snapshot series: a manifest written last makes a series complete or visibly incomplete.

``gcml simulate-clusters`` writes one snapshot per age and, once every snapshot is on disk, the manifest
``<simulation>.manifest.json`` beside them (file names, sizes, SHA-256 and the run id). Each snapshot of the
series records ``meta["series"] = {"simulation", "run_id", "manifest", "n_files"}``. A reader of a folder
(:func:`check_series`) refuses snapshots whose series has no manifest (the run was killed or failed), whose
manifest does not list them, or whose size or run id differs from the manifest (a mixed series), unless
the user asks to use what is there (``partial=True``; ``--partial`` on the command line).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gcml.errors import InputError

FORMAT = "gcml.series"
FORMAT_VERSION = "1.0"


def manifest_name(simulation: str) -> str:
    return f"{simulation}.manifest.json"


def new_run_id() -> str:
    return secrets.token_hex(8)


def series_tag(simulation: str, run_id: str, n_files: int) -> dict[str, Any]:
    """What each snapshot of a series stores in ``meta["series"]``."""
    return {"simulation": simulation, "run_id": run_id, "manifest": manifest_name(simulation), "n_files": int(n_files)}


def write_manifest(folder: str | Path, simulation: str, run_id: str, files: Sequence[str | Path],
                   *, ages: Sequence[float] | None = None) -> Path:
    """Write ``<simulation>.manifest.json`` (atomically, replacing an older one): call it last."""
    from gcml._version import __version__
    from gcml.io.common import atomic_output, sha256_file, utc_now

    folder = Path(folder)
    entries = []
    for i, f in enumerate(files):
        f = Path(f)
        entries.append({"name": f.name, "size": f.stat().st_size, "sha256": sha256_file(f),
                        **({"age": float(ages[i])} if ages is not None else {})})
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "simulation": simulation, "run_id": run_id,
           "complete": True, "n_files": len(entries), "files": entries, "gcml_version": __version__,
           "created_utc": utc_now()}
    out = folder / manifest_name(simulation)
    with atomic_output(out, overwrite=True) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    return out


def _series_of(path: Path) -> dict[str, Any] | None:
    """The ``series`` tag of a gcml snapshot file, or None (other formats, or not part of a series)."""
    if path.suffix.lower() not in (".h5", ".hdf5"):
        return None
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") not in ("gcml.snapshot", b"gcml.snapshot"):
                return None
            meta = f.attrs.get("meta")
    except OSError:
        return None  # unreadable files get their own message from the reader
    if isinstance(meta, bytes):
        meta = meta.decode()
    try:
        tag = json.loads(meta).get("series") if meta else None
    except (TypeError, ValueError, AttributeError):
        return None
    return tag if isinstance(tag, dict) else None


def check_series(files: Sequence[Path], folder: str | Path, *, partial: bool = False,
                 whole_folder: bool = True) -> list[Path]:
    """Check the series that the snapshot ``files`` of ``folder`` belong to; return the files to use.

    Raises :class:`InputError` (one sentence) when a series is incomplete or mixed, unless ``partial``,
    in which case its files are used as they are. ``whole_folder``: the files are all of the folder's
    snapshots (no ``--pattern``), so a snapshot the manifest lists but the folder lacks is an error too.
    """
    folder = Path(folder)
    manifests: dict[str, dict[str, Any] | None] = {}
    for f in files:
        tag = _series_of(f)
        if tag is None:
            continue
        mname = str(tag.get("manifest", ""))
        if mname not in manifests:
            mp = folder / mname
            doc = None
            if mname and mp.is_file():
                try:
                    doc = json.loads(mp.read_text())
                except (OSError, ValueError):
                    raise InputError(f"{mp}: unreadable series manifest (not JSON)") from None
            manifests[mname] = doc
        doc = manifests[mname]
        if partial:
            continue
        sim = tag.get("simulation", "?")
        if doc is None:
            n_here = sum(1 for g in files if (_series_of(g) or {}).get("manifest") == mname)
            raise InputError(
                f"{folder}: snapshot series '{sim}' is incomplete: {mname} is missing ({n_here} of "
                f"{tag.get('n_files', '?')} snapshots present; the run that wrote them did not finish); "
                "pass `partial` to use the snapshots that are there")
        listed = {e.get("name"): e for e in doc.get("files", []) if isinstance(e, dict)}
        entry = listed.get(f.name)
        if entry is None or doc.get("run_id") != tag.get("run_id"):
            raise InputError(f"{f}: not part of the series recorded in {folder / mname} (written by another run); "
                             "remove it or pass `partial` to use the snapshots that are there")
        if entry.get("size") != f.stat().st_size:
            raise InputError(f"{f}: size differs from the one recorded in {folder / mname} (file changed after "
                             "the series was written); pass `partial` to use it anyway")
    if not partial and whole_folder:
        for mname, doc in manifests.items():
            if doc is None:
                continue
            present = {f.name for f in files}
            missing = [e.get("name") for e in doc.get("files", []) if e.get("name") not in present]
            if missing:
                raise InputError(f"{folder}: snapshot series '{doc.get('simulation')}' lacks {len(missing)} of its "
                                 f"{doc.get('n_files')} snapshots (e.g. {missing[0]}; see {mname}); pass `partial` "
                                 "to use the snapshots that are there")
    return list(files)

"""Shared helpers for gcml files: provenance, format checks, quantities in HDF5, resource checks.

Atomic writing, output locks and overwrite guards live in :mod:`gcml.io.atomic`; their names are
re-exported here, where callers have always imported them from.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import FormatError, InputError
from gcml.io.atomic import (  # noqa: F401  (re-exported: gcml.io.common is where callers import them from)
    TMP_PREFIX,
    _first_existing_ancestor,
    _is_write_failure,
    atomic_output,
    check_output_dir,
    check_output_folder,
    check_output_path,
    commit_output,
    is_disk_full,
    lock_path_for,
    make_output_dir,
    new_temp_path,
    output_lock,
    remove_stale_temps,
    write_error,
)

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_+\-][A-Za-z0-9._+\-]{0,127}$")


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def available_memory() -> int | None:
    """Bytes of memory this process may still use (MemAvailable, capped by an address-space limit)."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
            avail = soft if avail is None else min(avail, soft)
    except (ImportError, OSError, ValueError):
        pass
    return avail


def check_resources(what: str, *, memory: float = 0.0, disk: float = 0.0, folder: str | Path | None = None) -> None:
    """Refuse, before any work, a run whose estimated memory or output size cannot fit.

    ``memory``/``disk`` are estimates in bytes (lower bounds: a refusal is certain to be right); ``folder``
    is where the output goes. Raises :class:`ResourceError` with one sentence naming both figures.
    """
    from gcml.errors import ResourceError

    mem = available_memory()
    if memory > 0 and mem is not None and memory > mem:
        raise ResourceError(f"{what} would need at least {_human(memory)} of memory and {_human(mem)} is available; "
                            "use smaller sizes")
    if disk > 0 and folder is not None:
        import shutil

        anc = Path(folder) if Path(folder).is_dir() else _first_existing_ancestor(Path(folder) / "x")
        try:
            free = shutil.disk_usage(anc).free
        except OSError:
            return
        if disk > free:
            raise ResourceError(f"{what} would write at least {_human(disk)} and {anc} has {_human(free)} free; "
                                "use smaller sizes or another folder")


def check_name(name: str, option: str) -> str:
    """A name that becomes part of file names (``simulation``): letters, digits, ``. _ + -``, no leading
    dot, at most 128 characters; anything else (``/``, ``..``, spaces, an absolute path) is refused.
    ``option`` names the parameter in messages, backquoted (```simulation```: the CLI shows its option)."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise InputError(f"option {option}: '{name}' cannot be used in a file name; use letters, digits and "
                         "'.', '_', '+', '-' (no '/', no leading '.', at most 128 characters)")
    return name


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


#: options that say where and how to write, not what: never stored
_NOT_STORED = ("out", "overwrite", "quiet", "config", "resume")


def options_record(command: str, options: dict[str, Any]) -> dict[str, Any]:
    """``{"command": command, option: value, ...}`` without the options that say where and how to write.

    The CLI makes this record of a command's resolved options and hands it to the stage function
    (``options=``), which passes it on to :func:`provenance`; outputs store it (attribute ``options``) so
    that ``--config FILE.h5`` can run the same command again. Library callers pass nothing and their
    outputs store no options.
    """
    return {"command": command, **{k: v for k, v in options.items() if k not in _NOT_STORED}}


def command_line() -> str:
    """The command that is running, as a shell-quoted string."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("gcml", "__main__.py")):
        argv[0] = "gcml"
    return " ".join(shlex.quote(a) for a in argv)


def provenance(
    *, command: str | None = None, config: dict | None = None, seed: int | None = None,
    parents: list[str | Path] | None = None, options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Root attributes common to every gcml output file.

    ``command`` is the command line (default: this process's, :func:`command_line`); ``options`` the
    record of the command's resolved options (:func:`options_record`), stored as attribute ``options``
    when given.
    """
    from gcml._version import __version__
    from gcml.config import to_jsonable

    par = []
    for pth in parents or []:
        pth = Path(pth)
        par.append({"path": str(pth), "sha256": sha256_file(pth) if pth.is_file() else None})
    out = {
        "gcml_version": __version__,
        "created_utc": utc_now(),
        "command": command if command is not None else command_line(),
        "seed": -1 if seed is None else int(seed),
        "config": json.dumps(to_jsonable(config or {}), sort_keys=True),
        "parents": json.dumps(par),
    }
    if options is not None:
        out["options"] = json.dumps(to_jsonable(options), sort_keys=True)
    return out


def check_format(attrs: Any, path: str | Path, expected: str, supported_major: int) -> str:
    """Check ``format`` and ``format_version`` attributes; return the version string."""
    fmt = attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt is None:
        raise FormatError(f"{path}: not a gcml file (no 'format' attribute); expected format '{expected}'")
    if fmt != expected:
        raise FormatError(f"{path}: is a '{fmt}' file, expected '{expected}'")
    ver = attrs.get("format_version")
    if isinstance(ver, bytes):
        ver = ver.decode()
    try:
        major = int(str(ver).split(".")[0])
    except ValueError:
        raise FormatError(f"{path}: unreadable format_version '{ver}'") from None
    if major > supported_major:
        raise FormatError(
            f"{path}: {expected} version {ver} is newer than this gcml reads ({supported_major}.x); upgrade gcml"
        )
    if major < supported_major:
        raise FormatError(f"{path}: {expected} version {ver} is too old for this gcml ({supported_major}.x)")
    return str(ver)


def write_quantity(group: Any, name: str, value: np.ndarray, unit: str, *, description: str = "",
                   **dataset_kwargs: Any) -> Any:
    """Write ``value`` as dataset ``name`` with ``attrs['unit']`` (use '' for dimensionless)."""
    ds = group.create_dataset(name, data=value, **dataset_kwargs)
    ds.attrs["unit"] = unit
    if description:
        ds.attrs["description"] = description
    return ds


def read_quantity(group: Any, name: str, path: str | Path) -> tuple[np.ndarray, str]:
    """Read dataset ``name`` and its unit; a missing ``unit`` attribute is an error."""
    if name not in group:
        raise FormatError(f"{path}: missing dataset '{group.name.rstrip('/')}/{name}'")
    ds = group[name]
    unit = ds.attrs.get("unit")
    if unit is None:
        raise FormatError(f"{path}: dataset '{ds.name}' has no 'unit' attribute")
    if isinstance(unit, bytes):
        unit = unit.decode()
    return ds[()], str(unit)


def attr_str(attrs: Any, key: str, default: str = "") -> str:
    v = attrs.get(key, default)
    if isinstance(v, bytes):
        v = v.decode()
    return str(v)


def attr_json(attrs: Any, key: str, default: Any = None) -> Any:
    v = attrs.get(key)
    if v is None:
        return default
    if isinstance(v, bytes):
        v = v.decode()
    try:
        return json.loads(v)
    except (TypeError, ValueError):
        return default


def open_h5(path: str | Path, what: str) -> Any:
    """Open an HDF5 file for reading, or raise one clear error (not found, a folder, not HDF5).

    ``what`` names the expected file in messages, e.g. ``"a gcml MapSet"``.
    """
    import h5py

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected {what} (.h5)")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        if "truncated" in str(exc):
            raise FormatError(f"{p}: not an HDF5 file that can be read (truncated: the file is shorter than its "
                              f"header says); expected {what} (.h5)") from None
        raise FormatError(f"{p}: not an HDF5 file; expected {what} (.h5)") from None

"""Shared helpers for gcml files: atomic writes, overwrite guard, provenance, quantities in HDF5."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import FormatError, InputError, OutputExistsError


def _first_existing_ancestor(p: Path) -> Path:
    """The nearest folder above ``p`` (or ``p``'s parent) that exists on disk."""
    parent = p.parent if str(p.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_output_path(path: str | Path, *, overwrite: bool = False) -> Path:
    """Check that ``path`` may be written: parent folder writable, no existing file unless ``overwrite``.

    An existing folder is never replaced by a file, with or without ``overwrite``; a regular file on the
    way to ``path`` (``file.h5/out.h5``) and a read-only folder are named in the error.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputExistsError(f"{p} is a folder; expected a file name for this output")
    if p.exists() and not overwrite:
        raise OutputExistsError(f"{p} already exists; pass --overwrite to replace it")
    anc = _first_existing_ancestor(p)
    if not anc.is_dir():
        raise InputError(f"cannot write {p}: {anc} is not a folder")
    if not os.access(anc, os.W_OK):
        raise InputError(f"cannot write {p}: folder {anc} is not writable")
    return p


def check_output_dir(path: str | Path) -> Path:
    """Check, without creating anything, that the output folder ``path`` can be made or used.

    Raises :class:`InputError` naming ``path`` when it is a file, when a file sits on the way to it
    (``file.h5/run``) or when the nearest existing folder is not writable.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"output {p}: is a file; expected a folder")
    anc = p if p.exists() else _first_existing_ancestor(p)
    if not anc.is_dir():
        raise InputError(f"cannot create folder {p}: {anc} is not a folder")
    if not os.access(anc, os.W_OK):
        raise InputError(f"cannot write into {p}: folder {anc} is not writable")
    return p


def make_output_dir(path: str | Path) -> Path:
    """Create the output folder ``path`` (and its parents) after :func:`check_output_dir`."""
    p = check_output_dir(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create folder {p}: {exc.strerror}") from None
    return p


@contextlib.contextmanager
def atomic_output(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    An interrupted or failed write leaves no file that looks finished (the temporary name starts with
    ``.gcml-tmp-`` and is removed on error). Parent folders are created.
    """
    p = check_output_path(path, overwrite=overwrite)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create folder {p.parent}: {exc.strerror}") from None
    tmp = p.parent / f".gcml-tmp-{os.getpid()}-{p.name}"
    try:
        yield tmp
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


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


#: the options of the running gcml command as the CLI resolved them (set by ``gcml.cli``; None in library use)
_COMMAND_OPTIONS: dict[str, Any] | None = None
#: options that say where and how to write, not what: never stored
_NOT_STORED = ("out", "overwrite", "quiet", "config", "resume")


def options_record(command: str, options: dict[str, Any]) -> dict[str, Any]:
    """``{"command": command, option: value, ...}`` without the options that say where and how to write."""
    return {"command": command, **{k: v for k, v in options.items() if k not in _NOT_STORED}}


def set_command_options(command: str, options: dict[str, Any] | None) -> None:
    """Record the resolved options of the running CLI command; outputs store them (attribute ``options``)
    so that ``--config FILE.h5`` can run the same command again."""
    global _COMMAND_OPTIONS
    _COMMAND_OPTIONS = None if options is None else options_record(command, options)


def command_options() -> dict[str, Any] | None:
    """The recorded options of the running CLI command (``{"command": name, option: value, ...}``) or None."""
    return None if _COMMAND_OPTIONS is None else dict(_COMMAND_OPTIONS)


def command_line() -> str:
    """The command that is running, as a shell-quoted string."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("gcml", "__main__.py")):
        argv[0] = "gcml"
    return " ".join(shlex.quote(a) for a in argv)


def provenance(
    *, command: str | None = None, config: dict | None = None, seed: int | None = None,
    parents: list[str | Path] | None = None,
) -> dict[str, Any]:
    """Root attributes common to every gcml output file."""
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
    if _COMMAND_OPTIONS is not None:
        out["options"] = json.dumps(to_jsonable(_COMMAND_OPTIONS), sort_keys=True)
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
    except OSError:
        raise FormatError(f"{p}: not an HDF5 file; expected {what} (.h5)") from None

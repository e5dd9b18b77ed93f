"""Shared helpers for gcml files: atomic writes, overwrite guard, provenance, quantities in HDF5."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import secrets
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gcml.errors import FormatError, InputError, OutputBusyError, OutputError, OutputExistsError


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
    """A name that becomes part of file names (``--simulation``): letters, digits, ``. _ + -``, no leading
    dot, at most 128 characters; anything else (``/``, ``..``, spaces, an absolute path) is refused."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise InputError(f"option {option}: '{name}' cannot be used in a file name; use letters, digits and "
                         "'.', '_', '+', '-' (no '/', no leading '.', at most 128 characters)")
    return name


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


#: prefix of the temporary names outputs are written under (``.gcml-tmp-<pid>-<random>-<name>``)
TMP_PREFIX = ".gcml-tmp-"
#: errno values that mean the disk (or the user's quota) is full
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _tmp_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"^" + re.escape(TMP_PREFIX) + r"\d+-[0-9a-f]{8}-" + re.escape(name) + r"$")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` says the disk or quota is full (also HDF5's OSErrors, which carry no errno)."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return True
    msg = str(exc)
    return isinstance(exc, OSError) and ("No space left" in msg or "errno = 28" in msg or "Disk quota" in msg)


def _folder_full(path: str | Path) -> bool:
    import shutil

    try:
        return shutil.disk_usage(_first_existing_ancestor(Path(path))).free < (1 << 20)
    except OSError:
        return False


def write_error(path: str | Path, exc: BaseException) -> OutputError:
    """One sentence for an error met while writing ``path``: ``disk full writing X`` or the system's reason."""
    if is_disk_full(exc) or (not isinstance(exc, OSError) and _folder_full(path)):
        return OutputError(f"disk full writing {path}")
    reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:200] or type(exc).__name__
    return OutputError(f"cannot write {path}: {reason}")


def _is_write_failure(exc: BaseException) -> bool:
    """OSErrors that come from writing (disk full, I/O error, read-only file system, quota), and torch.save's
    RuntimeErrors from its zip writer (which reports a full disk that way)."""
    if isinstance(exc, RuntimeError) and ("PytorchStreamWriter" in str(exc) or "inline_container" in str(exc)):
        return True
    if not isinstance(exc, OSError) or isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return False
    if is_disk_full(exc) or exc.errno in (errno.EIO, errno.EROFS):
        return True
    msg = str(exc)
    return "write failed" in msg or "Can't write" in msg or "unable to flush" in msg.lower()


def lock_path_for(path: str | Path) -> Path:
    """The lock file that guards output ``path`` (a file or a run folder): ``.<name>.gcml-lock`` beside it."""
    p = Path(path)
    return p.parent / f".{p.name}.gcml-lock"


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on output ``path`` (a file or a folder) for the duration of the block.

    The lock is an ``fcntl.flock`` on ``.<name>.gcml-lock`` beside ``path``; the kernel releases it when the
    process ends, however it ends, so a killed run never blocks the next one. A second gcml run that wants
    the same output while the first holds it fails at once with :class:`OutputBusyError`.
    """
    p = Path(path)
    lp = lock_path_for(p)
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking (the final no-replace rename still protects files)
        yield
        return
    try:
        lp.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(lp, exc) from None
    while True:
        try:
            fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise write_error(lp, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputBusyError(f"{p} is being written by another gcml run (lock {lp.name} is held); "
                                  "wait for it to finish or choose another output") from None
        try:  # the holder before us may have removed the lock file between our open and our flock
            same = os.stat(lp).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lp)
        os.close(fd)


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove temporary files of ``path`` left by killed runs (call only while holding :func:`output_lock`)."""
    p = Path(path)
    pat = _tmp_pattern(p.name)
    removed = []
    with contextlib.suppress(OSError):
        for q in p.parent.iterdir():
            if pat.match(q.name):
                with contextlib.suppress(OSError):
                    if q.is_dir():
                        import shutil

                        shutil.rmtree(q)
                    else:
                        q.unlink()
                    removed.append(q)
    return removed


def new_temp_path(path: str | Path, *, folder: bool = False) -> Path:
    """Claim a fresh temporary name beside ``path`` (created exclusively: no other run can hold it)."""
    p = Path(path)
    for _ in range(100):
        tmp = p.parent / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{p.name}"
        try:
            if folder:
                os.mkdir(tmp)
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise write_error(p, exc) from None
    raise OutputError(f"cannot write {p}: no free temporary name")  # pragma: no cover


def commit_output(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``path``. Without ``overwrite`` this never replaces a file that another
    program made meanwhile (``os.link`` fails when the name exists); with it, the old file is replaced."""
    try:
        if tmp.is_file():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)  # a full disk shows here on file systems that allocate late
            finally:
                os.close(fd)
        if tmp.is_dir():
            _commit_folder(tmp, path, overwrite=overwrite)
            return
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise OutputExistsError(f"{path} appeared while this run was writing it (another program?); "
                                    "it was not replaced and this run's output was discarded") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise
            if path.exists():  # file system without hard links: check, then rename
                raise OutputExistsError(f"{path} appeared while this run was writing it; not replaced") from None
            os.rename(tmp, path)
            return
        os.unlink(tmp)
    except OSError as exc:
        raise write_error(path, exc) from None


def _commit_folder(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Move the finished folder ``tmp`` to ``path``: an empty folder there is replaced, a non-empty one only
    with ``overwrite`` (moved aside first, then removed, so ``path`` is never half old, half new)."""
    if path.is_dir() and not path.is_symlink():
        with contextlib.suppress(OSError):
            os.rmdir(path)  # empty: just take its place
    if path.exists() or path.is_symlink():
        if not overwrite or not path.is_dir():
            raise OutputExistsError(f"{path} already exists and is not empty; pass --overwrite to replace it")
        aside = path.parent / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-old-{path.name}"
        os.rename(path, aside)
        os.rename(tmp, path)
        _remove(aside)
        return
    os.rename(tmp, path)


def check_output_folder(path: str | Path, *, overwrite: bool = False, option: str = "-o") -> Path:
    """Check that a folder output (written whole, see ``atomic_output(folder=True)``) may be made at ``path``."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"option {option}: {p} is a file; expected a folder")
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise OutputExistsError(f"option {option}: {p} already exists and is not empty; pass --overwrite to replace it")
    check_output_dir(p)
    return p


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        if tmp.is_dir() and not tmp.is_symlink():
            import shutil

            shutil.rmtree(tmp)
        else:
            tmp.unlink()


@contextlib.contextmanager
def atomic_output(path: str | Path, *, overwrite: bool = False, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it to ``path`` only if the block succeeds.

    The run owns the output while the block runs (:func:`output_lock`: a second gcml run writing the same
    name fails at once); the temporary name (``.gcml-tmp-<pid>-<random>-<name>``) is created exclusively and
    removed on any failure, KeyboardInterrupt included; temporaries of killed earlier runs are removed. The
    final move never replaces a file that appeared meanwhile unless ``overwrite``. An OSError from writing
    (disk full, I/O error) becomes :class:`OutputError` (``disk full writing X``). With ``folder=True`` the
    temporary is an (empty) folder. Parent folders are created.
    """
    p = check_output_path(path, overwrite=overwrite) if not folder else check_output_folder(path, overwrite=overwrite)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create folder {p.parent}: {exc.strerror}") from None
    with output_lock(p):
        if not folder:
            check_output_path(p, overwrite=overwrite)  # another run may have finished it before we locked
        remove_stale_temps(p)
        tmp = new_temp_path(p, folder=folder)
        try:
            yield tmp
            commit_output(tmp, p, overwrite=overwrite)
        except BaseException as exc:
            _remove(tmp)
            if _is_write_failure(exc):
                raise write_error(p, exc) from None
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

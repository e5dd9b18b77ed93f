"""Writing gcml outputs safely: atomic files and folders, output locks, overwrite guards, disk-full errors.

Every output is written under a temporary name beside its final one (``.gcml-tmp-<pid>-<random>-<name>``)
while the run holds a lock on that name, and renamed only when complete, so an interrupted run never
leaves a file that looks finished. Split from :mod:`gcml.io.common` (which re-exports every name here)
so that provenance and HDF5 helpers and the writing machinery each have a module of their own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

from gcml.errors import InputError, OutputBusyError, OutputError, OutputExistsError


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
        raise OutputExistsError(f"{p} already exists; pass `overwrite` to replace it")
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
            raise OutputExistsError(f"{path} already exists and is not empty; pass `overwrite` to replace it")
        aside = path.parent / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-old-{path.name}"
        os.rename(path, aside)
        os.rename(tmp, path)
        _remove(aside)
        return
    os.rename(tmp, path)


def check_output_folder(path: str | Path, *, overwrite: bool = False, option: str = "`out`") -> Path:
    """Check that a folder output (written whole, see ``atomic_output(folder=True)``) may be made at ``path``."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"option {option}: {p} is a file; expected a folder")
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise OutputExistsError(f"option {option}: {p} already exists and is not empty; pass `overwrite` to replace it")
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

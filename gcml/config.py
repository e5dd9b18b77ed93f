"""Configuration files, list syntax and the resolved-config record.

Every command-line option can also be set in a TOML or YAML file passed with ``--config``; explicit
command-line values win over the file, the file wins over the defaults. The resolved configuration is
stored (as JSON) in every output file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gcml.errors import ConfigError


def check_finite_fields(obj: Any) -> None:
    """Refuse NaN and infinity in the float fields (and tuples of floats) of a config dataclass.

    The message names the field in library terms, backquoted (```sky_mag```); the command line shows the
    option that sets it (:func:`gcml.cli.common.user_errors`).
    """
    import dataclasses

    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        vals = v if isinstance(v, (tuple, list)) else (v,)
        for x in vals:
            if isinstance(x, float) and not math.isfinite(x):
                raise ConfigError(f"option `{f.name}`: expected a finite number, got {x}")


def parse_list(text: str | float | int | list | tuple, *, name: str = "value", kind: type = float) -> list:
    """Parse ``"a,b,c"`` or ``"start:stop:step"`` (stop inclusive when on the grid) into a list.

    Parameters
    ----------
    text
        A string such as ``"10,25,50"`` or ``"0.5:14:0.5"``, a single number, or a list.
    name
        How messages name the parameter: in library terms, backquoted (```ages```; the CLI shows its option).
    kind
        ``float``, ``int`` or ``str``.
    """
    if isinstance(text, (list, tuple)):
        items: list = []
        for t in text:
            items.extend(parse_list(t, name=name, kind=kind))
        return items
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return [kind(text)]
    s = str(text).strip()
    if not s:
        raise ConfigError(f"option {name}: empty list; expected 'a,b,c' or 'start:stop:step'")
    out: list = []
    for part in s.split(","):
        part = part.strip()
        if kind is str:
            if part:
                out.append(part)
            continue
        try:
            if ":" in part:
                bits = [float(b) for b in part.split(":")]
                if len(bits) != 3:
                    raise ValueError
                start, stop, step = bits
                if step <= 0 or stop < start:
                    raise ConfigError(
                        f"option {name}: range '{part}' needs start <= stop and step > 0"
                    )
                n = int(math.floor((stop - start) / step + 1e-9)) + 1
                out.extend(kind(round(start + i * step, 12)) for i in range(n))
            else:
                v = float(part)
                if kind is int and v != int(v):
                    raise ValueError
                out.append(kind(v))
        except ValueError:
            raise ConfigError(
                f"option {name}: cannot read '{part}' as a number or a 'start:stop:step' range"
            ) from None
    return out


def parse_range(text: str | list | tuple, *, name: str) -> tuple[float, float]:
    """Parse a closed interval ``"lo:hi"`` or ``"lo,hi"`` (or a 2-list) into floats with lo <= hi."""
    if isinstance(text, (list, tuple)):
        vals = [float(v) for v in text]
    else:
        s = str(text).replace(",", ":")
        try:
            vals = [float(v) for v in s.split(":")]
        except ValueError:
            raise ConfigError(f"option {name}: cannot read '{text}' as 'low:high'") from None
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or not all(math.isfinite(v) for v in vals) or vals[0] > vals[1]:
        raise ConfigError(f"option {name}: expected 'low:high' with low <= high, got '{text}'")
    return vals[0], vals[1]


def _stored_options(p: Path, command: str | None) -> dict[str, Any]:
    """The options a gcml command stored in its HDF5 output (attribute ``options``)."""
    import h5py

    try:
        with h5py.File(p, "r") as f:
            raw = f.attrs.get("options")
    except OSError:
        raise ConfigError(f"config file {p}: not an HDF5 file") from None
    if raw is None:
        raise ConfigError(f"config file {p}: stores no command options (it was made by the Python library, "
                          "by 'gcml merge' or by an older gcml); give a TOML or YAML file")
    opts = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    made_by = opts.pop("command", None)
    if command is not None and made_by != command:
        raise ConfigError(f"config file {p}: was made by 'gcml {made_by}', so its options do not apply to "
                          f"'gcml {command}'")
    return opts


def load_config_file(path: str | Path, command: str | None = None) -> dict[str, Any]:
    """Read a TOML (``.toml``), YAML (``.yaml``/``.yml``) or JSON configuration file into a dict.

    A gcml HDF5 output (``.h5``/``.hdf5``) gives the options its command stored, so that
    ``gcml CMD --config made-before.h5 -o again.h5`` repeats that run (``command``: the command reading it).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p}: not found")
    suffix = p.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return _stored_options(p, command)
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # pragma: no cover - python < 3.11
                import tomli as tomllib
            with open(p, "rb") as fh:
                data = tomllib.load(fh)
        elif suffix in (".yaml", ".yml"):
            import yaml

            with open(p) as fh:
                data = yaml.safe_load(fh) or {}
        elif suffix == ".json":
            data = json.loads(p.read_text())
        else:
            raise ConfigError(f"config file {p}: expected a .toml, .yaml/.yml or .json file, or a gcml .h5 output")
    except ConfigError:
        raise
    except Exception as exc:  # parse errors of the three libraries
        raise ConfigError(f"config file {p}: cannot parse ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a table of option = value pairs at top level")
    return data


def config_section(data: dict[str, Any], command: str) -> dict[str, Any]:
    """Options for ``command`` from a config dict: top-level scalars plus a ``[command]`` table.

    Keys may be written with dashes or underscores.
    """
    out: dict[str, Any] = {}
    for k, v in data.items():
        if not isinstance(v, dict):
            out[k.replace("-", "_")] = v
    for key in (command, command.replace("-", "_")):
        sec = data.get(key)
        if isinstance(sec, dict):
            out.update({k.replace("-", "_"): v for k, v in sec.items()})
    return out


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, Paths, numpy scalars and tuples into JSON-friendly values."""
    import dataclasses

    import numpy as np

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def shard_from_environment(environ: dict[str, str] | None = None) -> tuple[int, int]:
    """``--shard auto``: this SLURM job-array task's shard ``(K, N)``, K counted from 1.

    SLURM numbers array tasks as the user wrote ``--array``: ``--array=0-7`` gives SLURM_ARRAY_TASK_ID
    0..7 and ``--array=1-8`` gives 1..8; either way SLURM_ARRAY_TASK_COUNT is 8. K is the task's position
    in the array, ``(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP + 1``, so both
    numberings (and steps, ``--array=0-14:2``) give shards 1/8 ... 8/8. An array with gaps
    (``--array=1,3,7``) cannot be mapped to shards and is refused.
    """
    import os

    e = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" not in e:
        raise ConfigError("option `shard` auto: SLURM_ARRAY_TASK_ID is not set (not a SLURM job-array task); "
                          "give `shard` K/N")
    try:
        tid = int(e["SLURM_ARRAY_TASK_ID"])
        count = int(e["SLURM_ARRAY_TASK_COUNT"])
        lo = int(e.get("SLURM_ARRAY_TASK_MIN", "0"))
        hi = int(e.get("SLURM_ARRAY_TASK_MAX", str(lo + count - 1)))
        step = int(e.get("SLURM_ARRAY_TASK_STEP", "1") or 1)
    except (KeyError, ValueError):
        raise ConfigError("option `shard` auto: SLURM_ARRAY_TASK_ID/COUNT/MIN are not integers; "
                          "give `shard` K/N") from None
    if step < 1 or (tid - lo) % step or (hi - lo) // step + 1 != count:
        raise ConfigError(f"option `shard` auto: the job array ({lo}-{hi}:{step}, {count} tasks) has gaps; "
                          "use sbatch --array=A-B or give `shard` K/N")
    return (tid - lo) // step + 1, count


def parse_shard_spec(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """Parse ``--shard K/N`` (K counted from 1) into ``(K, N)``; ``auto`` reads the SLURM job-array
    variables (:func:`shard_from_environment`); ``None`` or ``""`` -> ``None``."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, str) and text.strip().lower() == "auto":
        return shard_from_environment()
    if isinstance(text, str):
        try:
            k, n = (int(v) for v in text.split("/"))
        except ValueError:
            raise ConfigError(f"option `shard`: expected 'K/N' such as 2/8, or auto, got '{text}'") from None
    else:
        k, n = (int(v) for v in text)
    if not (n >= 1 and 1 <= k <= n):
        raise ConfigError(f"option `shard`: expected K/N with 1 <= K <= N, got {k}/{n}")
    return k, n

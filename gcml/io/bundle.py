"""Model bundles (``.pt``): plain Python types and tensors only, so ``torch.load(weights_only=True)``
opens them and no code is ever unpickled from a file.

Keys (format ``gcml.model`` 1.1; see docs/formats.md). This module reads and writes the file; the typed
layout, and the reader of version 1.0's Keras-import layout, is :class:`gcml.models.bundle.ModelBundle`:

``format``, ``format_version``, ``gcml_version``, ``created_utc``
``architecture`` (registry name), ``arch_kwargs`` (dict)
``state_dict`` (name -> tensor)
``inputs``: ``channels``, ``units``, ``norm`` (dict of lists/floats, e.g. mean/std per channel)
``targets``: ``names``, ``units``, ``norm``, ``output`` ("scalar" | "map")
``geometry``: what the model expects of a map: ``shape``, ``pixel_scale``, ``pixel_unit``, ``extent``,
    ``kind`` and the MapSet's map attributes (smoothing, flux unit, ...)
``training``: resolved training config; ``provenance``: data path and sha256; ``metrics``: test metrics;
``calibration``: uncertainty calibration (e.g. variance scale); ``extra``: anything else (plain types).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gcml.errors import FormatError, InputError
from gcml.io.common import atomic_output, utc_now

FORMAT = "gcml.model"
FORMAT_VERSION = "1.1"
REQUIRED = ("architecture", "arch_kwargs", "state_dict", "inputs", "targets", "geometry")


#: where the models shipped with the package live (``gcml models list``)
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "models"


def resolve_model_path(path: str | Path) -> Path:
    """``path`` itself, or, when no such file exists and ``path`` is a bare name (no folder), the shipped model
    of that name (``mass-npe-default`` or ``mass-npe-default.pt`` -> ``gcml/data/models/mass-npe-default.pt``)."""
    p = Path(path)
    if p.exists() or len(p.parts) != 1:
        return p
    shipped = SHIPPED_DIR / (p.name if p.suffix == ".pt" else p.name + ".pt")
    return shipped if shipped.is_file() else p


def shipped_models() -> list[str]:
    """Names of the models shipped with the package."""
    return sorted(q.stem for q in SHIPPED_DIR.glob("*.pt")) if SHIPPED_DIR.is_dir() else []


def save_bundle(path: str | Path, bundle: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Write a bundle dict in the layout of :meth:`gcml.models.bundle.ModelBundle.to_dict` atomically (adds
    format, version, gcml version and date)."""
    import torch

    from gcml._version import __version__
    from gcml.config import to_jsonable

    missing = [k for k in (*REQUIRED, "task") if k not in bundle]
    if missing:  # version 1.1 writes one layout: ModelBundle.to_dict()
        raise InputError(f"model bundle for {path}: missing {', '.join(missing)}")
    out = {k: (v if k == "state_dict" else to_jsonable(v)) for k, v in bundle.items()}
    out.update(format=FORMAT, format_version=FORMAT_VERSION, gcml_version=__version__,
               created_utc=bundle.get("created_utc", utc_now()))
    out["state_dict"] = {k: v.detach().cpu().clone() for k, v in bundle["state_dict"].items()}
    with atomic_output(path, overwrite=overwrite) as tmp:
        torch.save(out, tmp)
    return Path(path)


def load_bundle(path: str | Path) -> dict[str, Any]:
    """Load and check a bundle without executing code from the file."""
    import pickle

    import torch

    p = resolve_model_path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a folder; expected a gcml model bundle (.pt file)")
    if not p.is_file():
        raise InputError(f"{p}: model file not found (shipped models, usable by name: "
                         f"{', '.join(shipped_models()) or 'none installed'})")
    with open(p, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"\x89HDF"):
        raise FormatError(f"{p}: is an HDF5 file (a MapSet or snapshot?); expected a gcml model bundle (.pt file)")
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):
        # torch.save writes a zip archive (legacy files: a pickle, protocol byte 0x80)
        raise FormatError(f"{p}: not a PyTorch file (neither a zip archive nor a pickle); "
                          "expected a gcml model bundle (.pt file)")
    try:
        b = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.split(". ")[0]
        raise FormatError(f"{p}: not a readable gcml model bundle ({first[:160]})") from None
    if not isinstance(b, dict) or b.get("format") != FORMAT:
        raise FormatError(f"{p}: not a gcml model bundle (no format='{FORMAT}' entry)")
    major = int(str(b.get("format_version", "0")).split(".")[0])
    if major > int(FORMAT_VERSION.split(".")[0]):
        raise FormatError(f"{p}: model bundle version {b.get('format_version')} is newer than this gcml; upgrade gcml")
    missing = [k for k in REQUIRED if k not in b]
    if missing:
        raise FormatError(f"{p}: model bundle lacks {', '.join(missing)}")
    return b


def describe_bundle(path: Path) -> dict[str, Any]:
    b = load_bundle(path)
    n_params = sum(int(t.numel()) for t in b["state_dict"].values())
    return {
        "file": str(path),
        "format": f"{b['format']} {b['format_version']}",
        "architecture": b["architecture"],
        "arch_kwargs": b["arch_kwargs"],
        "parameters (incl. buffers)": n_params,
        "inputs": {"channels": b["inputs"].get("channels"), "units": b["inputs"].get("units"),
                   **({"transform": norm["transform"]} if (norm := b["inputs"].get("norm") or {}).get("transform")
                      else {})},
        "targets": {"names": b["targets"].get("names"), "units": b["targets"].get("units"),
                    "output": b["targets"].get("output"),
                    **({"scalar_transform": st} if (st := (b["targets"].get("norm") or {}).get("scalar_transform"))
                       else {})},
        **({"preparation": b["preparation"]} if b.get("preparation") else {}),
        "geometry": b["geometry"],
        **({"calibration": b["calibration"]} if b.get("calibration") else {}),
        "metrics": b.get("metrics", {}),
        "provenance": {**b.get("provenance", {}), "gcml_version": b.get("gcml_version"),
                       "created_utc": b.get("created_utc")},
    }

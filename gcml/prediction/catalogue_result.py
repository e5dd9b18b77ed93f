"""The result of :func:`gcml.prediction.catalogue.predict_catalogue` and writing it (JSON and a PNG)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class MassEstimate:
    """One predicted quantity (log10 Msun) with its percentiles.

    Attributes
    ----------
    name : target name in the bundle (e.g. ``log10_mass_total``)
    label : human-readable label
    unit : "dex(Msun)"
    median, p16, p84, p2_5, p97_5 : percentiles of the combined distribution [log10 Msun]
    network_mean, network_std : network output on the observed map at the nominal distance
    bootstrap_std : spread of the network mean over GC resamples (velocity errors included) [dex]
    distance_std : spread of the network mean over distance draws [dex]
    radius_kpc : the radius the mass refers to, when it is an enclosed mass
    """

    name: str
    label: str
    unit: str
    median: float
    p16: float
    p84: float
    p2_5: float
    p97_5: float
    network_mean: float
    network_std: float
    bootstrap_std: float
    distance_std: float
    radius_kpc: float | None = None

    @property
    def minus(self) -> float:
        return self.median - self.p16

    @property
    def plus(self) -> float:
        return self.p84 - self.median


@dataclass
class CataloguePrediction:
    """Result of :func:`predict_catalogue`.

    Attributes
    ----------
    table, model : input catalogue and model bundle paths
    galaxy : name given with ``galaxy`` (or None)
    ra_deg, dec_deg, distance_mpc, distance_err_mpc, vsys_kms : the galaxy values used
    vsys_estimated : True when vsys came from the GCs
    r_e_kpc : effective radius (None if unknown)
    n_gc : GCs in the catalogue; n_gc_in_map : GCs inside the map's field
    r_out_kpc : projected radius of the outermost GC in the map; r_max_kpc : of all GCs
    velocity_dispersion_kms : rms GC velocity about v_sys (errors subtracted in quadrature)
    map_dispersion_kms : count-weighted mean of the sigma map (compared with the training maps)
    masses : target name -> MassEstimate
    tme : Watkins et al. (2010) tracer mass estimate within r_out (percentiles, log10 Msun)
    maps : (3, H, W) v, sigma, count maps of the observed GCs (before any fill)
    network_input : (C, H, W) what went into the network (the model's channels, fill applied)
    channels : names of the network_input channels
    geometry : the map geometry used (bundle's)
    warnings : inputs outside the training range, estimated quantities
    notes : assumptions made (e.g. the distance error)
    """

    table: Path
    model: Path | None
    galaxy: str | None
    ra_deg: float
    dec_deg: float
    distance_mpc: float
    distance_err_mpc: float
    vsys_kms: float
    vsys_estimated: bool
    r_e_kpc: float | None
    n_gc: int
    n_gc_in_map: int
    r_out_kpc: float
    r_max_kpc: float
    velocity_dispersion_kms: float
    map_dispersion_kms: float
    masses: dict[str, MassEstimate]
    tme: dict[str, float]
    maps: np.ndarray
    network_input: np.ndarray
    channels: list[str]
    geometry: dict[str, Any]
    fill: str | None
    n_samples: int
    seed: int
    columns: dict[str, str | None] = field(default_factory=dict)
    training_ranges: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain types for JSON (maps as nested lists)."""
        from gcml._version import __version__

        d = {k: v for k, v in asdict(self).items() if k not in ("masses", "maps", "network_input")}
        d["table"] = str(self.table)
        d["model"] = str(self.model) if self.model is not None else None
        d["masses"] = {k: {**asdict(m), "minus": m.minus, "plus": m.plus} for k, m in self.masses.items()}
        d["maps"] = {"channels": ["v", "sigma", "count"], "units": ["km/s", "km/s", ""],
                     "data": np.round(self.maps.astype(float), 4).tolist(), "origin": "lower",
                     "x_axis": "east (xi)", "y_axis": "north (eta)"}
        d["network_input"] = {"channels": self.channels, "data": np.round(self.network_input.astype(float), 4).tolist()}
        d["format"] = "gcml.catalogue-prediction"
        d["format_version"] = "1.0"
        d["gcml_version"] = __version__
        return _finite(d)


def _finite(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python numbers."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def plot_prediction_maps(pred: CataloguePrediction, path: str | Path, *, overwrite: bool = False) -> Path:
    """PNG of the V, sigma and count maps that went into the network (and the GC positions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gcml.io.common import atomic_output

    e = float(pred.geometry["extent_kpc"]) / 2.0
    ext = (-e, e, -e, e)
    panels = [("V [km/s]", pred.maps[0], "RdBu_r"), ("sigma [km/s]", pred.maps[1], "viridis"),
              ("count (kernel-weighted GCs)", pred.maps[2], "Greys")]
    for c, name in enumerate(pred.channels):  # show the network's input where a fill changed it
        if pred.fill is not None and name in ("v", "sigma"):
            k = 0 if name == "v" else 1
            panels[k] = (panels[k][0] + f" (fill {pred.fill})", pred.network_input[c], panels[k][2])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    for ax, (title, img, cmap) in zip(axes, panels, strict=True):
        kw = {}
        if cmap == "RdBu_r":
            lim = float(np.max(np.abs(img))) or 1.0
            kw = {"vmin": -lim, "vmax": lim}
        im = ax.imshow(img, origin="lower", extent=ext, cmap=cmap, **kw)
        ax.set_title(title)
        ax.set_xlabel("x = east [kpc]")
        fig.colorbar(im, ax=ax, shrink=0.85)
    axes[0].set_ylabel("y = north [kpc]")
    m = pred.masses.get("log10_mass_total") or next(iter(pred.masses.values()))
    fig.suptitle(f"{pred.galaxy or pred.table.name}: {pred.n_gc_in_map} GCs in the map, D = {pred.distance_mpc:g} Mpc; "
                 f"{m.label} = {m.median:.2f} (+{m.plus:.2f} / -{m.minus:.2f}) dex")
    p = Path(path)
    with atomic_output(p, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return p


def save_prediction(pred: CataloguePrediction, out_dir: str | Path, *, overwrite: bool = False,
                    command: str | None = None) -> dict[str, Path]:
    """Write ``prediction.json`` and ``maps.png`` into ``out_dir``; returns their paths.

    Raises
    ------
    OutputExistsError : a file exists and ``overwrite`` is False (checked before anything is written).
    """
    from gcml.io.common import atomic_output, check_output_path, command_line, utc_now

    out = Path(out_dir)
    paths = {"json": out / "prediction.json", "png": out / "maps.png"}
    for p in paths.values():
        check_output_path(p, overwrite=overwrite)
    d = pred.to_dict()
    d["created_utc"] = utc_now()
    d["command"] = command if command is not None else command_line()
    with atomic_output(paths["json"], overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(d, indent=1))
    plot_prediction_maps(pred, paths["png"], overwrite=overwrite)
    return paths

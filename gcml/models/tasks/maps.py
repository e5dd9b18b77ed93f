"""Training tasks with per-pixel map targets: pi-DOC's mass maps, alone or with age and distance.

Chardin & Bianchini (2021, MNRAS 504, 5656; "pi-DOC") train an encoder-decoder to turn a V-band image of a
globular cluster into its projected mass map (targets ``/truth/mass``: Msun per pixel) and a CNN to predict
age and distance. These tasks plug both into gcml's one training loop (:mod:`gcml.training.loop`)
and its one loader of trained models (:class:`gcml.models.trained.TrainedModel`):

``map-regression`` (``pidoc-ced``, ``pidoc-ced-lite``)
    targets ``["mass"]`` from ``/truth/mass``.
``map-scalar-regression`` (``pidoc-net``)
    targets ``["mass", "distance", "age"]``: the map from ``/truth`` and the scalars from ``/targets``;
    the network returns ``{"map": (B, k, H, W), "scalar": (B, k T)}``.

Inputs: the V-band flux per pixel [Lsun/kpc^2] is read as ``log10(max(F, 1e-9))`` (pi-DOC Section 2.3
uses log10 F too) or, configured with ``input_transform="softlog10"`` (noisy training images), as
``log10(b) + asinh(F / 2b) / ln 10`` with the softening ``b`` at the images' noise level
(:mod:`gcml.models.preparation`), and standardised with the training split's mean and standard deviation.

Scalars by construction physical (:mod:`gcml.models.physical_outputs`): with ``physical_outputs`` (the
default for new models) distance is learnt as ``ln d`` and age as ``logit`` on (0, 14.5] Gyr, so every
point estimate and interval lies inside the physical range; bundles without ``targets.norm.scalar_transform``
(written before it existed) decode their scalars linearly, as they were trained.

Targets and loss (``docs/pidoc.md`` gives the measurement behind the default)
    Each pixel's mass is encoded as ``y = (log10(max(M, floor)) - mu) / s`` with ``mu, s`` the mean and
    standard deviation of the training split's log10 pixel masses (``floor`` = 1e-6 Msun per pixel, far
    below any pixel the smoothed maps hold inside the field). With ``loss="gaussian_nll"`` (default) the
    map network predicts a mean and a log-variance per pixel (Gaussian negative log-likelihood, Nix &
    Weigend 1994); with ``"mse"`` one channel and the squared error. Both add a total-mass term,
    ``w ((log10 sum_i M_pred,i - log10 sum_i M_i) / s)^2`` with ``w = TOTAL_WEIGHT``: per-pixel losses in
    log space do not constrain the sum, which is dominated by the bright centre, and the total mass is the
    number an astronomer quotes. Scalars (distance, age) are standardised and use a Gaussian NLL (or MSE).

Uncertainties (calibrated on the validation split, as for scalar tasks)
    per-pixel: the log-variance scaled by one factor ``k = mean(z^2)`` over validation pixels;
    total mass: the rms of ``log10 M_pred - log10 M_true`` of the validation maps (dex; homoscedastic);
    scalars: one variance factor per target.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from gcml.errors import FormatError, InputError
from gcml.models import physical_outputs as po
from gcml.models.tasks.base import CHANNEL_ALIASES, LOG_FLUX_UNITS, LOGVAR_MAX, LOGVAR_MIN, Task

#: Weight of the total-mass term of the map loss (see the module docstring and docs/pidoc.md).
TOTAL_WEIGHT = 1.0
#: Pixel masses [Msun] below this are raised to it before the logarithm.
MASS_FLOOR = 1e-6
_LN10 = math.log(10.0)


def log10_sum_exp10(a: torch.Tensor) -> torch.Tensor:
    """``log10(sum_i 10^a_i)`` over all but the first axis, computed stably (log-sum-exp)."""
    return torch.logsumexp(a.flatten(1) * _LN10, dim=1) / _LN10


class MapScalarRegressionTask(Task):
    """A per-pixel map target from ``/truth`` (first target) and optional scalar targets from ``/targets``.

    Parameters
    ----------
    channels : MapSet channels read (``["flux"]``)
    targets : the map target name first (``"mass"``), then scalar names (``"distance"``, ``"age"``)
    loss : ``gaussian_nll`` (mean + log-variance per pixel and per scalar) or ``mse``
    """

    name: ClassVar[str] = "map-scalar-regression"
    source: ClassVar[str] = "truth"
    needs_truth: ClassVar[bool] = True
    max_eval_batch: ClassVar[int | None] = 64
    #: whether the network returns {"map", "scalar"} (True) or only the map tensor
    joint: ClassVar[bool] = True
    #: /meta fields whose training-split ranges the bundle records (prediction's out-of-range warnings)
    range_meta: ClassVar[tuple[str, ...]] = ("lum_v_fov", "mass_fov", "psf_fwhm", "distance", "r_half_light_pc")

    def __init__(self, channels, targets, loss: str = "gaussian_nll", channel_units=None, target_units=None):
        super().__init__(channels, targets, loss, channel_units)
        if loss not in ("gaussian_nll", "mse"):
            raise InputError(f"loss '{loss}' is not available for map targets; use gaussian_nll or mse")
        if not self.targets:
            raise InputError("a map task needs a map target (e.g. mass)")
        self.map_name = self.targets[0]
        self.scalar_names = self.targets[1:]
        if not self.joint and self.scalar_names:
            raise InputError(f"task '{self.name}' predicts one map; got extra targets {', '.join(self.scalar_names)} "
                             "(use a joint model such as pidoc-net)")
        if self.joint and not self.scalar_names:
            raise InputError(f"task '{self.name}' needs scalar targets after '{self.map_name}' (e.g. distance,age)")
        self.target_units = list(target_units or ["Msun"] + [""] * len(self.scalar_names))
        self.shape = (0, 0)
        self.mass_floor = MASS_FLOOR
        self.total_weight = TOTAL_WEIGHT
        self.pix_mean, self.pix_std = 0.0, 1.0
        t = len(self.scalar_names)
        self.y_offset, self.y_scale = np.zeros(t), np.ones(t)
        self.y_min, self.y_max = np.zeros(t), np.ones(t)
        self.pix_variance_scale = 1.0
        self.total_sigma_dex = float("nan")
        self.variance_scale = np.ones(t)
        self.sigma_const = np.ones(t)
        self.training_range: dict[str, list[float]] = {}
        self.perceptual: torch.nn.Module | None = None
        self.perceptual_weight = 0.0
        #: per scalar: "none", "log" or "logit:LO:HI" (gcml.models.physical_outputs); "none" decodes linearly
        self.scalar_transform = ["none"] * t
        self._requested_input = ("log10", 0.0)

    def configure(self, *, input_transform: str = "log10", softening: float = 0.0,
                  physical_outputs: bool = True) -> None:
        """Training choices of a new model: the flux transform (``log10`` or ``softlog10`` with ``softening``
        [Lsun/kpc^2]) and whether scalars are learnt in their parametrised, physical space."""
        from gcml.models.preparation import check_transform

        check_transform(input_transform)
        if input_transform == "softlog10" and not (math.isfinite(softening) and softening > 0):
            raise InputError(f"the softlog10 input transform needs a softening > 0 [Lsun/kpc2], got {softening}")
        self._requested_input = (input_transform, float(softening))
        self.scalar_transform = ([po.DEFAULT_SCALAR_TRANSFORMS.get(n, "none") for n in self.scalar_names]
                                 if physical_outputs else ["none"] * len(self.scalar_names))

    def set_perceptual(self, loss_module: torch.nn.Module, weight: float) -> None:
        """Add pi-DOC's perceptual loss: ``weight`` x the mean squared difference of VGG16 features of the
        predicted and true standardised log-mass maps (see :mod:`gcml.models.vgg`)."""
        self.perceptual = loss_module
        self.perceptual_weight = float(weight)

    # ---------------------------------------------------------------------------------- set-up
    @property
    def k(self) -> int:
        """Outputs per quantity: 2 (mean, log-variance) for gaussian_nll, 1 for mse."""
        return 2 if self.loss_name == "gaussian_nll" else 1

    @property
    def n_outputs(self) -> int:  # type: ignore[override]
        return self.k

    @property
    def n_pix(self) -> int:
        return int(self.shape[0] * self.shape[1])

    def check_header(self, hdr: dict[str, Any], path: Any) -> None:
        self.channels = [c if c in hdr["channels"] else CHANNEL_ALIASES.get(c, c) for c in self.channels]
        missing = [c for c in self.channels if c not in hdr["channels"]]
        if missing:
            raise InputError(f"{path}: channel(s) {', '.join(missing)} not in the MapSet "
                             f"(it has {', '.join(hdr['channels'])})")
        if self.map_name not in hdr["truth"]:
            raise InputError(f"{path}: /truth/{self.map_name} not in the MapSet (it has "
                             f"{', '.join(hdr['truth']) or 'none'}); map models train on mock-observe photometry")
        missing = [t for t in self.scalar_names if t not in hdr["targets"]]
        if missing:
            raise InputError(f"{path}: /targets/{missing[0]} not in the MapSet (it has {', '.join(hdr['targets'])})")
        units = [hdr["units"][hdr["channels"].index(c)] for c in self.channels]
        log_kind, soft = self._requested_input
        self.input_transform = [log_kind if u in LOG_FLUX_UNITS else "none" for u in units]
        self.input_softening = soft if log_kind == "softlog10" else 0.0
        self.shape = (int(hdr["shape"][0]), int(hdr["shape"][1]))

    def network_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.joint:  # pidoc-net takes n_targets and uncertainty instead of n_outputs
            kwargs = {k: v for k, v in kwargs.items() if k != "n_outputs"}
            kwargs.update(n_targets=len(self.scalar_names), uncertainty=self.loss_name == "gaussian_nll")
        return kwargs

    def target_array(self, ms: Any, path: Any) -> np.ndarray:
        """Rows ``[mass map flattened (H W), scalars...]``; also fits the pixel normalisation and records
        the training ranges. (Streaming data call the same pieces block by block.)"""
        m = np.asarray(ms.truth[self.map_name], np.float32)
        self.begin_truth(m.shape, path)
        self.add_truth_block(m, np.arange(len(m)), ms.split, path)
        self.end_truth()
        use = ms.split <= 2
        cols = [m.reshape(len(m), -1)]
        for t in self.scalar_names:
            y = ms.targets[t]
            if not np.isfinite(y[use]).all():
                raise InputError(f"{path}: /targets/{t} has NaN or inf values "
                                 f"(first in map {int(np.flatnonzero(~np.isfinite(y) & use)[0])})")
            cols.append(y[:, None].astype(np.float32))
        tr = ms.split == 0
        flux = ms.maps[tr, 0].astype(np.float64).sum(axis=(1, 2)) if tr.any() else np.zeros(0)
        self.set_training_range(flux, ms.meta, ms.targets, ms.split)
        return np.concatenate(cols, axis=1)

    # the map target, block by block (in memory: one block; streaming: the file's chunks)
    def begin_truth(self, shape: tuple[int, ...], path: Any) -> None:
        if len(shape) != 4 or shape[1] != 1:
            raise FormatError(f"{path}: /truth/{self.map_name} must have shape (N, 1, H, W), got {tuple(shape)}")
        self.shape = (int(shape[2]), int(shape[3]))
        self._pix_sums = [0.0, 0.0, 0]

    def add_truth_block(self, m: np.ndarray, rows: np.ndarray, split: np.ndarray, path: Any) -> None:
        """Check the maps ``m`` of file rows ``rows`` (NaN, inf, negative masses in the used splits) and
        add the training rows' log10 pixel masses to the normalisation sums."""
        sp = split[rows]
        use = sp <= 2
        bad = ~np.isfinite(m).all(axis=(1, 2, 3)) & use
        if bad.any():
            raise InputError(f"{path}: /truth/{self.map_name} has NaN or inf values (first in map "
                             f"{int(rows[np.flatnonzero(bad)[0]])})")
        if (m[use] < 0).any():
            raise InputError(f"{path}: /truth/{self.map_name} has negative pixel masses")
        tr = np.flatnonzero(sp == 0)
        for lo in range(0, len(tr), 256):
            lm = np.log10(np.maximum(m[tr[lo:lo + 256]].reshape(-1).astype(np.float64), self.mass_floor))
            self._pix_sums[0] += lm.sum()
            self._pix_sums[1] += (lm**2).sum()
            self._pix_sums[2] += lm.size

    def end_truth(self) -> None:
        """Pixel log-mass mean and standard deviation of the training split."""
        s1, s2, n = self._pix_sums
        if n == 0:
            raise InputError("map task: the training split is empty")
        mean = s1 / n
        self.pix_mean = float(mean)
        self.pix_std = float(math.sqrt(max(s2 / n - mean**2, 1e-12)))

    def set_training_range(self, flux_total_train: np.ndarray, meta: dict[str, np.ndarray],
                           targets: dict[str, np.ndarray], split: np.ndarray) -> None:
        """Ranges of the training split, for prediction's out-of-range warnings (pi-DOC Fig. 10);
        ``flux_total_train``: the summed input flux of each training map."""
        tr = split == 0
        if not tr.any():
            return
        rng: dict[str, list[float]] = {}
        if self.input_transform and self.input_transform[0] in ("log10", "softlog10"):
            rng["log10_flux_total"] = _minmax(np.log10(np.maximum(flux_total_train, 1e-300)))
        for key in self.range_meta:
            if key in meta:
                mm = _minmax(np.asarray(meta[key], float)[tr])
                if all(np.isfinite(mm)):  # e.g. no r_half_light_pc for N-body files without luminosities
                    rng[key] = mm
        for key in ("age", "distance"):
            if key in targets:
                rng[key] = _minmax(np.asarray(targets[key], float)[tr])
        self.training_range = rng

    def fit(self, stats) -> None:
        super().fit(stats)
        sp = stats.split if stats.split is not None else None
        train = sp == 0 if sp is not None else slice(None)
        known = sp <= 2 if sp is not None else slice(None)
        units = stats.units
        self.target_units = ["Msun"] + [units.get(t, "") for t in self.scalar_names]
        for j, name in enumerate(self.scalar_names):
            y = np.asarray(stats.targets[name], float)
            self.y_min[j], self.y_max[j] = float(y[known].min()), float(y[known].max())
            po.check_in_range(self.scalar_transform[j], y[known], name)
            z = po.forward(self.scalar_transform[j], y[train])
            sd = float(z.std())
            self.y_offset[j] = float(z.mean())
            self.y_scale[j] = sd if sd > 0 else 1.0

    # ---------------------------------------------------------------------------------- encode / loss
    def _t(self, v, device) -> torch.Tensor:
        return torch.as_tensor(np.asarray(v, np.float32), device=device)

    def _z(self, y: torch.Tensor) -> torch.Tensor:
        """Physical scalars (B, T) -> the unbounded space they are learnt in."""
        if po.is_identity(self.scalar_transform):
            return y
        return torch.stack([po.forward(k, y[:, j]) for j, k in enumerate(self.scalar_transform)], 1)

    def encode_y(self, y: torch.Tensor) -> torch.Tensor:
        p = self.n_pix
        pix = (torch.log10(y[:, :p].clamp_min(self.mass_floor)) - self.pix_mean) / self.pix_std
        if not self.scalar_names:
            return pix
        sc = (self._z(y[:, p:]) - self._t(self.y_offset, y.device)) / self._t(self.y_scale, y.device)
        return torch.cat([pix, sc], 1)

    def collect(self, out: Any) -> torch.Tensor:
        if isinstance(out, dict):
            return torch.cat([out["map"].float().flatten(1), out["scalar"].float()], 1)
        return out.float().flatten(1)

    def _parts(self, out: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(pixel mean, pixel logvar, scalar mean, scalar logvar), pixels flattened to (B, H W)."""
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            out = self.collect(out)
        p, k, t = self.n_pix, self.k, len(self.scalar_names)
        mu = out[:, :p]
        lv = out[:, p:2 * p].clamp(LOGVAR_MIN, LOGVAR_MAX) if k == 2 else None
        if not t:
            return mu, lv, None, None
        sc = out[:, k * p:]
        return mu, lv, sc[:, :t], (sc[:, t:2 * t].clamp(LOGVAR_MIN, LOGVAR_MAX) if k == 2 else None)

    def loss(self, out: Any, y_enc: torch.Tensor) -> torch.Tensor:
        mu, lv, smu, slv = self._parts(out)
        p = self.n_pix
        yp = y_enc[:, :p]
        if lv is None:
            loss = torch.mean((mu - yp) ** 2)
        else:
            loss = 0.5 * torch.mean(lv + (yp - mu) ** 2 * torch.exp(-lv))
        if self.total_weight:
            s, m0 = self.pix_std, self.pix_mean
            d = (log10_sum_exp10(mu * s + m0) - log10_sum_exp10(yp * s + m0)) / s
            loss = loss + self.total_weight * torch.mean(d**2)
        if self.perceptual is not None and self.perceptual_weight:
            h, w = self.shape
            loss = loss + self.perceptual_weight * self.perceptual(mu.reshape(-1, 1, h, w), yp.reshape(-1, 1, h, w))
        if smu is not None:
            ys = y_enc[:, p:]
            if slv is None:
                loss = loss + torch.mean((smu - ys) ** 2)
            else:
                loss = loss + 0.5 * torch.mean(slv + (ys - smu) ** 2 * torch.exp(-slv))
        return loss

    # ---------------------------------------------------------------------------------- decode
    def decode_parts(self, out: Any) -> dict[str, torch.Tensor]:
        """Physical predictions: ``log10_map`` (B, H W) [dex Msun/px], ``log10_map_std`` (calibrated),
        ``log10_total`` (B,), ``log10_total_std`` (B,), ``scalar`` (B, T), ``scalar_std`` (B, T: the
        delta-method 1-sigma), ``scalar_lo`` / ``scalar_hi`` (B, T: the 68 % interval, inside the physical
        range), ``scalar_z`` / ``scalar_z_std`` (the learnt space)."""
        mu, lv, smu, slv = self._parts(out)
        s, m0 = self.pix_std, self.pix_mean
        lm = mu * s + m0
        res = {"log10_map": lm, "log10_total": log10_sum_exp10(lm)}
        if lv is not None:
            res["log10_map_std"] = torch.exp(0.5 * lv) * s * math.sqrt(self.pix_variance_scale)
        else:
            res["log10_map_std"] = torch.full_like(lm, float("nan"))
        res["log10_total_std"] = torch.full_like(res["log10_total"], self.total_sigma_dex)
        if smu is not None:
            yo, ys = self._t(self.y_offset, mu.device), self._t(self.y_scale, mu.device)
            z = smu * ys + yo
            if slv is not None:
                sz = torch.exp(0.5 * slv) * ys * torch.sqrt(self._t(self.variance_scale, mu.device))
            else:
                sz = self._t(self.sigma_const, mu.device).expand_as(z)
            res["scalar_z"], res["scalar_z_std"] = z, sz
            if po.is_identity(self.scalar_transform):
                res["scalar"], res["scalar_std"] = z, sz
                res["scalar_lo"], res["scalar_hi"] = z - sz, z + sz
            else:
                kinds = list(enumerate(self.scalar_transform))
                res["scalar"] = torch.stack([po.inverse(k, z[:, j]) for j, k in kinds], 1)
                res["scalar_std"] = torch.stack([po.derivative(k, z[:, j]).abs() * sz[:, j] for j, k in kinds], 1)
                res["scalar_lo"] = torch.stack([po.inverse(k, z[:, j] - sz[:, j]) for j, k in kinds], 1)
                res["scalar_hi"] = torch.stack([po.inverse(k, z[:, j] + sz[:, j]) for j, k in kinds], 1)
        return res

    def decode(self, out: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) rows laid out like the targets: log10 pixel masses, then the scalars."""
        d = self.decode_parts(out)
        if "scalar" in d:
            return torch.cat([d["log10_map"], d["scalar"]], 1), torch.cat([d["log10_map_std"], d["scalar_std"]], 1)
        return d["log10_map"], d["log10_map_std"]

    def truth(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Target rows -> (log10 pixel masses, log10 total mass, scalars or None), float64."""
        p = self.n_pix
        m = y[:, :p].double()
        lm = torch.log10(m.clamp_min(self.mass_floor))
        lt = torch.log10(m.sum(1).clamp_min(1e-300))
        return lm, lt, (y[:, p:].double() if self.scalar_names else None)

    def calibrate(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        self.pix_variance_scale = 1.0
        self.total_sigma_dex = float("nan")
        self.variance_scale = np.ones(len(self.scalar_names))
        self.sigma_const = np.ones(len(self.scalar_names))
        d = self.decode_parts(out)
        lm, lt, ys = self.truth(y)
        if self.k == 2:
            z = (lm - d["log10_map"].double()) / d["log10_map_std"].double()
            self.pix_variance_scale = float((z**2).mean())
        self.total_sigma_dex = float(torch.sqrt(((d["log10_total"].double() - lt) ** 2).mean()))
        if ys is not None:
            r = self._z(ys) - d["scalar_z"].double()
            if self.k == 2:
                self.variance_scale = ((r / d["scalar_z_std"].double()) ** 2).mean(0).numpy()
            else:
                self.sigma_const = torch.sqrt((r**2).mean(0)).numpy()
        return self.calibration()

    def calibration(self) -> dict[str, Any]:
        c = {"method": "on the val split: pixel variance factor, rms total-mass error, scalar variance factors",
             "pixel_variance_scale": float(self.pix_variance_scale), "total_sigma_dex": float(self.total_sigma_dex)}
        if self.scalar_names:
            c["variance_scale"] = [float(v) for v in self.variance_scale]
            c["sigma"] = [float(v) for v in self.sigma_const]
        return c

    # ---------------------------------------------------------------------------------- metrics
    def quick_metrics(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Validation loss and per-pixel log10 mass MAE/RMSE/bias (dex), total-mass MAE (dex)."""
        loss = float(self.loss(out, self.encode_y(y)))
        d = self.decode_parts(out)
        lm, lt, _ = self.truth(y)
        r = d["log10_map"].double() - lm
        return {"loss": loss, "mae": float(r.abs().mean()), "rmse": float(torch.sqrt((r**2).mean())),
                "bias": float(r.mean()), "total_mae_dex": float((d["log10_total"].double() - lt).abs().mean())}

    # ---------------------------------------------------------------------------------- bundle
    def bundle_entries(self) -> dict[str, Any]:
        return {
            "inputs": {"channels": self.channels, "units": self.channel_units,
                       "norm": {"kind": "standardise", "mean": [float(v) for v in self.x_mean],
                                "std": [float(v) for v in self.x_std], **self._norm_entries()}},
            "targets": {"names": self.targets, "units": self.target_units,
                        "output": "map+scalar" if self.joint else "map", "source": "truth+targets",
                        "loss": self.loss_name,
                        "norm": {"map": {"transform": "log10", "floor": self.mass_floor, "mean": self.pix_mean,
                                         "std": self.pix_std, "shape": list(self.shape),
                                         "total_weight": self.total_weight},
                                 "offset": [float(v) for v in self.y_offset],
                                 "scale": [float(v) for v in self.y_scale],
                                 "data_min": [float(v) for v in self.y_min],
                                 "data_max": [float(v) for v in self.y_max],
                                 "scalar_transform": list(self.scalar_transform)}},
            "calibration": self.calibration(),
            "training_range": self.training_range,
            "task": self.name,
        }

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any]) -> MapScalarRegressionTask:
        try:
            task, tgt, cal = cls._from_bundle_common(bundle)
            mn = tgt["norm"]["map"]
            task.mass_floor, task.pix_mean, task.pix_std = float(mn["floor"]), float(mn["mean"]), float(mn["std"])
            task.shape = (int(mn["shape"][0]), int(mn["shape"][1]))
            task.total_weight = float(mn.get("total_weight", TOTAL_WEIGHT))
            task.pix_variance_scale = float(cal.get("pixel_variance_scale", 1.0))
            task.total_sigma_dex = float(cal.get("total_sigma_dex", float("nan")))
            task.training_range = dict(bundle.get("training_range") or {})
            task.scalar_transform = [str(k) for k in tgt["norm"].get("scalar_transform",
                                                                     ["none"] * len(task.scalar_names))]
            for k in task.scalar_transform:
                po.forward(k, np.ones(1))  # an unknown transform is refused here, not at the first prediction
            if len(task.scalar_transform) != len(task.scalar_names):
                raise ValueError("scalar_transform and the scalar targets differ in length")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FormatError(f"model bundle: map-task normalisation is incomplete ({exc})") from None
        return task


class MapRegressionTask(MapScalarRegressionTask):
    """One per-pixel map target (``pidoc-ced``, ``pidoc-ced-lite``); see :class:`MapScalarRegressionTask`."""

    name: ClassVar[str] = "map-regression"
    joint: ClassVar[bool] = False


def _minmax(v: np.ndarray) -> list[float]:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return [float(v.min()), float(v.max())] if len(v) else [float("nan"), float("nan")]


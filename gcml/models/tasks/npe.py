"""The task of ``mass-npe``: GC catalogues in, a posterior over mass targets out (its data source for
training is :class:`gcml.training.npe_data.CatalogueData`).

The task plugs the neural posterior estimator (:mod:`gcml.models.npe`) into gcml's one training loop:

* inputs are the MapSet's GC catalogues (``/catalogue``, :mod:`gcml.io.catalogues`), batched as padded
  tensors ``(B, N_max, 6)`` (x, y, v_los, v_err, in_map, valid) by the data source; each global
  batch is padded to its own longest catalogue, the same on every DistributedDataParallel rank;
* targets are standardised with the training split's mean and standard deviation (as the Gaussian CNN
  heads), and the loss is the flow's negative log-likelihood of the standardised targets
  (``-log q(y' | catalogue)``, averaged over the batch): maximum likelihood on simulations, i.e. neural
  posterior estimation;
* the network is called as ``net(catalogues, y_standardised)`` (:attr:`CatalogueNPETask.takes_targets`);
  in eval mode it also returns the mean and standard deviation of posterior draws, which the loop's
  metrics (MAE, scatter, coverage of mean +- z std) read through :meth:`decode`. Full posteriors
  (samples) come from the model's ``sample`` method; ``gcml evaluate`` scores them with SBC and TARP.

Maps whose catalogue has fewer than :data:`MIN_GC` GCs, or no GC inside the map (no R_out), are left out
of every split (their number is in ``gcml.training.npe_data.CatalogueData.n_excluded``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from gcml.errors import InputError
from gcml.models.tasks.base import DataStats
from gcml.models.tasks.scalar import ScalarRegressionTask

#: Fewest GCs a catalogue needs to be used in training and evaluation.
MIN_GC = 5
#: N at which the spread calibration's slope term vanishes (``ln(N / SPREAD_N0)``)
SPREAD_N0 = 100.0
#: validation catalogues needed to fit an N-dependence of the spread (else one factor per target)
SPREAD_MIN_SLOPE = 50
#: catalogues a refit of the spread on posterior ranks needs (gcml models calibrate,
#: :func:`gcml.evaluation.recalibrate.refit_spread`)
REFIT_MIN = 200
#: bins of N (equal numbers of catalogues) in which the refit makes the posterior ranks uniform
REFIT_N_BINS = 4
CATALOGUE_UNITS = ["kpc", "kpc", "km/s", "km/s", "", ""]
#: random stream (``gcml.random.item_rng``) of the systematic term's Gaussian convolution of posterior draws
SYSTEMATIC_STREAM = 0x5359


class CatalogueNPETask(ScalarRegressionTask):
    """Posterior of scalar targets from GC catalogues (see the module docstring)."""

    name: ClassVar[str] = "catalogue-npe"
    source: ClassVar[str] = "targets"
    #: the data layer reads /catalogue instead of /maps
    input_kind: ClassVar[str] = "catalogue"
    #: the loop calls the network with the standardised targets (it returns their negative log-likelihood)
    takes_targets: ClassVar[bool] = True

    def __init__(self, channels, targets, loss: str = "flow_nll", channel_units=None, target_units=None):
        from gcml.models.npe import CATALOGUE_COLUMNS

        if loss not in ("flow_nll", "gaussian_nll"):
            raise InputError(f"loss '{loss}' is not available for mass-npe: it is trained by the flow's "
                             "negative log-likelihood (leave `loss` at its default)")
        if list(channels) != list(CATALOGUE_COLUMNS):
            raise InputError(f"mass-npe reads GC catalogues ({', '.join(CATALOGUE_COLUMNS)}), not map channels "
                             f"{', '.join(channels)}; leave `channels` out")
        super().__init__(channels, targets, "gaussian_nll", channel_units=CATALOGUE_UNITS, target_units=target_units)
        self.loss_name = "flow_nll"
        self.min_gc = MIN_GC
        self.spread = np.zeros((len(self.targets), 2))
        #: where the spread was refitted on posterior ranks (``gcml models calibrate``); None: on the val split only
        self.spread_refit: dict[str, Any] | None = None
        #: correlation between the targets' systematic shifts (``calibration.systematic_correlation``); None:
        #: independent
        self.systematic_corr: np.ndarray | None = None

    @property
    def n_outputs(self) -> int:  # type: ignore[override]
        return 1 + 2 * len(self.targets)

    def check_header(self, hdr: dict[str, Any], path: Any) -> None:
        from gcml.io.catalogues import has_catalogues

        missing = [t for t in self.targets if t not in hdr["targets"]]
        if missing:
            raise InputError(f"{path}: /targets/{missing[0]} not in the MapSet (it has {', '.join(hdr['targets'])})")
        if not has_catalogues(path):
            raise InputError(f"{path}: has no GC catalogues (/catalogue); mass-npe trains on MapSets made by "
                             "gcml simulate-maps with catalogues (the default)")

    def network_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: v for k, v in kwargs.items() if k not in ("in_channels", "n_outputs")}
        kwargs["n_targets"] = len(self.targets)
        return kwargs

    def encode_x(self, x: torch.Tensor, *, transformed: bool = False) -> torch.Tensor:
        return x  # the network scales its inputs itself (fixed scales, stored as architecture arguments)

    def fit(self, stats: DataStats) -> None:
        """Ranges as the scalar task; every target standardised with the training split's mean and std."""
        super().fit(stats)
        sp = np.asarray(stats.split)
        for j, name in enumerate(self.targets):
            y = np.asarray(stats.targets[name], float)[sp == 0]
            sd = float(y.std())
            self.y_offset[j] = float(y.mean())
            self.y_scale[j] = sd if sd > 0 else 1.0
        self._yo = None

    def loss(self, out: torch.Tensor, y_enc: torch.Tensor) -> torch.Tensor:
        return out[:, 0].float().mean()

    def decode(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (calibrated) standard deviation of the posterior draws behind an eval-mode output,
        physical units."""
        d = len(self.targets)
        if out.shape[1] < 1 + 2 * d:
            raise InputError("mass-npe: posterior summaries need the network in eval mode")
        yo, ys = self._ytensors(out.device)
        std = out[:, 1 + d:1 + 2 * d] * ys
        if out.shape[1] >= 2 + 2 * d:  # outputs that carry N (since the spread calibration)
            std = std * self.spread_scale(out[:, 1 + 2 * d])
        if np.any(self.systematic):
            std = torch.sqrt(std**2 + torch.as_tensor(self.systematic, dtype=torch.float32, device=out.device) ** 2)
        return out[:, 1:1 + d] * ys + yo, std

    # ------------------------------------------------------------------ N-dependent spread calibration
    def spread_scale(self, n_gc: torch.Tensor) -> torch.Tensor:
        """Factor (B, D) applied to the posterior's spread about its mean for catalogues of ``n_gc`` GCs:
        ``s_j(N) = exp(a_j + b_j ln(N / 100))`` (:meth:`calibrate`); 1 for an uncalibrated model."""
        c = torch.as_tensor(self.spread, dtype=torch.float32, device=n_gc.device)
        lg = torch.log(n_gc.float().clamp_min(1.0) / SPREAD_N0)[:, None]
        return torch.exp(c[:, 0][None] + c[:, 1][None] * lg)

    def calibrate(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        """Fit the N-dependent spread on the validation split (``out`` eval-mode outputs with N, ``y`` physical).

        The trained flow's posteriors come out too narrow for few GCs and too wide for many (docs/npe-results.md).
        Per target, with ``z = (y - mean) / std`` of the uncalibrated posterior draws and ``l = ln(N / 100)``,
        ``(a, b)`` minimise the Gaussian negative log-likelihood ``sum(a + b l + z^2 exp(-2 (a + b l)) / 2)``
        (convex; Newton's method): the posterior's spread about its mean is then multiplied by
        ``exp(a + b l)``, so that the standardised residuals have unit variance at every N. With fewer than
        :data:`SPREAD_MIN_SLOPE` validation catalogues (or one N only) the slope stays 0.
        """
        d = len(self.targets)
        self.spread = np.zeros((d, 2))
        self.spread_refit = None
        self.systematic = np.zeros(d)   # the statistical part is what the val split calibrates
        self.systematic_corr = None
        if out.shape[1] < 2 + 2 * d or not len(out):
            return self.calibration()
        mean, std = self.decode(out)
        z = ((y.double() - mean.double()) / std.double().clamp_min(1e-12)).cpu().numpy()
        lg = np.log(np.maximum(out[:, 1 + 2 * d].double().cpu().numpy(), 1.0) / SPREAD_N0)
        slope = len(lg) >= SPREAD_MIN_SLOPE and float(np.ptp(lg)) > 0.1
        for j in range(d):
            ok = np.isfinite(z[:, j])
            self.spread[j] = fit_log_scale(z[ok, j], lg[ok] if slope else np.zeros(int(ok.sum())))
        return self.calibration()

    def calibration(self) -> dict[str, Any]:
        if not np.any(self.spread):
            c = {"method": "none: the flow's posterior is used as trained (checked by SBC and TARP in gcml evaluate)"}
        elif self.spread_refit:
            c = {"method": "spread about the posterior mean x exp(a + b ln(N/100)) per target, fitted on the val split "
                           "(Gaussian likelihood), then refitted on independent galaxies so that the posterior ranks "
                           f"are uniform in {self.spread_refit.get('n_bins', REFIT_N_BINS)} bins of N (gcml models calibrate)",
                 "spread": [[float(a), float(b)] for a, b in self.spread], "spread_refit": dict(self.spread_refit)}
        else:
            c = {"method": "spread about the posterior mean x exp(a + b ln(N/100)) per target, fitted on the val split",
                 "spread": [[float(a), float(b)] for a, b in self.spread]}
        if np.any(self.systematic):
            c["systematic_dex"] = [float(v) for v in self.systematic]
            if self.systematic_corr is not None:
                c["systematic_correlation"] = [[float(v) for v in row] for row in self.systematic_corr]
        return c

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any]) -> CatalogueNPETask:
        task = super().from_bundle(bundle)
        cal = bundle.get("calibration") or {}
        sp = cal.get("spread")
        if sp is not None:
            task.spread = np.asarray(sp, float).reshape(len(task.targets), 2)
        if cal.get("spread_refit"):
            task.spread_refit = dict(cal["spread_refit"])
        corr = cal.get("systematic_correlation")
        if corr is not None:
            task.systematic_corr = np.asarray(corr, float).reshape(len(task.targets), len(task.targets))
        return task

    def bundle_entries(self) -> dict[str, Any]:
        b = super().bundle_entries()
        b["targets"]["loss"] = "flow_nll"
        b["targets"]["output"] = "posterior"
        b["inputs"]["kind"] = "catalogue"
        b["inputs"]["min_gc"] = MIN_GC
        return b

    def decode_samples(self, samples: torch.Tensor, n_gc: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
        """Standardised posterior draws (S, B, D) of catalogues with ``n_gc`` (B,) GCs -> physical units, their
        spread about the mean of the S draws scaled by the calibration (:meth:`spread_scale`; needs ``n_gc``
        and, to be exact, many draws: the mean is estimated from them).

        A model with a systematic term (``calibration.systematic_dex``, as the CNNs': its error on galaxy
        families it never saw) has its draws convolved with a Gaussian of that width per target, each draw
        shifted by ``systematic * e``, ``e`` standard normal from ``item_rng(seed, 0, stream=SYSTEMATIC_STREAM)``:
        the posterior's variance grows by ``systematic^2``, as :meth:`decode`'s standard deviation does. With
        ``calibration.systematic_correlation`` (R, D x D) the shifts of one draw are correlated across targets,
        ``e = L z`` with ``L L^T = R`` (the errors on an unseen family are: at one radius high, at the next
        too); without it they are independent."""
        if n_gc is not None and np.any(self.spread):
            m = samples.mean(0, keepdim=True)
            samples = m + (samples - m) * self.spread_scale(n_gc.to(samples.device))[None]
        yo, ys = self._ytensors(samples.device)
        phys = samples * ys + yo
        if np.any(self.systematic):
            from gcml.random import item_rng

            # a stream of its own: the flow draws its base variates from torch's generator seeded with ``seed``,
            # and noise from that same sequence would be correlated with the draws it widens
            e = item_rng(seed, 0, stream=SYSTEMATIC_STREAM).standard_normal(tuple(phys.shape), dtype=np.float32)
            if self.systematic_corr is not None:
                chol = np.linalg.cholesky(np.asarray(self.systematic_corr, float) + 1e-9 * np.eye(e.shape[-1]))
                e = (e.reshape(-1, e.shape[-1]) @ chol.T.astype(np.float32)).reshape(e.shape)  # 2-D: 14x faster
            phys = phys + torch.from_numpy(e).to(phys.device) * torch.as_tensor(self.systematic, dtype=phys.dtype,
                                                                                 device=phys.device)
        return phys


def fit_log_scale(z: np.ndarray, lg: np.ndarray, iters: int = 50) -> np.ndarray:
    """``(a, b)`` minimising ``sum(u + z^2 exp(-2 u) / 2)`` with ``u = a + b lg`` (the Gaussian negative
    log-likelihood of residuals ``z`` whose scale is ``exp(u)``); Newton's method on a convex function."""
    z2 = np.asarray(z, float) ** 2
    lg = np.asarray(lg, float)
    x = np.stack([np.ones_like(lg), lg], 1)
    theta = np.zeros(2)
    if not len(z2):
        return theta
    for _ in range(iters):
        w = z2 * np.exp(-2.0 * (x @ theta))
        grad = x.T @ (1.0 - w)
        hess = 2.0 * (x * w[:, None]).T @ x + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= np.clip(step, -1.0, 1.0)
        if np.abs(step).max() < 1e-10:
            break
    return theta


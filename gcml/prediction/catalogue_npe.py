"""Posterior masses of a real GC catalogue from a ``mass-npe`` model (``gcml predict CATALOGUE --model npe.pt``).

:func:`gcml.prediction.catalogue.predict_catalogue` reads the table, places the galaxy and selects the GCs
with the same steps for every model (``galaxy_values`` -> ``read_gc_table`` -> ``gc_sample`` ->
``monte_carlo_maps``); when the model's task reads catalogues (``catalogue-npe``) it then calls the two
steps of this module instead of ``network_masses``:

1. :func:`npe_catalogues`: the GCs in the representation ``gcml simulate-maps`` stores and mass-npe was
   trained on (:mod:`gcml.io.catalogues`): projected x, y [kpc] on the tangent plane (x east, y north),
   v_los relative to the galaxy [km/s, measurement error included, as observed], its 1-sigma error v_err
   [km/s] and ``in_map`` (|x|, |y| <= half the training maps' extent). Row 0 is the catalogue at the
   nominal distance; rows 1..K put it at the K distances drawn by ``monte_carlo_maps`` (log-normal of width
   sigma_D / D): positions scale with the distance, so GCs may enter or leave the map. When v_sys was
   estimated from the GCs, each draw also draws it from its standard error (std(v) / sqrt(N)).
2. :func:`posterior_masses`: ``n_samples`` posterior samples spread evenly over the K distance draws
   (:func:`gcml.models.npe.posterior_samples`, at most :data:`GCS_PER_PASS` GCs per pass; the flow's draws
   are seeded by ``seed``, so the same seed gives the same samples): a Monte Carlo marginalisation of the distance, p(theta | GCs) = E_D[p(theta | GCs, D)].
   The velocity errors are an input of the network and the GC sampling noise is part of the learnt
   posterior, so there is no bootstrap (it would count that noise twice). Each target's percentiles come
   from the samples; the posterior mean and standard deviation at the nominal distance are reported as the
   "network" values, and as ``distance_std`` the spread the distance error alone causes: the slope of the
   samples against log distance (least squares over all samples) times the spread of log distance (the
   spread of per-distance means would add the Monte Carlo noise of a few samples per distance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gcml.physics.units import C_KMS
from gcml.prediction.catalogue_result import MassEstimate, percentiles, target_label, target_radius

#: Posterior samples drawn when ``n_samples`` is not given.
DEFAULT_NPE_SAMPLES = 10_000
#: At most this many distance draws (the samples are spread over them). 100 give the same percentiles as 1,000
#: to the Monte Carlo noise of 10,000 samples (<= 0.01 dex; docs/benchmarks.md) at ~60 % of the CPU time.
MAX_DISTANCE_DRAWS = 100
#: Monte Carlo draws (distance, bootstrap) of the maps and of the tracer-mass-estimator baseline beside the
#: posterior: up to this many, of which the first ``distance_draws(n)`` distances also serve the posterior.
MAX_BASELINE_DRAWS = 1000
#: Posterior samples at the nominal distance behind the "network" mean and standard deviation.
NOMINAL_SAMPLES = 2000
#: GCs (summed over catalogues) per pass of the set encoder: bounds its memory for large GC systems.
GCS_PER_PASS = 200_000


def distance_draws(n_samples: int) -> int:
    """Distance draws for ``n_samples`` posterior samples (at most :data:`MAX_DISTANCE_DRAWS`)."""
    return int(min(int(n_samples), MAX_DISTANCE_DRAWS))


def baseline_draws(n_samples: int) -> int:
    """Monte Carlo draws of the maps and the TME baseline for ``n_samples`` posterior samples (at most
    :data:`MAX_BASELINE_DRAWS`; never fewer than :func:`distance_draws`)."""
    return int(min(int(n_samples), MAX_BASELINE_DRAWS))


def vsys_draws(v_obs: np.ndarray, vsys: float, estimated: bool, n: int, rng: np.random.Generator) -> np.ndarray:
    """Systemic velocity of each distance draw [km/s]: the given one, or, when it was estimated from the
    GCs, drawn from a normal of its standard error std(v) / sqrt(N)."""
    if not estimated:
        return np.full(int(n), float(vsys))
    se = float(np.std(v_obs)) / math.sqrt(max(len(v_obs), 1))
    return float(vsys) + se * rng.standard_normal(int(n))


def npe_catalogues(x: np.ndarray, y: np.ndarray, v_obs: np.ndarray, e_obs: np.ndarray, vsys: float,
                   vsys_k: np.ndarray, dscale: np.ndarray, extent_kpc: float) -> Any:
    """The GCs as mass-npe catalogues (:class:`gcml.io.catalogues.Catalogues`): row 0 at the nominal
    distance (positions ``x``, ``y`` [kpc], v_sys ``vsys``), row k at distance scale ``dscale[k-1]`` with
    v_sys ``vsys_k[k-1]``; velocities relative to the galaxy with the (1 + z) correction, ``in_map`` from
    the training maps' ``extent_kpc``."""
    from gcml.io.catalogues import Catalogues

    sc = np.concatenate([[1.0], np.asarray(dscale, float)])[:, None]                  # (1 + K, 1)
    vs = np.concatenate([[float(vsys)], np.asarray(vsys_k, float)])[:, None]
    xs, ys = np.asarray(x, float)[None] * sc, np.asarray(y, float)[None] * sc         # (1 + K, N)
    v = (np.asarray(v_obs, float)[None] - vs) / (1.0 + vs / C_KMS)
    e = np.broadcast_to(np.asarray(e_obs, float), xs.shape)
    half = float(extent_kpc) / 2.0
    in_map = (np.abs(xs) <= half) & (np.abs(ys) <= half)
    return Catalogues.from_padded(xs, ys, v, e, in_map, np.ones(xs.shape, bool))


@dataclass
class PosteriorDraws:
    """Step 2's result: the masses (percentiles etc.), ``samples`` (n, T) [log10 Msun] and the distance of
    each sample ``sample_distance_mpc`` (n,)."""

    masses: dict[str, MassEstimate]
    samples: np.ndarray
    sample_distance_mpc: np.ndarray
    n_distance_draws: int


def distance_spread(samples: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Per target, the standard deviation the distance draws cause in ``samples`` (n, T): |b| std(ln D), b
    the least-squares slope of the samples against ln D; zeros when every sample has the same distance."""
    ld = np.log(np.asarray(distance, float))
    sd = float(np.std(ld))
    if not len(ld) or sd <= 1e-12:
        return np.zeros(samples.shape[1])
    c = ld - ld.mean()
    slope = (c[:, None] * (samples - samples.mean(0))).sum(0) / (c * c).sum()
    return np.abs(slope) * sd


def posterior_masses(tm: Any, cats: Any, dscale: np.ndarray, distance_mpc: float, n_samples: int, seed: int,
                     r_out: float, r_e_kpc: float | None) -> PosteriorDraws:
    """Posterior samples of every target of a loaded mass-npe model (:class:`gcml.models.trained.TrainedModel`)
    for the catalogues of :func:`npe_catalogues`, and their percentiles (module docstring, step 2)."""
    from gcml.models.npe import posterior_samples

    k = len(dscale)
    n = int(n_samples)
    per = -(-n // k)
    min_gc = int(getattr(tm.task, "min_gc", 1))
    net, task, dev = tm.network, tm.task, tm.device
    nominal = posterior_samples(net, task, cats, min(n, NOMINAL_SAMPLES), rows=[0], seed=int(seed), min_gc=min_gc,
                                device=dev)[:, 0].astype(np.float64)                  # (n_nom, T)
    batch = max(1, min(k, GCS_PER_PASS // max(int(cats.counts.max()), 1)))
    draws = posterior_samples(net, task, cats, per, rows=np.arange(1, k + 1), batch_size=batch, seed=int(seed) + 1,
                              min_gc=min_gc, device=dev).astype(np.float64)           # (per, K, T)
    t = draws.shape[-1]
    samples = draws.reshape(per * k, t)[:n]                      # round-robin over the distance draws
    dist = np.tile(float(distance_mpc) * np.asarray(dscale, float), per)[:n]
    ok = np.isfinite(samples).all(1)
    samples, dist = samples[ok], dist[ok]
    dist_sd = distance_spread(samples, dist)
    units = tm.target_units
    sys_sd = np.broadcast_to(np.asarray(task.systematic, float), (t,))
    masses: dict[str, MassEstimate] = {}
    for j, name in enumerate(tm.targets):
        med, p16, p84, p2, p97 = percentiles(samples[:, j])
        masses[name] = MassEstimate(
            name=name, label=target_label(name, r_out), unit=(units[j] if j < len(units) else "") or "dex(Msun)",
            median=med, p16=p16, p84=p84, p2_5=p2, p97_5=p97, network_mean=float(np.mean(nominal[:, j])),
            network_std=float(np.std(nominal[:, j])), bootstrap_std=math.nan,
            distance_std=float(dist_sd[j]), radius_kpc=target_radius(name, r_out, r_e_kpc),
            systematic_std=float(sys_sd[j]))
    return PosteriorDraws(masses=masses, samples=samples.astype(np.float32), sample_distance_mpc=dist.astype(np.float32),
                          n_distance_draws=k)

"""``mass-npe``: neural posterior estimation of a galaxy's mass profile from its GC catalogue.

The network reads a catalogue of N globular clusters (any N from a few to thousands, in any order) and
returns a posterior distribution over the joint vector of mass targets (by default log10 M(< 5, 10, 20,
50 kpc), log10 M(< R_out) and log10 (M200 + M*)), not a point estimate with a Gaussian error:

* **Set encoder** (deep sets, Zaheer et al. 2017): every GC's features ``phi(g_i)`` (projected position,
  radius, line-of-sight velocity and its error, in-map flag) pass through the same MLP; the masked mean
  and the masked maximum over the GCs, together with a few summary statistics of the whole catalogue
  (log N, log <v^2>, log <R>, log R_out, log <v^2 R>: the ingredients of the tracer mass estimator), go
  through a second MLP into a context vector. Mean and max pooling make the output invariant to the
  order of the GCs; masking makes it independent of how much padding a batch carries.
* **Conditional normalizing flow** (zuko, Rozet et al.) over the standardised targets, conditioned on the
  context, with coupling layers so that drawing 10,000 samples is one pass per layer. ``gcml train
  mass-npe`` builds three affine coupling transforms with 32-unit MLPs (:data:`FLOW_DEFAULT`; a masked
  autoregressive flow, Papamakarios et al. 2017, with two passes); ``flow="nsf"`` gives a neural spline
  flow (Durkan et al. 2019), as accurate on gcml's test galaxies and 15x slower to sample
  (docs/npe-results.md). Trained by maximum likelihood on simulated galaxies, the flow
  approximates the Bayesian posterior under the simulation prior (neural posterior estimation,
  Papamakarios & Murray 2016; Greenberg et al. 2019).

Input convention: a catalogue batch is a float tensor ``(B, N_max, 6)`` with columns
``x, y [kpc], v_los [km/s, relative to the systemic velocity], v_err [km/s], in_map (0/1), valid (0/1)``;
rows with ``valid = 0`` are padding. The network's fixed input scales (``r_scale_kpc``, ``v_scale_kms``)
are architecture arguments stored in the bundle; the target standardisation is the task's
(:class:`gcml.models.tasks.npe.CatalogueNPETask`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from gcml.errors import ConfigError
from gcml.models.registry import ModelSpec

#: Columns of a catalogue batch, in order.
CATALOGUE_COLUMNS = ("x", "y", "v_los", "v_err", "in_map", "valid")
N_COLUMNS = len(CATALOGUE_COLUMNS)
#: Default targets: the mass profile (enclosed 3D mass within fixed radii), within R_out, and halo + stars.
NPE_TARGETS = ("log10_mass_within_5kpc", "log10_mass_within_10kpc", "log10_mass_within_20kpc",
               "log10_mass_within_50kpc", "log10_mass_within_rout", "log10_mass_total")
#: The flow `gcml train mass-npe` builds (the registry's defaults; see MODELS below).
FLOW_DEFAULT = {"flow": "maf", "transforms": 3, "flow_hidden": 32}
N_GC_FEATURES = 9
N_GLOBAL = 6


def _mlp(sizes: list[int], act: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class SetEncoder(nn.Module):
    """Permutation-invariant encoder of a padded GC catalogue (deep sets with mean + max pooling)."""

    def __init__(self, hidden: int = 128, context: int = 64, r_scale_kpc: float = 10.0,
                 v_scale_kms: float = 200.0) -> None:
        super().__init__()
        self.r_scale = float(r_scale_kpc)
        self.v_scale = float(v_scale_kms)
        self.phi = _mlp([N_GC_FEATURES, hidden, hidden, hidden])
        self.rho = _mlp([2 * hidden + N_GLOBAL, hidden, hidden, context])

    def features(self, cat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-GC features (B, N, F), the validity mask (B, N) and catalogue summaries (B, N_GLOBAL)."""
        x, y, v, ve, inmap, valid = cat.unbind(-1)
        m = valid > 0.5
        mf = m.to(cat.dtype)
        xs, ys = x / self.r_scale, y / self.r_scale
        r = torch.sqrt(xs * xs + ys * ys)
        vs, es = v / self.v_scale, ve / self.v_scale
        f = torch.stack([xs, ys, r, torch.log(r + 0.01), vs, vs.abs(), vs * vs, es, inmap], -1) * mf[..., None]
        n = mf.sum(1).clamp_min(1.0)
        mi = mf * (inmap > 0.5).to(cat.dtype)
        n_in = mi.sum(1)
        mean_v2 = (vs * vs * mf).sum(1) / n
        mean_r = (r * mf).sum(1) / n
        r_out = torch.where(mi > 0, r, torch.zeros_like(r)).amax(1)
        r_out = torch.where(n_in > 0, r_out, (r * mf).amax(1))
        mean_v2r = (vs * vs * r * mf).sum(1) / n
        eps = 1e-4
        g = torch.stack([torch.log(n), torch.log(n_in + 1.0), torch.log(mean_v2 + eps), torch.log(mean_r + eps),
                         torch.log(r_out + eps), torch.log(mean_v2r + eps)], -1)
        return f, m, g

    def forward(self, cat: torch.Tensor) -> torch.Tensor:
        f, m, g = self.features(cat)
        h = self.phi(f)                                              # (B, N, H)
        mf = m.to(h.dtype)[..., None]
        n = mf.sum(1).clamp_min(1.0)
        mean = (h * mf).sum(1) / n
        mx = torch.where(m[..., None], h, torch.full_like(h, -1e4)).amax(1)
        mx = torch.where(m.any(1, keepdim=True), mx, torch.zeros_like(mx))
        return self.rho(torch.cat([mean, mx, g], -1))


class MassNPE(nn.Module):
    """Set encoder + conditional normalizing flow (see the module docstring).

    Parameters
    ----------
    n_targets : dimension of the target vector (set by the training task)
    hidden, context : widths of the set encoder and of the context vector
    flow : ``"nsf"`` (neural spline flow) or ``"maf"`` (affine masked autoregressive flow)
    transforms, flow_hidden, bins : flow layers, hidden width of each layer's MLP (two layers), spline bins
    coupling : coupling layers (one pass to sample) instead of fully autoregressive ones (D passes)
    r_scale_kpc, v_scale_kms : fixed input scales
    n_eval_samples : posterior draws behind the mean and standard deviation returned in eval mode
    """

    def __init__(self, n_targets: int = len(NPE_TARGETS), hidden: int = 128, context: int = 64, flow: str = "nsf",
                 transforms: int = 4, flow_hidden: int = 64, bins: int = 8, coupling: bool = True,
                 r_scale_kpc: float = 10.0, v_scale_kms: float = 200.0, n_eval_samples: int = 64) -> None:
        super().__init__()
        import zuko

        if n_targets < 1:
            raise ConfigError(f"mass-npe: n_targets must be at least 1, got {n_targets}")
        if flow not in ("nsf", "maf"):
            raise ConfigError(f"mass-npe: flow must be 'nsf' or 'maf', got '{flow}'")
        self.n_targets = int(n_targets)
        self.n_eval_samples = int(n_eval_samples)
        self.encoder = SetEncoder(hidden, context, r_scale_kpc, v_scale_kms)
        kw = dict(transforms=int(transforms), hidden_features=(int(flow_hidden),) * 2)
        if coupling and n_targets > 1:
            kw["passes"] = 2
        if flow == "nsf":
            self.flow = zuko.flows.NSF(self.n_targets, context, bins=int(bins), **kw)
        else:
            self.flow = zuko.flows.MAF(self.n_targets, context, **kw)

    def context(self, cat: torch.Tensor) -> torch.Tensor:
        return self.encoder(cat)

    def log_prob(self, y: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        """log q(y | catalogue) of standardised targets y (B, D), per catalogue (B,)."""
        return self.flow(self.context(cat)).log_prob(y)

    @torch.no_grad()
    def sample(self, cat: torch.Tensor, n: int, *, seed: int | None = None) -> torch.Tensor:
        """``n`` draws of the standardised targets for each catalogue: (n, B, D).

        The flow is the trained one; only its evaluation is arranged so that the context's share of each
        hyper-network's first layer is computed once per catalogue instead of once per draw
        (:func:`_context_cached`; equal to ``self.flow(ctx).sample`` to float rounding, tested)."""
        ctx = self.context(cat)
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(seed)
            return _sampling_flow(self.flow, ctx).sample((int(n),))

    def forward(self, cat: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Training: (B, 1) negative log-likelihood of the standardised targets ``y``.

        Eval mode: (B, 2 + 2 D): the negative log-likelihood (NaN without ``y``), the mean and the standard
        deviation of ``n_eval_samples`` posterior draws (standardised units; fixed seed), and the number of
        GCs in the catalogue (what the task's N-dependent spread calibration reads).
        """
        ctx = self.context(cat)
        dist = self.flow(ctx)
        b = cat.shape[0]
        nll = -dist.log_prob(y)[:, None] if y is not None else torch.full((b, 1), math.nan, device=cat.device)
        if self.training:
            return nll
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            torch.manual_seed(0)
            s = dist.sample((self.n_eval_samples,))
        n_gc = cat[..., N_COLUMNS - 1].sum(1, keepdim=True)
        return torch.cat([nll, s.mean(0), s.std(0), n_gc], -1)


def _context_cached(t, c: torch.Tensor):
    """``t(c)`` for a zuko ``MaskedAutoregressiveTransform`` ``t``, with the context's part of its
    hyper-network's first (masked) linear layer, ``(W * A)[:, F:] c + b``, computed once for the context
    ``c`` instead of once per draw; the features' part and the rest of the network run per draw as in
    zuko's own ``meta`` (concatenate, MLP, unflatten, unpack). Any other transform, or a zuko whose
    transform lacks these parts, gets ``t(c)`` itself."""
    from functools import partial

    try:
        from zuko.nn import MaskedLinear
        from zuko.transforms import AutoregressiveTransform, DependentTransform
        from zuko.utils import unpack
    except ImportError:  # another zuko layout: the plain path
        return t(c)
    hyper = getattr(t, "hyper", None)
    if (hyper is None or not len(hyper) or not isinstance(hyper[0], MaskedLinear)
            or not all(hasattr(t, a) for a in ("shapes", "total", "univariate", "passes"))):
        return t(c)
    first = hyper[0]
    w = first.mask * first.weight
    nf = first.in_features - c.shape[-1]
    hc = nn.functional.linear(c, w[:, nf:], first.bias)
    rest = list(hyper)[1:]  # (slicing a MaskedMLP would build a new one)

    def meta(wx: torch.Tensor, x: torch.Tensor):
        phi = nn.functional.linear(x, wx) + hc
        for layer in rest:
            phi = layer(phi)
        phi = unpack(phi.unflatten(-1, (-1, t.total)), t.shapes)
        return DependentTransform(t.univariate(*phi), 1)

    return AutoregressiveTransform(partial(meta, w[:, :nf]), t.passes)


def _sampling_flow(flow, ctx: torch.Tensor):
    """The conditional distribution ``flow(ctx)`` built with :func:`_context_cached` transforms."""
    try:
        from zuko.distributions import NormalizingFlow
        from zuko.transforms import ComposedTransform
    except ImportError:
        return flow(ctx)
    parts = getattr(getattr(flow, "transform", None), "transforms", None)
    if parts is None:
        return flow(ctx)
    transform = ComposedTransform(*(_context_cached(t, ctx) for t in parts))
    return NormalizingFlow(transform, flow.base(ctx).expand(ctx.shape[:-1]))


def _build(**kwargs) -> MassNPE:
    kwargs.pop("in_channels", None)
    n_out = kwargs.pop("n_outputs", None)
    if "n_targets" not in kwargs and n_out is not None:
        kwargs["n_targets"] = (int(n_out) - 1) // 2
    return MassNPE(**kwargs)


#: the architectures of this module (read by gcml.models.registry, which lists this module by name)
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="mass-npe", builder=_build, data_kind="kinematics", output="posterior", default_data="maps.h5",
        description="GC catalogue -> posterior of the mass profile (deep-sets encoder + affine coupling flow, zuko)",
        paper=False, task="catalogue-npe", default_channels=CATALOGUE_COLUMNS, default_targets=NPE_TARGETS,
        # What `gcml train mass-npe` builds (recorded in every bundle new training writes). Measured with
        # benchmarks/npe_flow_choice.py (docs/npe-results.md): on the same 2,000 training galaxies this small
        # affine coupling flow matched the spline flow's M(< R_out) scatter at N = 30, 100, 200 (0.107 / 0.073 /
        # 0.064 dex against 0.108 / 0.073 / 0.064) and draws 10,000 samples in 18 ms against 262 ms on one
        # thread. MassNPE's own defaults stay the spline flow, which bundles written before then were trained
        # with and record no `flow` for, so they load as they were trained.
        train_defaults=dict(FLOW_DEFAULT),
    ),
)


@torch.no_grad()
def posterior_samples(model: MassNPE, task, catalogues, n_samples: int, *, rows=None, batch_size: int = 256,
                      seed: int = 0, min_gc: int = 1, device: str | torch.device = "cpu"):
    """Posterior draws in physical units for GC catalogues.

    Parameters
    ----------
    model : a trained :class:`MassNPE` (eval mode)
    task : its task (target standardisation; ``task.decode_samples``)
    catalogues : :class:`gcml.io.catalogues.Catalogues`
    n_samples : draws per catalogue
    rows : catalogues to use (default all)
    batch_size : catalogues per pass (batch ``k`` draws with seed ``seed + k``)
    min_gc : catalogues with fewer GCs (or none in the map) get NaN draws

    Returns
    -------
    ndarray float32 (n_samples, len(rows), D)
    """

    rows = np.arange(catalogues.n) if rows is None else np.asarray(rows, np.int64)
    dev = torch.device(device) if isinstance(device, str) else device
    counts = catalogues.counts[rows]
    n_in = np.array([catalogues.in_map[catalogues.offsets[r]:catalogues.offsets[r + 1]].sum() for r in rows]) \
        if len(rows) else np.zeros(0)
    ok = (counts >= max(min_gc, 1)) & (n_in > 0)
    out = np.full((int(n_samples), len(rows), model.n_targets), np.nan, np.float32)
    use = np.flatnonzero(ok)
    for k, s in enumerate(range(0, len(use), batch_size)):
        sel = use[s:s + batch_size]
        x = torch.from_numpy(catalogues.padded(rows[sel])).to(dev)
        draws = model.sample(x, int(n_samples), seed=int(seed) + k)
        n_gc = torch.as_tensor(counts[sel], dtype=torch.float32, device=draws.device)
        out[:, sel] = task.decode_samples(draws, n_gc, seed=int(seed) + k).float().cpu().numpy()
    return out


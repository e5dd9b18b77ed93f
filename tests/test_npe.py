"""mass-npe: permutation invariance, any N with padding, a known-answer posterior, bundle round trip,
catalogues in the MapSet (consistent with the maps; ragged helpers; merge), training through the one loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcml.errors import InputError
from gcml.io.catalogues import Catalogues, read_catalogues
from gcml.models.npe import CATALOGUE_COLUMNS, NPE_TARGETS, MassNPE

SMALL = dict(hidden=32, context=16, transforms=2, flow_hidden=32)


def random_catalogue(rng, n, n_pad=None):
    c = np.zeros((n_pad or n, 6), np.float32)
    c[:n, 0:2] = rng.normal(0, 10, (n, 2))
    c[:n, 2] = rng.normal(0, 150, n)
    c[:n, 3] = rng.uniform(5, 20, n)
    c[:n, 4] = (np.abs(c[:n, :2]) < 20).all(1)
    c[:n, 5] = 1
    return c


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return MassNPE(n_targets=3, **SMALL).eval()


def test_permutation_invariance(net, one_thread):
    rng = np.random.default_rng(0)
    c = random_catalogue(rng, 60)
    y = torch.randn(1, 3)
    a = net.log_prob(y, torch.from_numpy(c[None]))
    b = net.log_prob(y, torch.from_numpy(c[None, rng.permutation(60)]))
    assert torch.allclose(a, b, atol=1e-4)
    assert torch.allclose(net.context(torch.from_numpy(c[None])), net.context(torch.from_numpy(c[None, ::-1].copy())),
                          atol=1e-5)


@pytest.mark.parametrize("n", [5, 37, 1000])
def test_any_n_and_padding(net, n):
    rng = np.random.default_rng(n)
    c = random_catalogue(rng, n)
    padded = random_catalogue(np.random.default_rng(n), n, n_pad=n + 123)
    padded[n:] = rng.normal(0, 100, (123, 6)) * np.array([1, 1, 1, 1, 0, 0])  # junk in padding rows, valid = 0
    y = torch.randn(1, 3)
    a = net.log_prob(y, torch.from_numpy(c[None]))
    b = net.log_prob(y, torch.from_numpy(padded[None]))
    assert torch.isfinite(a).all() and torch.allclose(a, b, atol=1e-4)
    # a batch of catalogues of different N gives each one's own result
    other = random_catalogue(rng, 7, n_pad=n + 123)
    batch = torch.from_numpy(np.stack([padded, other]))
    both = net.log_prob(y.expand(2, 3), batch)
    assert torch.allclose(both[0], a[0], atol=1e-4)
    s = net.sample(batch, 50, seed=1)
    assert s.shape == (50, 2, 3) and torch.equal(s, net.sample(batch, 50, seed=1))


def gaussian_toy(n_items, seed):
    """theta ~ N(0, I_2); N GCs with v_i / 200 km/s ~ N(theta_1, 1) and x_i / 10 kpc ~ N(theta_2, 1).
    Posterior: independent Gaussians, mean sum / (1 + N), standard deviation 1 / sqrt(1 + N)."""
    rng = np.random.default_rng(seed)
    th = rng.standard_normal((n_items, 2))
    n = rng.integers(5, 21, n_items)
    cat = np.zeros((n_items, 20, 6), np.float32)
    valid = np.arange(20)[None] < n[:, None]
    eps = rng.standard_normal((n_items, 20, 2))
    cat[..., 2] = 200 * (th[:, None, 0] + eps[..., 0])
    cat[..., 0] = 10 * (th[:, None, 1] + eps[..., 1])
    cat[..., 4] = 1
    cat[..., 5] = valid
    cat[~valid] = 0
    sums = np.stack([(cat[..., 2] / 200).sum(1), (cat[..., 0] / 10).sum(1)], 1)
    return (torch.from_numpy(cat), torch.from_numpy(th.astype(np.float32)), sums / (1 + n)[:, None],
            1 / np.sqrt(1 + n))


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_flow_recovers_an_analytic_gaussian_posterior(one_thread):
    from gcml.evaluation.calibration import calibration_summary

    torch.manual_seed(0)
    m = MassNPE(n_targets=2, flow="maf", **SMALL)
    cat, th, _, _ = gaussian_toy(4000, 1)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        i = torch.randint(0, len(th), (128,), generator=g)
        loss = m(cat[i], th[i]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    ct, tt, post_mean, post_std = gaussian_toy(400, 2)
    s = m.sample(ct, 1000, seed=0).numpy()
    ratio = np.median(s.std(0) / post_std[:, None], axis=0)
    assert ratio == pytest.approx([1.0, 1.0], abs=0.15)        # the right width, for every N
    assert (np.abs(s.mean(0) - post_mean).mean(0) / post_std.mean() < 0.4).all()
    cal = calibration_summary(tt.numpy(), ["t1", "t2"], samples=s)
    assert all(d["coverage"]["0.68"] == pytest.approx(0.68, abs=0.08) for d in cal["per_target"].values())
    # an untrained flow is far from it
    torch.manual_seed(0)
    raw = MassNPE(n_targets=2, flow="maf", **SMALL).eval().sample(ct, 200, seed=0).numpy()
    assert abs(np.median(raw.std(0) / post_std[:, None]) - 1) > 0.5


def test_catalogues_ragged_helpers():
    rng = np.random.default_rng(0)
    mask = rng.random((4, 9)) < 0.6
    mask[2] = False
    x, y, v, e = (rng.normal(size=(4, 9)).astype(np.float32) for _ in range(4))
    c = Catalogues.from_padded(x, y, v, e, np.ones((4, 9)), mask)
    assert c.n == 4 and c.counts.tolist() == mask.sum(1).tolist()
    assert np.array_equal(c.table(1)["v_los"], v[1][mask[1]])
    s = c.select([3, 1, 2])
    assert s.counts.tolist() == [mask[3].sum(), mask[1].sum(), 0]
    assert np.array_equal(s.table(0)["x"], x[3][mask[3]])
    p = c.padded([1, 2])
    assert p.shape == (2, mask[1].sum(), 6) and p[1].sum() == 0 and (p[0, :, 5] == 1).all()
    both = Catalogues.concatenate([c, s])
    assert both.n == 7 and np.array_equal(both.table(5)["y"], y[1][mask[1]])
    with pytest.raises(InputError, match="more than n_max"):
        c.padded([0], n_max=1)


@pytest.fixture(scope="module")
def sim(npe_mapset):
    """(folder, config) of a small simulate-maps MapSet with catalogues, ``a.h5`` (conftest ``npe_mapset``)."""
    return npe_mapset


def test_simulate_maps_catalogues_match_the_maps(sim):
    from gcml.io.mapset import read_mapset
    from gcml.physics.tracer_mass import tracer_mass_estimator
    from gcml.simulate.galaxies import simulate_maps

    d, cfg = sim
    ms = read_mapset(d / "a.h5")
    cat = read_catalogues(d / "a.h5")
    assert cat.n == ms.n
    # the GCs flagged in the map are those the maps' meta counts, and give the stored TME and r_out
    n_in = np.add.reduceat(cat.in_map.astype(int), cat.offsets[:-1])
    assert np.array_equal(n_in, ms.meta["n_gc"])
    p = cat.padded()
    r = np.sqrt(p[..., 0] ** 2 + p[..., 1] ** 2)
    tme, r_out = tracer_mass_estimator(r, p[..., 2], mask=(p[..., 4] > 0) & (p[..., 5] > 0))
    ok = np.isfinite(ms.meta["tme_log10_mass"])
    assert np.allclose(np.log10(tme[ok]), ms.meta["tme_log10_mass"][ok], atol=1e-5)
    assert np.allclose(r_out, ms.meta["r_out_kpc"], atol=1e-4)
    half = cfg.extent_kpc / 2
    assert np.array_equal(cat.in_map.astype(bool), (np.abs(cat.x) <= half) & (np.abs(cat.y) <= half))
    assert (cat.v_err >= 5).all() and (cat.v_err <= 20).all()
    # same bytes with two workers; none without catalogues
    simulate_maps(cfg, d / "b.h5", workers=2)
    other = read_catalogues(d / "b.h5")
    assert all(np.array_equal(getattr(cat, k), getattr(other, k)) for k in ("offsets", "x", "y", "v_los", "v_err", "in_map"))
    simulate_maps(cfg.__class__(**{**cfg.__dict__, "catalogues": False}), d / "c.h5")
    with pytest.raises(InputError, match="no GC catalogues"):
        read_catalogues(d / "c.h5")
    # the early-type families store theirs too
    early = cfg.__class__(**{**cfg.__dict__, "families": ("early", "early-ood"), "n_galaxies": 4, "views": 2})
    simulate_maps(early, d / "e.h5")
    ce, me = read_catalogues(d / "e.h5"), read_mapset(d / "e.h5")
    assert np.array_equal(np.add.reduceat(ce.in_map.astype(int), ce.offsets[:-1]), me.meta["n_gc"])


def test_merge_keeps_catalogues(sim, tmp_path):
    from gcml.io.mapset import merge_mapsets
    from gcml.simulate.galaxies import simulate_maps

    d, cfg = sim
    for k in (1, 2):
        simulate_maps(cfg, tmp_path / f"s{k}.h5", shard=(k, 2))
    merge_mapsets([tmp_path / "s1.h5", tmp_path / "s2.h5"], tmp_path / "m.h5")
    whole, merged = read_catalogues(d / "a.h5"), read_catalogues(tmp_path / "m.h5")
    assert all(np.array_equal(getattr(whole, k), getattr(merged, k)) for k in ("offsets", "x", "v_los", "in_map"))
    simulate_maps(cfg.__class__(**{**cfg.__dict__, "catalogues": False, "seed": 9}), tmp_path / "n.h5")
    with pytest.raises(InputError, match="no GC catalogues"):
        merge_mapsets([tmp_path / "s1.h5", tmp_path / "n.h5"], tmp_path / "m2.h5", renumber=True)


def test_train_mass_npe_in_the_loop_and_bundle_round_trip(sim, tmp_path):
    from gcml.io.bundle import load_bundle
    from gcml.models.trained import TrainedModel
    from gcml.training import TrainConfig, train
    from gcml.training.npe_data import CatalogueData

    d, _ = sim
    cfg = TrainConfig(model="mass-npe", epochs=2, batch_size=32, threads=1, seed=1, channels=CATALOGUE_COLUMNS,
                      targets=NPE_TARGETS, arch_kwargs=SMALL)
    res = train(d / "a.h5", cfg, tmp_path / "run")
    assert res.epochs_run == 2 and np.isfinite(res.best_val_loss)
    t = res.test_metrics["test"]["log10_mass_total"]
    assert np.isfinite(t["scatter_dex"]) and 0 <= t["coverage_68"] <= 1
    # the bundle opens with weights_only=True and gives back the same network and targets
    raw = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert raw["architecture"] == "mass-npe" and raw["task"] == "catalogue-npe"
    # a new training gets the affine coupling flow and records it; a bundle without `flow` (written before it
    # became the default) is rebuilt with the spline flow it was trained with
    import zuko

    from gcml.models.registry import build_model

    assert raw["arch_kwargs"]["flow"] == "maf" and raw["arch_kwargs"]["transforms"] == SMALL["transforms"]
    assert type(build_model("mass-npe", **raw["arch_kwargs"]).flow) is zuko.flows.MAF
    legacy = {k: v for k, v in raw["arch_kwargs"].items() if k != "flow"}
    assert type(build_model("mass-npe", **legacy).flow) is zuko.flows.NSF
    b = load_bundle(tmp_path / "run" / "best.pt")
    tm = TrainedModel.load(tmp_path / "run" / "best.pt")
    model, task = tm.network, tm.task
    assert task.targets == list(NPE_TARGETS) and b["targets"]["output"] == "posterior"
    data = CatalogueData(d / "a.h5", task)
    # the targets are standardised on the training split (mean 0, standard deviation 1)
    ytr = task.encode_y(torch.from_numpy(data.y_all[data.split == 0])).double()
    assert torch.allclose(ytr.mean(0), torch.zeros(6, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(ytr.std(0, unbiased=False), torch.ones(6, dtype=torch.float64), atol=1e-4)
    xb, yb = next(data.batches("test", 16, epoch=None, seed=0))
    s1 = task.decode_samples(model.sample(xb, 200, seed=3))
    torch.manual_seed(1)
    again = MassNPE(**b["arch_kwargs"])
    again.load_state_dict(raw["state_dict"])
    again.eval()
    s2 = task.decode_samples(again.sample(xb, 200, seed=3))
    assert torch.equal(s1, s2) and s1.shape == (200, len(xb), 6)
    assert (s1.mean(0) - yb).abs().mean() < 0.6  # physical units (dex): near the truths even after 2 epochs
    # resume continues the run
    res2 = train(d / "a.h5", cfg.replace(epochs=3), tmp_path / "run", resume=True)
    assert res2.epochs_run == 3 and res2.resumed_from_epoch == 2


def test_cli_train_and_evaluate_mass_npe_beside_a_cnn(sim, tmp_path, cli):
    import json

    d, _ = sim
    r = cli("train", "mass-npe", "--data", d / "a.h5", "--epochs", "1", "--threads", "1", "--batch-size", "32",
            "-o", tmp_path / "npe")
    assert r.exit_code == 0, r.output
    assert "gcml models calibrate" in r.output   # how to calibrate the posterior on ranks
    r = cli("train", "mass-cnn", "--data", d / "a.h5", "--epochs", "1", "--threads", "1", "-o", tmp_path / "cnn")
    assert r.exit_code == 0, r.output
    r = cli("evaluate", tmp_path / "npe" / "best.pt", tmp_path / "cnn" / "best.pt", d / "a.h5", "--split", "all",
            "-o", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    npe = m["calibration"]["npe/best.pt"]
    assert npe["kind"] == "samples" and set(npe["per_target"]) == set(NPE_TARGETS)
    assert m["calibration"]["cnn/best.pt"]["kind"] == "gaussian"
    assert np.isfinite(m["models"]["npe/best.pt"]["log10_mass_within_rout"]["scatter_dex"])
    rep = (tmp_path / "rep" / "report.md").read_text()
    assert "## Calibration" in rep and "## Scatter against the number of GCs" in rep
    bins = m["models"]["npe/best.pt"]["log10_mass_within_rout"]["scatter_vs_n"]["bins"]
    assert sum(b["count"] for b in bins) >= 0.9 * m["n_maps"]
    assert all(b["ratio_to_floor"] == pytest.approx(b["scatter_dex"] / b["cramer_rao_dex"]) for b in bins)
    assert m["baseline"]["scatter_vs_n"]["bins"]


def test_mass_npe_refuses_maps_without_catalogues_and_map_channels(sim, tmp_path):
    from gcml.training import TrainConfig, train

    d, _ = sim
    cfg = TrainConfig(model="mass-npe", epochs=1, threads=1, channels=CATALOGUE_COLUMNS, targets=NPE_TARGETS)
    with pytest.raises(InputError, match="no GC catalogues"):
        train(d / "c.h5", cfg, tmp_path / "r1")
    with pytest.raises(InputError, match="leave `channels` out"):
        train(d / "a.h5", cfg.replace(channels=("sigma", "v")), tmp_path / "r2")


def test_mass_npe_ddp_two_cpu_processes_match_single_process(sim, tmp_path):
    import json

    from gcml.io.bundle import load_bundle
    from gcml.training import TrainConfig, train

    d, _ = sim
    cfg = TrainConfig(model="mass-npe", epochs=1, batch_size=32, threads=1, seed=3, channels=CATALOGUE_COLUMNS,
                      targets=NPE_TARGETS, arch_kwargs=SMALL, early_stopping=0)
    train(d / "a.h5", cfg, tmp_path / "one")
    multi = train(d / "a.h5", cfg.replace(nproc=2), tmp_path / "two")
    assert multi.world_size == 2
    a, b = ([json.loads(s) for s in (tmp_path / r / "metrics.jsonl").read_text().splitlines()] for r in ("one", "two"))
    assert b[0]["train_loss"] == pytest.approx(a[0]["train_loss"], abs=1e-4, rel=0)
    assert b[0]["val_loss"] == pytest.approx(a[0]["val_loss"], abs=1e-4, rel=0)
    wa = load_bundle(tmp_path / "one" / "last.pt")["state_dict"]
    wb = load_bundle(tmp_path / "two" / "last.pt")["state_dict"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-4, rtol=0)


def test_spread_calibration_known_answer():
    """The N-dependent spread calibration recovers a known scale law: residuals drawn with standard
    deviation exp(0.3 - 0.2 ln(N/100)) times the posterior's own give (a, b) = (0.3, -0.2); the fitted task
    then widens std and draws by that factor at each N, and the bundle entry restores it."""
    from gcml.models.tasks.npe import CatalogueNPETask, fit_log_scale

    rng = np.random.default_rng(0)
    n = rng.integers(10, 400, 40_000).astype(float)
    lg = np.log(n / 100.0)
    z = rng.normal(size=n.size) * np.exp(0.3 - 0.2 * lg)
    a, b = fit_log_scale(z, lg)
    assert a == pytest.approx(0.3, abs=0.01) and b == pytest.approx(-0.2, abs=0.01)
    assert fit_log_scale(rng.normal(size=20_000) * 2.0, np.zeros(20_000))[0] == pytest.approx(np.log(2.0), abs=0.02)

    task = CatalogueNPETask(CATALOGUE_COLUMNS, list(NPE_TARGETS))
    d = len(NPE_TARGETS)
    task.y_offset, task.y_scale = np.zeros(d), np.full(d, 0.5)  # physical = 0.5 x standardised
    mu = rng.normal(size=(n.size, d))
    sd = np.full((n.size, d), 0.2)                              # standardised posterior std
    y = 0.5 * (mu + sd * rng.normal(size=(n.size, d)) * np.exp(0.3 - 0.2 * lg)[:, None])
    out = torch.from_numpy(np.concatenate([np.zeros((n.size, 1)), mu, sd, n[:, None]], 1)).float()
    task.calibrate(out, torch.from_numpy(y))
    np.testing.assert_allclose(task.spread[:, 0], 0.3, atol=0.02)
    np.testing.assert_allclose(task.spread[:, 1], -0.2, atol=0.02)
    _, std = task.decode(out[:3])
    expect = 0.5 * 0.2 * np.exp(task.spread[0, 0] + task.spread[0, 1] * lg[:3])
    np.testing.assert_allclose(std[:, 0].numpy(), expect, rtol=1e-5)
    draws = torch.randn(4000, 2, d)
    wide = task.decode_samples(draws, torch.tensor([30.0, 300.0]))
    f = np.exp(task.spread[:, 0] + task.spread[:, 1] * np.log(np.array([0.3, 3.0]))[:, None])  # (2, D)
    np.testing.assert_allclose(wide.std(0).numpy(), 0.5 * draws.std(0).numpy() * f, rtol=1e-4)
    assert torch.equal(task.decode_samples(draws), draws * 0.5)  # no N: as trained
    cal = task.calibration()
    bundle = {"inputs": {"channels": list(CATALOGUE_COLUMNS), "norm": {"mean": [0.0] * 6, "std": [1.0] * 6}},
              "targets": {"names": list(NPE_TARGETS), "loss": "flow_nll",
                          "norm": {"offset": [0.0] * d, "scale": [0.5] * d}}, "calibration": cal}
    again = CatalogueNPETask.from_bundle(bundle)
    np.testing.assert_allclose(again.spread, task.spread)


def test_systematic_term_widens_std_and_draws_in_quadrature():
    """A bundle's ``calibration.systematic_dex`` (as the CNNs': leave one family out) adds in quadrature to
    mass-npe's decoded std and convolves its draws with a Gaussian of that width: the draws' variance grows by
    systematic^2 (their mean stays; noise uncorrelated with the draws), the same seed gives the same draws, the
    validation-split calibration fits the statistical part only, and the bundle entry round-trips."""
    from gcml.models.tasks.npe import CatalogueNPETask

    d = len(NPE_TARGETS)
    task = CatalogueNPETask(CATALOGUE_COLUMNS, list(NPE_TARGETS))
    task.y_offset, task.y_scale = np.full(d, 11.0), np.full(d, 0.5)
    sysd = np.linspace(0.03, 0.15, d)
    task.systematic = sysd.copy()
    out = torch.tensor([[0.0, *[0.2] * d, *[0.1] * d, 100.0]])
    mean, std = task.decode(out)
    np.testing.assert_allclose(mean.numpy()[0], 11.1, rtol=1e-6)
    np.testing.assert_allclose(std.numpy()[0], np.hypot(0.05, sysd), rtol=1e-5)
    np.testing.assert_allclose(task.statistical_std(std.numpy())[0], 0.05, rtol=1e-4)

    # the flow's draws come from torch's generator seeded with the same seed (MassNPE.sample): the term's noise
    # must not be that sequence, or it would be correlated with the draws and widen them by more than quadrature
    draws = torch.randn(200_000, 1, d, generator=torch.Generator().manual_seed(7)) * 0.1 + 0.2
    phys = task.decode_samples(draws, torch.tensor([100.0]), seed=7)
    np.testing.assert_allclose(phys.mean(0).numpy()[0], 11.1, atol=1e-3)
    np.testing.assert_allclose(phys.std(0).numpy()[0], np.hypot(0.05, sysd), rtol=0.01)
    assert torch.equal(phys, task.decode_samples(draws, torch.tensor([100.0]), seed=7))
    assert not torch.equal(phys, task.decode_samples(draws, torch.tensor([100.0]), seed=8))

    bundle = {"inputs": {"channels": list(CATALOGUE_COLUMNS), "norm": {"mean": [0.0] * 6, "std": [1.0] * 6}},
              "targets": {"names": list(NPE_TARGETS), "loss": "flow_nll",
                          "norm": {"offset": [11.0] * d, "scale": [0.5] * d}}, "calibration": task.calibration()}
    np.testing.assert_allclose(CatalogueNPETask.from_bundle(bundle).systematic, sysd)
    rng = np.random.default_rng(0)
    n = 4000
    mu, sd = rng.normal(size=(n, d)), np.full((n, d), 0.2)
    y = 11.0 + 0.5 * (mu + 1.5 * sd * rng.normal(size=(n, d)))     # residuals 1.5 x the posterior's std
    task.calibrate(torch.from_numpy(np.concatenate([np.zeros((n, 1)), mu, sd, np.full((n, 1), 100.0)], 1)).float(),
                   torch.from_numpy(y))
    assert not np.any(task.systematic) and "systematic_dex" not in task.calibration()
    np.testing.assert_allclose(np.exp(task.spread[:, 0]), 1.5, rtol=0.05)


def test_systematic_shifts_correlated_across_targets():
    """With ``calibration.systematic_correlation`` R the systematic shifts of one draw are correlated as R (on
    draws without spread of their own, the draws' correlation matrix is R and their std the term); the entry
    round-trips through the bundle, and a refit of the calibration drops it with the term."""
    from gcml.models.tasks.npe import CatalogueNPETask

    d = len(NPE_TARGETS)
    task = CatalogueNPETask(CATALOGUE_COLUMNS, list(NPE_TARGETS))
    sysd = np.linspace(0.04, 0.2, d)
    idx = np.arange(d)
    corr = 0.8 ** np.abs(idx[:, None] - idx[None, :])          # a valid correlation matrix
    task.systematic, task.systematic_corr = sysd.copy(), corr
    phys = task.decode_samples(torch.zeros(100_000, 1, d), seed=2)[:, 0].double().numpy()
    np.testing.assert_allclose(phys.std(0), sysd, rtol=0.01)
    np.testing.assert_allclose(np.corrcoef(phys.T), corr, atol=0.01)
    bundle = {"inputs": {"channels": list(CATALOGUE_COLUMNS), "norm": {"mean": [0.0] * 6, "std": [1.0] * 6}},
              "targets": {"names": list(NPE_TARGETS), "loss": "flow_nll",
                          "norm": {"offset": [0.0] * d, "scale": [1.0] * d}}, "calibration": task.calibration()}
    again = CatalogueNPETask.from_bundle(bundle)
    np.testing.assert_allclose(again.systematic_corr, corr)
    n = 200
    out = torch.cat([torch.zeros(n, 1), torch.randn(n, d), torch.full((n, d), 0.3), torch.full((n, 1), 100.0)], 1)
    again.calibrate(out, torch.randn(n, d))
    assert again.systematic_corr is None and "systematic_correlation" not in again.calibration()


@pytest.mark.parametrize("flow", ["maf", "nsf"])
def test_fast_sampling_equals_the_flow(flow, one_thread):
    """MassNPE.sample computes the context's share of each hyper-network's first layer once per catalogue;
    the draws equal zuko's own flow(ctx).sample with the same seed to float rounding."""
    torch.manual_seed(0)
    net = MassNPE(flow=flow, transforms=2, flow_hidden=16, hidden=16, context=8).eval()
    rng = np.random.default_rng(0)
    cat = np.zeros((3, 40, 6), np.float32)
    cat[..., :2] = rng.normal(0, 10, (3, 40, 2))
    cat[..., 2] = rng.normal(0, 150, (3, 40))
    cat[..., 3:] = (10.0, 1.0, 1.0)
    x = torch.from_numpy(cat)
    fast = net.sample(x, 500, seed=3)
    torch.manual_seed(3)
    with torch.no_grad():
        plain = net.flow(net.context(x)).sample((500,))
    assert fast.shape == plain.shape == (500, 3, net.n_targets)
    assert torch.allclose(fast, plain, atol=1e-5)


def test_evaluate_without_the_systematic_term(tmp_path, cli):
    """gcml evaluate --no-systematic scores the shipped mass-npe's statistical posterior (the one to check on
    galaxies of its training families): the same medians, narrower intervals, and the report says which."""
    import json

    from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps

    cfg = SimulateMapsConfig(families=("early", "disk", "early", "merger"), n_galaxies=24, views=1, seed=5,
                             n_gc=300, subsample=(0.3, 1.0), v_error_model="sluggs", catalogues=True)
    simulate_maps(cfg, tmp_path / "g.h5")
    reps = {}
    for flag in ("--systematic", "--no-systematic"):
        r = cli("evaluate", "mass-npe-default", tmp_path / "g.h5", "--split", "all", "-o", tmp_path / flag, "-q",
                flag)
        assert r.exit_code == 0, r.output
        reps[flag] = json.loads((tmp_path / flag / "metrics.json").read_text())
    (lab,) = reps["--systematic"]["models"]     # the bundle's label: its folder and file name
    with_term, without = (reps[f]["models"][lab] for f in ("--systematic", "--no-systematic"))
    assert with_term["_model"]["systematic_term"] == "included" and without["_model"]["systematic_term"] == "left out"
    assert "systematic term left out" in (tmp_path / "--no-systematic" / "report.md").read_text()
    for t in ("log10_mass_within_rout", "log10_mass_total"):
        assert abs(with_term[t]["bias_dex"] - without[t]["bias_dex"]) < 0.02
    cov = [sum(reps[f]["calibration"][lab]["per_target"][t]["coverage"]["0.95"]
               for t in NPE_TARGETS) for f in ("--systematic", "--no-systematic")]
    assert cov[0] >= cov[1]


def test_cramer_von_mises_statistic_known_values():
    """The statistic the rank refit minimises: 1 / (12 n) for perfectly spread values (its minimum), scipy's
    one-sample statistic for random values."""
    from scipy.stats import cramervonmises

    from gcml.evaluation.calibration import cramer_von_mises

    n = 250
    assert cramer_von_mises((2 * np.arange(1, n + 1) - 1) / (2 * n)) == pytest.approx(1 / (12 * n), rel=1e-12)
    u = np.random.default_rng(3).random(500) ** 1.3
    assert cramer_von_mises(u) == pytest.approx(cramervonmises(u, "uniform").statistic, rel=1e-10)
    assert cramer_von_mises(np.array([])) == 0.0


def test_spread_refit_on_ranks_known_answer():
    """fit_spread_to_ranks recovers a known scale law from ranks alone: posterior draws N(0, 1), truths drawn with
    standard deviation exp(0.25 - 0.15 ln(N/100)); after the refit the ranks are uniform in every bin of N.
    Laplace draws with Laplace truths twice as wide give ln 2 without a slope (the fit needs no Gaussian)."""
    from scipy.stats import kstest

    from gcml.evaluation.calibration import fit_spread_to_ranks

    rng = np.random.default_rng(1)
    n = rng.integers(10, 600, 6000).astype(float)
    lg = np.log(n / 100.0)
    draws = rng.normal(size=(400, n.size))
    centred = draws - draws.mean(0)
    truth = rng.normal(size=n.size) * np.exp(0.25 - 0.15 * lg)
    a, b = fit_spread_to_ranks(centred, truth - draws.mean(0), lg)
    assert a == pytest.approx(0.25, abs=0.03) and b == pytest.approx(-0.15, abs=0.03)
    u = (centred * np.exp(a + b * lg)[None] < (truth - draws.mean(0))[None]).mean(0)
    for part in (lg < -1, (lg >= -1) & (lg < 1), lg >= 1):
        assert kstest(u[part], "uniform").pvalue > 0.01
    lap = rng.laplace(size=(400, 3000))
    t2 = 2.0 * rng.laplace(size=3000)
    a2, b2 = fit_spread_to_ranks(lap - lap.mean(0), t2 - lap.mean(0), np.zeros(3000), slope=False)
    assert a2 == pytest.approx(np.log(2.0), abs=0.05) and b2 == 0.0


@pytest.fixture(scope="module")
def refit_set(tmp_path_factory):
    """240 independent catalogues (60 galaxies x 4 views) from the default model's training priors."""
    from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps

    d = tmp_path_factory.mktemp("refit")
    cfg = SimulateMapsConfig(families=("early", "disk", "early", "merger"), n_galaxies=60, views=4, seed=7,
                             n_gc=300, subsample=(0.3, 1.0), v_error_model="sluggs", catalogues=True,
                             merger_steps=100)
    simulate_maps(cfg, d / "cal.h5")
    return d / "cal.h5"


def test_models_calibrate_refits_the_spread_and_keeps_the_rest(refit_set, tmp_path, cli):
    """gcml models calibrate writes a new bundle: spread = old + the rank refit (the same with the same seed),
    with where it was fitted recorded; the systematic term, the weights and the input bundle untouched. It
    refuses to overwrite, a map model, and too few catalogues, each with exit code 2 and one sentence."""
    import hashlib

    from gcml.evaluation.recalibrate import refit_spread
    from gcml.io.bundle import load_bundle, resolve_model_path
    from gcml.models.trained import TrainedModel

    src = resolve_model_path("mass-npe-default")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    r = cli("models", "calibrate", "mass-npe-default", refit_set, "-o", tmp_path / "cal.pt", "--samples", "300")
    assert r.exit_code == 0, r.output
    assert "model bundle:" in r.output and "SBC KS p" in r.output
    old, new = load_bundle(src), load_bundle(tmp_path / "cal.pt")
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    for k in ("systematic_dex", "systematic_correlation", "systematic_method"):
        assert new["calibration"][k] == old["calibration"][k]
    for k, v in old["state_dict"].items():
        assert torch.equal(new["state_dict"][k], v)
    ref = new["calibration"]["spread_refit"]
    assert ref["mapset"] == "cal.h5" and ref["catalogues"] == 240 and ref["samples"] == 300 and ref["seed"] == 0
    assert ref["mapset_sha256"] == hashlib.sha256(refit_set.read_bytes()).hexdigest()
    assert "refitted on independent galaxies" in new["calibration"]["method"]
    again = refit_spread("mass-npe-default", refit_set, tmp_path / "again.pt", n_samples=300)
    np.testing.assert_array_equal(again.spread_after, np.array(new["calibration"]["spread"]))
    np.testing.assert_array_equal(again.spread_before, np.array(old["calibration"]["spread"]))
    assert not np.array_equal(again.spread_after, again.spread_before)
    task = TrainedModel.load(tmp_path / "cal.pt").task    # weights_only; the task reads the refit back
    assert task.spread_refit == ref and np.allclose(task.spread, again.spread_after)
    # refusals
    r = cli("models", "calibrate", "mass-npe-default", refit_set, "-o", tmp_path / "cal.pt")
    assert r.exit_code == 2 and "already exists" in r.output
    r = cli("models", "calibrate", "mass-cnn-default", refit_set, "-o", tmp_path / "cnn.pt")
    assert r.exit_code == 2 and "mass-npe models only" in r.output and not (tmp_path / "cnn.pt").exists()
    r = cli("models", "calibrate", "mass-npe-default", refit_set, "-o", tmp_path / "few.pt", "--split", "test")
    assert r.exit_code == 2 and "needs at least 200" in r.output and not (tmp_path / "few.pt").exists()


def test_models_calibrate_refuses_a_refit_that_cannot_fit_in_memory(refit_set, tmp_path, cli):
    """Posterior draws for every catalogue are held at once: a refit whose draws cannot fit is refused before
    any work, in one sentence, with nothing written."""
    r = cli("models", "calibrate", "mass-npe-default", refit_set, "-o", tmp_path / "big.pt", "--samples",
            "1000000000")
    assert r.exit_code == 2 and "of memory" in r.output and not (tmp_path / "big.pt").exists()

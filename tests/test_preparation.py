"""The input preparation recorded in pi-DOC models (gcml.models.preparation) and the parametrised outputs
(gcml.models.physical_outputs): known answers, and training-mock == prepared unsmoothed mock."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gcml.errors import FormatError, InputError


@pytest.fixture(scope="module")
def mocks(tmp_path_factory):
    """One cluster (seed 101, 9 Gyr) mock-observed four ways with the same seed (same views): smoothed and
    unsmoothed, noiseless and with PS1-depth noise."""
    from gcml.io.mapset import read_mapset
    from gcml.observe.mock import MockObserveConfig, mock_observe
    from gcml.observe.photometric import NoiseConfig
    from gcml.simulate.clusters import SimulateClustersConfig, simulate_clusters

    d = tmp_path_factory.mktemp("prep")
    simulate_clusters(SimulateClustersConfig(preset="mw15", ages="9", seed=101, simulation="test-s101"), d / "snaps")
    noise = NoiseConfig(zeropoint=25.0, exptime=129.0, sky_mag=20.9, poisson=True, read_noise=5.0)
    out = {}
    for name, sm, nz in (("smooth", 4.0, NoiseConfig()), ("raw", 0.0, NoiseConfig()),
                         ("smooth-noisy", 4.0, noise), ("raw-noisy", 0.0, noise)):
        cfg = MockObserveConfig(psf_fwhm=(0.8, 1.5), distance_kpc=(20.0, 60.0), smoothing_px=sm, noise=nz, seed=3)
        mock_observe([d / "snaps"], d / f"{name}.h5", cfg)
        out[name] = read_mapset(d / f"{name}.h5")
    return out


def test_prepared_unsmoothed_noisy_mock_is_the_training_image(mocks):
    """Noise is added before the smoothing in mock-observe; preparing the unsmoothed noisy image gives the
    smoothed training image itself (same kernel, same FFT convolution)."""
    from gcml.models.preparation import ImagePreparation

    raw, ref = mocks["raw-noisy"].maps[:, 0], mocks["smooth-noisy"].maps[:, 0].astype(np.float64)
    assert np.array_equal(mocks["raw-noisy"].meta["shift_x"], mocks["smooth-noisy"].meta["shift_x"])
    out, stats = ImagePreparation().smooth(raw)
    assert np.abs(out - ref).max() <= 1e-6 * np.abs(ref).max()
    assert stats["masked_fraction"] == 0.0


def test_prepared_unsmoothed_noiseless_mock_matches_inside_the_field(mocks):
    """Noiseless mocks go through PSF x Gaussian in one pass, so light leaving the field through the PSF can
    come back through the Gaussian; away from the edges (4 sigma + PSF) the two agree to 1e-4."""
    from gcml.models.preparation import ImagePreparation

    out, _ = ImagePreparation().smooth(mocks["raw"].maps[:, 0])
    ref = mocks["smooth"].maps[:, 0].astype(np.float64)
    inner = (slice(None), slice(30, -30), slice(30, -30))
    assert np.abs(out[inner] - ref[inner]).max() <= 1e-4 * ref.max()
    # an input already smoothed by 4 px is left as it is
    same, st = ImagePreparation().smooth(ref, already_px=4.0)
    assert np.array_equal(same, ref) and st["smoothing_px"] == 0.0
    with pytest.raises(InputError, match="smoothed with sigma"):
        ImagePreparation().smooth(ref, already_px=5.0)


def test_masked_core_is_inpainted_not_zero_filled(mocks):
    """A 4 x 4 NaN patch at the core: the smoothing fills it from its neighbours (normalised convolution).
    Light that only the patch held (a bright star: 2-8 % of the field here) is lost either way; the field's
    total stays within 10 % and the filled image is closer to the unmasked one than a zero-filled image."""
    from gcml.models.preparation import ImagePreparation

    for i in range(len(mocks["raw-noisy"].maps)):
        raw = mocks["raw-noisy"].maps[i, 0].astype(np.float64)
        full, _ = ImagePreparation().smooth(raw)
        y, x = np.unravel_index(np.argmax(full), full.shape)
        holed = raw.copy()
        holed[y - 2:y + 2, x - 2:x + 2] = np.nan
        filled, st = ImagePreparation().smooth(holed)
        assert np.isfinite(filled).all()
        assert st["masked_fraction"] == pytest.approx(16 / raw.size)
        assert st["unfilled_fraction"] == 0.0
        assert filled.sum() == pytest.approx(full.sum(), rel=0.10)
        zero, _ = ImagePreparation().smooth(np.nan_to_num(holed))
        assert np.abs(filled - full).max() < np.abs(zero - full).max()


def test_softlog10_known_answers():
    from gcml.models.preparation import ImagePreparation

    b = 1e-7
    p = ImagePreparation(transform="softlog10", softening=b)
    f = np.array([-1e-5, -b, 0.0, b, 10 * b, 1e-4])
    x = p.transform_array(f)
    assert np.all(np.isfinite(x)) and np.all(np.diff(x) > 0)
    assert x[2] == pytest.approx(math.log10(b))
    assert x[1] + x[3] == pytest.approx(2 * math.log10(b))  # odd about log10 b
    assert x[4] == pytest.approx(math.log10(10 * b), abs=0.005)  # log10 to 1 % above 10 b
    assert x[5] == pytest.approx(-4.0, abs=1e-6)
    import torch

    assert np.allclose(p.transform_tensor(torch.tensor(f)).numpy(), x)
    with pytest.raises(FormatError):
        ImagePreparation(transform="softlog10", softening=0.0)
    with pytest.raises(FormatError):
        ImagePreparation(transform="sqrt")


def test_bundle_round_trip_and_old_bundles():
    from gcml.models.preparation import ImagePreparation

    p = ImagePreparation(transform="softlog10", softening=7e-8, noise="PS1", noise_sigma=(0.0, 2e-7))
    assert ImagePreparation.from_dict(p.to_dict()) == p
    old = {"geometry": {"shape": [160, 160], "pixel_scale": 0.25, "map_attrs": {"smoothing_px": 4.0}},
           "inputs": {"norm": {"transform": ["log10"], "floor": 1e-9}},
           "training_range": {"psf_fwhm": [0.5, 1.5]}}
    q = ImagePreparation.from_bundle(old)
    assert (q.transform, q.floor, q.smoothing_px, q.psf_fwhm_range, q.noise) == ("log10", 1e-9, 4.0, (0.5, 1.5), "none")


def test_noise_estimate_known_answer():
    from gcml.models.preparation import noise_sigma, smoothed_noise_sigma

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:160, 0:160]
    img = 50 * np.exp(-((x - 80) ** 2 + (y - 80) ** 2) / 200.0) + rng.normal(0, 2.0, (160, 160))
    assert noise_sigma(img) == pytest.approx(2.0, rel=0.05)
    # white noise smoothed by a Gaussian of sigma s: sigma / (2 sqrt(pi) s)
    assert smoothed_noise_sigma(1.0, 4.0) == pytest.approx(1 / (2 * math.sqrt(math.pi) * 4), rel=0.01)


def test_parametrised_outputs_stay_physical():
    import torch

    from gcml.models import physical_outputs as po

    z = torch.tensor([-50.0, -3.0, 0.0, 3.0, 50.0], dtype=torch.float64)
    for kind, lo, hi in (("log", 0.0, math.inf), ("logit:0:14.5", 0.0, 14.5)):
        v = po.inverse(kind, z)
        assert torch.all(v >= lo) and torch.all(v <= hi)
        lo_i, hi_i = po.interval(kind, z, torch.full_like(z, 10.0), k=2.0)
        assert torch.all(lo_i >= lo) and torch.all(hi_i <= hi) and torch.all(lo_i <= hi_i)
    a = np.array([0.5, 7.0, 14.0])
    assert np.allclose(po.inverse("logit:0:14.5", po.forward("logit:0:14.5", a)), a)
    assert np.allclose(po.inverse("log", po.forward("log", a)), a)
    # delta method: d exp(z)/dz = exp(z); logistic slope at the middle (hi - lo) / 4
    assert float(po.derivative("logit:0:14.5", torch.tensor(0.0))) == pytest.approx(14.5 / 4)
    with pytest.raises(FormatError):
        po.check_in_range("logit:0:14.5", np.array([15.0]), "age")


def test_light_asymmetry_known_answers():
    """Conselice et al. (2000) rotational asymmetry: 0 for a centred symmetric source, f / (1 + f) for a
    centred source plus an off-centre one of relative flux f (the pair and its rotated image do not overlap),
    1 for a single off-centre source, ~0 for pure noise of known sigma (the noise term removes |n1 - n2|)."""
    from gcml.models.preparation import light_asymmetry

    n = 64
    yy, xx = np.mgrid[0:n, 0:n]

    def blob(y, x, s=1.5):
        return np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s**2))

    c = (n - 1) / 2
    assert light_asymmetry(blob(c, c), 0.0, 20) == pytest.approx(0.0, abs=1e-12)
    assert light_asymmetry(blob(c, c) + blob(c - 8, c + 8) + blob(c + 8, c - 8), 0.0, 20) == pytest.approx(0.0, abs=1e-12)
    for f in (0.1, 0.5, 2.0):
        assert light_asymmetry(blob(c, c) + f * blob(c + 6, c + 3), 0.0, 20) == pytest.approx(f / (1 + f), rel=1e-4)  # Gaussian tails: 1e-5
    assert light_asymmetry(blob(c + 6, c), 0.0, 20) == pytest.approx(1.0, rel=1e-4)
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 1.0, (n, n))
    raw = light_asymmetry(blob(c, c) * 50 + noise, 0.0, 20)
    corr = light_asymmetry(blob(c, c) * 50 + noise, 1.0, 20)
    assert raw > 0.2 and corr < 0.25 * raw  # the noise term removes most of the noise-only asymmetry
    assert np.isnan(light_asymmetry(np.zeros((n, n)), 0.0, 20))

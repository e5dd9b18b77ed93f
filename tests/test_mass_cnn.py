"""mass-cnn: the Kaur et al. (2021) architecture, parameter counts, channel presets."""

from __future__ import annotations

import pytest
import torch

from gcml.errors import ConfigError
from gcml.models.mass_cnn import MassCNN, count_parameters, resolve_channels
from gcml.models.registry import build_model, get_model_spec


@pytest.mark.parametrize(("depth", "expected"), [(2, 92_801), (4, 420_865)])
def test_paper_parameter_counts(depth, expected):
    # DESIGN.md / docs/models.md: the paper quotes 92,930 and 420,994 = these + 129 (one 128->1 dense layer).
    m = build_model("mass-cnn", in_channels=1, n_outputs=1, depth=depth)
    assert count_parameters(m) == expected
    assert expected + 129 == {2: 92_930, 4: 420_994}[depth]


def test_parameter_count_grows_with_channels_and_heads():
    one = count_parameters(MassCNN(1, 1, 2))
    # a second input channel adds 32 x 3 x 3 weights; a log-variance head adds 128 + 1
    assert count_parameters(MassCNN(2, 1, 2)) == one + 32 * 9
    assert count_parameters(MassCNN(1, 2, 2)) == one + 129


@pytest.mark.parametrize("depth", [2, 4])
def test_output_shape_and_layers(depth):
    m = MassCNN(2, 2, depth).eval()
    y = m(torch.zeros(5, 2, 10, 10))
    assert y.shape == (5, 2)
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256][:depth]
    assert all(c.padding == (0, 0) and c.kernel_size == (3, 3) for c in convs)
    drops = [mod.p for mod in m.modules() if isinstance(mod, torch.nn.Dropout)]
    assert drops == [0.25, 0.5]


def test_gcml_variant_is_registered_and_differs():
    spec = get_model_spec("mass-cnn-gcml")
    assert not spec.paper and spec.default_channels == ("sigma", "v", "count")
    m = build_model("mass-cnn-gcml", in_channels=3, n_outputs=2)
    assert any(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.modules())
    assert m(torch.zeros(4, 3, 10, 10)).shape == (4, 2)


def test_channel_presets_and_errors():
    assert resolve_channels("1") == ["sigma"]
    assert resolve_channels(2) == ["sigma", "v"]
    assert resolve_channels("3") == ["sigma", "v", "count"]
    assert resolve_channels("v, sigma") == ["v", "sigma"]
    with pytest.raises(ConfigError, match="count must be 1, 2 or 3"):
        resolve_channels("5")
    with pytest.raises(ConfigError, match="repeat"):
        resolve_channels("sigma,sigma")
    with pytest.raises(ConfigError, match="depth must be 2 or 4"):
        MassCNN(1, 1, 3)


def test_systematic_term_is_added_in_quadrature_and_round_trips():
    """calibration.systematic_dex widens every decoded sigma in quadrature; the val-split calibration fits the
    statistical part only; the bundle entry survives a round trip."""
    import math

    import numpy as np
    import torch

    from gcml.models.tasks.scalar import ScalarRegressionTask

    task = ScalarRegressionTask(["sigma", "v"], ["a", "b"])
    task.y_scale = np.array([0.5, 1.0])
    lv = math.log(0.1**2)       # standardised sigma 0.1 -> 0.05 and 0.1 dex
    out = torch.tensor([[0.0, 0.0, lv, lv]])
    _, sd0 = task.decode(out)
    task.systematic = np.array([0.12, 0.0])
    _, sd = task.decode(out)
    assert float(sd[0, 0]) == pytest.approx(math.hypot(0.05, 0.12), rel=1e-5)
    assert float(sd[0, 1]) == pytest.approx(float(sd0[0, 1]), rel=1e-6)
    entries = task.bundle_entries()
    assert entries["calibration"]["systematic_dex"] == pytest.approx([0.12, 0.0])
    back = ScalarRegressionTask.from_bundle(entries)
    assert np.allclose(back.systematic, [0.12, 0.0])
    assert float(back.decode(out)[1][0, 0]) == pytest.approx(float(sd[0, 0]), rel=1e-6)
    # residuals of exactly 2 claimed sigmas: the val-split calibration sees the network's sigma, not the systematic
    y = torch.tensor([[0.1, 0.2]])
    task.calibrate(out, y)
    assert task.variance_scale == pytest.approx([4.0, 4.0], rel=1e-4)
    assert not np.any(task.systematic)

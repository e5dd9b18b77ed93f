"""pi-DOC networks: Keras padding rule, shapes, parameter and FLOP counts, variants, inference helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcml.errors import ConfigError, InputError
from gcml.models.pidoc import (
    Conv2dSame,
    PidocCED,
    PidocCNN,
    count_keras_parameters,
    flops_per_image,
    keras_same_padding,
)
from gcml.models.registry import build_model, get_model_spec
from gcml.models.trained import TrainedModel

PIDOC_MODELS = ["pidoc-cnn", "pidoc-ced", "pidoc-cnn-lite", "pidoc-ced-lite", "pidoc-net"]


@pytest.mark.parametrize(("size", "kernel", "stride", "expected"), [
    (160, 3, 1, (1, 1)),   # odd kernel: symmetric
    (160, 4, 1, (1, 2)),   # even kernel: TensorFlow pads one more after
    (160, 10, 1, (4, 5)),
    (5, 3, 2, (1, 1)),     # out = 3, total = 2*2 + 3 - 5 = 2
    (6, 3, 2, (0, 1)),     # out = 3, total = 2*2 + 3 - 6 = 1
    (7, 1, 2, (0, 0)),
])
def test_keras_same_padding(size, kernel, stride, expected):
    assert keras_same_padding(size, kernel, stride) == expected


def test_conv2d_same_even_kernel_shifts_like_tensorflow():
    """A 4x4 kernel whose only non-zero weight is at (0, 0) reads x[i-1, j-1] under TF's 'same' rule
    (one pixel of padding before, two after), so the output is the input shifted down and right by one."""
    conv = Conv2dSame(1, 1, 4, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
    x = torch.arange(1.0, 1.0 + 36).reshape(1, 1, 6, 6)
    y = conv(x)
    assert y.shape == x.shape
    expected = torch.zeros_like(x)
    expected[..., 1:, 1:] = x[..., :-1, :-1]
    torch.testing.assert_close(y, expected)
    # stride 2 on an even size: output ceil(6/2) = 3, padding (0, 1) per axis
    conv2 = Conv2dSame(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv2.weight.zero_()
        conv2.weight[0, 0, 0, 0] = 1.0
    torch.testing.assert_close(conv2(x), x[..., ::2, ::2])


@pytest.mark.parametrize("name", PIDOC_MODELS)
def test_registered_models_shapes(name):
    spec = get_model_spec(name)
    assert spec.data_kind == "photometry" and spec.default_data == "images.h5"
    assert spec.paper == (name in ("pidoc-cnn", "pidoc-ced"))
    model = build_model(name).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 1, 160, 160))
    if spec.output == "map":
        assert y.shape == (2, 1, 160, 160)
    elif spec.output == "scalar":
        assert y.shape == (2, 2)
    else:
        assert y["map"].shape == (2, 2, 160, 160) and y["scalar"].shape == (2, 4)
        y = torch.cat([y["map"].flatten(1), y["scalar"]], 1)
    assert torch.isfinite(y).all()


def test_published_cnn_counts():
    m = PidocCNN()
    assert count_keras_parameters(m) == 517_954
    # Keras' trainable count: the BatchNorm moving statistics (2 x 352 values) are not trainable
    assert sum(p.numel() for p in m.parameters()) == 517_954 - 2 * (16 + 32 + 64 + 128 + 64 + 32 + 16)
    # multiply-accumulates: convs 151^2*16*100 + 66^2*32*1600 + 29^2*64*800 + 10^2*128*1600, dense layers
    macs = 151**2 * 16 * 100 + 66**2 * 32 * 1600 + 29**2 * 64 * 800 + 10**2 * 128 * 1600
    macs += 3200 * 64 + 64 * 32 + 32 * 16 + 16 * 2
    assert flops_per_image(m) == macs
    assert m.flat_shape == (128, 5, 5)


def test_keras_batchnorm_conventions():
    m = PidocCED()
    bn = m.enc_a[0].bn
    assert bn.eps == pytest.approx(1e-3) and bn.momentum == pytest.approx(0.01)
    assert m.enc_a[0].sdrop.p == pytest.approx(10 ** -2.5)


def test_variants_are_at_least_10x_cheaper():
    assert flops_per_image(build_model("pidoc-ced-lite")) * 10 < flops_per_image(build_model("pidoc-ced"))
    assert flops_per_image(build_model("pidoc-net")) * 10 < flops_per_image(build_model("pidoc-ced"))
    assert flops_per_image(build_model("pidoc-cnn-lite")) * 10 < flops_per_image(build_model("pidoc-cnn"))


def test_bad_configuration():
    with pytest.raises(ConfigError, match="decoder_filters needs 3"):
        build_model("pidoc-ced", decoder_filters=[64, 32])
    with pytest.raises(ConfigError, match="too small"):
        build_model("pidoc-cnn", input_size=40)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        build_model("pidoc-net", colour=1)
    with pytest.raises(ConfigError, match="built for 160x160"):
        PidocCNN()(torch.zeros(1, 1, 128, 128))
    with pytest.raises(ConfigError, match="divisible by 16"):
        PidocCED()(torch.zeros(1, 1, 150, 150))
    with pytest.raises(ConfigError, match="spatial_dropout"):
        build_model("pidoc-cnn", spatial_dropout=1.5)


def test_training_loop_keywords():
    """The training loop passes in_channels and n_outputs; map networks take n_outputs as channels."""
    m = build_model("pidoc-ced-lite", in_channels=1, n_outputs=2)
    assert m.uncertainty and m(torch.zeros(1, 1, 160, 160)).shape == (1, 2, 160, 160)
    m = build_model("pidoc-cnn", in_channels=1, n_outputs=4)
    assert m.eval()(torch.zeros(1, 1, 160, 160)).shape == (1, 4)


def test_lite_network_learns():
    """A few optimiser steps of the mass-map variant reduce the loss on a fixed smooth target."""
    torch.manual_seed(0)
    model = build_model("pidoc-ced-lite", filters=[8, 16, 16])
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    x = torch.randn(4, 1, 32, 32) * 0.1 + torch.exp(-(xx**2 + yy**2) / 0.2)
    target = 2.0 * x
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = torch.mean((model(x) - target) ** 2)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def _bundle(model, arch, kwargs, targets, output):
    return {"architecture": arch, "arch_kwargs": kwargs, "state_dict": model.state_dict(),
            "inputs": {"channels": ["flux"], "units": ["Lsun/kpc2"],
                       "norm": {"transform": ["log10"], "mean": [-5.0], "std": [2.0], "floor": [1e-12]}},
            "targets": targets, "geometry": {"shape": [32, 32]}}


def test_predict_arrays_known_outputs(tmp_path):
    """Zero weights in the last layer make the outputs equal its biases: check the de-standardisation."""
    kwargs = {"n_outputs": 4, "uncertainty": True, "filters": [4, 8]}
    model = build_model("pidoc-cnn-lite", **kwargs)
    with torch.no_grad():
        last = model.head.mlp[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.5, -1.0, 2.0 * np.log(0.1), 0.0]))
    targets = {"names": ["distance", "age"], "units": ["kpc", "Gyr"], "output": "scalar",
               "norm": {"transform": ["none", "none"], "mean": [30.0, 30.0], "std": [30.0, 30.0]}}
    from gcml.models.bundle import ModelBundle

    path = ModelBundle.from_dict(_bundle(model, "pidoc-cnn-lite", kwargs, targets, "scalar")).save(tmp_path / "m.pt")
    flux = np.full((3, 32, 32), 1e-5)
    flux[0, 0, 0] = 0.0  # floored, counted
    out = TrainedModel.load(path).predict(flux)
    np.testing.assert_allclose(out["distance"], 45.0)
    np.testing.assert_allclose(out["age"], 0.0, atol=1e-12)
    np.testing.assert_allclose(out["distance_std"], 3.0, rtol=1e-6)   # exp(log(0.1)) * 30
    np.testing.assert_allclose(out["age_std"], 30.0, rtol=1e-6)
    assert int(out["n_floored"]) == 1


def test_predict_arrays_map_standardisation():
    """log10 input standardisation, log10 target: an identity-like check through a 1x1 head."""
    kwargs = {"filters": [4, 8], "out_channels": 1}
    model = build_model("pidoc-ced-lite", **kwargs)
    with torch.no_grad():
        model.decoder.head.weight.zero_()
        model.decoder.head.bias.fill_(1.0)
    targets = {"names": ["mass"], "units": ["Msun"], "output": "map",
               "norm": {"transform": ["log10"], "mean": [-1.0], "std": [0.5]}}
    lm = TrainedModel.load(_bundle(model, "pidoc-ced-lite", kwargs, targets, "map"))
    out = lm.predict(np.full((2, 32, 32), 3e-4))
    np.testing.assert_allclose(out["log10_mass"], -0.5, atol=1e-6)       # 1 * 0.5 - 1
    np.testing.assert_allclose(out["mass_total"], 32 * 32 * 10**-0.5, rtol=1e-5)
    xs = lm.task.encode_x(torch.full((1, 1, 2, 2), 1e-3))
    np.testing.assert_allclose(xs.numpy(), (np.log10(1e-3) + 5.0) / 2.0, rtol=1e-6)


def test_predict_arrays_bad_input():
    kwargs = {"filters": [4, 8]}
    model = build_model("pidoc-ced-lite", **kwargs)
    targets = {"names": ["mass"], "units": ["Msun"], "output": "map",
               "norm": {"transform": ["log10"], "mean": [0.0], "std": [1.0]}}
    lm = TrainedModel.load(_bundle(model, "pidoc-ced-lite", kwargs, targets, "map"))
    bad = np.ones((1, 32, 32))
    bad[0, 3, 3] = np.nan
    with pytest.raises(InputError, match="1 NaN or infinite values"):
        lm.predict(bad)
    with pytest.raises(InputError, match="expected \\(H, W\\), \\(N, H, W\\) or \\(N, 1, H, W\\)"):
        lm.predict(np.ones((1, 2, 3, 32, 32)))
    n = torch.get_num_threads()
    ok = lm.predict(np.ones((1, 32, 32)), num_threads=1)
    assert ok["mass"].shape == (1, 32, 32) and torch.get_num_threads() == n
    with pytest.raises(InputError, match="num_threads must be at least 1"):
        lm.predict(np.ones((1, 32, 32)), num_threads=0)


def test_predict_arrays_with_training_task():
    """Bundles from gcml train (with a 'task' entry) are decoded by their task: predict and predict_maps agree."""
    from gcml.models.tasks import ScalarRegressionTask

    task = ScalarRegressionTask(["flux"], ["distance", "age"], "gaussian_nll", target_units=["kpc", "Gyr"])
    task.x_mean, task.x_std = np.array([2.0]), np.array([3.0])
    task.y_offset, task.y_scale = np.array([50.0, 7.0]), np.array([20.0, 3.0])
    kwargs = {"n_outputs": task.n_outputs, "filters": [4, 8]}
    model = build_model("pidoc-cnn-lite", **kwargs).eval()
    b = {"architecture": "pidoc-cnn-lite", "arch_kwargs": kwargs, "state_dict": model.state_dict(),
         "geometry": {}, **task.bundle_entries()}
    x = np.random.default_rng(1).normal(2.0, 3.0, (5, 1, 32, 32))
    tm = TrainedModel.load(b)
    out = tm.predict(x)
    mean, std = tm.predict_maps(x)
    np.testing.assert_allclose(out["distance"], mean[:, 0], rtol=1e-5)
    np.testing.assert_allclose(out["age_std"], std[:, 1], rtol=1e-5)


@pytest.mark.parametrize("name", ["pidoc-ced-lite", "pidoc-cnn-lite", "pidoc-net"])
def test_fuse_for_inference_is_exact(name):
    from gcml.models.pidoc import fuse_for_inference

    torch.manual_seed(3)
    model = build_model(name, filters=[4, 8, 8]) if name != "pidoc-cnn-lite" else build_model(name, filters=[4, 8])
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        ref = model(x)
        fused = fuse_for_inference(model)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        out = fused(x)
    if isinstance(ref, dict):
        ref, out = torch.cat([ref["map"].flatten(1), ref["scalar"]], 1), torch.cat([out["map"].flatten(1), out["scalar"]], 1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_predict_arrays_joint_network():
    """pidoc-net: map and scalar outputs, each with a log-variance, de-standardised per target."""
    kwargs = {"filters": [4, 8]}
    model = build_model("pidoc-net", **kwargs)
    with torch.no_grad():
        model.decoder.head.weight.zero_()
        model.decoder.head.bias.copy_(torch.tensor([1.0, 2.0 * np.log(0.5)]))   # mean 1, sigma 0.5
        last = model.head.mlp[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-1.0, 2.0, 0.0, 2.0 * np.log(0.2)]))
    targets = {"names": ["mass", "distance", "age"], "units": ["Msun", "kpc", "Gyr"], "output": "map+scalar",
               "norm": {"transform": ["log10", "none", "none"], "mean": [-1.0, 50.0, 7.0], "std": [0.5, 20.0, 3.0]}}
    out = TrainedModel.load(_bundle(model, "pidoc-net", kwargs, targets, "map+scalar")).predict(np.full((2, 32, 32), 1e-5))
    np.testing.assert_allclose(out["log10_mass"], -0.5, atol=1e-6)
    np.testing.assert_allclose(out["log10_mass_std"], 0.25, rtol=1e-5)
    np.testing.assert_allclose(out["distance"], 30.0, rtol=1e-6)
    np.testing.assert_allclose(out["age"], 13.0, rtol=1e-6)
    np.testing.assert_allclose(out["distance_std"], 20.0, rtol=1e-5)
    np.testing.assert_allclose(out["age_std"], 0.6, rtol=1e-5)


def test_cli_models_list(cli):
    import json

    r = cli("models", "list", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    names = {a["name"]: a for a in doc["architectures"]}
    assert set(PIDOC_MODELS) <= set(names)
    assert names["pidoc-ced"]["paper"] and names["pidoc-ced"]["output"] == "map"
    assert not names["pidoc-net"]["paper"]
    r = cli("models", "list")
    assert r.exit_code == 0 and "pidoc-cnn-lite" in r.output
    # the shipped defaults say what they are the default for
    shipped = {s["file"]: s["default_for"] for s in doc["shipped_models"]}
    assert shipped["mass-npe-default.pt"] == "gcml predict CATALOGUE"
    assert shipped["pidoc-net-default.pt"] == "gcml predict IMAGE" and shipped["mass-cnn-default.pt"] is None


def test_cli_models_list_shows_shipped_models(cli, tmp_path, monkeypatch):
    import json

    import gcml.cli.models as cm
    from gcml.models.bundle import ModelBundle

    kwargs = {"filters": [4, 8]}
    targets = {"names": ["mass"], "units": ["Msun"], "output": "map",
               "norm": {"transform": ["log10"], "mean": [0.0], "std": [1.0]}}
    ModelBundle.from_dict(_bundle(build_model("pidoc-ced-lite", **kwargs), "pidoc-ced-lite", kwargs, targets,
                                  "map")).save(tmp_path / "pidoc-lite-default.pt")
    monkeypatch.setattr(cm, "SHIPPED_DIR", tmp_path)
    r = cli("models", "list", "--json")
    assert r.exit_code == 0, r.output
    shipped = json.loads(r.output)["shipped_models"]
    assert shipped == [{"file": "pidoc-lite-default.pt", "architecture": "pidoc-ced-lite", "targets": ["mass"],
                        "output": "map", "default_for": None}]

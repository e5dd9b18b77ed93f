"""pi-DOC's perceptual loss: VGG16 built by hand, user-supplied weights, wired into the one training loop."""

from __future__ import annotations

import pytest
import torch
from test_pidoc_training import write_toy_mapset

from gcml.errors import FormatError, InputError
from gcml.models.vgg import PerceptualLoss, load_vgg16_features, vgg16_features


def test_vgg16_parameter_count_known_answer():
    # VGG16's 13 convolution layers hold 14,714,688 parameters (Simonyan & Zisserman 2015, config D;
    # torchvision's vgg16().features has exactly these).
    n = sum(p.numel() for p in vgg16_features("relu5_3").parameters())
    assert n == 14_714_688
    assert len(vgg16_features("relu3_3")) == 16  # torchvision features[:16] ends with relu3_3


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    torch.manual_seed(0)
    net = vgg16_features("relu5_3")
    p = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    # torchvision's layout: the full model's state dict with 'features.' and 'classifier.' keys
    sd = {f"features.{k}": v for k, v in net.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(sd, p)
    return p


def test_load_and_loss_properties(vgg_file, tmp_path):
    f = load_vgg16_features(vgg_file)
    assert all(not q.requires_grad for q in f.parameters())
    loss = PerceptualLoss(f)
    a = torch.randn(2, 1, 32, 32)
    assert float(loss(a, a)) == 0.0
    b = a + 0.5 * torch.randn_like(a)
    pred = b.clone().requires_grad_(True)
    val = loss(pred, a)
    val.backward()
    assert float(val.detach()) > 0 and pred.grad is not None and float(pred.grad.abs().sum()) > 0
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, bad)
    with pytest.raises(FormatError, match="shape"):
        load_vgg16_features(bad)
    with pytest.raises(InputError, match="not found"):
        load_vgg16_features(tmp_path / "none.pth")


def test_train_with_vgg16_weights(vgg_file, tmp_path, cli):
    data = write_toy_mapset(tmp_path / "images.h5", n=24)
    base = ["train", "pidoc-ced-lite", "--data", data, "--epochs", "1", "--batch-size", "8", "--seed", "0",
            "--device", "cpu", "-q"]
    r0 = cli(*base, "-o", tmp_path / "plain")
    r1 = cli(*base, "-o", tmp_path / "vgg", "--vgg16-weights", vgg_file, "--perceptual-weight", "5")
    assert r0.exit_code == 0 and r1.exit_code == 0, r1.output
    import json

    l0 = json.loads((tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()[0])["train_loss"]
    l1 = json.loads((tmp_path / "vgg" / "metrics.jsonl").read_text().splitlines()[0])["train_loss"]
    assert l1 > l0  # the perceptual term adds to the same pixel loss from the same start
    from gcml.io.bundle import load_bundle

    assert load_bundle(tmp_path / "vgg" / "best.pt")["training"]["vgg16_weights"] == str(vgg_file)
    from gcml.errors import ConfigError
    from gcml.training.config import TrainConfig
    from gcml.training.loop import make_task

    with pytest.raises(ConfigError, match="map models"):
        make_task(TrainConfig(model="mass-cnn", vgg16_weights=str(vgg_file)))

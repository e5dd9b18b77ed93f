"""Evaluation metrics (known answers) and the evaluate command (report, comparison table, bad input)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synth_mapsets import make_mapset

from gcml.evaluation.metrics import kaur_accuracy, normalise_0_10, regression_metrics, relative_errors
from gcml.training import TrainConfig, train


def test_metrics_known_answers():
    rng = np.random.default_rng(0)
    y = rng.uniform(11, 13, 20000)
    perfect = regression_metrics(y, y, np.full_like(y, 0.1), data_min=11, data_max=13)
    assert perfect["mae_dex"] == 0 and perfect["accuracy"] == 100 and perfect["bin_accuracy"] == 100
    shifted = regression_metrics(y, y + 0.2, data_min=11, data_max=13)
    assert shifted["bias_dex"] == pytest.approx(0.2) and shifted["scatter_dex"] == pytest.approx(0, abs=1e-9)
    assert shifted["mae_norm"] == pytest.approx(1.0)  # 0.2 dex of a 2-dex range is 1 on the 0-10 scale
    assert shifted["rmse_norm"] == pytest.approx(1.0)
    # accuracy: every bin has mean |E| = 0.2 / M_c averaged per bin
    edges = np.linspace(11, 13, 21)
    k = np.clip(np.digitize(y, edges[1:-1]), 0, 19)
    expect = 100 * (1 - np.mean([np.mean(0.2 / y[k == b]) for b in range(20)]))
    assert kaur_accuracy(y, y + 0.2, 11, 13) == pytest.approx(expect)
    # Gaussian errors with the right sigma cover 68.27% and 95.45% of truths (Gaussian intervals)
    s = rng.uniform(0.05, 0.3, y.size)
    g = regression_metrics(y, y + s * rng.normal(size=y.size), s)
    assert g["coverage_68"] == pytest.approx(0.68, abs=0.01) and g["coverage_95"] == pytest.approx(0.95, abs=0.005)
    assert normalise_0_10(np.array([11.0, 12.0, 13.0]), 11, 13).tolist() == [0, 5, 10]
    assert relative_errors(np.array([2.0]), np.array([3.0]))[0] == 0.5
    b = g["binned_pred"]
    assert len(b["mean"]) == 20 and sum(b["count"]) == y.size


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("ev")
    data = make_mapset(d / "syn.h5", n_gal=40, views=6)
    base = dict(epochs=3, batch_size=64, device="cpu", threads=1, seed=2)
    train(data, TrainConfig(channels=("sigma", "v"), **base), d / "nll")
    train(data, TrainConfig(channels=("sigma",), loss="mse", arch_kwargs={"depth": 4}, **base), d / "mse")
    train(data, TrainConfig(channels=("sigma", "v"), targets=("log10_mass_within_rout",), **base), d / "rout")
    return d, data


def test_evaluate_cli_report_with_several_models(trained, cli):
    d, data = trained
    r = cli("evaluate", d / "nll" / "best.pt", d / "mse" / "best.pt", d / "rout" / "best.pt", data,
            "--split", "test", "-o", d / "rep")
    assert r.exit_code == 0, r.output
    m = json.loads((d / "rep" / "metrics.json").read_text())
    assert set(m["models"]) == {"nll/best.pt", "mse/best.pt", "rout/best.pt"}
    nll = m["models"]["nll/best.pt"]["log10_mass_total"]
    assert {"accuracy", "mae_norm", "rmse_norm", "bias_dex", "scatter_dex", "coverage_68", "coverage_95"} <= set(nll)
    assert set(nll["by_family"]) == {"disk", "merger"}
    assert m["baseline"]["target"] == "log10_mass_within_rout" and m["baseline"]["n"] == m["n_maps"]
    assert m["models"]["rout/best.pt"]["log10_mass_within_rout"]["same_maps_as_tme"] is True
    report = (d / "rep" / "report.md").read_text()
    main, cal = report.split("## Calibration")
    table = [ln for ln in main.splitlines() if ln.startswith("| ")]
    assert len(table) == 2 + 3 + 1 + 6  # 2 table headers, 3 models, TME, 2 families x 3 models
    # calibration of the Gaussian CNNs: SBC per target, TARP per model
    assert len([ln for ln in cal.splitlines() if ln.startswith("| ")]) == 2 + 3 + 3
    c = m["calibration"]["nll/best.pt"]
    assert c["kind"] == "gaussian" and c["n"] == m["n_maps"]
    sbc = c["per_target"]["log10_mass_total"]["sbc"]
    assert 0 <= sbc["ks_p"] <= 1 and sum(sbc["hist"]) == m["n_maps"]
    assert set(c["per_target"]["log10_mass_total"]["coverage"]) == {"0.5", "0.68", "0.9", "0.95"}
    assert c["per_target"]["log10_mass_total"]["coverage"]["0.68"] == pytest.approx(nll["coverage_68"])
    assert len(c["tarp"]["ecp"]) == 101
    for f in ("pred_vs_true.png", "errors.png", "coverage.png", "sbc_ranks.png", "tarp.png", "predictions.npz"):
        assert (d / "rep" / f).stat().st_size > 0
    # the stored test metrics of training equal evaluate's
    from gcml.io.bundle import load_bundle

    stored = load_bundle(d / "nll" / "best.pt")["metrics"]["test"]["log10_mass_total"]
    assert stored["mae_dex"] == pytest.approx(nll["mae_dex"], rel=1e-5)
    r = cli("evaluate", d / "nll" / "best.pt", data, "-o", d / "rep")
    assert r.exit_code == 2 and "already exists" in r.output


def test_evaluate_bad_inputs(trained, cli, tmp_path):
    d, data = trained
    big = make_mapset(tmp_path / "big.h5", n_gal=4, views=2, size=12)
    r = cli("evaluate", d / "nll" / "best.pt", big, "-o", tmp_path / "r1")
    assert r.exit_code == 2 and "model" in r.output and "expects 10x10" in " ".join(r.output.split())
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    r = cli("evaluate", junk, data, "-o", tmp_path / "r2")
    assert r.exit_code == 2 and "not a PyTorch file" in " ".join(r.output.split())
    r = cli("evaluate", d / "nll" / "best.pt", data, "--split", "ood", "-o", tmp_path / "r3")
    assert r.exit_code == 2 and "'ood' split has no maps" in " ".join(r.output.split())
    r = cli("evaluate", data, "-o", tmp_path / "r4")
    assert r.exit_code == 2 and "at least one model bundle" in " ".join(r.output.split())

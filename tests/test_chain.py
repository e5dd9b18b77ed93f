"""The user's chain, as typed: gcml simulate-clusters -> gcml mock-observe snapshots/ --psf 1.0
--distance 60 -> gcml train pidoc-net (smaller sizes, same commands and defaults)."""

from __future__ import annotations

import pytest


@pytest.mark.slow  # about a minute: 21 snapshots of 20,000 stars, 21 images of 160 x 160, one epoch
def test_simulate_clusters_mock_observe_train_as_typed(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli("simulate-clusters", "--n-stars", "20000", "--ages", "1:6:0.25", "-q")
    assert r.exit_code == 0, r.output
    assert "mock-observe splits over snapshots" in " ".join(r.output.split())  # the hint for the next step
    r = cli("mock-observe", "snapshots/", "--psf", "1.0", "--distance", "60")
    assert r.exit_code == 0, r.output
    assert "split over snapshots instead" in " ".join(r.output.split())
    r = cli("train", "pidoc-net", "--epochs", "1", "--threads", "1")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "runs" / "pidoc-net" / "best.pt").is_file()

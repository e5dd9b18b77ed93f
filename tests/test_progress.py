"""Progress of long library calls: silent by default, a tqdm.auto bar with progress=True."""

from __future__ import annotations

import pytest
from synth_mapsets import make_mapset


def test_simulate_maps_silent_by_default_tqdm_on_request(tmp_path, capsys):
    from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps

    cfg = SimulateMapsConfig(n_galaxies=4, views=2, families=("disk",), batch_galaxies=4)
    simulate_maps(cfg, tmp_path / "a.h5")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    simulate_maps(cfg, tmp_path / "b.h5", progress=True)
    err = capsys.readouterr().err
    assert "simulate-maps" in err and "8/8" in err
    with pytest.raises(TypeError, match="progress must be None, True or a callable"):
        simulate_maps(cfg, tmp_path / "c.h5", progress="yes")


def test_train_progress_true(tmp_path, capsys):
    from gcml.training import TrainConfig, train

    data = make_mapset(tmp_path / "syn.h5", n_gal=20, views=4)
    train(data, TrainConfig(channels=("sigma",), epochs=2, batch_size=16, threads=1, device="cpu"),
          tmp_path / "run", progress=True)
    err = capsys.readouterr().err
    assert "epochs" in err and "2/2" in err


def test_evaluate_progress_callable_and_tqdm(tmp_path, capsys):
    """gcml.api.evaluate: silent by default; a callable sees the maps of every model; True draws a bar."""
    from gcml.api import evaluate
    from gcml.training import TrainConfig, train

    data = make_mapset(tmp_path / "syn.h5", n_gal=20, views=4)
    train(data, TrainConfig(channels=("sigma",), epochs=1, batch_size=16, threads=1, device="cpu"), tmp_path / "run")
    capsys.readouterr()
    best = tmp_path / "run" / "best.pt"
    evaluate([best], data, split="all", out=tmp_path / "r0", batch_size=16)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    seen = []
    res = evaluate([best, best], data, split="all", out=tmp_path / "r1", batch_size=16,
                   progress=lambda d, t: seen.append((d, t)))
    n = res.n_maps
    assert seen[-1] == (2 * n, 2 * n) and all(t == 2 * n for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    evaluate([best], data, split="all", out=tmp_path / "r2", batch_size=16, progress=True)
    err = capsys.readouterr().err
    assert "evaluate" in err and f"{n}/{n}" in err

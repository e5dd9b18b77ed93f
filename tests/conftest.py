"""Shared test fixtures: seeded randomness, shared data location, GPU skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Subprocesses started by tests (python -m gcml, scripts, torchrun) import the gcml of this checkout, not
# whichever gcml is installed in the environment (an editable install of another checkout, say).
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


@pytest.fixture(autouse=True)
def _seed_everything():
    from gcml.random import seed_everything

    seed_everything(12345)


@pytest.fixture
def shared_data() -> Path:
    """The read-only reference data folder (../shared/data); skips when absent (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data (reference data) is not present in this checkout")
    return SHARED_DATA


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def npe_mapset(tmp_path_factory):
    """(folder, config): a small simulate-maps MapSet with GC catalogues, ``folder / "a.h5"`` (16 disk and merger
    galaxies x 5 views), for mass-npe training and prediction tests (tests/test_npe.py,
    tests/test_predict_catalogue_npe.py). Tests may write other files into the folder, never ``a.h5``."""
    from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps

    d = tmp_path_factory.mktemp("npe")
    cfg = SimulateMapsConfig(families=("disk", "merger"), n_galaxies=16, views=5, seed=5, subsample=(0.2, 1.0),
                             v_error_kms=(5.0, 20.0), merger_steps=100, batch_galaxies=8)
    simulate_maps(cfg, d / "a.h5")
    return d, cfg


@pytest.fixture
def cli():
    """Invoke the gcml CLI in-process; returns typer's Result (exit_code, output)."""
    from typer.testing import CliRunner

    from gcml.cli.main import app, normalise_argv

    runner = CliRunner()

    def invoke(*args: str, **kw):
        return runner.invoke(app, normalise_argv([str(a) for a in args]), catch_exceptions=False, **kw)

    return invoke

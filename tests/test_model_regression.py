"""Trained models give the numbers they gave before TrainedModel replaced the four loaders, and the
bundles written before (format 1.0: trained, Keras-imported, shipped) still load.

tests/data/model_regression.npz was written by scripts/make_model_regression_reference.py with the old
loaders (``gcml.training.loop.load_model``/``predict_maps``, ``gcml.models.inference.predict_arrays``);
the same script computes the values with the current code.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("make_ref", ROOT / "scripts" / "make_model_regression_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_predictions_unchanged():
    ref = np.load(ROOT / "tests" / "data" / "model_regression.npz")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        now = _script().reference_values()
    finally:
        torch.set_num_threads(n)
    # every recorded output is still produced (outputs added since, e.g. intervals, may join them)
    assert set(ref.files) <= set(now), sorted(set(ref.files) - set(now))
    for k in ref.files:
        np.testing.assert_allclose(now[k], ref[k], rtol=1e-6, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("name", ["bundle_1.0_imported_pidoc-cnn-lite.pt", "bundle_1.0_imported_pidoc-ced-lite.pt",
                                  "bundle_1.0_trained_cnn.pt"])
def test_bundles_written_before_load(name):
    from gcml.io.bundle import load_bundle
    from gcml.models.trained import TrainedModel

    path = ROOT / "tests" / "data" / name
    assert load_bundle(path)["format_version"] == "1.0"
    tm = TrainedModel.load(path)
    out = tm.predict(np.full((1, 32, 32), 1e-4))
    assert all(np.isfinite(v).all() for k, v in out.items() if not k.startswith("raw"))

"""The literature masses used by benchmarks/compare_literature.py: parseable, cited, finite."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("compare_literature", ROOT / "benchmarks" / "compare_literature.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_literature_csv_rows_are_cited_and_finite():
    mod = _module()
    rows = mod.read_literature()
    assert rows
    for r in rows:
        assert r["galaxy"].startswith("NGC ")
        assert r["reference"].strip(), r
        assert r["quantity"] in ("enclosed", "total"), r
        assert math.isfinite(r["log10_mass"]) and 9 < r["log10_mass"] < 16, r
        assert math.isfinite(r["err_dex"]) and r["err_dex"] >= 0, r
        if r["quantity"] == "enclosed":
            radii = [r[k] for k in ("radius_kpc", "radius_arcsec", "radius_re")]
            assert sum(math.isfinite(x) and x > 0 for x in radii) == 1, r


def test_interpolation_is_linear_in_log_radius():
    mod = _module()
    radii = np.array([5.0, 10.0, 20.0, 50.0])
    logm = np.array([11.0, 11.3, 11.6, 12.0])
    v, out = mod.gcml_at(radii, logm, math.sqrt(50.0))
    assert not out and abs(v - 11.15) < 1e-9
    v, out = mod.gcml_at(radii, logm, 100.0)
    assert out and v > 12.0

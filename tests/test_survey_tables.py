"""Multi-galaxy GC tables: galaxy selection, inverse-variance combination of repeats, non-member flags."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

from gcml.errors import InputError
from gcml.io.survey import combine_repeats, read_survey_table
from gcml.prediction.membership import flag_nonmembers


def _survey(tmp_path, ids, ra, dec, v, e):
    t = Table({"Star": ids, "RAJ2000": ra, "DEJ2000": dec, "HRV": v, "e_HRV": e})
    p = tmp_path / "survey.ecsv"
    t.write(p, format="ascii.ecsv")
    return p


def test_combine_repeats_inverse_variance():
    ra = np.array([10.0, 10.0, 10.01, 10.0])
    dec = np.array([5.0, 5.0, 5.0, 5.0 + 1e-6])
    v = np.array([100.0, 110.0, 300.0, 120.0])
    e = np.array([10.0, 20.0, 5.0, 10.0])
    keep, vv, ee, group, groups = combine_repeats(ra, dec, v, e)
    assert list(keep) == [0, 2]
    w = 1 / np.array([10.0, 20.0, 10.0]) ** 2
    vm = np.sum(w * [100, 110, 120]) / w.sum()
    assert vv[0] == pytest.approx(vm) and ee[0] == pytest.approx(w.sum() ** -0.5)
    assert vv[1] == 300.0 and ee[1] == 5.0
    assert groups[0][0] == [0, 1, 3] and groups[0][2] == 2
    assert groups[0][1] == pytest.approx(np.sum(w * (np.array([100, 110, 120]) - vm) ** 2))


def test_select_galaxy_from_ids(tmp_path):
    rng = np.random.default_rng(1)
    n = 30
    ids = [f"NGC1234_S{i}" for i in range(n)] + [f"NGC99_S{i}" for i in range(n)]
    ra = np.r_[10 + rng.random(n) * 0.01, 50 + rng.random(n) * 0.01]
    dec = np.r_[rng.random(n) * 0.01, rng.random(n) * 0.01]
    v = rng.normal(1000, 100, 2 * n)
    e = np.full(2 * n, 10.0)
    ra[5], dec[5] = ra[3], dec[3]       # a repeat measurement in NGC 1234
    p = _survey(tmp_path, ids, ra, dec, v, e)
    gals = read_survey_table(p)
    assert set(gals) == {"NGC 1234", "NGC 99"}
    g = gals["NGC 1234"]
    assert g.table.n == n - 1 and g.n_rows == n and len(g.repeats) == 1 and g.repeats[0][0] == [4, 6]
    assert "inverse-variance" in g.notes[0]
    one = read_survey_table(p, galaxy="ngc 99")
    assert list(one) == ["NGC 99"] and one["NGC 99"].table.n == n
    with pytest.raises(InputError, match="no rows of galaxy 'NGC 3'.*NGC 1234, NGC 99"):
        read_survey_table(p, galaxy="NGC 3")


def test_galaxy_column_and_missing(tmp_path):
    t = Table({"host": ["NGC 1", "NGC 2"] * 6, "ra": np.arange(12.0), "dec": np.zeros(12), "v": np.zeros(12)})
    p = tmp_path / "t.ecsv"
    t.write(p, format="ascii.ecsv")
    assert set(read_survey_table(p)) == {"NGC 1", "NGC 2"}
    t2 = Table({"ra": np.arange(12.0), "dec": np.zeros(12), "v": np.zeros(12)})
    p2 = tmp_path / "t2.ecsv"
    t2.write(p2, format="ascii.ecsv")
    with pytest.raises(InputError, match="which galaxy each row belongs to"):
        read_survey_table(p2)


def test_friendless_flags_outliers():
    rng = np.random.default_rng(3)
    n = 300
    x, y = rng.normal(0, 10, n), rng.normal(0, 10, n)
    v = rng.normal(0, 150, n)
    out = rng.choice(n, 6, replace=False)
    v[out] += 1500.0
    flag = flag_nonmembers(x, y, v, np.full(n, 10.0))
    assert np.all(flag[out])
    members = np.setdiff1d(np.arange(n), out)
    assert flag[members].mean() < 0.03


def test_sluggs_table_as_served(shared_data):
    p = shared_data / "sluggs" / "forbes2017_table5_gc_velocities.tsv"
    gals = read_survey_table(p)
    assert len(gals) == 27
    assert sum(g.n_rows for g in gals.values()) == 3573
    # the exact repeats of the README (NGC 720 rows 30 and 62, and NGC 4374, 4459, 4474) are combined
    assert [30, 62] in [r for r, _, _ in gals["NGC 720"].repeats]
    for name in ("NGC 4374", "NGC 4459", "NGC 4474"):
        assert gals[name].repeats


def _mock_survey(tmp_path):
    """Two SLUGGS galaxies' mock GC systems in one table: NGC 3377 (80 GCs, a repeat measurement and a
    non-member) and NGC 4474 (8 GCs: refused)."""
    from astropy.table import vstack

    from gcml.io.tables import lookup_galaxy
    from gcml.prediction.catalogue import mock_catalogue

    rng = np.random.default_rng(5)
    parts = []
    for name, n in (("NGC 3377", 80), ("NGC 4474", 8)):
        info = lookup_galaxy(name)
        x, y = rng.normal(0, 6, n), rng.normal(0, 6, n)
        v = rng.normal(0, 100, n)
        if n == 80:
            v[7] += 2000.0                      # a foreground/background object
        t = mock_catalogue(x, y, v, ra0_deg=info.ra_deg, dec0_deg=info.dec_deg, distance_mpc=info.distance_mpc,
                           vsys_kms=info.vsys_kms, v_err_kms=np.full(n, 10.0))
        t["Star"] = [f"{name.replace(' ', '')}_S{i}" for i in range(n)]
        parts.append(t)
    t = vstack(parts)
    t.add_row({"RAJ2000": t["RAJ2000"][3], "DEJ2000": t["DEJ2000"][3], "HRV": t["HRV"][3] + 5, "e_HRV": 10.0,
               "Star": "NGC3377_S3b"})
    p = tmp_path / "survey.ecsv"
    t.write(p, format="ascii.ecsv")
    return p


def test_predict_galaxy_all_cli(tmp_path, cli):
    from astropy.table import Table

    p = _mock_survey(tmp_path)
    out = tmp_path / "out"
    r = cli("predict", p, "--galaxy", "all", "-o", out, "--samples", "20", "--split-half", "-q")
    assert r.exit_code == 0, r.output
    t = Table.read(out / "summary.ecsv", format="ascii.ecsv")
    assert list(t["galaxy"]) == ["NGC 3377", "NGC 4474"]
    row = t[0]
    assert row["status"] == "predicted" and row["n_rows"] == 81 and row["n_gc"] == 80
    assert row["n_repeats_combined"] == 2 and row["n_nonmembers"] >= 1
    assert str(t["logM_rout"].unit) == "dex(solMass)" and str(t["r_out"].unit) == "kpc"
    assert np.isfinite(row["split_diff"])
    assert t[1]["status"] == "refused" and "at least 10" in t[1]["reason"]
    g = Table.read(out / "NGC_3377" / "gcs.ecsv", format="ascii.ecsv")
    assert not g["member"][7] and g["n_measurements"][3] == 2
    assert (out / "NGC_3377" / "prediction.json").is_file()
    for f in ("masses.png", "mass_vs_mstar.png", "split_half.png"):
        assert (out / f).stat().st_size > 1000
    # one galaxy by name; refused without --overwrite; per-galaxy options refused
    r = cli("predict", p, "--galaxy", "NGC 3377", "-o", out, "--samples", "20")
    assert r.exit_code == 2 and "overwrite" in r.output
    r = cli("predict", p, "--galaxy", "all", "--distance", "10", "-o", tmp_path / "o2")
    assert r.exit_code == 2 and "--distance" in r.output


def test_edge_warnings():
    """Masses at the edge of the training labels (within 0.15 dex, or a 95 % interval beyond) or outside them
    are warned about, by every prediction (range_checks), not only by surveys."""
    from types import SimpleNamespace

    from gcml.prediction.catalogue import label_warnings

    names, lo, hi = ["log10_mass_total", "log10_mass_within_rout"], [11.0, 10.0], [14.5, 12.5]

    def m(med, lo, hi):
        return SimpleNamespace(label="x", median=med, p16=med - 0.1, p84=med + 0.1, p2_5=lo, p97_5=hi)

    assert label_warnings({"log10_mass_total": m(12.5, 12.2, 12.8), "log10_mass_within_rout": m(11.5, 11.3, 11.7)},
                          names, lo, hi) == []
    w = label_warnings({"log10_mass_total": m(14.4, 14.1, 14.6), "log10_mass_within_rout": m(10.05, 9.9, 10.2)},
                       names, lo, hi)
    assert len(w) == 2 and "upper edge" in w[0] and "lower edge" in w[1]
    w = label_warnings({"log10_mass_total": m(14.7, 14.5, 14.9)}, names, lo, hi)
    assert len(w) == 1 and "outside the training labels' range" in w[0]


def test_predict_galaxy_all_json_and_astropy_outputs(tmp_path, cli):
    """--json prints the summary rows; every predicted galaxy gets prediction.ecsv and maps.fits; the API's
    result offers to_table() (the summary as a QTable) and reports progress to a callable."""
    import astropy.units as u

    from gcml.api import predict

    p = _mock_survey(tmp_path)
    r = cli("predict", p, "--galaxy", "all", "-o", tmp_path / "o", "--samples", "20", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [g["galaxy"] for g in d["galaxies"]] == ["NGC 3377", "NGC 4474"]
    assert d["units"]["logM_rout"] == "dex(solMass)" and d["galaxies"][1]["status"] == "refused"
    assert (tmp_path / "o" / "NGC_3377" / "prediction.ecsv").is_file()
    assert (tmp_path / "o" / "NGC_3377" / "maps.fits").is_file()
    seen = []  # an in-memory astropy Table works as the file does
    res = predict(Table.read(p), galaxy="all", out=tmp_path / "o2", n_samples=20,
                  progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    t = res.to_table()
    assert t["r_out"].unit == u.kpc and list(t["galaxy"]) == ["NGC 3377", "NGC 4474"]


def test_split_halves_at_the_nominal_distance(tmp_path):
    """The two halves of a galaxy share its distance, whose error cancels in their difference: the halves are
    predicted without distance draws, the galaxy itself with them."""
    from gcml.prediction.survey import predict_survey

    res = predict_survey(_mock_survey(tmp_path), tmp_path / "out", galaxy="NGC 3377", n_samples=30,
                         split_half=True, n_splits=3, plots=False)
    g = res.galaxies[0]
    assert len(g.halves) == 2 and len(g.splits) == 3 and g.halves is g.splits[0]
    # three different random splits, each counted by the consistency rate
    assert len({round(p[0].masses["log10_mass_total"].median, 6) for p in g.splits}) == 3
    assert res.split_half_consistency()[1] == 3
    t = res.to_table()
    assert t["n_splits"][0] == 3 and t["split_agree_fraction"][0] in (0, 1 / 3, 2 / 3, 1)
    key = f"log10_mass_within_{int(g.split_aperture_kpc)}kpc"
    assert g.prediction.masses[key].distance_std > 0.01
    for h in g.halves:
        assert h.masses[key].distance_std == 0.0
        assert h.masses[key].p84 > h.masses[key].p16


def test_split_difference_leaves_out_the_shared_systematic():
    """Halves with 68 % half-widths of 0.13 dex, 0.05 of which is the model's systematic term: the statistical
    half-widths are 0.12 and the difference is compared with sqrt(2) x 0.12."""
    from types import SimpleNamespace

    from gcml.prediction.survey import GalaxyResult, split_half_difference

    def half(med, sys_sd):
        m = SimpleNamespace(median=med, p16=med - 0.13, p84=med + 0.13, systematic_std=sys_sd)
        return SimpleNamespace(masses={"log10_mass_within_20kpc": m})

    g = GalaxyResult(name="x", status="predicted", splits=[[half(11.0, 0.05), half(11.1, 0.05)]],
                     split_aperture_kpc=20.0)
    d, s = split_half_difference(g)
    assert d == pytest.approx(-0.1) and s == pytest.approx(np.hypot(0.12, 0.12))
    g.splits = [[half(11.0, 0.0), half(11.1, 0.0)]]
    assert split_half_difference(g)[1] == pytest.approx(np.hypot(0.13, 0.13))

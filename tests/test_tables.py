"""GC catalogue reader (gcml.io.tables): formats, column names, sexagesimal, validation, SLUGGS look-up."""

from __future__ import annotations

import numpy as np
import pytest

from gcml.errors import InputError
from gcml.io.tables import lookup_galaxy, read_gc_table, sluggs_galaxies


def _table(n: int = 30, seed: int = 0):
    from astropy import units as u
    from astropy.table import Table

    rng = np.random.default_rng(seed)
    t = Table()
    t["RAJ2000"] = (161.9264 + rng.normal(0, 0.03, n)) * u.deg
    t["DEJ2000"] = (13.9859 + rng.normal(0, 0.03, n)) * u.deg
    t["HRV"] = (690 + rng.normal(0, 100, n)) * u.km / u.s
    t["e_HRV"] = rng.uniform(5, 20, n) * u.km / u.s
    return t


def test_vizier_tsv_ngc3377(shared_data):
    t = read_gc_table(shared_data / "sluggs" / "ngc3377_gc_rv_forbes2017.tsv.txt")
    assert t.n == 126
    assert t.columns == {"ra": "RAJ2000", "dec": "DEJ2000", "v": "HRV", "v_err": "e_HRV"}
    # first row of the file: 161.947137 +14.007417 810 8
    assert t.ra_deg[0] == pytest.approx(161.947137)
    assert t.dec_deg[0] == pytest.approx(14.007417)
    assert (t.v_kms[0], t.v_err_kms[0]) == (810.0, 8.0)
    assert t.warnings == []


@pytest.mark.parametrize("suffix,fmt", [(".csv", "ascii.csv"), (".ecsv", "ascii.ecsv"), (".fits", "fits"),
                                        (".vot", "votable"), (".txt", "ascii.basic")])
def test_formats_round_trip(tmp_path, suffix, fmt):
    t = _table()
    p = tmp_path / f"gcs{suffix}"
    t.write(p, format=fmt)
    r = read_gc_table(p)
    np.testing.assert_allclose(r.ra_deg, t["RAJ2000"].value, atol=1e-9)
    np.testing.assert_allclose(r.dec_deg, t["DEJ2000"].value, atol=1e-9)
    np.testing.assert_allclose(r.v_kms, t["HRV"].value, rtol=1e-9)
    np.testing.assert_allclose(r.v_err_kms, t["e_HRV"].value, rtol=1e-9)


def test_sexagesimal_and_named_columns(tmp_path):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    t = _table()
    c = SkyCoord(t["RAJ2000"], t["DEJ2000"])
    lines = ["name,alpha_str,delta_str,vel,vel_error"]
    for i, cc in enumerate(c):
        lines.append(f"gc{i},{cc.ra.to_string(u.hour, sep=':', precision=4)},"
                     f"{cc.dec.to_string(u.deg, sep=':', precision=3, alwayssign=True)},{t['HRV'][i]:.3f},"
                     f"{t['e_HRV'][i]:.3f}")
    p = tmp_path / "sexa.csv"
    p.write_text("\n".join(lines) + "\n")
    r = read_gc_table(p, ra_col="alpha_str", dec_col="DELTA_STR", v_col="vel", verr_col="vel_error")
    np.testing.assert_allclose(r.ra_deg, t["RAJ2000"].value, atol=2e-6)
    np.testing.assert_allclose(r.dec_deg, t["DEJ2000"].value, atol=2e-6)
    # without the options the velocity column is found ('vel'), the positions are not
    with pytest.raises(InputError, match="no RA column found.*`ra_col`"):
        read_gc_table(p)


def test_velocity_units_converted(tmp_path):
    from astropy import units as u

    t = _table()
    t["HRV"] = t["HRV"].to(u.m / u.s)
    p = tmp_path / "ms.ecsv"
    t.write(p)
    np.testing.assert_allclose(read_gc_table(p).v_kms, _table()["HRV"].value)


def test_no_error_column_warns(tmp_path):
    t = _table()
    del t["e_HRV"]
    p = tmp_path / "noerr.csv"
    t.write(p)
    r = read_gc_table(p)
    assert np.all(r.v_err_kms == 0) and r.columns["v_err"] is None
    assert any("no velocity-error column" in w for w in r.warnings)


def _csv(tmp_path, rows: list[str], name: str = "bad.csv"):
    p = tmp_path / name
    p.write_text("RA,Dec,v,v_err\n" + "\n".join(rows) + "\n")
    return p


def _rows(n: int = 12) -> list[str]:
    return [f"{161.9 + 0.01 * i:.4f},{13.9 + 0.007 * i:.4f},{690 + 10 * i},10" for i in range(n)]


def test_bad_tables(tmp_path):
    rows = _rows()
    with pytest.raises(InputError, match=r"column v has non-numeric values in row\(s\) 3 .*'fast'"):
        read_gc_table(_csv(tmp_path, rows[:2] + ["161.95,13.95,fast,10"] + rows[3:]))
    with pytest.raises(InputError, match=r"column v has missing, NaN or infinite values in row\(s\) 2"):
        read_gc_table(_csv(tmp_path, rows[:1] + ["161.95,13.95,nan,10"] + rows[2:]))
    with pytest.raises(InputError, match=r"column v has missing, NaN or infinite values in row\(s\) 5"):
        read_gc_table(_csv(tmp_path, rows[:4] + ["161.95,13.95,,10"] + rows[5:]))
    with pytest.raises(InputError, match="rows 2 and 7 have the same position"):
        read_gc_table(_csv(tmp_path, rows[:6] + [rows[1]] + rows[7:]))
    with pytest.raises(InputError, match="has 9 GCs; expected at least 10"):
        read_gc_table(_csv(tmp_path, rows[:9]))
    with pytest.raises(InputError, match="negative velocity errors"):
        read_gc_table(_csv(tmp_path, rows[:11] + ["161.99,13.99,700,-3"]))
    p = tmp_path / "nov.csv"
    p.write_text("RA,Dec,mag\n" + "\n".join(f"{161.9 + 0.01 * i},{13.9 + 0.01 * i},20" for i in range(12)) + "\n")
    with pytest.raises(InputError, match="no velocity column found.*`v_col`.*the table has RA, Dec, mag"):
        read_gc_table(p)
    with pytest.raises(InputError, match="no column 'HRV' \\(given by `v_col`\\)"):
        read_gc_table(p, v_col="HRV")
    with pytest.raises(InputError, match="catalogue file not found"):
        read_gc_table(tmp_path / "missing.tsv")
    e = tmp_path / "empty.tsv"
    e.write_text("# nothing here\n\n")
    with pytest.raises(InputError, match="holds no table"):
        read_gc_table(e)


def test_sluggs_lookup():
    gals = sluggs_galaxies()
    assert len(gals) == 27
    g = lookup_galaxy("ngc3377")
    assert (g.name, g.distance_mpc, g.vsys_kms, g.r_e_arcsec) == ("NGC 3377", 10.9, 690.0, 45.4)
    assert lookup_galaxy("NGC 3377") == lookup_galaxy("3377") == g
    # R_e in kpc: 45.4 arcsec at 10.9 Mpc
    assert g.r_e_kpc == pytest.approx(45.4 / 206264.806 * 10.9e3, rel=1e-6)
    with pytest.raises(InputError, match="'NGC 9999' is not in gcml's SLUGGS table"):
        lookup_galaxy("NGC 9999")

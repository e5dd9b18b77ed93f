"""Harris (1996, 2010 edition) catalogue shipped in gcml/data: parser and lookup against the catalogue's values."""

from __future__ import annotations

import pytest

from gcml.errors import InputError


def test_catalogue_has_all_157_clusters():
    from gcml.prediction.harris import harris_catalogue

    assert len(harris_catalogue()) == 157


@pytest.mark.parametrize("name", ["47 Tuc", "NGC 104", "ngc104", "NGC  104", "47tuc"])
def test_lookup_47_tuc(name):
    from gcml.prediction.harris import lookup

    c = lookup(name)
    assert c.id == "NGC 104" and c.name == "47 Tuc"
    # Part I: 00 24 05.67 -72 04 52.6, R_Sun 4.5 kpc; Part II: E(B-V) 0.04, V_t 3.95, M_V,t -9.42, B-V 0.88
    assert c.ra_deg == pytest.approx((0 + 24 / 60 + 5.67 / 3600) * 15, abs=1e-9)
    assert c.dec_deg == pytest.approx(-(72 + 4 / 60 + 52.6 / 3600), abs=1e-9)
    assert (c.distance_kpc, c.ebv, c.v_t, c.m_v_t, c.b_v) == (4.5, 0.04, 3.95, -9.42, 0.88)


def test_lookup_other_clusters():
    from gcml.prediction.harris import lookup

    m13 = lookup("M 13")
    assert m13.id == "NGC 6205" and m13.distance_kpc == 7.1
    pal5 = lookup("Pal 5")
    assert pal5.dec_deg == pytest.approx(-(6 / 60 + 41.8 / 3600), abs=1e-9)  # "-00 06 41.8": sign of -00
    assert pal5.distance_kpc == 23.2 and pal5.m_v_t == -5.17


def test_unknown_name_is_a_clear_error():
    from gcml.prediction.harris import lookup

    with pytest.raises(InputError, match="`target` NGC 99999: not a Milky Way globular cluster"):
        lookup("NGC 99999")
    with pytest.raises(InputError, match="did you mean"):
        lookup("Tuc")


def test_shipped_copy_matches_reference(shared_data):
    from importlib import resources

    shipped = resources.files("gcml").joinpath("data/catalogs/harris2010_mwgc.dat").read_bytes()
    assert shipped == (shared_data / "catalogs" / "harris2010_mwgc.dat").read_bytes()


def test_half_light_radii_from_part_iii():
    """Part III r_h [arcmin] and R_h = R_Sun tan(r_h): 47 Tuc 3.17' at 4.5 kpc = 4.15 pc (Harris 2010 lists
    r_h in arcmin only; 4.5e3 pc x 3.17/60 x pi/180 = 4.150 pc); Whiting 1 has no distance-free gaps."""
    import math

    from gcml.prediction.harris import harris_catalogue, lookup

    c = lookup("47 Tuc")
    assert c.r_h_arcmin == 3.17
    assert c.r_h_pc == pytest.approx(4.5e3 * math.radians(3.17 / 60), rel=1e-12)
    assert c.r_h_pc == pytest.approx(4.150, abs=5e-4)
    assert lookup("NGC 362").r_h_arcmin == 0.82 and lookup("Pal 1").r_h_arcmin == 0.46
    assert lookup("omega Cen").r_h_arcmin == 5.0
    n = sum(math.isfinite(x.r_h_pc) for x in harris_catalogue().values())
    assert n == 152  # 157 clusters, 5 without r_h or distance

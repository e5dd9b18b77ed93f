"""`gcml info` on every kind of file gcml writes or reads: a short summary by default, everything with
--verbose, one clear line for a file it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
from synth_mapsets import make_mapset

ROOT = Path(__file__).resolve().parents[1]


def _info(cli, *args):
    r = cli("info", *map(str, args))
    assert r.exit_code == 0, r.output
    return r.output


def test_mapset_short_by_default_hashes_with_verbose(tmp_path, cli):
    path = make_mapset(tmp_path / "maps.h5", n_gal=6, views=2)
    # a MapSet made from many parents (mock-observe of hundreds of snapshots): ~30 kB of hashes
    parents = [{"path": f"snapshots/snap_{i:04d}.h5", "sha256": f"{i:064x}"} for i in range(400)]
    with h5py.File(path, "a") as f:
        f.attrs["parents"] = json.dumps(parents)
    short = _info(cli, path)
    assert "400 files: snapshots/snap_0000.h5" in short and "sha256" not in short
    assert len(short) < 6000
    full = _info(cli, path, "--verbose", "--json")
    assert f"{399:064x}" in full and len(full) > 30000
    assert len(_info(cli, path, "--verbose")) > 30000


def test_bundle_metrics_arrays_are_summarised(cli):
    out = _info(cli, ROOT / "gcml" / "data" / "models" / "pidoc-net-default.pt")
    assert "architecture: pidoc-net" in out
    assert "edges: 21 values," in out  # binned metrics: a count and a range, not 21 numbers
    assert "data_sha256" not in out
    # what an image goes through before the network, and how age and distance are decoded
    assert "transform: softlog10" in out and "softening: 7.22e-08" in out and "logit:0:14.5" in out


def test_bundle_shows_its_calibration(cli):
    """How a model's intervals are calibrated is part of what it is: the shipped mass-npe shows its spread
    (refitted on ranks, and on what), its systematic term and how that was measured."""
    out = _info(cli, ROOT / "gcml" / "data" / "models" / "mass-npe-default.pt")
    assert "calibration:" in out and "spread: 6x2 values" in out and "spread_refit:" in out
    assert "catalogues: 4000" in out and "systematic_method: leave-one-family-out" in out
    assert "mapset_sha256" not in out                                   # hashes with --verbose only
    assert "mapset_sha256" in _info(cli, ROOT / "gcml" / "data" / "models" / "mass-npe-default.pt", "--verbose")


def test_snapshot_hdf5(tmp_path, cli):
    from gcml.io.snapshots import Snapshot, write_snapshot

    rng = np.random.default_rng(0)
    snap = Snapshot(pos=rng.normal(size=(100, 3)), vel=rng.normal(size=(100, 3)), mass=np.full(100, 0.5),
                    age=1.0, time=1000.0, metallicity=0.001, simulation="t")
    write_snapshot(tmp_path / "s.h5", snap)
    out = _info(cli, tmp_path / "s.h5")
    assert "gcml.snapshot" in out and "n: 100" in out and "mass_total_msun: 50" in out


def test_nbody_files(shared_data, cli):
    out = _info(cli, shared_data / "nbody" / "nbody6pp_conf.3_0.dat")
    assert "NBODY6/NBODY6++ conf.3" in out and "n: 12500" in out and "mass_total_msun: 7574" in out
    out = _info(cli, shared_data / "nbody" / "clustertools_N10k.dat.10.dat")
    assert "ASCII particle table" in out and "n: 10000" in out and "columns assumed" in " ".join(out.split())


def test_fits_json_ecsv_npz(tmp_path, cli):
    from astropy.table import Table

    from gcml.io.fits import make_tan_wcs, write_fits_image

    w = make_tan_wcs((20, 20), 0.25, ra_deg=10.0, dec_deg=-30.0)
    write_fits_image(tmp_path / "m.fits", np.ones((20, 20)), w, unit="solMass",
                     header_cards=[("GCMLMASS", 3.5, "log10 mass")])
    out = " ".join(_info(cli, tmp_path / "m.fits").split())
    assert "FITS" in out and "RA---TAN/DEC--TAN, centre RA 10.00000 Dec -30.00000 deg, 0.25 arcsec/px" in out
    assert "solMass" in out and "GCMLMASS" in out

    (tmp_path / "p.json").write_text(json.dumps({"galaxy": "NGC 3377", "log10_mass": 11.8,
                                                 "profile": list(range(50))}))
    out = _info(cli, tmp_path / "p.json")
    assert "galaxy: NGC 3377" in out and "50 values, 0 .. 49" in out

    t = Table({"ra": [1.0, 2.0], "mass": [1e11, 2e11]}, units={"ra": "deg", "mass": "solMass"})
    t.write(tmp_path / "t.ecsv")
    out = _info(cli, tmp_path / "t.ecsv")
    assert "ECSV" in out and "rows: 2" in out and "solMass" in out

    np.savez(tmp_path / "a.npz", pred=np.arange(12.0).reshape(3, 4))
    out = _info(cli, tmp_path / "a.npz")
    assert "pred" in out and "3x4" in out and "11" in out


def test_unreadable_file_one_line(tmp_path, cli):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"\x00\x01\x02" * 10)
    r = cli("info", str(bad))
    assert r.exit_code == 2
    assert "not a file gcml reads" in " ".join(r.output.split())

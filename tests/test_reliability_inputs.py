"""Bad input checked before work starts (issue 15): non-finite floats, seeds, sizes, catalogue units,
wrong file types, damaged FITS/HDF5, malicious model files and config files, train option ranges."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from synth_mapsets import make_mapset

from gcml.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MASS_CNN = ROOT / "gcml" / "data" / "models" / "mass-cnn-default.pt"
CENTRE = ["--ra", "161.926", "--dec", "13.986", "--distance", "10.9"]


def _catalogue(path: Path, n: int = 40, header: str = "RA,Dec,v,v_err", dec0: float = 13.986) -> Path:
    rng = np.random.default_rng(0)
    ra, dec = 161.926 + rng.normal(0, 0.03, n), dec0 + rng.normal(0, 0.03, n)
    v = 690 + rng.normal(0, 100, n)
    path.write_text(header + "\n" + "\n".join(f"{a:.6f},{d:.6f},{vv:.1f},10" for a, d, vv in zip(ra, dec, v, strict=True)) + "\n")
    return path


def _snapshot(tmp_path: Path) -> Path:
    from gcml.io.snapshots import Snapshot, write_snapshot

    rng = np.random.default_rng(1)
    n = 300
    snap = Snapshot(pos=rng.normal(0, 2, (n, 3)), vel=rng.normal(0, 3, (n, 3)), mass=np.full(n, 0.5),
                    lum_v=np.full(n, 1.0), age=10.0, metallicity=0.001, simulation="t")
    return write_snapshot(tmp_path / "snap.h5", snap)


def _one_line_error(r, *needles: str) -> None:
    assert r.exit_code == 2, r.output
    assert r.output.count("error:") == 1 and "Traceback" not in r.output, r.output
    for n in needles:
        assert n in r.output, (n, r.output)


# ------------------------------------------------------------------------------------ non-finite floats
@pytest.mark.parametrize("args,opt", [
    (["simulate-maps", "--n-galaxies", "2", "--views", "1", "--extent", "inf"], "--extent"),
    (["simulate-maps", "--n-galaxies", "2", "--views", "1", "--n-gc-slope", "nan"], "--n-gc-slope"),
    (["simulate-maps", "--n-galaxies", "2", "--views", "1", "--log-m200", "nan:13"], "--log-m200"),
    (["simulate-clusters", "--n-stars", "300", "--ages", "1", "--r-half", "nan"], "--r-half"),
    (["simulate-clusters", "--n-stars", "300", "--ages", "nan"], "--ages"),
    (["mock-observe", "SNAP", "--sky-mag", "nan"], "--sky-mag"),
    (["mock-observe", "SNAP", "--zeropoint", "nan", "--poisson"], "--zeropoint"),
    (["mock-observe", "SNAP", "--psf", "nan"], "--psf"),
    (["mock-observe", "SNAP", "--distance", "inf"], "--distance"),
    (["mock-observe", "SNAP", "--exptime", "-inf"], "--exptime"),
    (["train", "mass-cnn", "--data", "MAPS", "--lr", "nan"], "--lr"),
    (["train", "mass-cnn", "--data", "MAPS", "--weight-decay", "inf"], "--weight-decay"),
    (["predict", "CAT", *CENTRE, "--vsys", "nan"], "--vsys"),
    (["predict", "CAT", "--ra", "nan", "--dec", "13.9", "--distance", "10"], "--ra"),
    (["predict", "CAT", *CENTRE[:4], "--distance", "inf"], "--distance"),
])
def test_nonfinite_floats_are_refused(cli, tmp_path, args, opt):
    sub = {"SNAP": str(_snapshot(tmp_path)) if "SNAP" in args else "",
           "MAPS": str(make_mapset(tmp_path / "m.h5", n_gal=6, views=2)) if "MAPS" in args else "",
           "CAT": str(_catalogue(tmp_path / "c.csv")) if "CAT" in args else ""}
    args = [sub.get(a, a) for a in args]
    r = cli(*args, "-o", tmp_path / "out")
    _one_line_error(r, f"option {opt}", "finite" if "--ages" not in opt and "log-m200" not in opt else opt)
    assert not (tmp_path / "out").exists()


def test_library_configs_refuse_nonfinite():
    from gcml.observe.mock import MockObserveConfig
    from gcml.observe.photometric import NoiseConfig
    from gcml.training.config import TrainConfig

    with pytest.raises(ConfigError, match="option `fov_arcsec`: expected a finite number"):
        MockObserveConfig(fov_arcsec=float("nan"))
    with pytest.raises(ConfigError, match="option `zeropoint`: expected a finite number"):
        NoiseConfig(zeropoint=float("nan"))
    with pytest.raises(ConfigError, match="option `lr`: expected a finite number"):
        TrainConfig(model="mass-cnn", lr=float("inf"))


# ---------------------------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("seed", ["-1", "99999999999999999999", str(2**63)])
def test_seed_range(cli, tmp_path, seed):
    r = cli("simulate-maps", "-o", tmp_path / "m.h5", "--n-galaxies", "2", "--views", "1", "--seed", seed)
    _one_line_error(r, "option --seed", "2**63 - 1")
    r = cli("simulate-clusters", "-o", tmp_path / "s", "--n-stars", "300", "--ages", "1", "--seed", seed)
    _one_line_error(r, "option --seed")
    assert not list(tmp_path.iterdir())


def test_largest_seed_works(cli, tmp_path):
    from gcml.random import SEED_MAX, check_seed

    assert check_seed(SEED_MAX) == 2**63 - 1
    r = cli("simulate-maps", "-o", tmp_path / "m.h5", "--n-galaxies", "2", "--views", "1", "--family", "disk",
            "--seed", str(SEED_MAX), "-q")
    assert r.exit_code == 0, r.output


# ------------------------------------------------------------------------------------ sizes up front
@pytest.mark.parametrize("args", [
    ["simulate-maps", "-o", "m.h5", "--n-galaxies", "1000000000", "--views", "100"],
    ["simulate-maps", "-o", "m.h5", "--n-galaxies", "4", "--views", "1000000000"],
    ["simulate-maps", "-o", "m.h5", "--n-galaxies", "4", "--n-pix", "100000"],
    ["simulate-clusters", "-o", "s", "--n-stars", "1000000000", "--ages", "1"],
    ["mock-observe", "SNAP", "-o", "i.h5", "--fov", "100000"],
    ["mock-observe", "SNAP", "-o", "i.h5", "--pixel-scale", "0.00001"],
    ["mock-observe", "SNAP", "-o", "i.h5", "--field-stars", "1000000000000"],
    ["mock-observe", "SNAP", "-o", "i.h5", "--kind", "kinematics", "--map-pixels", "100000"],
    ["predict", "CAT", *CENTRE, "--vsys", "690", "--samples", "100000000", "-o", "p"],
])
def test_sizes_refused_before_work(cli, tmp_path, args):
    import resource

    sub = {"SNAP": str(_snapshot(tmp_path)), "CAT": str(_catalogue(tmp_path / "c.csv"))}
    args = [sub.get(a, str(tmp_path / a) if a in ("m.h5", "s", "i.h5", "p") else a) for a in args]
    t0 = time.time()
    # a missing check must fail this test, not take the machine's memory: cap the address space meanwhile
    with open("/proc/self/status") as fh:
        vm = next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("VmSize:"))
    old = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), old[1]))
    try:
        r = cli(*args)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)
    _one_line_error(r, "would")
    assert "memory" in r.output or "free" in r.output
    assert time.time() - t0 < 30
    assert not any(p.name in ("m.h5", "s", "i.h5", "p") for p in tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ catalogues
def test_catalogue_units_and_contents(cli, tmp_path):
    from astropy.table import Table

    base = _catalogue(tmp_path / "c.csv")
    arr = np.loadtxt(base, delimiter=",", skiprows=1)
    cases = {
        "ra_kms": (("km/s", "deg", "km/s", "km/s"), "expected the right ascension as an angle"),
        "dec_kg": (("deg", "kg", "km/s", "km/s"), "expected the declination as an angle"),
        "v_len": (("deg", "deg", "m", "km/s"), "expected line-of-sight velocities"),
        "v_fast": (("deg", "deg", "km/s", "km/s"), "speed of light"),
    }
    for name, (units, msg) in cases.items():
        v = arr[:, 2] * (500 if name == "v_fast" else 1)
        p = tmp_path / f"{name}.ecsv"
        Table([arr[:, 0], arr[:, 1], v, arr[:, 3]], names=("RA", "Dec", "v", "v_err"), units=units).write(p)
        r = cli("predict", p, *CENTRE, "--vsys", "690", "-o", tmp_path / "o")
        _one_line_error(r, msg)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("RA,Dec,v,v_err\n")
    high = _catalogue(tmp_path / "high.csv", dec0=89.99)
    for p, msg in ((tmp_path / "empty.csv", "no rows"), (tmp_path / "header.csv", "no rows"),
                   (high, "outside -90..90")):
        if p == high:  # push some declinations over 90
            text = p.read_text().replace(",89.9", ",90.9")
            p.write_text(text)
        r = cli("predict", p, *CENTRE, "--vsys", "690", "-o", tmp_path / "o")
        _one_line_error(r, msg)
    r = cli("predict", base, *CENTRE, "--vsys", "400000", "-o", tmp_path / "o")
    _one_line_error(r, "--vsys", "speed of light")
    assert not (tmp_path / "o").exists()


def test_predict_names_the_wrong_file_type(cli, tmp_path):
    maps = make_mapset(tmp_path / "maps.h5", n_gal=6, views=2)
    r = cli("predict", maps, "-o", tmp_path / "o")
    _one_line_error(r, "is a 'gcml.mapset' file", "GC catalogue")
    r = cli("predict", SHIPPED_MASS_CNN, "-o", tmp_path / "o")
    _one_line_error(r, "zip archive")
    assert "--ra" not in r.output


# ------------------------------------------------------------------------------------------- FITS images
def _gcml_image(path: Path, data: np.ndarray | None = None, **cards) -> Path:
    from astropy.io import fits

    from gcml.io.fits import make_tan_wcs

    n = 80
    wcs = make_tan_wcs((n, n), 0.5, ra_deg=180.0, dec_deg=0.0)
    hdr = wcs.to_header()
    hdr["BUNIT"] = "Lsun/kpc2"
    for k, v in cards.items():
        hdr[k] = v
    yy, xx = np.mgrid[0:n, 0:n] - n / 2
    img = 1e6 * np.exp(-(xx ** 2 + yy ** 2) / 50.0) if data is None else data
    fits.PrimaryHDU(np.asarray(img, np.float32), header=hdr).writeto(path, overwrite=True)
    return path


def test_damaged_and_unusual_fits(cli, tmp_path):
    from astropy.io import fits

    good = _gcml_image(tmp_path / "good.fits")
    blob = good.read_bytes()
    (tmp_path / "trunc.fits").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "trunc_hdr.fits").write_bytes(blob[:1000])
    with fits.open(good) as h:
        data, hdr = h[0].data, h[0].header
    fits.PrimaryHDU(np.stack([data, data]), header=hdr).writeto(tmp_path / "cube.fits")
    fits.PrimaryHDU(data).writeto(tmp_path / "nowcs.fits")
    bad = hdr.copy()
    bad["CTYPE1"], bad["CTYPE2"] = "RA---XYZ", "DEC--XYZ"
    fits.PrimaryHDU(data, header=bad).writeto(tmp_path / "badwcs.fits")
    ps1 = hdr.copy()
    del ps1["BUNIT"]
    ps1["PSCAMERA"] = "GPC1"
    ps1["EXPTIME"] = -10.0
    fits.PrimaryHDU(data, header=ps1).writeto(tmp_path / "negexp.fits")
    cases = {"trunc.fits": "not a readable FITS file", "trunc_hdr.fits": "not a readable FITS file",
             "cube.fits": "expected a 2-D image", "nowcs.fits": "WCS", "badwcs.fits": "WCS",
             "negexp.fits": "expected a positive exposure time"}
    for name, msg in cases.items():
        r = cli("predict", tmp_path / name, "-o", tmp_path / "o")
        _one_line_error(r, msg)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------- malicious model files
class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickles_never_run(cli, tmp_path):
    import torch

    marker = tmp_path / "PWNED"
    raw = tmp_path / "raw.pt"
    with open(raw, "wb") as fh:
        pickle.dump({"architecture": _Payload(marker)}, fh, protocol=2)
    zipped = tmp_path / "zipped.pt"
    torch.save({"architecture": "mass-cnn", "x": _Payload(marker)}, zipped)
    maps = make_mapset(tmp_path / "maps.h5", n_gal=12, views=2)
    cat = _catalogue(tmp_path / "c.csv")
    img = _gcml_image(tmp_path / "img.fits")
    for evil in (raw, zipped):
        runs = [
            ("evaluate", evil, maps, "-o", tmp_path / "rep"),
            ("predict", cat, *CENTRE, "--vsys", "690", "--model", evil, "-o", tmp_path / "p"),
            ("predict", img, "--model", evil, "-o", tmp_path / "p"),
            ("info", evil),
        ]
        for args in runs:
            r = cli(*args)
            assert r.exit_code == 2 and "Traceback" not in r.output, (args, r.output)
            assert not marker.exists(), args
        run = tmp_path / f"run_{evil.stem}"
        run.mkdir()
        (run / "checkpoint.pt").write_bytes(evil.read_bytes())
        r = cli("train", "mass-cnn", "--data", maps, "-o", run, "--resume", "--epochs", "2", "--threads", "1")
        assert r.exit_code == 2 and not marker.exists(), r.output


# ---------------------------------------------------------------------------------------- config files
def test_yaml_tags_and_unknown_keys(cli, tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "tag.yaml").write_text(f"simulate-maps:\n  seed: !!python/object/apply:os.system ['touch {marker}']\n")
    (tmp_path / "unknown.toml").write_text("[simulate-maps]\nno_such_option = 3\n")
    (tmp_path / "nan.toml").write_text("[simulate-maps]\nextent = nan\n")
    for cfg, msg in (("tag.yaml", "tag.yaml"), ("unknown.toml", "no_such_option"), ("nan.toml", "finite")):
        r = cli("simulate-maps", "-o", tmp_path / "m.h5", "--n-galaxies", "2", "--views", "1",
                "--config", tmp_path / cfg)
        _one_line_error(r, msg)
    assert not marker.exists() and not (tmp_path / "m.h5").exists()


# ----------------------------------------------------------------------------------- damaged HDF5 inputs
def test_truncated_hdf5_everywhere(cli, tmp_path):
    maps = make_mapset(tmp_path / "maps.h5", n_gal=12, views=2)
    blob = maps.read_bytes()
    for name, data in (("half.h5", blob[: len(blob) // 2]), ("head.h5", blob[:3000]), ("empty.h5", b"")):
        p = tmp_path / name
        p.write_bytes(data)
        for args in (("info", p), ("train", "mass-cnn", "--data", p, "-o", tmp_path / "run", "--epochs", "1"),
                     ("evaluate", SHIPPED_MASS_CNN, p, "-o", tmp_path / "rep"),
                     ("merge", p, maps, "-o", tmp_path / "mm.h5"),
                     ("mock-observe", p, "-o", tmp_path / "i.h5")):
            r = cli(*args)
            assert r.exit_code == 2 and "Traceback" not in r.output and str(p.name) in r.output, (args, r.output)
    assert not [q for q in tmp_path.iterdir() if q.name in ("run", "rep", "mm.h5", "i.h5")]


# ----------------------------------------------------------------------------------- train option ranges
@pytest.mark.parametrize("opt,val", [
    ("--epochs", "0"), ("--batch-size", "0"), ("--lr", "0"), ("--lr", "-1"), ("--weight-decay", "-1"),
    ("--patience", "-1"), ("--nproc", "-1"), ("--workers", "-1"), ("--threads", "-1"), ("--max-memory-gb", "-1"),
    ("--perceptual-weight", "-1"), ("--depth", "3"), ("--channels", "7"), ("--loss", "l7"),
    ("--lr-schedule", "sometimes"), ("--in-memory", "maybe"), ("--target", "nothing"), ("--gpus", "-1"),
    ("--input-transform", "sqrt"), ("--softening", "-1"),
])
def test_train_option_ranges(cli, tmp_path, opt, val):
    maps = make_mapset(tmp_path / "maps.h5", n_gal=30, views=2)
    r = cli("train", "mass-cnn", "--data", maps, "-o", tmp_path / "run", opt, val)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert opt in r.output or opt.lstrip("-").replace("-", "_") in r.output, r.output
    assert not (tmp_path / "run").exists()


def test_pattern_matching_nothing(cli, tmp_path):
    snap = _snapshot(tmp_path)
    r = cli("mock-observe", snap.parent, "--pattern", "*.nothing", "-o", tmp_path / "i.h5")
    _one_line_error(r, "no snapshot files found", "*.nothing")
    assert not (tmp_path / "i.h5").exists()

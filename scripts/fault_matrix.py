#!/usr/bin/env python
"""Fault matrix for gcml (issue 15): bad inputs, kill -9, concurrent writers and a full disk.

Run from the repository root (or anywhere; it puts this checkout first on the import path):

    python scripts/fault_matrix.py --quick            # small sizes, every part (about 15-25 min on 2 cores)
    python scripts/fault_matrix.py --parts bad,kill   # some parts only
    python scripts/fault_matrix.py --trials 40        # more kill -9 trials per writing command

Every outcome is classified:

- ``clean``: exit code 2, one ``error:`` line, no traceback, nothing half-written left at the output;
- ``ok``: the command succeeded and what it wrote equals a complete reference run (kill/concurrency/disk);
- ``traceback``: a Python traceback (a bug by gcml's rules);
- ``segfault``: the process died of a signal it was not sent;
- ``partial``: an incomplete or mixed output that a gcml reader accepts as complete;
- ``silent-wrong``: a bad input accepted (exit 0), or an output that differs from the reference;
- ``debris``: an error exit that left a temporary or output file behind.

The summary (and every case, with ``--json``) is printed at the end; docs/reliability.md has the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200"}
GCML = [sys.executable, "-m", "gcml"]
MEM_LIMIT = 6 << 30  # address-space limit of every command run here: a size check that is missing shows as
#                      an "out of memory" line or a traceback instead of taking the machine down

DEFAULT_MODEL = ROOT / "gcml" / "data" / "models" / "mass-cnn-default.pt"


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))


def run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(GCML + [str(a) for a in argv], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_limit)


def debris(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".gcml-tmp-")]


# ------------------------------------------------------------------------------------------ digests
_VOLATILE = {"created_utc", "seconds", "time_s", "maps_per_s", "cpu_s", "command", "date", "DATE", "run_id",
             "train_maps_per_s", "images_per_second", "gcml_version", "elapsed_s", "wall_s",
             "sha256",  # a file's sha256 covers its creation time
             "run_dir", "best_checkpoint", "last_checkpoint"}  # where the run was written


def _digest_h5(path: Path, h: hashlib._Hash) -> None:
    import h5py
    import numpy as np

    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visit(names.append)
        for n in sorted(names):
            obj = f[n]
            if isinstance(obj, h5py.Dataset):
                h.update(n.encode())
                h.update(np.ascontiguousarray(obj[()]).tobytes() if obj.dtype.kind not in "OSU"
                         else repr(obj[()].tolist()).encode())


def _clean_json(x):
    if isinstance(x, dict):
        return {k: _clean_json(v) for k, v in sorted(x.items()) if k not in _VOLATILE}
    if isinstance(x, list):
        return [_clean_json(v) for v in x]
    return x


def digest(path: Path) -> str:
    """Content digest of an output (file or folder), ignoring timestamps and timings."""
    h = hashlib.sha256()
    paths = [path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file())
    for q in paths:
        if q.name.startswith(".") or q.suffix in (".png", ".md", ".toml", ".jsonl", ".pt"):
            continue  # plots, prose and pickled bundles carry dates; bundles are checked by loading them
        h.update(q.name.encode())
        if q.suffix in (".h5", ".hdf5"):
            _digest_h5(q, h)
        elif q.suffix == ".json":
            try:
                h.update(json.dumps(_clean_json(json.loads(q.read_text())), sort_keys=True).encode())
            except ValueError:
                h.update(b"<bad json>")
        elif q.suffix == ".csv":  # per-epoch metrics: drop the timing columns
            import csv

            rows = list(csv.reader(q.read_text().splitlines()))
            keep = [i for i, c in enumerate(rows[0] if rows else []) if c not in _VOLATILE]
            h.update(json.dumps([[r[i] for i in keep if i < len(r)] for r in rows]).encode())
        elif q.suffix in (".fits", ".fit"):
            from astropy.io import fits

            with fits.open(q) as hd:
                for hdu in hd:
                    if hdu.data is not None:
                        h.update(hdu.data.tobytes())
        else:
            h.update(q.read_bytes())
    return h.hexdigest()


def readable(kind: str, out: Path, cwd: Path) -> bool:
    """Does gcml's own reader accept ``out`` as complete?"""
    if kind == "mapset":
        return run(["info", out], cwd).returncode == 0
    if kind == "series":
        r = run(["mock-observe", out, "-o", cwd / ".probe.h5", "--psf", "1", "--distance", "50", "--fov", "10",
                 "--pixel-scale", "0.5", "--split-by", "image", "--overwrite", "-q"], cwd)
        (cwd / ".probe.h5").unlink(missing_ok=True)
        return r.returncode == 0
    if kind == "fits":
        return (out / "manifest.json").is_file()
    if kind == "run":
        return (out / "summary.json").is_file()
    if kind in ("report", "predict"):
        return (out / ("metrics.json" if kind == "report" else "prediction.json")).is_file()
    raise ValueError(kind)


# ----------------------------------------------------------------------------------------- fixtures
def make_fixtures(fx: Path, quick: bool) -> dict[str, Path]:
    import numpy as np

    fx.mkdir(parents=True, exist_ok=True)
    f = {}
    steps = [
        ("maps", ["simulate-maps", "-o", "maps.h5", "--n-galaxies", "40", "--views", "4", "--family", "disk",
                  "--block-size", "8", "--seed", "1", "-q"]),
        ("shard1", ["simulate-maps", "-o", "s1.h5", "--n-galaxies", "400" if quick else "1000", "--views", "10",
                    "--family", "disk", "--block-size", "20", "--shard", "1/2", "--seed", "3", "-q"]),
        ("shard2", ["simulate-maps", "-o", "s2.h5", "--n-galaxies", "400" if quick else "1000", "--views", "10",
                    "--family", "disk", "--block-size", "20", "--shard", "2/2", "--seed", "3", "-q"]),
        ("snaps", ["simulate-clusters", "-o", "snaps", "--n-stars", "4000", "--ages", "0.5,1,1.5,2",
                   "--simulation", "fx", "-q"]),
        ("images", ["mock-observe", "snaps", "-o", "images.h5", "--psf", "1", "--distance", "30,60", "--fov", "20",
                    "--pixel-scale", "0.5", "--split-by", "image", "--fits", "fits", "-q"]),
        ("run", ["train", "mass-cnn", "--data", "maps.h5", "-o", "run", "--epochs", "1", "--threads", "1", "-q"]),
    ]
    for name, argv in steps:
        target = fx / argv[argv.index("-o") + 1]
        if not target.exists():
            r = run(argv, fx)
            if r.returncode != 0:
                raise SystemExit(f"fixture {name} failed: {r.stderr[-2000:]}")
    f.update(maps=fx / "maps.h5", shard1=fx / "s1.h5", shard2=fx / "s2.h5", snaps=fx / "snaps",
             images=fx / "images.h5", fits=sorted((fx / "fits").glob("*.fits"))[0], model=fx / "run" / "best.pt",
             snap=sorted((fx / "snaps").glob("*.h5"))[0])
    # a GC catalogue around (161.926, 13.986), 60 GCs, v ~ 690 +- 100 km/s
    rng = np.random.default_rng(0)
    ra, dec = 161.926 + rng.normal(0, 0.03, 60), 13.986 + rng.normal(0, 0.03, 60)
    v = 690 + rng.normal(0, 100, 60)
    rows = [f"{a:.6f},{d:.6f},{vv:.1f},10" for a, d, vv in zip(ra, dec, v, strict=True)]
    (fx / "cat.csv").write_text("RA,Dec,v,v_err\n" + "\n".join(rows) + "\n")
    f["cat"] = fx / "cat.csv"
    f["rows"] = rows  # type: ignore[assignment]
    return f


# -------------------------------------------------------------------------------------- bad inputs
def bad_input_cases(f: dict, fx: Path) -> list[dict]:
    """Designed-bad invocations: each must end with exit code 2 and one sentence."""
    import numpy as np

    bad = fx / "bad"
    bad.mkdir(exist_ok=True)
    cases: list[dict] = []

    def add(group: str, argv: list, note: str = "") -> None:
        cases.append({"id": len(cases), "group": group, "argv": [str(a) for a in argv], "note": note})

    # --- base invocations (valid apart from the one bad value added to them)
    base = {
        "simulate-maps": ["simulate-maps", "-o", "OUT.h5", "--n-galaxies", "4", "--views", "2", "--family", "disk", "-q"],
        "simulate-clusters": ["simulate-clusters", "-o", "OUTDIR", "--n-stars", "500", "--ages", "0.5", "-q"],
        "mock-observe": ["mock-observe", f["snap"], "-o", "OUT.h5", "--psf", "1", "--distance", "50", "--fov", "10",
                         "--pixel-scale", "0.5", "--split-by", "image", "-q"],
        "train": ["train", "mass-cnn", "--data", f["maps"], "-o", "OUTDIR", "--epochs", "1", "--threads", "1", "-q"],
        "evaluate": ["evaluate", f["model"], f["maps"], "-o", "OUTDIR"],
        "predict": ["predict", f["cat"], "--ra", "161.926", "--dec", "13.986", "--distance", "10.9", "--vsys", "690",
                    "--samples", "20", "-o", "OUTDIR", "-q"],
        "predict-image": ["predict", f["fits"], "-o", "OUTDIR", "-q"],
        "merge": ["merge", f["shard1"], f["shard2"], "-o", "OUT.h5"],
    }
    nonfinite = ["nan", "inf", "-inf", "NaN"]
    float_opts = {
        "simulate-maps": ["--extent", "--smoothing", "--min-count", "--n-gc-slope"],
        "simulate-maps-range": ["--log-m200", "--early-log-m200", "--bulge-to-disk", "--beta", "--f-rot", "--mass-ratio",
                                "--f-v", "--separation", "--subsample", "--v-error"],
        "simulate-clusters": ["--metallicity", "--r-half", "--r-gal", "--retain-ns", "--retain-bh", "--ages"],
        "mock-observe": ["--psf", "--distance", "--fov", "--pixel-scale", "--smoothing", "--max-shift", "--beta",
                         "--age", "--metallicity", "--sky-mag", "--read-noise", "--saturation", "--zeropoint",
                         "--exptime", "--field-stars", "--ra", "--dec", "--map-extent", "--map-smoothing"],
        "train": ["--lr", "--weight-decay", "--perceptual-weight", "--max-memory-gb"],
        "predict": ["--ra", "--dec", "--distance", "--distance-err", "--vsys", "--re"],
    }
    for cmd, opts in float_opts.items():
        b = base["simulate-maps" if cmd == "simulate-maps-range" else cmd]
        for o in opts:
            for v in nonfinite:
                val = f"{v}:13" if cmd == "simulate-maps-range" and v != "NaN" else v
                add("nonfinite", b + [o, val], f"{cmd} {o} {val}")
    # mock-observe kinematics options need --kind kinematics
    kin = base["mock-observe"] + ["--kind", "kinematics"]
    for o in ("--map-extent", "--map-smoothing"):
        for v in nonfinite:
            add("nonfinite", kin + [o, v])
    # --- out-of-range values
    ranges = [
        ("simulate-maps", "--extent", ["0", "-5"]), ("simulate-maps", "--smoothing", ["0", "-1"]),
        ("simulate-maps", "--n-galaxies", ["0", "-3"]), ("simulate-maps", "--views", ["0", "-1"]),
        ("simulate-maps", "--n-pix", ["0", "-4"]), ("simulate-maps", "--n-gc", ["0", "-1"]),
        ("simulate-maps", "--merger-steps", ["0", "-1"]), ("simulate-maps", "--split", ["0.5,0.1", "1,1,1", "-1,1,1"]),
        ("simulate-maps", "--log-m200", ["13:11", "5:6", "20:21"]), ("simulate-maps", "--subsample", ["0", "2", "-1"]),
        ("simulate-maps", "--v-error", ["-3:-1"]), ("simulate-maps", "--mass-ratio", ["0:0", "-1:1"]),
        ("simulate-maps", "--family", ["spiral", ""]), ("simulate-maps", "--shard", ["0/2", "3/2", "x"]),
        ("simulate-clusters", "--n-stars", ["0", "-5", "1"]), ("simulate-clusters", "--ages", ["-1", "100", "x"]),
        ("simulate-clusters", "--metallicity", ["0", "-0.01", "0.5"]), ("simulate-clusters", "--r-half", ["0", "-1"]),
        ("simulate-clusters", "--r-gal", ["0", "-15"]), ("simulate-clusters", "--retain-ns", ["-0.1", "1.5"]),
        ("simulate-clusters", "--preset", ["nope"]),
        ("mock-observe", "--psf", ["0", "-1"]), ("mock-observe", "--distance", ["0", "-10"]),
        ("mock-observe", "--fov", ["0", "-5"]), ("mock-observe", "--pixel-scale", ["0", "-0.25", "20"]),
        ("mock-observe", "--smoothing", ["-1"]), ("mock-observe", "--max-shift", ["-1"]),
        ("mock-observe", "--beta", ["0", "1", "-2"]), ("mock-observe", "--exptime", ["0", "-100"]),
        ("mock-observe", "--read-noise", ["-1"]), ("mock-observe", "--saturation", ["0", "-5"]),
        ("mock-observe", "--field-stars", ["-1"]), ("mock-observe", "--dec", ["91", "-95"]),
        ("mock-observe", "--ra", ["-1", "400"]), ("mock-observe", "--kind", ["spectra"]),
        ("mock-observe", "--axis", ["w"]), ("mock-observe", "--centre", ["middle"]),
        ("mock-observe", "--flux-convention", ["jy"]), ("mock-observe", "--split", ["0.5,0.1"]),
        ("mock-observe", "--split-by", ["galaxy"]), ("mock-observe", "--compression", ["zip"]),
        ("mock-observe", "--n-random", ["-1"]),
        ("mock-observe", "--shard", ["5/2"]), ("mock-observe", "--age", ["0", "-1", "100"]),
        ("mock-observe", "--metallicity", ["0", "0.5"]),
        ("train", "--epochs", ["0", "-1"]), ("train", "--batch-size", ["0", "-1"]), ("train", "--lr", ["0", "-1"]),
        ("train", "--weight-decay", ["-1"]), ("train", "--patience", ["-1"]), ("train", "--nproc", ["0"]),
        ("train", "--workers", ["-1"]), ("train", "--threads", ["-1"]), ("train", "--in-memory", ["maybe"]),
        ("train", "--channels", ["7", "0", "bogus"]), ("train", "--depth", ["3", "0"]), ("train", "--loss", ["l7"]),
        ("train", "--lr-schedule", ["sometimes"]), ("train", "--target", ["nonexistent"]),
        ("train", "--max-memory-gb", ["-1"]), ("train", "--perceptual-weight", ["-1"]), ("train", "--device", ["tpu"]),
        ("train", "--gpus", ["-1", "3"]),
        ("evaluate", "--split", ["holdout"]), ("evaluate", "--batch-size", ["0"]),
        ("predict", "--distance", ["0", "-10"]), ("predict", "--distance-err", ["-1"]), ("predict", "--dec", ["95", "-91"]),
        ("predict", "--ra", ["-5", "361"]), ("predict", "--samples", ["0", "5"]), ("predict", "--fill", ["77"]),
        ("predict", "--re", ["0", "-2"]), ("predict", "--vsys", ["400000"]), ("predict", "--ra-col", ["NOPE"]),
        ("predict", "--v-col", ["NOPE"]), ("predict", "--galaxy", ["NGC 0"]),
    ]
    for cmd, o, vals in ranges:
        for v in vals:
            add("range", base[cmd] + [o, v], f"{cmd} {o} {v}")
    # --- sizes that cannot fit (must be refused before work starts)
    sizes = [
        base["simulate-maps"] + ["--n-galaxies", "1000000000"], base["simulate-maps"] + ["--views", "1000000000"],
        base["simulate-maps"] + ["--n-pix", "100000"], base["simulate-maps"] + ["--n-gc", "1000000000"],
        base["simulate-clusters"] + ["--n-stars", "1000000000"],
        base["mock-observe"] + ["--fov", "100000"], base["mock-observe"] + ["--pixel-scale", "0.00001"],
        base["mock-observe"] + ["--field-stars", "1000000000000"],
        kin + ["--map-pixels", "100000"], base["mock-observe"] + ["--n-random", "1000000000"],
        base["predict"] + ["--samples", "100000000"],
        base["simulate-maps"] + ["--n-galaxies", "100000000", "--views", "100"],
    ]
    for a in sizes:
        add("size", a)
    # --- seeds
    for cmd in ("simulate-maps", "simulate-clusters", "mock-observe", "train", "predict"):
        for s in ("-1", "99999999999999999999", str(2**64), str(2**63), "1.5", "abc"):
            add("seed", base[cmd] + ["--seed", s])
    # --- files
    (bad / "empty.h5").write_bytes(b"")
    (bad / "text.h5").write_text("hello\n")
    blob = f["maps"].read_bytes()
    (bad / "trunc.h5").write_bytes(blob[: len(blob) // 2])
    (bad / "trunc_head.h5").write_bytes(blob[:2000])
    sblob = f["snap"].read_bytes()
    (bad / "trunc_snap.h5").write_bytes(sblob[: len(sblob) // 2])
    (bad / "folder.h5").mkdir(exist_ok=True)
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {bad / 'PWNED'}",))

    with open(bad / "evil.pt", "wb") as fh:
        pickle.dump({"architecture": Evil()}, fh)
    import torch

    torch.save({"x": Evil()}, bad / "evil_zip.pt")
    (bad / "notmodel.pt").write_text("not a model")
    torch.save({"architecture": "mass-cnn"}, bad / "incomplete.pt")
    mblob = f["model"].read_bytes()
    (bad / "trunc.pt").write_bytes(mblob[: len(mblob) // 2])
    fblob = f["fits"].read_bytes()
    (bad / "trunc.fits").write_bytes(fblob[: len(fblob) // 2])
    (bad / "trunc_hdr.fits").write_bytes(fblob[:2880])
    from astropy.io import fits

    with fits.open(f["fits"]) as hd:
        data, hdr = hd[0].data.astype("f4"), hd[0].header.copy()
    fits.PrimaryHDU(np.stack([data, data])).writeto(bad / "cube.fits", overwrite=True)
    fits.PrimaryHDU(data).writeto(bad / "nowcs.fits", overwrite=True)
    h2 = hdr.copy()
    h2["CTYPE1"], h2["CTYPE2"] = "RA---XYZ", "DEC--XYZ"
    fits.PrimaryHDU(data, header=h2).writeto(bad / "badwcs.fits", overwrite=True)
    h3 = hdr.copy()
    h3["CDELT1"] = 0.0
    h3["CDELT2"] = 0.0
    for k in ("CD1_1", "CD1_2", "CD2_1", "CD2_2", "PC1_1", "PC2_2"):
        h3.remove(k, ignore_missing=True)
    fits.PrimaryHDU(data, header=h3).writeto(bad / "singularwcs.fits", overwrite=True)
    h4 = hdr.copy()
    h4["EXPTIME"] = -10.0
    h4["ZPT"] = 25.0
    fits.PrimaryHDU(data, header=h4).writeto(bad / "negexp.fits", overwrite=True)
    fits.PrimaryHDU(np.full_like(data, np.nan), header=hdr).writeto(bad / "allnan.fits", overwrite=True)
    fits.PrimaryHDU(np.zeros((0, 0), "f4")).writeto(bad / "zero.fits", overwrite=True)
    h5in = [bad / n for n in ("empty.h5", "text.h5", "trunc.h5", "trunc_head.h5", "folder.h5", "missing.h5")]
    for p in h5in + [f["snap"], f["model"]]:
        if p in h5in and p.name != "text.h5":  # info describes any valid file (a text file as a table)
            add("file", ["info", p])
        add("file", ["merge", p, f["maps"], "-o", "OUT.h5"])
        add("file", base["train"][:2] + ["--data", p] + base["train"][4:])
        add("file", ["evaluate", f["model"], p, "-o", "OUTDIR"])
    for p in h5in + [bad / "trunc_snap.h5", f["maps"], f["model"]]:
        add("file", ["mock-observe", p] + base["mock-observe"][2:])
    add("file", ["mock-observe", f["snaps"], "--pattern", "*.nothing"] + base["mock-observe"][2:])
    for p in [bad / n for n in ("evil.pt", "evil_zip.pt", "notmodel.pt", "incomplete.pt", "trunc.pt", "missing.pt")] + \
            [f["maps"], f["snap"]]:
        add("model", ["evaluate", p, f["maps"], "-o", "OUTDIR"], "malicious/broken model")
        add("model", base["predict"] + ["--model", p], "malicious/broken model")
        add("model", base["predict-image"] + ["--model", p], "malicious/broken model")
        if p not in (f["maps"], f["snap"]):  # info describes valid MapSets and snapshots
            add("model", ["info", p], "malicious/broken model")
    # a malicious resume checkpoint
    (fx / "evilrun").mkdir(exist_ok=True)
    shutil.copy(bad / "evil_zip.pt", fx / "evilrun" / "checkpoint.pt")
    add("model", ["train", "mass-cnn", "--data", f["maps"], "-o", fx / "evilrun", "--resume", "--epochs", "2"])
    for p in [bad / n for n in ("trunc.fits", "trunc_hdr.fits", "cube.fits", "nowcs.fits", "badwcs.fits",
                                "singularwcs.fits", "negexp.fits", "allnan.fits", "zero.fits")]:
        add("fits", ["predict", p, "-o", "OUTDIR", "-q"])
    add("fits", ["predict", f["maps"], "-o", "OUTDIR", "-q"], "MapSet given to predict")
    add("fits", ["predict", f["snap"], "-o", "OUTDIR", "-q"], "snapshot given to predict")
    add("fits", ["predict", f["model"], "-o", "OUTDIR", "-q"], "model given to predict")
    # --- catalogues
    rows = f["rows"]
    cat_cases = {
        "empty": "", "header_only": "RA,Dec,v,v_err\n", "one_row": "RA,Dec,v,v_err\n" + rows[0] + "\n",
        "dec_over_90": "RA,Dec,v,v_err\n" + "\n".join(r.replace(",13.", ",93.", 1) for r in rows) + "\n",
        "nan_v": "RA,Dec,v,v_err\n" + "\n".join(rows[:5] + ["161.9,13.9,nan,10"] + rows[5:]) + "\n",
        "text_v": "RA,Dec,v,v_err\n" + "\n".join(rows[:5] + ["161.9,13.9,fast,10"] + rows[5:]) + "\n",
        "binary": "\x00\x01\x02garbage",
        "no_dec": "RA,v,v_err\n" + "\n".join(",".join(r.split(",")[::2][:1] + r.split(",")[2:]) for r in rows) + "\n",
        "neg_err": "RA,Dec,v,v_err\n" + "\n".join(r.rsplit(",", 1)[0] + ",-5" for r in rows) + "\n",
    }
    for name, text in cat_cases.items():
        p = bad / f"cat_{name}.csv"
        p.write_text(text)
        add("catalogue", [base["predict"][0], p] + base["predict"][2:], name)
    from astropy.table import Table

    arr = np.array([[float(x) for x in r.split(",")] for r in rows])
    for name, units in {"ra_kms": ("km/s", "deg", "km/s", "km/s"), "v_len": ("deg", "deg", "m", "km/s"),
                        "v_mag": ("deg", "deg", "mag", "km/s"), "dec_kg": ("deg", "kg", "km/s", "km/s"),
                        "v_over_c": ("deg", "deg", "km/s", "km/s")}.items():
        t = Table([arr[:, 0], arr[:, 1], arr[:, 2] * (1000 if name == "v_over_c" else 1), arr[:, 3]],
                  names=("RA", "Dec", "v", "v_err"), units=units)
        p = bad / f"cat_{name}.ecsv"
        t.write(p, overwrite=True)
        add("catalogue", [base["predict"][0], p] + base["predict"][2:] + (["--vsys", "690000"] if name == "v_over_c" else []), name)
    # --- config files
    cfgs = {
        "yaml_tag.yaml": "seed: !!python/object/apply:os.system ['touch PWNED']\n",
        "yaml_tag2.yaml": "!!python/object/new:os.system [echo]\n",
        "unknown.toml": "[COMMAND]\nbogus_option = 3\n",
        "badtype.toml": "[COMMAND]\nseed = 'abc'\n",
        "broken.toml": "[COMMAND\nseed = 1\n",
        "nan.toml": "[COMMAND]\nSEEDNAN\n",
        "notdict.yaml": "- 1\n- 2\n",
    }
    for cmd in ("simulate-maps", "simulate-clusters", "mock-observe", "train", "evaluate", "predict", "merge"):
        for name, text in cfgs.items():
            p = bad / f"{cmd}_{name}"
            float_key = {"simulate-maps": "extent = nan", "simulate-clusters": "r_half = inf",
                         "mock-observe": "sky_mag = nan", "train": "lr = nan", "evaluate": "batch_size = -1",
                         "predict": "re = nan", "merge": "virtual = 3"}[cmd]
            p.write_text(text.replace("COMMAND", cmd).replace("SEEDNAN", float_key))
            add("config", base[cmd] + ["--config", p], f"{cmd} {name}")
        add("config", base[cmd] + ["--config", bad / "missing.toml"])
    # --- outputs
    (bad / "afile").write_text("x")
    (bad / "adir").mkdir(exist_ok=True)
    for cmd, b in base.items():
        if "OUT.h5" in b:
            for out in (bad / "adir", bad / "afile" / "x.h5", f["maps"]):
                add("output", [out if a == "OUT.h5" else a for a in b], f"{cmd} -o {out.name}")
        else:
            for out in (bad / "afile", bad / "afile" / "sub"):
                add("output", [out if a == "OUTDIR" else a for a in b], f"{cmd} -o {out.name}")
    add("output", base["mock-observe"] + ["--fits", bad / "afile"])
    add("output", ["simulate-clusters", "-o", "OUTDIR", "--n-stars", "500", "--ages", "0.5", "--simulation", "../esc"])
    add("output", ["simulate-clusters", "-o", "OUTDIR", "--n-stars", "500", "--ages", "0.5", "--simulation", "/tmp/abs"])
    add("output", ["simulate-clusters", "-o", f["snaps"], "--n-stars", "4000", "--ages", "0.5,1,1.5,2", "--simulation", "fx"])
    # --- virtual merge with a missing source
    vdir = fx / "virt"
    vdir.mkdir(exist_ok=True)
    for n in ("s1.h5", "s2.h5"):
        shutil.copy(fx / n, vdir / n)
    if not (vdir / "v.h5").exists():
        run(["merge", vdir / "s1.h5", vdir / "s2.h5", "-o", vdir / "v.h5", "--virtual"], fx)
    (vdir / "s2.h5").unlink(missing_ok=True)
    add("virtual", ["info", vdir / "v.h5"])
    add("virtual", base["train"][:2] + ["--data", vdir / "v.h5"] + base["train"][4:])
    add("virtual", ["evaluate", f["model"], vdir / "v.h5", "-o", "OUTDIR"])
    add("virtual", ["merge", vdir / "v.h5", f["maps"], "-o", "OUT.h5"])
    # --- unknown options and missing arguments
    for cmd in ("simulate-maps", "simulate-clusters", "mock-observe", "train", "evaluate", "predict", "merge"):
        add("usage", base[cmd] + ["--no-such-option"])
    add("usage", ["mock-observe"])
    add("usage", ["evaluate", f["model"]])
    add("usage", ["merge"])
    add("usage", ["train", "no-such-model", "--data", f["maps"], "-o", "OUTDIR"])
    return cases


CASE_TIMEOUT = 300


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise CaseTimeout(f"still running after {CASE_TIMEOUT} s")


def _worker(cases_file: str, results_file: str, start: int) -> None:
    """Run cases in this process (typer's test runner) and append one JSON line per case."""
    sys.path.insert(0, str(ROOT))
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))
    from typer.testing import CliRunner

    from gcml.cli.main import app

    cases = json.loads(Path(cases_file).read_text())
    signal.signal(signal.SIGALRM, _alarm)
    runner = CliRunner()
    base_cwd = Path(results_file).parent
    with open(results_file, "a") as out:
        for c in cases[start:]:
            out.write(json.dumps({"start": c["id"]}) + "\n")
            out.flush()
            d = base_cwd / f"case{c['id']:04d}"
            d.mkdir(parents=True, exist_ok=True)
            argv = [str(d / "out.h5") if a == "OUT.h5" else str(d / "outdir") if a == "OUTDIR" else a for a in c["argv"]]
            os.chdir(d)
            before = {p for p in Path(d).rglob("*")}
            t0 = time.time()
            signal.alarm(CASE_TIMEOUT)  # a bad input that is accepted and runs for hours shows as "timeout"
            try:
                r = runner.invoke(app, argv, catch_exceptions=True)
            finally:
                signal.alarm(0)
            text = r.output
            exc = r.exception if not isinstance(r.exception, SystemExit) else None
            created = sorted(str(p.relative_to(d)) for p in set(Path(d).rglob("*")) - before)
            out.write(json.dumps({"id": c["id"], "exit": r.exit_code, "exc": repr(exc)[:300] if exc else None,
                                  "output": text[-600:], "created": created[:10], "s": time.time() - t0}) + "\n")
            out.flush()
            os.chdir(base_cwd)


def classify_bad(c: dict, r: dict, fx: Path) -> str:
    if r.get("signal"):
        return "segfault"
    if r["exc"] is not None and "CaseTimeout" in r["exc"]:
        return "timeout"
    if r["exc"] is not None or "Traceback" in r["output"]:
        return "traceback"
    if (fx / "bad" / "PWNED").exists() or Path("PWNED").exists():
        return "silent-wrong"  # a payload ran
    if r["exit"] == 0:
        return "silent-wrong"
    if r["exit"] != 2:
        return "other-exit"
    lines = [ln for ln in r["output"].strip().splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("error:") or "Error" in ln or "Usage:" in ln]
    if not errs:
        return "other-exit"
    if r["created"]:
        return "debris"
    return "clean"


def part_bad(work: Path, f: dict, fx: Path) -> list[dict]:
    cases = bad_input_cases(f, fx)
    cdir = work / "bad"
    shutil.rmtree(cdir, ignore_errors=True)
    cdir.mkdir(parents=True)
    (cdir / "cases.json").write_text(json.dumps(cases))
    res_file = cdir / "results.jsonl"
    start = 0
    results: dict[int, dict] = {}
    while start < len(cases):
        p = subprocess.run([sys.executable, __file__, "--worker", str(cdir / "cases.json"), str(res_file), str(start)],
                           env=ENV, capture_output=True, text=True)
        lines = [json.loads(ln) for ln in res_file.read_text().splitlines() if ln.strip()]
        last_start = None
        for ln in lines:
            if "start" in ln:
                last_start = ln["start"]
            else:
                results[ln["id"]] = ln
        if p.returncode == 0 or last_start is None:
            break
        if last_start not in results:  # the worker died inside this case
            results[last_start] = {"id": last_start, "exit": p.returncode, "exc": None, "signal": -p.returncode,
                                   "output": p.stderr[-600:], "created": []}
        start = last_start + 1
    out = []
    for c in cases:
        r = results.get(c["id"], {"exit": None, "exc": "not run", "output": "", "created": []})
        out.append({**c, **r, "class": classify_bad(c, r, fx)})
    return out


# --------------------------------------------------------------------------------- writing commands
def writers(f: dict, quick: bool) -> dict[str, dict]:
    """Writing commands for kill/concurrency/disk-full trials: argv (with OUT and SEED), output kind."""
    ng = "300" if quick else "2000"
    return {
        "simulate-maps": {"argv": ["simulate-maps", "-o", "OUT", "--n-galaxies", ng, "--views", "10", "--family",
                                   "disk", "--block-size", "50", "--seed", "SEED", "-q"], "out": "m.h5", "kind": "mapset"},
        "simulate-clusters": {"argv": ["simulate-clusters", "-o", "OUT", "--n-stars", "5000", "--ages", "0.5:2.5:0.25",
                                       "--seed", "SEED", "--simulation", "c", "-q"], "out": "snaps", "kind": "series"},
        "mock-observe": {"argv": ["mock-observe", f["snaps"], "-o", "OUT", "--psf", "0.8,1.2", "--distance", "20,40,80",
                                  "--fov", "20", "--pixel-scale", "0.25", "--split-by", "image", "--seed", "SEED", "-q"],
                         "out": "i.h5", "kind": "mapset"},
        "mock-observe-fits": {"argv": ["mock-observe", f["snaps"], "-o", "OUT.h5", "--fits", "OUT", "--psf", "1",
                                       "--distance", "20,40,80", "--fov", "20", "--pixel-scale", "0.25", "--split-by",
                                       "image", "--seed", "SEED", "-q"], "out": "fitsdir", "kind": "fits"},
        "merge": {"argv": ["merge", f["shard1"], f["shard2"], "-o", "OUT"], "out": "mm.h5", "kind": "mapset", "seedless": True},
        "train": {"argv": ["train", "mass-cnn", "--data", f["maps"], "-o", "OUT", "--epochs", "4", "--threads", "1",
                           "--seed", "SEED", "-q"], "out": "run", "kind": "run"},
        "evaluate": {"argv": ["evaluate", DEFAULT_MODEL, f["shard1"], "-o", "OUT", "--split", "all"], "out": "rep",
                     "kind": "report", "seedless": True},
        "predict": {"argv": ["predict", f["cat"], "--ra", "161.926", "--dec", "13.986", "--distance", "10.9", "--vsys",
                             "690", "--samples", "2000", "-o", "OUT", "--seed", "SEED", "-q"], "out": "pred", "kind": "predict"},
    }


def _argv(w: dict, out: Path, seed: int) -> list[str]:
    a = [str(out) + ".h5" if x == "OUT.h5" else str(out) if x == "OUT" else str(seed) if x == "SEED" else str(x)
         for x in w["argv"]]
    return a


def reference(name: str, w: dict, refdir: Path, seed: int) -> str:
    out = refdir / f"{name}-{seed}" / w["out"]
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        r = run(_argv(w, out, seed), out.parent)
        if r.returncode != 0:
            raise SystemExit(f"reference run of {name} failed: {r.stderr[-1500:]}")
    return digest(out)


def judge_output(w: dict, out: Path, cwd: Path, refs: set[str]) -> str:
    """After a cut or failed run: no output, or a visibly incomplete one, or one equal to a reference."""
    if not out.exists():
        return "ok"
    if not readable(w["kind"], out, cwd):
        return "ok"  # visibly incomplete: gcml's readers refuse it
    try:
        d = digest(out)
    except Exception:  # noqa: BLE001
        return "partial"
    if w["kind"] == "run":
        return "ok" if d in refs else "partial"
    return "ok" if d in refs else "partial"


def _select(ws: dict[str, dict], commands: str | None) -> dict[str, dict]:
    return ws if not commands else {c: ws[c] for c in commands.split(",")}


def part_kill(work: Path, f: dict, quick: bool, trials: int, rng: random.Random,
              commands: str | None = None) -> list[dict]:
    ws = _select(writers(f, quick), commands)
    refdir = work / "ref"
    rows = []
    for name, w in ws.items():
        ref = reference(name, w, refdir, 7)
        t0 = time.time()
        tdir = work / "kill" / name
        shutil.rmtree(tdir, ignore_errors=True)
        tdir.mkdir(parents=True)
        r = run(_argv(w, tdir / "timing" / w["out"], 7), tdir)
        t_full = time.time() - t0
        for k in range(trials):
            d = tdir / f"t{k:02d}"
            d.mkdir()
            out = d / w["out"]
            delay = rng.uniform(0.3, max(0.6, t_full * 1.1))
            p = subprocess.Popen(GCML + _argv(w, out, 7), cwd=d, env=ENV, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, preexec_fn=_limit)
            time.sleep(delay)
            killed = p.poll() is None
            if killed:
                p.send_signal(signal.SIGKILL)
            p.wait()
            cls = judge_output(w, out, d, {ref})
            if not killed and p.returncode != 0:
                cls = "traceback" if p.returncode == 1 else "other-exit"
            rows.append({"part": "kill", "command": name, "trial": k, "delay_s": round(delay, 2), "killed": killed,
                         "exit": p.returncode, "class": cls, "temps_left": len(debris(d))})
        # recovery: the next run into a trial folder completes and removes what the killed ones left
        d = tdir / "t00"
        out = d / w["out"]
        r = run(_argv(w, out, 7) + (["--overwrite"] if w["kind"] != "run" else ["--overwrite"]), d)
        rec = "ok" if r.returncode == 0 and digest(out) == ref and not debris(d) else \
            f"failed: rc={r.returncode} temps={len(debris(d))} {r.stderr[-300:]}"
        rows.append({"part": "kill-recovery", "command": name, "class": "ok" if rec == "ok" else "partial",
                     "detail": rec, "t_full_s": round(t_full, 1)})
        print(f"  kill {name}: {Counter(x['class'] for x in rows if x.get('command') == name)}", flush=True)
    return rows


def part_concurrent(work: Path, f: dict, quick: bool, rng: random.Random, commands: str | None = None) -> list[dict]:
    ws = _select(writers(f, quick), commands)
    refdir = work / "ref"
    rows = []
    for name, w in ws.items():
        for n_writers in (2, 3, 4):
            for overwrite in (False, True):
                d = work / "conc" / f"{name}-{n_writers}-{int(overwrite)}"
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir(parents=True)
                out = d / w["out"]
                seeds = [7] * n_writers if w.get("seedless") else [7 + 100 * i for i in range(n_writers)]
                procs = [subprocess.Popen(GCML + _argv(w, out, s) + (["--overwrite"] if overwrite else []), cwd=d,
                                          env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          preexec_fn=_limit) for s in seeds]
                res = [(p.wait(), *p.communicate()) for p in procs]
                codes = [c for c, _, _ in res]
                ok = [s for s, (c, _, _) in zip(seeds, res, strict=True) if c == 0]
                msgs = [e.strip().splitlines()[-1] if e.strip() else "" for c, _, e in res if c != 0]
                cls = "ok"
                if any(c not in (0, 2) for c in codes):
                    cls = "traceback" if any("Traceback" in e for _, _, e in res) else "other-exit"
                elif not ok:
                    cls = "other-exit" if out.exists() else "ok"
                else:
                    refs = {reference(name, w, refdir, s) for s in set(ok)}
                    if not readable(w["kind"], out, d) or digest(out) not in refs:
                        cls = "partial"  # mixed or incomplete output taken as complete
                if not overwrite and len(ok) > 1:
                    cls = "silent-wrong"  # two runs both claim to have written the same output
                rows.append({"part": "concurrent", "command": name, "writers": n_writers, "overwrite": overwrite,
                             "exits": codes, "class": cls, "messages": sorted(set(msgs))[:3],
                             "temps_left": len(debris(d))})
        print(f"  concurrent {name}: {Counter(x['class'] for x in rows if x['command'] == name)}", flush=True)
    return rows


def part_full(work: Path, f: dict, quick: bool, commands: str | None = None) -> list[dict]:
    ws = _select(writers(f, quick), commands)
    mnt = work / "tmpfs"
    mnt.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"  disk full: cannot mount a tmpfs ({r.stderr.strip()}); see tests/test_reliability_io.py for the "
              "injected-ENOSPC tests", flush=True)
        return [{"part": "full", "command": "-", "class": "skipped", "detail": r.stderr.strip()}]
    rows = []
    try:
        for name, w in ws.items():
            for free_kb in (0, 16, 256, 2048):
                for q in mnt.iterdir():
                    shutil.rmtree(q) if q.is_dir() else q.unlink()
                st = os.statvfs(mnt)
                avail = st.f_bavail * st.f_frsize
                fill = max(0, avail - free_kb * 1024)
                with open(mnt / ".filler", "wb") as fh:
                    try:
                        fh.write(b"\0" * fill)
                    except OSError:
                        pass
                out = mnt / w["out"]
                r = run(_argv(w, out, 7), mnt)
                left = [q for q in mnt.rglob("*") if q.name != ".filler"]
                err = r.stderr.strip().splitlines()
                if r.returncode < 0 or r.returncode in (139, 134, 135):
                    cls = "segfault"
                elif "Traceback" in r.stderr:
                    cls = "traceback"
                elif r.returncode == 0:
                    cls = "ok" if digest(out) == reference(name, w, work / "ref", 7) else "silent-wrong"
                elif r.returncode == 2:
                    cls = "clean" if not debris(mnt) and (not out.exists() or not readable(w["kind"], out, mnt)) \
                        else "debris"
                else:
                    cls = "other-exit"
                rows.append({"part": "full", "command": name, "free_kb": free_kb, "exit": r.returncode, "class": cls,
                             "message": err[-1][:200] if err else "", "left": [str(q.name) for q in left][:5]})
            print(f"  disk full {name}: {Counter(x['class'] for x in rows if x['command'] == name)}", flush=True)
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller writing commands")
    ap.add_argument("--parts", default="bad,kill,concurrent,full")
    ap.add_argument("--trials", type=int, default=20, help="kill -9 trials per writing command")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=None, help="write every case's outcome here")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--commands", default=None, help="writing commands for kill/concurrent/full, comma-separated "
                    "(default: all, in the order of writers())")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        _worker(a.worker[0], a.worker[1], int(a.worker[2]))
        return
    work = a.work or Path(tempfile.mkdtemp(prefix="gcml-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    t0 = time.time()
    print(f"work folder {work}", flush=True)
    fx = work / "fixtures"
    f = make_fixtures(fx, a.quick)
    parts = a.parts.split(",")
    rows: list[dict] = []
    if "bad" in parts:
        bad = part_bad(work, f, fx)
        rows += [{"part": "bad", **b} for b in bad]
        print(f"  bad inputs: {len(bad)} cases {Counter(b['class'] for b in bad)}", flush=True)
    if "full" in parts:
        rows += part_full(work, f, a.quick, a.commands)
    if "concurrent" in parts:
        rows += part_concurrent(work, f, a.quick, rng, a.commands)
    if "kill" in parts:
        rows += part_kill(work, f, a.quick, a.trials, rng, a.commands)
    table: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        table[r["part"]][r["class"]] += 1
    print(f"\nfault matrix ({time.time() - t0:.0f} s):")
    for part, cnt in table.items():
        print(f"  {part:14s} {sum(cnt.values()):4d}  " + "  ".join(f"{k}={v}" for k, v in sorted(cnt.items())))
    bad_rows = [r for r in rows if r["class"] not in ("clean", "ok", "skipped")]
    for r in bad_rows[:60]:
        print("  !", json.dumps({k: r.get(k) for k in ("part", "command", "group", "note", "argv", "class", "exit",
                                                        "exc", "output", "messages", "detail", "message")
                                if r.get(k) is not None})[:600])
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1, default=str))
    sys.exit(1 if bad_rows else 0)


if __name__ == "__main__":
    main()

"""Benchmark: mock-observe images per second (160x160 px, 50,000-star snapshots, Moffat PSF + smoothing).

Compares, in the same run and on the same snapshots:

* naive baseline: per image, ``np.histogram2d`` of flux and mass, then ``scipy.signal.fftconvolve`` of
  the flux with the Moffat kernel and of both maps with the Gaussian (what a straightforward script does);
* gcml core: :class:`gcml.observe.photometric.PhotometricImager` (all views of a snapshot binned in one
  ``np.bincount`` pass, one batched ``rfft2`` with the cached combined Moffat*Gaussian kernel);
* gcml end to end: :func:`gcml.observe.mock.mock_observe` reading the snapshot files, finding the centres
  and writing the MapSet (gzip-compressed or not), with ``--workers 1`` and ``--workers 2``.

Usage: ``python benchmarks/bench_mock_observe.py [--snapshots 8] [--stars 50000]``
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from gcml.io.snapshots import Snapshot, write_snapshot
from gcml.observe.mock import MockObserveConfig, mock_observe
from gcml.observe.photometric import ARCSEC_PC_PER_KPC, ImageGeometry, PhotometricImager
from gcml.observe.psf import gaussian_kernel, moffat_kernel

DIST = (10.0, 25.0, 50.0, 75.0, 100.0)
PSF = (0.5, 1.5)


def plummer_snapshot(n: int, seed: int) -> Snapshot:
    rng = np.random.default_rng(seed)
    a = 2.0 * 0.766  # Plummer scale for a 3D half-mass radius of 2 pc
    u = rng.uniform(0, 0.999, n)
    r = a / np.sqrt(u ** (-2.0 / 3.0) - 1.0)
    d = rng.normal(size=(n, 3))
    pos = d / np.linalg.norm(d, axis=1)[:, None] * r[:, None]
    m = rng.uniform(0.1, 0.9, n)
    return Snapshot(pos=pos, vel=rng.normal(size=(n, 3)), mass=m, lum_v=m ** 4, age=12.0, metallicity=0.001,
                    simulation=f"bench{seed}")


def naive(snaps: list[Snapshot], rng: np.random.Generator) -> int:
    n = 0
    g = gaussian_kernel(4.0)
    for s in snaps:
        for d in DIST:
            for f in PSF:
                th = s.pos[:, :2] * ARCSEC_PC_PER_KPC / d + rng.uniform(-5, 5, 2)
                fl, _, _ = np.histogram2d(th[:, 1], th[:, 0], bins=160, range=[[-20, 20], [-20, 20]],
                                          weights=s.lum_v / (4 * math.pi * d * d))
                ma, _, _ = np.histogram2d(th[:, 1], th[:, 0], bins=160, range=[[-20, 20], [-20, 20]], weights=s.mass)
                fl = fftconvolve(fl, moffat_kernel(f / 0.25), mode="same")
                fl = fftconvolve(fl, g, mode="same")
                ma = fftconvolve(ma, g, mode="same")
                n += 1
    return n


def core(snaps: list[Snapshot], rng: np.random.Generator) -> int:
    imager = PhotometricImager(ImageGeometry(), smoothing_px=4.0)
    d = np.repeat(DIST, len(PSF))
    f = np.tile(PSF, len(DIST))
    n = 0
    for s in snaps:
        res = imager.images(s.pos[:, :2], s.lum_v, s.mass, distance_kpc=d, psf_fwhm=f,
                            rotation_k=rng.integers(0, 4, len(d)), shift_arcsec=rng.uniform(-5, 5, (len(d), 2)))
        n += len(res.flux)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshots", type=int, default=8)
    ap.add_argument("--stars", type=int, default=50000)
    args = ap.parse_args()
    snaps = [plummer_snapshot(args.stars, i) for i in range(args.snapshots)]
    per = len(DIST) * len(PSF)
    print(f"{args.snapshots} snapshots x {args.stars} stars, {per} images each (distances {DIST} kpc, "
          f"PSF {PSF} arcsec), 160x160 px")
    rows = []
    core(snaps[:1], np.random.default_rng(0))  # warm the kernel cache
    for name, fn in (("naive (histogram2d + fftconvolve per image)", naive), ("gcml core (batched)", core)):
        t = time.perf_counter()
        n = fn(snaps, np.random.default_rng(0))
        dt = time.perf_counter() - t
        rows.append((name, n / dt))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "snaps"
        for i, s in enumerate(snaps):
            write_snapshot(folder / f"s{i:03d}.h5", s)
        for comp in ("gzip", "none"):
            cfg = MockObserveConfig(psf_fwhm=PSF, distance_kpc=DIST, compression=comp)
            for w in (1, 2):
                t = time.perf_counter()
                res = mock_observe([folder], Path(tmp) / f"out{w}{comp}.h5", cfg, workers=w)
                dt = time.perf_counter() - t
                rows.append((f"end to end (read, centre, write), --compression {comp} --workers {w}",
                             res.n_images / dt))
    base = rows[0][1]
    print(f"{'method':<62} {'images/s':>9} {'speed-up':>9}")
    for name, rate in rows:
        print(f"{name:<62} {rate:9.0f} {rate / base:8.1f}x")


if __name__ == "__main__":
    main()

"""Inference time per image of the published pi-DOC networks (in PyTorch) and gcml's variants, on CPU.

Usage::

    python benchmarks/bench_inference.py [--threads 2] [--batch 32] [--repeats 7] [--json out.json]
    python benchmarks/bench_inference.py --resampling     # why the map variants may work on an 80x80 grid

Every network runs in one process on the same random 160x160 inputs, in evaluation mode under
``torch.inference_mode``, with BatchNorm folded into the convolutions where it follows one (as
:func:`gcml.models.inference.load_model` does; the published networks put a ReLU in between, so they are
unchanged); each timing is the median over ``--repeats`` batches after two warm-up batches,
divided by the batch size. Both memory formats (contiguous NCHW and channels_last) are timed and both are
printed; the published architectures are the baseline measured in the same run. The published Keras
models' own times on this machine (TensorFlow, the authors' code) are about 49 ms (mass map) and 13 ms
(age/distance) per image (gcml issue 7).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gcml.models.pidoc import flops_per_image, fuse_for_inference
from gcml.models.registry import build_model

MODELS = [("pidoc-ced", "mass map (published)"), ("pidoc-ced-lite", "mass map (gcml)"),
          ("pidoc-net", "map + age + distance (gcml)"), ("pidoc-cnn", "age/distance (published)"),
          ("pidoc-cnn-lite", "age/distance (gcml)")]


def time_model(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median seconds per image."""
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) / x.shape[0]


def resampling_check(n_maps: int = 20, seed: int = 0) -> None:
    """Error of predicting a pi-DOC-like mass map on a grid coarser by ``f`` and upsampling it bilinearly.

    Maps: 50,000 stars of a Plummer sphere (r_h 1.6-4 pc, pi-DOC's simulations) at 10-100 kpc, binned in
    0.25" pixels and smoothed with a Gaussian of sigma = 4 px as in pi-DOC (Chardin & Bianchini 2021,
    Section 2.3). The log10 map is average-pooled by ``f`` and upsampled; errors are |M_up / M - 1| over
    pixels holding more than 1e-3 of the peak, and the relative change of the total mass there.
    """
    import numpy as np
    import torch.nn.functional as F
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    res = {2: [], 4: []}
    for _ in range(n_maps):
        n, d, rh = 50_000, rng.uniform(10, 100), rng.uniform(1.6, 4.0)
        a = rh / 1.305                      # Plummer scale radius from the 3-d half-mass radius
        pc_per_px = d * 1e3 * 0.25 / 206265.0
        r = a / np.sqrt(rng.uniform(0, 1, n) ** (-2 / 3) - 1)
        cth, phi = rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n)
        x = r * np.sqrt(1 - cth**2) * np.cos(phi) / pc_per_px + 80
        y = r * np.sqrt(1 - cth**2) * np.sin(phi) / pc_per_px + 80
        h, _, _ = np.histogram2d(y, x, bins=160, range=[[0, 160], [0, 160]], weights=rng.uniform(0.1, 1.0, n))
        s = gaussian_filter(h, 4.0, mode="constant")
        lg = torch.tensor(np.log10(np.maximum(s, 1e-6)))[None, None]
        mask = s > 1e-3 * s.max()
        for f in res:
            up = F.interpolate(F.avg_pool2d(lg, f), size=(160, 160), mode="bilinear", align_corners=False)
            m_up = 10.0 ** up[0, 0].numpy()
            e = np.abs(m_up / s - 1)[mask]
            res[f].append((100 * e.mean(), 100 * np.percentile(e, 99), 100 * abs(m_up[mask].sum() / s[mask].sum() - 1)))
    print("grid factor  mean |pixel error| %  99th percentile %  |total mass error| %")
    for f, rows in res.items():
        m = np.mean(rows, axis=0)
        print(f"{f:11d}  {m[0]:20.2f}  {m[1]:17.2f}  {m[2]:20.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--resampling", action="store_true", help="only run the map-resampling error check")
    args = ap.parse_args()
    if args.resampling:
        resampling_check()
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, 160, 160)
    rows = []
    for name, what in MODELS:
        model = build_model(name).eval()
        macs = flops_per_image(model)
        fuse_for_inference(model)  # as gcml.models.inference.load_model does (no effect on the published nets)
        ms = {}
        for fmt in ("nchw", "channels_last"):
            mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
            m = model.to(memory_format=mf)
            ms[fmt] = 1e3 * time_model(m, x.contiguous(memory_format=mf), args.repeats)
        rows.append({"model": name, "what": what, "mmacs": macs / 1e6, **{f"ms_{k}": v for k, v in ms.items()}})
    base = {"map": min(rows[0]["ms_nchw"], rows[0]["ms_channels_last"]),
            "scalar": min(rows[3]["ms_nchw"], rows[3]["ms_channels_last"])}
    print(f"torch {torch.__version__}, torch.set_num_threads({args.threads}), batch {args.batch}, "
          f"median of {args.repeats}")
    print(f"{'model':16s} {'what':30s} {'MMAC/img':>9s} {'ms/img NCHW':>12s} {'ms/img CL':>10s} {'vs published':>13s}")
    for r in rows:
        best = min(r["ms_nchw"], r["ms_channels_last"])
        ref = base["scalar"] if "cnn" in r["model"] else base["map"]
        r["ratio_vs_published_pytorch"] = best / ref
        print(f"{r['model']:16s} {r['what']:30s} {r['mmacs']:9.1f} {r['ms_nchw']:12.2f} {r['ms_channels_last']:10.2f} "
              f"{best / ref:12.3f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, "batch": args.batch, "torch": torch.__version__, "rows": rows}, fh,
                      indent=1)


if __name__ == "__main__":
    main()

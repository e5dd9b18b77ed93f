"""Inference time per image of the published pi-DOC networks (in PyTorch) and gcml's variants, on CPU.

Usage::

    python benchmarks/bench_inference.py [--threads 2] [--batch 32] [--repeats 7] [--json out.json]
    python benchmarks/bench_inference.py --resampling     # why the map variants may work on an 80x80 grid
    python benchmarks/bench_inference.py --keras /tmp/tfvenv/bin/python   # also time the Keras originals
    python benchmarks/bench_inference.py --threads 1 --predict IMAGE.fits   # also gcml predict end to end

``--predict IMAGE.fits`` also times, in the same run, ``gcml predict IMAGE.fits`` end to end as the library
does it (:func:`gcml.prediction.images.predict_image`: FITS read, resampling, centre refinement, preparation,
the network with 4-rotation averaging, decoding; then :func:`save_image_prediction`: FITS, JSON and the PNG
quick-look), with the shipped default model (or ``--model``), median over ``--repeats`` calls after one
warm-up; the model is loaded in every call, as the command does.

``--keras PYTHON`` runs the authors' Keras models (``../shared/data/pidoc/*architecture.json``, TensorFlow's
``model.predict`` with batch 32 as in their ``functions.py``) in a separate process with that interpreter
(one with ``tensorflow-cpu`` installed; gcml does not depend on TensorFlow), with the same thread count.

Every network runs in one process on the same random 160x160 inputs, in evaluation mode under
``torch.inference_mode``, round-robin (one batch of each network per round), with BatchNorm folded into the convolutions where it follows one (as
:meth:`gcml.models.trained.TrainedModel.load` with ``optimize=True`` does; the published networks put a ReLU in between, so they are
unchanged); each timing is the median over ``--repeats`` rounds after two warm-up batches,
divided by the batch size; the CPU time (all threads of the process) is reported beside the wall time,
because on a shared machine the wall time also measures the other jobs. Both memory formats (contiguous NCHW and channels_last) are timed and both are
printed; the published architectures are the baseline measured in the same run. The published Keras
models' own times on this machine (TensorFlow, the authors' code) are about 49 ms (mass map) and 13 ms
(age/distance) per image (gcml issue 7).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time

import torch

from gcml.models.pidoc import flops_per_image, fuse_for_inference
from gcml.models.registry import build_model

MODELS = [("pidoc-ced", "mass map (published)"), ("pidoc-ced-lite", "mass map (gcml)"),
          ("pidoc-net", "map + age + distance (gcml)"), ("pidoc-cnn", "age/distance (published)"),
          ("pidoc-cnn-lite", "age/distance (gcml)")]


def time_models(models: dict[str, torch.nn.Module], x: torch.Tensor, repeats: int) -> dict[str, tuple[float, float]]:
    """Median wall seconds and median CPU seconds (all threads of the process) per image of each model.

    The models are timed round-robin (one batch of each per round), so that changes in the machine's load
    during the run affect all of them alike.
    """
    times: dict[str, list[float]] = {k: [] for k in models}
    cpu: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():
            for _ in range(2):
                m(x.contiguous(memory_format=_fmt(m)))
        for _ in range(repeats):
            for key, m in models.items():
                xb = x.contiguous(memory_format=_fmt(m))
                c0, t0 = time.process_time(), time.perf_counter()
                m(xb)
                times[key].append(time.perf_counter() - t0)
                cpu[key].append(time.process_time() - c0)
    n = x.shape[0]
    return {k: (statistics.median(times[k]) / n, statistics.median(cpu[k]) / n) for k in models}


def _fmt(model: torch.nn.Module) -> torch.memory_format:
    w = next(p for p in model.parameters() if p.dim() == 4)
    return torch.channels_last if w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() \
        else torch.contiguous_format


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


KERAS_SCRIPT = r"""
import json, statistics, sys, time
import numpy as np
import tensorflow as tf
threads, batch, repeats, folder = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
x = np.random.default_rng(0).normal(size=(batch, 160, 160, 1)).astype("float32")
out = {"tensorflow": tf.__version__}
for kind in ("ced", "cnn"):
    with open(f"{folder}/pidoc_{kind}_architecture.json") as fh:
        model = tf.keras.models.model_from_json(fh.read())
    for _ in range(2):
        model.predict(x, batch_size=batch, verbose=0)
    ts, cs = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        model.predict(x, batch_size=batch, verbose=0)
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    out[kind] = 1e3 * statistics.median(ts) / batch
    out[kind + "_cpu"] = 1e3 * statistics.median(cs) / batch
print(json.dumps(out))
"""


def time_keras(python: str, threads: int, batch: int, repeats: int) -> dict:
    """ms per image of the authors' Keras models, timed by ``python`` (an interpreter with TensorFlow)."""
    import subprocess
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pidoc"
    res = subprocess.run([python, "-c", KERAS_SCRIPT, str(threads), str(batch), str(repeats), str(folder)],
                         capture_output=True, text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                                                          "CUDA_VISIBLE_DEVICES": ""})
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--resampling", action="store_true", help="only run the map-resampling error check")
    ap.add_argument("--predict", default=None, metavar="IMAGE.fits", help="also time gcml predict end to end")
    ap.add_argument("--model", default=None, help="model for --predict (default: the shipped one)")
    ap.add_argument("--keras", default=None, metavar="PYTHON",
                    help="also time the Keras originals with this Python interpreter (needs tensorflow)")
    args = ap.parse_args()
    if args.resampling:
        resampling_check()
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, 160, 160)
    rows, nets = [], {}
    for name, what in MODELS:
        model = build_model(name).eval()
        rows.append({"model": name, "what": what, "mmacs": flops_per_image(model) / 1e6})
        fuse_for_inference(model)  # as TrainedModel.load(optimize=True) does (no effect on the published nets)
        nets[(name, "nchw")] = model
        nets[(name, "channels_last")] = copy.deepcopy(model).to(memory_format=torch.channels_last)
    res = time_models(nets, x, args.repeats)
    for r in rows:
        for fmt in ("nchw", "channels_last"):
            wall, c = res[(r["model"], fmt)]
            r[f"ms_{fmt}"], r[f"cpu_ms_{fmt}"] = 1e3 * wall, 1e3 * c
    base = {"map": min(rows[0]["ms_nchw"], rows[0]["ms_channels_last"]),
            "scalar": min(rows[3]["ms_nchw"], rows[3]["ms_channels_last"])}
    keras = time_keras(args.keras, args.threads, args.batch, args.repeats) if args.keras else None
    print(f"torch {torch.__version__}, torch.set_num_threads({args.threads}), batch {args.batch}, "
          f"median of {args.repeats}")
    if keras:
        print(f"Keras originals (TensorFlow {keras['tensorflow']}, model.predict, {args.threads} threads): "
              f"mass map {keras['ced']:.2f} ms/img (CPU {keras['ced_cpu']:.2f} ms), "
              f"age/distance {keras['cnn']:.2f} ms/img (CPU {keras['cnn_cpu']:.2f} ms)")
    print("wall ms per image (CPU ms per image, all threads) for contiguous NCHW and channels_last (CL); ratio: "
          "best wall time / the published network's best wall time in PyTorch" + (" and in Keras" if keras else ""))
    print(f"{'model':16s} {'what':30s} {'MMAC/img':>9s} {'NCHW':>16s} {'CL':>16s} {'vs published':>13s}")
    for r in rows:
        best = min(r["ms_nchw"], r["ms_channels_last"])
        ref = base["scalar"] if "cnn" in r["model"] else base["map"]
        r["ratio_vs_published_pytorch"] = best / ref
        line = (f"{r['model']:16s} {r['what']:30s} {r['mmacs']:9.1f} "
                f"{r['ms_nchw']:7.2f} ({r['cpu_ms_nchw']:6.2f}) {r['ms_channels_last']:7.2f} ({r['cpu_ms_channels_last']:6.2f}) "
                f"{best / ref:12.3f}x")
        if keras:
            kref = keras["cnn"] if "cnn" in r["model"] else keras["ced"]
            r["ratio_vs_keras"] = best / kref
            line += f" {best / kref:8.3f}x Keras"
        print(line)
    pred = time_predict(args.predict, args.model, args.repeats) if args.predict else None
    if pred:
        print(f"gcml predict {args.predict}: predict_image {pred['predict_ms']:.0f} ms wall ({pred['predict_cpu_ms']:.0f} "
              f"ms CPU); + FITS/JSON/PNG outputs {pred['total_ms']:.0f} ms wall ({pred['total_cpu_ms']:.0f} ms CPU); "
              f"median of {args.repeats}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, "batch": args.batch, "torch": torch.__version__, "keras": keras,
                       "rows": rows, "predict": pred}, fh, indent=1)


def time_predict(image: str, model: str | None, repeats: int) -> dict[str, float]:
    """Median wall and CPU time of predict_image, and of predict_image + save_image_prediction (module docstring)."""
    import tempfile

    from gcml.prediction.images import predict_image, save_image_prediction

    t = {"predict_ms": [], "predict_cpu_ms": [], "total_ms": [], "total_cpu_ms": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats + 1):
            w0, c0 = time.perf_counter(), time.process_time()
            p = predict_image(image, model=model)
            w1, c1 = time.perf_counter(), time.process_time()
            save_image_prediction(p, tmp, overwrite=True)
            w2, c2 = time.perf_counter(), time.process_time()
            if i:  # the first call warms up (imports, allocations)
                t["predict_ms"].append(1e3 * (w1 - w0))
                t["predict_cpu_ms"].append(1e3 * (c1 - c0))
                t["total_ms"].append(1e3 * (w2 - w0))
                t["total_cpu_ms"].append(1e3 * (c2 - c0))
    return {k: statistics.median(v) for k, v in t.items()}


if __name__ == "__main__":
    main()

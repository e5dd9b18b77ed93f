"""Reference predictions of model bundles on fixed inputs, for tests/test_model_regression.py.

The reference file was made once with the loaders that existed before :class:`gcml.models.trained.TrainedModel`
(``gcml.training.loop.load_model``/``predict_maps`` and ``gcml.models.inference.predict_arrays``, commit
"Reference predictions ..." on branch issue14); this script now computes the same numbers through
``TrainedModel``. ``--check`` compares instead of writing. The test checks that the code gives the same
numbers (to 1e-6) and still loads the bundles written before the change:

* the shipped models ``gcml/data/models/mass-cnn-default.pt`` (trained, scalar task) and
  ``pidoc-net-noiseless.pt`` (trained on noiseless mocks, map + scalar task) and ``pidoc-net-default.pt``
  (noise-aware: softlog10 input, parametrised age and distance);
* three small bundles in the Keras-import layout of format 1.0 (``pidoc_norms``: ``targets.norm`` with
  ``transform``/``mean``/``std``, no ``task`` entry), saved to ``tests/data/bundle_1.0_imported_<arch>.pt``
  with seeded random weights (the published weights are too large to keep in the repository);
* one small trained-layout 1.0 bundle of a scalar pi-DOC CNN (``tests/data/bundle_1.0_trained_cnn.pt``);
* since 2026-11-27, the shipped ``mass-npe-default.pt`` (gcml predict's default for catalogues): seeded
  posterior draws (encoder, flow, N-dependent spread and the correlated systematic shifts) for two fixed
  catalogues, so that a change in gcml, torch or zuko that moves the default's samples fails the test.

Usage::

    python scripts/make_model_regression_reference.py            # compare with tests/data/model_regression.npz
    python scripts/make_model_regression_reference.py --write    # rewrite it (only with a reason)

The file records, per bundle, the inputs and every output array of the loading/decoding path in use when
it was made (``mass`` maps sub-sampled by 4 in each axis to keep the file small; totals use every pixel).

Rewritten twice since: when the shipped ``mass-cnn-default.pt`` was retrained on the early-type priors
(issue 12), its entries were recomputed with ``--write`` (the other bundles' numbers were unchanged); when the
``mass_npe`` entries were added (2026-11-27; the others unchanged, checked first without ``--write``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
MODELS = ROOT / "gcml" / "data" / "models"


def mass_cnn_inputs() -> np.ndarray:
    rng = np.random.default_rng(20261126)
    n = 6
    sigma = rng.uniform(40.0, 200.0, (n, 1, 10, 10))
    v = rng.normal(0.0, 60.0, (n, 1, 10, 10))
    count = rng.uniform(0.0, 30.0, (n, 1, 10, 10))
    return np.concatenate([sigma, v, count], 1).astype(np.float32)


def npe_inputs(seed: int = 11):
    """Two fixed GC catalogues (40 and 150 GCs; x, y [kpc], v_los, v_err [km/s], in_map: the 40 kpc map)."""
    from gcml.io.catalogues import Catalogues

    rng = np.random.default_rng(seed)
    n = 150
    x, y = rng.normal(0.0, 8.0, (2, n)), rng.normal(0.0, 8.0, (2, n))
    v, e = rng.normal(0.0, 150.0, (2, n)), rng.uniform(5.0, 30.0, (2, n))
    mask = np.zeros((2, n), bool)
    mask[0, :40] = True
    mask[1] = True
    in_map = (np.abs(x) <= 20.0) & (np.abs(y) <= 20.0)
    return Catalogues.from_padded(x, y, v, e, in_map, mask), np.stack([x, y, v, e, in_map, mask], -1)


def pidoc_inputs(size: int, n: int = 2, seed: int = 7) -> np.ndarray:
    """King-like cluster images (V flux per pixel, Lsun/kpc^2) with a little noise and an empty corner."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = []
    for i in range(n):
        rc = size / (8 + 4 * i)
        img = 10 ** (-2.5 + i) / (1 + (xx**2 + yy**2) / rc**2) ** 1.5
        img = img * (1 + 0.05 * rng.standard_normal(img.shape))
        img[:3, :3] = 0.0  # floored pixels
        out.append(img)
    return np.asarray(out, np.float32)[:, None]


def imported_bundle(arch: str) -> dict:
    """A bundle in the layout ``gcml models import-keras`` wrote in format 1.0 (random weights, seed 0)."""
    from gcml.models.keras_import import PIDOC_GEOMETRY, load_standardization, pidoc_norms
    from gcml.models.registry import build_model

    kind = {"pidoc-cnn-lite": "cnn", "pidoc-ced-lite": "ced"}[arch]
    kwargs = {"filters": [4, 8]}
    torch.manual_seed(0)
    model = build_model(arch, **kwargs)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    inputs, targets = pidoc_norms(kind, load_standardization())
    geometry = dict(PIDOC_GEOMETRY, shape=[32, 32])
    return {"architecture": arch, "arch_kwargs": kwargs, "state_dict": model.state_dict(), "inputs": inputs,
            "targets": targets, "geometry": geometry,
            "training": {"source": "keras-import", "paper": "Chardin & Bianchini 2021, MNRAS 504, 5656"},
            "provenance": {}, "metrics": {}, "calibration": {},
            "extra": {"output_order": targets["names"]}, "created_utc": "2026-11-26T00:00:00Z"}


def trained_cnn_bundle() -> dict:
    """A trained-layout (``task`` entry) scalar bundle as ``gcml train pidoc-cnn-lite`` wrote it in 1.0."""
    from gcml.models.registry import build_model
    from gcml.models.tasks import ScalarRegressionTask

    task = ScalarRegressionTask(["flux"], ["distance", "age"], "gaussian_nll", channel_units=["Lsun/kpc2"],
                                target_units=["kpc", "Gyr"])
    task.input_transform = ["log10"]
    task.x_mean, task.x_std = np.array([-4.0]), np.array([1.5])
    task.y_offset, task.y_scale = np.array([50.0, 7.0]), np.array([20.0, 3.0])
    task.y_min, task.y_max = np.array([10.0, 1.0]), np.array([100.0, 12.5])
    task.variance_scale = np.array([1.2, 0.8])
    kwargs = {"n_outputs": task.n_outputs, "filters": [4, 8], "in_channels": 1}
    torch.manual_seed(1)
    model = build_model("pidoc-cnn-lite", **kwargs)
    return {"architecture": "pidoc-cnn-lite", "arch_kwargs": kwargs, "state_dict": model.state_dict(),
            **task.bundle_entries(), "geometry": {"shape": [32, 32], "pixel_scale": 1.0, "pixel_unit": "arcsec",
                                                  "kind": "photometry", "map_attrs": {}},
            "training": {"model": "pidoc-cnn-lite"}, "provenance": {}, "metrics": {},
            "created_utc": "2026-11-26T00:00:00Z"}


def _save_1_0(path: Path, bundle: dict) -> None:
    """Write ``bundle`` as gcml 0.1's save_bundle wrote format 1.0 (what these test files must stay)."""
    out = {**bundle, "format": "gcml.model", "format_version": "1.0", "gcml_version": "0.1.0"}
    out["state_dict"] = {k: v.detach().cpu().clone() for k, v in bundle["state_dict"].items()}
    torch.save(out, path)


def reference_values(write_bundles: bool = False) -> dict[str, np.ndarray]:
    """Every value the reference file records, computed by the current code (``write_bundles``: first
    (re)write the small 1.0 bundles under tests/data)."""
    from gcml.models.trained import TrainedModel

    ref: dict[str, np.ndarray] = {}
    # shipped mass-cnn (scalar task)
    x = mass_cnn_inputs()
    tm = TrainedModel.load(MODELS / "mass-cnn-default.pt")
    mean, std = tm.predict_maps(x)
    # "std" stays the network's calibrated (statistical) sigma; the systematic term the bundle gained since
    # (calibration.systematic_dex, scripts/measure_family_systematic.py) is added in quadrature on top of it
    ref.update({"mass_cnn/x": x, "mass_cnn/mean": mean, "mass_cnn/std": tm.task.statistical_std(std),
                "mass_cnn/std_total": std})
    # shipped mass-npe (catalogue task): seeded posterior draws through the path gcml predict uses
    from gcml.models.npe import posterior_samples

    cats, raw = npe_inputs()
    tm = TrainedModel.load(MODELS / "mass-npe-default.pt")
    ref["mass_npe/catalogues"] = raw
    ref["mass_npe/samples"] = posterior_samples(tm.network, tm.task, cats, 64, seed=5).astype(np.float64)
    # shipped pidoc-net (map + scalar task): the decoding prediction/images.py uses
    # (the noiseless model was the default until the noise-aware one replaced it: same weights, same values)
    x = pidoc_inputs(160)
    ref["pidoc_net/x"] = x
    for key, name in (("pidoc_net", "pidoc-net-noiseless.pt"), ("pidoc_net_default", "pidoc-net-default.pt")):
        tm = TrainedModel.load(MODELS / name)
        for k, v in tm.decode_parts(tm.outputs(x)).items():
            ref[f"{key}/{k}"] = v[:, ::4, ::4] if v.ndim == 3 else v
    # 1.0 bundles kept in tests/data
    x32 = pidoc_inputs(32, seed=3)
    ref["small/x"] = x32
    for arch in ("pidoc-cnn-lite", "pidoc-ced-lite"):
        p = DATA / f"bundle_1.0_imported_{arch}.pt"
        if write_bundles:
            _save_1_0(p, imported_bundle(arch))
        out = TrainedModel.load(p, optimize=True).predict(x32[:, 0], batch_size=2)
        for k, v in out.items():
            if not k.startswith("raw"):
                ref[f"imported/{arch}/{k}"] = np.asarray(v, np.float64)
    p = DATA / "bundle_1.0_trained_cnn.pt"
    if write_bundles:
        _save_1_0(p, trained_cnn_bundle())
    mean, std = TrainedModel.load(p).predict_maps(x32)
    ref.update({"trained_cnn/mean": mean, "trained_cnn/std": std})
    return ref


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite tests/data (bundles and reference values)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ref = reference_values(write_bundles=args.write)
    if args.write:
        np.savez_compressed(DATA / "model_regression.npz", **ref)
        print(f"wrote {DATA / 'model_regression.npz'}")
        return
    old = np.load(DATA / "model_regression.npz")
    for k in sorted(old.files):
        d = float(np.max(np.abs(np.asarray(ref[k], float) - old[k]))) if old[k].size else 0.0
        print(f"{k:40s} max |new - reference| = {d:.3g}")


if __name__ == "__main__":
    main()

"""Train gcml's shipped default galaxy-mass model (``gcml/data/models/mass-cnn-default.pt``) reproducibly.

Runs gcml's own pipeline through its library (the same code as the commands)::

    gcml simulate-maps -o WORK/maps.h5 --family early,disk,early,merger --n-galaxies 1600 --views 40 --n-gc 300 \\
        --subsample 0.1:1 --v-error-model sluggs --seed 2021
    gcml train mass-cnn-gcml --data WORK/maps.h5 -o WORK/run --target <MASS TARGETS> --epochs 10 --threads 1 --seed 2021

and copies the run's ``best.pt`` (calibrated on the validation split, test metrics inside) to the package.
Half the galaxies are early-type galaxies as observed (``--family early``: haloes of 10^11-10^14.5 Msun,
GC numbers, sizes, anisotropies and rotation as in docs/physics-galaxies.md), half Kaur et al.'s disks and
merger remnants (30-300 GCs per view); every GC velocity gets an error drawn from the SLUGGS catalogue's
error distribution (Forbes et al. 2017). The out-of-distribution sets it is then evaluated on::

    gcml simulate-maps -o WORK/unknown.h5 --family unknown --n-galaxies 120 --views 10 --n-gc 300 \\
        --subsample 0.1:1 --v-error-model sluggs --seed 77
    gcml simulate-maps -o WORK/early_ood.h5 --family early-ood --n-galaxies 120 --views 10 \\
        --v-error-model sluggs --seed 78

Usage (about 20 minutes on a busy 2-core machine)::

    python scripts/train_default_mass_model.py --work runs/default-mass-model --install

``--install`` copies the result to ``gcml/data/models/mass-cnn-default.pt`` (``--overwrite`` to replace it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("early", "disk", "early", "merger")
DEFAULT_TARGETS = (
    "log10_mass_total", "log10_m200", "log10_mass_within_5kpc", "log10_mass_within_10kpc",
    "log10_mass_within_20kpc", "log10_mass_within_50kpc", "log10_mass_within_rout",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("runs/default-mass-model"), help="working folder")
    ap.add_argument("--n-galaxies", type=int, default=1600)
    ap.add_argument("--views", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these small maps on a busy machine)")
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--workers", type=int, default=2, help="simulate-maps processes (results do not depend on it)")
    ap.add_argument("--install", action="store_true", help="copy best.pt into gcml/data/models/")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier run in WORK/run and the installed model")
    a = ap.parse_args(argv)

    from gcml.training import TrainConfig, train

    t0 = time.perf_counter()
    maps = simulate_sets(a.work, a.n_galaxies, a.views, a.seed, a.workers)
    cfg = TrainConfig(model="mass-cnn-gcml", targets=DEFAULT_TARGETS, epochs=a.epochs, batch_size=256, lr=2e-3,
                      lr_schedule="cosine", early_stopping=0, seed=a.seed, device="cpu", in_memory="yes",
                      threads=a.threads)

    def progress(event: str, info: dict) -> None:
        if event == "epoch":
            print(f"epoch {info['epoch']:3d} train {info['train_loss']:.4f} val {info['val_loss']:.4f} "
                  f"val MAE {info['val_mae']:.4f} ({info['maps_per_s']:.0f} maps/s)", flush=True)

    res = train(maps, cfg, a.work / "run", overwrite=a.overwrite, progress=progress,
                command="scripts/train_default_mass_model.py (train)")
    print(f"trained in {time.perf_counter() - t0:.0f} s in total; best epoch {res.best_epoch}", flush=True)
    # What the training maps span (GC numbers, radial coverage, dispersions), for predict's range warnings,
    # is recorded by `gcml train` itself (extra.training_ranges); the held-out metrics are added here.
    from gcml.io.bundle import load_bundle, save_bundle

    b = load_bundle(res.best_checkpoint)
    ood = {name: held_out_metrics(res.best_checkpoint, a.work / f"{name}.h5") for name in ("unknown", "early_ood")}
    b["extra"] = {**(b.get("extra") or {}), "trained_by": "scripts/train_default_mass_model.py", "held_out_metrics": ood,
                  "simulate_maps": {"families": ",".join(FAMILIES), "n_galaxies": a.n_galaxies, "views": a.views,
                                    "n_gc": 300, "subsample": "0.1:1", "v_error_model": "sluggs", "seed": a.seed}}
    save_bundle(res.best_checkpoint, b, overwrite=True)
    for fam, mets in ood.items():
        for name, m in mets.items():
            print(f"{fam} {name}: bias {m['bias_dex']:+.3f} dex, scatter {m['scatter_dex']:.3f} dex, "
                  f"68%/95% coverage {m['coverage_68']:.2f}/{m['coverage_95']:.2f}")
    for name, m in res.test_metrics.get("test", {}).items():
        print(f"test {name}: bias {m['bias_dex']:+.3f} dex, scatter {m['scatter_dex']:.3f} dex, MAE {m['mae_dex']:.3f} "
              f"dex, 68%/95% coverage {m['coverage_68']:.2f}/{m['coverage_95']:.2f}")
    if a.install:
        dest = ROOT / "gcml" / "data" / "models" / "mass-cnn-default.pt"
        if dest.exists() and not a.overwrite:
            print(f"{dest} exists; pass --overwrite to replace it", file=sys.stderr)
            return 2
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(res.best_checkpoint, dest)
        print(f"installed {dest} ({dest.stat().st_size / 1e6:.2f} MB)")
    return 0


def simulate_sets(work: Path, n_galaxies: int = 1600, views: int = 40, seed: int = 2021, workers: int = 2) -> Path:
    """The recipe's training MapSet (WORK/maps.h5, with the GC catalogues mass-npe reads) and the two held-out
    families (WORK/unknown.h5, WORK/early_ood.h5); files that exist are reused. Returns WORK/maps.h5."""
    from gcml.simulate.galaxies import SimulateMapsConfig, simulate_maps

    work.mkdir(parents=True, exist_ok=True)
    maps = work / "maps.h5"
    sims = {
        maps: SimulateMapsConfig(families=FAMILIES, n_galaxies=n_galaxies, views=views, seed=seed, n_gc=300,
                                 subsample=(0.1, 1.0), v_error_model="sluggs"),
        work / "unknown.h5": SimulateMapsConfig(families=("unknown",), n_galaxies=120, views=10, seed=77, n_gc=300,
                                                subsample=(0.1, 1.0), v_error_model="sluggs"),
        work / "early_ood.h5": SimulateMapsConfig(families=("early-ood",), n_galaxies=120, views=10, seed=78,
                                                  v_error_model="sluggs"),
    }
    for path, sim in sims.items():
        if not path.exists():  # an existing file is reused (delete it to simulate again)
            r = simulate_maps(sim, path, workers=workers, command="scripts/train_default_mass_model.py (simulate)")
            print(f"simulated {path.name}: {r.n_maps} maps of {r.n_galaxies} galaxies in {r.seconds:.0f} s", flush=True)
    return maps


def held_out_metrics(model: Path, mapset: Path) -> dict[str, dict[str, float]]:
    """Bias, scatter and 68/95 % coverage per target of ``model`` on the ood split of ``mapset``."""
    from gcml.evaluation.metrics import regression_metrics
    from gcml.io.mapset import read_mapset
    from gcml.models.trained import TrainedModel

    tm = TrainedModel.load(model)
    ms = read_mapset(mapset, split="ood", with_truth=False)
    mean, std = tm.predict_maps(ms.maps[:, [ms.channels.index(c) for c in tm.channels]])
    out = {}
    for j, t in enumerate(tm.targets):
        m = regression_metrics(ms.targets[t], mean[:, j], std[:, j])
        out[t] = {k: m[k] for k in ("n", "bias_dex", "scatter_dex", "coverage_68", "coverage_95")}
    return out


if __name__ == "__main__":
    sys.exit(main())

"""mass-npe: the N-dependent spread calibration, fitted on the validation split, against the flow as trained.

``gcml train`` now fits the calibration itself (``CatalogueNPETask.calibrate``, at the end of training, on
the val split). For a model trained before that, this script does the same step on the model's training
MapSet (the same library calls as the training loop's last step), writes ``OUT/calibrated.pt`` beside a
copy of the model as trained (``OUT/as_trained.pt``), and evaluates both with ``gcml evaluate`` on the test
sets ``npe_flow_choice.py`` made (independent galaxies, one view each, N = 30, 100, 200), for the training
families and, with ``--test-family unknown``, the unknown family:

    python benchmarks/npe_calibration.py MODEL.pt TRAIN_MAPSET FLOWCHOICE_DIR OUT [--test-family unknown]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def calibrate(model: Path, train: Path, out: Path) -> dict:
    import torch

    from gcml.models.trained import TrainedModel
    from gcml.training.data import open_training_data
    from gcml.training.loop import forward_split

    torch.set_num_threads(1)
    tm = TrainedModel.load(model)
    data = open_training_data(train, tm.task)
    vout, vy = forward_split(tm.network, tm.task, data, "val", torch.device("cpu"), 256)
    cal = tm.task.calibrate(vout, vy)
    b = tm.bundle
    b.set_task(tm.task)
    b.provenance["calibration"] = f"benchmarks/npe_calibration.py on the val split of {train.name} ({len(vy)} catalogues)"
    b.save(out, overwrite=True)
    return cal


def main() -> None:
    from npe_flow_choice import table

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("train", type=Path)
    ap.add_argument("flowchoice", type=Path, help="the folder of npe_flow_choice.py (its test_*.h5 sets)")
    ap.add_argument("out", type=Path)
    ap.add_argument("--test-family", default="disk,merger")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(a.model, a.out / "as_trained.pt")
    cal = calibrate(a.model, a.train, a.out / "calibrated.pt")
    print(json.dumps(cal, indent=1), flush=True)
    tag = "" if a.test_family == "disk,merger" else "_" + a.test_family.replace(",", "+")
    rows: dict = {"as trained": {}, "calibrated": {}}
    for n in (30, 100, 200):
        test = a.flowchoice / f"test{tag}_n{n}.h5"
        for name, m in (("as trained", "as_trained.pt"), ("calibrated", "calibrated.pt")):
            rep = a.out / f"report{tag}_{m.split('.')[0]}_n{n}"
            subprocess.run([sys.executable, "-m", "gcml", "evaluate", a.out / m, test, "--split", "all", "-o", rep,
                            "--overwrite", "-q"], check=True)
            rows[name][n] = json.loads((rep / "metrics.json").read_text())
    for name in rows:
        rows[name]["ms"] = float("nan")
    (a.out / f"summary{tag}.json").write_text(json.dumps(rows, default=str))
    print(table(rows))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Kaur et al. (2021) experiments DL1-DL5 at laptop size (CPU, well under 30 minutes on an idle 4-core laptop).
#
#   DL1  disk galaxies only            2 convolutions
#   DL2  merger remnants only          2 convolutions
#   DL3  disk + merger                 2 convolutions
#   DL4  disk + merger                 4 convolutions
#   DL5  disk + merger, velocity noise 4 convolutions (per-GC errors 10-30 km/s added to the velocities)
#
# each with the one-channel (sigma) and two-channel (sigma, V) input and the paper's loss (MSE on the
# mass rescaled to 0-10), plus gcml's variant on DL4's data; tables in the layout of the paper's
# Tables 2 (one channel) and 3 (two channels) go to $OUT/table_*.md. Unlike the paper, splits are by
# galaxy (no galaxy in two splits), and the Watkins (2010) tracer mass estimator is scored on the same maps.
# Sizes: N_GAL galaxies x VIEWS views per data set (the paper: ~200,000 maps). Override, e.g.
#   N_GAL=2000 VIEWS=100 EPOCHS=30 bash examples/reproduce_kaur2021.sh
set -euo pipefail
OUT=${OUT:-kaur2021}
N_GAL=${N_GAL:-300}
VIEWS=${VIEWS:-40}
EPOCHS=${EPOCHS:-10}
SEED=${SEED:-1}
THREADS=${THREADS:-0}
mkdir -p "$OUT"
common=(--seed "$SEED" --overwrite -q)
train=(--epochs "$EPOCHS" --patience 4 --loss mse --threads "$THREADS" --seed "$SEED" --overwrite -q)

gcml simulate-maps -o "$OUT/disk.h5"        --family disk         --n-galaxies "$N_GAL" --views "$VIEWS" "${common[@]}"
gcml simulate-maps -o "$OUT/merger.h5"      --family merger       --n-galaxies "$N_GAL" --views "$VIEWS" "${common[@]}"
gcml simulate-maps -o "$OUT/dm.h5"          --family disk,merger  --n-galaxies "$N_GAL" --views "$VIEWS" "${common[@]}"
gcml simulate-maps -o "$OUT/dm_noise.h5"    --family disk,merger  --n-galaxies "$N_GAL" --views "$VIEWS" --v-error 10:30 "${common[@]}"

run() {  # name data depth channels
  gcml train mass-cnn --data "$OUT/$2" --depth "$3" --channels "$4" -o "$OUT/runs/$1-c$4" "${train[@]}"
}
for ch in 1 2; do
  run DL1 disk.h5 2 "$ch"
  run DL2 merger.h5 2 "$ch"
  run DL3 dm.h5 2 "$ch"
  run DL4 dm.h5 4 "$ch"
  run DL5 dm_noise.h5 4 "$ch"
done
gcml train mass-cnn-gcml --data "$OUT/dm.h5" -o "$OUT/runs/gcml" --epochs "$EPOCHS" --patience 4 --threads "$THREADS" \
  --seed "$SEED" --overwrite -q

for ch in 1 2; do
  for dl in DL1:disk.h5 DL2:merger.h5 DL3:dm.h5 DL4:dm.h5 DL5:dm_noise.h5; do
    name=${dl%%:*}; data=${dl#*:}
    gcml evaluate "$OUT/runs/$name-c$ch/best.pt" "$OUT/$data" --split test -o "$OUT/report/$name-c$ch" --overwrite -q
  done
done
gcml evaluate "$OUT/runs/DL4-c2/best.pt" "$OUT/runs/gcml/best.pt" "$OUT/dm.h5" --split test -o "$OUT/report/DL4-vs-gcml" \
  --overwrite -q

python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for ch, title in (("1", "Table 2 (one-channel: sigma)"), ("2", "Table 3 (two-channel: sigma, V)")):
    rows = ["| experiment | accuracy (%) | MAE (0-10) | RMSE (0-10) | MAE (dex) | scatter (dex) | 68% cov. | TME MAE (dex) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("DL1", "DL2", "DL3", "DL4", "DL5"):
        m = json.loads((out / "report" / f"{name}-c{ch}" / "metrics.json").read_text())
        (lab, per), = m["models"].items()
        t = per["log10_mass_total"]
        tme = (m.get("baseline") or {}).get("mae_dex")
        rows.append(f"| {name} | {t['accuracy']:.1f} | {t['mae_norm']:.3f} | {t['rmse_norm']:.3f} | {t['mae_dex']:.3f} | "
                    f"{t['scatter_dex']:.3f} | {t['coverage_68']:.2f} | {'–' if tme is None else f'{tme:.3f}'} |")
    (out / f"table_{ch}ch.md").write_text(f"## {title}\n\n" + "\n".join(rows) + "\n")
    print((out / f"table_{ch}ch.md").read_text())
PY
echo "reports in $OUT/report/, tables in $OUT/table_1ch.md and $OUT/table_2ch.md"

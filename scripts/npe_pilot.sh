#!/usr/bin/env bash
# mass-npe pilot on the 2-core development machine: a small training set, the CNN on the same maps, and
# three held-out test sets with 30, 100 and 200 GCs per galaxy (new galaxies: other seeds), each evaluated
# with the CNN and the tracer mass estimator on the same maps. Usage: scripts/npe_pilot.sh OUT_DIR
set -euo pipefail
out=${1:-npe-pilot}
mkdir -p "$out"
g="python -m gcml"
$g simulate-maps -o "$out/train.h5" --family disk,merger --n-galaxies 400 --views 20 --subsample 0.1:1 \
   --seed 21 --overwrite -q
$g train mass-npe --data "$out/train.h5" -o "$out/npe" --epochs 15 --batch-size 128 --threads 1 --patience 0 \
   --overwrite -q
$g train mass-cnn --data "$out/train.h5" -o "$out/cnn" --channels 3 --target log10_mass_within_rout,log10_mass_total \
   --epochs 15 --batch-size 128 --threads 1 --patience 0 --overwrite -q
for n in 30 100 200; do
  $g simulate-maps -o "$out/test_n$n.h5" --family disk,merger --n-galaxies 40 --views 20 --n-gc $n \
     --seed $((100 + n)) --overwrite -q
  $g evaluate "$out/npe/best.pt" "$out/cnn/best.pt" "$out/test_n$n.h5" --split all -o "$out/report_n$n" --overwrite -q
done

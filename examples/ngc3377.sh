#!/usr/bin/env bash
# NGC 3377's mass from the radial velocities of its 126 globular clusters (SLUGGS, Forbes et al. 2017),
# with gcml's shipped default mass model (mass-npe, a posterior from the individual GCs; add
# --model mass-cnn-default for the Kaur et al. CNN): centre, distance (10.9 Mpc), v_sys (690 km/s) and R_e
# come from the SLUGGS galaxy table shipped in gcml (--galaxy). Writes predict_ngc3377/prediction.json,
# posterior_samples.ecsv, corner.png, profile.png and maps.png.
# Run from anywhere: bash examples/ngc3377.sh [OUTPUT_FOLDER]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-predict_ngc3377}"
# The reference copy in ../shared/data when this checkout has one, else the copy shipped in examples/data.
table="$here/../../shared/data/sluggs/ngc3377_gc_rv_forbes2017.tsv.txt"
[ -f "$table" ] || table="$here/data/ngc3377_gc_rv_forbes2017.tsv.txt"
gcml predict "$table" --galaxy "NGC 3377" -o "$out" --overwrite --seed 0

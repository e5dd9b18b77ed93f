#!/usr/bin/env bash
# All 27 SLUGGS early-type galaxies (Forbes et al. 2017, VizieR J/AJ/153/114 table 5, 3,573 GC velocities, as
# VizieR serves it) through gcml's shipped default mass model (mass-npe; a third argument names another, e.g.
# mass-cnn-default) and the Watkins et al. (2010) tracer mass estimator: repeat measurements combined, likely
# non-members left out, every galaxy predicted with 1,000 posterior samples (Monte Carlo draws for a CNN), and
# five random splits of each catalogue into two halves predicted separately (split-half consistency).
# Writes OUT/summary.ecsv (one row per galaxy, units in the header), OUT/masses.png, OUT/mass_vs_mstar.png,
# OUT/split_half.png and one folder per galaxy (gcs.ecsv, prediction.json, maps.png; for mass-npe also
# posterior_samples.ecsv, corner.png, profile.png).
# The table is not shipped with gcml: it is read from ../shared/data or given as the second argument.
# Run from anywhere: bash examples/sluggs.sh [OUTPUT_FOLDER] [TABLE] [MODEL]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-predict_sluggs}"
table="${2:-$here/../../shared/data/sluggs/forbes2017_table5_gc_velocities.tsv}"
model="${3:-}"
if [ ! -f "$table" ]; then
  echo "SLUGGS table not found: $table (download VizieR J/AJ/153/114/table5 as TSV and give its path)" >&2
  exit 2
fi
gcml predict "$table" --galaxy all --split-half --splits 5 --samples 1000 -o "$out" --overwrite --seed 0 \
    ${model:+--model "$model"}

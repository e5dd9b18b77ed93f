#!/usr/bin/env bash
# gcml's main job on embedded defaults, small enough for a laptop: everything goes into demo/.
set -euo pipefail
mkdir -p demo
gcml simulate-maps -o demo/maps.h5 --family disk,merger --n-galaxies 200 --views 20 --seed 1 --overwrite
gcml info demo/maps.h5 --plot demo/maps.png --overwrite
# Train a small two-channel (sigma, v) Kaur et al. network on those maps (group-wise split, CPU), then score
# it on the held-out galaxies with the paper's metrics and the Watkins et al. (2010) estimator beside it.
gcml train mass-cnn --data demo/maps.h5 --channels 2 --epochs 8 --seed 1 -o demo/run --overwrite
gcml evaluate demo/run/best.pt demo/maps.h5 --split test -o demo/report --overwrite
# NGC 3377's mass profile from its 126 SLUGGS globular-cluster velocities (Forbes et al. 2017) with gcml's
# shipped default mass model, mass-npe: a posterior from the individual GCs (examples/ngc3377.sh; results,
# posterior samples, corner and profile plots in demo/ngc3377/).
bash "$(dirname "${BASH_SOURCE[0]}")/ngc3377.sh" demo/ngc3377
# A globular cluster's mass map, mass, M/L, age and distance from a Pan-STARRS1-style image (pi-DOC) with
# gcml's shipped default model: one simulated cluster, observed at 30 kpc as a survey sees it (not smoothed;
# PS1 3pi-stack sky, Poisson and read noise), turned into a PS1 cutout; gcml predict prepares it (smoothing,
# input transform) exactly as the model's training images were.
gcml simulate-clusters -o demo/snapshots --ages 9 --seed 101 --simulation demo-cluster --overwrite -q
gcml mock-observe demo/snapshots -o demo/images.h5 --psf 1.0 --distance 30 --seed 3 --smoothing 0 \
    --sky-mag 20.9 --zeropoint 25 --exptime 129 --poisson --read-noise 5 --overwrite -q \
    --fits demo/fits --flavour ps1 --ra 250.4218 --dec 36.4599
gcml predict demo/fits/ps1_cutout_0000000.fits -o demo/ps1 --overwrite

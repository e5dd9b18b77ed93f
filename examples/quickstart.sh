#!/usr/bin/env bash
# gcml's main job on embedded defaults, small enough for a laptop: everything goes into demo/.
set -euo pipefail
mkdir -p demo
gcml simulate-maps -o demo/maps.h5 --family disk,merger --n-galaxies 60 --views 20 --seed 1 --overwrite
gcml info demo/maps.h5 --plot demo/maps.png --overwrite

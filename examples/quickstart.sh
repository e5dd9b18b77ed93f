#!/usr/bin/env bash
# gcml's main job on embedded defaults, small enough for a laptop: everything goes into demo/.
set -euo pipefail
mkdir -p demo
gcml simulate-maps -o demo/maps.h5 --family disk,merger --n-galaxies 60 --views 20 --seed 1 --overwrite
gcml info demo/maps.h5 --plot demo/maps.png --overwrite
# NGC 3377's total mass from its 126 SLUGGS globular-cluster velocities (Forbes et al. 2017) with gcml's
# shipped default mass model (examples/ngc3377.sh; results in demo/ngc3377/).
bash "$(dirname "${BASH_SOURCE[0]}")/ngc3377.sh" demo/ngc3377

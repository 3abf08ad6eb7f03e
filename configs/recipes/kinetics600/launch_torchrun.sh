#!/usr/bin/env bash
# Kinetics-600 recipe with torchrun, from the repository root, all stages or the ones named:
#   bash configs/recipes/kinetics600/launch_torchrun.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   GPUS=8 STRATEGY=fsdp I3D=/path/i3d.pt bash configs/recipes/kinetics600/launch_torchrun.sh
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 bash configs/recipes/kinetics600/launch_torchrun.sh  (NODE_RANK=1 on host1)
# DATA: the folder `vtlm data prepare kinetics600 SOURCE DATA` wrote (default data/kinetics600). See README.md.
export NAME=kinetics600
export DATA=${DATA:-data/kinetics600}
exec bash configs/recipes/launch_torchrun.sh "$@"

#!/usr/bin/env bash
# BAIR robot pushing recipe with torchrun, from the repository root, all stages or the ones named:
#   bash configs/recipes/bair/launch_torchrun.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   GPUS=8 STRATEGY=fsdp I3D=/path/i3d.pt bash configs/recipes/bair/launch_torchrun.sh
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 bash configs/recipes/bair/launch_torchrun.sh  (NODE_RANK=1 on host1)
# DATA: the folder `vtlm data prepare bair SOURCE DATA` wrote (default data/bair). See README.md.
export NAME=bair
export DATA=${DATA:-data/bair}
exec bash configs/recipes/launch_torchrun.sh "$@"

#!/usr/bin/env bash
# Something-Something v2 recipe with torchrun, from the repository root, all stages or the ones named:
#   bash configs/recipes/ssv2/launch_torchrun.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   GPUS=8 STRATEGY=fsdp I3D=/path/i3d.pt bash configs/recipes/ssv2/launch_torchrun.sh
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 bash configs/recipes/ssv2/launch_torchrun.sh  (NODE_RANK=1 on host1)
# DATA: the folder `vtlm data prepare ssv2 SOURCE DATA` wrote (default data/ssv2). See README.md.
export NAME=ssv2
export DATA=${DATA:-data/ssv2}
exec bash configs/recipes/launch_torchrun.sh "$@"

#!/usr/bin/env bash
# UCF-101 recipe with torchrun, from the repository root, all stages or the ones named:
#   bash configs/recipes/ucf101/launch_torchrun.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   GPUS=8 STRATEGY=fsdp I3D=/path/i3d.pt bash configs/recipes/ucf101/launch_torchrun.sh
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 bash configs/recipes/ucf101/launch_torchrun.sh  (NODE_RANK=1 on host1)
# DATA: the folder `vtlm data prepare ucf101 SOURCE DATA` wrote (default data/ucf101). See README.md.
export NAME=ucf101
export DATA=${DATA:-data/ucf101}
exec bash configs/recipes/launch_torchrun.sh "$@"

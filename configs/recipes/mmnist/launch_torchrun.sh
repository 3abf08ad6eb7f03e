#!/usr/bin/env bash
# Moving MNIST recipe with torchrun, from the repository root, all stages or the ones named:
#   bash configs/recipes/mmnist/launch_torchrun.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   GPUS=8 STRATEGY=fsdp I3D=/path/i3d.pt bash configs/recipes/mmnist/launch_torchrun.sh
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 bash configs/recipes/mmnist/launch_torchrun.sh  (NODE_RANK=1 on host1)
# DATA: the folder `vtlm data prepare mmnist SOURCE DATA` wrote (default data/mmnist). See README.md.
export NAME=mmnist
export DATA=${DATA:-data/mmnist}
export EVAL_DATA=${EVAL_DATA:-data/mnist_test_seq.npy}  # the protocol reads the published array
exec bash configs/recipes/launch_torchrun.sh "$@"

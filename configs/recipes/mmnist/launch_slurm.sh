#!/usr/bin/env bash
#SBATCH --job-name=vtlm-mmnist
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=vtlm-mmnist-%j.log
# Moving MNIST recipe under SLURM, submitted from the repository root with vtlm's environment active:
#   sbatch configs/recipes/mmnist/launch_slurm.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   sbatch --nodes 4 --export ALL,STRATEGY=fsdp,I3D=/path/i3d.pt configs/recipes/mmnist/launch_slurm.sh
# One task per GPU (--ntasks-per-node = --gpus-per-node). DATA: the folder
# `vtlm data prepare mmnist SOURCE DATA` wrote (default data/mmnist). See README.md.
cd "${SLURM_SUBMIT_DIR:-.}"
export NAME=mmnist
export DATA=${DATA:-data/mmnist}
export EVAL_DATA=${EVAL_DATA:-data/mnist_test_seq.npy}  # the protocol reads the published array
exec bash configs/recipes/launch_slurm.sh "$@"

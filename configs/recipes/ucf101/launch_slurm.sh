#!/usr/bin/env bash
#SBATCH --job-name=vtlm-ucf101
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=vtlm-ucf101-%j.log
# UCF-101 recipe under SLURM, submitted from the repository root with vtlm's environment active:
#   sbatch configs/recipes/ucf101/launch_slurm.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   sbatch --nodes 4 --export ALL,STRATEGY=fsdp,I3D=/path/i3d.pt configs/recipes/ucf101/launch_slurm.sh
# One task per GPU (--ntasks-per-node = --gpus-per-node). DATA: the folder
# `vtlm data prepare ucf101 SOURCE DATA` wrote (default data/ucf101). See README.md.
cd "${SLURM_SUBMIT_DIR:-.}"
export NAME=ucf101
export DATA=${DATA:-data/ucf101}
exec bash configs/recipes/launch_slurm.sh "$@"

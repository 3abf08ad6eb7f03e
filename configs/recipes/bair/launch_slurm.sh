#!/usr/bin/env bash
#SBATCH --job-name=vtlm-bair
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=vtlm-bair-%j.log
# BAIR robot pushing recipe under SLURM, submitted from the repository root with vtlm's environment active:
#   sbatch configs/recipes/bair/launch_slurm.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   sbatch --nodes 4 --export ALL,STRATEGY=fsdp,I3D=/path/i3d.pt configs/recipes/bair/launch_slurm.sh
# One task per GPU (--ntasks-per-node = --gpus-per-node). DATA: the folder
# `vtlm data prepare bair SOURCE DATA` wrote (default data/bair). See README.md.
cd "${SLURM_SUBMIT_DIR:-.}"
export NAME=bair
export DATA=${DATA:-data/bair}
exec bash configs/recipes/launch_slurm.sh "$@"

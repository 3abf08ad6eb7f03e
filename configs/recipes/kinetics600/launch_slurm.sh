#!/usr/bin/env bash
#SBATCH --job-name=vtlm-kinetics600
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=72:00:00
#SBATCH --output=vtlm-kinetics600-%j.log
# Kinetics-600 recipe under SLURM, submitted from the repository root with vtlm's environment active:
#   sbatch configs/recipes/kinetics600/launch_slurm.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   sbatch --nodes 4 --export ALL,STRATEGY=fsdp,I3D=/path/i3d.pt configs/recipes/kinetics600/launch_slurm.sh
# One task per GPU (--ntasks-per-node = --gpus-per-node). DATA: the folder
# `vtlm data prepare kinetics600 SOURCE DATA` wrote (default data/kinetics600). See README.md.
cd "${SLURM_SUBMIT_DIR:-.}"
export NAME=kinetics600
export DATA=${DATA:-data/kinetics600}
exec bash configs/recipes/launch_slurm.sh "$@"

#!/usr/bin/env bash
#SBATCH --job-name=vtlm-ssv2
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=72:00:00
#SBATCH --output=vtlm-ssv2-%j.log
# Something-Something v2 recipe under SLURM, submitted from the repository root with vtlm's environment active:
#   sbatch configs/recipes/ssv2/launch_slurm.sh [text] [tokenizer] [encode] [gpt] [diffusion] [eval]
#   sbatch --nodes 4 --export ALL,STRATEGY=fsdp,I3D=/path/i3d.pt configs/recipes/ssv2/launch_slurm.sh
# One task per GPU (--ntasks-per-node = --gpus-per-node). DATA: the folder
# `vtlm data prepare ssv2 SOURCE DATA` wrote (default data/ssv2). See README.md.
cd "${SLURM_SUBMIT_DIR:-.}"
export NAME=ssv2
export DATA=${DATA:-data/ssv2}
exec bash configs/recipes/launch_slurm.sh "$@"

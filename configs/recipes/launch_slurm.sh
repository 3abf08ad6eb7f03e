#!/usr/bin/env bash
# A recipe's stages inside a SLURM allocation: called by configs/recipes/NAME/launch_slurm.sh
# (an sbatch script) from the submission folder, the repository root. One task per GPU:
# Lightning reads SLURM's variables for ranks and the master address, so the training and
# encoding stages run under srun; the text model and the evaluation run once, on this node.
#   STRATEGY (ddp | fsdp), DATA, RUNS, EVAL_DATA, I3D: see stages.sh.
set -euo pipefail
: "${NAME:?set NAME (the recipe), or submit configs/recipes/NAME/launch_slurm.sh}"
: "${DATA:?set DATA to the folder vtlm data prepare wrote}"
GPUS=${SLURM_NTASKS_PER_NODE:-${GPUS:-1}}
NNODES=${SLURM_JOB_NUM_NODES:-${NNODES:-1}}
PYTHON=${PYTHON:-python}

dist() {
    srun --nodes "$NNODES" --ntasks-per-node "$GPUS" "$PYTHON" -m vtlm.cli.main "$@"
}
single() {
    "$PYTHON" -m vtlm.cli.main "$@"
}

source configs/recipes/stages.sh
run_stages "$@"

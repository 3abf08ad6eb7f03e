#!/usr/bin/env bash
# A recipe's stages with torchrun, on one machine or several: called by
# configs/recipes/NAME/launch_torchrun.sh, from the repository root.
#   GPUS (processes per machine, default 8), NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
#   MASTER_PORT (29500), STRATEGY (ddp | fsdp), DATA, RUNS, EVAL_DATA, I3D: see stages.sh.
# On several machines, run the same command on each with its NODE_RANK; the single-process
# stages (text model, evaluation) run on node 0 only.
set -euo pipefail
: "${NAME:?set NAME (the recipe), or call configs/recipes/NAME/launch_torchrun.sh}"
: "${DATA:?set DATA to the folder vtlm data prepare wrote}"
GPUS=${GPUS:-8}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
PYTHON=${PYTHON:-python}

dist() {
    torchrun --nproc_per_node "$GPUS" --nnodes "$NNODES" --node_rank "$NODE_RANK" \
        --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" -m vtlm.cli.main "$@"
}
single() {
    if [ "$NODE_RANK" = 0 ]; then "$PYTHON" -m vtlm.cli.main "$@"; fi
}

source configs/recipes/stages.sh
run_stages "$@"

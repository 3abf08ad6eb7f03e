# The stages every recipe runs, as vtlm commands. Sourced by launch_torchrun.sh and launch_slurm.sh
# (from the repository root), after they define how a command is run:
#   dist CMD...    on every process of the job (one per GPU, on every machine): training, encoding
#   single CMD...  once: the caption text model and the evaluation
# Settings (environment): NAME (the recipe), DATA (the folder `vtlm data prepare` wrote), RUNS,
# EVAL_DATA (what the evaluation protocol reads; default DATA), I3D (the I3D TorchScript file
# for FVD; FVD is reported as not computed without it), GPUS (per machine), NNODES, STRATEGY.

RECIPE=configs/recipes/$NAME
RUNS=${RUNS:-runs/recipes/$NAME}
EVAL_DATA=${EVAL_DATA:-$DATA}
STRATEGY=${STRATEGY:-ddp}
TEXT_VOCAB=${TEXT_VOCAB:-1024}
STAGES_ALL=(text tokenizer encode gpt diffusion eval)

stage() {
    local hardware=(--trainer.devices "$GPUS" --trainer.num_nodes "$NNODES" --trainer.strategy "$STRATEGY")
    local tokens=(--data.train "$RUNS/tokens/train" --data.val "$RUNS/tokens/val" --data.text_model "$RUNS/text.model")
    case "$1" in
        text)
            single data train-text "$RUNS/text.model" --manifest "$DATA/manifest.jsonl" --vocab_size "$TEXT_VOCAB" ;;
        tokenizer)
            dist tokenizer fit --config "$RECIPE/tokenizer.yaml" --data.folder_root "$DATA" \
                --trainer.out_dir "$RUNS/tokenizer" "${hardware[@]}" ;;
        encode)
            dist tokenizer encode "$RUNS/tokenizer/tokenizer" "$RUNS/tokens" --config "$RECIPE/encode.yaml" \
                --data.folder_root "$DATA" --devices "$GPUS" --num_nodes "$NNODES" ;;
        gpt)
            dist gpt fit --config "$RECIPE/gpt.yaml" "${tokens[@]}" --trainer.out_dir "$RUNS/gpt" "${hardware[@]}" ;;
        diffusion)
            dist diffusion fit --config "$RECIPE/diffusion.yaml" "${tokens[@]}" --trainer.out_dir "$RUNS/diffusion" \
                "${hardware[@]}" ;;
        eval)
            single eval compare "$RUNS/gpt/gpt" "$RUNS/diffusion/diffusion" --config "$RECIPE/eval.yaml" \
                --out "$RUNS/eval" --eval.data "$EVAL_DATA" ${I3D:+--eval.i3d "$I3D"} ;;
        *)
            echo "unknown stage '$1'; expected some of: ${STAGES_ALL[*]}" >&2
            return 2 ;;
    esac
}

run_stages() {
    local stages=("$@")
    [ ${#stages[@]} -gt 0 ] || stages=("${STAGES_ALL[@]}")
    for name in "${stages[@]}"; do
        echo "== $NAME: $name" >&2
        stage "$name"
    done
}

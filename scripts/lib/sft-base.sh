# Shared by scripts/run-demo and scripts/staleness-sweep: the supervised warm start that cluster RL
# runs begin from, made once per (config, cache dir) and reused.
#
#   tether_sft_base CONFIG CACHE_DIR [--set key=value ...]
#
# Makes CACHE_DIR/sft (a Hugging Face checkpoint of CONFIG's model shape) when it is missing:
# `tether train`'s base maker (fresh init + a deliberately short SFT on the task's built-in SFT split,
# TETHER_SFT_STEPS steps of 32, default 60) followed by one throw-away RL step. Held-out problems are
# never trained on. Prints the checkpoint path on stdout; progress goes to stderr.
# Needs $tether (the binary) set by the caller.
tether_sft_base() {
    local config="$1" cache="$2"
    shift 2
    local steps="${TETHER_SFT_STEPS:-60}"
    if [ -f "$cache/sft/model.safetensors" ]; then
        echo "== SFT base: using cached $cache/sft" >&2
    else
        echo "== SFT base: making $cache/sft ($config, $steps SFT steps of 32)" >&2
        mkdir -p "$cache"
        rm -rf "$cache/make-base"
        if ! "$tether" train --config "$config" "$@" --set model.checkpoint="$cache/sft" --set run.steps=1 \
                --set checkpoint.every_steps=1 --out "$cache/make-base" --base-sft-steps "$steps" --eval-prompts 0 \
                --threads 2 > "$cache/make-base.log" 2>&1; then
            echo "error: making the SFT base failed; last lines of $cache/make-base.log:" >&2
            tail -20 "$cache/make-base.log" >&2
            return 1
        fi
        rm -rf "$cache/make-base"
        [ -f "$cache/sft/model.safetensors" ] || { echo "error: $cache/sft/model.safetensors was not written" >&2; return 1; }
    fi
    echo "$cache/sft"
}

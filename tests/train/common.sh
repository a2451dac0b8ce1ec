# Shared by the training integration tests: a small synthetic dataset and a runner.
# Needs TIJEPA (the binary), WORK (a scratch folder) and CONFIG (launch/configs/tiny.ini).
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
PY=/usr/bin/python3
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

make_data() { # make_data DIR
    [ -f "$1/vocab.txt" ] || "$TIJEPA" synth --out "$1" --train 640 --val 64 --per-shard 160 >/dev/null
}

# train RANKS RUN_DIR [--set ...]: tiny, sample split, global batch 16, negatives on
train() {
    local ranks=$1 dir=$2
    shift 2
    mpirun --oversubscribe -n "$ranks" "$TIJEPA" train --config "$CONFIG" \
        --set "data.train=$DATA/train-{000000..000003}.tar" --set "data.vocab=$DATA/vocab.txt" \
        --set "run.dir=$dir" --set train.global_batch=16 --set train.log_every=1 \
        --set train.steps=10 --set train.check_every=5 --set loss.negatives=3 \
        --set data.shuffle_buffer=64 "$@" >"$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
}

losses() { # the "loss" field of every metrics line, from step $2 on
    $PY -c "import json,sys; [print(json.loads(l)['step'], repr(json.loads(l)['loss'])) for l in open(sys.argv[1]) if json.loads(l)['step'] >= int(sys.argv[2])]" "$1/metrics.jsonl" "${2:-0}"
}

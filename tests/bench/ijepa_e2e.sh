#!/usr/bin/env bash
# End to end on synthetic shards (docs/encoders.md, "Stage 1 + stage 2, measured"): I-JEPA
# stage 1 (model.mode = ijepa) pre-trains the tiny ViT; then TI-JEPA paper mode freezes that
# encoder (model.image_weights = its checkpoint) and, for comparison, a random one (the same
# seed without image_weights); both stage-2 runs train from feature shards (tijepa encode) and
# are evaluated by retrieval by energy (256 held-out pairs) and the linear probe (labels: colour
# of the largest object), for each stage-2 seed. Prints one line per encoder and seed and the
# means; the reports stay in the work folder. Not a test: figures only (about 20 minutes on
# 2 cores for 3 seeds).
# usage: tests/bench/ijepa_e2e.sh [BUILD_DIR] [WORK]
#        (STEPS1=400 LR1=2e-4 EMA1=0.998 STEPS2=800 TARGET_TEXT=none SEEDS2="1 2 3"
#         SYNTH_ARGS="--flat-background --noise 24": the options of tijepa synth)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
work="${2:-$build/bench/ijepa_e2e}"
tijepa="$build/tijepa"
mkdir -p "$work"
cd "$work"
# 10k train, 1k val, 32 px
# The default images have a flat grey background and pixel noise (docs/encoders.md says why).
synth_args="${SYNTH_ARGS---flat-background --noise 24}"
[ -f synth/vocab.txt ] || "$tijepa" synth --out synth $synth_args >/dev/null
cat >stage1.ini <<INI
[run]
seed = 0
[data]
train = $work/synth/train-{000000..000009}.tar
vocab = $work/synth/vocab.txt
[model]
preset = tiny
mode = ijepa
[optim]
lr = ${LR1:-2e-4}
start_lr = 1e-4
ema_start = ${EMA1:-0.998}
clip_grad = 1.0
[train]
steps = ${STEPS1:-400}
global_batch = 32
log_every = 20
ckpt_every = ${STEPS1:-400}
threads = 1
INI
cat >stage2.ini <<INI
[run]
seed = 1
[data]
train = $work/synth/train-{000000..000009}.tar
val = $work/synth/val-000000.tar
vocab = $work/synth/vocab.txt
[model]
preset = tiny
mode = paper
[loss]
nce_weight = 1.0
negatives = 8
temperature = 0.01
target_text = ${TARGET_TEXT:-none}
[optim]
lr = 1e-3
start_lr = 2e-4
clip_grad = 1.0
[train]
steps = ${STEPS2:-800}
global_batch = 32
log_every = 50
ckpt_every = ${STEPS2:-800}
threads = 1
INI
rm -rf stage1
"$tijepa" train --config stage1.ini --set run.dir="$work/stage1" >stage1.log 2>&1 ||
    { cat stage1.log; exit 1; }
# One chain per encoder (they run side by side, one thread each): per seed, feature shards, a
# stage-2 run and its evaluation (the seed draws the frozen random text encoder, and the random
# image encoder of the comparison).
chain() {
    local enc=$1 weights=()
    [ "$enc" = ijepa ] && weights=(--set
        "model.image_weights=$(ls -d "$work"/stage1/ckpt/step-*.h5 | tail -1)")
    for seed in $SEEDS2; do
        local feat="feat-$enc-s$seed"
        rm -rf "$feat" "stage2-$enc-s$seed"
        "$tijepa" encode --config stage2.ini "${weights[@]}" --set run.seed="$seed" \
            --out "$work/$feat/train-%06d.tar" >"encode-$enc-s$seed.log" 2>&1 ||
            { cat "encode-$enc-s$seed.log"; return 1; }
        "$tijepa" train --config stage2.ini "${weights[@]}" --set run.seed="$seed" \
            --set run.dir="$work/stage2-$enc-s$seed" --set data.features=true \
            --set "data.train=$work/$feat/train-{000000..000009}.tar" \
            >"stage2-$enc-s$seed.log" 2>&1 || { cat "stage2-$enc-s$seed.log"; return 1; }
        "$tijepa" eval --ckpt "$work/stage2-$enc-s$seed" \
            --probe-train "$work/synth/train-{000000..000001}.tar" \
            --probe-test "$work/synth/val-000000.tar" --out "$work/eval-$enc-s$seed.json" \
            >"eval-$enc-s$seed.log" 2>&1 || { cat "eval-$enc-s$seed.log"; return 1; }
    done
}
SEEDS2="${SEEDS2:-1 2 3}"
chain ijepa &
ijepa_pid=$!
chain random || exit 1
wait $ijepa_pid || exit 1
/usr/bin/python3 - "$work" $SEEDS2 <<'PY'
import json, sys
work, seeds = sys.argv[1], sys.argv[2:]
s1 = [json.loads(l) for l in open(work + "/stage1/metrics.jsonl")]
print("stage 1 (ijepa): %d steps, loss %.4f -> %.4f" % (s1[-1]["step"], s1[0]["loss"], s1[-1]["loss"]))
cols = ("t2i R@1", "t2i R@10", "t2i median", "i2t R@1", "i2t R@10", "i2t median", "probe acc")
def figures(r):
    t, i = r["retrieval"]["t2i"], r["retrieval"]["i2t"]
    return (t["r1"], t["r10"], t["median_rank"], i["r1"], i["r10"], i["median_rank"],
            r["probe"]["probe"]["accuracy"])
print("%-22s" % "stage 2 encoder, seed" + "".join("%11s" % c for c in cols))
mean = {}
for enc in ("ijepa", "random"):
    rows = []
    for seed in seeds:
        rows.append(figures(json.load(open("%s/eval-%s-s%s.json" % (work, enc, seed)))))
        print("%-22s" % ("%s, %s" % (enc, seed)) + "".join("%11.4f" % v for v in rows[-1]))
    mean[enc] = [sum(c) / len(c) for c in zip(*rows)]
    print("%-22s" % ("%s, mean" % enc) + "".join("%11.4f" % v for v in mean[enc]))
better = [(m_i < m_r) if "median" in c else (m_i > m_r)
          for c, m_i, m_r in zip(cols, mean["ijepa"], mean["random"])]
print("I-JEPA encoder better on the mean of %d of %d figures (%s)" % (
    sum(better), len(cols), ", ".join(c for c, b in zip(cols, better) if b)))
PY

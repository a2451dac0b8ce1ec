#!/usr/bin/env bash
# End to end on synthetic shards (docs/encoders.md, "Stage 1 + stage 2, measured"): I-JEPA
# stage 1 (model.mode = ijepa) pre-trains the tiny ViT; then TI-JEPA paper mode freezes that
# encoder (model.image_weights = its checkpoint) and, for comparison, a random one (the same
# seed without image_weights); both stage-2 runs train from feature shards (tijepa encode) and
# are evaluated by retrieval by energy (256 held-out pairs) and the linear probe (labels: colour
# of the largest object). Prints one line per encoder; the reports stay in the work folder.
# Not a test: figures only (about 10 minutes on 2 cores).
# usage: tests/bench/ijepa_e2e.sh [BUILD_DIR] [WORK]
#        (STEPS1=400 LR1=2e-4 EMA1=0.998 STEPS2=800 TARGET_TEXT=none)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
work="${2:-$build/bench/ijepa_e2e}"
tijepa="$build/tijepa"
mkdir -p "$work"
cd "$work"
[ -f synth/vocab.txt ] || "$tijepa" synth --out synth >/dev/null # 10k train, 1k val, 32 px
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
for enc in ijepa random; do
    weights=()
    [ $enc = ijepa ] && weights=(--set
        "model.image_weights=$(ls -d "$work"/stage1/ckpt/step-*.h5 | tail -1)")
    rm -rf "feat-$enc" "stage2-$enc"
    "$tijepa" encode --config stage2.ini "${weights[@]}" --out "$work/feat-$enc/train-%06d.tar" \
        >"encode-$enc.log" 2>&1 || { cat "encode-$enc.log"; exit 1; }
    "$tijepa" train --config stage2.ini "${weights[@]}" --set run.dir="$work/stage2-$enc" \
        --set data.features=true --set "data.train=$work/feat-$enc/train-{000000..000009}.tar" \
        >"stage2-$enc.log" 2>&1 || { cat "stage2-$enc.log"; exit 1; }
    "$tijepa" eval --ckpt "$work/stage2-$enc" --probe-train "$work/synth/train-{000000..000001}.tar" \
        --probe-test "$work/synth/val-000000.tar" --out "$work/eval-$enc.json" >"eval-$enc.log" 2>&1 ||
        { cat "eval-$enc.log"; exit 1; }
done
/usr/bin/python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
s1 = [json.loads(l) for l in open(work + "/stage1/metrics.jsonl")]
print("stage 1 (ijepa): %d steps, loss %.4f -> %.4f" % (s1[-1]["step"], s1[0]["loss"], s1[-1]["loss"]))
for enc in ("ijepa", "random"):
    r = json.load(open("%s/eval-%s.json" % (work, enc)))
    ret, p = r["retrieval"], r["probe"]["probe"]
    print("stage 2 with the %-6s encoder: t2i R@1 %.4f R@10 %.4f median %.1f | i2t R@1 %.4f "
          "R@10 %.4f median %.1f (chance R@1 %.4f) | probe acc %.3f F1 %.3f" % (
              enc, ret["t2i"]["r1"], ret["t2i"]["r10"], ret["t2i"]["median_rank"],
              ret["i2t"]["r1"], ret["i2t"]["r10"], ret["i2t"]["median_rank"], ret["chance_r1"],
              p["accuracy"], p["weighted_f1"]))
PY

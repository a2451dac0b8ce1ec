#!/usr/bin/env bash
# Bit-exact resume: 20 steps straight vs 10, stop, resume to 20 on 2 ranks: identical /params,
# /ema, /optim and losses 11-20. Elastic: resume the 10-step checkpoint on 1 and 4 ranks.
source "$(dirname "$0")/common.sh"
DATA=$WORK/data
mkdir -p "$WORK" && make_data "$DATA"
rm -rf "$WORK/straight" "$WORK/part" "$WORK/e1" "$WORK/e4"
train 2 "$WORK/straight" --set train.steps=20 --set train.ckpt_every=10
train 2 "$WORK/part" --set train.steps=20 --set train.ckpt_every=10 --set train.stop_after=10
[ -f "$WORK/part/ckpt/step-00000010.h5" ] && [ ! -f "$WORK/part/ckpt/step-00000020.h5" ]
# a run killed without saving leaves metrics past its checkpoint: the resumed run drops them
echo '{"step": 11, "loss": 99.0}' >>"$WORK/part/metrics.jsonl"
train 2 "$WORK/part" --set train.steps=20 --set train.ckpt_every=10 --resume auto
[ "$(grep -c '"step": 11,' "$WORK/part/metrics.jsonl")" = 1 ]
grep -q "resume: .*step-00000010.h5 (step 10)" "$WORK/part.log"
final=ckpt/step-00000020.h5
$PY "$HERE/compare_ckpt.py" "$WORK/part/$final" "$WORK/straight/$final" --rtol 0
cmp <(losses "$WORK/part" 11) <(losses "$WORK/straight" 11)
for r in 1 4; do
    mkdir -p "$WORK/e$r/ckpt" && cp "$WORK/part/ckpt/step-00000010.h5" "$WORK/e$r/ckpt/"
    train $r "$WORK/e$r" --set train.steps=20 --set train.ckpt_every=10 --resume auto
    $PY "$HERE/compare_ckpt.py" "$WORK/e$r/$final" "$WORK/straight/$final" --rtol 1e-4 --groups params,ema
done
echo "resume: ok"

#!/usr/bin/env bash
# model.mode = ijepa end to end (docs/encoders.md, "Your own image encoder: I-JEPA"): image-only
# pre-training on synthetic shards on 1 and 2 ranks (losses agree to 1e-4, the loss falls), a
# bit-exact resume, then its checkpoint as model.image_weights of a paper-mode run: the frozen
# image encoder equals the ijepa run's EMA (target) encoder bit for bit. Refusals: negatives,
# in-training evaluation, `tijepa eval` of an ijepa checkpoint.
# Needs TIJEPA (the binary), WORK (a scratch folder), PY (python3 with h5py and numpy).
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
"$TIJEPA" synth --out synth --train 640 --val 64 --per-shard 160 >/dev/null
cat >ijepa.ini <<INI
[run]
seed = 3
[data]
train = $WORK/synth/train-{000000..000003}.tar
shuffle_buffer = 64
[model]
preset = tiny
mode = ijepa
[optim]
lr = 2e-4
start_lr = 1e-4
[train]
steps = 12
global_batch = 16
log_every = 1
ckpt_every = 6
threads = 1
INI
run() { # run RANKS DIR [args...]
    local ranks=$1 dir=$2
    shift 2
    mpirun -n "$ranks" "$TIJEPA" train --config ijepa.ini --set "run.dir=$WORK/$dir" "$@" \
        >"$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
}
run 1 r1
run 2 r2
grep -q "preset tiny (ijepa mode), 518304 parameters (518304 trainable)" r1.log
"$PY" - r1/metrics.jsonl r2/metrics.jsonl <<'PYEOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 12
for x, y in zip(a, b):
    assert abs(x["loss"] - y["loss"]) <= 1e-4 * abs(x["loss"]), (x["step"], x["loss"], y["loss"])
    assert x["nce"] == 0 and x["pred_std"] > 0, x
first, last = (sum(x["loss"] for x in part) / 4 for part in (a[:4], a[-4:]))
assert last < first, (first, last)
print("ijepa: 1 and 2 ranks agree; loss %.4f -> %.4f" % (a[0]["loss"], a[-1]["loss"]))
PYEOF
# stopped after 6 steps and resumed: the same parameters, bit for bit
run 1 rs --set train.stop_after=6
run 1 rs --resume auto
"$PY" - r1/ckpt/step-00000012.h5 rs/ckpt/step-00000012.h5 <<'PYEOF'
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a["ema"]) == sorted(b["ema"]) and all(k.startswith("img.") for k in a["ema"])
assert all(k.startswith(("img.", "pred.")) for k in a["params"])
for g in ("params", "ema", "optim/m", "optim/v"):
    for k in a[g]:
        assert np.array_equal(a[g][k][()], b[g][k][()]), (g, k)
print("ijepa: bit-exact resume")
PYEOF

# its checkpoint as the frozen image encoder of a paper-mode run: the EMA encoder, unchanged
cat >paper.ini <<INI
[run]
seed = 4
[data]
train = $WORK/synth/train-{000000..000003}.tar
shuffle_buffer = 64
[model]
preset = tiny
mode = paper
image_weights = $WORK/r1/ckpt/step-00000012.h5
[train]
steps = 3
global_batch = 16
log_every = 1
ckpt_every = 3
threads = 1
INI
"$TIJEPA" train --config paper.ini --set "run.dir=$WORK/paper" >paper.log 2>&1 || { cat paper.log; exit 1; }
grep -q "52 tensors /ema/img.\*: the EMA target encoder of an ijepa run" paper.log
"$PY" - r1/ckpt/step-00000012.h5 paper/ckpt/step-00000003.h5 <<'PYEOF'
import h5py, numpy as np, sys
ij, pa = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = [k for k in ij["ema"]]
assert len(names) == 52
for k in names:
    assert np.array_equal(ij["ema"][k][()], pa["params"][k][()]), k
    assert not np.array_equal(ij["params"][k][()], ij["ema"][k][()]) or k.endswith("bias"), k
print("paper run: frozen image encoder = the ijepa run's EMA encoder (52 tensors, bit for bit)")
PYEOF

expect_fail() { # expect_fail LOG PATTERN COMMAND...
    local log=$1 pattern=$2
    shift 2
    if "$@" >"$log" 2>&1; then echo "expected a failure: $*"; return 1; fi
    grep -q -- "$pattern" "$log" || { echo "no '$pattern' in:"; cat "$log"; return 1; }
}
expect_fail nce.log "loss.nce_weight must be 0" \
    "$TIJEPA" train --config ijepa.ini --set "run.dir=$WORK/x" --set loss.nce_weight=1
expect_fail evalevery.log "model.mode = ijepa has no text path" \
    "$TIJEPA" train --config ijepa.ini --set "run.dir=$WORK/x" --set train.eval_every=5
expect_fail eval.log "is an image-encoder checkpoint (model.mode = ijepa)" \
    "$TIJEPA" eval --ckpt r1/ckpt --data synth/val-000000.tar
expect_fail bert.log "needs model.mode = paper" \
    "$TIJEPA" train --config ijepa.ini --set "run.dir=$WORK/x" --set model.text_encoder=bert
echo "ijepa_stage1: all checks passed"

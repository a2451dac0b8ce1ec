#!/usr/bin/env bash
# Feature shards end to end (docs/encoders.md, "Feature shards"): `tijepa encode` on synthetic
# shards (alone, under mpirun -n 2, and from a checkpoint: the same bytes), then 10 paper-mode
# steps from the feature shards against 10 steps from the pixels on the same seed: loss, jepa and
# nce within 1e-5 (relative) at every step, on 1 and on 2 ranks. Then the failure paths: a
# feature member of the wrong size (counted skip with a warning), features of other encoder
# weights (refused by the fingerprint), scratch mode (refused by train and by encode).
# Needs TIJEPA (the binary), WORK (a scratch folder), PY (python3).
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
"$TIJEPA" synth --out synth --train 640 --val 64 --per-shard 160 >/dev/null
cat >run.ini <<INI
[run]
seed = 5
[data]
train = $WORK/synth/train-{000000..000003}.tar
val = $WORK/synth/val-000000.tar
shuffle_buffer = 64
[model]
preset = tiny
mode = paper
[loss]
nce_weight = 1.0
negatives = 3
[train]
steps = 10
global_batch = 16
log_every = 1
ckpt_every = 10
threads = 1
INI
FEAT="$WORK/feat/train-{000000..000003}.tar"

"$TIJEPA" encode --config run.ini --out "$WORK/feat/train-%06d.tar" >encode.log
mpirun -n 2 "$TIJEPA" encode --config run.ini --out "$WORK/feat2/train-%06d.tar" >encode2.log
for i in 0 1 2 3; do cmp "feat/train-00000$i.tar" "feat2/train-00000$i.tar"; done
grep -q "samples from 4 shard(s) into 4 feature shard(s)" encode2.log

run() { # run RANKS DIR [--set ...]
    local ranks=$1 dir=$2
    shift 2
    mpirun -n "$ranks" "$TIJEPA" train --config run.ini --set "run.dir=$WORK/$dir" "$@" \
        >"$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
}
compare() { # compare PIXEL_DIR FEATURE_DIR
    "$PY" - "$1/metrics.jsonl" "$2/metrics.jsonl" <<'PYEOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 10, (len(a), len(b))
worst = 0.0
for x, y in zip(a, b):
    for k in ("loss", "jepa", "nce"):
        err = abs(x[k] - y[k]) / max(abs(x[k]), 1e-12)
        worst = max(worst, err)
        assert err <= 1e-5, "step %d %s: pixels %r, features %r" % (x["step"], k, x[k], y[k])
print("features vs pixels: 10 steps, worst relative loss difference %.2e" % worst)
PYEOF
}

run 1 pix
run 1 feat_run --set data.features=true --set "data.train=$FEAT"
compare pix feat_run
run 2 pix2
run 2 feat_run2 --set data.features=true --set "data.train=$FEAT"
compare pix2 feat_run2

# from a checkpoint: the frozen encoders of the pixel run, the same feature bytes
"$TIJEPA" encode --ckpt pix/ckpt --data "$WORK/synth/train-000000.tar" \
    --out "$WORK/feat_ckpt/train-%06d.tar" >encode_ckpt.log
cmp feat/train-000000.tar feat_ckpt/train-000000.tar
grep -q "^fingerprint = $(sed -n 's/^fingerprint = //p' feat/features.ini)$" feat_ckpt/features.ini

# a feature member of the wrong size (the first sample of every shard): counted, warned about,
# skipped
mkdir -p bad
cp feat/features.ini feat/vocab.txt bad/
"$PY" - feat bad <<'PYEOF'
import io, sys, tarfile
for i in range(4):
    name = "train-%06d.tar" % i
    src = tarfile.open("%s/%s" % (sys.argv[1], name))
    dst = tarfile.open("%s/%s" % (sys.argv[2], name), "w", format=tarfile.USTAR_FORMAT)
    for k, m in enumerate(src.getmembers()):
        data = src.extractfile(m).read()
        if m.name == "train-%07d.img.f32" % (160 * i):
            data = data[:-4]
        m.size = len(data)
        dst.addfile(m, io.BytesIO(data))
    dst.close()
PYEOF
run 1 bad_run --set data.features=true --set "data.train=$WORK/bad/train-{000000..000003}.tar" \
    --set train.steps=3
grep -q "skipping sample 'train-0000[0-9]*' in .*bad/train-00000[0-3].tar: .img.f32 has 24572 bytes but this model expects 24576" bad_run.log
"$PY" -c "import json,sys; s=[json.loads(l)['skipped_samples'] for l in open(sys.argv[1])]; assert max(s) >= 1, s" bad_run/metrics.jsonl

expect_fail() { # expect_fail LOG PATTERN COMMAND...: exit code 1 and PATTERN in the output
    local log=$1 pattern=$2
    shift 2
    if "$@" >"$log" 2>&1; then echo "expected a failure: $*"; return 1; fi
    grep -q -- "$pattern" "$log" || { echo "no '$pattern' in:"; cat "$log"; return 1; }
}
expect_fail seed.log "were made by frozen encoders with fingerprint" \
    "$TIJEPA" train --config run.ini --set "run.dir=$WORK/seed" --set data.features=true \
    --set "data.train=$FEAT" --set run.seed=6
expect_fail scratch.log "model.mode = scratch trains the image encoder" \
    "$TIJEPA" train --config run.ini --set "run.dir=$WORK/scratch" --set data.features=true \
    --set "data.train=$FEAT" --set model.mode=scratch
expect_fail encode_scratch.log "feature shards are for model.mode = paper" \
    "$TIJEPA" encode --config run.ini --set model.mode=scratch --out "$WORK/x/%d.tar"
echo "features_train_equals_pixels: all checks passed"

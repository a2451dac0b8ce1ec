#!/bin/bash
# End-to-end test of tijepa eval / score / search / explain and of the in-training evaluation
# hook, on a tiny checkpoint made here: synth data (64 train, 32 val), 3 training steps.
# usage: eval_commands.sh TIJEPA EVAL_CLI SOURCE_DIR WORK_DIR PYTHON
set -euo pipefail
tijepa=$1 cli=$2 src=$3 work=$4 py=$5
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$tijepa" synth --out d --train 64 --val 32 >/dev/null
"$tijepa" train --config "$src/launch/configs/tiny.ini" --set data.train=d/train-000000.tar \
    --set data.val=d/val-000000.tar --set data.vocab=d/vocab.txt --set run.dir=run \
    --set train.steps=3 --set train.global_batch=8 --set eval.pairs=16 >train.log
ckpt=run/ckpt/step-00000003.h5
[ -f "$ckpt" ] || fail "training wrote no $ckpt"

# The subcommands through tijepa itself once main.c lists them, else through the test dispatcher.
if "$tijepa" eval --help >/dev/null 2>&1; then ev=$tijepa; else
    ev=$cli
    echo "note: tijepa has no 'eval' subcommand yet; using $cli"
fi

# --- eval: table + JSON with the required keys; two probes; a run directory as --ckpt
"$ev" eval --ckpt "$ckpt" --data d/val-000000.tar --pairs 16 \
    --probe-train d/train-000000.tar --probe-test d/val-000000.tar \
    --probe "second:d/train-000000.tar:d/val-000000.tar" --out report.json | tee eval.log
grep -q "text→image" eval.log || fail "eval printed no retrieval table"
"$py" - report.json <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
assert r["step"] == 3, r["step"]
ret = r["retrieval"]
assert ret["pairs"] == 16 and abs(ret["chance_r1"] - 1 / 16) < 1e-12, ret
for d in ("t2i", "i2t"):
    for k in ("r1", "r5", "r10"):
        assert 0 <= ret[d][k] <= 1, (d, k, ret[d][k])
    assert ret[d]["r1"] <= ret[d]["r5"] <= ret[d]["r10"]
    assert 1 <= ret[d]["median_rank"] <= 16
assert set(r["probe"]) == {"probe", "second"}, r["probe"]
for name, p in r["probe"].items():
    assert 0 <= p["accuracy"] <= 1 and 0 <= p["weighted_f1"] <= 1, p
    assert p["classes"] >= 2 and len(p["per_class_f1"]) == p["classes"], p
    assert p["test"] == 32 and p["train"] == 64, p
# the probe is deterministic: both names ran the same data
assert r["probe"]["probe"]["accuracy"] == r["probe"]["second"]["accuracy"]
print("report ok")
PY
"$ev" eval --ckpt run --pairs 8 --out report-dir.json >/dev/null # data.val of the run's config
"$py" -c "import json,sys; r=json.load(open('report-dir.json')); assert r['retrieval']['pairs']==8 and r['probe']=={}" ||
    fail "eval on a run directory"

# --- score: a finite energy; the same pair scored by search gives the same energy
mkdir -p val && tar -xf d/val-000000.tar -C val
key=val-0000005
caption=$(cat val/$key.txt)
score=$("$ev" score --ckpt "$ckpt" --image val/$key.png --text "$caption")
echo "score: $score"
e=$(echo "$score" | awk '$1 == "energy" {print $2}')
"$py" -c "import math,sys; v=float('$e'); sys.exit(0 if math.isfinite(v) and v >= 0 else 1)" ||
    fail "score printed no finite energy: $score"

# --- search: K lines sorted by energy, keys from the data
"$ev" search --ckpt "$ckpt" --data d/val-000000.tar --text "$caption" --top 5 >search.log
cat search.log
[ "$(grep -vc '^#' search.log)" = 5 ] || fail "search did not print 5 results"
grep -v '^#' search.log | awk 'NR > 1 && $2 < prev {exit 1} {prev = $2}' || fail "search results not sorted"
grep -v '^#' search.log | awk '{print $3}' | while read -r k; do
    [ -f "val/$k.png" ] || fail "search returned unknown key $k"
done
"$ev" search --ckpt "$ckpt" --data d/val-000000.tar --text "$caption" --top 32 >search-all.log
[ "$(grep -vc '^#' search-all.log)" = 32 ] || fail "search --top 32 over 32 images"
se=$(awk -v k=$key '$3 == k {print $2}' search-all.log)
"$py" -c "import sys; a, b = float('$e'), float('$se'); sys.exit(0 if abs(a - b) <= 1e-4 * max(1e-3, abs(a)) else 1)" ||
    fail "score ($e) and search ($se) disagree on $key"

# --- explain: a PNG of S·F pixels (tiny: 32 px, default F = 8 → 256) that decodes
"$ev" explain --ckpt "$ckpt" --image val/$key.png --text "$caption" --out map.png
"$ev" explain --ckpt "$ckpt" --image val/$key.png --text "$caption" --out map2.png --token 1 --scale 3
check_png() { # FILE WIDTH HEIGHT — signature, chunk CRCs, IHDR size, IDAT inflates to the pixels
    "$py" - "$@" <<'PY'
import struct, sys, zlib
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
    assert zlib.crc32(kind + body) & 0xffffffff == crc, "bad CRC in %s" % kind
    if kind == b"IHDR": ihdr = struct.unpack(">IIBBBBB", body)
    if kind == b"IDAT": idat += body
    pos += 12 + n
    if kind == b"IEND": break
assert ihdr[:4] == (w, h, 8, 2), "IHDR %s, want %dx%d 8-bit RGB" % (ihdr, w, h)
raw = zlib.decompress(idat)
assert len(raw) == h * (1 + 3 * w), "pixel data %d bytes" % len(raw)
print("%s: %dx%d PNG ok" % (path, w, h))
PY
}
check_png map.png 256 256 || fail "explain: map.png"
check_png map2.png 96 96 || fail "explain --scale 3: map2.png"

# --- bad input: clear errors with the documented exit codes
set +e
"$ev" explain --ckpt "$ckpt" --image val/$key.png --text "$caption" --out x.png --token 99 2>err.txt
[ $? = 2 ] && grep -q "token" err.txt || fail "explain --token 99 should be a usage error"
"$ev" score --ckpt "$ckpt" --image missing.png --text "x" 2>err.txt
[ $? = 1 ] && grep -q "missing.png" err.txt || fail "score on a missing image should name it"
"$ev" eval --ckpt d/vocab.txt --data d/val-000000.tar 2>err.txt
[ $? = 1 ] && grep -q "vocab.txt" err.txt || fail "eval on a non-checkpoint should name it"
"$ev" search --ckpt "$ckpt" --text "x" 2>/dev/null
[ $? = 2 ] || fail "search without --data should be a usage error"
set -e

# --- the in-training hook: RUN_DIR/eval/step-NNNNNNNN.json and one line
"$cli" train-eval "$ckpt" hookrun 3 | tee hook.log
[ "$(wc -l <hook.log)" = 1 ] || fail "train_evaluate should print one line"
[ -f hookrun/eval/step-00000003.json ] || fail "train_evaluate wrote no hookrun/eval/step-00000003.json"
"$py" -c "import json; r=json.load(open('hookrun/eval/step-00000003.json')); assert r['step']==3 and r['retrieval']['pairs']==16"
echo "eval commands: all checks passed"

#!/bin/bash
# launch/plot on a made-up run directory (metrics.jsonl with a non-finite value, two eval
# reports written out of order): three PNG files come out. Skipped (77) when gnuplot is missing
# and cannot be installed (not root).
# usage: eval_plot.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
if ! command -v gnuplot >/dev/null 2>&1 && [ "$(id -u)" != 0 ]; then
    echo "gnuplot is not installed and this is not root: skipped"
    exit 77
fi
rm -rf "$work"
mkdir -p "$work/run/eval"
cd "$work"
for s in 10 20 30 40; do
    echo "{\"step\": $s, \"loss\": 1.$s, \"jepa\": 0.4, \"nce\": $([ $s = 20 ] && echo nan || echo 0.$s), \"energy_pos\": 0.3, \"energy_neg\": 0.3$s, \"lr\": 0.001}" >>run/metrics.jsonl
done
for s in 40 20; do
    cat >run/eval/step-000000$s.json <<JSON
{
	"step":	$s,
	"retrieval":	{"pairs": 256, "chance_r1": 0.00390625,
		"t2i":	{"r1": 0.0$s, "r5": 0.2, "r10": 0.3, "median_rank": 12, "mean_rank": 20},
		"i2t":	{"r1": 0.0$((s / 2)), "r5": 0.2, "r10": 0.3, "median_rank": 14, "mean_rank": 22}},
	"probe":	{"probe": {"accuracy": 0.$s, "weighted_f1": 0.3, "classes": 3}}
}
JSON
done
"$src/launch/plot" run out
for f in loss energy recall; do
    [ -s out/$f.png ] || { echo "FAIL: no out/$f.png"; exit 1; }
    [ "$(head -c 8 out/$f.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
        { echo "FAIL: out/$f.png is not a PNG"; exit 1; }
done
# nothing to plot is an error
mkdir empty
if "$src/launch/plot" empty 2>/dev/null; then echo "FAIL: plot of an empty run succeeded"; exit 1; fi
echo "plot: ok"

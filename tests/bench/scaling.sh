#!/usr/bin/env bash
# Scaling benchmark of `tijepa train` on synthetic shards: samples/s of tiny and small on
# 1 rank × 1 thread, 2 ranks × 1 thread and 1 rank × 2 threads, with the exposed communication
# and data-wait shares of a step (from metrics.jsonl, the first logged window dropped as warm-up).
# Prints a table and writes a JSON file. Not a test: figures only.
# usage: tests/bench/scaling.sh [BUILD_DIR] [OUT.json]   (STEPS=N, PRESETS="tiny small")
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
out="${2:-$build/bench/scaling.json}"
tijepa="$build/tijepa"
work="$build/bench/scaling"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$work"
results=()
for preset in ${PRESETS:-tiny small}; do
    case $preset in tiny) px=32; steps=${STEPS:-30};; small) px=64; steps=${STEPS:-8};; esac
    data="$work/synth-$px"
    [ -f "$data/vocab.txt" ] || "$tijepa" synth --out "$data" --train 2000 --val 64 --image-size $px \
        --per-shard 500 >/dev/null
    for layout in "1 1" "2 1" "1 2"; do
        set -- $layout
        ranks=$1 threads=$2 run="$work/$preset-r$1-t$2"
        rm -rf "$run"
        mpirun --oversubscribe --bind-to none -n "$ranks" "$tijepa" train \
            --config "$root/launch/configs/$preset.ini" \
            --set "data.train=$data/train-{000000..000003}.tar" --set "data.vocab=$data/vocab.txt" \
            --set run.dir="$run" --set train.steps=$steps --set train.log_every=$((steps / 2)) \
            --set train.threads=$threads --set train.ckpt_every=0 >"$run.log" 2>&1 \
            || { cat "$run.log"; exit 1; }
        results+=("$preset $ranks $threads $run/metrics.jsonl")
    done
done
/usr/bin/python3 - "$out" "${results[@]}" <<'PY'
import json, sys
out, rows = sys.argv[1], []
for spec in sys.argv[2:]:
    preset, ranks, threads, path = spec.split(" ", 3)
    last = [json.loads(l) for l in open(path)][-1]      # the second window: warm-up dropped
    rows.append(dict(preset=preset, ranks=int(ranks), threads=int(threads),
                     samples_per_s=last["samples_per_s"], step_ms=last["step_ms"],
                     comm_exposed_share=last["comm_exposed_ms"] / last["step_ms"],
                     data_wait_share=last["data_wait_ms"] / last["step_ms"]))
base = {r["preset"]: r["samples_per_s"] for r in rows if r["ranks"] == 1 and r["threads"] == 1}
print("%-6s %5s %7s %12s %8s %10s %10s" % ("preset", "ranks", "threads", "samples/s", "speedup",
                                           "comm exp.", "data wait"))
for r in rows:
    r["speedup"] = r["samples_per_s"] / base[r["preset"]]
    print("%-6s %5d %7d %12.1f %7.2fx %9.1f%% %9.1f%%" % (r["preset"], r["ranks"], r["threads"],
          r["samples_per_s"], r["speedup"], 100 * r["comm_exposed_share"], 100 * r["data_wait_share"]))
json.dump(rows, open(out, "w"), indent=1)
print("written", out)
PY

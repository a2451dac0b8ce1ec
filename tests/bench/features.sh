#!/usr/bin/env bash
# Feature-shard benchmark (docs/encoders.md, "Feature shards"): paper-mode training from pixels vs
# from the feature shards of `tijepa encode` (the frozen encoders skipped), samples/s on 1 rank ×
# 1 thread for each preset, with the contrastive term on (the configs' loss.nce_weight = 1,
# 4 negatives) and off (λ = 0, the authors' objective); the encode rate, and the disk size of a
# sample as PNG + caption and as features. Second logged window only (warm-up dropped).
# Prints a table and writes a JSON file. Not a test: figures only.
# usage: tests/bench/features.sh [BUILD_DIR] [OUT.json]   (PRESETS="tiny small base", STEPS=N)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
out="${2:-$build/bench/features.json}"
tijepa="$build/tijepa"
work="$build/bench/features"
mkdir -p "$work"
rows=()
for preset in ${PRESETS:-tiny small base}; do
    case $preset in
    tiny) px=32 steps=${STEPS:-30} ;;
    small) px=64 steps=${STEPS:-10} ;;
    base) px=96 steps=${STEPS:-6} ;;
    *) echo "unknown preset $preset" >&2; exit 2 ;;
    esac
    data="$work/synth-$px"
    [ -f "$data/vocab.txt" ] || "$tijepa" synth --out "$data" --train 512 --val 32 --image-size $px \
        --per-shard 128 >/dev/null
    cfg="$root/launch/configs/$preset.ini"
    common=(--set "data.train=$data/train-{000000..000003}.tar" --set "data.vocab=$data/vocab.txt"
        --set train.steps=$steps --set train.log_every=$((steps / 2)) --set train.threads=1
        --set train.ckpt_every=0 --set train.eval_every=0 --set run.seed=1)
    feat="$work/feat-$preset"
    rm -rf "$feat"
    start=$(date +%s.%N)
    "$tijepa" encode --config "$cfg" "${common[@]}" --threads 1 \
        --out "$feat/train-%06d.tar" >"$feat.log" 2>&1 || { cat "$feat.log"; exit 1; }
    encode_s=$(echo "$(date +%s.%N) - $start" | bc)
    for nce in 1 0; do
        for source in pixels features; do
            run="$work/$preset-nce$nce-$source"
            rm -rf "$run"
            extra=()
            [ $source = features ] && extra=(--set data.features=true
                --set "data.train=$feat/train-{000000..000003}.tar")
            "$tijepa" train --config "$cfg" "${common[@]}" --set run.dir="$run" \
                --set loss.nce_weight=$nce "${extra[@]}" >"$run.log" 2>&1 \
                || { cat "$run.log"; exit 1; }
        done
        rows+=("$preset $nce $encode_s $data $feat $work/$preset-nce$nce")
    done
done
/usr/bin/python3 - "$out" "${rows[@]}" <<'PY'
import glob, json, os, sys
out, rows = sys.argv[1], []
def last(path):
    return [json.loads(l) for l in open(path)][-1]
def per_sample(folder):  # bytes on disk per sample
    files = sorted(glob.glob(os.path.join(folder, "train-*.tar")))
    return sum(os.path.getsize(f) for f in files) / 512.0
for spec in sys.argv[2:]:
    preset, nce, encode_s, data, feat, run = spec.split(" ")
    px, ft = last(run + "-pixels/metrics.jsonl"), last(run + "-features/metrics.jsonl")
    rows.append(dict(preset=preset, nce_weight=float(nce),
                     pixels_samples_per_s=px["samples_per_s"],
                     features_samples_per_s=ft["samples_per_s"],
                     speedup=ft["samples_per_s"] / px["samples_per_s"],
                     encode_samples_per_s=512 / float(encode_s),
                     bytes_per_sample_pixels=per_sample(data),
                     bytes_per_sample_features=per_sample(feat)))
print("%-6s %4s %14s %16s %8s %13s %14s %16s" % (
    "preset", "λ", "pixels samp/s", "features samp/s", "speedup", "encode samp/s",
    "disk/sample px", "disk/sample feat"))
for r in rows:
    print("%-6s %4g %14.1f %16.1f %7.2fx %13.1f %13.1f kB %15.1f kB" % (
        r["preset"], r["nce_weight"], r["pixels_samples_per_s"], r["features_samples_per_s"],
        r["speedup"], r["encode_samples_per_s"], r["bytes_per_sample_pixels"] / 1e3,
        r["bytes_per_sample_features"] / 1e3))
json.dump(rows, open(out, "w"), indent=1)
print("written", out)
PY

#!/usr/bin/python3
"""Where the variance of frozen image-encoder features lies (README, "Negatives and what the
energy learns"): each token is layer-normed as the crosser sees it, then its variance over the
samples of a feature shard (`tijepa encode`) is split into
  position      the mean token at each patch position over all images (content-free),
  image-global  the per-image mean over patches after removing position (same for every patch),
  local         the rest: what differs from patch to patch within an image.
A caption can only change an energy through content (global + local); spatial captions need
local. Not a test: figures only.
usage: tests/bench/feature_share.py FEATURE_SHARD.tar --tokens P [--max N]"""
import argparse
import tarfile

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shard")
    ap.add_argument("--tokens", type=int, required=True, help="image tokens per sample (grid²)")
    ap.add_argument("--max", type=int, default=1000, help="samples to read at most")
    a = ap.parse_args()
    rows = []
    with tarfile.open(a.shard) as t:
        for m in t:
            if m.name.endswith(".img.f32"):
                rows.append(np.frombuffer(t.extractfile(m).read(), dtype="<f4"))
                if len(rows) == a.max:
                    break
    if not rows:
        raise SystemExit(f"{a.shard}: no .img.f32 members (is it a feature shard?)")
    x = np.stack(rows).astype(np.float64)
    if x.shape[1] % a.tokens:
        raise SystemExit(f"{a.shard}: {x.shape[1]} floats per sample is not a multiple of {a.tokens}")
    x = x.reshape(len(rows), a.tokens, -1)
    x = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)
    total = x.var(axis=(0, 1)).sum()  # over samples and tokens
    content = x - x.mean(0, keepdims=True)
    image_global = content.mean(1, keepdims=True)
    share = lambda v: (v ** 2).mean(axis=(0, 1)).sum() / total
    g, l = share(np.broadcast_to(image_global, content.shape)), share(content - image_global)
    print(f"{a.shard}: {len(rows)} samples, {a.tokens} tokens × {x.shape[2]}: "
          f"position {1 - g - l:.2f}, image-global {g:.2f}, local {l:.2f}")


if __name__ == "__main__":
    main()

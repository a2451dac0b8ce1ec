#!/usr/bin/python3
"""Write a synthetic exchange file (the format of tj_dump_case) with random weights, inputs and
masks, and with "C outputs" computed by the reference itself in float32 — a self-test of
check_model.py that must pass; --corrupt damages one output so that it must fail.

    /usr/bin/python3 tests/reference/make_synthetic_case.py OUT.h5 --mode scratch \
        --set nce_weight=0.5 --set txt_dim=64 [--corrupt grad]

Defaults are the tiny preset with batch 4 and 3 negatives; --set KEY=VALUE overrides any root
attribute (see tijepa_ref.INT_KEYS / FLOAT_KEYS).
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tijepa_ref  # noqa: E402

TINY = dict(image_size=32, patch=4, img_dim=96, img_depth=4, img_heads=4, txt_dim=96,
            txt_depth=2, txt_heads=4, txt_len=16, vocab=1024, cross_dim=96, cross_depth=2,
            cross_heads=4, pred_dim=48, pred_depth=2, pred_heads=1, batch=4, nce_weight=0.0,
            negatives=3, temperature=0.1, lr=1e-3, start_lr=2e-4, final_lr=1e-6,
            warmup_steps=2, weight_decay=0.04, final_weight_decay=0.4, ema_start=0.996,
            ema_end=1.0, total_steps=10, clip_grad=0.0, n_steps=5)
CORRUPTIONS = ("none", "grad", "missing-grad", "loss", "param", "ema", "frozen")


def random_weights(module, rng, init):
    """{name: float32 array}. init "random": LayerNorm weights near 1, other 1-D tensors small
    but nonzero, matrices ~N(0, 1/fan_in) so activations stay O(1). init "design": DESIGN.md's
    initialisation (unit norms, zero biases, crosser Kaiming-normal, others std 0.02), the
    harder case for the final-tensor check since zero biases give small tensors. Text
    embeddings are 0.02*N(0,1) in both (BERT / I-JEPA): their small variance makes the first
    LayerNorm's eps matter, so a wrong eps shows."""
    ln_weights = {name + ".weight" for name, m in module.named_modules()
                  if isinstance(m, torch.nn.LayerNorm)}
    out = {}
    for name, t in module.state_dict().items():
        shape = tuple(t.shape)
        x = rng.standard_normal(shape)
        if name in ln_weights:
            x = 1.0 + 0.1 * x if init == "random" else np.ones(shape)
        elif len(shape) == 1 and not name.endswith("mask_token"):
            x = 0.05 * x if init == "random" else np.zeros(shape)
        elif name.endswith(("tok_embed", "pos_embed", "mask_token")) or init == "design":
            x = x * (np.sqrt(2.0 / shape[1]) if name.startswith("ctx.") else 0.02)
        else:
            x = x / np.sqrt(np.prod(shape[1:]))
        out[name] = x.astype(np.float32)
    return out


def make_case(cfg, rng, init):
    model, ema = tijepa_ref.TIJEPA(cfg), tijepa_ref.EMA(cfg)
    params = random_weights(model, rng, init)
    # EMA = online + a small offset, so a target path that uses online weights is caught.
    ema_params = {n: (params[n] + 0.01 * np.abs(params[n]).max() *
                      rng.standard_normal(params[n].shape)).astype(np.float32)
                  for n in ema.state_dict()}
    B, L, S = cfg["batch"], cfg["txt_len"], cfg["image_size"]
    lengths = rng.integers(1, L + 1, size=B)
    lengths[0], lengths[-1] = L, 1  # one full caption and one of a single token
    inputs = {"images": rng.standard_normal((B, 3, S, S)).astype(np.float32),
              "tokens": rng.integers(0, cfg["vocab"], size=(B, L)).astype(np.int32),
              "valid": (np.arange(L)[None, :] < lengths[:, None]).astype(np.uint8)}
    P = (S // cfg["patch"]) ** 2
    steps = []
    for _ in range(cfg["n_steps"]):
        perm = rng.permutation(P)
        n_tgt = max(1, P // 4)
        step = {"target": np.sort(perm[:n_tgt]).astype(np.int32),
                "context": np.sort(perm[n_tgt:n_tgt + max(1, P // 2)]).astype(np.int32)}
        if tijepa_ref.nce_enabled(cfg):
            K = cfg["negatives"]
            step["negatives"] = np.array(
                [rng.choice([j for j in range(B) if j != i], size=K, replace=K > B - 1)
                 for i in range(B)], dtype=np.int32)
        steps.append(step)
    return {"config": cfg, "params": params, "ema": ema_params, "inputs": inputs, "steps": steps}


def corrupt(out, case, kind, name, rng):
    """Damage one output in place; returns a description."""
    def bump(tensors, default):
        n = name or default
        a = tensors[n]
        i = tuple(rng.integers(0, s) for s in a.shape)
        a[i] += 1e-3 * np.abs(a).max()
        return "%s element %s += 1e-3 * max" % (n, i)
    if kind == "grad":
        return "grad " + bump(out["grads"], "ctx.blocks.0.attn.kv.weight")
    if kind == "missing-grad":
        n = name or "pred.proj.bias"
        del out["grads"][n]
        return "grad %s removed" % n
    if kind == "loss":
        out["steps"][-1]["loss"] *= 1 + 1e-4
        return "last step's loss * (1 + 1e-4)"
    if kind == "param":
        return "final param " + bump(out["params"], "pred.mask_token")
    if kind == "ema":
        return "final ema " + bump(out["ema"], "ctx.img_proj.weight")
    if kind == "frozen":  # one ulp on a tensor paper mode must leave untouched
        n = name or "img.patch_embed.bias"
        assert case["config"]["mode"] == "paper", "--corrupt frozen needs --mode paper"
        a = case["params"][n].copy()
        a[0] = np.nextafter(a[0], np.float32(np.inf))
        out["params"][n] = a
        return "frozen %s[0] moved by one ulp" % n
    return "none"


def write_case(path, case, out):
    cfg = case["config"]
    with h5py.File(path, "w") as f:
        for k, v in cfg.items():  # ints int64, floats float64, strings fixed-length
            f.attrs[k] = np.bytes_(v) if isinstance(v, str) else (
                np.int64(v) if k in tijepa_ref.INT_KEYS else np.float64(v))
        for group, tensors in (("init/params", case["params"]), ("init/ema", case["ema"]),
                               ("grads", out["grads"]), ("final/params", out["params"]),
                               ("final/ema", out["ema"])):
            g = f.create_group(group)
            for n, a in tensors.items():
                g[n] = np.asarray(a, dtype=np.float32)
        for k, a in case["inputs"].items():
            f["inputs/" + k] = a
        for t, (step, res) in enumerate(zip(case["steps"], out["steps"])):
            g = f.create_group("steps/%d" % t)
            for k, a in step.items():
                g[k] = a
            for k in ("loss", "jepa", "nce"):
                g[k] = np.float64(res[k])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="HDF5 file to write")
    ap.add_argument("--mode", choices=("paper", "scratch"), default="paper")
    ap.add_argument("--negative-target", choices=("own", "positive"), default="own",
                    help="which caption a negative's target path sees")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value (e.g. nce_weight=0.5, txt_dim=64)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", choices=("random", "design"), default="random",
                    help="weight distribution (see random_weights)")
    ap.add_argument("--corrupt", choices=CORRUPTIONS, default="none")
    ap.add_argument("--corrupt-name", help="tensor to corrupt (default depends on --corrupt)")
    args = ap.parse_args()

    cfg = dict(TINY, mode=args.mode, negative_target=args.negative_target)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in cfg or isinstance(cfg[key], str):
            ap.error("unknown config key %r" % key)
        cfg[key] = int(value) if key in tijepa_ref.INT_KEYS else float(value)

    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    case = make_case(cfg, rng, args.init)
    out = tijepa_ref.run_reference(case, torch.float32)  # the stand-in for the C outputs
    what = corrupt(out, case, args.corrupt, args.corrupt_name, rng)
    write_case(args.out, case, out)
    print("wrote %s (mode %s, nce_weight %g, corruption: %s)" % (args.out, cfg["mode"],
                                                                 cfg["nce_weight"], what))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Compares two tijepa checkpoints group by group (run with /usr/bin/python3: h5py).

usage: compare_ckpt.py A.h5 B.h5 [--rtol R] [--groups params,ema,optim/m,optim/v]
--rtol 0 demands identical bits. Otherwise each tensor's max|a-b| / max|b| must be <= R.
Exits 1 on any difference beyond the tolerance, or when a tensor is missing on one side.
"""
import sys

import h5py
import numpy as np


def tensors(f, group):
    g = f[group]
    return {name: g[name][()] for name in g.keys() if isinstance(g[name], h5py.Dataset)}


def main():
    args = sys.argv[1:]
    rtol, groups = 0.0, ["params", "ema", "optim/m", "optim/v"]
    if "--rtol" in args:
        i = args.index("--rtol")
        rtol = float(args[i + 1])
        del args[i:i + 2]
    if "--groups" in args:
        i = args.index("--groups")
        groups = args[i + 1].split(",")
        del args[i:i + 2]
    a_path, b_path = args
    failed = 0
    with h5py.File(a_path, "r") as fa, h5py.File(b_path, "r") as fb:
        for group in groups:
            ta, tb = tensors(fa, group), tensors(fb, group)
            if set(ta) != set(tb):
                print(f"{group}: tensor names differ: {sorted(set(ta) ^ set(tb))[:5]}")
                failed += 1
                continue
            worst, worst_name = 0.0, ""
            for name in sorted(ta):
                a, b = ta[name], tb[name]
                if a.shape != b.shape:
                    print(f"{group}/{name}: shapes {a.shape} vs {b.shape}")
                    failed += 1
                    continue
                if rtol == 0:
                    if a.tobytes() != b.tobytes():
                        print(f"{group}/{name}: bits differ (max abs diff {np.abs(a - b).max():.3e})")
                        failed += 1
                    continue
                scale = max(float(np.abs(b).max()), 1e-12)
                err = float(np.abs(a.astype(np.float64) - b).max()) / scale
                if err > worst:
                    worst, worst_name = err, name
                if err > rtol:
                    print(f"{group}/{name}: max rel err {err:.3e} > {rtol:g}")
                    failed += 1
            mode = "identical bits" if rtol == 0 else f"worst rel err {worst:.3e} ({worst_name})"
            print(f"{group}: {len(ta)} tensors, {mode}")
    print("compare_ckpt:", "FAILED" if failed else "ok", f"({a_path} vs {b_path})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

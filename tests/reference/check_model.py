#!/usr/bin/python3
"""Compare the C model's dump (CASE.h5, written by tj_dump_case) against the float64 PyTorch
reference of tijepa_ref.py. Prints one row per checked quantity; exits 1 on any failure.

    /usr/bin/python3 tests/reference/check_model.py CASE.h5 [--failures-only]

Checks: loss / jepa / nce at every step (rel. err <= 1e-5); the step-0 gradient of every
trainable tensor (max|c - ref| / max|ref| <= 1e-4; the name set must be exactly the trainable
set, frozen tensors may only appear as all zeros); every parameter and EMA tensor after
n_steps (<= 1e-4 of max|ref| plus a per-element allowance for gradient rounding that Adam
amplifies, see noise_allowance; frozen parameters must equal their initial values exactly).
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tijepa_ref  # noqa: E402

LOSS_TOL = 1e-5
TENSOR_TOL = 1e-4
NOISE_SAFETY, NOISE_FLOOR = 4.0, 1e-6  # gradient noise level for the final-tensor allowance


def scalar_rel_err(c, ref):
    return abs(c - ref) / max(abs(ref), 1e-12)


def tensor_rel_err(c, ref):
    """max|c - ref| / max(max|ref|, 1e-12), or None when the shapes differ."""
    c = np.asarray(c, dtype=np.float64)
    if c.shape != ref.shape:
        return None
    if ref.size == 0:
        return 0.0
    return float(np.abs(c - ref).max() / max(np.abs(ref).max(), 1e-12))


class Report:
    def __init__(self, failures_only):
        self.failures_only = failures_only
        self.failed = []
        self.tensors = 0  # grad / param / ema rows
        self.worst = {}  # kind -> (err, name)
        self.raw_final = (0.0, "-")  # worst final-tensor error before the noise allowance
        self.header = False

    def row(self, kind, name, err, tol, shape=(), note=""):
        """err None = shape mismatch / missing; a float otherwise."""
        ok = err is not None and err <= tol
        self.tensors += kind in ("grad", "param", "ema")
        if err is not None and err >= self.worst.get(kind, (-1.0, ""))[0]:
            self.worst[kind] = (err, name)
        if not ok:
            self.failed.append("%s %s" % (kind, name))
        if ok and self.failures_only:
            return
        if not self.header:
            print("%-7s %-44s %-16s %11s %9s" % ("kind", "name", "shape", "rel.err", "tol"))
            self.header = True
        shown = "%11.3e" % err if err is not None else "%11s" % "-"
        print("%-7s %-44s %-16s %s %9.0e  %s%s" % (kind, name, "x".join(map(str, shape)) or "-",
                                                   shown, tol, "ok" if ok else "FAIL",
                                                   " (" + note + ")" if note else ""))

    def fail(self, kind, name, note):
        self.row(kind, name, None, 0.0, note=note)


def check_losses(rep, case, ref):
    c_steps = case["c"]["steps"]
    for t, r in enumerate(ref["steps"]):
        for key in ("loss", "jepa", "nce"):
            if key not in c_steps[t]:
                rep.fail("loss", "steps/%d/%s" % (t, key), "missing")
                continue
            rep.row("loss", "steps/%d/%s" % (t, key), scalar_rel_err(c_steps[t][key], r[key]),
                    LOSS_TOL, note="c %.9g ref %.9g" % (c_steps[t][key], r[key]))


def check_grads(rep, case, ref):
    c_grads = case["c"].get("grads", {})
    trainable = ref["grads"]
    for name in sorted(set(c_grads) - set(trainable)):
        if name in case["params"]:  # a frozen tensor: tolerated only as exact zeros
            if np.any(np.asarray(c_grads[name]) != 0):
                rep.fail("grad", name, "frozen tensor has a nonzero gradient")
        else:
            rep.fail("grad", name, "not a parameter")
    for name, g in trainable.items():
        if name not in c_grads:
            rep.fail("grad", name, "missing")
            continue
        err = tensor_rel_err(c_grads[name], g)
        rep.row("grad", name, err, TENSOR_TOL, g.shape,
                "" if err is not None else "shape %s" % (np.shape(c_grads[name]),))


def adam_drift_bound(cfg):
    """How far n_steps AdamW steps can move an element without weight decay, whatever its
    gradients: sum_t lr(t) * max|m_hat / sqrt(v_hat)|, the max from Cauchy-Schwarz
    (about 1.0 for the first ten steps)."""
    b1, b2 = tijepa_ref.ADAM_BETAS
    total = 0.0
    for t in range(cfg["n_steps"]):
        k = t + 1
        geo = sum((b1 * b1 / b2) ** j for j in range(k))
        total += tijepa_ref.lr_at(cfg, t) * (1 - b1) / (1 - b1 ** k) * math.sqrt(
            (1 - b2 ** k) / (1 - b2) * geo)
    return total


def noise_allowance(case, ref):
    """{name: per-element allowance} for the final tensors: the distance an element can drift
    because of gradient rounding alone (see tijepa_ref.run_reference, "sensitivity"), with the
    gradient noise level rho taken from the measured step-0 error of that tensor (x4, at
    least 1e-6, at most 4 * TENSOR_TOL), never more than two runs of Adam can differ at all."""
    cap = 2 * adam_drift_bound(case["config"])
    c_grads = case["c"].get("grads", {})
    out = {}
    for name, g in ref["grads"].items():
        measured = tensor_rel_err(c_grads[name], g) if name in c_grads else None
        # a gradient beyond TENSOR_TOL already fails; capping rho keeps the table honest then
        measured = min(measured if measured is not None else 0.0, TENSOR_TOL)
        rho = NOISE_SAFETY * max(measured, NOISE_FLOOR)
        out[name] = np.minimum(rho * ref["sensitivity"][name], cap)
    return out


def compare_final(rep, kind, name, c, r, allowance):
    """Passes when every element is within TENSOR_TOL * max|ref| + its noise allowance; the
    row shows the error beyond the allowance (relative to max|ref|) and the raw one."""
    c = np.asarray(c, dtype=np.float64)
    if c.shape != r.shape:
        return rep.fail(kind, name, "shape %s, expected %s" % (c.shape, r.shape))
    if r.size == 0:
        return rep.row(kind, name, 0.0, TENSOR_TOL, r.shape)
    scale = max(np.abs(r).max(), 1e-12)
    diff = np.abs(c - r)
    excess = np.maximum(diff - allowance, 0.0)
    noisy = int(np.count_nonzero((diff > TENSOR_TOL * scale) & (excess <= TENSOR_TOL * scale)))
    note = "raw %.1e, %d element(s) within the Adam noise allowance" % (
        diff.max() / scale, noisy) if noisy else ""
    rep.raw_final = max(rep.raw_final, (float(diff.max() / scale), name))
    rep.row(kind, name, float(excess.max() / scale), TENSOR_TOL, r.shape, note)


def check_final(rep, case, ref):
    allowance = noise_allowance(case, ref)
    for kind, group in (("param", "params"), ("ema", "ema")):
        c_final = case["c"].get(group, {})
        for name in sorted(set(c_final) - set(ref[group])):
            rep.fail(kind, name, "not expected in final/" + group)
        for name, r in ref[group].items():
            if name not in c_final:
                rep.fail(kind, name, "missing")
            elif kind == "param" and name not in allowance:  # frozen: unchanged, bit for bit
                same = np.array_equal(np.asarray(c_final[name]), case["params"][name])
                rep.row(kind, name, 0.0 if same else None, 0.0, r.shape,
                        "frozen, unchanged" if same else "frozen tensor changed")
            else:  # an EMA is a convex mix of past parameters: their final allowance covers it
                compare_final(rep, kind, name, c_final[name], r, allowance.get(name, 0.0))


def check_inputs(rep, case):
    """The exchange file's inputs must satisfy MODEL.md before they can be fed to the
    reference: patch lists sorted and in range, tokens in the vocabulary, first token valid,
    neg[i,k] another sample of the batch."""
    cfg, inputs = case["config"], case["inputs"]
    B, P = cfg["batch"], (cfg["image_size"] // cfg["patch"]) ** 2
    tokens, valid = inputs["tokens"], inputs["valid"]
    if tokens.shape != (B, cfg["txt_len"]) or tokens.min() < 0 or tokens.max() >= cfg["vocab"]:
        rep.fail("input", "inputs/tokens", "shape or ids out of range")
    if valid.shape != tokens.shape or not np.all(valid[:, 0] == 1):
        rep.fail("input", "inputs/valid", "shape, or a caption whose first token is padding")
    for t, step in enumerate(case["steps"]):
        for key in ("context", "target"):
            idx = step[key]
            if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= P \
                    or np.any(np.diff(idx) <= 0):
                rep.fail("input", "steps/%d/%s" % (t, key), "not sorted indices in [0,P)")
        neg = step.get("negatives")
        if neg is not None and (neg.shape != (B, cfg["negatives"]) or np.any(neg < 0)
                                or np.any(neg >= B) or np.any(neg == np.arange(B)[:, None])):
            rep.fail("input", "steps/%d/negatives" % t, "not in [0,B) minus {i}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case", help="exchange file written by the C dumper")
    ap.add_argument("--failures-only", action="store_true", help="print only failing rows")
    args = ap.parse_args()

    torch.set_num_threads(1)
    try:
        case = tijepa_ref.read_case(args.case)
    except (OSError, KeyError, ValueError) as e:
        print("check_model: %s: cannot read the case: %s" % (args.case, e), file=sys.stderr)
        return 1
    cfg = case["config"]
    print("case %s: mode %s, batch %d, nce_weight %g, negatives %d, %d steps" % (
        args.case, cfg["mode"], cfg["batch"], cfg["nce_weight"], cfg["negatives"],
        cfg["n_steps"]))
    rep = Report(args.failures_only)
    check_inputs(rep, case)
    if rep.failed:
        print("check_model: FAILED: invalid inputs in %s" % args.case)
        return 1
    try:
        ref = tijepa_ref.run_reference(case, torch.float64)
    except ValueError as e:  # weights do not match the model the config describes
        print("check_model: %s: %s" % (args.case, e), file=sys.stderr)
        return 1

    check_losses(rep, case, ref)
    check_grads(rep, case, ref)
    check_final(rep, case, ref)

    def worst(kinds):
        found = [rep.worst[k] for k in kinds if k in rep.worst]
        return max(found) if found else (float("nan"), "-")
    g, p, l = worst(["grad"]), worst(["param", "ema"]), worst(["loss"])
    print("reference check: %d tensors, worst grad rel err %.3e (%s), worst param rel err %.3e "
          "(%s; %.3e before the Adam noise allowance, %s), loss rel err %.3e" % (
              rep.tensors, g[0], g[1], p[0], p[1], rep.raw_final[0], rep.raw_final[1], l[0]))
    if rep.failed:
        print("check_model: FAILED %d check(s): %s" % (len(rep.failed), ", ".join(rep.failed[:8])
                                                         + (" ..." if len(rep.failed) > 8 else "")))
        return 1
    print("check_model: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

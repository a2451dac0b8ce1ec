#!/usr/bin/python3
"""Checks the C evaluation metrics (tests/metrics_cli) against an independent NumPy reference.

scikit-learn is not installed on the test machines, so its definitions are written out here:
  - retrieval: candidates sorted by energy ascending with the correct one placed AFTER every
    candidate of equal energy (pessimistic ties) and NaN energies sorted before everything (they
    count against the correct item; a NaN correct energy ranks last); rank = position + 1;
    recall@K = mean(rank <= K); median = numpy.median(ranks).
  - classification: sklearn's precision_recall_fscore_support with zero_division=0:
    P = TP/(TP+FP), R = TP/(TP+FN) (0 when the denominator is 0), F1 = 2PR/(P+R) (0 when P+R = 0);
    average="weighted" weighs each class by its support in the truth, "macro" is the plain mean.
usage: check_metrics.py METRICS_CLI WORKDIR
"""
import os
import subprocess
import sys

import numpy as np


def run(cli, mode, path):
    out = subprocess.run([cli, mode, path], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: line.split()[1:] for line in out.strip().splitlines()}


def ref_ranks(e):
    n = e.shape[0]

    def rank(values, correct):
        c = values[correct]
        if np.isnan(c):
            return n
        others = np.delete(values, correct)
        key = np.where(np.isnan(others), -np.inf, others)
        # sort: (energy, is_correct) lexicographically; the correct item goes after its ties
        allv = np.concatenate([key, [c]])
        flag = np.concatenate([np.zeros(n - 1), [1]])
        order = np.lexsort((flag, allv))
        return int(np.nonzero(order == n - 1)[0][0]) + 1

    t2i = [rank(e[:, j], j) for j in range(n)]
    i2t = [rank(e[i, :], i) for i in range(n)]
    return np.array(t2i), np.array(i2t)


def ref_scores(r):
    return [np.mean(r <= 1), np.mean(r <= 5), np.mean(r <= 10), float(np.median(r)), np.mean(r)]


def ref_classify(t, p, classes):
    f1 = []
    support = []
    for c in range(classes):
        tp = np.sum((t == c) & (p == c))
        fp = np.sum((t != c) & (p == c))
        fn = np.sum((t == c) & (p != c))
        prec = tp / (tp + fp) if tp + fp > 0 else 0.0
        rec = tp / (tp + fn) if tp + fn > 0 else 0.0
        f1.append(2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0)
        support.append(np.sum(t == c))
    f1 = np.array(f1)
    support = np.array(support)
    return np.mean(t == p), float(np.sum(f1 * support) / np.sum(support)), float(np.mean(f1)), f1


def close(a, b, tol=1e-9):
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


def main():
    cli, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(20260)
    failures = 0
    cases = 0
    for trial in range(40):
        n = int(rng.integers(1, 40))
        if trial % 3 == 0:
            e = rng.integers(0, 4, size=(n, n)).astype(np.float32)  # many ties
        else:
            e = rng.standard_normal((n, n)).astype(np.float32)
            e[np.arange(n), np.arange(n)] -= np.float32(trial % 5) * 0.5  # some signal
        if trial % 7 == 0 and n > 2:
            e[rng.integers(0, n), rng.integers(0, n)] = np.nan
        path = os.path.join(work, "retrieval-%d.txt" % trial)
        with open(path, "w") as f:
            f.write("%d\n" % n)
            f.write(" ".join(repr(float(v)) for v in e.ravel()) + "\n")
        got = run(cli, "retrieval", path)
        rt, ri = ref_ranks(e)
        cases += 1
        if [int(v) for v in got["t2i_ranks"]] != list(rt) or [int(v) for v in got["i2t_ranks"]] != list(ri):
            print("retrieval case %d (n=%d): ranks differ\n C  %s %s\n py %s %s" % (
                trial, n, got["t2i_ranks"], got["i2t_ranks"], list(rt), list(ri)))
            failures += 1
            continue
        for name, r in (("t2i", rt), ("i2t", ri)):
            want = ref_scores(r)
            if not all(close(a, b) for a, b in zip(got[name], want)):
                print("retrieval case %d: %s scores differ: C %s, python %s" % (trial, name, got[name], want))
                failures += 1
    for trial in range(40):
        n = int(rng.integers(1, 300))
        classes = int(rng.integers(2, 9))
        t = rng.integers(0, classes, size=n)
        if trial % 2:
            p = np.where(rng.random(n) < 0.6, t, rng.integers(0, classes, size=n))
        else:
            p = rng.integers(0, classes - 1, size=n)  # the last class never predicted
        path = os.path.join(work, "classify-%d.txt" % trial)
        with open(path, "w") as f:
            f.write("%d %d\n%s\n%s\n" % (n, classes, " ".join(map(str, t)), " ".join(map(str, p))))
        got = run(cli, "classify", path)
        acc, wf1, mf1, f1 = ref_classify(t, p, classes)
        cases += 1
        ok = close(got["accuracy"][0], acc) and close(got["weighted_f1"][0], wf1) and \
            close(got["macro_f1"][0], mf1) and all(close(a, b) for a, b in zip(got["f1"], f1))
        if not ok:
            print("classify case %d: C %s, python acc %s wf1 %s mf1 %s f1 %s" % (trial, got, acc, wf1, mf1, list(f1)))
            failures += 1
    print("%d cases, %d failures" % (cases, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""tijepa vs PyTorch on the same preset, same machine, same run (issue 9). Not a test.

For each case (preset, mode, λ) and thread count it runs, interleaved and `--repeats` times:
  bench_step  (tijepa, one process, writes the step masks it used), then
  this script's `torch` mode on the very same masks (the reference network of
  tests/reference/tijepa_ref.py in float32, through tests/bench/torch_model.py),
and bench_sgemm for the OpenBLAS sgemm rate of the preset's linear shapes (the MFU denominator).
Each measurement is its own process, so peak RSS (ru_maxrss) is per configuration.
It prints a table and writes JSON. Run with /usr/bin/python3.

    bench_vs_torch.py --build BUILD_DIR [--out perf.json] [--cases tiny,small,base,...]
                      [--threads 1,2] [--repeats N] [--scaling scaling.json]
    bench_vs_torch.py torch --preset P --mode M --threads T --masks FILE --warmup W [--nce λ]
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name: (preset, mode, nce_weight, steps, warmup, max repeats) — sized for a shared 2-core machine.
# Three warm-up steps: a step whose masks are larger than any before touches fresh activation
# memory (the kernel clears each page: base with one warm-up step paid 61 000 page faults per
# measured step, 10% of its time; with three, 2 400), a cost a training run pays once.
CASES = {
    "tiny": ("tiny", "paper", 1.0, 8, 3, 9),
    "tiny-l0": ("tiny", "paper", 0.0, 8, 3, 9),
    "tiny-scratch": ("tiny", "scratch", 1.0, 6, 3, 9),
    "small": ("small", "paper", 1.0, 3, 3, 9),
    "small-l0": ("small", "paper", 0.0, 3, 3, 9),
    "base": ("base", "paper", 1.0, 2, 3, 3),
    "base-l0": ("base", "paper", 0.0, 2, 3, 3),
}
DEFAULT_CASES = "tiny,tiny-l0,tiny-scratch,small,small-l0,base,base-l0"
NEGATIVES, TEMPERATURE = 4, 0.05  # the first wave's loss settings (the library defaults are now K 8, τ 0.01)


def result_line(text, what):
    for line in text.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("%s printed no RESULT line:\n%s" % (what, text))


def thread_env(threads, wait_policy=None):
    """The same thread settings for tijepa and PyTorch (both use libgomp and OpenBLAS)."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(threads)
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    return env


# With several threads each framework is measured with both OpenMP wait policies and keeps its
# best: spinning (active) wins on an idle machine, sleeping (passive) when other jobs share the
# cores and a spinning thread burns the time slice its descheduled partner needs.
WAIT_POLICIES = ("active", "passive")


def best_of(runs):
    return max(runs, key=lambda r: r["samples_per_s"])


# ----------------------------------------------------------------------------------------------
# torch mode: one PyTorch measurement in this process

def run_torch(args):
    import torch
    import torch_model
    import ctypes
    torch.set_num_threads(args.threads)
    try:  # the OpenBLAS that torch's BLAS calls go to (Debian links libblas.so.3 → OpenBLAS)
        blas = ctypes.CDLL("libopenblas.so.0")
        blas.openblas_set_num_threads(args.threads)
        blas.openblas_get_corename.restype = ctypes.c_char_p
        corename = blas.openblas_get_corename().decode()
    except OSError:
        corename = "unknown"
    masks = [json.loads(l) for l in open(args.masks)]
    cfg = torch_model.make_config(args.preset, args.mode, args.nce, NEGATIVES, TEMPERATURE,
                                  total_steps=len(masks))
    trainer = torch_model.Trainer(cfg)
    images, ids, valid = torch_model.random_batch(cfg)
    K = cfg["negatives"] if ref_nce(cfg) else 0
    t_start = c_start = None
    for t, mk in enumerate(masks):
        if t == args.warmup:
            t_start, c_start = time.monotonic(), time.process_time()
        ctx_idx = torch.tensor(mk["context"], dtype=torch.long)
        tgt_idx = torch.tensor(mk["target"], dtype=torch.long)
        trainer.step(t, images, ids, valid, ctx_idx, tgt_idx,
                     torch_model.random_negatives(cfg["batch"], K, t))
    wall, cpu = time.monotonic() - t_start, time.process_time() - c_start
    steps = len(masks) - args.warmup
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("RESULT " + json.dumps(dict(
        preset=args.preset, mode=args.mode, nce_weight=args.nce, threads=args.threads,
        steps=steps, warmup=args.warmup, wall_s=wall, cpu_s=cpu,
        samples_per_s=steps * cfg["batch"] / wall, peak_rss_mib=rss, torch=torch.__version__,
        torch_threads=torch.get_num_threads(), blas=corename)))


def ref_nce(cfg):
    return cfg["nce_weight"] > 0 and cfg["negatives"] > 0


# ----------------------------------------------------------------------------------------------
# the whole comparison

def run(cmd, env=None):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    return result_line(p.stdout, cmd[0])


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def span(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def measure(args):
    bench = os.path.join(args.build, "bench")
    work = os.path.join(args.build, "bench", "perf")
    os.makedirs(work, exist_ok=True)
    threads = [int(t) for t in args.threads.split(",")]
    rows, sgemm, loads = [], {}, []
    for name in args.cases.split(","):
        preset, mode, nce, steps, warmup, max_repeats = CASES[name]
        steps = args.steps or steps
        repeats = min(args.repeats, max_repeats)
        for th in threads:
            key = (preset, th)
            if key not in sgemm:
                sgemm[key] = [run([os.path.join(bench, "bench_sgemm"), "--preset", preset,
                                   "--threads", str(th)], thread_env(th, "active"))]
            tj, pt = [], []
            for r in range(repeats):
                masks = os.path.join(work, "%s-t%d-r%d.masks.jsonl" % (name, th, r))
                policies = WAIT_POLICIES if th > 1 else (None,)
                tj_runs, pt_runs = [], []
                for policy in policies:
                    loads.append(loadavg())
                    tj_runs.append(run([os.path.join(bench, "bench_step"), "--preset", preset,
                                        "--mode", mode, "--threads", str(th), "--steps",
                                        str(steps), "--warmup", str(warmup), "--nce", str(nce),
                                        "--negatives", str(NEGATIVES), "--masks-out", masks],
                                       thread_env(th, policy)))
                    tj_runs[-1]["wait_policy"] = policy
                    loads.append(loadavg())
                    pt_runs.append(run([sys.executable, os.path.abspath(__file__), "torch",
                                        "--preset", preset, "--mode", mode, "--threads", str(th),
                                        "--masks", masks, "--warmup", str(warmup), "--nce",
                                        str(nce)], thread_env(th, policy)))
                    pt_runs[-1]["wait_policy"] = policy
                tj.append(best_of(tj_runs))
                pt.append(best_of(pt_runs))
                print("  %-13s %dt rep %d: tijepa %.2f samples/s, torch %.2f samples/s" % (
                    name, th, r, tj[-1]["samples_per_s"], pt[-1]["samples_per_s"]),
                    file=sys.stderr, flush=True)
            sg = statistics.median(s["sgemm_gflops"] for s in sgemm[key])
            flops = tj[0]["flops_per_step"]
            B = tj[0]["batch"]
            row = dict(case=name, preset=preset, mode=mode, nce_weight=nce,
                       negatives=NEGATIVES if nce > 0 else 0, threads=th,
                       steps=steps, flops_per_step=flops, sgemm_gflops=sg,
                       tijepa_samples_per_s=span([x["samples_per_s"] for x in tj]),
                       torch_samples_per_s=span([x["samples_per_s"] for x in pt]),
                       # samples per CPU-second: insensitive to other processes' load
                       tijepa_samples_per_cpu_s=span([x["steps"] * B / x["cpu_s"] for x in tj]),
                       torch_samples_per_cpu_s=span([x["steps"] * B / x["cpu_s"] for x in pt]),
                       ratio=span([a["samples_per_s"] / b["samples_per_s"]
                                   for a, b in zip(tj, pt)]),
                       tijepa_wait_policy=[x["wait_policy"] for x in tj],
                       torch_wait_policy=[x["wait_policy"] for x in pt],
                       tijepa_rss_mib=max(x["peak_rss_mib"] for x in tj),
                       torch_rss_mib=max(x["peak_rss_mib"] for x in pt),
                       tijepa_gflops=span([flops * x["samples_per_s"] / B / 1e9 for x in tj]),
                       torch_gflops=span([flops * x["samples_per_s"] / B / 1e9 for x in pt]))
            rows.append(row)
    sgemm = {"%s-t%d" % k: v for k, v in sgemm.items()}
    add_utilisation(rows, sgemm)
    return rows, sgemm, loads


def add_utilisation(rows, sgemm):
    """MFU = achieved FLOP/s ÷ (threads × the 1-thread sgemm rate of the preset's shapes): the
    ideal of every core running OpenBLAS's own kernel. (The 2-thread sgemm rate is recorded too,
    but on a shared machine it is as loaded as the step itself.)"""
    for row in rows:
        one = statistics.median(s["sgemm_gflops"] for s in sgemm["%s-t1" % row["preset"]])
        peak = row["threads"] * one
        row["sgemm_gflops_1t"] = one
        row["rss_ratio"] = row["tijepa_rss_mib"] / row["torch_rss_mib"]
        row["mfu"] = row["tijepa_gflops"]["median"] / peak
        row["torch_mfu"] = row["torch_gflops"]["median"] / peak


def fmt_span(s, digits=1):
    f = "%%.%df" % digits
    if s["n"] == 1 or s["min"] == s["max"]:
        return f % s["median"]
    return (f + " (" + f + "–" + f + ")") % (s["median"], s["min"], s["max"])


def print_table(rows, scaling):
    head = ("case", "thr", "GFLOP/step", "tijepa samples/s", "torch samples/s", "ratio",
            "tj RSS MiB", "pt RSS MiB", "RSS ratio", "sgemm 1t", "MFU", "torch MFU")
    print("%-13s %3s %10s %24s %24s %20s %10s %10s %9s %8s %5s %9s" % head)
    for r in rows:
        print("%-13s %3d %10.1f %24s %24s %20s %10.0f %10.0f %9.2f %8.1f %4.0f%% %8.0f%%" % (
            r["case"], r["threads"], r["flops_per_step"] / 1e9,
            fmt_span(r["tijepa_samples_per_s"], 2), fmt_span(r["torch_samples_per_s"], 2),
            fmt_span(r["ratio"], 2), r["tijepa_rss_mib"], r["torch_rss_mib"], r["rss_ratio"],
            r["sgemm_gflops_1t"], 100 * r["mfu"], 100 * r["torch_mfu"]))
    print("best thread setting of each (the issue's ratio: tijepa ÷ best PyTorch):")
    for b in best_vs_best(rows):
        print("%-13s tijepa %9.2f (%d threads)  torch %9.2f (%d threads)  ratio %.2f" % (
            b["case"], b["tijepa_samples_per_s"], b["tijepa_threads"], b["torch_samples_per_s"],
            b["torch_threads"], b["ratio"]))
    print("(samples per CPU-second, insensitive to the machine's other load:)")
    for r in rows:
        print("%-13s %3d tijepa %8.2f  torch %8.2f  ratio %.2f" % (
            r["case"], r["threads"], r["tijepa_samples_per_cpu_s"]["median"],
            r["torch_samples_per_cpu_s"]["median"],
            r["tijepa_samples_per_cpu_s"]["median"] / r["torch_samples_per_cpu_s"]["median"]))
    if scaling:
        print("scaling (tijepa train, tests/bench/scaling.sh):")
        for s in scaling:
            print("  %-6s %d rank(s) × %d thread(s): %.1f samples/s, %.2fx, exposed comm %.1f%%, "
                  "data wait %.1f%%" % (s["preset"], s["ranks"], s["threads"], s["samples_per_s"],
                                        s["speedup"], 100 * s["comm_exposed_share"],
                                        100 * s["data_wait_share"]))


def best_vs_best(rows):
    """Per case: each framework at its best thread count (median samples/s)."""
    cases = {}
    for r in rows:
        cases.setdefault(r["case"], []).append(r)
    out = []
    for case, rs in cases.items():
        tj = max(rs, key=lambda r: r["tijepa_samples_per_s"]["median"])
        pt = max(rs, key=lambda r: r["torch_samples_per_s"]["median"])
        a, b = tj["tijepa_samples_per_s"]["median"], pt["torch_samples_per_s"]["median"]
        out.append(dict(case=case, tijepa_samples_per_s=a, tijepa_threads=tj["threads"],
                        torch_samples_per_s=b, torch_threads=pt["threads"], ratio=a / b))
    return out


def print_markdown(rows):
    print("| case | threads | GFLOP/step | tijepa samples/s | PyTorch samples/s | ratio | "
          "tijepa RSS MiB | PyTorch RSS MiB | RSS ratio | sgemm GF/s (1 thread) | MFU tijepa | "
          "MFU PyTorch |")
    print("|---" * 12 + "|")
    for r in rows:
        name = r["preset"] + (" scratch" if r["mode"] == "scratch" else "") + \
            (" λ=0" if r["nce_weight"] == 0 else "")
        print("| %s | %d | %.1f | %s | %s | %s | %.0f | %.0f | %.2f | %.1f | %.0f%% | %.0f%% |" % (
            name, r["threads"], r["flops_per_step"] / 1e9, fmt_span(r["tijepa_samples_per_s"], 2),
            fmt_span(r["torch_samples_per_s"], 2), fmt_span(r["ratio"], 2), r["tijepa_rss_mib"],
            r["torch_rss_mib"], r["rss_ratio"], r["sgemm_gflops_1t"], 100 * r["mfu"],
            100 * r["torch_mfu"]))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "torch":
        p = argparse.ArgumentParser(prog="bench_vs_torch.py torch")
        p.add_argument("torch")
        p.add_argument("--preset", required=True)
        p.add_argument("--mode", default="paper")
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--masks", required=True)
        p.add_argument("--warmup", type=int, default=1)
        p.add_argument("--nce", type=float, default=1.0)
        args = p.parse_args()
        sys.path.insert(0, HERE)
        return run_torch(args)
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True, help="build directory holding bench/")
    p.add_argument("--out", default=None)
    p.add_argument("--cases", default=DEFAULT_CASES)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=0, help="override the measured steps per case")
    p.add_argument("--scaling", default=None, help="scaling.sh JSON to include")
    p.add_argument("--from-json", default=None, help="print the table of an earlier run's JSON")
    p.add_argument("--markdown", action="store_true", help="with --from-json: a Markdown table")
    args = p.parse_args()
    if args.from_json:
        report = json.load(open(args.from_json))
        add_utilisation(report["rows"], report["sgemm"])
        if args.markdown:
            return print_markdown(report["rows"])
        print("run of %s on %s (%s, %d cores), load average %.1f–%.1f" % (
            report["date"], report["host"], report["machine"]["cpu"],
            report["machine"]["cores"], report["load_average"]["min"],
            report["load_average"]["max"]))
        print_table(report["rows"], report.get("scaling"))
        return
    for c in args.cases.split(","):
        if c not in CASES:
            sys.exit("bench_vs_torch.py: unknown case %s (known: %s)" % (c, ", ".join(CASES)))
    t0 = time.time()
    rows, sgemm, loads = measure(args)
    scaling = json.load(open(args.scaling)) if args.scaling else None
    print_table(rows, scaling)
    import torch
    report = dict(
        date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), host=platform.node(),
        machine=dict(cpu=cpu_model(), cores=os.cpu_count(), torch=torch.__version__,
                     python=platform.python_version()),
        load_average=dict(min=min(loads), max=max(loads)), seconds=time.time() - t0,
        negatives=NEGATIVES, temperature=TEMPERATURE, repeats=args.repeats,
        sgemm=sgemm, rows=rows, best=best_vs_best(rows), scaling=scaling)
    out = args.out or os.path.join(args.build, "bench", "perf.json")
    json.dump(report, open(out, "w"), indent=1)
    print("load average during the run: %.1f–%.1f on %d cores; written %s" % (
        min(loads), max(loads), os.cpu_count(), out))


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()

"""The data commands end to end through the tijepa binary: synth → data stats (text and JSON
reports), shard from a folder, and the exit codes of bad usage (2) and bad data (1).
Usage: cli_data_commands.py TIJEPA_BIN WORK_DIR"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wds_common import check, fresh_dir  # noqa: E402


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def main():
    binary, work = sys.argv[1], fresh_dir(sys.argv[2])
    syn = os.path.join(work, "syn")
    r = run(binary, "synth", "--out", syn, "--train", "60", "--val", "8", "--per-shard", "25")
    check(r.returncode == 0, "synth failed: " + r.stderr)
    check(sorted(os.listdir(syn)) == ["train-000000.tar", "train-000001.tar", "train-000002.tar",
                                      "val-000000.tar", "vocab.txt"], "synth files: %s" % os.listdir(syn))
    report = os.path.join(work, "stats.json")
    r = run(binary, "data", "stats", "--data", os.path.join(syn, "train-{000000..000002}.tar"),
            "--vocab", os.path.join(syn, "vocab.txt"), "--json", report)
    check(r.returncode == 0, "data stats failed: " + r.stderr)
    for needle in ("samples read        60", "usable              60", "[UNK] share         0.00%",
                   "labels", "duplicate captions", "duplicate images"):
        check(needle in r.stdout, "stats report lacks %r:\n%s" % (needle, r.stdout))
    with open(report) as f:
        st = json.load(f)
    check(st["samples_usable"] == 60 and st["shards"] == 3, "stats json counts")
    check(sum(st["labels"].values()) == 60 and st["unk_tokens"] == 0, "stats json labels/unk")
    check(st["caption_length"]["unit"] == "tokens", "lengths in tokens with --vocab")

    # a missing shard of a pattern: exit 1 with the shard's name
    r = run(binary, "data", "stats", "--data", os.path.join(syn, "train-{000000..000003}.tar"))
    check(r.returncode == 1 and "train-000003.tar" in r.stderr, "missing shard: %d %s" % (r.returncode, r.stderr))
    # bad usage: exit 2
    for args in (["synth"], ["synth", "--out", syn, "--train", "many"],
                 ["synth", "--out", syn, "--noise", "200"], ["synth", "--out", syn, "--noise"],
                 ["shard", "--from", syn],
                 ["data", "frobnicate"], ["data", "stats"], ["shard", "--from", syn, "--out", "x.tar"]):
        r = run(binary, *args)
        check(r.returncode == 2, "%s: exit %d, want 2" % (" ".join(args), r.returncode))
    # shard from a folder of captioned images (taken from the synth shards via tar)
    src = fresh_dir(os.path.join(work, "captioned"))
    subprocess.run(["tar", "xf", os.path.join(syn, "val-000000.tar"), "-C", src], check=True)
    for name in os.listdir(src):
        if name.endswith(".cls") or name.endswith(".json"):
            os.remove(os.path.join(src, name))
    r = run(binary, "shard", "--from", src, "--out", os.path.join(work, "mine-%03d.tar.gz"), "--per-shard", "5")
    check(r.returncode == 0 and "8 samples in 2 shards" in r.stdout, "shard: %s %s" % (r.stdout, r.stderr))
    r = run(binary, "data", "stats", "--data", os.path.join(work, "mine-{000..001}.tar.gz"))
    check(r.returncode == 0 and "usable              8" in r.stdout, "stats of imported shards:\n" + r.stdout)
    print("tijepa synth / shard / data stats: reports and exit codes as expected")


if __name__ == "__main__":
    main()

"""Shards written by `tijepa synth` and `tijepa shard` are read by PyPI webdataset with identical
keys and contents.
Usage: wds_read_tijepa.py TIJEPA_BIN WORK_DIR"""
import glob
import json
import os
import subprocess
import sys

import webdataset as wds

from wds_common import check, fnv1a64, fresh_dir, pixels, png_decode, png_encode, tijepa_dump


def read_wds(paths):
    """Raw samples (bytes per extension) in order, as webdataset groups them."""
    ds = wds.WebDataset(paths, shardshuffle=False, empty_check=False)
    return list(ds)


def check_synth(binary, work):
    out = os.path.join(work, "synth")
    subprocess.run([binary, "synth", "--out", out, "--train", "40", "--val", "10", "--per-shard",
                    "16", "--image-size", "24", "--seed", "3"], check=True, stdout=subprocess.DEVNULL)
    for split, n, n_shards in (("train", 40, 3), ("val", 10, 1)):
        paths = sorted(glob.glob(os.path.join(out, split + "-*.tar")))
        check(len(paths) == n_shards, "%s: %d shards" % (split, len(paths)))
        mine = tijepa_dump(binary, "::".join(paths), os.path.join(work, split + ".jsonl"))
        theirs = read_wds(paths)
        check(len(mine) == n and len(theirs) == n, "%s: %d vs %d samples" % (split, len(mine), len(theirs)))
        for m, t in zip(mine, theirs):
            key = t["__key__"]
            check(m["key"] == key == "%s-%07d" % (split, int(key.split("-")[1])), "key %s vs %s" % (m["key"], key))
            check(sorted(k for k in t if not k.startswith("__")) == ["cls", "json", "png", "txt"], "members of " + key)
            check(t["txt"].decode("utf-8") == m["caption"], key + ": caption")
            check(int(t["cls"]) == m["label"], key + ": label")
            check(json.loads(t["json"]) == json.loads(m["json"]), key + ": json")
            meta = json.loads(t["json"])
            check(meta["label"] == m["label"], key + ": label in json")
            w, h, rgb = png_decode(t["png"])
            check((w, h) == (24, 24) == (m["image"]["width"], m["image"]["height"]), key + ": size")
            check(fnv1a64(rgb) == m["image"]["rgb_fnv1a64"], key + ": pixels")
    print("tijepa synth -> webdataset: 50 samples identical (keys, captions, labels, json, pixels)")


def check_shard(binary, work):
    src = fresh_dir(os.path.join(work, "tsv"))
    rows = []
    for i in range(7):
        w, h = 4 + i, 3 + i % 2
        data = png_encode(pixels(w, h, 100 + i), w, h)
        name = "img%d.png" % i
        with open(os.path.join(src, name), "wb") as f:
            f.write(data)
        rows.append((name, "caption %d with ünïcode" % i, i % 3, data))
    with open(os.path.join(src, "captions.tsv"), "w", encoding="utf-8") as f:
        for name, caption, label, _ in rows:
            f.write("%s\t%s\t%d\n" % (name, caption, label))
    out = os.path.join(work, "imported")
    os.makedirs(out, exist_ok=True)
    subprocess.run([binary, "shard", "--from", os.path.join(src, "captions.tsv"), "--out",
                    os.path.join(out, "s-%06d.tar"), "--per-shard", "3"], check=True, stdout=subprocess.DEVNULL)
    paths = sorted(glob.glob(os.path.join(out, "s-*.tar")))
    check(len(paths) == 3, "tijepa shard wrote %d shards" % len(paths))
    theirs = read_wds(paths)
    mine = tijepa_dump(binary, "::".join(paths), os.path.join(work, "imported.jsonl"))
    check(len(theirs) == len(rows) == len(mine), "imported sample count")
    for line, (t, m, (name, caption, label, data)) in enumerate(zip(theirs, mine, rows), start=1):
        check(t["__key__"] == m["key"] == "%08d" % line, "key " + t["__key__"])
        check(t["png"] == data, t["__key__"] + ": image bytes differ from the source file")
        check(t["txt"].decode("utf-8") == caption == m["caption"], t["__key__"] + ": caption")
        check(int(t["cls"]) == label == m["label"], t["__key__"] + ": label")
        check(json.loads(t["json"])["source"] == name, t["__key__"] + ": json source")
    print("tijepa shard -> webdataset: %d samples identical (keys, image bytes, captions, labels)" % len(rows))


def main():
    binary, work = sys.argv[1], fresh_dir(sys.argv[2])
    check_synth(binary, work)
    check_shard(binary, work)


if __name__ == "__main__":
    main()

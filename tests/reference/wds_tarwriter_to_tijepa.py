"""Shards written by PyPI webdataset's TarWriter (plain and gzip) are read by tijepa with
identical keys, captions, labels, metadata and pixels.
Usage: wds_tarwriter_to_tijepa.py TIJEPA_BIN WORK_DIR"""
import json
import os
import sys

import webdataset as wds

from wds_common import check, fnv1a64, fresh_dir, pixels, png_encode, tijepa_dump


def main():
    binary, work = sys.argv[1], fresh_dir(sys.argv[2])
    captions = ["a red circle", "zwei Äpfel über dem Tisch", "日本語のキャプション", "emoji 🐱 ok",
                "  spaces around  ", "line one\nline two"]
    expected = []
    for shard, name in enumerate(["wds-000000.tar", "wds-000001.tar.gz"]):
        with wds.TarWriter(os.path.join(work, name)) as sink:
            for i in range(12):
                n = shard * 12 + i
                w, h = 3 + n % 7, 2 + n % 5
                rgb = pixels(w, h, n)
                key = "sub/dir/s%04d" % n if n % 5 == 4 else "s%04d" % n
                sample = {"__key__": key, "png": png_encode(rgb, w, h),
                          "txt": captions[n % len(captions)], "json": {"index": n, "tag": "wds"}}
                if n % 3:
                    sample["cls"] = n % 4
                sink.write(sample)
                expected.append((key, sample["txt"], n % 4 if n % 3 else None,
                                 json.dumps(sample["json"]), w, h, fnv1a64(rgb)))
    got = tijepa_dump(binary, work, os.path.join(work, "dump.jsonl"))
    check(len(got) == len(expected), "tijepa read %d samples, webdataset wrote %d" % (len(got), len(expected)))
    for g, (key, caption, label, meta, w, h, digest) in zip(got, expected):
        check(g["problem"] == "ok", "%s: %s" % (key, g["problem"]))
        check(g["key"] == key, "key %s != %s" % (g["key"], key))
        check(g["caption"] == caption, "%s: caption %r != %r" % (key, g["caption"], caption))
        check(g.get("label") == label, "%s: label %r != %r" % (key, g.get("label"), label))
        check(json.loads(g["json"]) == json.loads(meta), "%s: json differs" % key)
        im = g["image"]
        check((im["width"], im["height"]) == (w, h), "%s: size differs" % key)
        check(im["rgb_fnv1a64"] == digest, "%s: pixels differ" % key)
    print("webdataset TarWriter -> tijepa: %d samples identical (keys, captions, labels, json, pixels)" % len(got))


if __name__ == "__main__":
    main()

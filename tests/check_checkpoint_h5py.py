"""A checkpoint written by tijepa, read with h5py (and h5dump): every tensor is found by its
model name under its group with the right shape, dtype, Fletcher-32 filter and values.
Usage: /usr/bin/python3 check_checkpoint_h5py.py CKPT_FIXTURE WORKDIR"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np


def value(k, n):
    i = np.arange(n, dtype=np.int64)
    return (((i * 37 + k * 11) % 101) - 50).astype(np.float32) / np.float32(16)


def text(attr):
    return attr.decode() if isinstance(attr, (bytes, np.bytes_)) else str(attr)


def main():
    fixture, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    listing = subprocess.run([fixture, "write-ckpt", work], check=True, capture_output=True,
                             text=True).stdout
    path = os.path.join(work, "step-00000042.h5")
    assert open(os.path.join(work, "latest")).read() == "step-00000042.h5\n"
    expected = {}
    for line in listing.splitlines():
        _, group, name, seed, dims = line.split()
        expected[(group, name)] = (int(seed), tuple(int(d) for d in dims.split(",")))
    assert len(expected) == 20, listing

    with h5py.File(path, "r") as f:
        assert text(f.attrs["format"]) == "tijepa-checkpoint"
        assert int(f.attrs["format_version"]) == 1
        assert int(f.attrs["step"]) == 42
        assert int(f.attrs["world_size"]) == 2
        assert text(f.attrs["config"]) == "[model]\npreset = tiny\n"
        assert text(f.attrs["program_version"])
        for (group, name), (seed, shape) in expected.items():
            d = f[group][name]  # the model name, dots and all, under its group
            assert d.shape == shape, (group, name, d.shape, shape)
            assert d.dtype == np.float32, (group, name, d.dtype)
            assert d.fletcher32, (group, name)
            want = value(seed, int(np.prod(shape))).reshape(shape)
            assert np.array_equal(d[()], want), (group, name)
        found = set()
        f.visititems(lambda n, o: found.add(n) if isinstance(o, h5py.Dataset) else None)
        want_names = {f"{g}/{n}" for g, n in expected} | {"state/rng"}
        assert found == want_names, sorted(found ^ want_names)
        rng = f["state"]["rng"][()]
        assert rng.shape == (2, 4) and rng.dtype == np.int64 and rng[1, 3] == 1 << 62
    print(f"h5py: {len(expected)} tensors found by name with the right shapes and values")

    h5dump = shutil.which("h5dump")
    if h5dump:
        out = subprocess.run([h5dump, "-d", "/params/ctx.blocks.0.attn.q.weight", path],
                             check=True, capture_output=True, text=True).stdout
        assert "DATASPACE  SIMPLE { ( 6, 5 ) / ( 6, 5 ) }" in out, out
        assert "H5T_IEEE_F32LE" in out, out
        print("h5dump: reads /params/ctx.blocks.0.attn.q.weight")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()

"""safetensors files written by tijepa load in the PyPI `safetensors` package, and files that
package writes (F32, F16, and BF16 through torch) load in tijepa.
Usage: PYENV_PYTHON check_safetensors_pypi.py CKPT_FIXTURE WORKDIR"""
import os
import shutil
import subprocess
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file


def value(k, n):
    i = np.arange(n, dtype=np.int64)
    return (((i * 37 + k * 11) % 101) - 50).astype(np.float32) / np.float32(16)


def listed(output):
    tensors = {}
    for line in output.splitlines():
        _, group, name, seed, dims = line.split()
        tensors[(group, name)] = (int(seed), tuple(int(d) for d in dims.split(",")))
    return tensors


def check_loaded(path, expected):
    loaded = load_file(path)
    assert set(loaded) == {name for _, name in expected}, (sorted(loaded), expected)
    for (_, name), (seed, shape) in expected.items():
        t = loaded[name]
        assert t.dtype == np.float32 and t.shape == shape, (name, t.dtype, t.shape)
        assert np.array_equal(t, value(seed, int(np.prod(shape))).reshape(shape)), name


def main():
    fixture, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    run = lambda *args: subprocess.run([fixture, *args], check=True, capture_output=True,
                                       text=True).stdout

    # tijepa -> safetensors package
    path = os.path.join(work, "from_c.safetensors")
    expected = listed(run("write-st", path))
    check_loaded(path, expected)
    with safe_open(path, framework="numpy") as f:
        assert f.metadata() == {"written_by": "tijepa"}, f.metadata()
    print(f"safetensors.numpy.load_file: {len(expected)} tensors from tijepa")

    # tijepa checkpoint export -> safetensors package
    ckpt_dir = os.path.join(work, "ckpt")
    all_tensors = listed(run("write-ckpt", ckpt_dir))
    for group in ("params", "ema"):
        out = os.path.join(work, f"{group}.safetensors")
        run("export", os.path.join(ckpt_dir, "step-00000042.h5"), group, out)
        check_loaded(out, {k: v for k, v in all_tensors.items() if k[0] == group})
        with safe_open(out, framework="numpy") as f:
            meta = f.metadata()
        assert meta["tijepa_group"] == group and meta["tijepa_step"] == "42", meta
    print("tijepa ckpt export: params and ema load in safetensors")

    # safetensors package -> tijepa
    base = {"a": value(1, 12).reshape(3, 4), "b": value(2, 5), "c.d": value(3, 8).reshape(2, 2, 2)}
    meta = {"written_by": "python"}
    f32 = os.path.join(work, "py_f32.safetensors")
    save_file(base, f32, metadata=meta)
    f16 = os.path.join(work, "py_f16.safetensors")
    halves = {k: v.astype(np.float16) for k, v in base.items()}
    halves["special"] = np.array([65504, 2.0**-24, -0.0, np.inf, -np.inf, np.nan, 1 / 3],
                                 dtype=np.float16)
    save_file(halves, f16, metadata=meta)
    files = [f32, f16]
    import torch
    from safetensors.torch import save_file as torch_save_file

    bf16 = os.path.join(work, "py_bf16.safetensors")
    torch_save_file({k: torch.from_numpy(v).to(torch.bfloat16) for k, v in base.items()}, bf16,
                    metadata=meta)
    files.append(bf16)
    for path in files:
        print(run("check-st", path), end="")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()

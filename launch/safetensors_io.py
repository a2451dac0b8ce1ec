"""Minimal safetensors read/write with numpy only, for tijepa's converters (launch/convert-ijepa,
launch/convert-hf-text) and tests. Format: 8-byte little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, padded
with spaces to a multiple of 8, then the raw little-endian tensor bytes."""
import json
import os
import struct

import numpy as np

_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
                 "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
_DTYPE_NAMES = {np.dtype(v): k for k, v in _NUMPY_DTYPES.items()}


def read(path):
    """Returns ({name: numpy array}, metadata). BF16 is widened to float32 (exactly)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        buf = data[begin:end]
        if e["dtype"] == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif e["dtype"] in _NUMPY_DTYPES:
            arr = np.frombuffer(buf, dtype=_NUMPY_DTYPES[e["dtype"]])
        else:
            raise ValueError("%s: tensor %r has dtype %s, which this reader does not know"
                             % (path, name, e["dtype"]))
        out[name] = arr.reshape(e["shape"]).copy()
    return out, meta


def write(path, tensors, metadata=None, dtypes=None):
    """Writes {name: array} in the given order; arrays keep their numpy dtype unless dtypes
    names another ({name: "F16"|"BF16"|...}). Written to a temporary name, then renamed."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        want = (dtypes or {}).get(name)
        if want == "BF16":
            bits = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32)
            # round to nearest even, as torch does
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
            blob, dtype = rounded.tobytes(), "BF16"
        else:
            if want:
                arr = arr.astype(_NUMPY_DTYPES[want])
            dtype = _DTYPE_NAMES.get(arr.dtype.newbyteorder("<"), _DTYPE_NAMES.get(arr.dtype))
            if dtype is None:
                raise ValueError("tensor %r: dtype %s cannot be written" % (name, arr.dtype))
            blob = arr.astype(_NUMPY_DTYPES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)

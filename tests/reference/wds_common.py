"""Shared helpers of the WebDataset cross-checks: a tiny PNG encoder/decoder (zlib only, so the
checks need nothing beyond the PyPI `webdataset` package), FNV-1a, and `tijepa data dump`."""
import json
import os
import struct
import subprocess
import zlib


def fnv1a64(data):
    h = 14695981039346656037
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def png_encode(rgb, width, height):
    """8-bit RGB PNG, filter 0 on every row."""
    raw = b"".join(b"\x00" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_decode(data):
    """Decodes 8-bit RGB / RGBA / grey PNGs (non-interlaced) into (width, height, rgb bytes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and ctype in (0, 2, 4, 6), (depth, ctype)
        elif kind == b"IDAT":
            idat += body
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    stride, raw = width * channels, zlib.decompress(idat)
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    rgb = bytearray()
    for i in range(0, len(out), channels):
        px = out[i:i + channels]
        rgb += bytes([px[0]] * 3) if channels <= 2 else bytes(px[:3])
    return width, height, bytes(rgb)


def pixels(width, height, seed):
    """Deterministic pseudo-random RGB bytes."""
    x, out = seed * 2654435761 + 1, bytearray()
    for _ in range(width * height * 3):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        out.append(x >> 56)
    return bytes(out)


def tijepa_dump(binary, spec, out_path):
    """Runs `tijepa data dump` and returns its samples as a list of dicts."""
    subprocess.run([binary, "data", "dump", "--data", spec, "--out", out_path], check=True)
    with open(out_path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def check(cond, msg):
    if not cond:
        raise SystemExit("FAIL: " + msg)


def fresh_dir(path):
    if os.path.isdir(path):
        subprocess.run(["rm", "-rf", path], check=True)
    os.makedirs(path)
    return path

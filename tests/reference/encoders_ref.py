#!/usr/bin/python3
"""Pretrained-encoder parity with plain PyTorch (Debian python3-torch, random weights, nothing
downloaded): tijepa's ViT and bert encoders, loaded from files written here, against the same
networks written here in torch.

usage: /usr/bin/python3 encoders_ref.py --cli BUILD/tests/encoders_cli --workdir DIR

ViT (timm / I-JEPA structure: conv patch embedding, fixed 2-D sin-cos positions, pre-LN blocks
with fused qkv, GELU(erf) MLP 4x, final LayerNorm eps 1e-6):
  ijepa   an I-JEPA-style .pth.tar ({"encoder", "target_encoder", "predictor"} with `module.`
          prefixes and the sin-cos pos_embed) converted by launch/convert-ijepa; the target
          encoder's features are the reference;
  bf16    a timm-style state dict under the prefix `encoder.`, stored as BF16 safetensors; the
          reference uses the same BF16-rounded weights.
BERT (post-LN: word + position + token-type 0 embeddings, LayerNorm eps 1e-12, attention with a
key-padding mask, GELU(erf), no final norm), Hugging Face tensor names:
  meta    prefix `bert.`, a Hugging Face directory (config.json, vocab.txt, pytorch_model.bin)
          converted by launch/convert-hf-text (the architecture goes into the metadata);
  gamma   prefix `0.auto_model.`, LayerNorm.gamma/beta names, no metadata, F16 weights, and
          embeddings scaled to ~2e-4, where a LayerNorm eps other than 1e-12 shows.
Captions are tokenised by tijepa; the ids must equal wordpiece_ref.py's (an independent Python
WordPiece); the torch BERT runs on those ids. Every output: max|tijepa - torch| / max|torch| <= 1e-4
against the float64 torch network (the float32 figure is printed too).
Converters: convert-hf-text refuses non-BERT architectures (gte-base-en-v1.5), another LayerNorm
eps or activation, cased vocabularies and directories without weights; convert-ijepa refuses a
ViT with a class token.
"""
import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCH = os.path.join(HERE, "..", "..", "launch")
sys.path.insert(0, LAUNCH)
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402
import wordpiece_ref  # noqa: E402

TOL = 1e-4


def max_rel(c, ref):
    c, ref = np.asarray(c, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(c - ref)) / max(np.max(np.abs(ref)), 1e-12))


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("FAILED %s\n%s%s" % (" ".join(cmd), proc.stdout, proc.stderr))
    return proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------
# ViT, timm / I-JEPA names

def sincos_2d(dim, grid):
    """I-JEPA's get_2d_sincos_pos_embed, written from its definition: numpy float64, the first
    half encodes the column (grid[0] of meshgrid(w, h)), each half [sin | cos]."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    gw, gh = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64))
    return np.concatenate([one_d(dim // 2, gw), one_d(dim // 2, gh)], axis=1)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        hd = C // self.heads
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) / math.sqrt(hd)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    def __init__(self, image, patch, dim, depth, heads, eps=1e-6):
        super().__init__()
        grid = image // patch
        self.patch_embed = PatchEmbed(patch, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, dim), requires_grad=False)
        self.pos_embed.data.copy_(torch.from_numpy(sincos_2d(dim, grid)).float().unsqueeze(0))
        self.blocks = nn.ModuleList([Block(dim, heads, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x):
        x = self.patch_embed(x) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.norm(x)


def randomise(module, gen, std=0.2):
    """Random weights everywhere (LayerNorm weights around 1); the fixed pos_embed is kept."""
    with torch.no_grad():
        for sub in module.modules():
            for name, p in sub.named_parameters(recurse=False):
                if name == "pos_embed":
                    continue
                if isinstance(sub, nn.LayerNorm) and name == "weight":
                    p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(std * torch.randn(p.shape, generator=gen))


def state_numpy(module):
    return {k: v.detach().float().numpy().copy() for k, v in module.state_dict().items()}


def vit_features(model, images):
    with torch.no_grad():
        return model.double()(torch.from_numpy(images).double()).numpy(), \
            model.float()(torch.from_numpy(images)).numpy()


def check_vit(args, gen, report):
    image, patch, dim, depth, heads = 32, 4, 48, 3, 4
    images = torch.randn(5, 3, image, image, generator=gen).numpy()
    img_path = os.path.join(args.workdir, "images.safetensors")
    safetensors_io.write(img_path, {"images": images})
    shape = ["--image-size", str(image), "--patch", str(patch), "--shape",
             "%d,%d,%d" % (dim, depth, heads)]

    # ijepa: a .pth.tar through launch/convert-ijepa; the target encoder is the reference
    online, target = ViT(image, patch, dim, depth, heads), ViT(image, patch, dim, depth, heads)
    randomise(online, gen)
    randomise(target, gen)
    pred = nn.Linear(dim, dim)
    ckpt = {"encoder": {"module." + k: v for k, v in online.state_dict().items()},
            "target_encoder": {"module." + k: v for k, v in target.state_dict().items()},
            "predictor": {"module." + k: v for k, v in pred.state_dict().items()},
            "epoch": 3, "loss": 0.5}
    pth = os.path.join(args.workdir, "ijepa.pth.tar")
    torch.save(ckpt, pth)
    st = os.path.join(args.workdir, "ijepa.safetensors")
    run([sys.executable, os.path.join(LAUNCH, "convert-ijepa"), pth, st, "--heads", str(heads)])
    out = os.path.join(args.workdir, "vit_ijepa_out.safetensors")
    note = run([args.cli, "image", "--weights", st, "--images", img_path, "--out", out] + shape)
    got = safetensors_io.read(out)[0]["features"]
    ref64, ref32 = vit_features(target, images)
    report("vit ijepa (convert-ijepa, target_encoder)", max_rel(got, ref64), max_rel(got, ref32),
           note)
    # I-JEPA's own encoders use nn.LayerNorm's default eps 1e-5; tijepa's ViT uses 1e-6.
    target_eps5 = ViT(image, patch, dim, depth, heads, eps=1e-5)
    target_eps5.load_state_dict(target.state_dict())
    ref_eps5, _ = vit_features(target_eps5, images)
    print("  info: the same weights with LayerNorm eps 1e-5 (I-JEPA's nn.LayerNorm default): "
          "tijepa vs torch max rel err %.2e" % max_rel(got, ref_eps5))

    # bf16: timm names under `encoder.`, BF16 weights, no pos_embed
    vit = ViT(image, patch, dim, depth, heads)
    randomise(vit, gen)
    with torch.no_grad():
        for name, p in vit.named_parameters():
            if not name.endswith("pos_embed"):
                p.copy_(p.to(torch.bfloat16).float())
    state = {"encoder." + k: v for k, v in state_numpy(vit).items() if k != "pos_embed"}
    st = os.path.join(args.workdir, "vit_bf16.safetensors")
    safetensors_io.write(st, state, {"written_by": "encoders_ref.py"},
                         dtypes={k: "BF16" for k in state})
    out = os.path.join(args.workdir, "vit_bf16_out.safetensors")
    note = run([args.cli, "image", "--weights", st, "--images", img_path, "--out", out] + shape)
    got = safetensors_io.read(out)[0]["features"]
    ref64, ref32 = vit_features(vit, images)
    report("vit bf16 (timm names, prefix encoder.)", max_rel(got, ref64), max_rel(got, ref32),
           note)


# ------------------------------------------------------------------------------------------
# BERT, Hugging Face names

class BertLayer(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)
        self.ln1 = nn.LayerNorm(dim, eps=1e-12)
        self.inter = nn.Linear(dim, 4 * dim)
        self.output = nn.Linear(4 * dim, dim)
        self.ln2 = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x, mask):
        B, L, C = x.shape
        hd = C // self.heads
        split = lambda t: t.reshape(B, L, self.heads, hd).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, C)
        x = self.ln1(x + self.out(ctx))
        return self.ln2(x + self.output(F.gelu(self.inter(x))))


class Bert(nn.Module):
    def __init__(self, vocab, positions, dim, depth, heads):
        super().__init__()
        self.word = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(positions, dim)
        self.token_type = nn.Embedding(2, dim)
        self.ln = nn.LayerNorm(dim, eps=1e-12)
        self.layers = nn.ModuleList([BertLayer(dim, heads) for _ in range(depth)])

    def forward(self, ids, mask):
        L = ids.shape[1]
        x = self.word(ids) + self.pos(torch.arange(L))[None] + self.token_type(torch.zeros_like(ids))
        x = self.ln(x)
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def hf_state(self, gamma_beta=False):
        w, b = ("gamma", "beta") if gamma_beta else ("weight", "bias")
        s = {"embeddings.word_embeddings.weight": self.word.weight,
             "embeddings.position_embeddings.weight": self.pos.weight,
             "embeddings.token_type_embeddings.weight": self.token_type.weight,
             "embeddings.LayerNorm." + w: self.ln.weight, "embeddings.LayerNorm." + b: self.ln.bias}
        for i, lay in enumerate(self.layers):
            p = "encoder.layer.%d." % i
            for part, lin in (("query", lay.query), ("key", lay.key), ("value", lay.value)):
                s[p + "attention.self.%s.weight" % part] = lin.weight
                s[p + "attention.self.%s.bias" % part] = lin.bias
            s[p + "attention.output.dense.weight"] = lay.out.weight
            s[p + "attention.output.dense.bias"] = lay.out.bias
            s[p + "attention.output.LayerNorm." + w] = lay.ln1.weight
            s[p + "attention.output.LayerNorm." + b] = lay.ln1.bias
            s[p + "intermediate.dense.weight"] = lay.inter.weight
            s[p + "intermediate.dense.bias"] = lay.inter.bias
            s[p + "output.dense.weight"] = lay.output.weight
            s[p + "output.dense.bias"] = lay.output.bias
            s[p + "output.LayerNorm." + w] = lay.ln2.weight
            s[p + "output.LayerNorm." + b] = lay.ln2.bias
        s["pooler.dense.weight"] = torch.zeros(2, 2)  # present in HF files, unused
        return {k: v.detach().float().numpy().copy() for k, v in s.items()}


def hf_config(path, vocab, positions, dim, depth, heads, **changes):
    cfg = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": dim,
           "num_hidden_layers": depth, "num_attention_heads": heads,
           "intermediate_size": 4 * dim, "vocab_size": vocab, "max_position_embeddings": positions,
           "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
           "position_embedding_type": "absolute"}
    cfg.update(changes)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)


def check_converter_errors(args, check):
    """The converters refuse what tijepa cannot run, with a reason."""
    hf_dir = os.path.join(args.workdir, "hf_refused")
    os.makedirs(hf_dir, exist_ok=True)
    with open(os.path.join(hf_dir, "vocab.txt"), "w") as f:
        f.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n")
    cases = [({"model_type": "new"}, None, "gte-base-en-v1.5"),
             ({"layer_norm_eps": 1e-5}, None, "layer_norm_eps"),
             ({"hidden_act": "gelu_new"}, None, "hidden_act"),
             ({}, {"do_lower_case": False}, "do_lower_case is false"),
             ({}, None, "neither model.safetensors nor pytorch_model.bin")]
    for changes, tok_cfg, needle in cases:
        hf_config(hf_dir, 4, 64, 8, 1, 2, **changes)
        tc = os.path.join(hf_dir, "tokenizer_config.json")
        if tok_cfg:
            with open(tc, "w") as f:
                json.dump(tok_cfg, f)
        elif os.path.exists(tc):
            os.remove(tc)
        proc = subprocess.run([sys.executable, os.path.join(LAUNCH, "convert-hf-text"), hf_dir,
                               os.path.join(args.workdir, "hf_refused_out")],
                              capture_output=True, text=True)
        check("convert-hf-text refuses: %s" % needle,
              proc.returncode != 0 and needle in proc.stderr, proc.stderr)
    vit = ViT(16, 4, 8, 1, 2)
    state = dict(vit.state_dict())
    state["cls_token"] = torch.zeros(1, 1, 8)
    pth = os.path.join(args.workdir, "cls.pth.tar")
    torch.save({"target_encoder": {"module." + k: v for k, v in state.items()}}, pth)
    proc = subprocess.run([sys.executable, os.path.join(LAUNCH, "convert-ijepa"), pth,
                           os.path.join(args.workdir, "cls.safetensors")],
                          capture_output=True, text=True)
    check("convert-ijepa refuses a cls_token", proc.returncode != 0 and "cls_token" in proc.stderr,
          proc.stderr)


def caption_set(rng, words):
    caps = ["a red circle above a small blue square", "Héllo, WORLD!! naïve café",
            "unknownword xyzzy", "我爱北京", "", "the the the the the the the the the the the the "
            "the the the the the the"]
    for _ in range(10):
        caps.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 20))))
    return caps


def check_bert(args, gen, report):
    dim, depth, heads, L, positions = 32, 2, 4, 16, 24
    rng = random.Random(5)
    words = ["a", "red", "green", "blue", "circle", "square", "above", "below", "small", "large",
             "the", "of", "play", "##ing", "##ed", "caf", "##e", "hello", "world", "!", ",",
             "我", "北", "un", "##known", "naive"]
    vocab_lines = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + \
        ["w%d" % i for i in range(20)]
    vocab_path = os.path.join(args.workdir, "bert_vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab_lines) + "\n")
    vocab = wordpiece_ref.load_vocab(vocab_path)
    caps = caption_set(rng, [w for w in words if not w.startswith("##")])
    caps_path = os.path.join(args.workdir, "bert_captions.hex")
    with open(caps_path, "w") as f:
        for c in caps:
            f.write(c.encode("utf-8").hex() + "\n")
    ids_ref = np.zeros((len(caps), L), np.int64)
    for i, c in enumerate(caps):
        row = wordpiece_ref.encode(c, vocab, L)
        ids_ref[i, :len(row)] = row
    mask_ref = ids_ref != 0
    mask_ref[:, 0] = True

    for label, prefix, gamma, meta, f16 in (("meta", "bert.", False, True, False),
                                            ("gamma", "0.auto_model.", True, False, True)):
        bert = Bert(len(vocab_lines), positions, dim, depth, heads)
        randomise(bert, gen)
        if gamma:  # tiny embeddings: the embedding LayerNorm's eps (1e-12) then matters
            with torch.no_grad():
                for table in (bert.word, bert.pos, bert.token_type):
                    table.weight.mul_(1e-3)
        if f16:
            with torch.no_grad():
                for p in bert.parameters():
                    p.copy_(p.half().float())
        state = {prefix + k: v for k, v in bert.hf_state(gamma).items()}
        st = os.path.join(args.workdir, "bert_%s.safetensors" % label)
        if meta:  # a Hugging Face directory with pytorch_model.bin through convert-hf-text
            hf_dir = os.path.join(args.workdir, "hf_bert")
            os.makedirs(hf_dir, exist_ok=True)
            hf_config(hf_dir, len(vocab_lines), positions, dim, depth, heads)
            shutil.copyfile(vocab_path, os.path.join(hf_dir, "vocab.txt"))
            torch.save({k: torch.from_numpy(v) for k, v in state.items()},
                       os.path.join(hf_dir, "pytorch_model.bin"))
            conv = os.path.join(args.workdir, "hf_bert_converted")
            run([sys.executable, os.path.join(LAUNCH, "convert-hf-text"), hf_dir, conv,
                 "--txt-len", str(L)])
            st = os.path.join(conv, "text_encoder.safetensors")
        else:
            safetensors_io.write(st, state, None,
                                 dtypes={k: "F16" for k in state} if f16 else None)
        out = os.path.join(args.workdir, "bert_%s_out.safetensors" % label)
        note = run([args.cli, "text", "--weights", st, "--vocab", vocab_path, "--shape",
                    "%d,%d,%d,%d,%d" % (dim, depth, heads, L, len(vocab_lines)),
                    "--captions", caps_path, "--out", out])
        got = safetensors_io.read(out)[0]
        ids = got["ids"].astype(np.int64)
        if not np.array_equal(ids, ids_ref) or not np.array_equal(got["valid"] > 0, mask_ref):
            report("bert %s: token ids vs wordpiece_ref.py" % label, 1.0, 1.0, "ids differ")
            continue
        with torch.no_grad():
            ids_t, mask_t = torch.from_numpy(ids_ref), torch.from_numpy(mask_ref)
            ref64 = bert.double()(ids_t, mask_t).numpy()
            ref32 = bert.float()(ids_t, mask_t).numpy()
        report("bert %s (prefix %s%s)" % (label, prefix, ", F16" if f16 else ""),
               max_rel(got["hidden"], ref64), max_rel(got["hidden"], ref32), note)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    failures = []

    def report(what, err64, err32, note):
        ok = err64 <= TOL
        if not ok:
            failures.append(what)
        print("%s %-44s max rel err vs torch fp64 %.2e, vs torch fp32 %.2e"
              % ("ok  " if ok else "FAIL", what, err64, err32))
        print("     " + note.strip().splitlines()[-1])

    check_vit(args, gen, report)
    def check(what, ok, message):
        if not ok:
            failures.append(what)
        print("%s %s\n     %s" % ("ok  " if ok else "FAIL", what,
                                   message.strip() or "(no message)"))

    check_bert(args, gen, report)
    check_converter_errors(args, check)
    print("encoders_ref: %s" % ("passed" if not failures else "FAILED: " + ", ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

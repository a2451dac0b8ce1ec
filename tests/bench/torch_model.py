"""The PyTorch reference network (tests/reference/tijepa_ref.py) built for benchmarking: float32,
random weights, the same presets as model/presets.c, and one training step exactly as the
reference defines it (step_loss, backward, AdamW with the I-JEPA schedules, EMA update).

The reference's checking behaviour is untouched: this module only imports it.
Run with /usr/bin/python3 (Debian's python3-torch).
"""
import os
import re
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import tijepa_ref as ref  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# Field order of ModelShape in model/model.h (and of the preset table in model/presets.c).
SHAPE_KEYS = ("image_size", "patch", "img_dim", "img_depth", "img_heads", "txt_dim", "txt_depth",
              "txt_heads", "txt_len", "vocab", "cross_dim", "cross_depth", "cross_heads",
              "pred_dim", "pred_depth", "pred_heads", "batch")


def read_presets(path=os.path.join(ROOT, "model", "presets.c")):
    """{name: {shape key: int}} parsed from the C preset table, so the shapes cannot drift."""
    text = open(path).read()
    presets = {}
    for name, numbers in re.findall(r'\{"(\w+)",\s*\{([0-9,\s]+)\}\}', text):
        values = [int(v) for v in numbers.replace(" ", "").split(",") if v]
        if len(values) != len(SHAPE_KEYS):
            raise ValueError("%s: preset %s has %d fields, expected %d" % (
                path, name, len(values), len(SHAPE_KEYS)))
        presets[name] = dict(zip(SHAPE_KEYS, values))
    if not presets:
        raise ValueError("%s: no preset table found" % path)
    return presets


def make_config(preset, mode="paper", nce_weight=1.0, negatives=4, temperature=0.05,
                total_steps=100, negative_target="own", target_text="caption"):
    """A tijepa_ref config dict with the optimiser defaults of model/optim.c and the loss
    defaults of launch/settings.c (negative_target "own": each negative's target path sees its
    own caption; target_text "caption": the target crosser sees the caption)."""
    cfg = dict(read_presets()[preset])
    cfg.update(mode=mode, nce_weight=float(nce_weight), negatives=int(negatives) if nce_weight > 0
               else 0, temperature=float(temperature), lr=1e-3, start_lr=2e-4, final_lr=1e-6,
               warmup_steps=0, total_steps=total_steps, weight_decay=0.04,
               final_weight_decay=0.4, ema_start=0.996, ema_end=1.0, clip_grad=0.0,
               negative_target=negative_target, target_text=target_text)
    return cfg


class Trainer:
    """Online model, EMA copy and AdamW in float32, random weights (std 0.02 linears, unit
    norms, zero biases); step() is one training step of the reference."""

    def __init__(self, cfg, seed=0, dtype=torch.float32):
        torch.manual_seed(seed)
        self.cfg = cfg
        self.model, self.ema = ref.TIJEPA(cfg).to(dtype), ref.EMA(cfg).to(dtype)
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if name.endswith(".bias") or "norm" in name and p.dim() == 1:
                    continue
                p.normal_(0.0, 0.02)
            self.ema.ctx.load_state_dict(self.model.ctx.state_dict())
            if self.ema.img is not None:
                self.ema.img.load_state_dict(self.model.img.state_dict())
        named = dict(self.model.named_parameters())
        train = set(ref.trainable_names(cfg, self.model))
        for n, p in named.items():
            p.requires_grad_(n in train)
        self.ema.requires_grad_(False)
        decay = [named[n] for n in sorted(train) if named[n].dim() >= 2]
        no_decay = [named[n] for n in sorted(train) if named[n].dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay}, {"params": no_decay,
                                                          "weight_decay": 0.0}],
                                     lr=cfg["lr"], betas=ref.ADAM_BETAS, eps=ref.ADAM_EPS)
        online = self.model.state_dict()
        self.ema_pairs = [(e, online[n]) for n, e in self.ema.state_dict().items()]

    def step(self, t, images, ids, valid, ctx_idx, tgt_idx, negatives):
        cfg = self.cfg
        self.opt.zero_grad(set_to_none=True)
        loss, _, _ = ref.step_loss(self.model, self.ema, cfg, images, ids, valid, ctx_idx,
                                   tgt_idx, negatives)
        loss.backward()
        for group in self.opt.param_groups:
            group["lr"] = ref.lr_at(cfg, t)
        self.opt.param_groups[0]["weight_decay"] = ref.wd_at(cfg, t)
        self.opt.step()
        m = ref.ema_momentum_at(cfg, t)
        with torch.no_grad():
            for e, q in self.ema_pairs:
                e.mul_(m).add_(q, alpha=1 - m)
        return float(loss)


def random_batch(cfg, seed=1):
    """images [B,3,S,S] normal, ids [B,L] (first half valid), valid [B,L] bool."""
    g = torch.Generator().manual_seed(seed)
    B, S, L = cfg["batch"], cfg["image_size"], cfg["txt_len"]
    images = torch.randn(B, 3, S, S, generator=g)
    valid = (torch.arange(L) < L // 2).expand(B, L).clone()
    ids = torch.randint(5, cfg["vocab"], (B, L), generator=g) * valid
    return images, ids.long(), valid


def random_negatives(B, K, step, seed=0):
    """[B,K] indices of other samples of the batch (uniform, with replacement)."""
    if K == 0:
        return None
    g = torch.Generator().manual_seed(seed * 1000003 + step)
    r = torch.randint(0, B - 1, (B, K), generator=g)
    own = torch.arange(B)[:, None]
    return r + (r >= own).long()


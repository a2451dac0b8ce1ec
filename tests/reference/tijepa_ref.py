"""PyTorch reference of the TI-JEPA network exactly as tests/reference/MODEL.md specifies it.

Used by check_model.py (as a float64 oracle for the C model) and by make_synthetic_case.py.
Run with /usr/bin/python3 (Debian's python3-torch and python3-h5py).

    case = read_case("CASE.h5")                # config, weights, inputs, per-step masks
    ref = run_reference(case, torch.float64)   # losses per step, step-0 grads, final tensors

Parameter names are the exchange / checkpoint names: the state_dict of TIJEPA ("txt.", "img.",
"ctx.", "pred.") and of the EMA copies (EMA: "ctx." and, in scratch mode, "img."). In ijepa mode
(image-only I-JEPA) the model is IJEPA ("img.", "pred." with the predictor mapping the image
width) and the EMA holds "img." only.
"""
import math

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-6
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

INT_KEYS = ("image_size", "patch", "img_dim", "img_depth", "img_heads", "txt_dim", "txt_depth",
            "txt_heads", "txt_len", "vocab", "cross_dim", "cross_depth", "cross_heads",
            "pred_dim", "pred_depth", "pred_heads", "batch", "negatives", "warmup_steps",
            "total_steps", "n_steps")
FLOAT_KEYS = ("nce_weight", "temperature", "lr", "start_lr", "final_lr", "weight_decay",
              "final_weight_decay", "ema_start", "ema_end", "clip_grad")


# ----------------------------------------------------------------------------------------------
# Fixed 2-D sin-cos positions
# ----------------------------------------------------------------------------------------------

def sincos_pos_embed_2d(grid, dim):
    """[grid*grid, dim]; patch (r, c) at row r*grid + c: [col half | row half], each half
    [sin(pos*w_i) | cos(pos*w_i)] for i < dim/4, w_i = 10000^(-i/(dim/4)). Computed in float64
    and rounded to float32, as the C table is (returned as float64 holding float32 values)."""
    assert dim % 4 == 0, "sin-cos positions need a width divisible by 4"
    quarter = dim // 4
    omega = 1.0 / 10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    coord = torch.arange(grid, dtype=torch.float64)
    col = coord.repeat(grid)                 # c for index r*grid + c
    row = coord.repeat_interleave(grid)      # r
    def half(pos):
        angle = pos[:, None] * omega[None, :]
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)
    table = torch.cat([half(col), half(row)], dim=1)
    return table.float().double()


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------

def attention(q, k, v, heads, key_valid=None):
    """q [B,Nq,D], k/v [B,Nk,D], key_valid [B,Nk] bool or None -> [B,Nq,D].
    Heads are contiguous slices of D; scale 1/sqrt(D/heads); padded keys get -inf."""
    B, Nq, D = q.shape
    Nk = k.shape[1]
    hd = D // heads
    q = q.view(B, Nq, heads, hd).transpose(1, 2)           # [B,h,Nq,hd]
    k = k.view(B, Nk, heads, hd).transpose(1, 2)
    v = v.view(B, Nk, heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)       # [B,h,Nq,Nk]
    if key_valid is not None:
        scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if key_valid is not None:                              # a query with no valid key gets 0
        probs = torch.nan_to_num(probs, nan=0.0)
    out = probs @ v                                        # [B,h,Nq,hd]
    return out.transpose(1, 2).reshape(B, Nq, D)


def layer_norm(dim):
    return nn.LayerNorm(dim, eps=LN_EPS)


class MLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # F.gelu default = exact erf form


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        assert dim % heads == 0, "width must be divisible by heads"
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)   # rows: q, then k, then v
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, key_valid=None):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.proj(attention(q, k, v, self.heads, key_valid))


class Block(nn.Module):
    """Pre-LN self-attention block (text, image and predictor)."""
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = layer_norm(dim)
        self.mlp = MLP(dim)

    def forward(self, x, key_valid=None):
        x = x + self.attn(self.norm1(x), key_valid)
        return x + self.mlp(self.norm2(x))


class CrossAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        assert dim % heads == 0, "width must be divisible by heads"
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)    # rows: k, then v
        self.proj = nn.Linear(dim, dim)

    def forward(self, a, c, key_valid):
        k, v = self.kv(c).chunk(2, dim=-1)
        return self.proj(attention(self.q(a), k, v, self.heads, key_valid))


class CrossBlock(nn.Module):
    """Image tokens (queries) attend to text tokens; norm1 is shared by queries and text."""
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = CrossAttention(dim, heads)
        self.norm2 = layer_norm(dim)
        self.mlp = MLP(dim)

    def forward(self, z, t, key_valid):
        z = z + self.attn(self.norm1(z), self.norm1(t), key_valid)
        return z + self.mlp(self.norm2(z))


# ----------------------------------------------------------------------------------------------
# The four networks
# ----------------------------------------------------------------------------------------------

class TextEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D = cfg["txt_dim"]
        self.tok_embed = nn.Parameter(torch.zeros(cfg["vocab"], D))
        self.pos_embed = nn.Parameter(torch.zeros(cfg["txt_len"], D))
        self.blocks = nn.ModuleList(Block(D, cfg["txt_heads"]) for _ in range(cfg["txt_depth"]))
        self.norm = layer_norm(D)

    def forward(self, ids, valid):
        """ids [B,L] long, valid [B,L] bool -> u [B,L,Dt]."""
        x = self.tok_embed[ids] + self.pos_embed
        for blk in self.blocks:
            x = blk(x, valid)
        return self.norm(x)


class ImageEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, p = cfg["img_dim"], cfg["patch"]
        self.patch_embed = nn.Conv2d(3, D, kernel_size=p, stride=p)
        grid = cfg["image_size"] // p
        self.register_buffer("pos", sincos_pos_embed_2d(grid, D), persistent=False)
        self.blocks = nn.ModuleList(Block(D, cfg["img_heads"]) for _ in range(cfg["img_depth"]))
        self.norm = layer_norm(D)

    def forward(self, images, keep=None):
        """images [B,3,S,S] -> [B,P,De], or [B,|keep|,De] encoding only patches `keep`."""
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos  # row-major grid
        if keep is not None:
            x = x[:, keep]
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class Crosser(nn.Module):
    """X(s, u, valid): context crosser (online) and target crosser (its EMA copy)."""
    def __init__(self, cfg):
        super().__init__()
        H, De, Dt = cfg["cross_dim"], cfg["img_dim"], cfg["txt_dim"]
        self.img_proj = nn.Linear(De, H)
        self.img_norm = layer_norm(H)
        self.txt_proj = nn.Linear(Dt, H) if Dt != H else None  # identity when widths agree
        self.blocks = nn.ModuleList(CrossBlock(H, cfg["cross_heads"])
                                    for _ in range(cfg["cross_depth"]))

    def forward(self, s, u, valid):
        """s [B,N,De], u [B,L,Dt], valid [B,L] bool -> [B,N,H] (no final norm)."""
        z = self.img_norm(self.img_proj(s))
        t = self.txt_proj(u) if self.txt_proj is not None else u
        for blk in self.blocks:
            z = blk(z, t, valid)
        return z


class Predictor(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        H, Dp = cfg["cross_dim"], cfg["pred_dim"]
        self.embed = nn.Linear(H, Dp)
        self.mask_token = nn.Parameter(torch.zeros(Dp))
        grid = cfg["image_size"] // cfg["patch"]
        self.register_buffer("pos", sincos_pos_embed_2d(grid, Dp), persistent=False)
        self.blocks = nn.ModuleList(Block(Dp, cfg["pred_heads"])
                                    for _ in range(cfg["pred_depth"]))
        self.norm = layer_norm(Dp)
        self.proj = nn.Linear(Dp, H)

    def forward(self, zc, ctx_idx, tgt_idx):
        """zc [B,|C|,H] -> predictions at the target patches [B,|T|,H]."""
        B = zc.shape[0]
        ctx = self.embed(zc) + self.pos[ctx_idx]
        tgt = (self.mask_token + self.pos[tgt_idx]).expand(B, -1, -1)
        x = torch.cat([ctx, tgt], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.proj(self.norm(x[:, len(ctx_idx):]))


class TIJEPA(nn.Module):
    """Online networks; state_dict names are the exchange names."""
    def __init__(self, cfg):
        super().__init__()
        self.txt = TextEncoder(cfg)
        self.img = ImageEncoder(cfg)
        self.ctx = Crosser(cfg)
        self.pred = Predictor(cfg)


class IJEPA(nn.Module):
    """ijepa mode: the context encoder and a predictor from and to the image width De."""
    def __init__(self, cfg):
        super().__init__()
        self.img = ImageEncoder(cfg)
        self.pred = Predictor(dict(cfg, cross_dim=cfg["img_dim"]))


class IJEPAEMA(nn.Module):
    """ijepa mode: the EMA (target) image encoder."""
    def __init__(self, cfg):
        super().__init__()
        self.img = ImageEncoder(cfg)


class EMA(nn.Module):
    """EMA copies with the online names: ctx (target crosser) and, in scratch mode, img."""
    def __init__(self, cfg):
        super().__init__()
        self.ctx = Crosser(cfg)
        self.img = ImageEncoder(cfg) if cfg["mode"] == "scratch" else None


# ----------------------------------------------------------------------------------------------
# Loss of one step
# ----------------------------------------------------------------------------------------------

def energy(pred, target):
    """[B,T,H] x2 -> [B]: mean smooth_l1 (beta 1) per sample."""
    return F.smooth_l1_loss(pred, target, reduction="none", beta=1.0).mean(dim=(1, 2))


def nce_enabled(cfg):
    return cfg["nce_weight"] > 0 and cfg["negatives"] > 0


def ijepa_step_loss(model, ema, images, ctx_idx, tgt_idx):
    """ijepa mode (I-JEPA): smooth-L1 between the predictions from the context patches and the
    layer-normed (no affine) EMA tokens of the full image at the targets; captions unused."""
    s_ctx = model.img(images, ctx_idx)
    with torch.no_grad():
        h = ema.img(images)
        z = F.layer_norm(h, h.shape[-1:], eps=LN_EPS)[:, tgt_idx]
    jepa = energy(model.pred(s_ctx, ctx_idx, tgt_idx), z).mean()
    return jepa, jepa.detach(), torch.zeros((), dtype=jepa.dtype)


def step_loss(model, ema, cfg, images, ids, valid, ctx_idx, tgt_idx, negatives):
    """Returns (loss, jepa, nce) tensors; loss carries the gradient of the trainable tensors."""
    if cfg["mode"] == "ijepa":
        return ijepa_step_loss(model, ema, images, ctx_idx, tgt_idx)
    paper = cfg["mode"] == "paper"
    with torch.set_grad_enabled(not paper):     # paper: frozen encoders, no graph at all
        u = model.txt(ids, valid)
        if paper:
            s = model.img(images)
            s_ctx, s_tgt = s[:, ctx_idx], s      # one encoder pass feeds both paths
        else:
            s_ctx = model.img(images, ctx_idx)  # online encoder sees only the context patches
    with torch.no_grad():                        # target path: no gradient anywhere
        if not paper:
            s_tgt = ema.img(images)
        # target_text = none: the target crosser sees no caption (every key masked)
        valid_tgt = valid if cfg["target_text"] == "caption" else torch.zeros_like(valid)
        zt = ema.ctx(s_tgt, u, valid_tgt)
        z = F.layer_norm(zt, zt.shape[-1:], eps=LN_EPS)[:, tgt_idx]

    e0 = energy(model.pred(model.ctx(s_ctx, u, valid), ctx_idx, tgt_idx), z)
    jepa = e0.mean()
    if not nce_enabled(cfg):
        zero = torch.zeros((), dtype=jepa.dtype)
        return jepa, jepa.detach(), zero
    B, K = negatives.shape
    flat = negatives.reshape(-1)                 # row i*K + k: caption neg[i,k] for image i
    s_rep = s_ctx.repeat_interleave(K, dim=0)
    pred_neg = model.pred(model.ctx(s_rep, u.detach()[flat], valid[flat]), ctx_idx, tgt_idx)
    if cfg["negative_target"] == "own" and cfg["target_text"] == "caption":
        # the target path sees the negative caption too
        with torch.no_grad():
            zt_neg = ema.ctx(s_tgt.repeat_interleave(K, dim=0), u.detach()[flat], valid[flat])
            z_neg = F.layer_norm(zt_neg, zt_neg.shape[-1:], eps=LN_EPS)[:, tgt_idx]
    else:                                        # the positive caption's target for every k
        z_neg = z.repeat_interleave(K, dim=0)
    e_neg = energy(pred_neg, z_neg).view(B, K)
    E = torch.cat([e0[:, None], e_neg], dim=1)   # column 0 the positive
    nce = -torch.log_softmax(-E / cfg["temperature"], dim=1)[:, 0].mean()
    return jepa + cfg["nce_weight"] * nce, jepa.detach(), nce.detach()


# ----------------------------------------------------------------------------------------------
# Schedules (u = t + 1) and the training run
# ----------------------------------------------------------------------------------------------

def lr_at(cfg, t):
    u, W, T = t + 1, cfg["warmup_steps"], cfg["total_steps"]
    if u < W:
        return cfg["start_lr"] + (u / W) * (cfg["lr"] - cfg["start_lr"])
    progress = min(1.0, (u - W) / max(1, T - W))
    return cfg["final_lr"] + (cfg["lr"] - cfg["final_lr"]) * 0.5 * (1 + math.cos(math.pi * progress))


def wd_at(cfg, t):
    progress = min(1.0, (t + 1) / cfg["total_steps"])
    wd, final = cfg["weight_decay"], cfg["final_weight_decay"]
    return final + (wd - final) * 0.5 * (1 + math.cos(math.pi * progress))


def ema_momentum_at(cfg, t):
    return cfg["ema_start"] + t * (cfg["ema_end"] - cfg["ema_start"]) / cfg["total_steps"]


def trainable_names(cfg, model):
    """paper: ctx.* and pred.*; scratch and ijepa: every online tensor."""
    names = [n for n, _ in model.named_parameters()]
    if cfg["mode"] == "paper":
        names = [n for n in names if n.startswith(("ctx.", "pred."))]
    return names


def build(cfg, params, ema_params, dtype):
    """Modules in `dtype` holding the given numpy weights (strict name and shape match)."""
    if cfg["mode"] == "ijepa":
        model, ema = IJEPA(cfg), IJEPAEMA(cfg)
    else:
        model, ema = TIJEPA(cfg), EMA(cfg)
    for module, tensors, what in ((model, params, "params"), (ema, ema_params, "ema")):
        expected = set(module.state_dict())
        if set(tensors) != expected:
            raise ValueError("%s: missing %s, unexpected %s" % (
                what, sorted(expected - set(tensors)), sorted(set(tensors) - expected)))
        module.to(dtype)
        module.load_state_dict({n: torch.as_tensor(np.asarray(a)).to(dtype)
                                for n, a in tensors.items()})
    trainable = set(trainable_names(cfg, model))
    for n, p in model.named_parameters():
        p.requires_grad_(n in trainable)
    ema.requires_grad_(False)
    return model, ema


def run_reference(case, dtype=torch.float64):
    """Trains n_steps from case["params"] / case["ema"] as MODEL.md specifies.
    Returns {"steps": [{"loss","jepa","nce"}...], "grads": {name: array} (step 0, before
    clipping, trainable tensors only), "params": {...}, "ema": {...}, "sensitivity": {...}}
    (numpy, float64). sensitivity[name] (trainable tensors) bounds how far each element can end
    up from this trajectory when every gradient carries an error of up to rho * max|g| of its
    tensor: rho * sensitivity. Adam divides each element by its own RMS gradient, so an element
    whose gradient is within float32 noise of zero (e.g. attention key biases, whose gradient
    is mathematically zero) gets an essentially arbitrary update of up to ~lr in a float32
    program; check_model uses this to tell such elements from real errors."""
    cfg = case["config"]
    model, ema = build(cfg, case["params"], case["ema"], dtype)
    named = dict(model.named_parameters())
    train = trainable_names(cfg, model)
    decay = [named[n] for n in train if named[n].dim() >= 2]
    no_decay = [named[n] for n in train if named[n].dim() < 2]
    opt = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg["lr"], betas=ADAM_BETAS, eps=ADAM_EPS, foreach=False)

    inputs = case["inputs"]
    images = torch.as_tensor(inputs["images"]).to(dtype)
    ids = torch.as_tensor(inputs["tokens"]).long()
    valid = torch.as_tensor(inputs["valid"]) != 0
    out = {"steps": [], "grads": {}, "sensitivity": {n: 0.0 for n in train}}
    for t, step in enumerate(case["steps"]):
        ctx_idx = torch.as_tensor(step["context"]).long()
        tgt_idx = torch.as_tensor(step["target"]).long()
        neg = step.get("negatives")
        neg = torch.as_tensor(neg).long() if neg is not None else None

        opt.zero_grad(set_to_none=True)
        loss, jepa, nce = step_loss(model, ema, cfg, images, ids, valid, ctx_idx, tgt_idx, neg)
        loss.backward()
        for n in train:  # a tensor the loss does not reach still gets an AdamW step (decay)
            if named[n].grad is None:
                named[n].grad = torch.zeros_like(named[n])
        out["steps"].append({"loss": loss.item(), "jepa": jepa.item(), "nce": nce.item()})
        if t == 0:
            out["grads"] = {n: named[n].grad.double().numpy().copy() for n in train}

        if cfg["clip_grad"] > 0:
            norm = math.sqrt(sum(float((named[n].grad.double() ** 2).sum()) for n in train))
            if norm > cfg["clip_grad"]:
                for n in train:
                    named[n].grad.mul_(cfg["clip_grad"] / (norm + 1e-6))
        opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = lr_at(cfg, t)
        opt.param_groups[0]["weight_decay"] = wd_at(cfg, t)
        opt.step()
        for n in train:  # |d update| <= 2 * dg / (sqrt(v_hat) + eps) for a gradient error dg
            state = opt.state[named[n]]
            k = float(state["step"])
            rms = (state["exp_avg_sq"].double() / (1 - ADAM_BETAS[1] ** k)).sqrt()
            gmax = float(named[n].grad.abs().max())
            out["sensitivity"][n] = out["sensitivity"][n] + \
                lr_at(cfg, t) * 2 * gmax / (rms + ADAM_EPS)

        m = ema_momentum_at(cfg, t)
        online = model.state_dict()
        with torch.no_grad():
            for n, e in ema.state_dict().items():
                e.mul_(m).add_((1 - m) * online[n])

    out["params"] = {n: a.double().numpy().copy() for n, a in model.state_dict().items()}
    out["ema"] = {n: a.double().numpy().copy() for n, a in ema.state_dict().items()}
    out["sensitivity"] = {n: np.asarray(v) for n, v in out["sensitivity"].items()}
    return out


# ----------------------------------------------------------------------------------------------
# Exchange file (HDF5) reading
# ----------------------------------------------------------------------------------------------

def _attr(value):
    """h5py attribute -> python scalar/str (C writers give bytes, 1-element arrays, ...)."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size == 1 else value
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode()
    if isinstance(value, str):
        return value.rstrip("\0").strip()
    return value.item() if hasattr(value, "item") else value


def read_config(f):
    missing = [k for k in ("mode",) + INT_KEYS + FLOAT_KEYS if k not in f.attrs]
    if missing:
        raise KeyError("root attributes missing: %s" % ", ".join(missing))
    cfg = {"mode": _attr(f.attrs["mode"])}
    if cfg["mode"] not in ("paper", "scratch", "ijepa"):
        raise ValueError("mode must be paper, scratch or ijepa, got %r" % cfg["mode"])
    # which caption a negative's target path sees (MODEL.md): "own" unless the file says otherwise
    cfg["negative_target"] = _attr(f.attrs["negative_target"]) if "negative_target" in f.attrs \
        else "own"
    cfg["target_text"] = _attr(f.attrs["target_text"]) if "target_text" in f.attrs else "caption"
    if cfg["target_text"] not in ("caption", "none"):
        raise ValueError("target_text must be caption or none, got %r" % cfg["target_text"])
    if cfg["negative_target"] not in ("own", "positive"):
        raise ValueError("negative_target must be own or positive, got %r" % cfg["negative_target"])
    for k in INT_KEYS:
        cfg[k] = int(_attr(f.attrs[k]))
    for k in FLOAT_KEYS:
        cfg[k] = float(_attr(f.attrs[k]))
    if cfg["total_steps"] < 1 or cfg["n_steps"] < 1:
        raise ValueError("total_steps and n_steps must be >= 1")
    return cfg


def read_group(group):
    """{name: numpy array} for the datasets below `group`, names relative with '.' kept."""
    out = {}
    group.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def read_scalar(ds):
    return float(np.asarray(ds[()]).reshape(-1)[0])


def read_case(path):
    """Everything the reference needs from an exchange file, plus the C outputs if present:
    case["c"] = {"steps": [...], "grads", "params", "ema"} (entries missing when absent)."""
    with h5py.File(path, "r") as f:
        def need(name):  # a required dataset or group, named in full when absent
            if name not in f:
                raise KeyError("/%s is missing" % name)
            return f[name]
        cfg = read_config(f)
        case = {"config": cfg, "params": read_group(need("init/params")),
                "ema": read_group(need("init/ema")),
                "inputs": {k: need("inputs/" + k)[()] for k in ("images", "tokens", "valid")},
                "steps": [], "c": {"steps": []}}
        for t in range(cfg["n_steps"]):
            g = "steps/%d/" % t
            step = {"context": need(g + "context")[()], "target": need(g + "target")[()]}
            if nce_enabled(cfg):
                step["negatives"] = need(g + "negatives")[()]
            case["steps"].append(step)
            case["c"]["steps"].append({k: read_scalar(f[g + k]) for k in ("loss", "jepa", "nce")
                                       if g + k in f})
        for key, where in (("grads", "grads"), ("params", "final/params"), ("ema", "final/ema")):
            if where in f:
                case["c"][key] = read_group(f[where])
    return case

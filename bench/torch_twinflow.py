"""PyTorch peer of one TwinFlow training step: the dual-stream MMDiT of BACKBONE.md and the TwinFlow objective of
TWINFLOW.md (e2e/mul/any/adv slices, RCGM target of order N from the EMA teacher, CFG-enhanced target, adversarial
rows on the fake trajectory, rectification, pseudo-Huber metric, time weights), then gradient clipping, AdamW and the
EMA update, written in plain eager PyTorch from those documents. Runs on PyTorch 1.13 (Debian's, CPU) and 2.x (CUDA).

Parameters are named and laid out as this project's checkpoints (safetensors, dotted pytree paths, Linear weights
stored [in, out] so y = x @ w + b), so the step can start from the same weights as ours.

    python3 bench/torch_twinflow.py check --fixture DIR --out DIR
        DIR holds fixture.json, params.safetensors, ema.safetensors and step<i>.safetensors (the batch and every
        random draw of step i) as written by bench/twinflow-step.ts; runs the steps and writes result.json (loss
        and terms per step), params.safetensors and ema.safetensors after the last step.
    python3 bench/torch_twinflow.py time [--small] [--device cuda|cpu] [--precision f32|bf16]
        times one step (median ms, as bench/torch_peer.py measures; bench/torch_peer.py has it as a bench row).
"""
import argparse
import json
import math
import struct

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- safetensors without the package (PyTorch 1.13)

_CODES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I32": np.int32, "U32": np.uint32, "BOOL": np.bool_}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        if e["dtype"] == "BF16":  # bf16 is the top half of an f32
            bits = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=_CODES[e["dtype"]])
        out[name] = arr.reshape(e["shape"]).copy()
    return out


def write_safetensors(path, arrays):
    codes = {np.dtype(v): k for k, v in _CODES.items()}
    header, chunks, at = {}, [], 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        b = arr.tobytes()
        header[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape), "data_offsets": [at, at + len(b)]}
        chunks.append(b)
        at += len(b)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


# ---------------------------------------------------------------- the MMDiT (BACKBONE.md)

# mmdit-small on 32x32 MNIST in 4x4 patches; mmdit-tiny's sizes with the same data layout
CONFIGS = {
    "mmdit-small": dict(dim=256, layers=6, heads=4, head_dim=64, rope_axes=(16, 24, 24), text_dim=256),
    "mmdit-tiny": dict(dim=64, layers=2, heads=4, head_dim=16, rope_axes=(4, 6, 6), text_dim=64),
}
COMMON = dict(rope_theta=10000.0, channels=1, patch=4, size=32, time_channels=256, vocab=16, prompt_len=4)


def model_config(name):
    return dict(CONFIGS[name], **COMMON)


def param_shapes(cfg):
    """Every parameter's name and shape, named as this project's checkpoints name them."""
    D, tok, tc = cfg["dim"], cfg["patch"] ** 2 * cfg["channels"], cfg["time_channels"]
    shapes = {}

    def lin(name, i, o):
        shapes[name + ".w"], shapes[name + ".b"] = (i, o), (o,)

    lin("net.imgIn", tok, D)
    shapes["net.txtNorm.weight"] = (cfg["text_dim"],)
    lin("net.txtIn", cfg["text_dim"], D)
    for e in ("t", "r"):
        lin(f"net.time.{e}.l1", tc, D)
        lin(f"net.time.{e}.l2", D, D)
    for i in range(cfg["layers"]):
        for s in ("img", "txt"):
            b = f"net.blocks.{i}.{s}"
            lin(b + ".mod", D, 6 * D)
            for n in ("q", "k", "v"):
                lin(f"{b}.{n}", D, D)
            shapes[b + ".normQ.weight"] = shapes[b + ".normK.weight"] = (cfg["head_dim"],)
            lin(b + ".out", D, D)
            lin(b + ".mlp.fc1", D, 4 * D)
            lin(b + ".mlp.fc2", 4 * D, D)
    lin("net.normOut.mod", D, 2 * D)
    lin("net.projOut", D, tok)
    shapes["prompt.table"] = (cfg["vocab"], cfg["text_dim"])
    return shapes


def init_params(cfg, device, gen):
    """Glorot-uniform weights, zero biases, unit norm weights, N(0, 0.02^2) prompt table; modulation and output
    projections start at zero (DiT style), as the spec's small configs do."""
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith(".b") or ".mod." in name or name.startswith("net.projOut"):
            t = torch.zeros(shape)
        elif name.endswith("weight"):
            t = torch.ones(shape)
        elif name == "prompt.table":
            t = torch.randn(shape, generator=gen) * 0.02
        else:
            a = math.sqrt(6 / (shape[0] + shape[1]))
            t = (torch.rand(shape, generator=gen) * 2 - 1) * a
        params[name] = t.to(device)
    return params


def linear(p, name, x):
    return x @ p[name + ".w"] + p[name + ".b"]


def rms_norm(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, eps=1e-6):
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def time_features(t, channels):
    """Sinusoidal features of 1000 t: cos half first, frequencies exp(-ln(10000) i / half). t stays in its own
    (f32/f64) precision: under autocast only the embedder's matmuls drop to bf16."""
    half = channels // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half).to(t.device, t.dtype)
    args = (t * 1000).reshape(-1, 1) * freqs.reshape(1, -1)
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


def time_embed(p, name, t, channels):
    return linear(p, name + ".l2", F.silu(linear(p, name + ".l1", time_features(t, channels))))


def rope_angles(positions, axes, theta, dtype, device):
    """[S, Dh/2] angles: the frame axis' pairs first, then row, then column; axis of size d: theta^(-2j/d)."""
    freqs = [(a, theta ** (-2 * j / d)) for a, d in enumerate(axes) for j in range(d // 2)]
    ang = np.array([[pos[a] * f for a, f in freqs] for pos in positions], dtype=np.float64)
    return torch.from_numpy(ang).to(device, dtype)


def positions(h, w, text_len):
    r0, c0 = -(h - h // 2), -(w - w // 2)
    img = [(0, r0 + i // w, c0 + i % w) for i in range(h * w)]
    start = max(h // 2, w // 2)
    txt = [(start + k,) * 3 for k in range(text_len)]
    return txt, img


def apply_rope(x, angles):
    """Rotates adjacent pairs (x[2i], x[2i+1]) of [B, S, H, Dh] by angles [S, Dh/2], in the angles' precision."""
    dt = x.dtype
    x = x.to(angles.dtype).reshape(*x.shape[:-1], -1, 2)
    c, s = torch.cos(angles)[:, None, :], torch.sin(angles)[:, None, :]
    x0, x1 = x[..., 0], x[..., 1]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).flatten(-2).to(dt)


def attention(q, k, v, key_mask):
    """q, k, v [B, H, S, Dh]; key_mask [B, S] (True = attend); scale 1/sqrt(Dh), not causal."""
    mask = key_mask[:, None, None, :]
    if hasattr(F, "scaled_dot_product_attention"):  # PyTorch >= 2.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    s = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(q.shape[-1]))
    return torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ v


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


def mmdit(p, cfg, x, t, r, ids, mask):
    """F(x_t, t, r | prompt): x [B, C, H, W], t and r [B] (signed), prompt ids [B, L] with mask [B, L]."""
    B, C, H, W = x.shape
    P, heads, dh = cfg["patch"], cfg["heads"], cfg["head_dim"]
    h, w, L = H // P, W // P, ids.shape[1]
    temb = time_embed(p, "net.time.t", t, cfg["time_channels"]) + time_embed(p, "net.time.r", r, cfg["time_channels"]) * (t - r)[:, None]
    act = F.silu(temb)
    pos_txt, pos_img = positions(h, w, L)
    adt = torch.float64 if x.dtype == torch.float64 else torch.float32
    ang_txt = rope_angles(pos_txt, cfg["rope_axes"], cfg["rope_theta"], adt, x.device)
    ang_img = rope_angles(pos_img, cfg["rope_axes"], cfg["rope_theta"], adt, x.device)
    key_mask = torch.cat([mask, torch.ones(B, h * w, dtype=torch.bool, device=x.device)], 1)
    patches = x.reshape(B, C, h, P, w, P).permute(0, 2, 4, 1, 3, 5).reshape(B, h * w, C * P * P)
    img = linear(p, "net.imgIn", patches)
    txt = linear(p, "net.txtIn", rms_norm(p["prompt.table"][ids], p["net.txtNorm.weight"]))

    def qkv(b, y, ang):
        split = lambda z: z.reshape(B, z.shape[1], heads, dh)  # noqa: E731
        q = rms_norm(split(linear(p, b + ".q", y)), p[b + ".normQ.weight"])
        k = rms_norm(split(linear(p, b + ".k", y)), p[b + ".normK.weight"])
        return apply_rope(q, ang), apply_rope(k, ang), split(linear(p, b + ".v", y))

    for i in range(cfg["layers"]):
        bi, bt = f"net.blocks.{i}.img", f"net.blocks.{i}.txt"
        mi = linear(p, bi + ".mod", act).chunk(6, -1)  # shift1, scale1, gate1, shift2, scale2, gate2
        mt = linear(p, bt + ".mod", act).chunk(6, -1)
        qi, ki, vi = qkv(bi, modulate(layer_norm(img), mi[0], mi[1]), ang_img)
        qt, kt, vt = qkv(bt, modulate(layer_norm(txt), mt[0], mt[1]), ang_txt)
        heads_first = lambda a, b: torch.cat([a, b], 1).transpose(1, 2)  # noqa: E731  [text ; image]
        o = attention(heads_first(qt, qi), heads_first(kt, ki), heads_first(vt, vi), key_mask)
        o = o.transpose(1, 2).reshape(B, L + h * w, heads * dh)
        img = img + mi[2][:, None] * linear(p, bi + ".out", o[:, L:])
        txt = txt + mt[2][:, None] * linear(p, bt + ".out", o[:, :L])
        mlp = lambda b, y, m: linear(p, b + ".mlp.fc2", F.gelu(linear(p, b + ".mlp.fc1", modulate(layer_norm(y), m[3], m[4])), approximate="tanh"))  # noqa: E731
        txt, img = txt + mt[5][:, None] * mlp(bt, txt, mt), img + mi[5][:, None] * mlp(bi, img, mi)
    scale, shift = linear(p, "net.normOut.mod", act).chunk(2, -1)  # scale first
    out = linear(p, "net.projOut", modulate(layer_norm(img), shift, scale))
    return out.reshape(B, h, w, C, P, P).permute(0, 3, 1, 4, 2, 5).reshape(B, C, H, W)


# ---------------------------------------------------------------- the TwinFlow objective (TWINFLOW.md)

SLICES = ("e2e", "mul", "any", "adv")


def slice_rows(batch, props):
    """Contiguous row ranges; boundaries are rounded cumulative proportions."""
    total, cum, lo, out = sum(props[k] for k in SLICES), 0.0, 0, {}
    for k in SLICES:
        cum += props[k]
        hi = int(math.floor(batch * cum / total + 0.5))
        out[k] = (lo, hi)
        lo = hi
    return out


def per_sample(pred, target, cfg):
    mse = (pred - target).pow(2).flatten(1).mean(1)
    if cfg["metric"] == "mse":
        return mse
    c = cfg["huberC"]
    return mse * torch.rsqrt(mse / (c * c) + 1).detach() / c


def twinflow_loss(net, params, ema, batch, d, cfg):
    """The loss and its terms. batch: x, ids, mask, null_ids, null_mask; d: z, zFake, zRect, t, u, tRect, drop
    (one value per row; each slice uses its own rows' draws). Teachers and x_fake carry no gradient."""
    x = batch["x"]
    B = x.shape[0]
    at = slice_rows(B, cfg["slices"])
    n = {k: at[k][1] - at[k][0] for k in SLICES}
    rows = lambda a, s: a[at[s][0]:at[s][1]]  # noqa: E731
    col = lambda v: v.reshape(-1, *([1] * (x.dim() - 1)))  # noqa: E731
    real = at["any"][1]
    drop = d["drop"]
    ids = torch.where(drop[:, None], batch["null_ids"], batch["ids"])
    mask = torch.where(drop[:, None], batch["null_mask"], batch["mask"])
    teacher = ema if cfg["teacher"] == "ema" else params

    def frozen(p, xx, t, r, i, m):
        with torch.no_grad():
            return net(p, xx, t, r, i, m)

    ts, rs = [], []
    if n["e2e"]:
        ts.append(torch.ones(n["e2e"], dtype=x.dtype, device=x.device))
        rs.append(torch.zeros(n["e2e"], dtype=x.dtype, device=x.device))
    if n["mul"]:
        t = rows(d["t"], "mul")
        ts.append(t)
        rs.append(t - rows(d["u"], "mul") * t * cfg["mulGap"])
    if n["any"]:
        t = rows(d["t"], "any")
        ts.append(t)
        rs.append(rows(d["u"], "any") * t)
    t_real, r_real = torch.cat(ts), torch.cat(rs)
    x_real, z_real = x[:real], d["z"][:real]
    xt = col(t_real) * z_real + col(1 - t_real) * x_real
    t_all, r_all = t_real, r_real
    if n["adv"]:  # the fake trajectory at negative time, from x_fake = z0 - F(z0, 1, 0)
        z0, za, ta = rows(d["zFake"], "adv"), rows(d["z"], "adv"), rows(d["t"], "adv")
        ia, ma = rows(ids, "adv"), rows(mask, "adv")
        one = torch.ones_like(ta)
        x_fake = z0 - frozen(params, z0, one, one * 0, ia, ma)
        xt = torch.cat([xt, col(ta) * za + col(1 - ta) * x_fake])
        t_all, r_all = torch.cat([t_real, -ta]), torch.cat([r_real, -ta])
    Fp = net(params, xt, t_all, r_all, ids, mask)

    v = z_real - x_real
    g0, g1 = at["mul"][0], at["any"][1]
    if cfg["cfgRatio"] > 0 and g1 > g0:  # CFG-enhanced velocity on mul/any rows with 0 < t < 1
        xg, tg = xt[g0:g1], t_real[g0:g1]
        gap = frozen(teacher, xg, tg, tg, ids[g0:g1], mask[g0:g1]) - frozen(teacher, xg, tg, tg, batch["null_ids"][g0:g1], batch["null_mask"][g0:g1])
        inside = col((tg > 0) & (tg < 1))
        v = torch.cat([v[:g0], v[g0:g1] + torch.where(inside, gap * cfg["cfgRatio"], torch.zeros_like(gap)), v[g1:]])
    f_real = Fp[:real].detach()
    if cfg["target"] == "rcgm":
        N, dt = cfg["order"], cfg["dt"]
        ir, mr = ids[:real], mask[:real]
        tm = torch.maximum(t_real - dt, r_real)
        y, disp = xt[:real] - dt * v, 0
        for i in range(N):
            tc, tn = tm + (r_real - tm) * (i / N), tm + (r_real - tm) * ((i + 1) / N)
            step = col(tc - tn) * frozen(teacher, y, tc, tn, ir, mr)
            y, disp = y - step, disp + step
        near = col((t_real - r_real) < dt)
        R = torch.where(near, f_real - v, (col(t_real - r_real) * f_real - disp) / dt - v)
        target = f_real - R.clamp(-1, 1)
    else:
        target = v
    if n["adv"]:
        target = torch.cat([target, za - x_fake])

    if cfg["timeWeight"]:
        w_real = torch.tan((1 - (t_real.abs() - r_real.abs())) * (math.pi / 2.5)) + 1
    else:
        w_real = torch.ones_like(t_real)
    weights = torch.cat([w_real, torch.ones(n["adv"], dtype=x.dtype, device=x.device)])
    weighted = per_sample(Fp, target, cfg) * weights
    terms = {k: rows(weighted, k).mean() for k in SLICES if n[k] > 0}
    loss = weighted.mean()
    if cfg["rectify"] > 0 and n["e2e"]:
        f_fake = rows(Fp, "e2e")
        x_fake = (rows(d["z"], "e2e") - f_fake).detach()
        t2, ie, me = rows(d["tRect"], "e2e"), rows(ids, "e2e"), rows(mask, "e2e")
        x2 = col(t2) * rows(d["zRect"], "e2e") + col(1 - t2) * x_fake
        delta = (frozen(params, x2, -t2, -t2, ie, me) - frozen(params, x2, t2, t2, ie, me)).clamp(-1, 1)
        terms["rectify"] = per_sample(f_fake, (f_fake - delta).detach(), cfg).mean()
        loss = loss + cfg["rectify"] * terms["rectify"]
    return loss, terms


# ---------------------------------------------------------------- the step: grad, clip, AdamW, EMA


class Trainer:
    """params (dict name -> leaf tensor) train with AdamW; ema follows with warm-up decay min(d, k/(k+1))."""

    def __init__(self, net, params, ema, cfg, opt, precision="f32"):
        self.net, self.cfg, self.opt_cfg, self.precision = net, cfg, opt, precision
        self.params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        self.ema = {k: v.clone() for k, v in ema.items()}
        self.names = list(self.params)
        self.opt = torch.optim.AdamW([self.params[k] for k in self.names], lr=opt["lr"], betas=tuple(opt["betas"]), eps=opt["eps"], weight_decay=opt["weightDecay"])
        self.steps = 0

    def step(self, batch, draws):
        self.opt.zero_grad(set_to_none=True)
        dev = batch["x"].device.type
        if self.precision == "bf16":  # bf16 activations and matmul inputs; f32 master weights, optimizer and loss
            with torch.autocast(device_type=dev, dtype=torch.bfloat16):
                loss, terms = twinflow_loss(self.net, self.params, self.ema, batch, draws, self.cfg)
        else:
            loss, terms = twinflow_loss(self.net, self.params, self.ema, batch, draws, self.cfg)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([self.params[k] for k in self.names], self.opt_cfg["clip"])
        self.opt.step()
        k = self.steps
        decay = min(self.opt_cfg["emaDecay"], k / (k + 1))
        with torch.no_grad():
            e, p = [self.ema[n] for n in self.names], [self.params[n] for n in self.names]
            torch._foreach_mul_(e, decay)
            torch._foreach_add_(e, p, alpha=1 - decay)
        self.steps += 1
        return loss, terms


# ---------------------------------------------------------------- entry points


def check(args):
    """Runs the fixture's steps from its weights and draws; writes what ours is compared against."""
    with open(f"{args.fixture}/fixture.json") as f:
        fx = json.load(f)
    dtype = {"f64": torch.float64, "f32": torch.float32}[fx["dtype"]]
    torch.set_num_threads(1)
    cfg = dict(model_config(fx["model"]), **fx.get("modelOverrides", {}))
    net = lambda p, x, t, r, i, m: mmdit(p, cfg, x, t, r, i, m)  # noqa: E731
    load = lambda name: {k: torch.from_numpy(v).to(dtype) for k, v in read_safetensors(f"{args.fixture}/{name}").items()}  # noqa: E731
    params, ema = load("params.safetensors"), load("ema.safetensors")
    missing = set(param_shapes(cfg)) ^ set(params)
    if missing:
        raise SystemExit(f"fixture params differ from the spec's names: {sorted(missing)[:5]}")
    tr = Trainer(net, params, ema, fx["objective"], fx["optimizer"])
    out = {"loss": [], "terms": []}
    for i in range(fx["steps"]):
        s = read_safetensors(f"{args.fixture}/step{i}.safetensors")
        fl = lambda k: torch.from_numpy(s[k]).to(dtype)  # noqa: E731
        lng = lambda k: torch.from_numpy(s[k]).long()  # noqa: E731
        bo = lambda k: torch.from_numpy(s[k]).bool()  # noqa: E731
        batch = {"x": fl("x"), "ids": lng("ids"), "mask": bo("mask"), "null_ids": lng("nullIds"), "null_mask": bo("nullMask")}
        draws = {k: fl(k) for k in ("z", "zFake", "zRect", "t", "u", "tRect")}
        draws["drop"] = bo("drop")
        loss, terms = tr.step(batch, draws)
        out["loss"].append(loss.item())
        out["terms"].append({k: v.item() for k, v in terms.items()})
    np_of = lambda d: {k: v.detach().numpy() for k, v in d.items()}  # noqa: E731
    write_safetensors(f"{args.out}/params.safetensors", np_of(tr.params))
    write_safetensors(f"{args.out}/ema.safetensors", np_of(tr.ema))
    out["torch"] = torch.__version__
    with open(f"{args.out}/result.json", "w") as f:
        json.dump(out, f)


# the MNIST recipe of TWINFLOW.md's run: lambda 1/2, CFG ratio 0.5, 10% prompt dropout, EMA 0.99
RECIPE = dict(slices=dict(e2e=1, mul=1, any=1, adv=1), target="rcgm", order=2, dt=0.01, mulGap=0.05, cfgRatio=0.5, condDrop=0.1,
              metric="pseudoHuber", huberC=1e-3, timeWeight=True, rectify=0.5, teacher="ema")
OPTIMIZER = dict(lr=2e-4, betas=(0.9, 0.99), eps=1e-8, weightDecay=0.0, clip=1.0, emaDecay=0.99)


def timed_step(model, batch_size, device, precision):
    """A closure running one training step on random data and draws (fresh each step, as training makes them)."""
    cfg = model_config(model)
    gen = torch.Generator().manual_seed(0)
    params = init_params(cfg, device, gen)
    tr = Trainer(lambda p, x, t, r, i, m: mmdit(p, cfg, x, t, r, i, m), params, params, RECIPE, OPTIMIZER, precision)
    B, S, L = batch_size, cfg["size"], cfg["prompt_len"]
    ids = torch.randint(1, cfg["vocab"], (B, L), device=device)
    batch = {"x": torch.rand(B, 1, S, S, device=device), "ids": ids, "mask": ids > 0,
             "null_ids": torch.zeros_like(ids), "null_mask": torch.zeros(B, L, dtype=torch.bool, device=device)}

    def run():
        draws = {k: torch.randn(B, 1, S, S, device=device) for k in ("z", "zFake", "zRect")}
        draws.update({k: torch.rand(B, device=device) for k in ("t", "u", "tRect")})
        draws["drop"] = torch.rand(B, device=device) < RECIPE["condDrop"]
        return tr.step(batch, draws)[0]

    return run


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--fixture", required=True)
    c.add_argument("--out", required=True)
    t = sub.add_parser("time")
    t.add_argument("--small", action="store_true", help="mmdit-tiny, batch 8")
    t.add_argument("--device", default="cuda")
    t.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    args = p.parse_args()
    if args.cmd == "check":
        check(args)
        return
    run = timed_step("mmdit-tiny" if args.small else "mmdit-small", 8 if args.small else 128, torch.device(args.device), args.precision)
    if args.device == "cuda":
        from torch_peer import measure
        print(f"{measure(run):.3f} ms per step")
    else:
        import time
        run()
        t0 = time.perf_counter()
        for _ in range(3):
            run()
        print(f"{(time.perf_counter() - t0) / 3 * 1e3:.1f} ms per step (cpu, wall clock)")


if __name__ == "__main__":
    main()

"""PyTorch peer for bench/cuda.ts: the same workloads and shapes, timed the same way (CUDA events around
back-to-back iterations after warm-up, median of repetitions). Eager PyTorch, cuBLAS for matmuls.

    python3 bench/torch_peer.py [--json] [--only matmul,softmax] [--small]

With --json the last line of stdout is {"device": ..., "rows": {row name: ms per iteration}}; the row names
match bench/cuda.ts.
"""
import argparse
import json
import math
import statistics

import torch

SIZES = {
    "full": dict(N=4096, E=2**28, R=16384, C=4096, B=8192, D=1024, H=4096),
    "small": dict(N=128, E=2**12, R=8, C=256, B=64, D=32, H=64),
}


def measure(run, rep_ms=150.0):
    """Median ms per iteration over 5 timed repetitions (one untimed), as bench/cuda.ts measures."""
    run()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    run()
    b.record()
    b.synchronize()
    once = a.elapsed_time(b)
    iters = max(1, min(200, round(rep_ms / max(once, 0.005))))
    times = []
    for r in range(6):
        a.record()
        for _ in range(iters):
            run()
        b.record()
        b.synchronize()
        if r > 0:
            times.append(a.elapsed_time(b) / iters)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--json", action="store_true")
    p.add_argument("--only")
    p.add_argument("--small", action="store_true")
    args = p.parse_args()
    only = args.only.split(",") if args.only else None
    s = SIZES["small" if args.small else "full"]
    N, E, R, C, B, D, H = (s[k] for k in "NERCBDH")
    dev = torch.device("cuda")
    torch.manual_seed(0)
    rows = {}

    def want(name):
        return only is None or any(o.lower() in name.lower() for o in only)

    def row(name, fn):
        if not want(name):
            return
        try:
            rows[name] = fn()
            if not args.json:
                print(f"{name:28s} {rows[name]:.3f} ms")
        except Exception as e:  # a failing row is reported, the others still run
            print(f"{name}: error: {e}")

    def matmul(dtype, tf32):
        def fn():
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            try:
                a = torch.rand(N, N, device=dev, dtype=dtype) * 2 - 1
                b = torch.rand(N, N, device=dev, dtype=dtype) * 2 - 1
                return measure(lambda: a @ b)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False

        return fn

    row("matmul f32 (TF32 off)", matmul(torch.float32, False))
    row("matmul tf32", matmul(torch.float32, True))
    row("matmul bf16", matmul(torch.bfloat16, False))

    def chain():
        x = torch.rand(E, device=dev) * 4 - 2
        return measure(lambda: torch.tanh(x * 1.5 + 0.5) * x)

    row("elementwise 4-op chain", chain)

    def softmax():
        x = torch.randn(R, C, device=dev)
        return measure(lambda: torch.softmax(x, dim=-1))

    row("softmax rows", softmax)

    def layernorm():
        x = torch.randn(R, C, device=dev)
        w, b = torch.randn(C, device=dev), torch.randn(C, device=dev)
        return measure(lambda: torch.nn.functional.layer_norm(x, (C,), w, b, 1e-5))

    row("layerNorm", layernorm)

    def mlp():
        x, y = torch.randn(B, D, device=dev), torch.randn(B, D, device=dev)
        w1 = (torch.randn(D, H, device=dev) / math.sqrt(D)).requires_grad_()
        b1 = torch.zeros(H, device=dev, requires_grad=True)
        w2 = (torch.randn(H, D, device=dev) / math.sqrt(H)).requires_grad_()
        params = [w1, b1, w2]

        def step():
            loss = ((torch.nn.functional.gelu(x @ w1 + b1, approximate="tanh") @ w2 - y) ** 2).mean()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for q, g in zip(params, grads):
                    q.sub_(g, alpha=0.01)
            return loss

        return measure(step)

    row("MLP train step", mlp)

    name = torch.cuda.get_device_name(0)
    if args.json:
        print(json.dumps({"device": f"PyTorch {torch.__version__}, {name}", "rows": rows}))


if __name__ == "__main__":
    main()

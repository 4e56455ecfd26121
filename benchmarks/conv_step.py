"""Convolutional train steps (issue 15), called by train_step.py for ``--networks cnn lenet``.

Two networks, float32, plain SGD (lr 0.01), softmax cross-entropy:

    cnn    the digits CNN of examples/cnn_digits.py, batch 32: 1x8x8 -> conv 3x3x16 (padding 1) -> ReLU
           -> max-pool 2 -> conv 3x3x32 (padding 1) -> ReLU -> max-pool 2 -> dense 128-64 ReLU -> dense 64-10
    lenet  LeNet-5 size, batch 64: 1x28x28 -> conv 5x5x6 -> ReLU -> max-pool 2 -> conv 5x5x16 -> ReLU
           -> max-pool 2 -> dense 256-120 ReLU -> dense 120-84 ReLU -> dense 84-10

Contenders, from the same initial weights (He normal, drawn in float64, cast to float32) and the
same batch: the symgraph step (``codegen.compile`` of ``sg.conv2d``/``sg.max_pool2d`` graphs with
``sg.optim.SGD``), PyTorch eager (``F.conv2d``, ``F.max_pool2d``, autograd, ``torch._foreach_add_``),
JAX jit (``jax.lax.conv_general_dilated``, ``jax.lax.reduce_window``, value_and_grad, donated
parameters), and "conv GEMMs": only the matrix products the symgraph conv helpers make (forward,
weight gradient and input gradient of each conv layer, same shapes and layouts, preallocated
outputs) -- the BLAS floor of the convolutions.

First the 5-step trajectories are compared (losses and parameters, relative 2e-4, reference
PyTorch), then the contenders are timed interleaved (train_step.time_interleaved), then one
instrumented run of the symgraph step times each conv and pooling helper call (the time split).
"""

from __future__ import annotations

import collections
import re
import statistics
from itertools import repeat
from time import perf_counter

import numpy as np

import codegen
import symgraph as sg

NETWORKS = {
    "cnn": {"input": (1, 8, 8), "convs": [(16, 3, 1), (32, 3, 1)], "dense": [64, 10], "batch": 32,
            "label": "digits CNN 1x8x8, conv3x3x16-pool-conv3x3x32-pool-64-10, batch 32"},
    "lenet": {"input": (1, 28, 28), "convs": [(6, 5, 0), (16, 5, 0)], "dense": [120, 84, 10], "batch": 64,
              "label": "LeNet 1x28x28, conv5x5x6-pool-conv5x5x16-pool-120-84-10, batch 64"},
}
LR = 0.01
SEED = 20240615
TOLERANCE = 2e-4
CHECK_STEPS = 5
KEYS = ["gen", "torch", "jax", "gemm"]
LABELS = {"gen": "symgraph", "torch": "PyTorch eager", "jax": "JAX jit", "gemm": "conv GEMMs"}
TARGETS = {"torch": 1.0, "jax": 1.5}  # symgraph's median ÷ theirs
CONV_HELPERS = ("_conv_columns", "_conv2d_from_columns", "_conv_transpose2d", "_conv2d_weight_grad_from_columns",
                "_conv2d", "_conv2d_weight_grad")
POOL_HELPERS = ("_max_pool2d", "_max_pool2d_grad")
HELPERS = CONV_HELPERS + POOL_HELPERS


def layer_shapes(name):
    """[(C, H, W, O, k, padding, H', W')] of each conv layer (before its 2x2 pool), and the flattened width."""
    spec = NETWORKS[name]
    c, h, w = spec["input"]
    out = []
    for o, k, p in spec["convs"]:
        ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
        out.append((c, h, w, o, k, p, ho, wo))
        c, h, w = o, ho // 2, wo // 2
    return out, c * h * w


def make_problem(name):
    """Initial weights (float32) [K1, c1, K2, c2, W1, b1, ...], a batch x (N×C×H×W float32) and labels."""
    spec = NETWORKS[name]
    rng = np.random.default_rng([SEED, list(NETWORKS).index(name)])
    convs, flat = layer_shapes(name)
    weights = []
    for c, _, _, o, k, _, _, _ in convs:
        weights.append(rng.standard_normal((o, c, k, k)) * np.sqrt(2.0 / (c * k * k)))
        weights.append(0.1 * rng.standard_normal(o))
    sizes = [flat] + spec["dense"]
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        weights.append(rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in))
        weights.append(0.1 * rng.standard_normal(fan_out))
    x = rng.standard_normal((spec["batch"], *spec["input"]))
    labels = rng.integers(0, 10, size=spec["batch"]).astype(np.int64)
    return [w.astype(np.float32) for w in weights], x.astype(np.float32), labels


# -- contenders ------------------------------------------------------------------------------------

class Contender:
    def __init__(self, key, loop, one=None, reset=None, params=None, note=""):
        self.key, self.label = key, LABELS[key]
        self.loop, self.one, self.reset, self.params, self.note = loop, one, reset, params, note


def _loop_of(call, *args):
    def loop(n):
        fn = call
        t0 = perf_counter()
        for _ in repeat(None, n):
            fn(*args)
        return perf_counter() - t0

    return loop


def symgraph_step(name, init):
    """(compiled step, parameter leaves)."""
    spec = NETWORKS[name]
    convs, _ = layer_shapes(name)
    with sg.fresh_graph():
        x = sg.placeholder("x", shape=("batch", *spec["input"]), dtype="float32")
        y = sg.placeholder("y", shape=("batch",), dtype="int64")
        params = [sg.parameter(f"p{i}", value=v.copy(), dtype="float32") for i, v in enumerate(init)]
        h = x
        for i, (_, _, _, _, _, p, _, _) in enumerate(convs):
            K, c = params[2 * i], params[2 * i + 1]
            h = sg.conv2d(h, K, padding=p, bias=c)
            h = sg.max_pool2d(sg.relu(h), 2)
        h = sg.flatten(h)
        dense = params[2 * len(convs):]
        for j in range(len(dense) // 2):
            h = h @ dense[2 * j] + dense[2 * j + 1]
            if 2 * j + 2 < len(dense):
                h = sg.relu(h)
        loss = sg.softmax_cross_entropy(h, y).named("loss")
        f = codegen.compile([x, y], loss, updates=sg.optim.SGD(LR).updates(loss), name=f"{name}_train_step")
    return f, params


def gen_contender(name, x, labels, init):
    f, params = symgraph_step(name, init)

    def reset():
        for p, v in zip(params, init):
            np.copyto(p.value, v)

    c = Contender("gen", _loop_of(f, x, labels), lambda: float(f(x, labels)), reset,
                  lambda: [p.value.copy() for p in params])
    c.f = f
    return c


def torch_contender(name, x, labels, init, threads):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    convs, _ = layer_shapes(name)
    tparams = [torch.tensor(v, requires_grad=True) for v in init]
    conv_params = [(tparams[2 * i], tparams[2 * i + 1], convs[i][5]) for i in range(len(convs))]
    dense = tparams[2 * len(convs):]
    dense_pairs = list(zip(dense[0::2], dense[1::2]))
    xt, yt = torch.from_numpy(x), torch.from_numpy(labels)
    no_grad, foreach_add_, addmm = torch.no_grad, torch._foreach_add_, torch.addmm

    def step():
        h = xt
        for K, c, p in conv_params:
            h = F.max_pool2d(torch.relu(F.conv2d(h, K, c, padding=p)), 2)
        h = h.flatten(1)
        for W, b in dense_pairs[:-1]:
            h = torch.relu(addmm(b, h, W))
        W, b = dense_pairs[-1]
        loss = F.cross_entropy(addmm(b, h, W), yt)
        loss.backward()
        with no_grad():
            foreach_add_(tparams, [p.grad for p in tparams], alpha=-LR)
        for p in tparams:
            p.grad = None
        return loss

    def reset():
        with torch.no_grad():
            for p, v in zip(tparams, init):
                p.copy_(torch.from_numpy(v))

    return Contender("torch", _loop_of(step), lambda: float(step().item()), reset,
                     lambda: [p.detach().numpy().copy() for p in tparams],
                     note=f"torch {torch.__version__}, {threads} thread(s)")


def jax_contender(name, x, labels, init):
    import jax
    import jax.numpy as jnp

    convs, _ = layer_shapes(name)
    n_conv = len(convs)
    pads = [c[5] for c in convs]

    def loss_fn(params, x, y):
        h = x
        for i in range(n_conv):
            p = pads[i]
            h = jax.lax.conv_general_dilated(h, params[2 * i], (1, 1), [(p, p), (p, p)],
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
            h = jax.nn.relu(h + params[2 * i + 1][:, None, None])
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        h = h.reshape((h.shape[0], -1))
        dense = params[2 * n_conv:]
        for j in range(len(dense) // 2):
            h = h @ dense[2 * j] + dense[2 * j + 1]
            if 2 * j + 2 < len(dense):
                h = jax.nn.relu(h)
        picked = jnp.take_along_axis(h, y[:, None], axis=1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(h, axis=1) - picked)

    def step(params, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return [p - LR * g for p, g in zip(params, grads)], loss

    jstep = jax.jit(step, donate_argnums=(0,))
    xj, yj = jnp.array(x), jnp.array(labels)
    block = jax.block_until_ready
    box = {}

    def reset():
        box["p"] = [jnp.array(v) for v in init]

    reset()
    t0 = perf_counter()
    block(jstep(box["p"], xj, yj))
    compile_seconds = perf_counter() - t0
    reset()

    def loop(n):
        call, p = jstep, box["p"]
        t0 = perf_counter()
        for _ in repeat(None, n):
            p, loss = call(p, xj, yj)
            block((p, loss))
        box["p"] = p
        return perf_counter() - t0

    def one():
        box["p"], loss = jstep(box["p"], xj, yj)
        block((box["p"], loss))
        return float(loss)

    c = Contender("jax", loop, one, reset, lambda: [np.array(a) for a in box["p"]], note=f"jax {jax.__version__}")
    c.compile_seconds = compile_seconds
    return c


def conv_gemms(name, f):
    """The matrix products the symgraph conv helpers make in one step, as (description, operands, out),
    in their shapes and layouts (symgraph/kernels.py), each layer's columns in the layout the generated
    step chose (``_conv_columns(..., layout=...)``, codegen/conv_columns.py). Forward: "flat", one product
    per image W (O, C·k·k) @ cols (C·k·k, L) with L = (H'-1)·Wp + W' (the flattened padded rows); "batch",
    one product W @ cols (C·k·k, H'·W'·N). Weight gradient: "flat", one product per image g (O, L) @
    cols.T; "batch", cols @ g.T (H'·W'·N, O). Input gradient, where the step computes it (not for the
    input images; stride 1): one product per kernel row, W (k·C, O·k) @ g's columns along the width
    (O·k, H'·Wp·N) with Wp = H' + k - 1."""
    spec = NETWORKS[name]
    convs, _ = layer_shapes(name)
    n = spec["batch"]
    layouts = re.findall(r"= _conv_columns\(.*layout='(\w+)'", f.source)
    assert len(layouts) == len(convs), f"expected one _conv_columns line per conv layer, found {layouts}"
    input_grads = f.source.count("= _conv_transpose2d(")
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    products = []
    for i, ((c, h, w, o, k, p, ho, wo), layout) in enumerate(zip(convs, layouts)):
        ckk, run, m = c * k * k, (ho - 1) * (w + 2 * p) + wo, ho * wo
        weight = rand(o, ckk)
        if layout == "flat":
            products.append((f"conv{i + 1} forward", weight, rand(n, ckk, run), np.empty((n, o, run), np.float32)))
            products.append((f"conv{i + 1} weight grad", rand(n, o, run), rand(n, ckk, run).transpose(0, 2, 1),
                             np.empty((n, o, ckk), np.float32)))
        else:
            products.append((f"conv{i + 1} forward", weight, rand(ckk, m * n), np.empty((o, m * n), np.float32)))
            products.append((f"conv{i + 1} weight grad", rand(ckk, m * n), rand(o, m * n).T,
                             np.empty((ckk, o), np.float32)))
        if i >= len(convs) - input_grads:
            wp = wo + k - 1
            products.append((f"conv{i + 1} input grad", rand(k * c, o * k), rand(o * k, ho * wp * n),
                             np.empty((k * c, ho * wp * n), np.float32)))
    return products


def gemm_contender(name, f):
    products = [(a, b, out) for _, a, b, out in conv_gemms(name, f)]
    matmul = np.matmul

    def loop(n):
        t0 = perf_counter()
        for _ in repeat(None, n):
            for a, b, out in products:
                matmul(a, b, out=out)
        return perf_counter() - t0

    return Contender("gemm", loop, reset=lambda: None)


# -- checking, timing, the split -------------------------------------------------------------------

def check(contenders):
    """{key: (loss deviation, parameter deviation, ok, losses)} against PyTorch (or symgraph without it)."""
    runs = {}
    for c in contenders:
        if c.one is None:
            continue
        c.reset()
        runs[c.key] = (np.array([c.one() for _ in range(CHECK_STEPS)]), c.params())
    ref_losses, ref_params = runs["torch" if "torch" in runs else "gen"]
    out = {}
    for key, (losses, params) in runs.items():
        loss_dev = float(np.max(np.abs(losses - ref_losses) / np.abs(ref_losses)))
        par_dev = max(float(np.max(np.abs(p - r)) / float(np.max(np.abs(r)))) for p, r in zip(params, ref_params))
        ok = bool(np.all(np.isfinite(losses))) and loss_dev <= TOLERANCE and par_dev <= TOLERANCE
        out[key] = (loss_dev, par_dev, ok, losses)
    return out


def helper_split(f, x, labels, steps, gemm=None):
    """Median seconds per step of each conv/pooling helper, and of the whole step, over ``steps``
    instrumented steps (each helper call wrapped in a timer in the generated module's namespace; a
    helper called by another one counts as its caller's time); with ``gemm`` (the conv GEMMs
    contender), also of the conv GEMMs alone, timed after each step (so that they are measured in
    the same conditions as the helpers that make them)."""
    namespace = f._fn.__globals__
    originals = {n: namespace[n] for n in HELPERS if n in namespace}
    spent = collections.defaultdict(float)
    depth = [0]

    def timed(n, fn):
        def call(*args, **kwargs):
            depth[0] += 1
            t0 = perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    spent[n] += perf_counter() - t0

        return call

    per_step = collections.defaultdict(list)
    try:
        for n, fn in originals.items():
            namespace[n] = timed(n, fn)
        for _ in range(steps):
            spent.clear()
            t0 = perf_counter()
            f(x, labels)
            per_step["step"].append(perf_counter() - t0)
            for n in originals:
                per_step[n].append(spent[n])
            if gemm is not None:
                per_step["gemm"].append(gemm.loop(1))
    finally:
        namespace.update(originals)
    return {n: statistics.median(v) for n, v in per_step.items()}


def run(names, args, threads, say, time_interleaved, summarize, fmt_s, keys=("gen", "torch", "jax")):
    """Check, time and split each network of ``names``; say() the report; return (results, failures)."""
    results, failures = {}, []
    for name in names:
        init, x, labels = make_problem(name)
        contenders = [gen_contender(name, x, labels, init)]
        f = contenders[0].f
        if "torch" in keys:
            contenders.append(torch_contender(name, x, labels, init, threads))
        if "jax" in keys:
            contenders.append(jax_contender(name, x, labels, init))
        chk = check(contenders)
        failures += [f"{name} {LABELS[k]}: 5-step check" for k, c in chk.items() if not c[2]]
        contenders.append(gemm_contender(name, f))
        gen = contenders[0]
        gen.reset()
        gen.loop(3)
        per_step = gen.loop(10) / 10
        steps = max(3, round(args.block_seconds / per_step))
        times = time_interleaved(contenders, steps, args.blocks, 0.0, args.warm_seconds)
        stats = {k: summarize(v) for k, v in times.items()}
        split = helper_split(f, x, labels, max(30, 3 * steps), contenders[-1])
        results[name] = {"stats": stats, "check": chk, "split": split, "steps": steps, "source": f.source,
                         "jax_compile": getattr(contenders[-2] if "jax" in keys else None, "compile_seconds", None)}
        ref = stats["gen"]["median"]
        say(f"{NETWORKS[name]['label']}, float32, SGD (lr {LR:g}): {steps} steps per block, {args.blocks} blocks")
        say(f"  {'contender':15} {'median':>10} {'min':>10} {'max':>10} {'÷ symgraph':>10}  "
            "5-step check vs PyTorch (loss dev, param dev)")
        for key in KEYS:
            if key not in stats:
                continue
            s, c = stats[key], chk.get(key)
            chk_text = f"{'ok' if c[2] else 'MISMATCH'} ({c[0]:.1e}, {c[1]:.1e})" if c else "-"
            say(f"  {LABELS[key]:15} {fmt_s(s['median']):>10} {fmt_s(s['min']):>10} {fmt_s(s['max']):>10} "
                f"{s['median'] / ref:10.2f}  {chk_text}")
        say(f"  losses: {', '.join(f'{v:.6g}' for v in next(iter(chk.values()))[3])}")
        gemm = split["gemm"]
        conv_total = sum(split.get(n, 0.0) for n in CONV_HELPERS)
        pool_total = sum(split.get(n, 0.0) for n in POOL_HELPERS)
        step = split["step"]
        say(f"  time split (one instrumented run, median per step {fmt_s(step)}): conv helpers {fmt_s(conv_total)} "
            f"({100 * conv_total / step:.0f}%; their GEMMs alone {fmt_s(gemm)}, im2col/col2im/transposes "
            f"{fmt_s(max(conv_total - gemm, 0.0))}), pooling helpers {fmt_s(pool_total)} "
            f"({100 * pool_total / step:.0f}%), the rest {fmt_s(step - conv_total - pool_total)} "
            f"({100 * (step - conv_total - pool_total) / step:.0f}%)")
        say("    " + ", ".join(f"{n} {fmt_s(split[n])}" for n in HELPERS if n in split))
        ratios = [f"symgraph ÷ conv GEMMs {step / gemm:.2f} (split run; interleaved medians "
                  f"{ref / stats['gemm']['median']:.2f})"]
        for key in ("torch", "jax"):
            if key in stats:
                ratios.append(f"÷ {LABELS[key]} {ref / stats[key]['median']:.2f}")
        say("  " + ", ".join(ratios))
        say()
    if results:
        say("convolutional networks, targets (symgraph's median ÷ the peer's, same run):")
        for name, r in results.items():
            s = r["stats"]
            for key, limit in TARGETS.items():
                if key in s:
                    ratio = s["gen"]["median"] / s[key]["median"]
                    say(f"  {'met   ' if ratio <= limit else 'MISSED'} {name} symgraph ÷ {LABELS[key]}: "
                        f"{ratio:.2f} (target ≤ {limit:.2f})")
        say()
    return results, failures

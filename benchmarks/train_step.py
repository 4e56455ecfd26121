"""Train-step benchmark: symgraph's generated step against hand-optimized NumPy, PyTorch eager and JAX jit.

Four networks (issue 6), float32 and float64, three optimizers (issue 12); one training step =
forward + backward + the optimizer's update of every parameter:

    tiny    2-4-1, sigmoid, mean binary cross-entropy from logits, batch 4 (the XOR data)
    small   64-32-10, ReLU, mean softmax cross-entropy, batch 32
    medium  784-512-512-10, ReLU, mean softmax cross-entropy, batch 256
    deep    32 dense layers of width 64 (31 tanh hidden layers, then 64 -> 10), softmax CE, batch 64

and two convolutional networks (issue 15; see conv_step.py), float32 and SGD, against PyTorch eager
and JAX jit and the conv GEMMs alone, with the time split of the generated step (conv helpers,
their GEMMs, pooling, the rest):

    cnn     the digits CNN of examples/cnn_digits.py, batch 32
    lenet   LeNet size: 1x28x28, conv 5x5x6 - pool - conv 5x5x16 - pool - 120 - 84 - 10, batch 64

    sgd       plain SGD, the network's lr (tiny 0.5, small 0.1, medium and deep 0.01)
    adam      Adam, lr 1e-3, betas (0.9, 0.999), eps 1e-8, bias-corrected, eps outside the sqrt
    momentum  momentum 0.9 (b = 0.9 b + g; w -= lr b), the network's lr

Contenders, all from the same initial weights (drawn once in float64, cast to the dtype) and
the same batch:

    symgraph         the step compiled by ``codegen.compile([x, y], loss, updates=opt.updates(loss))`` with
                     ``opt`` = ``sg.optim.SGD(lr)``, ``sg.optim.Adam(lr)`` or ``sg.optim.Momentum(lr, momentum=0.9)``,
                     called as a user calls it: ``f(x, y)`` (input validation included)
    symgraph raw     the generated function itself, without the wrapper's input validation:
                     ``f._fn(x, y, **{name: leaf.value})`` with the keyword dict built once
    hand NumPy       benchmarks/handwritten.py with its SGD, Momentum or Adam (in place, preallocated
                     state): the reference, ratios are to it (the same optimizer's)
    PyTorch eager    autograd + SGD as in-place ``torch._foreach_add_``, or ``torch.optim.Adam`` /
                     ``torch.optim.SGD(momentum=0.9)`` with their default ``foreach`` (which on CPU tensors is
                     the per-parameter loop); torch.set_num_threads = NumPy's BLAS threads; when importable
    JAX jit          ``jax.jit`` of value_and_grad + a hand-written SGD / Adam / momentum update (parameters and
                     optimizer state donated), ``block_until_ready`` on the new parameters, state and loss
                     after every step; when jax is importable
    GEMM only        (medium, SGD) the 3 forward and 5 backward matrix products of the medium step alone,
                     into preallocated outputs: the BLAS floor of that step

What it does:

1. checks that every contender of every optimizer gives the same loss trajectory over 5 steps from
   the same weights (and the same parameters after them), within a tolerance for the dtype;
2. times them in ONE process, interleaved: ``--blocks`` blocks, in each block every contender (in
   a rotating order) gets its parameters and optimizer state reset, runs untimed steps, then a
   fixed number of timed steps (the same for all contenders of a network and optimizer, sized from
   the reference to take about ``--block-ms``); reports the median, min and max time per step over
   the blocks and the ratio of medians to the reference (GC stays enabled, as in a user's loop);
3. with ``--fresh`` (the default of a full run): times each contender (symgraph, hand, PyTorch, JAX)
   again ALONE in a new interpreter, this script run with the internal option ``--worker KEY``: it
   builds that one contender, warms up, runs the same timed blocks and prints JSON (then re-runs the
   5-step check, which the parent compares with the reference's losses). Allocator effects (page faults
   on fresh allocations, glibc's malloc returning or keeping freed memory) show only there;
4. reports the medium SGD step against its GEMM time, compile times (graph -> callable: the SGD
   update graph, i.e. differentiation, plus ``codegen.compile``, which simplifies; and the first
   call), the compile time of 10-, 100- and 1000-layer MLPs and of the small network with Adam,
   the memory of one SGD step, the per-step allocation peak of every optimizer's step (tracemalloc,
   a later step: see ``step_peaks``), and the NumPy calls per step (counted by running the generated
   module and handwritten.py instrumented: see ``count_numpy_calls``);
5. prints everything with the elapsed time and writes benchmarks/RESULTS.md when the run is complete
   (all networks, dtypes and optimizers, fresh processes included, not --quick), or with --output.

Run (unset the OpenBLAS overrides for this command only, see RESULTS.md); from the repository root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/train_step.py   # full, ~12 min
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/train_step.py --quick   # < 2 min
    .venv/bin/python benchmarks/train_step.py --networks medium --optimizers adam --fresh
    .venv/bin/python benchmarks/train_step.py --networks cnn lenet --threads 1   # the convolutional networks only
    .venv/bin/python benchmarks/train_step.py --networks tiny small --dtypes float32 --optimizers sgd momentum
    .venv/bin/python benchmarks/train_step.py --threads 1   # on a busy machine: 2-thread BLAS collapses
                                                              # when another process holds a core

(In a git worktree without its own venv: ``PYTHONPATH=. /path/to/.venv/bin/python benchmarks/train_step.py``.)
PyTorch and JAX are optional: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import ast
import collections
import datetime
import gc
import json
import operator
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
import tracemalloc
import types
from itertools import pairwise, repeat
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import conv_step
import handwritten

import codegen
import symgraph as sg

perf_counter = time.perf_counter

NETWORKS = {
    "tiny": {"sizes": (2, 4, 1), "act": "sigmoid", "loss": "bce", "batch": 4, "lr": 0.5,
             "label": "tiny 2-4-1 sigmoid, BCE, batch 4"},
    "small": {"sizes": (64, 32, 10), "act": "relu", "loss": "ce", "batch": 32, "lr": 0.1,
              "label": "small 64-32-10 ReLU, CE, batch 32"},
    "medium": {"sizes": (784, 512, 512, 10), "act": "relu", "loss": "ce", "batch": 256, "lr": 0.01,
               "label": "medium 784-512-512-10 ReLU, CE, batch 256"},
    "deep": {"sizes": (64,) * 32 + (10,), "act": "tanh", "loss": "ce", "batch": 64, "lr": 0.01,
             "label": "deep 32 x 64 tanh, CE, batch 64"},
}
DTYPES = ("float32", "float64")
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "momentum": "Momentum"}  # key -> label, in the order of the report
MOMENTUM = 0.9
ADAM_LR = 1e-3
ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
TOLERANCE = {"float32": 2e-4, "float64": 1e-9}  # relative, on the losses and on the parameters
CHECK_STEPS = 5
SEED = 20240606
NUMPY_TRACE_DOMAIN = 389047  # NumPy reports its array data to tracemalloc under this domain

ORDER = ["gen", "raw", "hand", "torch", "jax", "gemm"]
FRESH_KEYS = ["gen", "hand", "torch", "jax"]  # timed again, each alone in a new interpreter, with --fresh
LABELS = {"gen": "symgraph", "raw": "symgraph raw", "hand": "hand NumPy", "torch": "PyTorch eager",
          "jax": "JAX jit", "gemm": "GEMM only"}

SETTLE_SECONDS = 0.25  # pause before each contender's block on networks with multi-threaded GEMMs
SETTLE_ABOVE = 2e-3    # ... i.e. where the reference step takes at least this long (the medium network)

# the issue's targets (medians, ratio to the reference in the same run)
TARGETS = {"tiny": 1.25, "small": 1.15, "medium": 1.05, "deep": 1.10}
GEMM_TARGET = 1.15
TORCH_SPEEDUP_TARGET = 5.0
ADAM_COMPILE_TARGET = 0.050
MEMORY_TARGET = 1.10
STEP_PEAK_TARGET = 64 * 1024  # issue 12: per-step allocation peak of the medium step, every optimizer


# ----------------------------------------------------------------------------------------------
# problems and contenders
# ----------------------------------------------------------------------------------------------

def make_problem(name: str):
    """Initial weights (float64) [W1, b1, ...], the batch x (float64) and its labels or targets."""
    spec = NETWORKS[name]
    sizes = spec["sizes"]
    rng = np.random.default_rng([SEED, list(NETWORKS).index(name)])
    gain = {"relu": np.sqrt(2.0), "tanh": 1.0, "sigmoid": 2.0}[spec["act"]]
    weights = []
    for fan_in, fan_out in pairwise(sizes):
        weights.append(rng.standard_normal((fan_in, fan_out)) * gain / np.sqrt(fan_in))
        weights.append(0.1 * rng.standard_normal(fan_out))
    B = spec["batch"]
    if spec["loss"] == "bce":
        x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * (B // 4))
        labels = np.array([[0.0], [1.0], [1.0], [0.0]] * (B // 4))
    else:
        x = rng.standard_normal((B, sizes[0]))
        labels = rng.integers(0, sizes[-1], size=B).astype(np.int64)
    return weights, x, labels


def cast_problem(problem, dtype: str):
    weights, x, labels = problem
    weights = [w.astype(dtype) for w in weights]
    x = np.ascontiguousarray(x, dtype=dtype)
    labels = labels if labels.dtype.kind in "iu" else np.ascontiguousarray(labels, dtype=dtype)
    return weights, x, labels


ACTIVATIONS = {"relu": sg.relu, "tanh": sg.tanh, "sigmoid": sg.sigmoid}


def build_graph(name: str, dtype: str, weights):
    """The network as a symgraph graph: placeholders x and y (or t), parameters W1, b1, ..., the loss."""
    spec = NETWORKS[name]
    sizes = spec["sizes"]
    x = sg.placeholder("x", shape=("batch", sizes[0]), dtype=dtype)
    if spec["loss"] == "ce":
        y = sg.placeholder("y", shape=("batch",), dtype="int64")
    else:
        y = sg.placeholder("t", shape=("batch", sizes[-1]), dtype=dtype)
    act = ACTIVATIONS[spec["act"]]
    n_layers = len(sizes) - 1
    params, h = [], x
    for i in range(n_layers):
        W = sg.parameter(f"W{i + 1}", value=weights[2 * i], dtype=dtype)
        b = sg.parameter(f"b{i + 1}", value=weights[2 * i + 1], dtype=dtype)
        params += [W, b]
        h = h @ W + b
        h = act(h).named(f"h{i + 1}") if i < n_layers - 1 else h.named("logits")
    loss = sg.softmax_cross_entropy(h, y) if spec["loss"] == "ce" else sg.binary_cross_entropy(h, y)
    return x, y, params, loss.named("loss")


def learning_rate(name: str, optimizer: str) -> float:
    """Adam's lr is ADAM_LR; SGD and momentum use the network's."""
    return ADAM_LR if optimizer == "adam" else NETWORKS[name]["lr"]


def symgraph_optimizer(optimizer: str, lr: float):
    return {"sgd": lambda: sg.optim.SGD(lr),
            "adam": lambda: sg.optim.Adam(lr, **ADAM),
            "momentum": lambda: sg.optim.Momentum(lr, momentum=MOMENTUM)}[optimizer]()


def hand_optimizer(optimizer: str, lr: float, module=handwritten):
    """The hand-written optimizer; ``module`` is handwritten.py or its instrumented copy."""
    return {"sgd": lambda: module.SGD(lr),
            "adam": lambda: module.Adam(lr, **ADAM),
            "momentum": lambda: module.Momentum(lr, momentum=MOMENTUM)}[optimizer]()


class Compiled(collections.namedtuple("Compiled", "f params state state_init seconds")):
    """A compiled train step: the callable, the network's parameter leaves, the optimizer's state
    leaves (every other leaf the step updates), copies of their values before the first call, and
    the seconds of each phase."""


def compile_step(name: str, dtype: str, weights, optimizer: str = "sgd", early_updates: bool = False) -> Compiled:
    """Build and compile the train step in a fresh graph.
    ``early_updates``: codegen.compile's option (updates as soon as nothing reads the parameter)."""
    with sg.fresh_graph():
        t0 = perf_counter()
        x, y, params, loss = build_graph(name, dtype, weights)
        t1 = perf_counter()
        updates = symgraph_optimizer(optimizer, learning_rate(name, optimizer)).updates(loss)
        t2 = perf_counter()
        f = codegen.compile([x, y], loss, updates=updates, name=f"{name}_train_step", early_updates=early_updates)
        t3 = perf_counter()
    state = [leaf for leaf in updates if all(leaf is not p for p in params)]
    return Compiled(f, params, state, [s.value.copy() for s in state],
                    {"build": t1 - t0, "grad": t2 - t1, "compile": t3 - t2})


class Contender:
    """One way of running the train step: ``loop(n)`` times n steps, ``one()`` runs a step and returns
    its loss, ``reset()`` restores the initial weights and optimizer state, ``params()`` copies the
    current weights."""

    def __init__(self, key, loop, one=None, reset=None, params=None, note=""):
        self.key, self.label = key, LABELS[key]
        self.loop, self.one, self.reset, self.params, self.note = loop, one, reset, params, note


def _timed_loop(call, x, labels):
    """``loop(n)``: seconds for n calls of ``call(x, labels)``."""
    def loop(n):
        fn, a, b = call, x, labels
        t0 = perf_counter()
        for _ in repeat(None, n):
            fn(a, b)
        return perf_counter() - t0

    return loop


def raw_function(f):
    """(generated function, keyword arguments) such that ``fn(x, y, **kwargs)`` is the step without the
    wrapper's checks, or (None, reason). Reads the compiled object's private attributes: the wrapper
    calls ``self._fn(*inputs, **{name: parameter.value})``."""
    fn = getattr(f, "_fn", None)
    if fn is None:
        return None, "the compiled function exposes no _fn"
    pairs = getattr(f, "_param_ops", None)  # [(keyword, parameter op)], each call reads op.value
    if pairs is not None:
        return fn, {k: op.value for k, op in pairs}
    names, leaves = getattr(f, "_kwarg_names", None), getattr(f, "params", None)
    if names is not None and leaves is not None:
        return fn, {n: p.value for n, p in zip(names, leaves)}
    return None, "the compiled function exposes neither _param_ops nor _kwarg_names"


def generated_contenders(step: Compiled, x, labels, init, raw=True):
    """symgraph (``f(x, y)``) and, if ``raw``, symgraph raw (the generated function without the wrapper).
    Reset restores the parameters to ``init`` and every state leaf to its value before the first call."""
    f, leaves = step.f, step.params
    saved = list(zip(leaves, init)) + list(zip(step.state, step.state_init))

    def reset():
        for leaf, v in saved:
            np.copyto(leaf.value, v)

    def params():
        return [p.value.copy() for p in leaves]

    out = [Contender("gen", _timed_loop(f, x, labels), lambda: float(f(x, labels)), reset, params)]
    fn, kwargs = raw_function(f) if raw else (None, "")
    if fn is not None:
        def loop_raw(n):
            call, kw = fn, kwargs
            t0 = perf_counter()
            for _ in repeat(None, n):
                call(x, labels, **kw)
            return perf_counter() - t0

        c = Contender("raw", loop_raw, lambda: float(fn(x, labels, **kwargs)), reset, params)
        c.kwargs, c.leaves = kwargs, [leaf for leaf, _ in saved]
        out.append(c)
    return out


def hand_contender(name, optimizer, x, labels, init):
    arrays = [w.copy() for w in init]
    opt = hand_optimizer(optimizer, learning_rate(name, optimizer))
    step = handwritten.make_step(name, arrays, NETWORKS[name]["batch"], opt)

    def reset():
        for a, v in zip(arrays, init):
            np.copyto(a, v)
        opt.reset()

    return Contender("hand", _timed_loop(step, x, labels), lambda: float(step(x, labels)), reset,
                     lambda: [a.copy() for a in arrays])


def torch_contender(name, optimizer, x, labels, init, threads):
    """PyTorch eager: autograd, then SGD as ``torch._foreach_add_(params, grads, alpha=-lr)`` (grads set to
    None), or ``torch.optim.Adam`` / ``torch.optim.SGD(momentum=...)`` with their defaults (``foreach=None``)
    and ``zero_grad()`` (grads set to None)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    spec = NETWORKS[name]
    lr = learning_rate(name, optimizer)
    tparams = [torch.tensor(v, requires_grad=True) for v in init]
    pairs = list(zip(tparams[0::2], tparams[1::2]))
    hidden, (WL, bL) = pairs[:-1], pairs[-1]
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[spec["act"]]
    lossf = F.cross_entropy if spec["loss"] == "ce" else F.binary_cross_entropy_with_logits
    xt, yt = torch.from_numpy(x), torch.from_numpy(labels)
    addmm, no_grad, foreach_add_ = torch.addmm, torch.no_grad, torch._foreach_add_
    opt = {"sgd": lambda: None,
           "adam": lambda: torch.optim.Adam(tparams, lr=lr, betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["eps"]),
           "momentum": lambda: torch.optim.SGD(tparams, lr=lr, momentum=MOMENTUM)}[optimizer]()

    def sgd_update():
        with no_grad():
            foreach_add_(tparams, [p.grad for p in tparams], alpha=-lr)
        for p in tparams:
            p.grad = None

    def optim_update():
        opt.step()
        opt.zero_grad()

    update = sgd_update if opt is None else optim_update

    def step():
        h = xt
        for W, b in hidden:
            h = act(addmm(b, h, W))
        loss = lossf(addmm(bL, h, WL), yt)
        loss.backward()
        update()
        return loss

    def loop(n):
        call = step
        t0 = perf_counter()
        for _ in repeat(None, n):
            call()
        return perf_counter() - t0

    def reset():
        with torch.no_grad():
            for p, v in zip(tparams, init):
                p.copy_(torch.from_numpy(v))
        if opt is not None:
            opt.state.clear()  # as new: torch.optim makes the state at the next step

    note = f"torch {torch.__version__}, {threads} threads" + (f", {type(opt).__name__}" if opt else "")
    return Contender("torch", loop, lambda: float(step().item()), reset,
                     lambda: [p.detach().numpy().copy() for p in tparams], note=note)


def jax_update_rule(optimizer: str, lr: float):
    """(init(params) -> state, update(params, grads, state) -> (params, state)): the optimizer, written by
    hand in jax.numpy with torch.optim's formulas. Scalars computed from the step number are float64 (as
    the Python floats torch uses) and cast to the parameter's dtype before they meet it."""
    import jax.numpy as jnp

    def sgd(params, grads, state):
        return [p - lr * g for p, g in zip(params, grads)], state

    def momentum(params, grads, velocity):
        velocity = [MOMENTUM * b + g for b, g in zip(velocity, grads)]
        return [p - lr * b for p, b in zip(params, velocity)], velocity

    def adam(params, grads, state):
        n, ms, vs = state
        n = n + 1.0
        b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["eps"]
        step_size, root = lr / (1.0 - b1**n), jnp.sqrt(1.0 - b2**n)
        ms = [b1 * m + (1.0 - b1) * g for m, g in zip(ms, grads)]
        vs = [b2 * v + (1.0 - b2) * (g * g) for v, g in zip(vs, grads)]
        params = [p - step_size.astype(p.dtype) * m / (jnp.sqrt(v) / root.astype(p.dtype) + eps)
                  for p, m, v in zip(params, ms, vs)]
        return params, (n, ms, vs)

    def zeros(params):
        return [jnp.zeros_like(p) for p in params]

    return {"sgd": (lambda params: (), sgd),
            "momentum": (zeros, momentum),
            "adam": (lambda params: (jnp.zeros((), jnp.float64), zeros(params), zeros(params)), adam)}[optimizer]


def jax_contender(name, optimizer, x, labels, init):
    import jax
    import jax.numpy as jnp

    spec = NETWORKS[name]
    n_layers = len(init) // 2
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[spec["act"]]
    ce = spec["loss"] == "ce"
    init_state, update = jax_update_rule(optimizer, learning_rate(name, optimizer))

    def loss_fn(params, x, y):
        h = x
        for i in range(n_layers):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < n_layers - 1:
                h = act(h)
        if ce:
            picked = jnp.take_along_axis(h, y[:, None], axis=1)[:, 0]
            return jnp.mean(jax.nn.logsumexp(h, axis=1) - picked)
        return jnp.mean(jax.nn.softplus(h) - h * y)

    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        params, state = update(params, grads, state)
        return params, state, loss

    jstep = jax.jit(step, donate_argnums=(0, 1))
    xj, yj = jnp.array(x), jnp.array(labels)
    block = jax.block_until_ready
    box = {}

    def reset():
        params = [jnp.array(v) for v in init]  # copies: donated buffers never alias our arrays
        box["p"], box["s"] = params, init_state(params)

    reset()
    t0 = perf_counter()
    p, s, loss = jstep(box["p"], box["s"], xj, yj)  # trace + compile (and one step)
    block((p, s, loss))
    compile_seconds = perf_counter() - t0
    reset()

    def loop(n):
        call, p, s = jstep, box["p"], box["s"]
        t0 = perf_counter()
        for _ in repeat(None, n):
            p, s, loss = call(p, s, xj, yj)
            block((p, s, loss))
        elapsed = perf_counter() - t0
        box["p"], box["s"] = p, s
        return elapsed

    def one():
        box["p"], box["s"], loss = jstep(box["p"], box["s"], xj, yj)
        block((box["p"], box["s"], loss))
        return float(loss)

    c = Contender("jax", loop, one, reset, lambda: [np.array(a) for a in box["p"]], note=f"jax {jax.__version__}")
    c.compile_seconds = compile_seconds
    return c


def build_contenders(name: str, dtype: str, optimizer: str, keys, threads: int):
    """The contenders ``keys`` (a subset of ORDER, without "gemm") of one network, dtype and optimizer,
    and the compiled symgraph step (None unless "gen" or "raw" is asked for)."""
    weights, x, labels = cast_problem(make_problem(name), dtype)
    step = None
    out = []
    if "gen" in keys or "raw" in keys:
        step = compile_step(name, dtype, weights, optimizer)
        t0 = perf_counter()
        step.f(x, labels)
        step.seconds["first_call"] = perf_counter() - t0
        out += [c for c in generated_contenders(step, x, labels, weights, raw="raw" in keys) if c.key in keys]
    if "hand" in keys:
        out.append(hand_contender(name, optimizer, x, labels, weights))
    if "torch" in keys:
        out.append(torch_contender(name, optimizer, x, labels, weights, threads))
    if "jax" in keys:
        out.append(jax_contender(name, optimizer, x, labels, weights))
    return out, step


def medium_gemm_flops(batch: int = 256, sizes=(784, 512, 512, 10)) -> float:
    fwd = sum(2 * batch * a * b for a, b in pairwise(sizes))   # x@W for each layer
    dW = fwd                                                              # h.T @ g for each layer
    dH = sum(2 * batch * a * b for a, b in pairwise(sizes[1:]))   # g @ W.T except the first layer
    return float(fwd + dW + dH)


def gemm_contender(dtype: str, batch: int = 256, sizes=(784, 512, 512, 10)):
    """The 3 forward and 5 backward matrix products of the medium step, with preallocated outputs."""
    rng = np.random.default_rng(0)
    dot = np.dot

    def arr(*shape):
        return (0.05 * rng.standard_normal(shape)).astype(dtype)

    B, (n0, n1, n2, n3) = batch, sizes
    x, W1, W2, W3 = arr(B, n0), arr(n0, n1), arr(n1, n2), arr(n2, n3)
    H1, H2, Z, G = arr(B, n1), arr(B, n2), arr(B, n3), arr(B, n3)
    DH2, DH1 = arr(B, n2), arr(B, n1)
    DW1, DW2, DW3 = arr(n0, n1), arr(n1, n2), arr(n2, n3)
    xT, H1T, H2T, W2T, W3T = x.T, H1.T, H2.T, W2.T, W3.T

    def loop(n):
        t0 = perf_counter()
        for _ in repeat(None, n):
            dot(x, W1, H1)
            dot(H1, W2, H2)
            dot(H2, W3, Z)
            dot(H2T, G, DW3)
            dot(G, W3T, DH2)
            dot(H1T, DH2, DW2)
            dot(DH2, W2T, DH1)
            dot(xT, DH1, DW1)
        return perf_counter() - t0

    return Contender("gemm", loop, reset=lambda: None)


# ----------------------------------------------------------------------------------------------
# checking and timing
# ----------------------------------------------------------------------------------------------

def check_trajectories(contenders, dtype: str):
    """Run CHECK_STEPS steps of each contender from the initial weights; compare losses and final
    parameters with the reference. Returns {key: (loss deviation, parameter deviation, ok)}."""
    runs = {}
    for c in contenders:
        if c.one is None:
            continue
        c.reset()
        losses = [c.one() for _ in range(CHECK_STEPS)]
        runs[c.key] = (np.array(losses), c.params())
    ref_losses, ref_params = runs["hand"]
    tol = TOLERANCE[dtype]
    report = {}
    for key, (losses, params) in runs.items():
        loss_dev = float(np.max(np.abs(losses - ref_losses) / np.maximum(np.abs(ref_losses), 1e-30)))
        par_dev = max(float(np.max(np.abs(p - r)) / max(float(np.max(np.abs(r))), 1e-30))
                      for p, r in zip(params, ref_params))
        ok = bool(np.all(np.isfinite(losses))) and loss_dev <= tol and par_dev <= tol
        report[key] = (loss_dev, par_dev, ok, losses)
    return report


def reference_step_seconds(ref: Contender) -> float:
    ref.reset()
    ref.loop(2)
    n, elapsed = 1, ref.loop(1)
    while elapsed < 0.02:
        n *= 2
        elapsed = ref.loop(n)
    return elapsed / n


def time_interleaved(contenders, steps: int, blocks: int, settle: float = 0.0, warm: float = 0.0):
    """Per-step seconds of each contender in each block, contenders rotating their order per block.

    ``settle``: seconds to sleep before each contender's block, so that the thread pools of the one
    before it (OpenBLAS's workers keep spinning for ~0.1 s after a multi-threaded GEMM, which halves
    PyTorch's and JAX's speed on the medium network) are idle when it starts. ``warm``: untimed
    steps (at least one) run before the timed ones for at least this many seconds, so every contender
    is timed in its steady state (XLA's thread pool needs a few steps to be back at speed after
    sleeping)."""
    times = {c.key: [] for c in contenders}
    k = len(contenders)
    for b in range(blocks):
        order = contenders[b % k:] + contenders[:b % k]
        for c in order:
            if settle:
                time.sleep(settle)
            c.reset()
            elapsed, n = c.loop(1), 1  # untimed: caches and thread pools warm after the previous contender
            while elapsed < warm:
                elapsed += c.loop(n)
                n *= 2
            times[c.key].append(c.loop(steps) / steps)
    return times


def summarize(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


# ----------------------------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------------------------

def _numpy_bytes(snapshot) -> int:
    return sum(s.size for s in snapshot.filter_traces([tracemalloc.DomainFilter(True, NUMPY_TRACE_DOMAIN)])
               .statistics("filename"))


def measure_memory(name: str, dtype: str):
    """tracemalloc measurements of one step, generated (checked call) and reference, in bytes.

    first: peak traced memory above the level before, over everything the step needs that is not
    a parameter or the batch: for the reference, building it (its buffers) and its first step; for the
    generated step, the NumPy arrays that ``codegen.compile`` left alive (buffers allocated at compile
    time, if any) plus the peak of its first call (buffers allocated per input signature and the
    temporaries). steady: the peak of a later step above the level before it (temporaries only).
    """
    problem = cast_problem(make_problem(name), dtype)
    weights, x, labels = problem
    spec = NETWORKS[name]
    out = {}
    gc.collect()
    tracemalloc.start()
    try:
        # generated: the default (updates together at the end) and with early_updates=True
        for key, early in (("gen", False), ("gen_early", True)):
            before = _numpy_bytes(tracemalloc.take_snapshot())
            step = compile_step(name, dtype, weights, early_updates=early)
            f, leaves = step.f, step.params
            gc.collect()
            compiled_arrays = max(0, _numpy_bytes(tracemalloc.take_snapshot()) - before
                                  - sum(p.value.nbytes for p in leaves))
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            f(x, labels)
            first = tracemalloc.get_traced_memory()[1] - base + compiled_arrays
            f(x, labels)
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            f(x, labels)
            steady = tracemalloc.get_traced_memory()[1] - base
            out[key] = {"first": first, "steady": steady, "compile_arrays": compiled_arrays}
            del f, leaves, step
            gc.collect()
        # reference
        arrays = [w.copy() for w in weights]
        gc.collect()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        step = handwritten.make_step(name, arrays, spec["batch"], handwritten.SGD(spec["lr"]))
        step(x, labels)
        first = tracemalloc.get_traced_memory()[1] - base
        step(x, labels)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        step(x, labels)
        steady = tracemalloc.get_traced_memory()[1] - base
        out["hand"] = {"first": first, "steady": steady}
    finally:
        tracemalloc.stop()
    out["params_bytes"] = sum(w.nbytes for w in weights)
    return out


def _later_step_peak(step, x, labels) -> dict:
    """tracemalloc's peak during the third call of ``step`` above the traced memory before it, less what
    is still allocated after it while its output is held (the output: the loss); and that remainder."""
    step(x, labels)
    step(x, labels)
    gc.collect()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = step(x, labels)
    current, peak = tracemalloc.get_traced_memory()
    del out
    return {"peak": peak - current, "kept": current - base}


def step_peaks(name: str, dtype: str, optimizer: str):
    """Per-step allocation peak of symgraph's step (called as ``f(x, y)``) and of the reference, for one
    optimizer: see ``_later_step_peak``. tracemalloc's peak counts every traced allocation: NumPy's
    array data (reported in NumPy's tracemalloc domain) and whatever else the interpreter allocates during
    the step (short-lived Python objects, and NumPy's iterator and casting buffers); tracemalloc keeps no
    peak per domain, so the NumPy-only peak is at most this."""
    weights, x, labels = cast_problem(make_problem(name), dtype)
    gen = compile_step(name, dtype, weights, optimizer).f
    arrays = [w.copy() for w in weights]
    opt = hand_optimizer(optimizer, learning_rate(name, optimizer))
    hand = handwritten.make_step(name, arrays, NETWORKS[name]["batch"], opt)
    gc.collect()
    tracemalloc.start()
    try:
        return {"gen": _later_step_peak(gen, x, labels), "hand": _later_step_peak(hand, x, labels)}
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------------------------
# counting NumPy calls
# ----------------------------------------------------------------------------------------------

_BINOPS = {ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub), ast.Mult: ("*", operator.mul),
           ast.Div: ("/", operator.truediv), ast.FloorDiv: ("//", operator.floordiv), ast.Mod: ("%", operator.mod),
           ast.Pow: ("**", operator.pow), ast.MatMult: ("@", operator.matmul), ast.LShift: ("<<", operator.lshift),
           ast.RShift: (">>", operator.rshift), ast.BitAnd: ("&", operator.and_), ast.BitOr: ("|", operator.or_),
           ast.BitXor: ("^", operator.xor)}
_IOPS = {ast.Add: operator.iadd, ast.Sub: operator.isub, ast.Mult: operator.imul, ast.Div: operator.itruediv,
         ast.FloorDiv: operator.ifloordiv, ast.Mod: operator.imod, ast.Pow: operator.ipow,
         ast.MatMult: operator.imatmul, ast.LShift: operator.ilshift, ast.RShift: operator.irshift,
         ast.BitAnd: operator.iand, ast.BitOr: operator.ior, ast.BitXor: operator.ixor}
_UNARY = {ast.USub: ("unary -", operator.neg), ast.UAdd: ("unary +", operator.pos),
          ast.Invert: ("~", operator.invert)}
_COMPARE = {ast.Lt: ("<", operator.lt), ast.LtE: ("<=", operator.le), ast.Gt: (">", operator.gt),
            ast.GtE: (">=", operator.ge), ast.Eq: ("==", operator.eq), ast.NotEq: ("!=", operator.ne)}
_NUMPY_VALUES = (np.ndarray, np.generic)


def _shims(counts: collections.Counter):
    """The run-time hooks the instrumented code calls: each performs the operation and counts it
    when NumPy does the work (an ndarray or NumPy scalar operand, a NumPy callable)."""
    binops = {sym: fn for sym, fn in _BINOPS.values()}
    iops = {_BINOPS[k][0]: fn for k, fn in _IOPS.items()}
    unary = dict(_UNARY.values())
    compare = dict(_COMPARE.values())

    def is_np(v):
        return isinstance(v, _NUMPY_VALUES)

    def call(f, /, *args, **kwargs):
        label = None
        owner = getattr(f, "__self__", None)
        if isinstance(f, np.ufunc):
            label = f"np.{f.__name__}"
        elif isinstance(owner, np.ufunc):
            label = f"np.{owner.__name__}.{f.__name__}"
        elif isinstance(owner, _NUMPY_VALUES):
            label = f"ndarray.{getattr(f, '__name__', '?')}"
        elif isinstance(f, type) and issubclass(f, np.generic):
            label = f"np.{f.__name__}"
        elif (getattr(f, "__module__", None) or "").startswith("numpy"):
            label = f"np.{getattr(f, '__name__', '?')}"
        if label:
            counts[label] += 1
        return f(*args, **kwargs)

    def binop(sym, a, b):
        if is_np(a) or is_np(b):
            counts[f"operator {sym}"] += 1
        return binops[sym](a, b)

    def iop(sym, a, b):
        if is_np(a) or is_np(b):
            counts[f"operator {sym}="] += 1
        return iops[sym](a, b)

    def unop(sym, a):
        if is_np(a):
            counts[f"operator {sym}"] += 1
        return unary[sym](a)

    def cmp(sym, a, b):
        if is_np(a) or is_np(b):
            counts[f"operator {sym}"] += 1
        return compare[sym](a, b)

    def getitem(a, index):
        if is_np(a):
            counts["indexing a[...]"] += 1
        return a[index]

    def setitem(a, index, value):
        if is_np(a):
            counts["assignment a[...] ="] += 1
        a[index] = value

    def aug_item(sym, a, index, value):
        item = getitem(a, index)
        setitem(a, index, iop(sym, item, value))

    def transpose(a):
        if is_np(a):
            counts[".T (view, not counted)"] += 1
        return a.T

    return {"_sgc_call": call, "_sgc_binop": binop, "_sgc_iop": iop, "_sgc_unop": unop, "_sgc_cmp": cmp,
            "_sgc_getitem": getitem, "_sgc_setitem": setitem, "_sgc_aug_item": aug_item, "_sgc_T": transpose}


class _Instrument(ast.NodeTransformer):
    """Rewrites every call, operator, comparison, subscript and ``.T`` into a counting hook."""

    @staticmethod
    def _hook(name, *args, keywords=()):
        return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=list(keywords))

    def _index(self, node):
        """The instrumented index expression, with slices (legal only inside []) spelled as slice(...)."""
        return self._slices(self.visit(node))

    @classmethod
    def _slices(cls, node):
        if isinstance(node, ast.Slice):
            parts = [p if p is not None else ast.Constant(None) for p in (node.lower, node.upper, node.step)]
            return ast.Call(func=ast.Name(id="slice", ctx=ast.Load()), args=parts, keywords=[])
        if isinstance(node, ast.Tuple):
            return ast.Tuple(elts=[cls._slices(e) for e in node.elts], ctx=ast.Load())
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return self._hook("_sgc_binop", ast.Constant(_BINOPS[type(node.op)][0]), node.left, node.right)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if type(node.op) not in _UNARY:
            return node
        return self._hook("_sgc_unop", ast.Constant(_UNARY[type(node.op)][0]), node.operand)

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            return node
        return self._hook("_sgc_cmp", ast.Constant(_COMPARE[type(node.ops[0])][0]), node.left, node.comparators[0])

    def visit_Call(self, node):
        self.generic_visit(node)
        return self._hook("_sgc_call", node.func, *node.args, keywords=node.keywords)

    def visit_Subscript(self, node):
        if not isinstance(node.ctx, ast.Load):
            self.generic_visit(node)
            return node
        return self._hook("_sgc_getitem", self.visit(node.value), self._index(node.slice))

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if node.attr == "T" and isinstance(node.ctx, ast.Load):
            return self._hook("_sgc_T", node.value)
        return node

    def visit_Assign(self, node):
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript):
            target = node.targets[0]
            return ast.Expr(self._hook("_sgc_setitem", self.visit(target.value), self._index(target.slice),
                                       self.visit(node.value)))
        self.generic_visit(node)
        return node

    def visit_AugAssign(self, node):
        sym = _BINOPS[type(node.op)][0]
        value = self.visit(node.value)
        target = node.target
        if isinstance(target, ast.Name):
            return ast.Assign(targets=[ast.Name(id=target.id, ctx=ast.Store())],
                              value=self._hook("_sgc_iop", ast.Constant(sym), ast.Name(id=target.id, ctx=ast.Load()),
                                               value))
        if isinstance(target, ast.Subscript):
            return ast.Expr(self._hook("_sgc_aug_item", ast.Constant(sym), self.visit(target.value),
                                       self._index(target.slice), value))
        node.value = value
        return node


def _instrumented_namespace(source: str, module_name: str, counts):
    tree = _Instrument().visit(ast.parse(source))
    ast.fix_missing_locations(tree)
    namespace = {"__name__": module_name, **_shims(counts)}
    exec(compile(tree, f"<counted {module_name}>", "exec"), namespace)  # noqa: S102 - our own or generated source
    return namespace


def count_numpy_calls(name: str, dtype: str, f, optimizer: str = "sgd"):
    """NumPy calls of one steady-state step (the second call), generated function and reference.

    Method: the generated module's source (``f.source``) and benchmarks/handwritten.py are parsed,
    every call, operator, comparison, subscript and augmented assignment is rewritten into a hook
    that performs it and counts it when NumPy does the work (a ufunc or ufunc method, a NumPy function,
    an ndarray method, an operator or index on an ndarray or NumPy scalar), and the instrumented
    code runs two steps on copies of the weights; the second is counted (the first allocates buffers).
    Helper functions of the generated module are instrumented too, so their NumPy calls count; a
    NumPy function written in Python (np.take_along_axis, ...) counts as one call. ``.T`` views are
    listed apart and not counted. The generated step is counted without the call wrapper's checks.
    """
    weights, x, labels = cast_problem(make_problem(name), dtype)
    spec = NETWORKS[name]
    result = {}
    # generated
    counts = collections.Counter()
    fn, kwargs = raw_function(f)
    if fn is not None:
        ns = _instrumented_namespace(f.source, "_sgc_generated", counts)
        gen_fn = ns[fn.__name__]
        kw = {k: np.array(v, copy=True) for k, v in kwargs.items()}
        gen_fn(x, labels, **kw)
        counts.clear()
        gen_fn(x, labels, **kw)
        result["gen"] = collections.Counter(counts)
    # reference
    counts = collections.Counter()
    ns = _instrumented_namespace(Path(handwritten.__file__).read_text(), "_sgc_handwritten", counts)
    opt = hand_optimizer(optimizer, learning_rate(name, optimizer), module=types.SimpleNamespace(**ns))
    step = ns["make_step"](name, [w.copy() for w in weights], spec["batch"], opt)
    step(x, labels)
    counts.clear()
    step(x, labels)
    result["hand"] = collections.Counter(counts)
    return result


def total_calls(counter) -> int:
    return sum(v for k, v in counter.items() if not k.startswith(".T"))


# ----------------------------------------------------------------------------------------------
# compile times
# ----------------------------------------------------------------------------------------------

def depth_mlp_compile(depth: int, width: int = 64, classes: int = 10):
    """Seconds to build, differentiate (SGD updates) and compile a tanh MLP of ``depth`` dense layers."""
    rng = np.random.default_rng(0)
    with sg.fresh_graph():
        t0 = perf_counter()
        x = sg.placeholder("x", shape=("batch", width))
        y = sg.placeholder("y", shape=("batch",), dtype="int64")
        h = x
        for i in range(depth):
            fan_out = classes if i == depth - 1 else width
            W = sg.parameter(f"W{i + 1}", value=rng.standard_normal((width, fan_out)) / np.sqrt(width))
            b = sg.parameter(f"b{i + 1}", value=np.zeros(fan_out))
            h = h @ W + b
            if i < depth - 1:
                h = sg.tanh(h)
        loss = sg.softmax_cross_entropy(h, y)
        t1 = perf_counter()
        updates = sg.optim.SGD(0.01).updates(loss)
        t2 = perf_counter()
        f = codegen.compile([x, y], loss, updates=updates)
        t3 = perf_counter()
    return {"build": t1 - t0, "grad": t2 - t1, "compile": t3 - t2, "lines": len(f.source.splitlines())}


def compile_times(name: str, dtype: str, reps: int):
    """Median over ``reps`` fresh compiles of each phase, and the first call's time."""
    weights, x, labels = cast_problem(make_problem(name), dtype)
    phases = collections.defaultdict(list)
    for _ in range(reps):
        gc.collect()
        f, _, _, _, seconds = compile_step(name, dtype, weights)
        t0 = perf_counter()
        f(x, labels)
        seconds["first_call"] = perf_counter() - t0
        for k, v in seconds.items():
            phases[k].append(v)
    return {k: statistics.median(v) for k, v in phases.items()}


def adam_compile_time(reps: int):
    weights, _, _ = cast_problem(make_problem("small"), "float32")
    samples = []
    for _ in range(reps):
        seconds = compile_step("small", "float32", weights, optimizer="adam").seconds
        samples.append(seconds["grad"] + seconds["compile"])
    return statistics.median(samples)


# ----------------------------------------------------------------------------------------------
# environment
# ----------------------------------------------------------------------------------------------

def _run(cmd) -> str:
    try:
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def threadpools():
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [{k: info.get(k) for k in ("internal_api", "prefix", "version", "architecture", "num_threads",
                                      "threading_layer", "filepath")}
            for info in threadpoolctl.threadpool_info()]


def blas_threads(pools=None) -> int:
    """The number of threads NumPy's BLAS uses (what PyTorch is given)."""
    pools = threadpools() if pools is None else pools
    blas_pool = next((p for p in pools if p["internal_api"] in ("openblas", "mkl", "blis")), None)
    return blas_pool["num_threads"] if blas_pool else (os.cpu_count() or 1)


def environment(torch_mod, jax_mod):
    lscpu = _run(["lscpu"])
    fields = {}
    for line in lscpu.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    env = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": fields.get("Model name", platform.processor() or "?"),
        "cores": f"{fields.get('CPU(s)', os.cpu_count())} CPUs ({fields.get('Core(s) per socket', '?')} cores per "
                 f"socket, {fields.get('Thread(s) per core', '?')} thread per core), "
                 f"L2 {fields.get('L2 cache', '?')}, L3 {fields.get('L3 cache', '?')}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": getattr(torch_mod, "__version__", "not installed"),
        "jax": getattr(jax_mod, "__version__", "not installed"),
        "os": platform.platform(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        env["numpy_blas"] = f"{blas.get('name')} {blas.get('version')} ({blas.get('openblas configuration', '')})"
    except Exception as exc:  # noqa: BLE001 - informational only
        env["numpy_blas"] = f"unknown ({exc})"
    env["threadpools"] = pools = threadpools()
    blas_pool = next((p for p in pools if p["internal_api"] in ("openblas", "mkl", "blis")), None)
    env["blas_threads"] = blas_threads(pools)
    env["blas_kernel"] = blas_pool.get("architecture") if blas_pool else None
    if torch_mod is not None:
        shown = torch_mod.__config__.show()
        found = [m.group(0) for m in re.finditer(r"BLAS_INFO=\w+|CPU capability usage: \w+", shown)]
        env["torch_blas"] = ", ".join(found) or "see torch.__config__.show()"
    if jax_mod is not None:
        env["jax_devices"] = ", ".join(str(d) for d in jax_mod.devices())
    return env


# ----------------------------------------------------------------------------------------------
# formatting
# ----------------------------------------------------------------------------------------------

def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    if n < 1024 ** 2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 ** 2:.2f} MiB"


def md_table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


DESIGN_SKETCH = """\
One NumPy call costs 0.4-1.5 µs of dispatch here whatever its size, so a step made of N calls
cannot go below about N × 0.5 µs: the hand-written tiny step makes 27 calls and the small one 31
(see the counts above), while the whole tiny step is a few hundred flops and the small one about
0.3 MFLOP (a few µs of arithmetic at this machine's speed). PyTensor's Numba backend (6.5 µs / 21 µs) wins by compiling
the step into a few native loops. A loop-fusing backend for symgraph would need these facts from
the IR, all of which it has or can compute at compile time:

1. **Static shapes per call signature.** Every node already has a static shape with named
   dimensions. The backend needs a *signature*: the binding of each named dimension (``batch``) to an
   int, checked once per call with one tuple comparison, selecting a kernel compiled for those
   sizes. With sizes known, loops of length 1, 4 or 10 are fully unrolled and small matrix
   products become straight-line FMAs; nothing is looked up per element.
2. **An op taxonomy with index maps.** Each op must say which family it is in: elementwise
   (already a fused SymPy expression per group, after ``fuse_elementwise``), broadcast (an affine
   index map per operand: which axes are stride 0), reduction (axis, associative operator, identity),
   contraction (matmul as ``C[i,j] = Σ_k A[i,k] B[k,j]`` with the transposes folded into the index
   maps), gather/scatter with integer labels (``pick``/``unpick`` as ``Z[i, y[i]]``, bounds checked
   once per call in a single pass over ``y``), and pure layout (transpose, reshape: index maps,
   no data movement).
3. **Fusion groups.** A partition of the scheduled graph into loop nests over one iteration space:
   elementwise chains fused into their producer's or consumer's loop; a row-wise reduction fused
   with what surrounds it (softmax cross-entropy forward and backward become one pass per row:
   max, exp-sum, log, and the gradient with the learning rate folded in, with ``-lr/B`` at the label);
   GEMM epilogues (bias add and activation in the output loop of ``x @ W``; the ReLU/tanh derivative
   in the output loop of ``G @ W.T``); and the SGD update folded into the weight-gradient
   contraction (``W += (-lr) · H.T @ G``, which is what PyTensor's C backend does on the medium
   network with GEMM's ``beta = 1``). The IR must tell, for each value, whether it is materialized
   (read by two groups, an output, or needed by the backward pass) or lives only in registers.
4. **A buffer plan.** Liveness over the schedule gives, per signature, a slot for each materialized
   value, the values that may share a slot, and where an op may write over one of its inputs (same
   index map, input dead afterwards). Parameters and optimizer state are updated in place, so the
   plan needs the anti-dependences made explicit: every read of ``W`` (``G @ W.T``) is ordered
   before its update. The NumPy backend already has all three: buffers per input-size signature,
   blocks shared by buffers of different shapes that are never live together, and each in-place
   update moved to just after the last read of its parameter.
5. **A cost model per group.** The IR's per-op FLOP estimates decide, per signature, whether a
   contraction is emitted as a naive unrolled loop (tiny: all of it; small: 32 × 64 × 32 is still
   fine), as a call into BLAS from the kernel (medium), or left to NumPy; and whether two calls'
   worth of loops are worth fusing at all.
6. **A calling convention.** One entry point per step taking inputs, parameters, state and a
   workspace owned by the compiled function: one Python call, one signature check, then native
   code; so the fixed cost is ~1 µs instead of ~30 NumPy dispatches.
7. **A numerics contract.** Which reductions may be reassociated (vectorized sums change float32
   results in the last bits), kept stable formulas (max-shifted softmax, softplus) and where NaN/inf
   must propagate, so the fused backend can be tested against the NumPy backend with a tolerance.

With these, the tiny step is one kernel of a few hundred instructions (target ≲ 3 µs including
the Python call) and the small step a handful of loops around two 32 × 64 × 32-sized products
(target ≲ 12 µs), which beats the Numba peer on both.
"""


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few short blocks, small compile scaling, no fresh "
                                                             "processes unless --fresh (smoke run)")
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS) + list(conv_step.NETWORKS),
                        default=list(NETWORKS) + list(conv_step.NETWORKS),
                        help="the MLPs and the convolutional networks of conv_step.py "
                             f"({', '.join(conv_step.NETWORKS)}: float32, SGD, against PyTorch and JAX only); "
                             "default: all of them")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    parser.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS), default=list(OPTIMIZERS))
    parser.add_argument("--fresh", action=argparse.BooleanOptionalAction,
                        help="also time each contender alone in a fresh interpreter (default: on, off with --quick)")
    parser.add_argument("--fresh-blocks", type=int, help="timed blocks in each fresh process (default 7)")
    parser.add_argument("--blocks", type=int, help="timing blocks per network (default 21, quick 3)")
    parser.add_argument("--block-ms", type=float, help="target duration of the reference's block (default 40, quick 5)")
    parser.add_argument("--settle-ms", type=float,
                        help=f"pause before each contender's block (default {SETTLE_SECONDS * 1e3:.0f} ms, quick "
                             f"100 ms, where the reference step takes ≥ {SETTLE_ABOVE * 1e3:.0f} ms, i.e. where BLAS "
                             "runs multi-threaded; else 0)")
    parser.add_argument("--threads", type=int,
                        help="BLAS threads for NumPy (threadpoolctl) and PyTorch, and single-threaded XLA when 1 "
                             "(default: NumPy's BLAS default, which PyTorch then matches)")
    parser.add_argument("--no-peers", action="store_true", help="skip PyTorch and JAX even if installed")
    parser.add_argument("--output", help="write the report here (default: benchmarks/RESULTS.md for a complete run, "
                                         "nothing otherwise)")
    # internal: one contender in this process, for --fresh (prints JSON)
    parser.add_argument("--worker", choices=FRESH_KEYS, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warm-ms", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.conv_networks = [n for n in args.networks if n in conv_step.NETWORKS]
    args.networks = [n for n in args.networks if n in NETWORKS]
    args.blocks = args.blocks or (3 if args.quick else 21)
    args.block_seconds = (args.block_ms or (5.0 if args.quick else 40.0)) / 1000.0
    args.warm_seconds = (args.warm_ms if args.warm_ms is not None else 5.0 if args.quick else 25.0) / 1000.0
    args.fresh = (not args.quick) if args.fresh is None else args.fresh
    args.fresh_blocks = args.fresh_blocks or (3 if args.quick else 7)
    args.complete = (not args.quick and args.fresh and args.networks == list(NETWORKS)
                     and args.conv_networks == list(conv_step.NETWORKS)
                     and args.dtypes == list(DTYPES) and args.optimizers == list(OPTIMIZERS))
    return args


def configure_threads(threads):
    """Limit NumPy's BLAS (threadpoolctl; keep the returned object alive) and, for 1 thread, XLA."""
    flag = "--xla_cpu_multi_thread_eigen=false"
    if threads == 1 and flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
    if not threads:
        return None
    import threadpoolctl

    return threadpoolctl.threadpool_limits(threads)


def enable_jax_x64(jax_mod):
    jax_mod.config.update("jax_enable_x64", True)  # float64 arrays stay float64; float32 stays float32


def worker(args) -> int:
    """--worker KEY: build that one contender, time it (the same blocks as interleaved, alone), re-run the
    5-step check; print {"times": [...], "losses": [...], "finite": bool} as the last line of stdout."""
    limits = configure_threads(args.threads)  # noqa: F841 - kept alive
    if args.worker == "jax":
        import jax

        enable_jax_x64(jax)
    name, dtype, optimizer = args.networks[0], args.dtypes[0], args.optimizers[0]
    (c,), _ = build_contenders(name, dtype, optimizer, [args.worker], blas_threads())
    times = time_interleaved([c], args.steps, args.blocks, 0.0, args.warm_seconds)[c.key]
    finite = all(bool(np.all(np.isfinite(p))) for p in c.params())
    c.reset()
    losses = [c.one() for _ in range(CHECK_STEPS)]
    print(json.dumps({"times": times, "losses": losses, "finite": finite}))
    return 0


def run_fresh(name, dtype, optimizer, key, steps, args) -> dict:
    """Time one contender in a new interpreter (this script with --worker); its JSON, or {"error": text}."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", key, "--networks", name, "--dtypes", dtype,
           "--optimizers", optimizer, "--steps", str(steps), "--blocks", str(args.fresh_blocks),
           "--warm-ms", str(args.warm_seconds * 1e3)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]}
    return json.loads(lines[-1])


def measure(name, dtype, optimizer, args, keys, threads):
    """Check, then time the contenders ``keys`` of one network, dtype and optimizer, interleaved."""
    contenders, step = build_contenders(name, dtype, optimizer, keys, threads)
    by_key = {c.key: c for c in contenders}
    check = check_trajectories(contenders, dtype)
    if name == "medium" and optimizer == "sgd":
        contenders.append(gemm_contender(dtype))
    per_step = reference_step_seconds(by_key["hand"])
    steps = max(2 if args.quick else 3, round(args.block_seconds / per_step))
    settle = (args.settle_ms / 1000.0 if args.settle_ms is not None
              else (0.1 if args.quick else SETTLE_SECONDS) if per_step >= SETTLE_ABOVE else 0.0)
    times = time_interleaved(contenders, steps, args.blocks, settle, args.warm_seconds)
    problems = [f"{LABELS[c.key]}: non-finite parameters after the timed steps"
                for c in contenders if c.params and not all(np.all(np.isfinite(p)) for p in c.params())]
    raw = by_key.get("raw")
    if raw is not None and not {id(p.value) for p in raw.leaves} <= {id(v) for v in raw.kwargs.values()}:
        problems.append("a leaf's .value was replaced; the raw timings used stale arrays")
    stats = {k: summarize(v) for k, v in times.items()}
    paired = {k: statistics.median(t / r for t, r in zip(v, times["hand"])) for k, v in times.items()}
    return {"stats": stats, "paired": paired, "check": check, "steps": steps, "settle": settle,
            "compile": step.seconds, "source": step.f.source, "f": step.f, "problems": problems,
            "jax_compile": getattr(by_key.get("jax"), "compile_seconds", None), "fresh": {}}


def ratio_text(s, key, ref_key) -> str:
    return f"{s[key]['median'] / s[ref_key]['median']:.2f}" if key in s and ref_key in s else "—"


def peer_ratios(s, key="gen"):
    """symgraph's median ÷ the hand reference's, PyTorch's and JAX's (same optimizer, same run)."""
    return [ratio_text(s, key, ref) for ref in ("hand", "torch", "jax")]


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    depths = (10, 100) if args.quick else (10, 100, 1000)
    reps = 1 if args.quick else 5
    scaling_reps = 1 if args.quick else 3
    output = args.output or (str(HERE / "RESULTS.md") if args.complete else None)
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv]) if argv is None else f"main({argv!r})"
    started = perf_counter()
    load_before = os.getloadavg()

    limits = configure_threads(args.threads)  # noqa: F841 - kept alive for the whole run
    torch_mod = jax_mod = None
    if not args.no_peers:
        try:
            import torch as torch_mod
        except ImportError:
            pass
        try:
            import jax as jax_mod

            enable_jax_x64(jax_mod)
        except ImportError:
            pass
    env = environment(torch_mod, jax_mod)
    keys = ["gen", "raw", "hand"] + [k for k, m in (("torch", torch_mod), ("jax", jax_mod)) if m is not None]
    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    def stamp(what):
        say(f"[{what} done at {perf_counter() - started:.0f} s]")
        say()

    say(f"train-step benchmark, {env['date']}")
    say(f"CPU: {env['cpu']}, {env['cores']}")
    say(f"Python {env['python']}, NumPy {env['numpy']}, torch {env['torch']}, jax {env['jax']}")
    say(f"NumPy BLAS: {env['numpy_blas']}; kernel {env['blas_kernel']}, {env['blas_threads']} thread(s); "
        f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']!s}, OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']!s}")
    if env["OPENBLAS_CORETYPE"] or env["OPENBLAS_L2_SIZE"]:
        say("  warning: OpenBLAS overrides are set; to measure the current NumPy's own kernel run this command as "
            "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...`")
    if torch_mod is None or jax_mod is None:
        missing = [n for n, m in (("torch", torch_mod), ("jax", jax_mod)) if m is None]
        say(f"  ({' and '.join(missing)} not importable: those contenders are skipped; pip install -e \".[bench]\")")
    say(f"blocks: {args.blocks}, reference block ≈ {args.block_seconds * 1e3:.0f} ms, optimizers "
        f"{' '.join(args.optimizers)}, fresh processes: "
        f"{f'{args.fresh_blocks} blocks each' if args.fresh else 'no'}; load average before: "
        f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    if load_before[0] > 1.5:
        say(f"  warning: the machine is busy (load {load_before[0]:.1f} on {os.cpu_count()} CPUs): other processes "
            "share "
            "the cores, so absolute times and multi-threaded BLAS/OpenMP results are unreliable")
    say()

    results = {}   # (network, dtype, optimizer) -> dict
    failures = []
    if args.conv_networks:
        conv_keys = [k for k in ("gen", "torch", "jax") if k in keys]
        _, conv_failures = conv_step.run(args.conv_networks, args, env["blas_threads"], say, time_interleaved,
                                         summarize, fmt_s, conv_keys)
        failures += conv_failures
        stamp("convolutional networks")
        if not args.networks:  # only convolutional networks were asked for
            for fail in failures:
                say(f"  CHECK FAILED: {fail}")
            print("(no report written: not a complete run)")
            return 1 if failures else 0
    for name in args.networks:
        spec = NETWORKS[name]
        for dtype in args.dtypes:
            for optimizer in args.optimizers:
                r = results[(name, dtype, optimizer)] = measure(name, dtype, optimizer, args, keys,
                                                                env["blas_threads"])
                stats, paired, check, ref = r["stats"], r["paired"], r["check"], r["stats"]["hand"]["median"]
                failures += [f"{name} {dtype} {optimizer} {LABELS[k]}" for k, c in check.items() if not c[2]]
                failures += [f"{name} {dtype} {optimizer}: {p}" for p in r["problems"]]
                say(f"{spec['label']}, {dtype}, {OPTIMIZERS[optimizer]} (lr {learning_rate(name, optimizer):g}): "
                    f"{r['steps']} steps per block, {args.blocks} blocks"
                    + (f", {r['settle'] * 1e3:.0f} ms pause before each contender's block" if r["settle"] else ""))
                say(f"  {'contender':15} {'median':>10} {'min':>10} {'max':>10} {'÷ hand':>7} {'paired':>7}  "
                    f"5-step check (loss dev, param dev)")
                for key in ORDER:
                    if key not in stats:
                        continue
                    s = stats[key]
                    chk = check.get(key)
                    chk_text = (f"{'ok' if chk[2] else 'MISMATCH'} ({chk[0]:.1e}, {chk[1]:.1e})" if chk else "-")
                    say(f"  {LABELS[key]:15} {fmt_s(s['median']):>10} {fmt_s(s['min']):>10} {fmt_s(s['max']):>10} "
                        f"{s['median'] / ref:7.2f} {paired[key]:7.2f}  {chk_text}")
                say(f"  losses (reference): {', '.join(f'{v:.6g}' for v in check['hand'][3])}")
                if "raw" not in stats:
                    say(f"  (symgraph raw not timed: {raw_function(r['f'])[1]})")
                if "gemm" in stats:
                    g = stats["gemm"]["median"]
                    flops = medium_gemm_flops()
                    say(f"  GEMM only: {fmt_s(g)} = {flops / g / 1e9:.0f} GFLOP/s; step / GEMM: "
                        f"symgraph {stats['gen']['median'] / g:.2f}, hand {ref / g:.2f}"
                        + (f", symgraph raw {stats['raw']['median'] / g:.2f}" if "raw" in stats else ""))
                for p in r["problems"]:
                    say(f"  PROBLEM: {p}")
                say()

    say("every optimizer, interleaved (median per step; symgraph ÷ the same optimizer's hand reference, "
        "÷ PyTorch, ÷ JAX):")
    say(f"  {'network':7} {'dtype':8} {'optimizer':9} {'symgraph':>10} {'hand':>10} {'PyTorch':>10} {'JAX':>10}"
        f"   {'÷ hand':>6} {'÷ torch':>7} {'÷ JAX':>6}")
    for (name, dtype, optimizer), r in results.items():
        s = r["stats"]
        cells = [fmt_s(s[k]["median"]) if k in s else "—" for k in ("gen", "hand", "torch", "jax")]
        say(f"  {name:7} {dtype:8} {OPTIMIZERS[optimizer]:9} {cells[0]:>10} {cells[1]:>10} {cells[2]:>10} "
            f"{cells[3]:>10}   {'{:>6} {:>7} {:>6}'.format(*peer_ratios(s))}")
    stamp("interleaved timing")

    # fresh processes
    if args.fresh:
        fresh_keys = [k for k in FRESH_KEYS if k in keys]
        say(f"fresh processes: each contender alone in a new interpreter ({args.fresh_blocks} blocks of the same "
            "steps; median per step; ratios to the hand reference timed the same way; fresh ÷ interleaved):")
        for i, ((name, dtype, optimizer), r) in enumerate(results.items()):
            order = fresh_keys[i % len(fresh_keys):] + fresh_keys[:i % len(fresh_keys)]
            runs = {key: run_fresh(name, dtype, optimizer, key, r["steps"], args) for key in order}
            ref_losses = np.array(r["check"]["hand"][3])
            for key in fresh_keys:
                run = runs[key]
                if "error" in run:
                    failures.append(f"{name} {dtype} {optimizer} fresh {LABELS[key]}: {run['error']}")
                    continue
                r["fresh"][key] = summarize(run["times"])
                dev = float(np.max(np.abs(np.array(run["losses"]) - ref_losses) / np.maximum(np.abs(ref_losses),
                                                                                              1e-30)))
                if not (run["finite"] and dev <= TOLERANCE[dtype]):
                    failures.append(f"{name} {dtype} {optimizer} fresh {LABELS[key]}: loss deviation {dev:.1e}, "
                                    f"finite parameters: {run['finite']}")
            f, s = r["fresh"], r["stats"]
            cells = " | ".join(f"{LABELS[k]} {fmt_s(f[k]['median'])} ({ratio_text(f, k, 'hand')}, "
                               f"×{f[k]['median'] / s[k]['median']:.2f})" for k in fresh_keys if k in f)
            say(f"  {name:6} {dtype} {OPTIMIZERS[optimizer]:8}: {cells}")
        say("  (in parentheses: ÷ hand in fresh processes, ×: fresh ÷ interleaved median of the same contender)")
        stamp("fresh processes")

    # compile times
    say(f"compile time (graph -> callable; median of {reps} fresh compiles): build graph | SGD updates "
        "(differentiate) | codegen.compile (simplify, emit) | first call")
    compile_rows = []
    for name in args.networks:
        for dtype in args.dtypes:
            c = compile_times(name, dtype, reps)
            total = c["grad"] + c["compile"]
            jc = results.get((name, dtype, "sgd"), {}).get("jax_compile")
            compile_rows.append((name, dtype, c, total, jc))
            say(f"  {name:6} {dtype}: {fmt_s(c['build']):>9} | {fmt_s(c['grad']):>9} | {fmt_s(c['compile']):>9} | "
                f"{fmt_s(c['first_call']):>9}   graph -> callable {fmt_s(total)}"
                + (f"   (JAX jit trace+compile {fmt_s(jc)})" if jc else ""))
    adam = adam_compile_time(reps)
    say(f"  small float32 with sg.optim.Adam: graph -> callable {fmt_s(adam)} (target ≤ {fmt_s(ADAM_COMPILE_TARGET)})")
    say(f"compile time of a tanh MLP of width 64 by depth (median of {scaling_reps}):")
    scaling = []
    for depth in depths:
        runs = []
        for _ in range(scaling_reps):
            gc.collect()
            runs.append(depth_mlp_compile(depth))
        d = {k: statistics.median(r[k] for r in runs) for k in runs[0]}  # phase by phase
        total = statistics.median(r["grad"] + r["compile"] for r in runs)
        scaling.append((depth, d, total))
        say(f"  {depth:5d} layers: build {fmt_s(d['build']):>9}, differentiate {fmt_s(d['grad']):>9}, compile "
            f"{fmt_s(d['compile']):>9}; graph -> callable {fmt_s(total):>9} = {fmt_s(total / depth)} per layer, "
            f"{d['lines']} source lines")
    if len(scaling) >= 2:
        (d0, _, t0_), (d1, _, t1_) = scaling[-2], scaling[-1]
        say(f"  growth {d0} -> {d1} layers: ×{t1_ / t0_:.1f} for ×{d1 / d0:.0f} layers "
            f"(per-layer time ×{(t1_ / d1) / (t0_ / d0):.2f}; 1.00 is linear)")
    stamp("compile times")

    # memory
    memory = {}
    if "sgd" in args.optimizers:
        say("memory of one SGD step (tracemalloc; parameters and batch excluded): first step incl. buffers | "
            "later step")
        for name in args.networks:
            for dtype in args.dtypes:
                m = measure_memory(name, dtype)
                memory[(name, dtype)] = m
                g, h = m["gen"], m["hand"]
                say(f"  {name:6} {dtype}: symgraph {fmt_bytes(g['first']):>10} | {fmt_bytes(g['steady']):>10}   "
                    f"hand {fmt_bytes(h['first']):>10} | {fmt_bytes(h['steady']):>10}   ratio first "
                    f"{g['first'] / max(h['first'], 1):.2f} (early_updates "
                    f"{m['gen_early']['first'] / max(h['first'], 1):.2f})   "
                    f"(parameters {fmt_bytes(m['params_bytes'])})")
        say()
    say("per-step allocation peak (tracemalloc, all domains, the third step, its output excluded): symgraph | hand")
    peaks = {}
    for name in args.networks:
        for dtype in args.dtypes:
            for optimizer in args.optimizers:
                p = peaks[(name, dtype, optimizer)] = step_peaks(name, dtype, optimizer)
                kept = max(p["gen"]["kept"], p["hand"]["kept"])
                say(f"  {name:6} {dtype} {OPTIMIZERS[optimizer]:8}: {fmt_bytes(p['gen']['peak']):>10} | "
                    f"{fmt_bytes(p['hand']['peak']):>10}" + (f"   (output kept {fmt_bytes(kept)})" if kept else ""))
    stamp("memory")

    # NumPy calls
    say("NumPy calls per step (steady state; instrumented run, see count_numpy_calls):")
    calls = {}
    dtype = args.dtypes[0]
    for name in args.networks:
        for optimizer in args.optimizers:
            c = calls[(name, optimizer)] = count_numpy_calls(name, dtype, results[(name, dtype, optimizer)]["f"],
                                                             optimizer)
            gen_total = total_calls(c["gen"]) if "gen" in c else None
            say(f"  {name:6} {OPTIMIZERS[optimizer]:8} ({dtype}): symgraph {gen_total}, hand {total_calls(c['hand'])}")
            for who in ("gen", "hand"):
                if who in c:
                    top = ", ".join(f"{k} {v}" for k, v in c[who].most_common() if not k.startswith(".T"))
                    say(f"      {LABELS[who]:12}: {top}")
    stamp("NumPy call counts")

    # targets
    say("targets (issue 6, item 3, and issue 12; medians, ratio to the reference of the same run and optimizer):")
    target_rows = []

    def target(what, value, limit, ok, note=""):
        target_rows.append((what, value, limit, "met" if ok else "MISSED", note))
        say(f"  {'met   ' if ok else 'MISSED'} {what}: {value} (target {limit}) {note}")

    for (name, dtype, optimizer), r in results.items():
        s = r["stats"]
        ratio = s["gen"]["median"] / s["hand"]["median"]
        raw_note = f"raw {s['raw']['median'] / s['hand']['median']:.2f}" if "raw" in s else ""
        if optimizer != "sgd":
            fresh = r["fresh"]
            fresh_note = (f"fresh processes {fresh['gen']['median'] / fresh['hand']['median']:.2f}"
                          if "gen" in fresh and "hand" in fresh else "")
            target(f"{name} {dtype} {OPTIMIZERS[optimizer]} symgraph ÷ hand", f"{ratio:.2f}",
                   f"≤ {TARGETS[name]:.2f}", ratio <= TARGETS[name], ", ".join(filter(None, [raw_note, fresh_note])))
            continue
        target(f"{name} {dtype} symgraph ÷ hand", f"{ratio:.2f}", f"≤ {TARGETS[name]:.2f}", ratio <= TARGETS[name],
               raw_note)
        if name == "medium":
            gr = s["gen"]["median"] / s["gemm"]["median"]
            target(f"medium {dtype} symgraph ÷ GEMM", f"{gr:.2f}", f"≤ {GEMM_TARGET:.2f}", gr <= GEMM_TARGET)
        if name in ("tiny", "small") and "torch" in s:
            speedup = s["torch"]["median"] / s["gen"]["median"]
            target(f"{name} {dtype} PyTorch ÷ symgraph", f"{speedup:.1f}×", f"≥ {TORCH_SPEEDUP_TARGET:.0f}×",
                   speedup >= TORCH_SPEEDUP_TARGET)
    target("small float32 + Adam compile", fmt_s(adam), f"≤ {fmt_s(ADAM_COMPILE_TARGET)}", adam <= ADAM_COMPILE_TARGET)
    if len(scaling) >= 2:
        growth = (scaling[-1][2] / scaling[-1][0]) / (scaling[-2][2] / scaling[-2][0])
        target(f"compile time linear in depth ({scaling[-2][0]} -> {scaling[-1][0]} layers)",
               f"per-layer ×{growth:.2f}", "≈ 1 (≤ 1.5)", growth <= 1.5)
    for (name, dtype), m in memory.items():
        ratio = m["gen"]["first"] / max(m["hand"]["first"], 1)
        target(f"{name} {dtype} step memory ÷ hand", f"{ratio:.2f}", f"≤ {MEMORY_TARGET:.2f}", ratio <= MEMORY_TARGET)
    for (name, dtype, optimizer), p in peaks.items():
        if name == "medium":
            peak = p["gen"]["peak"]
            target(f"medium {dtype} {OPTIMIZERS[optimizer]} per-step allocation peak", fmt_bytes(peak),
                   f"≤ {fmt_bytes(STEP_PEAK_TARGET)}", peak <= STEP_PEAK_TARGET, f"hand {fmt_bytes(p['hand']['peak'])}")
    if failures:
        say()
        for fail in failures:
            say(f"  CHECK FAILED: {fail}")
    load_after = os.getloadavg()
    elapsed = perf_counter() - started
    say()
    say(f"done in {elapsed:.0f} s; load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")

    if output:
        report = {"env": env, "args": args, "reps": reps, "scaling_reps": scaling_reps, "command": command,
                  "results": results, "compile_rows": compile_rows, "adam": adam, "scaling": scaling,
                  "memory": memory, "peaks": peaks, "calls": calls, "target_rows": target_rows, "failures": failures,
                  "load_before": load_before, "load_after": load_after, "elapsed": elapsed, "lines": lines}
        Path(output).write_text(render_markdown(report), encoding="utf-8")
        print(f"wrote {output}")
    else:
        print("(no report written: not a complete run; --output PATH writes one)")
    return 1 if failures else 0


def _excerpt(source: str, n: int = 20) -> str:
    """``n`` lines of the generated step, from the start of the backward pass if it is marked."""
    body = source.splitlines()
    start = next((i for i, line in enumerate(body) if line.strip().startswith("def ") and "train_step" in line), 0)
    marks = [i for i in range(start, len(body)) if body[i].strip() == "# backward"]
    first = marks[0] - 6 if marks else start
    return "\n".join(body[max(first, start): max(first, start) + n])


def _optimizer_excerpt(source: str, n: int = 16) -> str:
    """``n`` lines of a generated step from its optimizer part, if it is marked."""
    body = source.splitlines()
    start = next((i for i, line in enumerate(body) if line.strip() == "# optimizer"), None)
    return "\n".join(body[start: start + n]) if start is not None else ""


def _fresh_keys(results):
    return [k for k in FRESH_KEYS if any(k in r["fresh"] for r in results.values())]


def step_table(results) -> str:
    """The markdown table of every contender's times for {(network, dtype): result} of one optimizer."""
    header = ["network", "dtype", "contender", "median", "min", "max", "÷ hand", "paired", "5-step check"]
    rows = []
    for (name, dtype), r in results.items():
        s, ref = r["stats"], r["stats"]["hand"]["median"]
        for key in ORDER:
            if key not in s:
                continue
            chk = r["check"].get(key)
            chk_text = f"{'ok' if chk[2] else '**MISMATCH**'} ({chk[0]:.0e}, {chk[1]:.0e})" if chk else "—"
            label = f"**{LABELS[key]}**" if key == "gen" else LABELS[key]
            rows.append([name, dtype, label, fmt_s(s[key]["median"]), fmt_s(s[key]["min"]), fmt_s(s[key]["max"]),
                         f"{s[key]['median'] / ref:.2f}", f"{r['paired'][key]:.2f}", chk_text])
    return md_table(header, rows)


def render_markdown(report) -> str:
    env, args, results, lines = report["env"], report["args"], report["results"], report["lines"]
    blocks, block_seconds, warm_seconds = args.blocks, args.block_seconds, args.warm_seconds
    load_before, load_after = report["load_before"], report["load_after"]
    sgd = {(name, dtype): r for (name, dtype, optimizer), r in results.items() if optimizer == "sgd"}
    md = ["# Train-step benchmark: symgraph against hand-optimized NumPy, PyTorch eager and JAX jit", ""]
    md.append(f"Written by `benchmarks/train_step.py` on {env['date']} (issues 6 and 12). Every number below comes "
              "from one process, with the contenders interleaved, except the fresh-process table, where each "
              "contender ran alone in a new interpreter; the full console output is at the end.")
    md += ["", "## Machine and libraries", ""]
    md.append(f"- CPU: {env['cpu']}; {env['cores']}")
    md.append(f"- OS: {env['os']}; load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min)")
    md.append(f"- Python {env['python']}, NumPy {env['numpy']}, PyTorch {env['torch']}, JAX {env['jax']}")
    md.append(f"- NumPy BLAS: {env['numpy_blas']}")
    md.append(f"- OpenBLAS kernel in use (threadpoolctl): **{env['blas_kernel']}**, {env['blas_threads']} thread(s); "
              f"`OPENBLAS_CORETYPE`={env['OPENBLAS_CORETYPE']!s}, `OPENBLAS_L2_SIZE`={env['OPENBLAS_L2_SIZE']!s} "
              f"in this run")
    for p in env["threadpools"]:
        md.append(f"  - threadpool: {p['internal_api']} ({p['prefix']}, version {p['version']}, "
                  f"architecture {p.get('architecture')}, {p['num_threads']} threads)")
    if env.get("torch_blas"):
        md.append(f"- PyTorch: {env['torch_blas']}; `torch.set_num_threads({env['blas_threads']})`")
    if env.get("jax_devices"):
        md.append(f"- JAX devices: {env['jax_devices']} (XLA CPU; `jax_enable_x64` on so float64 runs in float64)")
    md += ["", "## Commands", "", "```bash"]
    md.append("# the OpenBLAS overrides, if this machine sets them, are unset for this command only")
    md.append("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/train_step.py")
    md.append("# a smoke run (no fresh processes, no report): --quick; one network and optimizer in fresh processes:")
    md.append("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/train_step.py "
              "--networks medium --optimizers adam --fresh")
    md.append("```")
    md.append("")
    md.append(f"This report's run: `{report['command']}` ({blocks} blocks, reference block ≈ "
              f"{block_seconds * 1e3:.0f} ms, networks {' '.join(args.networks)}, dtypes {' '.join(args.dtypes)}, "
              f"optimizers {' '.join(args.optimizers)}, fresh processes "
              f"{f'with {args.fresh_blocks} blocks each' if args.fresh else 'off'}; {report['elapsed']:.0f} s). "
              f"PyTorch and JAX come from the optional extra: `pip install -e \".[bench]\"`.")
    md += ["", "## Method", ""]
    md.append(
        "- Networks: tiny 2-4-1 sigmoid + mean BCE from logits (batch 4, the XOR data), small 64-32-10 ReLU + mean "
        "softmax cross-entropy (batch 32), medium 784-512-512-10 ReLU + CE (batch 256), deep = 32 dense layers of "
        "width 64 (31 tanh layers, then 64 → 10) + CE (batch 64); every layer has a bias. One step = forward, "
        "backward and the optimizer's update of all weights and biases: plain SGD (the network's lr: tiny 0.5, "
        f"small 0.1, medium and deep 0.01), Adam (lr {ADAM_LR:g}, betas ({ADAM['beta1']}, {ADAM['beta2']}), eps "
        f"{ADAM['eps']:g}, bias-corrected, eps outside the square root) or momentum {MOMENTUM} (`b = {MOMENTUM} b + g; "
        "w -= lr b`, the network's lr), with torch.optim's formulas in every contender.")
    md.append(
        "- Same initial weights (drawn in float64, cast) and the same batch for every contender. Before timing, each "
        f"contender runs {CHECK_STEPS} steps from those weights; its losses and final parameters must match the "
        f"reference's to a relative {TOLERANCE['float32']:g} (float32) / {TOLERANCE['float64']:g} (float64).")
    md.append(
        "- **symgraph** is timed through the compiled function as a user calls it, `f(x, y)` (the wrapper validates "
        "shapes and dtypes, then calls the generated function). **symgraph raw** calls the generated function "
        "directly, `f._fn(x, y, **{name: param.value})` with the keyword dict built once, i.e. without the "
        "validation. **hand NumPy** is `benchmarks/handwritten.py` (preallocated buffers with `out`, transposes as "
        "views, lr folded into the logits' gradient, bias gradients as `ones @ dZ`, `np.maximum(H, ZEROS, out=H)`, "
        "fused softmax-CE gradient computed in a (classes, batch) layout, NumPy functions bound to local names); "
        "it takes the same arrays as the generated step (separate W and b, updated in place); its Momentum and Adam "
        "updates are in place on preallocated state (Momentum 4 NumPy calls per parameter, Adam 12 with one shared "
        "scratch array and its two step-dependent scalars computed once per step in Python floats, eps folded as "
        "`k m / (sqrt(v) + e)`, the same number). **PyTorch eager**: "
        "`addmm` + activation, `F.cross_entropy` / `F.binary_cross_entropy_with_logits`, `loss.backward()`, then for "
        "SGD `torch._foreach_add_(params, grads, alpha=-lr)` under `no_grad`, grads set to None; for Adam and "
        "momentum `torch.optim.Adam` / `torch.optim.SGD(momentum=0.9)` with their defaults (`foreach=None`, which "
        "for CPU tensors means the per-parameter loop) and `zero_grad()`. **JAX jit**: "
        "`jax.jit(value_and_grad + the update, donate_argnums=(0, 1))` with the SGD, momentum or Adam update written "
        "in `jax.numpy` (parameters and optimizer state donated), `jax.block_until_ready` on the new parameters, "
        "state and loss after every step. **GEMM only** (medium, SGD): the 3 forward and 5 backward products of the "
        "medium shapes with `np.dot(..., out)` into preallocated arrays.")
    md.append(
        f"- Timing: {blocks} blocks; in each block every contender, in a rotating order, has its parameters reset to "
        f"the initial weights and its optimizer state to zero, runs untimed steps (at least one, for at least "
        f"{warm_seconds * 1e3:.0f} ms: XLA's "
        "thread pool needs a few steps to be back at speed after sleeping), then the same fixed number of timed steps "
        "(sized so the "
        "reference's block takes about the target). Per-step time = block time / steps. Reported: median, min and "
        "max over the blocks; `÷ hand` is the ratio of medians; `paired` the median over blocks of the per-block "
        "ratio (less sensitive to load drifting between blocks). GC stays enabled. Where the reference step takes "
        f"≥ {SETTLE_ABOVE * 1e3:.0f} ms (the medium network, whose GEMMs run on {env['blas_threads']} BLAS threads), "
        f"each contender's block starts after a {SETTLE_SECONDS * 1e3:.0f} ms pause: OpenBLAS's worker threads keep "
        "spinning for ~0.1 s after a multi-threaded GEMM, and a PyTorch or JAX step started in that window runs "
        "2-3× slower (measured), which would charge NumPy's idle threads to the next contender.")
    md.append(
        "- Fresh processes: symgraph, hand NumPy, PyTorch and JAX are timed again, each alone in a new interpreter "
        "(`train_step.py --worker KEY ...`, which imports only what that contender needs besides numpy, symgraph and "
        f"codegen): the same protocol ({args.fresh_blocks} blocks of the same number of steps, reset and warm-up "
        "before each, no pause), then the 5-step losses are checked against the reference's. In one long process "
        "the allocator has seen every other contender's allocations; in a fresh one, glibc's malloc serves the "
        "step's large temporaries from fresh pages (mmap, or heap top that it trims and grows again), so a step "
        "that allocates temporaries pays page faults there that the interleaved run may hide.")
    md.append(
        "- Compile time: a fresh graph each time; `graph → callable` = `sg.optim.SGD(lr).updates(loss)` "
        "(differentiation) + `codegen.compile` (simplification, scheduling, printing, `exec`); the graph build and "
        f"the first call are listed apart. Median of {report['reps']}.")
    md.append(
        "- Memory: `tracemalloc` (NumPy reports its array buffers to it). *First step* = peak traced memory above "
        "the level before, for everything a step needs besides the parameters and the batch: for the reference, "
        "building it (its buffers) plus its first step; for symgraph, the NumPy arrays `codegen.compile` left "
        "alive plus the peak of the first call (buffers allocated per input signature, temporaries). *Later step* "
        "= the peak of a steady-state step above the level before it (temporaries only). *Per-step allocation "
        "peak* (every optimizer): tracemalloc's peak during the third call above the traced memory before it, less "
        "what is still allocated after it while its output is held (the loss); tracemalloc keeps no peak per "
        "domain, so this counts NumPy's array data and also the interpreter's allocations during the step "
        "(short-lived Python objects, NumPy's iterator and casting buffers): an upper bound of NumPy's array "
        "bytes.")
    md.append(
        "- NumPy calls: both the generated module (`f.source`, helpers included) and `handwritten.py` are parsed "
        "and every call, operator, comparison, subscript and augmented assignment is rewritten into a hook that "
        "performs it and counts it when NumPy does the work (ufunc or ufunc method, NumPy function, ndarray "
        "method, operator or indexing on an ndarray or NumPy scalar); the instrumented code runs two steps and the "
        "second is counted. A NumPy function written in Python (e.g. `np.take_along_axis`) counts as one call "
        "although it makes several inside; `.T` views are not counted; the wrapper's validation is not counted. "
        "(A `sys.setprofile` hook would miss ufunc calls and operators: CPython reports only builtin functions and "
        "methods as C calls.)")

    # main table
    md += ["", "## Train step time, SGD", ""]
    md.append(step_table(sgd))
    md.append("")
    md.append("5-step check: (max relative loss deviation, max parameter deviation relative to the parameter's "
              "largest entry) against the reference.")

    # summary in the issue's format
    md += ["", "### Summary (median per step, ratio to hand-optimized NumPy)", ""]
    keys = [k for k in ORDER if k != "gemm" and any(k in r["stats"] for r in sgd.values())]
    header = ["network", "dtype"] + [LABELS[k] for k in keys]
    rows = []
    for (name, dtype), r in sgd.items():
        s, ref = r["stats"], r["stats"]["hand"]["median"]
        rows.append([name, dtype] + [f"{fmt_s(s[k]['median'])} ({s[k]['median'] / ref:.2f})" if k in s else "—"
                                     for k in keys])
    md.append(md_table(header, rows))

    for optimizer in [o for o in args.optimizers if o != "sgd"]:
        md += ["", f"## Train step time, {OPTIMIZERS[optimizer]}", ""]
        md.append(step_table({(n, d): r for (n, d, o), r in results.items() if o == optimizer}))

    md += ["", "## Every optimizer (interleaved, one process)", ""]
    md.append("Median per step; ratios are symgraph's median to the hand reference of the same optimizer, to PyTorch "
              "and to JAX, all from the same run.")
    md.append("")
    rows = []
    for (name, dtype, optimizer), r in results.items():
        s = r["stats"]
        rows.append([name, dtype, OPTIMIZERS[optimizer]] + [fmt_s(s[k]["median"]) if k in s else "—"
                                                            for k in ("gen", "hand", "torch", "jax")]
                    + [f"**{t}**" if i == 0 else t for i, t in enumerate(peer_ratios(s))])
    md.append(md_table(["network", "dtype", "optimizer", "symgraph", "hand NumPy", "PyTorch eager", "JAX jit",
                        "symgraph ÷ hand", "÷ PyTorch", "÷ JAX"], rows))

    fresh_keys = _fresh_keys(results)
    if fresh_keys:
        md += ["", "## Every optimizer in fresh processes", ""]
        md.append("Each contender alone in a new interpreter: median per step over its blocks; in parentheses the "
                  "ratio to the hand reference timed the same way; `fresh ÷ interleaved` compares each contender's "
                  "fresh-process median with its interleaved median above.")
        md.append("")
        rows = []
        for (name, dtype, optimizer), r in results.items():
            f, s = r["fresh"], r["stats"]
            cells = [f"{fmt_s(f[k]['median'])} ({ratio_text(f, k, 'hand')})" if k in f else "—" for k in fresh_keys]
            growth = [f"{f[k]['median'] / s[k]['median']:.2f}" if k in f else "—" for k in fresh_keys]
            rows.append([name, dtype, OPTIMIZERS[optimizer], *cells, ratio_text(f, "gen", "torch"),
                         ratio_text(f, "gen", "jax"), " / ".join(growth)])
        md.append(md_table(["network", "dtype", "optimizer", *[LABELS[k] for k in fresh_keys], "symgraph ÷ PyTorch",
                            "symgraph ÷ JAX", f"fresh ÷ interleaved ({' / '.join(LABELS[k] for k in fresh_keys)})"],
                           rows))

    medium = [(dtype, r) for (name, dtype), r in sgd.items() if name == "medium"]
    if medium:
        md += ["", "## Medium step against its GEMM time", ""]
        flops = medium_gemm_flops()
        rows = []
        for dtype, r in medium:
            s = r["stats"]
            g = s["gemm"]["median"]
            rows.append([dtype, fmt_s(g), f"{flops / g / 1e9:.0f}", f"{s['gen']['median'] / g:.2f}",
                         f"{s['raw']['median'] / g:.2f}" if "raw" in s else "—", f"{s['hand']['median'] / g:.2f}"])
        md.append(md_table(["dtype", "GEMM only (8 products)", "GFLOP/s", "symgraph ÷ GEMM", "symgraph raw ÷ GEMM",
                            "hand ÷ GEMM"], rows))
        md.append("")
        md.append(f"The 8 products are {flops / 1e9:.2f} GFLOP per step (forward x@W ×3, weight gradients ×3, "
                  "input gradients ×2); bias gradients and elementwise work are the rest of the step.")

    md += ["", "## Compile time", ""]
    rows = []
    for name, dtype, c, total, jc in report["compile_rows"]:
        rows.append([name, dtype, fmt_s(c["build"]), fmt_s(c["grad"]), fmt_s(c["compile"]), f"**{fmt_s(total)}**",
                     fmt_s(c["first_call"]), fmt_s(jc) if jc else "—"])
    md.append(md_table(["network", "dtype", "build graph", "differentiate (SGD updates)", "codegen.compile",
                        "graph → callable", "first call", "JAX jit first call (trace + compile)"], rows))
    md.append("")
    md.append(f"Small network, float32, with `sg.optim.Adam(1e-3)`: graph → callable **{fmt_s(report['adam'])}** "
              f"(target ≤ {fmt_s(ADAM_COMPILE_TARGET)}).")
    md.append("")
    rows = [[d, fmt_s(v["build"]), fmt_s(v["grad"]), fmt_s(v["compile"]), f"**{fmt_s(t)}**", fmt_s(t / d),
             v["lines"]] for d, v, t in report["scaling"]]
    md.append(f"Scaling with depth (tanh MLP, width 64, SGD; median of {report['scaling_reps']} fresh compiles each):")
    md.append("")
    md.append(md_table(["layers", "build graph", "differentiate", "codegen.compile", "graph → callable", "per layer",
                        "source lines"], rows))

    md += ["", "## Memory of one SGD step", ""]
    rows = []
    for (name, dtype), m in report["memory"].items():
        g, h = m["gen"], m["hand"]
        rows.append([name, dtype, fmt_bytes(g["first"]), fmt_bytes(h["first"]),
                     f"**{g['first'] / max(h['first'], 1):.2f}**",
                     f"{m['gen_early']['first'] / max(h['first'], 1):.2f}",
                     fmt_bytes(g["steady"]), fmt_bytes(h["steady"]),
                     fmt_bytes(g["compile_arrays"]), fmt_bytes(m["params_bytes"])])
    md.append(md_table(["network", "dtype", "symgraph first step", "hand first step", "ratio",
                        "ratio, early_updates=True", "symgraph later step", "hand later step",
                        "arrays kept by compile", "parameters (excluded)"], rows))

    md += ["", "## Per-step allocation peak, every optimizer", ""]
    md.append(f"tracemalloc, a later step (the third), its output excluded (see Method). Target (issue 12): ≤ "
              f"{fmt_bytes(STEP_PEAK_TARGET)} on medium for every optimizer.")
    md.append("")
    rows = [[name, dtype, OPTIMIZERS[optimizer], f"**{fmt_bytes(p['gen']['peak'])}**", fmt_bytes(p["hand"]["peak"]),
             f"{fmt_bytes(p['gen']['kept'])} / {fmt_bytes(p['hand']['kept'])}"]
            for (name, dtype, optimizer), p in report["peaks"].items()]
    md.append(md_table(["network", "dtype", "optimizer", "symgraph", "hand NumPy",
                        "output (excluded): symgraph / hand"], rows))

    md += ["", "## NumPy calls per step", ""]
    calls = report["calls"]
    md.append(f"Counted in {args.dtypes[0]} (the calls do not depend on the dtype).")
    md.append("")
    rows = []
    for (name, optimizer), c in calls.items():
        gen_total = total_calls(c["gen"]) if "gen" in c else None
        hand_total = total_calls(c["hand"])
        rows.append([name, OPTIMIZERS[optimizer], gen_total, hand_total,
                     f"{gen_total / hand_total:.2f}" if gen_total else "—"])
    md.append(md_table(["network", "optimizer", "symgraph (generated function)", "hand NumPy", "ratio"], rows))
    md.append("")
    for (name, optimizer), c in calls.items():
        for who in ("gen", "hand"):
            if who in c:
                top = ", ".join(f"`{k}` {v}" for k, v in c[who].most_common() if not k.startswith(".T"))
                md.append(f"- {name} {OPTIMIZERS[optimizer]}, {LABELS[who]}: {top}")

    md += ["", "## Targets (issue 6, item 3; issue 12)", ""]
    md.append("Issue 12 (\"every optimizer at SGD's speed\"): Adam and Momentum rows carry the network's SGD ratio "
              "target, with the fresh-process ratio in the note; and the per-step allocation peak of the medium step.")
    md.append("")
    md.append(md_table(["what", "measured", "target", "", "note"], report["target_rows"]))
    if report["failures"]:
        md += ["", "**Checks that failed:**", ""] + [f"- {f}" for f in report["failures"]]

    excerpt_src = next((r["source"] for (name, dtype), r in sgd.items() if name == "medium"), None)
    if excerpt_src:
        md += ["", "## Excerpt of the generated medium train step (as generated in this run)", "", "```python",
               _excerpt(excerpt_src), "```"]
    for optimizer in [o for o in args.optimizers if o != "sgd"]:
        found = next(((dtype, r["source"]) for (name, dtype, o), r in results.items()
                      if name == "medium" and o == optimizer), None)
        if found and _optimizer_excerpt(found[1]):
            md += ["", f"Its {OPTIMIZERS[optimizer]} update (medium, {found[0]}, the start of the generated optimizer "
                       "part):", "", "```python", _optimizer_excerpt(found[1]), "```"]

    md += ["", "## The CuPy backend on a GPU (issue 13): unmeasured", "",
           "No GPU here: `backend=\"cupy\"` is checked on the CPU stand-in (`codegen.testing.emulated_cupy`, "
           "the parity tests) and with nvcc, not timed. `benchmarks/gpu_check.py`, run on a machine with an "
           "NVIDIA GPU, times the medium and deep float32 steps (Adam and SGD) against PyTorch CUDA eager "
           "and torch.compile; targets: <= 1.2x eager on medium, < 1.0x on deep. Until someone runs it, "
           "those numbers are unmeasured."]
    md += ["", "## Beyond NumPy dispatch: what a loop-fusing backend needs from the IR", "", DESIGN_SKETCH]
    md += ["## Console output", "", "```", *lines, "```", ""]
    return "\n".join(md)


if __name__ == "__main__":
    sys.exit(main())

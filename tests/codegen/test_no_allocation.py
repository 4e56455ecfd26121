"""A training step allocates nothing the size of the parameters: fused expressions are lowered to
ufunc calls writing into buffers (codegen/lowering.py), and new state is written into the state's
own array, after every read of the old one (issue 12)."""

import gc
import tracemalloc

import numpy as np
import pytest
import sympy as sp

import codegen
import symgraph as sg
from codegen.lowering import OUT, Leaf, Lowered, Op

from test_memory_plan import batches, mlp, planned_matches_plain

NUMPY_TRACE_DOMAIN = 389047  # NumPy reports its array data to tracemalloc under this domain (as benchmarks/ does)

ALL_OPTIMIZERS = {
    "sgd": lambda: sg.optim.SGD(0.1), "momentum": lambda: sg.optim.Momentum(0.1),
    "nesterov": lambda: sg.optim.Momentum(0.1, nesterov=True), "adagrad": lambda: sg.optim.AdaGrad(0.05),
    "rmsprop": lambda: sg.optim.RMSProp(0.01), "adam": lambda: sg.optim.Adam(0.01),
    "adamw": lambda: sg.optim.AdamW(0.01), "nadam": lambda: sg.optim.Nadam(0.01),
    "adadelta": lambda: sg.optim.Adadelta(1.0), "rprop": lambda: sg.optim.Rprop(0.01),
}


# -- the budget ---------------------------------------------------------------------------------
def medium_step(optimizer):
    """The medium network of benchmarks/train_step.py: 784-512-512-10 ReLU, cross-entropy, batch 256, float32."""
    rng = np.random.default_rng(0)
    sizes = (784, 512, 512, 10)
    with sg.fresh_graph():
        x = sg.placeholder("x", shape=("batch", 784), dtype="float32")
        y = sg.placeholder("y", shape=("batch",), dtype="int64")
        h, params = x, []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            W = sg.parameter(f"W{i + 1}", value=(rng.standard_normal((a, b)) / np.sqrt(a)).astype("float32"))
            c = sg.parameter(f"b{i + 1}", value=np.zeros(b, "float32"))
            params.append(W)
            params.append(c)
            h = h @ W + c
            h = sg.relu(h) if i < len(sizes) - 2 else h
        loss = sg.softmax_cross_entropy(h, y)
        f = codegen.compile([x, y], loss, updates=ALL_OPTIMIZERS[optimizer]().updates(loss, params))
    return f, rng.standard_normal((256, 784)).astype("float32"), rng.integers(0, 10, size=256)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_a_training_step_allocates_at_most_64_kib_after_the_first_call(optimizer):
    f, xb, yb = medium_step(optimizer)
    f(xb, yb)  # the first call with this batch size allocates the buffers
    gc.collect()
    tracemalloc.start()
    try:
        f(xb, yb)
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        f(xb, yb)
        peak = tracemalloc.get_traced_memory()[1] - before
        numpy_left = sum(s.size for s in tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.DomainFilter(True, NUMPY_TRACE_DOMAIN)]).statistics("filename"))
    finally:
        tracemalloc.stop()
    assert peak <= 64 * 1024, (peak, f.source)
    assert numpy_left <= 64 * 1024  # nor keeps new arrays alive


@pytest.mark.parametrize("optimizer", sorted(set(ALL_OPTIMIZERS) - {"rprop"}))  # Rprop's np.where has no out=
def test_state_is_written_in_place_and_never_copied_back(optimizer):
    f, _, _ = medium_step(optimizer)
    copied = [line.split("[...]")[0].strip() for line in f.source.splitlines() if "[...] =" in line]
    assert all(name.startswith("W") for name in copied), f.source  # parameters only (AdamW's W*(1-lr*wd) - ...)
    assert "# updates: nothing above writes a parameter or state" in f.source


# -- lowered equals plain -----------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", sorted(ALL_OPTIMIZERS))
@pytest.mark.parametrize("early", [False, True], ids=["atomic", "early_updates"])
def test_every_optimizer_computes_the_same_with_the_memory_plan_on_and_off(optimizer, early, rng):
    x, y, loss, params = mlp(rng)
    updates = ALL_OPTIMIZERS[optimizer]().updates(loss, params)
    leaves = list(updates)

    def run(step):
        return [[float(step(xb, yb)), *(leaf.value.copy() for leaf in leaves)]
                for xb, yb in batches(np.random.default_rng(1), [5, 3, 5, 5])]

    planned_matches_plain(leaves, lambda plan: codegen.compile([x, y], loss, updates=updates, memory_plan=plan,
                                                               early_updates=early), run)


def test_a_state_read_by_two_updates_is_overwritten_after_both_read_it():
    """w's step and t's new value read the old s; s's new value is written into s in place."""
    g = sg.placeholder("g", shape=(4,))
    s = sg.state("s", np.arange(4.0))
    t = sg.state("t", np.ones(4))
    w = sg.parameter("w", value=np.full(4, 10.0))
    updates = {s: 0.5 * s + g, t: sg.exp(s) * t + g * g, w: w - 0.1 * s * g}
    f = codegen.compile([g], sg.sum(w * g), updates=updates)
    assert "out=s)" in f.source and "[...] =" not in f.source, f.source
    gv = np.array([1.0, -2.0, 3.0, 0.5])
    s0, t0, w0 = s.value.copy(), t.value.copy(), w.value.copy()
    f(gv)
    np.testing.assert_allclose(s.value, 0.5 * s0 + gv, rtol=1e-15)
    np.testing.assert_allclose(t.value, np.exp(s0) * t0 + gv * gv, rtol=1e-15)
    np.testing.assert_allclose(w.value, w0 - 0.1 * s0 * gv, rtol=1e-15)


def test_states_whose_new_values_read_each_other_keep_a_copy():
    """a <- b + a/2 and b <- a + b/2 at once: one of them cannot be overwritten first."""
    g = sg.placeholder("g", shape=(3,))
    a = sg.state("a", np.array([1.0, 2.0, 3.0]))
    b = sg.state("b", np.array([-1.0, 0.5, 4.0]))
    f = codegen.compile([g], sg.sum(g), updates={a: b + 0.5 * a * g, b: a + 0.5 * b * g})
    a0, b0, gv = a.value.copy(), b.value.copy(), np.array([1.0, 2.0, -1.0])
    f(gv)
    np.testing.assert_allclose(a.value, b0 + 0.5 * a0 * gv, rtol=1e-15)
    np.testing.assert_allclose(b.value, a0 + 0.5 * b0 * gv, rtol=1e-15)


def test_a_state_that_is_also_returned_is_not_overwritten_early():
    g = sg.placeholder("g", shape=(3,))
    s = sg.state("s", np.ones(3))
    f = codegen.compile([g], [sg.sum(g), s * 2.0], updates={s: 0.5 * s + g})
    _, doubled = f(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(doubled, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(s.value, [1.5, 2.5, 3.5])


# -- the lowering itself: a small interpreter runs the calls with the out buffer shared ------------
def run_steps(lowered: Lowered, arrays: dict[str, np.ndarray], out: np.ndarray, aliased: frozenset):
    """Run the calls of ``lowered`` on NumPy arrays; ``out`` may be one of ``arrays``."""
    steps, kinds = lowered.steps(aliased)
    registers = [out] + [np.empty(out.shape, bool if k else out.dtype) for k in kinds]
    for step in steps:
        operands = [registers[o] if isinstance(o, int) else eval(o.text, {"np": np}, arrays) for o in step.operands]
        getattr(np, step.fn.split(".")[-1])(*operands, out=registers[step.dest])
    return out


def tree_of(expr, symbols):
    """The Op tree the NumPy printer builds for ``expr`` (arguments named after the symbols)."""
    from codegen.backends.numpy import NumPyPrinter, _Lowering

    class Node:  # what _Lowering reads of a node: its op's expression and symbols, inputs' shapes
        shape = (5,)
        dtype = np.dtype(float)
        op = type("op", (), {"expr": expr, "symbols": tuple(symbols)})
        inputs = [type("input", (), {"shape": (5,)}) for _ in symbols]

    from codegen.printer import Code
    return _Lowering(NumPyPrinter(), Node, [Code(str(s)) for s in symbols]).lowered()


X, Y, Z = sp.symbols("x y z")
CASES = {
    "out is an input read in both operands": X * (X + 1.0) + sp.exp(Y),
    "an input used twice": X * X + X,
    "an aliased leaf beside a compound operand": X - sp.sqrt(Y * Z + 1.0),
    "nested divisions": (X + Y) / (Z * Z + 1.0) - (X - Y) / (Y * Y + 2.0),
    "negations folded": -X * Y - Z,
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("alias", ["none", "x", "y", "z"])
def test_lowered_calls_compute_the_expression_when_the_out_buffer_is_an_input(case, alias):
    expr = CASES[case]
    symbols = sorted(expr.free_symbols, key=str)
    if alias != "none" and sp.Symbol(alias) not in symbols:
        pytest.skip(f"{case}: no {alias}")
    lowered = tree_of(expr, symbols)
    assert lowered is not None
    rng = np.random.default_rng(0)
    arrays = {str(s): rng.uniform(0.5, 2.0, size=5) for s in symbols}
    expected = sp.lambdify(symbols, expr, "numpy")(*arrays.values())
    aliased = frozenset() if alias == "none" else frozenset([[str(s) for s in symbols].index(alias)])
    out = arrays[alias] if alias != "none" else np.empty(5)
    np.testing.assert_allclose(run_steps(lowered, arrays, out, aliased), expected, rtol=1e-14)


def test_two_compound_operands_meet_in_one_scratch_buffer():
    # Sethi-Ullman: the bigger operand first into the out buffer, the other into one scratch buffer
    tree = Op("np.add", (Op("np.multiply", (Op("np.sqrt", (Leaf("a", frozenset([0])),)), Leaf("b"))),
                         Op("np.exp", (Leaf("c", frozenset([1])),))))
    steps, kinds = Lowered(tree, "sqrt(a) * b + exp(c)").steps(frozenset())
    assert [s.dest for s in steps] == [OUT, OUT, 1, OUT] and kinds == (False,)
    # when the out buffer is c's, exp(c) goes first into it (one call reads and writes it), then the rest
    steps, kinds = Lowered(tree, "").steps(frozenset([1]))
    assert [(s.fn, s.dest) for s in steps] == [("np.exp", OUT), ("np.sqrt", 1), ("np.multiply", 1), ("np.add", OUT)]
    # when both operands read the out buffer's argument, both are computed before it is written
    tree = Op("np.add", (Op("np.sqrt", (Leaf("c", frozenset([1])),)), Op("np.exp", (Leaf("c", frozenset([1])),))))
    steps, _ = Lowered(tree, "").steps(frozenset([1]))
    assert [(s.fn, s.dest) for s in steps] == [("np.exp", 1), ("np.sqrt", OUT), ("np.add", OUT)]

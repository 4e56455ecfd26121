"""A form the NumPy backend uses for large parameters (issue: optimizer speed): a lowered
elementwise expression over a large array runs its calls on blocks of rows, so that the block's
operands stay in cache between the calls (``for _i in range(...)``). It must compute what the
plain calls compute."""

import numpy as np
import pytest

import codegen
import symgraph as sg
from codegen.backends.numpy import NumPyPrinter
from codegen.lowering import Blocks, Leaf, Lowered, Op

OPTIMIZERS = {
    "sgd": lambda: sg.optim.SGD(0.05), "momentum": lambda: sg.optim.Momentum(0.05),
    "adam": lambda: sg.optim.Adam(0.01), "adamw": lambda: sg.optim.AdamW(0.01),
    "rmsprop": lambda: sg.optim.RMSProp(0.01), "nadam": lambda: sg.optim.Nadam(0.01),
}


def wide_step(optimizer, dtype, early=False, seed=0):
    """x (batch, 400) -> 400x784 ReLU -> 784x3, cross-entropy: W1 is over 1 MiB in float32 and
    float64 (four blocks or more: blocks of 80 or 40 rows)."""
    rng = np.random.default_rng(seed)
    with sg.fresh_graph():
        x = sg.placeholder("x", shape=("batch", 400), dtype=dtype)
        y = sg.placeholder("y", shape=("batch",), dtype="int64")
        W1 = sg.parameter("W1", value=rng.standard_normal((400, 784)) / 20, dtype=dtype)
        b1 = sg.parameter("b1", value=np.zeros(784), dtype=dtype)
        W2 = sg.parameter("W2", value=rng.standard_normal((784, 3)) / 20, dtype=dtype)
        loss = sg.softmax_cross_entropy(sg.relu(x @ W1 + b1) @ W2, y)
        updates = OPTIMIZERS[optimizer]().updates(loss)
        f = codegen.compile([x, y], loss, updates=updates, early_updates=early)
    return f, list(updates)


def trajectory(optimizer, dtype, early=False):
    f, leaves = wide_step(optimizer, dtype, early)
    rng = np.random.default_rng(1)
    out = []
    for n in (16, 9, 16):
        xb, yb = rng.standard_normal((n, 400)).astype(dtype), rng.integers(0, 3, size=n)
        out.append([float(f(xb, yb)), *(leaf.value.copy() for leaf in leaves)])
    return f.source, out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("early", [False, True], ids=["atomic", "early_updates"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_blocks_compute_what_the_plain_calls_compute(optimizer, early, dtype, monkeypatch):
    source, fast = trajectory(optimizer, dtype, early)
    if optimizer in ("adam", "adamw", "rmsprop", "nadam"):
        assert "for _i in range(0, 400, " in source, source
    monkeypatch.setattr(NumPyPrinter, "block_bytes", None)
    plain_source, plain = trajectory(optimizer, dtype, early)
    assert "for _i in" not in plain_source
    tol = 1e-5 if dtype == "float32" else 1e-12
    for got, want in zip(fast, plain):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.max(np.abs(b)))


# -- the lowering: when a value may be computed in blocks ------------------------------------------
def blocked_tree():
    """out = a * 2 + sqrt(b) over arguments a (position 0) and b (position 1), both with the rows."""
    a, b = Leaf("a", frozenset([0]), rows=True), Leaf("b", frozenset([1]), rows=True)
    return Op("np.add", (Op("np.multiply", (a, Leaf("2.0"))), Op("np.sqrt", (b,))))


def test_blocked_lines_slice_the_arguments_with_rows_and_use_block_sized_scratch():
    lowered = Lowered(blocked_tree(), "a * 2.0 + sqrt(b)", Blocks(4, 12))
    lines = lowered.lines("buf1", ("buf2",), frozenset())
    assert lines[0].startswith("for _i in range(0, 12, 4):")
    assert lines[-1] == "buf1"
    assert "np.multiply(a[_i:_i + 4], 2.0, out=buf1[_i:_i + 4])" in lines[1]
    assert lowered.scratch_shape((12, 5), "buf1", frozenset()) == (4, 5)
    rng = np.random.default_rng(0)
    env = {"np": np, "a": rng.random((12, 5)), "b": rng.random((12, 5)), "buf1": np.empty((12, 5)),
           "buf2": np.empty((4, 5))}
    exec("\n".join(lines[:-1]), env)
    np.testing.assert_allclose(env["buf1"], env["a"] * 2.0 + np.sqrt(env["b"]), rtol=1e-15)


def test_an_argument_sharing_the_buffer_under_another_name_turns_the_blocks_off():
    lowered = Lowered(blocked_tree(), "", Blocks(4, 12))
    assert lowered.blocked("a", frozenset([0])) is not None  # out is the very array a: row by row is safe
    assert lowered.blocked("buf1", frozenset([0])) is None  # a view of buf1 (perhaps transposed): not blocked
    assert lowered.scratch_shape((12, 5), "buf1", frozenset([0])) == (12, 5)
    assert not lowered.lines("buf1", ("buf2",), frozenset([0]))[0].startswith("for ")

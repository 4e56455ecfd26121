"""The backend seam: a second backend, defined here, is registered, compiled and run.

"NumPy without the memory plan" is the plain form a teacher shows: every value is a fresh
array (no buffers, no ``out=``). It is a subclass of the NumPy backend whose printer has no
form that writes into a buffer; nothing else in codegen is told about it.
"""

import numpy as np
import pytest

import codegen
import codegen.backends
import symgraph as sg
from codegen.backends.numpy import NumPyBackend, NumPyPrinter
from codegen.printer import Code
from symgraph.graph import Op, apply


class PlainPrinter(NumPyPrinter):
    """NumPy expressions only: no op is ever written into a buffer."""

    def out_call(self, node, args):
        return None


class PlainNumPy(NumPyBackend):
    name = "plain-numpy"
    header = "Needs only NumPy. Plain form: every value is a new array."
    printer_class = PlainPrinter


@pytest.fixture
def plain_backend(monkeypatch):
    monkeypatch.setitem(codegen.backends.BACKENDS, PlainNumPy.name, PlainNumPy())
    return PlainNumPy.name


def mlp(rng):
    x = sg.placeholder("x", shape=("batch", 6))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W1 = sg.parameter("W1", value=rng.normal(size=(6, 8)) * 0.5)
    b1 = sg.parameter("b1", value=np.zeros(8))
    W2 = sg.parameter("W2", value=rng.normal(size=(8, 4)) * 0.5)
    b2 = sg.parameter("b2", value=np.zeros(4))
    loss = sg.softmax_cross_entropy(sg.relu(x @ W1 + b1) @ W2 + b2, y)
    return x, y, loss, [W1, b1, W2, b2]


def test_a_registered_backend_compiles_and_trains_like_the_default(plain_backend, rng):
    x, y, loss, params = mlp(rng)
    updates = sg.optim.Adam(0.01).updates(loss, params)
    leaves = list(updates)
    start = [leaf.value.copy() for leaf in leaves]
    data = [(rng.normal(size=(n, 6)), rng.integers(0, 4, size=n)) for n in (5, 3, 5)]
    runs, sources = {}, {}
    for backend in ("numpy", plain_backend):
        for leaf, value in zip(leaves, start):
            leaf.value = value.copy()
        step = codegen.compile([x, y], [loss, *sg.grad(loss, params)], updates=updates, backend=backend)
        sources[backend] = step.source
        runs[backend] = [[np.array(v) for v in step(xb, yb)] + [leaf.value.copy() for leaf in leaves]
                         for xb, yb in data]
    for got, want in zip(runs[plain_backend], runs["numpy"]):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    plain = sources[plain_backend]
    assert "Plain form: every value is a new array." in plain and "Needs only NumPy." in sources["numpy"]
    assert "out=buf" not in plain and "_BUFFERS" not in plain and "    del " not in plain
    assert "out=buf" in sources["numpy"]


def test_backends_are_looked_up_by_name(plain_backend):
    assert isinstance(codegen.backends.get("numpy"), NumPyBackend)
    assert isinstance(codegen.backends.get(plain_backend), PlainNumPy)
    assert codegen.backends.get("cupy").name == "cupy"
    with pytest.raises(ValueError, match="backend"):
        codegen.backends.get("fortran")


# -- an op that declares no facts is handled conservatively ----------------------------------
def flip_backend():
    """An op added without declaring ``view_of`` (x[::-1], a view), and a NumPy backend that prints it.
    Built inside the test so the walk over every op class (test_op_registry.py) never sees it."""

    class Flip(Op):
        """x[::-1] along the first axis: a view, added without declaring ``view_of``."""

        name = "flip_rows"

        def infer(self, x):
            return x.shape, x.dtype

        def compute(self, x):
            return x[::-1]

        def vjp(self, node, cot):
            return (apply(self, cot),)

        def jvp(self, node, tangents):
            return apply(self, tangents[0])

    class FlipPrinter(NumPyPrinter):
        def _print_Flip(self, node, x):
            return Code(f"{self.obj(x, node)}[::-1]")

    class FlipNumPy(NumPyBackend):
        name = "numpy-with-flip"
        printer_class = FlipPrinter

    return Flip, FlipNumPy()


def test_an_undeclared_view_of_a_buffer_is_copied_before_it_is_returned(monkeypatch, rng):
    Flip, backend = flip_backend()
    monkeypatch.setitem(codegen.backends.BACKENDS, backend.name, backend)
    assert Flip.view_of is None  # declares nothing: treated as aliasing its input
    x = sg.placeholder("x", shape=("batch", 3))
    W = sg.parameter("W", value=rng.normal(size=(3, 3)))
    h = sg.tanh(x @ W)  # read twice: lives in a buffer
    f = codegen.compile([x], [apply(Flip(), h), h.sum()], backend=backend.name)
    assert "out=buf" in f.source
    xa, xb = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    flipped, _ = f(xa)
    kept = flipped.copy()
    f(xb)  # reuses the buffers: a view of one would change
    np.testing.assert_array_equal(flipped, kept)
    np.testing.assert_allclose(kept, np.tanh(xa @ W.value)[::-1])

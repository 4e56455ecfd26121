"""Property tests: reverse and forward mode on random graphs agree with finite differences.

A graph is a short list of steps. Each step applies one op to nodes picked
from the pool built so far (placeholders first), so nodes are reused (fan-out)
and shapes broadcast against each other. The cost is ``sum(result * w)`` for
a fixed random ``w``; its gradient, compiled with codegen, must match central
finite differences, and forward mode must give the same directional
derivatives.
"""

import operator

import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import codegen
import symgraph as sg

SHAPES = [(3, 4), (4,), (3, 1), (1, 4)]


def _square_of(a):
    """A well-conditioned square matrix built from a: 4 I + 0.3 tanh(a a^T) (or of outer(a, a) for a vector),
    so solve, inv and det see eigenvalues in [2.8, 5.2] whatever a's values."""
    s = a @ a.T if a.ndim == 2 else sg.outer(a, a)
    return np.eye(s.shape[0]) * 4.0 + 0.3 * sg.tanh(s)


# Unary ops: their domains are kept safe by construction (arcsin of 0.9 tanh, log1p of softplus, ...) and
# each is smooth where finite differences probe it (no kinks at values the graphs make: 0 and 1 exactly).
UNARY = {
    "tanh": sg.tanh,
    "sigmoid": sg.sigmoid,
    "sin": sg.sin,
    "square": sg.square,
    "exp_small": lambda a: sg.exp(a * 0.2),
    "log1p_softplus": lambda a: sg.log1p(sg.softplus(a)),
    "expm1_small": lambda a: sg.expm1(a * 0.3),
    "tan_tanh": lambda a: sg.tan(sg.tanh(a)),
    "sinh_small": lambda a: sg.sinh(a * 0.5),
    "cosh_tanh": lambda a: sg.cosh(sg.tanh(a)),
    "arcsin_tanh": lambda a: sg.arcsin(0.9 * sg.tanh(a)),
    "arctan": sg.arctan,
    "arcsinh": sg.arcsinh,
    "erf": sg.erf,
    "gelu": sg.gelu,
    "silu": sg.silu,
    "elu": sg.elu,  # continuously differentiable at 0 (alpha = 1)
    "clip": lambda a: sg.clip(a, -0.77, 0.83),  # kinks away from the values graphs hit exactly (0, 1, 0.5)
    "sqrt_softplus": lambda a: sg.sqrt(sg.softplus(a) + 0.1),
}
BINARY = {
    "add": operator.add,
    "mul": operator.mul,
    "sub": operator.sub,
    "div": lambda a, b: a / (1.0 + sg.square(b)),
    "pow": lambda a, b: (sg.softplus(a) + 0.5) ** sg.tanh(b),
    "logaddexp": sg.logaddexp,
    "hypot": sg.hypot,  # guarded at the origin, which only exact zeros (x - x) reach, with zero gradient
    "arctan2": lambda a, b: sg.arctan2(a, sg.softplus(b)),
}
REDUCE = {"sum": sg.sum, "mean": sg.mean, "prod": sg.prod, "min": sg.min, "norm": sg.norm}
# ops along one axis that keep the shape (cumsum, flip, ...), and the linear algebra on a square matrix made from
# an operand (see _square_of)
ALONG = ["cumsum", "cumprod", "flip", "roll", "pad_shift", "take", "diff"]
LINALG = ["solve", "inv", "det", "einsum", "stack"]
# binary ops are listed twice: they are where fan-out and broadcasting happen
OPS = [*UNARY, *BINARY, "add", "mul", "sub", *REDUCE, "matmul", *ALONG, *LINALG]

# a step: (op, first operand, second operand, axis choice, keepdims). The first operand counts back from
# the newest node (so steps tend to chain), the second from the oldest (so nodes get reused: fan-out).
steps = st.tuples(st.sampled_from(OPS), st.integers(0, 3), st.integers(0, 9), st.integers(0, 3), st.booleans())
graphs = st.fixed_dictionaries(
    {
        "shapes": st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3, unique=True),
        "steps": st.lists(steps, min_size=3, max_size=10),
        "seed": st.integers(0, 2**32 - 1),
    }
)


def _axis(node, choice):
    """None, the first axis, the last axis, or every axis listed explicitly."""
    if choice == 0 or node.ndim == 0:
        return None
    return {1: 0, 2: -1, 3: tuple(range(node.ndim))}[choice]


def _along(op, a, choice):
    """op along one axis of a (the first or the last), keeping a's shape; None for a scalar."""
    if a.ndim == 0:
        return None
    axis = 0 if choice % 2 else -1
    n = a.shape[axis]
    if op == "cumsum":
        return sg.cumsum(a, axis=axis)
    if op == "cumprod":
        return sg.cumprod(a, axis=axis)
    if op == "flip":
        return sg.flip(a, axis=axis)
    if op == "roll":
        return sg.roll(a, 1 + choice // 2, axis=axis)
    if op == "pad_shift":  # shifted by one with a zero coming in: pad, then drop the last entry
        width = [(0, 0)] * a.ndim
        width[axis] = (1, 0)
        index = [slice(None)] * a.ndim
        index[axis] = slice(None, n)
        return sg.pad(a, width)[tuple(index)]
    if op == "take":  # repeated indices: the gradient is a scatter-add
        return sg.take(a, np.array([n - 1, 0, 0, 1][:n]) % n, axis=axis)
    if n < 2:
        return None
    return sg.diff(a, axis=axis)


def _linalg(op, a, b):
    if op == "stack":  # the two operands broadcast to one shape, stacked on a new first axis
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            return None
        return sg.stack([sg.broadcast_to(a, shape), sg.broadcast_to(b, shape)], axis=0)
    if a.ndim == 0 or a.ndim > 2 or b.ndim > 2:
        return None
    m = _square_of(a)
    if op == "solve":
        return sg.solve(m, a)  # (n, n) and (n, k) or (n,)
    if op == "inv":
        return sg.inv(m)
    if op == "det":
        return sg.det(m * 0.25)
    # einsum: a contraction of a and b over a dimension they share
    if a.ndim == 2 and b.ndim == 2:
        if a.shape[1] == b.shape[1]:
            return sg.einsum("ij,kj->ik", a, b)
        if a.shape[0] == b.shape[0]:
            return sg.einsum("ij,ik->jk", a, b)
    if a.ndim == 2 and b.ndim == 1 and a.shape[1] == b.shape[0]:
        return sg.einsum("ij,j->i", a, b)
    if a.ndim == 1 and b.ndim >= 1 and a.shape[0] == b.shape[0]:
        return sg.einsum("i,i...->...", a, b)
    return None


def apply_step(pool, step):
    """The node one step builds, or None when its operands' shapes do not fit together."""
    op, i, j, axis, keepdims = step
    a, b = pool[-1 - i % len(pool)], pool[j % len(pool)]
    try:
        if op in UNARY:
            return UNARY[op](a)
        if op in BINARY:
            return BINARY[op](a, b)
        if op in REDUCE:
            return REDUCE[op](a, axis=_axis(a, axis), keepdims=keepdims)
        if op in ALONG:
            return _along(op, a, axis)
        if op in LINALG:
            return _linalg(op, a, b)
        if a.ndim == 0 or b.ndim == 0:
            return None
        if b.ndim == 2 and a.shape[-1] != b.shape[0]:
            b = b.T  # (3, 4) @ (3, 4).T, (1, 4) @ (3, 4).T, ...
        return a @ b
    except sg.ShapeError:
        return None


def build(spec):
    """Placeholders, the result node, and the pool of every node built."""
    inputs = [sg.placeholder(f"x{k}", shape) for k, shape in enumerate(spec["shapes"])]
    pool = list(inputs)
    for step in spec["steps"]:
        node = apply_step(pool, step)
        if node is not None:
            pool.append(node)
    return inputs, pool[-1]


def _finite_differences(f, values, eps=1e-6):
    grads = []
    for k, v in enumerate(values):
        g = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            up = [w.copy() for w in values]
            down = [w.copy() for w in values]
            up[k][i] += eps
            down[k][i] -= eps
            g[i] = (f(*up) - f(*down)) / (2 * eps)
        grads.append(g)
    return grads


def _problem(spec):
    inputs, result = build(spec)
    rng = np.random.default_rng(spec["seed"])
    values = [rng.uniform(-1.5, 1.5, size=x.shape) for x in inputs]
    weights = rng.normal(size=result.shape)
    cost = (result * weights).sum()
    return inputs, result, weights, cost, values, rng


def check_reverse_mode(spec):
    """sg.grad of the cost, compiled, equals central finite differences of the compiled cost."""
    with sg.fresh_graph():
        inputs, result, weights, cost, values, _ = _problem(spec)
        grads = sg.grad(cost, inputs, disconnected="zero")
        assert [g.shape for g in grads] == [x.shape for x in inputs]
        f = codegen.compile(inputs, [cost, *grads])
        cost_value, *got = f(*values)
        assume(np.isfinite(cost_value) and abs(cost_value) < 1e6)
        numeric = _finite_differences(lambda *v: float(f(*v)[0]), values)
        for x, g, n in zip(inputs, got, numeric):
            scale = max(1.0, float(np.abs(n).max()))
            np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-6 * scale, err_msg=f"d cost / d {x.name}\n{sg.dprint(result)}")


def check_forward_mode(spec):
    """<w, J t> from sg.jvp equals sum_k <grad_k, t_k> from sg.grad; simplify changes no value."""
    with sg.fresh_graph():
        inputs, result, weights, cost, values, rng = _problem(spec)
        tangents = [rng.normal(size=x.shape) for x in inputs]
        (jt,) = sg.jvp([result], inputs, tangents)
        assert jt.shape == result.shape
        grads = sg.grad(cost, inputs, disconnected="zero")
        f = codegen.compile(inputs, [result, jt, *grads])
        result_value, jt_value, *grad_values = f(*values)
        assume(np.all(np.isfinite(result_value)) and np.abs(result_value).max() < 1e6)
        forward = float(np.sum(jt_value * weights))
        reverse = sum(float(np.sum(g * t)) for g, t in zip(grad_values, tangents))
        scale = max(1.0, abs(forward), abs(reverse))
        assert abs(forward - reverse) <= 1e-9 * scale, (forward, reverse, sg.dprint(result))
        # the unsimplified graph computes the same values as the simplified one
        plain = codegen.compile(inputs, [result, jt, *grads], simplify=False)(*values)
        for a, b in zip(plain, [result_value, jt_value, *grad_values]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# Always-run cases, so every run covers broadcasting both ways, keepdims, matmul and fan-out.
BROADCASTING = {
    "shapes": [(3, 1), (1, 4), (4,)],
    "steps": [
        ("mul", 0, 0, 0, False),  # (4,) * (3, 1) -> (3, 4)
        ("sub", 0, 1, 0, False),  # - (1, 4)
        ("sum", 0, 0, 2, True),  # over the last axis, keepdims -> (3, 1)
        ("tanh", 0, 0, 0, False),
        ("add", 0, 0, 0, False),  # + (3, 1): the input is used again
        ("matmul", 0, 1, 0, False),  # (3, 1) @ (1, 4) -> (3, 4)
        ("mean", 0, 0, 1, False),  # over the first axis -> (4,)
    ],
    "seed": 1,
}
FAN_OUT = {
    "shapes": [(3, 4)],
    "steps": [
        ("square", 0, 0, 0, False),
        ("mul", 0, 0, 0, False),  # x**2 * x
        ("matmul", 0, 0, 0, False),  # (3, 4) @ x.T -> (3, 3)
        ("sigmoid", 0, 0, 0, False),
        ("exp_small", 0, 0, 0, False),
        ("sum", 0, 0, 3, False),  # over every axis -> ()
    ],
    "seed": 2,
}
# the new ops (issue 16) on one graph: linear algebra, ops along an axis, and the stable built-ins
NEW_OPS = {
    "shapes": [(3, 4), (4,)],
    "steps": [
        ("solve", 0, 0, 0, False),  # x1 (4,) against 4 I + 0.3 tanh(outer(x1, x1)) -> (4,)
        ("logaddexp", 0, 0, 0, False),  # with x0 (3, 4) -> (3, 4)
        ("cumprod", 0, 0, 2, False),  # along the first axis
        ("take", 0, 0, 0, False),  # along the last axis, index 0 twice
        ("einsum", 0, 1, 0, False),  # "ij,j->i" with x1 -> (3,)
        ("arcsin_tanh", 0, 0, 0, False),
        ("hypot", 0, 1, 0, False),  # with x1: (3,) against (4,) does not broadcast, skipped
        ("log1p_softplus", 0, 0, 0, False),
        ("prod", 0, 0, 0, False),  # -> ()
    ],
    "seed": 3,
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(BROADCASTING)
@example(FAN_OUT)
@example(NEW_OPS)
@given(graphs)
def test_reverse_mode_matches_finite_differences(spec):
    check_reverse_mode(spec)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(BROADCASTING)
@example(FAN_OUT)
@example(NEW_OPS)
@given(graphs)
def test_forward_mode_agrees_with_reverse_mode(spec):
    check_forward_mode(spec)


def test_the_fixed_examples_build_the_graphs_they_describe():
    for spec, ops, shape in [
        (BROADCASTING, ["multiply", "subtract", "sum", "tanh", "add", "matmul", "mean"], (4,)),
        (FAN_OUT, ["square", "multiply", "transpose", "matmul", "sigmoid", "exp", "sum"], ()),
        (NEW_OPS, ["solve", "logaddexp", "cumprod", "take", "einsum", "arcsin", "log1p", "prod"], ()),
    ]:
        with sg.fresh_graph():
            inputs, result = build(spec)
            assert result.shape == shape
            built = iter(n.op.name for n in sg.topo_sort([result]) if n.inputs)
            assert all(op in built for op in ops), sg.dprint(result)  # ops appear in this order

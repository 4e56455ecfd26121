"""Per-op tests, table-driven: one row per public op (and per interesting variant).

For every row of ``CASES``:

- ``test_forward``: the value computed by the generated code
  (``codegen.evaluate``) equals a NumPy reference, and so does a direct
  interpretation of the graph through each node's ``op.compute``;
- ``test_grad_matches_finite_differences``: ``sg.grad`` of the random
  projection ``sum(op(x) * R)``, compiled, equals central finite differences
  of the compiled forward value (float64, domain-safe samplers);
- ``test_jvp_agrees_with_vjp``: ``<c, J t>`` computed with ``sg.jvp`` equals
  ``<J^T c, t>`` computed with ``sg.vjp``; one generic test over every
  differentiable row covers both rules of every op.

Then dedicated tests: numerical stability at +-1000, second derivatives
(reverse over reverse) and float32 graphs.

``tests/symgraph/test_op_registry.py`` loads ``CASES`` from this file to check
that every op class is reached by some row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import sympy

import codegen
import symgraph as sg
from symgraph.graph import apply, topo_sort
from symgraph.ops import Ungather, Untake  # noqa: I001  (issue 16: the scatter-adds, built directly)
from symgraph.ops import (
    AddAt, AvgPool2DGrad, Conv2DFromColumns, Conv2DTranspose, Conv2DWeightGrad, Conv2DWeightGradFromColumns,
    ConvColumns, MaxPool2DGrad, MaxPool2DPick, Unpick, pick,
)

EPS = 1e-6  # finite-difference step (float64)
FD_RTOL, FD_ATOL = 1e-6, 1e-8
FWD_RTOL, FWD_ATOL = 1e-12, 1e-12
JVP_RTOL = 1e-10


# -- domain-safe samplers: (rng, shape) -> array -----------------------------------
def normal(rng, shape):
    return rng.normal(size=shape)


def positive(rng, shape):
    """Away from 0, for log, sqrt, division and non-integer powers."""
    return rng.uniform(0.5, 2.0, size=shape)


def away_from_zero(rng, shape):
    """|x| >= 0.2: away from the kink of relu, abs, step, leaky_relu and where's condition."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.5, size=shape)


def off_hard_tanh_kinks(rng, shape):
    """|x| <= 0.8 or 1.2 <= |x| <= 2: away from the kinks of clip(x, -1, 1) at +-1."""
    inside = rng.uniform(-0.8, 0.8, size=shape)
    outside = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(1.2, 2.0, size=shape)
    return np.where(rng.random(size=shape) < 0.5, inside, outside)


def distinct(rng, shape):
    """All entries at least 0.15 apart: max has no ties, even after a finite-difference step."""
    n = math.prod(shape)
    grid = (rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, size=n)
    return grid.reshape(shape)


def odd_quarters(rng, shape):
    """Odd multiples of 0.25; never within 0.25 of a multiple of 0.5 (see ``halves``)."""
    return (2 * rng.integers(-6, 6, size=shape) + 1) * 0.25


def halves(rng, shape):
    """Multiples of 0.5: never tie with ``odd_quarters`` in maximum/minimum."""
    return rng.integers(-3, 4, size=shape) * 0.5


def small_ints(rng, shape):
    """Floats on a coarse integer grid, so comparisons see plenty of ties."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


def probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, size=shape)


def prob_rows(rng, shape):
    e = np.exp(rng.normal(size=shape))
    return e / e.sum(axis=-1, keepdims=True)


def one_hot_rows(rng, shape):
    return np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]


def domain_edges(rng, shape):
    """Negative, zero, positive and infinite values, where unsafe rewrites would change the result."""
    return np.resize(np.array([-1.0, 0.0, 2.0, np.inf, -np.inf, 0.5]), shape)


def off_integers(rng, shape):
    """k + u with 0.2 <= u <= 0.8: away from the jumps of floor, ceiling and Mod."""
    return rng.integers(-3, 4, size=shape) + rng.uniform(0.2, 0.8, size=shape)


def divisors(rng, shape):
    """+-1, 2 or 4: an ``off_integers`` value over one of these is still off the integers."""
    return rng.choice([1.0, 2.0, 4.0, -2.0], size=shape)


# -- linear algebra (issue 16) -------------------------------------------------------------------
def well_conditioned(rng, shape):
    """Square matrices (in the last two axes) near 3 I: far from singular, for solve, inv and det."""
    return rng.normal(size=shape) * 0.5 + 3.0 * np.eye(shape[-1])


def near_singular(rng, shape):
    """Square matrices with one singular value ~1e-3 (an edge for solve and slogdet; still invertible)."""
    u, _, vt = np.linalg.svd(rng.normal(size=shape))
    s = np.linspace(2.0, 1.0, shape[-1])
    s[..., -1] = 1e-3
    return (u * s[..., None, :]) @ vt


def zeros_and_normal(rng, shape):
    """Rows of zeros (where the norm has no derivative) and rows of normal numbers."""
    x = rng.normal(size=shape)
    x[..., 0, :] = 0.0
    return x
# -- issue 16's elementwise built-ins ------------------------------------------------------
def inside_unit(rng, shape):
    """|x| <= 0.9: inside the domains of arcsin, arccos and arctanh, away from their poles at +-1."""
    return rng.uniform(-0.9, 0.9, size=shape)


def above_minus_one(rng, shape):
    """x >= -0.5: inside log1p's domain, away from its pole at -1."""
    return rng.uniform(-0.5, 2.0, size=shape)


def inside_tan_period(rng, shape):
    """|x| <= 1.2: away from tan's poles at +-pi/2."""
    return rng.uniform(-1.2, 1.2, size=shape)


def elementwise_edges(rng, shape):
    """Zeros of both signs, negatives, +-1 (the edges of arcsin and arctanh), -1 (log1p's), tiny and large
    values, infinities and NaN."""
    return np.resize(np.array([-2.0, -1.0, -0.0, 0.0, 1e-10, 0.5, 1.0, 2.0, 1e4, np.inf, -np.inf, np.nan]), shape)


def elementwise_edges_other(rng, shape):
    """A second operand for the binary functions at their edges: zeros of both signs, negatives, infinities, NaN."""
    return np.resize(np.array([0.0, -0.0, 2.0, -2.0, 0.5, np.inf, 1.0, -np.inf, np.nan, 3.0, -1e4, 0.0]), shape)


# -- issue 16 (redops) samplers ----------------------------------------------------------------
def with_zeros(rng, shape):
    """Normal values with about a third of the entries exactly 0 (products, cumulative products)."""
    return np.where(rng.random(size=shape) < 0.35, 0.0, rng.normal(size=shape))


def zeros_at(*positions):
    """Normal values, 0 at these positions of the last axis (a row with one zero, or two)."""
    def sample(rng, shape):
        x = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        x[..., list(positions)] = 0.0
        return x

    return sample


def large(rng, shape):
    """Values near 1000: exp overflows unless shifted."""
    return 1000.0 + rng.uniform(-3.0, 3.0, size=shape)


def labels(k):
    def sample(rng, shape):
        return rng.integers(0, k, size=shape)

    return sample


# -- NumPy references ------------------------------------------------------------------
def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_logsumexp(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def np_softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis=axis, keepdims=True)


np_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_gelu(x):
    return x * (1.0 + np_erf(x / math.sqrt(2.0))) / 2.0


def np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946  # PyTorch's


def np_reduce(rows, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda r: r}[reduction](rows)


def np_take_label(x, y):
    return np.take_along_axis(x, y[..., None], axis=-1)[..., 0]


def np_untake(v, i, n):
    """np.take(x, i, axis=1)'s adjoint for v (a, len(i), b): a loop of additions."""
    out = np.zeros((v.shape[0], n, v.shape[2]))
    for k, j in enumerate(i):
        out[:, j] += v[:, k]
    return out


def np_ungather(v, i, n):
    out = np.zeros((v.shape[0], n))
    for r, c in np.ndindex(v.shape):
        out[r, i[r, c]] += v[r, c]
    return out


def np_embed(v, shape, index):
    out = np.zeros(shape)
    out[index] = v
    return out


# Convolution and pooling, one output pixel at a time (loops: the reference, not the method).
def _pad4(x, p, fill=0.0):
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p[0], p[1]), (p[2], p[3])], constant_values=fill)


def _taps(i, j, k, s, d):
    """The rows and columns window (i, j) reads."""
    return np.s_[..., i * s[0]:i * s[0] + d[0] * (k[0] - 1) + 1:d[0], j * s[1]:j * s[1] + d[1] * (k[1] - 1) + 1:d[1]]


def _out_hw(size, k, s, p, d):
    return tuple((n + a + b - dd * (kk - 1) - 1) // ss + 1 for n, kk, ss, a, b, dd in zip(size, k, s, p[::2], p[1::2], d))


def np_conv2d(x, w, s=(1, 1), p=(0, 0, 0, 0), d=(1, 1), g=1):
    n, c, o, k = x.shape[0], x.shape[1], w.shape[0], w.shape[2:]
    xp, (ho, wo) = _pad4(x, p), _out_hw(x.shape[2:], k, s, p, d)
    wg = w.reshape(g, o // g, c // g, *k)
    out = np.zeros((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[_taps(i, j, k, s, d)].reshape(n, g, c // g, *k)
            out[:, :, i, j] = np.einsum("ngcab,gocab->ngo", patch, wg).reshape(n, o)
    return out


def np_conv_transpose2d(gy, w, size, s=(1, 1), p=(0, 0, 0, 0), d=(1, 1), g=1):
    n, o, ho, wo = gy.shape
    cg, k = w.shape[1], w.shape[2:]
    out = np.zeros((n, g * cg, size[0] + p[0] + p[1], size[1] + p[2] + p[3]))
    wg = w.reshape(g, o // g, cg, *k)
    for i in range(ho):
        for j in range(wo):
            share = np.einsum("ngo,gocab->ngcab", gy[:, :, i, j].reshape(n, g, o // g), wg)
            out[_taps(i, j, k, s, d)] += share.reshape(n, g * cg, *k)
    return out[:, :, p[0]:p[0] + size[0], p[2]:p[2] + size[1]]


def np_conv2d_weight_grad(x, gy, k, s=(1, 1), p=(0, 0, 0, 0), d=(1, 1), g=1):
    n, c = x.shape[:2]
    o = gy.shape[1]
    xp, out = _pad4(x, p), np.zeros((g, o // g, c // g, *k))
    for i in range(gy.shape[2]):
        for j in range(gy.shape[3]):
            patch = xp[_taps(i, j, k, s, d)].reshape(n, g, c // g, *k)
            out += np.einsum("ngcab,ngo->gocab", patch, gy[:, :, i, j].reshape(n, g, o // g))
    return out.reshape(o, c // g, *k)


def _pool_loop(x, k, s, p, fill, reduce):
    xp, (ho, wo) = _pad4(x, p, fill), _out_hw(x.shape[-2:], k, s, p, (1, 1))
    out = np.zeros(x.shape[:-2] + (ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[..., i, j] = reduce(xp[_taps(i, j, k, s, (1, 1))].reshape(x.shape[:-2] + (-1,)))
    return out


def np_max_pool2d(x, k, s=None, p=(0, 0, 0, 0)):
    return _pool_loop(x, k, s or k, p, -np.inf, lambda v: v.max(-1))


def np_avg_pool2d(x, k, s=None, p=(0, 0, 0, 0)):
    return _pool_loop(x, k, s or k, p, 0.0, lambda v: v.mean(-1))


def np_max_pool2d_grad(x, gy, k, s, p=(0, 0, 0, 0)):
    """gy added at each window's first maximum (one window at a time)."""
    xp = _pad4(x, p, -np.inf)
    out = np.zeros(xp.shape)
    for idx in np.ndindex(gy.shape):
        *lead, i, j = idx
        window = xp[tuple(lead)][i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]]
        a, b = np.unravel_index(np.argmax(window), k)
        out[(*lead, i * s[0] + a, j * s[1] + b)] += gy[idx]
    return out[..., p[0]:p[0] + x.shape[-2], p[2]:p[2] + x.shape[-1]]


def np_max_pool2d_pick(x, v, k, s, p=(0, 0, 0, 0)):
    xp, vp = _pad4(x, p, -np.inf), _pad4(v, p)
    ho, wo = _out_hw(x.shape[-2:], k, s, p, (1, 1))
    out = np.zeros(x.shape[:-2] + (ho, wo))
    for idx in np.ndindex(out.shape):
        *lead, i, j = idx
        window = xp[tuple(lead)][i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]]
        a, b = np.unravel_index(np.argmax(window), k)
        out[idx] = vp[(*lead, i * s[0] + a, j * s[1] + b)]
    return out


def np_avg_pool2d_grad(gy, size, k, s, p=(0, 0, 0, 0)):
    out = np.zeros(gy.shape[:-2] + (size[0] + p[0] + p[1], size[1] + p[2] + p[3]))
    for i in range(gy.shape[-2]):
        for j in range(gy.shape[-1]):
            out[_taps(i, j, k, s, (1, 1))] += gy[..., i, j][..., None, None] / (k[0] * k[1])
    return out[..., p[0]:p[0] + size[0], p[2]:p[2] + size[1]]


def np_small_conv_net(x, w, b, v, y):
    h = np.maximum(np_conv2d(x, w, p=(1, 1, 1, 1)) + b[:, None, None], 0.0)
    z = np_max_pool2d(h, (2, 2)).reshape(x.shape[0], -1) @ v
    return np.mean(np_logsumexp(z, -1) - np_take_label(z, y))


# -- the table -------------------------------------------------------------------------
@dataclass(frozen=True)
class In:
    """One input of a case: its placeholder, and how to sample a value for it."""

    shape: tuple  # the concrete shape of the sampled array
    sample: Callable = normal
    dtype: str = "float64"
    diff: bool = True  # differentiate with respect to it
    dims: tuple | None = None  # the placeholder's (possibly symbolic) shape; default: ``shape``


@dataclass
class Case:
    name: str
    inputs: tuple
    build: Callable  # placeholders -> output node
    ref: Callable  # arrays -> expected array
    grad: bool = True  # differentiable: run the jvp/vjp test (and fd unless fd=False)
    fd: bool = True  # compare sg.grad with finite differences of the forward value
    jvp_rtol: float = JVP_RTOL
    xfail: dict = field(default_factory=dict)  # test kind ("forward", "fd", "jvp") -> reason
    domain_edge: bool = False  # inputs at a domain edge: nan/inf expected, NumPy's warnings silenced


def C(name, inputs, build, ref, **kw):
    return Case(name, tuple(inputs), build, ref, **kw)


def unary(name, build, ref, sample=normal, shape=(2, 3, 5), **kw):
    return C(name, [In(shape, sample)], build, ref, **kw)


X235 = In((2, 3, 5))
X34 = In((3, 4))
I34 = In((3, 4), labels(7), "int64", diff=False)

_softplus_sym = sg.elementwise(lambda z: sympy.log(1 + sympy.exp(z)))
_mish = sg.elementwise(lambda z: z * sympy.tanh(sympy.log(1 + sympy.exp(z))), name="mish")
_mix = sg.elementwise(lambda a, b: a * sympy.sin(b) + a**2 / (1 + b**2))
_ratio = sg.elementwise(lambda p, q: p / q)

# piecewise-constant and piecewise functions: derivative 0 almost everywhere, Mod(a, b) -> (1, -floor(a / b))
_floor_times = sg.elementwise(lambda z: sympy.floor(z) * z, name="floor_times")
_ceiling_times = sg.elementwise(lambda z: sympy.ceiling(z) * z, name="ceiling_times")
_mod = sg.elementwise(lambda a, b: sympy.Mod(a, b), name="mod")
_piecewise = sg.elementwise(lambda z: sympy.Piecewise((z, z > 0), (z**2, True)), name="piecewise")

_mul2 = sg.elementwise(lambda p, q: p * q, name="mul2")
_three = sg.elementwise(lambda z: sympy.Integer(3), name="three")

CASES = [
    # -- arithmetic, with broadcasting ------------------------------------------------
    C("add_broadcast", [X235, In((3, 1))], lambda x, y: x + y, lambda x, y: x + y),
    C("add_python_number_left", [X235], lambda x: 2.5 + x, lambda x: 2.5 + x),
    C("subtract_broadcast", [X34, In((4,))], lambda x, y: x - y, lambda x, y: x - y),
    C("subtract_python_number_left", [X34], lambda x: 1.5 - x, lambda x: 1.5 - x),
    C("multiply_broadcast", [X235, In((5,))], lambda x, y: x * y, lambda x, y: x * y),
    C("multiply_both_broadcast", [In((3, 1)), In((1, 4))], lambda x, y: x * y, lambda x, y: x * y),
    C("ndarray_times_node", [X34], lambda x: np.linspace(-1.0, 2.0, 4) * x, lambda x: np.linspace(-1.0, 2.0, 4) * x),
    C("node_times_ndarray", [X34], lambda x: x * np.arange(1.0, 5.0), lambda x: x * np.arange(1.0, 5.0)),
    C("divide_broadcast", [X34, In((3, 1), positive)], lambda x, y: x / y, lambda x, y: x / y),
    C("divide_python_number_left", [In((3, 4), positive)], lambda x: 1.0 / x, lambda x: 1.0 / x),
    C("divide_by_python_number", [X34], lambda x: x / 4.0, lambda x: x / 4.0),
    C("power_tensor_tensor", [In((3, 4), positive), X34], lambda x, y: x**y, lambda x, y: x**y),
    C("power_broadcast", [In((2, 3, 5), positive), In((5,))], lambda x, y: x**y, lambda x, y: x**y),
    C("power_int_constant", [X34], lambda x: x**3, lambda x: x**3),
    C("power_square", [X34], lambda x: x**2, lambda x: x**2),
    C("power_half", [In((3, 4), positive)], lambda x: x**0.5, lambda x: x**0.5),
    C("power_negative", [In((3, 4), positive)], lambda x: x**-2, lambda x: x**-2.0),
    C("power_python_base", [X34], lambda x: 2.0**x, lambda x: 2.0**x),
    C("negative", [X235], lambda x: -x, lambda x: -x),
    C("negative_of_power", [X34], lambda x: -(x**2), lambda x: -(x**2)),
    C("power_of_negative", [X34], lambda x: (-x) ** 3, lambda x: (-x) ** 3),
    C("subtract_of_subtract", [X34, X34, X34], lambda x, y, z: x - (y - z), lambda x, y, z: x - (y - z)),
    C("divide_of_product", [X34, In((3, 4), positive), In((3, 4), positive)],
      lambda x, y, z: x / (y * z), lambda x, y, z: x / (y * z)),
    # -- matmul -----------------------------------------------------------------------
    C("matmul_2d_2d", [X34, In((4, 5))], lambda a, b: a @ b, lambda a, b: a @ b),
    C("matmul_1d_2d", [In((4,)), In((4, 5))], lambda a, b: a @ b, lambda a, b: a @ b),
    C("matmul_2d_1d", [X34, In((4,))], lambda a, b: sg.matmul(a, b), lambda a, b: a @ b),
    C("matmul_1d_1d", [In((4,)), In((4,))], lambda a, b: a @ b, lambda a, b: a @ b),
    C("matmul_batched_3d", [In((2, 3, 4)), In((2, 4, 5))], lambda a, b: a @ b, lambda a, b: a @ b),
    C("matmul_batched_3d_2d", [In((2, 3, 4)), In((4, 5))], lambda a, b: a @ b, lambda a, b: a @ b),
    C("matmul_batched_2d_3d", [X34, In((2, 4, 5))], lambda a, b: a @ b, lambda a, b: a @ b),
    C("matmul_batched_1d_3d", [In((4,)), In((2, 4, 5))], lambda a, b: a @ b, lambda a, b: a @ b),
    C("matmul_batched_3d_1d", [In((2, 3, 4)), In((4,))], lambda a, b: a @ b, lambda a, b: a @ b),
    C("matmul_ndarray_left", [In((4, 5))], lambda b: np.arange(12.0).reshape(3, 4) @ b,
      lambda b: np.arange(12.0).reshape(3, 4) @ b),
    C("matmul_chain_transposed", [X34, In((5, 4))], lambda a, b: (a @ b.T) @ b, lambda a, b: (a @ b.T) @ b),
    # -- transpose ----------------------------------------------------------------------
    C("transpose_default_3d", [X235], lambda x: sg.transpose(x), lambda x: np.transpose(x)),
    C("transpose_axes_102", [X235], lambda x: sg.transpose(x, (1, 0, 2)), lambda x: np.transpose(x, (1, 0, 2))),
    C("transpose_axes_201", [X235], lambda x: sg.transpose(x, (2, 0, 1)), lambda x: np.transpose(x, (2, 0, 1))),
    C("transpose_axes_021", [X235], lambda x: sg.transpose(x, (0, 2, 1)), lambda x: np.transpose(x, (0, 2, 1))),
    C("transpose_negative_axes", [X235], lambda x: sg.transpose(x, (-1, 0, 1)), lambda x: np.transpose(x, (2, 0, 1))),
    C("dot_T_2d", [X34], lambda x: x.T, lambda x: x.T),
    C("dot_T_3d", [X235], lambda x: x.T, lambda x: x.T),
    C("transpose_4d", [In((2, 3, 1, 4))], lambda x: sg.transpose(x, (3, 1, 0, 2)),
      lambda x: np.transpose(x, (3, 1, 0, 2))),
    # -- reshape, broadcast_to, expand_dims, squeeze ---------------------------------------
    C("reshape_minus_one_last", [X235], lambda x: x.reshape((6, -1)), lambda x: x.reshape(6, -1)),
    C("reshape_flatten", [X235], lambda x: sg.reshape(x, -1), lambda x: x.reshape(-1)),
    C("reshape_varargs", [X235], lambda x: x.reshape(5, 6), lambda x: x.reshape(5, 6)),
    C("reshape_minus_one_middle", [X235], lambda x: sg.reshape(x, (3, -1, 2)), lambda x: x.reshape(3, -1, 2)),
    C("broadcast_to_3d", [In((3, 1))], lambda x: sg.broadcast_to(x, (2, 3, 5)),
      lambda x: np.broadcast_to(x, (2, 3, 5))),
    C("broadcast_to_new_axis", [In((5,))], lambda x: sg.broadcast_to(x, (3, 5)), lambda x: np.broadcast_to(x, (3, 5))),
    C("expand_dims_middle", [X34], lambda x: sg.expand_dims(x, 1), lambda x: np.expand_dims(x, 1)),
    C("expand_dims_two", [In((4,))], lambda x: sg.expand_dims(x, (0, -1)), lambda x: np.expand_dims(x, (0, -1))),
    C("squeeze_middle", [In((3, 1, 5))], lambda x: sg.squeeze(x, 1), lambda x: np.squeeze(x, 1)),
    # -- indexing -----------------------------------------------------------------------
    C("getitem_int", [X235], lambda x: x[1], lambda x: x[1]),
    C("getitem_negative_int", [X235], lambda x: x[-1, :, -2], lambda x: x[-1, :, -2]),
    C("getitem_slice", [X235], lambda x: x[:, 1:3], lambda x: x[:, 1:3]),
    C("getitem_step_ellipsis_int", [In((4, 3, 5))], lambda x: x[::2, ..., 1], lambda x: x[::2, ..., 1]),
    C("getitem_ellipsis_negative_step", [X235], lambda x: x[..., ::-2], lambda x: x[..., ::-2]),
    C("getitem_int_step_int", [In((2, 5, 3))], lambda x: x[1, ::2, -1], lambda x: x[1, ::2, -1]),
    C("getitem_reverse_bounds", [In((5, 3))], lambda x: x[-1:0:-2], lambda x: x[-1:0:-2]),
    C("getitem_ellipsis_first", [X235], lambda x: x[..., 2:], lambda x: x[..., 2:]),
    C("getitem_ellipsis_middle", [In((2, 3, 4, 5))], lambda x: x[1, ..., 1:4:2], lambda x: x[1, ..., 1:4:2]),
    C("getitem_to_scalar", [X34], lambda x: x[2, 1], lambda x: x[2, 1]),
    C("getitem_twice_overlapping", [In((6,))], lambda x: x[1:4] * x[2:5], lambda x: x[1:4] * x[2:5]),
    C("getitem_empty_slice", [X34], lambda x: x[2:2].sum(axis=0) + x[0], lambda x: x[2:2].sum(axis=0) + x[0]),
    # -- concatenate -----------------------------------------------------------------------
    C("concatenate_axis0", [In((2, 5)), In((3, 5))], lambda a, b: sg.concatenate([a, b]),
      lambda a, b: np.concatenate([a, b])),
    C("concatenate_last_axis_three", [In((2, 3, 1)), In((2, 3, 4)), In((2, 3, 2))],
      lambda a, b, c: sg.concatenate([a, b, c], axis=-1), lambda a, b, c: np.concatenate([a, b, c], axis=-1)),
    C("concatenate_axis1", [X235, In((2, 1, 5))], lambda a, b: sg.concatenate((a, b), axis=1),
      lambda a, b: np.concatenate((a, b), axis=1)),
    C("concatenate_same_node_twice", [X34], lambda a: sg.concatenate([a, 2.0 * a], axis=0),
      lambda a: np.concatenate([a, 2.0 * a])),
    # -- reductions -----------------------------------------------------------------------
    C("sum_all", [X235], lambda x: sg.sum(x), lambda x: np.sum(x)),
    C("sum_axis1", [X235], lambda x: sg.sum(x, axis=1), lambda x: np.sum(x, axis=1)),
    C("sum_axes02_keepdims", [X235], lambda x: sg.sum(x, axis=(0, 2), keepdims=True),
      lambda x: np.sum(x, axis=(0, 2), keepdims=True)),
    C("sum_method_last_keepdims", [X235], lambda x: x.sum(axis=-1, keepdims=True),
      lambda x: x.sum(axis=-1, keepdims=True)),
    C("sum_all_keepdims", [X235], lambda x: x.sum(keepdims=True), lambda x: x.sum(keepdims=True)),
    C("mean_all", [X235], lambda x: sg.mean(x), lambda x: np.mean(x)),
    C("mean_all_keepdims", [X235], lambda x: sg.mean(x, keepdims=True), lambda x: np.mean(x, keepdims=True)),
    C("mean_axis0", [X235], lambda x: sg.mean(x, axis=0), lambda x: np.mean(x, axis=0)),
    C("mean_axes_neg_keepdims", [X235], lambda x: x.mean(axis=(-1, 0), keepdims=True),
      lambda x: x.mean(axis=(0, 2), keepdims=True)),
    C("max_all", [In((2, 3, 5), distinct)], lambda x: sg.max(x), lambda x: np.max(x)),
    C("max_all_keepdims", [In((2, 3, 5), distinct)], lambda x: x.max(keepdims=True), lambda x: x.max(keepdims=True)),
    C("max_axis1", [In((2, 3, 5), distinct)], lambda x: sg.max(x, axis=1), lambda x: np.max(x, axis=1)),
    C("max_axes02_keepdims", [In((2, 3, 5), distinct)], lambda x: sg.max(x, axis=(0, 2), keepdims=True),
      lambda x: np.max(x, axis=(0, 2), keepdims=True)),
    C("max_method_last", [In((2, 3, 5), distinct)], lambda x: x.max(axis=-1), lambda x: x.max(axis=-1)),
    C("var_all", [X235], lambda x: sg.var(x), lambda x: np.var(x)),
    C("var_axis1_ddof1", [X235], lambda x: sg.var(x, axis=1, ddof=1), lambda x: np.var(x, axis=1, ddof=1)),
    C("var_axes02_keepdims", [X235], lambda x: sg.var(x, axis=(0, 2), keepdims=True),
      lambda x: np.var(x, axis=(0, 2), keepdims=True)),
    C("std_all", [X235], lambda x: sg.std(x), lambda x: np.std(x)),
    C("std_last_ddof1_keepdims", [X235], lambda x: sg.std(x, axis=-1, ddof=1, keepdims=True),
      lambda x: np.std(x, axis=-1, ddof=1, keepdims=True)),
    C("std_over_named_dim_ddof1", [In((3, 4), dims=("n", 4))], lambda x: sg.std(x, axis=0, ddof=1),
      lambda x: np.std(x, axis=0, ddof=1)),
    C("std_of_int", [I34], lambda y: sg.std(y, axis=1), lambda y: np.std(y, axis=1), grad=False),
    C("logsumexp_all", [X235], lambda x: sg.logsumexp(x), lambda x: np_logsumexp(x)),
    C("logsumexp_last", [X235], lambda x: sg.logsumexp(x, axis=-1), lambda x: np_logsumexp(x, axis=-1)),
    C("logsumexp_axes02_keepdims", [X235], lambda x: sg.logsumexp(x, axis=(0, 2), keepdims=True),
      lambda x: np_logsumexp(x, axis=(0, 2), keepdims=True)),
    C("softmax_last", [X235], lambda x: sg.softmax(x), lambda x: np_softmax(x)),
    C("softmax_axis0", [X235], lambda x: sg.softmax(x, axis=0), lambda x: np_softmax(x, axis=0)),
    C("softmax_axis1", [X235], lambda x: sg.softmax(x, axis=1), lambda x: np_softmax(x, axis=1)),
    C("log_softmax_last", [X235], lambda x: sg.log_softmax(x), lambda x: np_log_softmax(x)),
    C("log_softmax_axis1", [X235], lambda x: sg.log_softmax(x, axis=1), lambda x: np_log_softmax(x, axis=1)),
    # -- named (symbolic) dimensions: count read at run time, shapes read from a node -------
    C("mean_over_named_dim", [In((3, 4), dims=("n", 4))], lambda x: sg.mean(x, axis=0), lambda x: x.mean(0)),
    C("mean_all_named_dim", [In((3, 4), dims=("n", 4))], lambda x: sg.mean(x), lambda x: x.mean()),
    C("sum_over_named_dim", [In((3, 4), dims=("n", 4))], lambda x: x.sum(axis=0), lambda x: x.sum(0)),
    C("reshape_two_named_dims", [In((3, 4), dims=("n", "m"))], lambda x: x.reshape(-1), lambda x: x.reshape(-1)),
    # the gradient of a mean over a named dimension divides by a count read at run time
    C("grad_of_mean_over_named_dim", [In((3, 4), dims=("n", 4))], lambda x: sg.grad(sg.mean(x * x), x),
      lambda x: 2 * x / 12, grad=False),
    C("grad_of_mean_over_named_dim_linear", [In((3, 4), dims=("n", 4))], lambda x: sg.grad(sg.mean(x), x),
      lambda x: np.full((3, 4), 1 / 12), grad=False),
    C("add_named_dim_broadcast", [In((3, 4), dims=("n", 4)), In((4,))], lambda x, b: x + b, lambda x, b: x + b),
    C("getitem_named_dim", [In((5, 4), dims=("n", 4))], lambda x: x[1:, ::2], lambda x: x[1:, ::2]),
    C("concatenate_named_dim", [In((3, 2), dims=("n", 2)), In((3, 3), dims=("n", 3))],
      lambda a, b: sg.concatenate([a, b], axis=1), lambda a, b: np.concatenate([a, b], axis=1)),
    C("softmax_cross_entropy_named_batch",
      [In((4, 3), dims=("batch", 3)), In((4,), labels(3), "int64", False, ("batch",))],
      lambda x, y: sg.softmax_cross_entropy(x, y), lambda x, y: np.mean(np_logsumexp(x, -1) - np_take_label(x, y))),
    # -- integer and boolean data (forward only) -------------------------------------------
    C("int_arithmetic", [I34], lambda y: (y + 1) * 3 - y, lambda y: (y + 1) * 3 - y, grad=False),
    C("int_true_divide", [I34], lambda y: y / 2, lambda y: y / 2, grad=False),
    C("int_power_negative_int", [I34], lambda y: -(y**2), lambda y: -(y**2), grad=False),
    C("int_times_float", [I34, X34], lambda y, x: y * x, lambda y, x: y * x),
    C("int_matmul", [I34, In((4, 2), labels(3), "int64", diff=False)], lambda a, b: a @ b, lambda a, b: a @ b,
      grad=False),
    C("int_minimum", [I34], lambda y: sg.minimum(y, 1), lambda y: np.minimum(y, 1), grad=False),
    C("sum_of_comparison", [X34], lambda x: (x > 0).sum(axis=0), lambda x: (x > 0).sum(axis=0), grad=False),
    C("mean_of_int", [I34], lambda y: sg.mean(y, axis=1), lambda y: np.mean(y, axis=1), grad=False),
    C("max_of_int", [I34], lambda y: sg.max(y, axis=0), lambda y: np.max(y, axis=0), grad=False),
    C("concatenate_int_float", [I34, X34], lambda y, x: sg.concatenate([y, x]), lambda y, x: np.concatenate([y, x])),
    C("where_int_float", [X34, I34], lambda x, y: sg.where(x > 0, y, x), lambda x, y: np.where(x > 0, y, x)),
    C("softmax_of_int", [I34], lambda y: sg.softmax(y), lambda y: np_softmax(y.astype(np.float64)), grad=False),
    C("logsumexp_of_int", [I34], lambda y: sg.logsumexp(y, axis=-1), lambda y: np_logsumexp(y, axis=-1), grad=False),
    *[
        C(f"{name}_of_int", [I34], getattr(sg, name), lambda y, f=f: f(y.astype(np.float64)), grad=False)
        for name, f in [("exp", np.exp), ("sigmoid", np_sigmoid), ("step", lambda v: (v > 0).astype(np.float64)),
                        ("square", np.square), ("abs", np.abs), ("relu", lambda v: np.maximum(v, 0.0)),
                        ("hard_tanh", lambda v: np.clip(v, -1.0, 1.0))]
    ],
    C("elementwise_product_of_ints", [I34, I34], lambda a, b: _mul2(a, b), lambda a, b: (a * b).astype(np.float64),
      grad=False),
    # -- comparisons (boolean, forward only) --------------------------------------------
    C("less", [In((3, 4), small_ints), In((3, 4), small_ints)], lambda x, y: x < y, lambda x, y: x < y, grad=False),
    C("less_equal", [In((3, 4), small_ints), In((4,), small_ints)], lambda x, y: x <= y, lambda x, y: x <= y,
      grad=False),
    C("greater_number", [In((3, 4), small_ints)], lambda x: x > 0.5, lambda x: x > 0.5, grad=False),
    C("greater_equal", [In((3, 4), small_ints), In((3, 1), small_ints)], lambda x, y: x >= y,
      lambda x, y: x >= y, grad=False),
    C("reflected_less", [In((3, 4), small_ints)], lambda x: 0.0 < x, lambda x: 0.0 < x, grad=False),
    C("equal", [In((3, 4), small_ints), In((3, 4), small_ints)], lambda x, y: sg.equal(x, y),
      lambda x, y: x == y, grad=False),
    C("not_equal", [In((3, 4), small_ints), In((4,), small_ints)], lambda x, y: sg.not_equal(x, y),
      lambda x, y: x != y, grad=False),
    C("equal_int", [In((3, 4), labels(3), "int64", diff=False)], lambda y: sg.equal(y, 1), lambda y: y == 1,
      grad=False),
    C("equal_of_comparisons", [In((3, 4), small_ints), In((3, 4), small_ints)],
      lambda x, y: sg.equal(x > 0, y > 0), lambda x, y: (x > 0) == (y > 0), grad=False),
    C("not_equal_of_comparisons", [In((3, 4), small_ints), In((3, 4), small_ints)],
      lambda x, y: sg.not_equal(x >= 0, y < 1), lambda x, y: (x >= 0) != (y < 1), grad=False),
    # -- where, maximum, minimum -----------------------------------------------------------
    C("where", [X34, X34, In((3, 4), away_from_zero)], lambda a, b, z: sg.where(z > 0, a, b),
      lambda a, b, z: np.where(z > 0, a, b)),
    C("where_python_number", [In((3, 4), away_from_zero)], lambda x: sg.where(x > 0, x, 0.0),
      lambda x: np.where(x > 0, x, 0.0)),
    C("where_broadcast", [In((3, 1), away_from_zero), In((5,)), In((3, 5))],
      lambda c, a, b: sg.where(c < 0, a, b), lambda c, a, b: np.where(c < 0, a, b)),
    C("maximum_broadcast", [In((2, 3, 5), odd_quarters), In((3, 5), halves)], lambda a, b: sg.maximum(a, b),
      lambda a, b: np.maximum(a, b)),
    C("minimum_broadcast", [In((2, 3, 5), odd_quarters), In((5,), halves)], lambda a, b: sg.minimum(a, b),
      lambda a, b: np.minimum(a, b)),
    C("maximum_python_number", [In((3, 4), odd_quarters)], lambda a: sg.maximum(a, 0.5),
      lambda a: np.maximum(a, 0.5)),
    C("minimum_number_first", [In((3, 4), odd_quarters)], lambda a: sg.minimum(-0.5, a),
      lambda a: np.minimum(-0.5, a)),
    # -- elementwise functions ------------------------------------------------------------
    unary("exp", sg.exp, np.exp),
    unary("log", sg.log, np.log, positive),
    unary("sqrt", sg.sqrt, np.sqrt, positive),
    unary("square", sg.square, np.square),
    unary("abs", sg.abs, np.abs, away_from_zero),
    unary("sin", sg.sin, np.sin),
    unary("cos", sg.cos, np.cos),
    unary("tanh", sg.tanh, np.tanh),
    unary("sigmoid", sg.sigmoid, np_sigmoid),
    unary("relu", sg.relu, lambda x: np.maximum(x, 0.0), away_from_zero),
    unary("leaky_relu_default", sg.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), away_from_zero),
    unary("leaky_relu_alpha", lambda x: sg.leaky_relu(x, alpha=0.2), lambda x: np.where(x > 0, x, 0.2 * x),
          away_from_zero),
    unary("softplus", sg.softplus, lambda x: np.log1p(np.exp(x))),
    C("prelu_scalar_slope", [In((2, 3, 5), away_from_zero), In(())], sg.prelu,
      lambda x, a: np.where(x > 0, x, a * x)),
    C("prelu_per_channel_slope", [In((2, 3, 5), away_from_zero), In((3, 1))], sg.prelu,
      lambda x, a: np.where(x > 0, x, a * x)),
    unary("prelu_number_slope", lambda x: sg.prelu(x, -0.3), lambda x: np.where(x > 0, x, -0.3 * x), away_from_zero),
    unary("maxout", lambda x: sg.maxout(x, 3), lambda x: x.reshape(2, 3, 2, 3).max(-1), distinct, shape=(2, 3, 6)),
    C("maxout_named_batch", [In((4, 6), distinct, dims=("batch", 6))], lambda x: sg.maxout(x, 2),
      lambda x: x.reshape(4, 3, 2).max(-1)),
    # -- issue 16: more elementwise built-ins (stable derivatives; edges in the domain_edge rows below) --
    unary("log1p", sg.log1p, np.log1p, above_minus_one),
    unary("expm1", sg.expm1, np.expm1),
    unary("exp2", sg.exp2, np.exp2),
    unary("log2", sg.log2, np.log2, positive),
    unary("log10", sg.log10, np.log10, positive),
    unary("reciprocal", sg.reciprocal, np.reciprocal, away_from_zero),
    unary("tan", sg.tan, np.tan, inside_tan_period),
    unary("sinh", sg.sinh, np.sinh),
    unary("cosh", sg.cosh, np.cosh),
    unary("arcsin", sg.arcsin, np.arcsin, inside_unit),
    unary("arccos", sg.arccos, np.arccos, inside_unit),
    unary("arctan", sg.arctan, np.arctan),
    unary("arcsinh", sg.arcsinh, np.arcsinh),
    unary("arctanh", sg.arctanh, np.arctanh, inside_unit),
    unary("ceil", sg.ceil, np.ceil, off_integers),
    unary("erf", sg.erf, np_erf),
    unary("gelu", sg.gelu, np_gelu),
    unary("silu", sg.silu, lambda x: x * np_sigmoid(x)),
    unary("swish", sg.swish, lambda x: x / (1.0 + np.exp(-x)), shape=(3, 4)),
    unary("elu_default", sg.elu, np_elu, away_from_zero),
    unary("elu_alpha", lambda x: sg.elu(x, alpha=0.5), lambda x: np_elu(x, 0.5), away_from_zero),
    unary("selu", sg.selu, lambda x: SELU_SCALE * np_elu(x, SELU_ALPHA), away_from_zero),
    C("arctan2_broadcast", [In((3, 4), away_from_zero), In((4,), away_from_zero)], sg.arctan2, np.arctan2),
    C("arctan2_number_x", [In((3, 4), away_from_zero)], lambda y: sg.arctan2(y, -1.5), lambda y: np.arctan2(y, -1.5)),
    C("hypot_broadcast", [X34, In((3, 1))], sg.hypot, np.hypot),
    C("mod_builtin", [In((3, 4), off_integers), In((3, 4), divisors)], sg.mod, np.mod),
    C("mod_operator", [In((3, 4), off_integers), In((4,), divisors)], lambda a, b: a % b, lambda a, b: a % b),
    unary("mod_operator_number", lambda x: x % 1.5, lambda x: np.mod(x, 1.5), off_integers, shape=(3, 4)),
    C("rmod_operator_number", [In((3, 4), divisors)], lambda b: 2.25 % b, lambda b: np.mod(2.25, b)),
    C("mod_of_ints", [I34], lambda y: y % 3, lambda y: np.mod(y, 3).astype(np.float64), grad=False),
    *[
        C(f"{name}_of_int", [I34], getattr(sg, name), lambda y, f=f: f(y.astype(np.float64)), grad=False)
        for name, f in [("gelu", np_gelu), ("arctan", np.arctan), ("ceil", np.ceil)]
    ],
    *[
        C(f"domain_edge_{name}", [In((12,), elementwise_edges)], getattr(sg, name), ref, grad=False, domain_edge=True)
        for name, ref in [
            ("log1p", np.log1p), ("expm1", np.expm1), ("exp2", np.exp2), ("log2", np.log2), ("log10", np.log10),
            ("reciprocal", np.reciprocal), ("tan", np.tan), ("sinh", np.sinh), ("cosh", np.cosh),
            ("arcsin", np.arcsin), ("arccos", np.arccos), ("arctan", np.arctan), ("arcsinh", np.arcsinh),
            ("arctanh", np.arctanh), ("ceil", np.ceil), ("erf", np_erf), ("gelu", np_gelu),
            ("silu", lambda x: x * np_sigmoid(x)), ("elu", np_elu),
            ("selu", lambda x: SELU_SCALE * np_elu(x, SELU_ALPHA)),
        ]
    ],
    *[
        C(f"domain_edge_{name}", [In((12,), elementwise_edges), In((12,), elementwise_edges_other)],
          getattr(sg, name), ref, grad=False, domain_edge=True)
        for name, ref in [("arctan2", np.arctan2), ("hypot", np.hypot), ("mod", np.mod)]
    ],
    unary("hard_tanh", sg.hard_tanh, lambda x: np.clip(x, -1.0, 1.0), off_hard_tanh_kinks),
    unary("step", sg.step, lambda x: (x > 0).astype(np.float64), away_from_zero),
    unary("exp_of_sum", lambda x: sg.exp(x + 0.5), lambda x: np.exp(x + 0.5), shape=(3, 4)),
    unary("square_of_negative", lambda x: sg.square(-x), lambda x: np.square(-x), shape=(3, 4)),
    unary("chain_tanh_sigmoid_log", lambda x: sg.tanh(sg.sigmoid(x)) * sg.log(x),
          lambda x: np.tanh(np_sigmoid(x)) * np.log(x), positive, shape=(3, 4)),
    # -- user elementwise functions (SymPy) ----------------------------------------------
    unary("elementwise_1arg", _softplus_sym, lambda x: np.log1p(np.exp(x))),
    unary("elementwise_1arg_named", _mish, lambda x: x * np.tanh(np.log1p(np.exp(x))), shape=(3, 4)),
    C("elementwise_2arg_broadcast", [X34, In((4,))], lambda a, b: _mix(a, b),
      lambda a, b: a * np.sin(b) + a**2 / (1 + b**2)),
    C("elementwise_2arg_composite_divisor", [X34, In((3, 4), positive), In((3, 4), positive)],
      lambda x, y, z: _ratio(x, y * z), lambda x, y, z: x / (y * z)),
    unary("elementwise_floor", _floor_times, lambda x: np.floor(x) * x, off_integers, shape=(3, 4)),
    unary("elementwise_ceiling", _ceiling_times, lambda x: np.ceil(x) * x, off_integers, shape=(3, 4)),
    C("elementwise_mod", [In((3, 4), off_integers), In((3, 4), divisors)], lambda a, b: _mod(a, b),
      lambda a, b: np.mod(a, b)),
    unary("elementwise_piecewise", _piecewise, lambda x: np.where(x > 0, x, x**2), away_from_zero, shape=(3, 4)),
    C("square_of_power_tensor", [In((3, 4), positive), X34], lambda x, y: sg.square(x**y), lambda x, y: (x**y) ** 2),
    C("square_of_power_constant", [In((3, 4), positive)], lambda x: sg.square(x**3), lambda x: (x**3) ** 2),
    C("elementwise_product_with_matmul", [In((3,)), In((3, 3)), In((3,))], lambda x, a, b: _mul2(x, a @ b),
      lambda x, a, b: x * (a @ b)),
    C("exp_divided_by_matmul", [In((3,)), In((3, 3)), In((3, 3))], lambda x, y, b: sg.exp(x) / (y @ b),
      lambda x, y, b: np.exp(x) / (y @ b)),
    C("product_divided_by_matmul", [In((3,)), In((3,)), In((3, 3)), In((3,))], lambda x, y, a, b: x * y / (a @ b),
      lambda x, y, a, b: x * y / (a @ b)),
    C("exp_times_matmul", [In((3,)), In((3, 3)), In((3,))], lambda x, a, b: sg.exp(x) * (a @ b),
      lambda x, a, b: np.exp(x) * (a @ b)),
    C("matmul_squared_times_x", [In((3,)), In((3, 3)), In((3,))], lambda x, a, b: (a @ b) ** 2 * x,
      lambda x, a, b: (a @ b) ** 2 * x),
    C("tanh_of_matmul_over_matmul", [In((3, 4)), In((4, 2)), In((2, 2))],
      lambda x, w, v: sg.tanh(x @ w) / (x @ w @ v), lambda x, w, v: np.tanh(x @ w) / (x @ w @ v)),
    C("elementwise_constant_expression", [X34], lambda x: _three(x) + 0.0 * x, lambda x: np.full((3, 4), 3.0),
      grad=False),
    C("elementwise_constant_expression_alone", [X34], lambda x: _three(x), lambda x: np.full((3, 4), 3.0),
      grad=False),
    # -- stop_gradient, cast ----------------------------------------------------------------
    C("stop_gradient", [X34], lambda x: sg.stop_gradient(x) * 2.0, lambda x: x * 2.0, grad=False),
    # sum(x * stop_gradient(x) * R) has gradient x * R, not the 2 x R of finite differences.
    C("times_stop_gradient", [X34], lambda x: x * sg.stop_gradient(x), lambda x: x * x, fd=False),
    C("cast_to_float32_and_back", [X34], lambda x: sg.cast(sg.cast(x, "float32") * 2.0, "float64"),
      lambda x: (x.astype(np.float32) * np.float32(2.0)).astype(np.float64), fd=False, jvp_rtol=1e-5),
    C("astype_bool_to_float", [In((3, 4), away_from_zero), X34], lambda x, y: (x > 0).astype("float64") * y,
      lambda x, y: (x > 0).astype(np.float64) * y),
    # -- random noise: depends only on the key, so it is the same on every call ------------------
    C("random_uniform_in_unit_interval", [X34],
      lambda x: x * sg.cast(sg.random_uniform(sg.random_key("key", 7), x) >= 0.0, "float64")
      * sg.cast(sg.random_uniform(sg.random_key("key2", 8), x) < 1.0, "float64"),
      lambda x: x),
    # -- one_hot, labels ------------------------------------------------------------------
    C("one_hot", [In((2, 3), labels(4), "int64", diff=False)], lambda y: sg.one_hot(y, 4),
      lambda y: np.eye(4)[y], grad=False),
    C("times_one_hot", [In((2, 3, 4)), In((2, 3), labels(4), "int64", diff=False)],
      lambda x, y: x * sg.one_hot(y, 4), lambda x, y: x * np.eye(4)[y]),
    C("pick", [In((2, 3, 4)), In((2, 3), labels(4), "int64", diff=False)], lambda x, y: pick(x, y),
      lambda x, y: np_take_label(x, y)),
    C("unpick", [In((2, 3)), In((2, 3), labels(4), "int64", diff=False)],
      lambda v, y: apply(Unpick(4), v, y), lambda v, y: np.eye(4)[y] * v[..., None]),
    C("add_at", [In((2, 3, 4)), In((3,)), In((2, 3), labels(4), "int64", diff=False)],
      lambda x, v, y: apply(AddAt(), x, v, y), lambda x, v, y: x + np.eye(4)[y] * v[..., None]),
    C("add_at_of_scalar", [In((3, 4)), In(()), In((3,), labels(4), "int64", diff=False)],
      lambda x, v, y: apply(AddAt(), x, v, y), lambda x, v, y: x + np.eye(4)[y] * v),
    # embed (the adjoint of getitem), built with the public sg.vjp; ``like`` only gives the shape
    C("embed_via_vjp_of_getitem", [In((2, 3)), In((3, 5), diff=False)],
      lambda v, like: sg.vjp([like[1:, ::2]], [like], [v])[0],
      lambda v, like: np_embed(v, (3, 5), np.s_[1:, ::2])),
    # -- losses ---------------------------------------------------------------------------
    *[
        C(f"mse_{r}", [X34, X34], lambda p, t, r=r: sg.mse(p, t, reduction=r),
          lambda p, t, r=r: np_reduce((p - t) ** 2, r))
        for r in ("mean", "sum", "none")
    ],
    C("mse_default_is_mean", [X34, X34], lambda p, t: sg.mse(p, t), lambda p, t: np.mean((p - t) ** 2)),
    *[
        C(f"softmax_cross_entropy_int_labels_{r}", [X235, In((2, 3), labels(5), "int64", diff=False)],
          lambda x, y, r=r: sg.softmax_cross_entropy(x, y, reduction=r),
          lambda x, y, r=r: np_reduce(np_logsumexp(x, -1) - np_take_label(x, y), r))
        for r in ("mean", "sum", "none")
    ],
    C("softmax_cross_entropy_single_row", [In((5,)), In((), labels(5), "int64", diff=False)],
      lambda x, y: sg.softmax_cross_entropy(x, y), lambda x, y: np_logsumexp(x) - x[y]),
    C("softmax_cross_entropy_default_is_mean", [X235, In((2, 3), labels(5), "int64", diff=False)],
      lambda x, y: sg.softmax_cross_entropy(x, y), lambda x, y: np.mean(np_logsumexp(x, -1) - np_take_label(x, y))),
    *[
        C(f"softmax_cross_entropy_one_hot_{r}", [X235, In((2, 3, 5), one_hot_rows)],
          lambda x, p, r=r: sg.softmax_cross_entropy(x, p, reduction=r),
          lambda x, p, r=r: np_reduce(-(p * np_log_softmax(x)).sum(-1), r))
        for r in ("mean", "sum", "none")
    ],
    C("softmax_cross_entropy_prob_rows", [X34, In((3, 4), prob_rows)],
      lambda x, p: sg.softmax_cross_entropy(x, p), lambda x, p: np.mean(-(p * np_log_softmax(x)).sum(-1))),
    *[
        C(f"binary_cross_entropy_{r}", [X34, In((3, 4), probabilities)],
          lambda x, t, r=r: sg.binary_cross_entropy(x, t, reduction=r),
          lambda x, t, r=r: np_reduce(-(t * np.log(np_sigmoid(x)) + (1 - t) * np.log(1 - np_sigmoid(x))), r))
        for r in ("mean", "sum", "none")
    ],
    # -- domain edges: compiled code keeps NumPy's nan/inf (no unsafe rewrite unless asked for) ----
    *[
        C(f"domain_edge_{name}", [In((6,), domain_edges)], build, ref, grad=False, domain_edge=True, **kw)
        for name, build, ref, kw in [
            ("exp_of_log", lambda x: sg.exp(sg.log(x)), lambda x: np.exp(np.log(x)), {}),
            ("square_of_sqrt", lambda x: sg.square(sg.sqrt(x)), lambda x: np.square(np.sqrt(x)),
             {}),
            ("product_over_factor", lambda x: x * x / x, lambda x: x * x / x, {}),
            ("exp_of_two_log", lambda x: sg.exp(2.0 * sg.log(x)), lambda x: np.exp(2.0 * np.log(x)),
             {}),
            ("x_minus_x", lambda x: x - x, lambda x: x - x, {}),
            ("x_times_zero", lambda x: x * 0.0, lambda x: x * 0.0, {}),
            ("x_over_x", lambda x: x / x + 1.0, lambda x: x / x + 1.0, {}),
            ("log_minus_log", lambda x: sg.log(x) - sg.log(x) + x, lambda x: np.log(x) - np.log(x) + x, {}),
            ("log_of_exp", lambda x: sg.log(sg.exp(x)), lambda x: np.log(np.exp(x)), {}),
            ("abs_over_x", lambda x: sg.abs(x) / x, lambda x: np.abs(x) / x, {}),
        ]
    ],
    # -- constant folding runs op.compute on constants; the generated code must agree ---------
    C("folded_exp", [In((4,))], lambda x: x + sg.exp(sg.constant(np.arange(4.0))),
      lambda x: x + np.exp(np.arange(4.0))),
    C("folded_matmul_transpose", [X34], lambda x: x @ (sg.constant(np.arange(8.0).reshape(2, 4)).T @ np.ones((2, 4))),
      lambda x: x @ (np.arange(8.0).reshape(2, 4).T @ np.ones((2, 4)))),
    C("folded_softmax_logsumexp", [X34],
      lambda x: x * sg.softmax(sg.constant(np.arange(4.0))) + sg.logsumexp(sg.constant(np.arange(3.0))),
      lambda x: x * np_softmax(np.arange(4.0)) + np_logsumexp(np.arange(3.0))),
    C("folded_getitem_reshape_concatenate", [X34],
      lambda x: x + sg.concatenate(
          [sg.constant(np.arange(8.0).reshape(2, 4))[1:, ::-1], sg.reshape(np.arange(8.0), (2, 4))]),
      lambda x: x + np.concatenate([np.arange(8.0).reshape(2, 4)[1:, ::-1], np.arange(8.0).reshape(2, 4)])),
    C("folded_where_max_mean", [X34],
      lambda x: sg.where(sg.constant(np.arange(4.0)) > 1.5, x, sg.max(sg.constant(np.arange(6.0))))
      * sg.mean(np.arange(4.0)),
      lambda x: np.where(np.arange(4.0) > 1.5, x, 5.0) * 1.5),
    # -- convolution (PyTorch's conv2d), its two adjoints, pooling, flatten ----------------------
    C("conv2d_non_square_kernel", [In((2, 3, 5, 6)), In((4, 3, 3, 2))], lambda x, w: sg.conv2d(x, w),
      lambda x, w: np_conv2d(x, w)),
    C("conv2d_with_bias", [In((2, 3, 5, 6)), In((4, 3, 3, 2)), In((4,))], lambda x, w, b: sg.conv2d(x, w, bias=b),
      lambda x, w, b: np_conv2d(x, w) + b[:, None, None]),
    C("conv2d_bias_strided_groups", [In((1, 4, 5, 5)), In((4, 2, 3, 3)), In((4,))],
      lambda x, w, b: sg.conv2d(x, w, stride=2, padding=1, groups=2, bias=b),
      lambda x, w, b: np_conv2d(x, w, (2, 2), (1, 1, 1, 1), g=2) + b[:, None, None]),
    C("conv2d_stride2_padding1", [In((2, 2, 7, 6)), In((3, 2, 3, 3))], lambda x, w: sg.conv2d(x, w, 2, 1),
      lambda x, w: np_conv2d(x, w, (2, 2), (1, 1, 1, 1))),
    C("conv2d_batch1_dilation_padding_pair", [In((1, 2, 7, 7)), In((2, 2, 2, 3))],
      lambda x, w: sg.conv2d(x, w, padding=(1, 2), dilation=(2, 1)),
      lambda x, w: np_conv2d(x, w, p=(1, 1, 2, 2), d=(2, 1))),
    C("conv2d_groups2_stride_pair", [In((2, 4, 5, 5)), In((6, 2, 3, 3))],
      lambda x, w: sg.conv2d(x, w, stride=(1, 2), groups=2), lambda x, w: np_conv2d(x, w, s=(1, 2), g=2)),
    C("conv2d_depthwise_same", [In((2, 3, 5, 4)), In((3, 1, 3, 3))],
      lambda x, w: sg.conv2d(x, w, padding="same", groups=3), lambda x, w: np_conv2d(x, w, p=(1, 1, 1, 1), g=3)),
    C("conv2d_same_even_kernel_dilated", [In((2, 2, 5, 6)), In((3, 2, 2, 4))],
      lambda x, w: sg.conv2d(x, w, padding="same", dilation=(1, 2)),
      lambda x, w: np_conv2d(x, w, p=(0, 1, 3, 3), d=(1, 2))),
    C("conv2d_valid_named_batch", [In((3, 2, 4, 4), dims=("batch", 2, 4, 4)), In((2, 2, 3, 3))],
      lambda x, w: sg.conv2d(x, w, padding="valid"), lambda x, w: np_conv2d(x, w)),
    C("conv_transpose2d_stride2", [In((2, 3, 4, 3)), In((3, 2, 3, 3))],
      lambda gy, w: apply(Conv2DTranspose((7, 6), (2, 2), (1, 1, 1, 1), (1, 1), 1), gy, w),
      lambda gy, w: np_conv_transpose2d(gy, w, (7, 6), (2, 2), (1, 1, 1, 1))),
    C("conv_transpose2d_groups_dilation", [In((1, 4, 3, 5)), In((4, 1, 2, 2))],
      lambda gy, w: apply(Conv2DTranspose((5, 5), (1, 1), (0, 0, 0, 1), (2, 1), 2), gy, w),
      lambda gy, w: np_conv_transpose2d(gy, w, (5, 5), (1, 1), (0, 0, 0, 1), (2, 1), 2)),
    C("conv2d_weight_grad_stride2", [In((2, 2, 7, 6)), In((2, 3, 4, 3))],
      lambda x, gy: apply(Conv2DWeightGrad((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1), x, gy),
      lambda x, gy: np_conv2d_weight_grad(x, gy, (3, 3), (2, 2), (1, 1, 1, 1))),
    C("conv2d_weight_grad_groups", [In((2, 4, 5, 5)), In((2, 6, 3, 2))],
      lambda x, gy: apply(Conv2DWeightGrad((3, 2), (1, 2), (0, 0, 0, 0), (1, 1), 2), x, gy),
      lambda x, gy: np_conv2d_weight_grad(x, gy, (3, 2), (1, 2), g=2)),
    # a weight of over 512 entries a group: its gradient takes the batch-last product, not one per image
    C("conv2d_wide_layer_padded", [In((2, 8, 4, 5)), In((9, 8, 3, 3))], lambda x, w: sg.conv2d(x, w, padding=1),
      lambda x, w: np_conv2d(x, w, p=(1, 1, 1, 1))),
    C("conv2d_weight_grad_wide_groups", [In((1, 16, 3, 4)), In((1, 16, 1, 2))],
      lambda x, gy: apply(Conv2DWeightGrad((3, 3), (1, 2), (0, 0, 1, 0), (1, 1), 2), x, gy),
      lambda x, gy: np_conv2d_weight_grad(x, gy, (3, 3), (1, 2), (0, 0, 1, 0), (1, 1), 2)),
    # the shared columns of a conv2d and its weight gradient (built by codegen.conv_columns, not by users)
    C("conv2d_from_columns_flat", [In((2, 3, 6, 7)), In((4, 3, 3, 2)), In((4,))],
      lambda x, w, b: apply(Conv2DFromColumns((6, 6), "flat", (1, 1), (1, 1, 0, 1), (1, 2), 1),
                            apply(ConvColumns((3, 2), "flat", (1, 1), (1, 1, 0, 1), (1, 2), 1), x), w, b),
      lambda x, w, b: np_conv2d(x, w, p=(1, 1, 0, 1), d=(1, 2)) + b[:, None, None], grad=False),
    C("conv2d_from_columns_batch_groups_stride2", [In((3, 4, 7, 6), dims=("batch", 4, 7, 6)), In((6, 2, 3, 3))],
      lambda x, w: apply(Conv2DFromColumns((4, 2), "batch", (2, 3), (1, 1, 0, 0), (1, 1), 2),
                         apply(ConvColumns((3, 3), "batch", (2, 3), (1, 1, 0, 0), (1, 1), 2), x), w),
      lambda x, w: np_conv2d(x, w, (2, 3), (1, 1, 0, 0), g=2), grad=False),
    C("conv2d_weight_grad_from_columns_flat_groups", [In((2, 4, 5, 5), dims=("batch", 4, 5, 5)), In((2, 6, 3, 4))],
      lambda x, gy: apply(Conv2DWeightGradFromColumns((3, 2), "flat", (1, 1), (0, 0, 0, 0), (1, 1), 2),
                          apply(ConvColumns((3, 2), "flat", (1, 1), (0, 0, 0, 0), (1, 1), 2), x), gy),
      lambda x, gy: np_conv2d_weight_grad(x, gy, (3, 2), g=2), grad=False),
    C("conv2d_weight_grad_from_columns_batch_dilated", [In((2, 2, 7, 6)), In((2, 3, 4, 3))],
      lambda x, gy: apply(Conv2DWeightGradFromColumns((3, 3), "batch", (2, 2), (1, 1, 1, 1), (1, 1), 1),
                          apply(ConvColumns((3, 3), "batch", (2, 2), (1, 1, 1, 1), (1, 1), 1), x), gy),
      lambda x, gy: np_conv2d_weight_grad(x, gy, (3, 3), (2, 2), (1, 1, 1, 1)), grad=False),
    C("conv2d_weight_grad_from_columns_one_row", [In((2, 3, 3, 5)), In((2, 4, 1, 3))],
      lambda x, gy: apply(Conv2DWeightGradFromColumns((3, 3), "flat", (1, 1), (0, 0, 0, 0), (1, 1), 1),
                          apply(ConvColumns((3, 3), "flat", (1, 1), (0, 0, 0, 0), (1, 1), 1), x), gy),
      lambda x, gy: np_conv2d_weight_grad(x, gy, (3, 3)), grad=False),
    C("max_pool2d_2x2", [In((2, 3, 6, 6), distinct)], lambda x: sg.max_pool2d(x, 2),
      lambda x: np_max_pool2d(x, (2, 2))),
    C("max_pool2d_overlapping_padded", [In((1, 2, 7, 6), distinct)],
      lambda x: sg.max_pool2d(x, (3, 2), stride=(2, 1), padding=1), lambda x: np_max_pool2d(x, (3, 2), (2, 1), (1, 1, 1, 1))),
    C("max_pool2d_unbatched", [In((2, 5, 5), distinct)], lambda x: sg.max_pool2d(x, 3, stride=2),
      lambda x: np_max_pool2d(x, (3, 3), (2, 2))),
    C("max_pool2d_grad", [In((2, 2, 5, 6), distinct, diff=False), In((2, 2, 2, 3))],
      lambda x, gy: apply(MaxPool2DGrad((3, 2), (2, 2), (0, 0, 0, 0)), x, gy, sg.max_pool2d(x, (3, 2), stride=2)),
      lambda x, gy: np_max_pool2d_grad(x, gy, (3, 2), (2, 2))),
    C("max_pool2d_pick", [In((2, 2, 5, 6), distinct, diff=False), In((2, 2, 5, 6))],
      lambda x, v: apply(MaxPool2DPick((3, 3), (1, 2), (1, 1, 1, 1)), x, v),
      lambda x, v: np_max_pool2d_pick(x, v, (3, 3), (1, 2), (1, 1, 1, 1))),
    C("avg_pool2d_2x2", [In((2, 3, 6, 6))], lambda x: sg.avg_pool2d(x, 2), lambda x: np_avg_pool2d(x, (2, 2))),
    C("avg_pool2d_padded_counts_padding", [In((2, 2, 7, 5))], lambda x: sg.avg_pool2d(x, 3, stride=2, padding=1),
      lambda x: np_avg_pool2d(x, (3, 3), (2, 2), (1, 1, 1, 1))),
    C("avg_pool2d_grad", [In((2, 2, 4, 3))],
      lambda gy: apply(AvgPool2DGrad((7, 5), (3, 2), (2, 2), (1, 1, 1, 1)), gy),
      lambda gy: np_avg_pool2d_grad(gy, (7, 5), (3, 2), (2, 2), (1, 1, 1, 1))),
    C("flatten_default", [In((2, 3, 4, 5))], lambda x: sg.flatten(x), lambda x: x.reshape(2, -1)),
    C("flatten_from_axis2", [In((2, 3, 4, 5))], lambda x: sg.flatten(x, start_axis=2) * 2.0,
      lambda x: x.reshape(2, 3, -1) * 2.0),
    C("flatten_named_batch", [In((3, 2, 2, 2), dims=("batch", 2, 2, 2))], lambda x: sg.flatten(x),
      lambda x: x.reshape(3, -1)),
    C("small_conv_net_loss", [In((2, 1, 6, 6)), In((3, 1, 3, 3)), In((3,)), In((27, 2)),
                              In((2,), labels(2), "int64", diff=False)],
      lambda x, w, b, v, y: sg.softmax_cross_entropy(
          sg.flatten(sg.max_pool2d(sg.relu(sg.conv2d(x, w, padding=1) + sg.reshape(b, (3, 1, 1))), 2)) @ v, y),
      np_small_conv_net),
    # -- linear algebra (issue 16): einsum and the products built on it, solve, inv, det, norm ------
    C("einsum_matmul", [X34, In((4, 5))], lambda a, b: sg.einsum("ij,jk->ik", a, b), lambda a, b: a @ b),
    C("einsum_batched_implicit", [In((2, 3, 4)), In((2, 4, 5))], lambda a, b: sg.einsum("bij,bjk", a, b),
      lambda a, b: np.einsum("bij,bjk", a, b)),
    C("einsum_three_operands", [In((3,)), X34, In((4,))], lambda u, A, v: sg.einsum("i,ij,j->", u, A, v),
      lambda u, A, v: np.einsum("i,ij,j->", u, A, v)),
    C("einsum_trace_and_diagonal", [In((4, 4))], lambda x: sg.einsum("ii->i", x) * sg.einsum("ii", x),
      lambda x: np.diagonal(x) * np.trace(x)),
    C("einsum_sum_out_unshared_axis", [X235, In((5,))], lambda x, v: sg.einsum("abc,c->a", x, v),
      lambda x, v: np.einsum("abc,c->a", x, v)),
    C("einsum_ellipsis_transpose", [X235], lambda x: sg.einsum("...ij->...ji", x), lambda x: np.swapaxes(x, -1, -2)),
    C("einsum_repeated_in_one_of_two", [In((3, 3)), In((3, 2))], lambda a, b: sg.einsum("ii,ij->j", a, b),
      lambda a, b: np.einsum("ii,ij->j", a, b)),
    C("einsum_scalar_operand", [In(()), X34], lambda s, x: sg.einsum(",ij->ji", s, x), lambda s, x: s * x.T),
    C("einsum_named_batch", [In((3, 4), dims=("n", 4)), In((4, 2))], lambda a, b: sg.einsum("ni,ij->nj", a, b),
      lambda a, b: a @ b),
    C("einsum_int", [I34, In((4,), labels(3), "int64", diff=False)], lambda a, b: sg.einsum("ij,j->i", a, b),
      lambda a, b: a @ b, grad=False),
    C("dot_3d_2d", [X235, In((5, 2))], lambda a, b: sg.dot(a, b), lambda a, b: np.dot(a, b)),
    C("dot_3d_1d", [X235, In((5,))], lambda a, b: sg.dot(a, b), lambda a, b: np.dot(a, b)),
    C("dot_matrix_vector", [X34, In((4,))], lambda a, b: sg.dot(a, b), lambda a, b: np.dot(a, b)),
    C("inner_2d_3d", [X34, In((2, 5, 4))], lambda a, b: sg.inner(a, b), lambda a, b: np.inner(a, b)),
    C("inner_vectors", [In((4,)), In((4,))], lambda a, b: sg.inner(a, b), lambda a, b: np.inner(a, b)),
    C("outer_matrix_vector", [In((2, 2)), In((3,))], lambda a, b: sg.outer(a, b), lambda a, b: np.outer(a, b)),
    C("tensordot_two_axes", [X235, In((3, 5, 2))], lambda a, b: sg.tensordot(a, b),
      lambda a, b: np.tensordot(a, b)),
    C("tensordot_paired_axes", [X235, In((5, 2, 4))], lambda a, b: sg.tensordot(a, b, axes=([0, 2], [1, 0])),
      lambda a, b: np.tensordot(a, b, axes=([0, 2], [1, 0]))),
    C("matrix_trace", [In((4, 4))], lambda x: sg.matrix_trace(x), lambda x: np.trace(x)),
    C("matrix_trace_axes_of_3d", [In((3, 2, 3))], lambda x: sg.matrix_trace(x, 0, 2), lambda x: np.trace(x, 0, 0, 2)),
    C("diagonal_rectangular", [X34], lambda x: sg.diagonal(x), lambda x: np.diagonal(x)),
    C("diagonal_batched_last_axes", [In((2, 3, 3))], lambda x: sg.diagonal(x, -2, -1),
      lambda x: np.diagonal(x, 0, -2, -1)),
    C("diag_of_vector", [In((4,))], lambda v: sg.diag(v), lambda v: np.diag(v)),
    C("diag_of_matrix", [In((4, 4))], lambda x: sg.diag(x), lambda x: np.diag(x)),
    C("solve_vector", [In((4, 4), well_conditioned), In((4,))], lambda a, b: sg.solve(a, b),
      lambda a, b: np.linalg.solve(a, b)),
    C("solve_matrix", [In((3, 3), well_conditioned), In((3, 2))], lambda a, b: sg.solve(a, b),
      lambda a, b: np.linalg.solve(a, b)),
    C("solve_batched_broadcast", [In((2, 3, 3), well_conditioned), In((3, 2))], lambda a, b: sg.solve(a, b),
      lambda a, b: np.linalg.solve(a, np.broadcast_to(b, (2, 3, 2)))),
    C("solve_near_singular", [In((3, 3), near_singular), In((3,))], lambda a, b: sg.solve(a, b),
      lambda a, b: np.linalg.solve(a, b), fd=False, jvp_rtol=1e-7),
    C("inv", [In((4, 4), well_conditioned)], lambda a: sg.inv(a), lambda a: np.linalg.inv(a)),
    C("inv_batched", [In((2, 3, 3), well_conditioned)], lambda a: sg.inv(a), lambda a: np.linalg.inv(a)),
    C("det", [In((4, 4), well_conditioned)], lambda a: sg.det(a), lambda a: np.linalg.det(a)),
    C("det_batched_negative", [In((2, 3, 3), well_conditioned)], lambda a: sg.det(-a), lambda a: np.linalg.det(-a)),
    C("slogdet_logabsdet", [In((2, 3, 3), well_conditioned)], lambda a: sg.slogdet(-a)[1],
      lambda a: np.linalg.slogdet(-a)[1]),
    C("slogdet_sign_times_logabsdet", [In((3, 3), near_singular)], lambda a: sg.slogdet(a)[0] * sg.slogdet(a)[1],
      lambda a: np.prod(np.linalg.slogdet(a)), fd=False),
    C("cholesky_of_spd", [X34], lambda x: sg.cholesky(x @ x.T + 2.0 * np.eye(3)),
      lambda x: np.linalg.cholesky(x @ x.T + 2.0 * np.eye(3))),
    C("cholesky_batched_direct", [In((2, 3, 3), well_conditioned)],
      lambda a: sg.cholesky(a @ sg.transpose(a, (0, 2, 1))), lambda a: np.linalg.cholesky(a @ np.swapaxes(a, -1, -2))),
    C("eigh_values_of_symmetric", [In((4, 4))], lambda x: sg.eigh(x + x.T)[0], lambda x: np.linalg.eigh(x + x.T)[0]),
    C("eigh_vectors_squared", [In((2, 3, 3))], lambda x: sg.eigh(x + sg.transpose(x, (0, 2, 1)))[1] ** 2,
      lambda x: np.linalg.eigh(x + np.swapaxes(x, -1, -2))[1] ** 2),
    C("eigh_vectors_signed", [In((4, 4))], lambda x: sg.eigh(x @ x.T)[1], lambda x: np.linalg.eigh(x @ x.T)[1],
      fd=False),
    C("norm_vector", [In((5,))], lambda x: sg.norm(x), lambda x: np.linalg.norm(x)),
    C("norm_frobenius", [X34], lambda x: sg.norm(x), lambda x: np.linalg.norm(x)),
    C("norm_rows_keepdims_with_zero_row", [In((3, 4), zeros_and_normal)], lambda x: sg.norm(x, axis=-1, keepdims=True),
      lambda x: np.linalg.norm(x, axis=-1, keepdims=True), fd=False),
    C("norm_axes_02", [X235], lambda x: sg.norm(x, axis=(0, 2)), lambda x: np.sqrt((x**2).sum(axis=(0, 2)))),
    C("norm_of_int", [I34], lambda y: sg.norm(y, axis=0), lambda y: np.linalg.norm(y, axis=0), grad=False),
    # -- integer-array (fancy) indexing (issue 16): take, gather, x[idx], NumPy masks ---------------
    C("take_axis0_repeated_indices", [X34, In((5,), labels(3), "int64", diff=False)], lambda x, i: sg.take(x, i),
      lambda x, i: np.take(x, i, axis=0)),
    C("take_last_axis_2d_indices", [X235, In((2, 2), labels(5), "int64", diff=False)],
      lambda x, i: sg.take(x, i, axis=-1), lambda x, i: np.take(x, i, axis=-1)),
    C("take_empty_indices", [X34, In((0,), labels(3), "int64", diff=False)], lambda x, i: sg.take(x, i, axis=1) * 2.0,
      lambda x, i: np.take(x, i, axis=1) * 2.0),
    C("getitem_index_placeholder", [X235, In((4,), labels(2), "int64", diff=False)], lambda x, i: x[i],
      lambda x, i: x[i]),
    C("getitem_index_placeholder_middle_with_int", [X235, In((3, 2), labels(3), "int64", diff=False)],
      lambda x, i: x[1, i, 1:], lambda x, i: x[1, i, 1:]),
    C("getitem_ellipsis_constant_indices", [X235], lambda x: x[..., [4, -1, 0, 4]], lambda x: x[..., [4, -1, 0, 4]]),
    C("getitem_numpy_mask", [X34], lambda x: x[:, np.array([True, False, True, True])],
      lambda x: x[:, np.array([True, False, True, True])]),
    C("getitem_numpy_mask_2d", [X34], lambda x: x[np.arange(12).reshape(3, 4) % 3 == 1],
      lambda x: x[np.arange(12).reshape(3, 4) % 3 == 1]),
    C("gather_last_axis", [X34, In((3, 6), labels(4), "int64", diff=False)], lambda x, i: sg.gather(x, i, axis=-1),
      lambda x, i: np.take_along_axis(x, i, axis=-1)),
    C("untake_repeated_indices_add_up", [In((2, 5, 3)), In((5,), labels(4), "int64", diff=False)],
      lambda v, i: apply(Untake(-2, 4), v, i), lambda v, i: np_untake(v, i, 4)),
    C("ungather_repeated_indices_add_up",
      [In((3, 6)), In((3, 6), labels(4), "int64", diff=False), In((3, 4), diff=False)],
      lambda v, i, like: apply(Ungather(-1), v, i, like), lambda v, i, like: np_ungather(v, i, 4)),
    C("einsum_empty_contraction_is_zeros", [In((3, 0)), In((0, 2))], lambda a, b: sg.einsum("ij,jk->ik", a, b),
      lambda a, b: np.zeros((3, 2))),
    C("norm_of_empty_is_zero", [In((0,))], lambda x: sg.norm(x) + 1.0, lambda x: np.float64(1.0)),
    C("folded_linalg_of_constants", [X34],
      lambda x: x @ sg.inv(sg.constant(np.eye(4) * 2.0 + 0.5)) * sg.det(sg.constant(np.eye(2) * 3.0))
      + sg.take(sg.constant(np.arange(4.0)), [3, 1, 1, 0]) + sg.norm(sg.constant(np.array([3.0, 4.0]))),
      lambda x: x @ np.linalg.inv(np.eye(4) * 2.0 + 0.5) * 9.0 + np.arange(4.0)[[3, 1, 1, 0]] + 5.0),
    C("gather_axis0_broadcast_indices", [X235, In((4, 1, 5), labels(2), "int64", diff=False)],
      lambda x, i: sg.gather(x, i, axis=0), lambda x, i: np.take_along_axis(x, i, axis=0)),
    # -- issue 16 (redops): min, prod, argmax/argmin, logaddexp -------------------------------------
    C("min_all", [In((2, 3, 5), distinct)], lambda x: sg.min(x), lambda x: np.min(x)),
    C("min_axis1", [In((2, 3, 5), distinct)], lambda x: sg.min(x, axis=1), lambda x: np.min(x, axis=1)),
    C("min_axes02_keepdims", [In((2, 3, 5), distinct)], lambda x: sg.min(x, axis=(0, 2), keepdims=True),
      lambda x: np.min(x, axis=(0, 2), keepdims=True)),
    C("min_last_negative_axis", [In((2, 3, 5), distinct)], lambda x: sg.min(x, axis=-1), lambda x: x.min(-1)),
    # ties share the gradient (finite differences see one side of the kink)
    C("min_ties_shared", [In((3, 4), small_ints)], lambda x: sg.min(x, axis=1), lambda x: x.min(1), fd=False),
    C("min_method_keepdims", [In((3, 4), distinct)], lambda x: x.min(axis=0, keepdims=True),
      lambda x: x.min(axis=0, keepdims=True)),
    C("prod_method", [X34], lambda x: x.prod(axis=-1), lambda x: x.prod(axis=-1)),
    C("arg_and_cumulative_methods", [X34],
      lambda x: x.cumsum(1) * x.cumprod(0) + sg.cast(x.argmax(1, keepdims=True) + x.argmin(0), "float64"),
      lambda x: x.cumsum(1) * x.cumprod(0) + (x.argmax(1, keepdims=True) + x.argmin(0))),
    C("min_of_int", [I34], lambda y: sg.min(y, axis=0), lambda y: np.min(y, axis=0), grad=False),
    C("min_named_dim", [In((3, 4), distinct, dims=("n", 4))], lambda x: sg.min(x, axis=0), lambda x: x.min(0)),
    C("prod_all", [In((2, 3, 2))], lambda x: sg.prod(x), lambda x: np.prod(x)),
    C("prod_axis1", [X235], lambda x: sg.prod(x, axis=1), lambda x: np.prod(x, axis=1)),
    C("prod_axes02_keepdims", [In((2, 3, 2))], lambda x: sg.prod(x, axis=(0, 2), keepdims=True),
      lambda x: np.prod(x, axis=(0, 2), keepdims=True)),
    C("prod_last_with_zeros", [In((4, 5), with_zeros)], lambda x: sg.prod(x, axis=-1), lambda x: np.prod(x, -1)),
    C("prod_one_zero_per_row", [In((3, 4), zeros_at(1))], lambda x: sg.prod(x, axis=-1), lambda x: np.prod(x, -1)),
    C("prod_two_zeros_per_row", [In((3, 4), zeros_at(0, 2))], lambda x: sg.prod(x, axis=1), lambda x: np.prod(x, 1)),
    C("prod_negatives", [In((3, 4), away_from_zero)], lambda x: sg.prod(-x, axis=0), lambda x: np.prod(-x, 0)),
    C("prod_over_empty_axis", [In((3, 0))], lambda x: sg.prod(x, axis=1), lambda x: np.prod(x, axis=1)),
    C("prod_of_int", [I34], lambda y: sg.prod(y, axis=1), lambda y: np.prod(y, axis=1), grad=False),
    C("argmax_axis1", [X235], lambda x: sg.argmax(x, axis=1), lambda x: np.argmax(x, axis=1), grad=False),
    C("argmax_all", [X235], lambda x: sg.argmax(x), lambda x: np.argmax(x), grad=False),
    C("argmax_ties_first", [In((3, 4), small_ints)], lambda x: sg.argmax(x, -1), lambda x: np.argmax(x, -1),
      grad=False),
    C("argmax_keepdims", [X235], lambda x: sg.argmax(x, axis=0, keepdims=True),
      lambda x: np.argmax(x, axis=0, keepdims=True), grad=False),
    C("argmin_last", [In((3, 4), small_ints)], lambda x: sg.argmin(x, axis=-1), lambda x: np.argmin(x, -1),
      grad=False),
    C("argmin_all_keepdims", [X34], lambda x: sg.argmin(x, keepdims=True), lambda x: np.argmin(x, keepdims=True),
      grad=False),
    C("argmin_of_int", [I34], lambda y: sg.argmin(y, axis=0), lambda y: np.argmin(y, axis=0), grad=False),
    # argmax has no derivative: a value it selects through pick still has one
    C("pick_at_argmax", [X34], lambda x: pick(x, sg.argmax(x, axis=-1)), lambda x: x.max(-1)),
    C("logaddexp_broadcast", [X235, In((3, 1))], lambda a, b: sg.logaddexp(a, b), lambda a, b: np.logaddexp(a, b)),
    C("logaddexp_python_number", [X34], lambda a: sg.logaddexp(0.5, a), lambda a: np.logaddexp(0.5, a)),
    C("logaddexp_equal_operands", [X34], lambda a: sg.logaddexp(a, a), lambda a: np.logaddexp(a, a)),
    C("logaddexp_large", [In((3, 4), large), In((3, 4), large)], lambda a, b: sg.logaddexp(a, b),
      lambda a, b: np.logaddexp(a, b), grad=False),
    C("logaddexp_of_int", [I34, I34], lambda a, b: sg.logaddexp(a, b), lambda a, b: np.logaddexp(a, b), grad=False),
    C("domain_edge_logaddexp", [In((6,), domain_edges), In((6,), normal)], lambda a, b: sg.logaddexp(a, b),
      lambda a, b: np.logaddexp(a, b), grad=False, domain_edge=True),
    # -- issue 16 (redops): cumulative and ordering ops -----------------------------------------
    C("cumsum_axis1", [X235], lambda x: sg.cumsum(x, axis=1), lambda x: np.cumsum(x, axis=1)),
    C("cumsum_last", [X34], lambda x: sg.cumsum(x, -1), lambda x: np.cumsum(x, -1)),
    C("cumsum_flattened", [X34], lambda x: sg.cumsum(x), lambda x: np.cumsum(x)),
    C("cumsum_empty_axis", [In((3, 0))], lambda x: sg.cumsum(x, axis=1), lambda x: np.cumsum(x, axis=1)),
    C("cumsum_named_dim", [In((3, 4), dims=("n", 4))], lambda x: sg.cumsum(x, axis=0), lambda x: np.cumsum(x, 0)),
    C("cumsum_of_int", [I34], lambda y: sg.cumsum(y, axis=0), lambda y: np.cumsum(y, axis=0), grad=False),
    C("cumprod_axis0", [In((4, 3))], lambda x: sg.cumprod(x, axis=0), lambda x: np.cumprod(x, axis=0)),
    C("cumprod_last_with_zeros", [In((4, 5), with_zeros)], lambda x: sg.cumprod(x, axis=-1),
      lambda x: np.cumprod(x, -1)),
    C("cumprod_two_zeros_per_row", [In((3, 5), zeros_at(1, 3))], lambda x: sg.cumprod(x, axis=1),
      lambda x: np.cumprod(x, 1)),
    C("cumprod_negatives_flattened", [In((2, 3), away_from_zero)], lambda x: sg.cumprod(-x), lambda x: np.cumprod(-x)),
    C("cumprod_empty_axis", [In((0, 3))], lambda x: sg.cumprod(x, axis=0), lambda x: np.cumprod(x, axis=0)),
    C("cumprod_of_int", [I34], lambda y: sg.cumprod(y, axis=1), lambda y: np.cumprod(y, axis=1), grad=False),
    C("sort_last", [In((3, 5), distinct)], lambda x: sg.sort(x), lambda x: np.sort(x)),
    C("sort_axis0_3d", [In((4, 2, 3), distinct)], lambda x: sg.sort(x, axis=0), lambda x: np.sort(x, axis=0)),
    C("sort_flattened", [In((3, 4), distinct)], lambda x: sg.sort(x, axis=None), lambda x: np.sort(x, axis=None)),
    # ties: the value is the same either way; the gradient follows the stable order
    C("sort_ties", [In((3, 6), small_ints)], lambda x: sg.sort(x, axis=1), lambda x: np.sort(x, axis=1), fd=False),
    C("sort_named_dim", [In((5, 2), distinct, dims=("n", 2))], lambda x: sg.sort(x, axis=0),
      lambda x: np.sort(x, axis=0)),
    C("sort_of_int", [I34], lambda y: sg.sort(y), lambda y: np.sort(y), grad=False),
    C("argsort_ties_stable", [In((3, 6), small_ints)], lambda x: sg.argsort(x, axis=1),
      lambda x: np.argsort(x, axis=1, kind="stable"), grad=False),
    C("argsort_axis0", [X34], lambda x: sg.argsort(x, axis=0), lambda x: np.argsort(x, axis=0), grad=False),
    C("diff_last", [X235], lambda x: sg.diff(x), lambda x: np.diff(x)),
    C("diff_axis0_twice", [In((5, 3))], lambda x: sg.diff(x, n=2, axis=0), lambda x: np.diff(x, n=2, axis=0)),
    C("diff_to_empty", [In((3, 1))], lambda x: sg.diff(x, axis=1), lambda x: np.diff(x, axis=1)),
    C("diff_named_dim", [In((4, 3), dims=("n", 3))], lambda x: sg.diff(x, axis=0), lambda x: np.diff(x, axis=0)),
    # -- issue 16 (redops): arrays built from arrays -------------------------------------------------
    C("stack_axis0", [X34, X34], lambda a, b: sg.stack([a, b]), lambda a, b: np.stack([a, b])),
    C("stack_last_three", [In((2, 3)), In((2, 3)), In((2, 3))], lambda a, b, c: sg.stack([a, b, c], axis=-1),
      lambda a, b, c: np.stack([a, b, c], axis=-1)),
    C("stack_same_node_middle", [X34], lambda a: sg.stack((a, a * 2.0), axis=1), lambda a: np.stack((a, a * 2.0), 1)),
    C("stack_scalars", [In(()), In(())], lambda a, b: sg.stack([a, b]), lambda a, b: np.stack([a, b])),
    C("split_sections", [In((6, 2))], lambda x: sg.concatenate([p * (i + 1.0) for i, p in enumerate(sg.split(x, 3))]),
      lambda x: np.concatenate([p * (i + 1.0) for i, p in enumerate(np.split(x, 3))])),
    C("split_indices_last_with_empty", [X235],
      lambda x: sg.concatenate([p * (i + 1.0) for i, p in enumerate(sg.split(x, [0, 2, 2], axis=-1))], axis=-1),
      lambda x: np.concatenate([p * (i + 1.0) for i, p in enumerate(np.split(x, [0, 2, 2], axis=-1))], axis=-1)),
    C("split_named_dim_indices", [In((4, 5), dims=("n", 5))], lambda x: sg.split(x, [1, 3], axis=1)[2] * 2.0,
      lambda x: np.split(x, [1, 3], axis=1)[2] * 2.0),
    C("pad_all_axes", [X34], lambda x: sg.pad(x, 1), lambda x: np.pad(x, 1)),
    C("pad_per_axis_value", [X235], lambda x: sg.pad(x, ((0, 0), (2, 1), (0, 3)), constant_values=-1.5),
      lambda x: np.pad(x, ((0, 0), (2, 1), (0, 3)), constant_values=-1.5)),
    C("pad_pair_empty_input", [In((0, 3))], lambda x: sg.pad(x, (1, 2)), lambda x: np.pad(x, (1, 2))),
    C("pad_of_int", [I34], lambda y: sg.pad(y, (1, 0), constant_values=7),
      lambda y: np.pad(y, (1, 0), constant_values=7), grad=False),
    C("roll_last", [X235], lambda x: sg.roll(x, 2, axis=-1), lambda x: np.roll(x, 2, axis=-1)),
    C("roll_negative_two_axes", [X235], lambda x: sg.roll(x, (-1, 4), axis=(0, 1)),
      lambda x: np.roll(x, (-1, 4), axis=(0, 1))),
    C("roll_flattened", [X34], lambda x: sg.roll(x, 5), lambda x: np.roll(x, 5)),
    C("roll_by_length", [X34], lambda x: sg.roll(x, 4, axis=1) * 2.0, lambda x: np.roll(x, 4, axis=1) * 2.0),
    C("repeat_axis1", [X235], lambda x: sg.repeat(x, 2, axis=1), lambda x: np.repeat(x, 2, axis=1)),
    C("repeat_flattened", [X34], lambda x: sg.repeat(x, 3), lambda x: np.repeat(x, 3)),
    C("repeat_last_zero_times", [X34], lambda x: sg.repeat(x, 0, axis=-1), lambda x: np.repeat(x, 0, axis=-1)),
    C("tile_pair", [X34], lambda x: sg.tile(x, (2, 3)), lambda x: np.tile(x, (2, 3))),
    C("tile_more_reps_than_axes", [In((3,))], lambda x: sg.tile(x, (2, 1, 2)), lambda x: np.tile(x, (2, 1, 2))),
    C("tile_int", [X34], lambda x: sg.tile(x, 2), lambda x: np.tile(x, 2)),
    C("flip_all", [X235], lambda x: sg.flip(x), lambda x: np.flip(x)),
    C("flip_axes", [X235], lambda x: sg.flip(x, (0, -1)), lambda x: np.flip(x, (0, -1))),
    C("flip_named_dim", [In((4, 3), dims=("n", 3))], lambda x: sg.flip(x, 0), lambda x: np.flip(x, 0)),
    C("swapaxes_0_2", [X235], lambda x: sg.swapaxes(x, 0, 2), lambda x: np.swapaxes(x, 0, 2)),
    C("swapaxes_negative", [X235], lambda x: sg.swapaxes(x, -1, 1), lambda x: np.swapaxes(x, -1, 1)),
    C("moveaxis_one", [X235], lambda x: sg.moveaxis(x, 0, -1), lambda x: np.moveaxis(x, 0, -1)),
    C("moveaxis_two", [In((2, 3, 4, 5))], lambda x: sg.moveaxis(x, (3, 0), (0, 2)),
      lambda x: np.moveaxis(x, (3, 0), (0, 2))),
    C("triu", [In((4, 5))], lambda x: sg.triu(x), lambda x: np.triu(x)),
    C("triu_k1_batched", [In((2, 4, 4))], lambda x: sg.triu(x, 1), lambda x: np.triu(x, 1)),
    C("tril_negative_k", [In((5, 3))], lambda x: sg.tril(x, -1), lambda x: np.tril(x, -1)),
    C("tril_of_int", [I34], lambda y: sg.tril(y, 1), lambda y: np.tril(y, 1), grad=False),
    C("domain_edge_triu_keeps_inf_off_the_product", [In((6,), domain_edges)],
      lambda x: sg.triu(sg.reshape(x, (2, 3))), lambda x: np.triu(x.reshape(2, 3)), grad=False, domain_edge=True),
    C("clip_numbers", [In((3, 4), off_hard_tanh_kinks)], lambda x: sg.clip(x, -1.0, 1.0),
      lambda x: np.clip(x, -1.0, 1.0)),
    C("clip_lower_only", [In((3, 4), away_from_zero)], lambda x: sg.clip(x, 0.0), lambda x: np.clip(x, 0.0, None)),
    C("clip_node_bounds_broadcast", [In((3, 4), odd_quarters), In((4,), halves), In((3, 1), halves)],
      lambda x, lo, hi: sg.clip(x, lo, hi + 2.0), lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi + 2.0)),
    C("clip_of_int", [I34], lambda y: sg.clip(y, 1, 4), lambda y: np.clip(y, 1, 4), grad=False),
    # -- a small network, every kind of op at once ------------------------------------------
    C("mlp_loss", [In((5, 3), dims=("batch", 3)), In((3, 4)), In((4,)), In((4, 2)),
                   In((5,), labels(2), "int64", diff=False, dims=("batch",))],
      lambda x, W, b, V, y: sg.softmax_cross_entropy(sg.tanh(x @ W + b) @ V, y),
      lambda x, W, b, V, y: np.mean(np_logsumexp(np.tanh(x @ W + b) @ V, -1)
                                    - np_take_label(np.tanh(x @ W + b) @ V, y))),
]

_names = [c.name for c in CASES]
assert len(_names) == len(set(_names)), "case names must be unique"
GRAD_CASES = [c for c in CASES if c.grad]
FD_CASES = [c for c in GRAD_CASES if c.fd]


def params(cases, kind):
    out = []
    for c in cases:
        marks = [pytest.mark.xfail(strict=True, reason=c.xfail[kind])] if kind in c.xfail else []
        out.append(pytest.param(c, id=c.name, marks=marks))
    return out


# -- helpers ---------------------------------------------------------------------------
def make_inputs(case: Case, rng):
    """Placeholders and sampled arrays for a case."""
    xs, arrays = [], []
    for i, spec in enumerate(case.inputs):
        xs.append(sg.placeholder(f"x{i}", spec.dims if spec.dims is not None else spec.shape, dtype=spec.dtype))
        arrays.append(np.asarray(spec.sample(rng, spec.shape), dtype=spec.dtype))
    return xs, arrays


def interpret(outputs, feed: dict):
    """Run a graph through each node's ``op.compute`` (no code generation involved)."""
    values = {id(k): v for k, v in feed.items()}
    for node in topo_sort(outputs):
        if id(node) not in values:
            if node.is_leaf:
                values[id(node)] = node.value  # a parameter
            else:
                values[id(node)] = node.op.compute(*(values[id(i)] for i in node.inputs))
    return [values[id(o)] for o in outputs]


def numeric_grad(f, arrays, i, eps=EPS):
    """Central differences of the scalar f(*arrays) with respect to arrays[i]."""
    x = arrays[i]
    out = np.zeros(x.shape)
    for j in np.ndindex(x.shape):
        args = list(arrays)
        vals = []
        for sign in (1, -1):
            xj = x.copy()
            xj[j] += sign * eps
            args[i] = xj
            vals.append(float(f(*args)))
        out[j] = (vals[0] - vals[1]) / (2 * eps)
    return out


def diff_indices(case):
    return [i for i, spec in enumerate(case.inputs) if spec.diff]


# -- 1. forward values -------------------------------------------------------------------
@pytest.mark.parametrize("case", params(CASES, "forward"))
def test_forward(case, rng):
    xs, arrays = make_inputs(case, rng)
    out = case.build(*xs)
    feed = dict(zip(xs, arrays))
    with np.errstate(all="ignore" if case.domain_edge else "warn"):
        expected = np.asarray(case.ref(*arrays))
        got = codegen.evaluate(out, feed)
        (direct,) = interpret([out], feed)
    assert isinstance(got, np.ndarray)
    assert got.shape == expected.shape
    assert all(d == g for d, g in zip(out.shape, got.shape) if isinstance(d, int)) and out.ndim == got.ndim
    assert got.dtype == out.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=FWD_RTOL, atol=FWD_ATOL)  # nan matches nan
    assert np.asarray(direct).dtype == out.dtype
    np.testing.assert_allclose(direct, expected, rtol=FWD_RTOL, atol=FWD_ATOL)


# -- 2. gradients against finite differences --------------------------------------------------
@pytest.mark.parametrize("case", params(FD_CASES, "fd"))
def test_grad_matches_finite_differences(case, rng):
    xs, arrays = make_inputs(case, rng)
    out = case.build(*xs)
    R = rng.normal(size=np.shape(case.ref(*arrays)))
    loss = (out * R).sum()
    idx = diff_indices(case)
    grads = sg.grad(loss, [xs[i] for i in idx])
    f_loss = codegen.compile(xs, loss)
    got = codegen.compile(xs, grads)(*arrays)
    for k, i in enumerate(idx):
        assert grads[k].shape == xs[i].shape and grads[k].dtype == xs[i].dtype
        assert got[k].shape == arrays[i].shape
        expected = numeric_grad(f_loss, arrays, i)
        np.testing.assert_allclose(got[k], expected, rtol=FD_RTOL, atol=FD_ATOL, err_msg=f"gradient wrt input {i}")


# -- 3. jvp and vjp agree: <c, J t> == <J^T c, t> ------------------------------------------------
@pytest.mark.parametrize("case", params(GRAD_CASES, "jvp"))
def test_jvp_agrees_with_vjp(case, rng):
    xs, arrays = make_inputs(case, rng)
    out = case.build(*xs)
    out_shape = np.shape(case.ref(*arrays))
    idx = diff_indices(case)
    wrt = [xs[i] for i in idx]
    ts = [sg.placeholder(f"t{i}", xs[i].shape) for i in idx]
    c = sg.placeholder("c", out.shape)
    (jv,) = sg.jvp([out], wrt, ts)
    vj = sg.vjp([out], wrt, [c])
    assert jv.shape == out.shape and jv.dtype == out.dtype
    assert [v.shape for v in vj] == [w.shape for w in wrt]
    lhs = (c * jv).sum()
    rhs = sg.sum(sg.concatenate([sg.reshape((t * v).sum(), (1,)) for t, v in zip(ts, vj)]))
    f = codegen.compile(xs + ts + [c], [lhs, rhs, jv, *vj])
    t_vals = [rng.normal(size=arrays[i].shape) for i in idx]
    c_val = rng.normal(size=out_shape)
    lhs_v, rhs_v, jv_v, *vj_v = f(*arrays, *t_vals, c_val)
    assert jv_v.shape == out_shape
    assert [v.shape for v in vj_v] == [arrays[i].shape for i in idx]
    scale = np.abs(c_val).sum() * max(np.abs(jv_v).max(initial=0.0), 1e-3)
    np.testing.assert_allclose(lhs_v, rhs_v, rtol=case.jvp_rtol, atol=case.jvp_rtol * scale)
    # and both match the same products computed with NumPy from the returned arrays
    np.testing.assert_allclose(lhs_v, np.sum(c_val * jv_v), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rhs_v, sum(np.sum(t * v) for t, v in zip(t_vals, vj_v)), rtol=1e-12, atol=1e-12)


def _has_scalar_output(case):
    rng = np.random.default_rng(0)
    return np.ndim(case.ref(*(np.asarray(i.sample(rng, i.shape), i.dtype) for i in case.inputs))) == 0


@pytest.mark.parametrize("case", params([c for c in FD_CASES if _has_scalar_output(c)], "unit_seed"))
def test_grad_of_scalar_output_itself(case, rng):
    """sg.grad(out, x) for a scalar ``out`` (seed 1.0, no projection) against finite differences."""
    xs, arrays = make_inputs(case, rng)
    out = case.build(*xs)
    idx = diff_indices(case)
    grads = sg.grad(out, [xs[i] for i in idx])
    f_out = codegen.compile(xs, out)
    got = codegen.compile(xs, grads)(*arrays)
    for k, i in enumerate(idx):
        np.testing.assert_allclose(got[k], numeric_grad(f_out, arrays, i), rtol=FD_RTOL, atol=FD_ATOL)


@pytest.mark.parametrize("case", params(CASES, "flops"))
def test_flops_estimates_are_non_negative_ints_that_count_the_work(case, rng):
    """Every estimate is an int >= 0; arithmetic costs at least one flop per output element and a
    reduction one per input element; doubling every named size never lowers an estimate, and
    doubles that of arithmetic whose output has a named dimension."""
    from symgraph.ops import Elementwise
    from symgraph.ops.reduce import Reduce
    from symgraph.shapes import numel

    xs, _ = make_inputs(case, rng)
    out = case.build(*xs)
    graphs = [out]
    if case.grad:
        graphs += sg.grad(sg.sum(out * 1.5), [xs[i] for i in diff_indices(case)])
    for node in topo_sort(graphs):
        flops = node.op.flops(node, {})
        assert isinstance(flops, (int, np.integer)) and not isinstance(flops, bool) and flops >= 0, (node, flops)
        arithmetic = node.op.scalar_expr is not None or isinstance(node.op, Elementwise)
        if arithmetic:
            assert flops >= numel(node.shape), (node, flops)
        if isinstance(node.op, Reduce):
            assert flops >= numel(node.inputs[0].shape), (node, flops)
        names = {d for n in (node, *node.inputs) for d in n.shape if isinstance(d, str)}
        if names:
            small, large = (node.op.flops(node, {d: k for d in names}) for k in (3, 6))
            assert large >= small, (node, small, large)
            if arithmetic and any(isinstance(d, str) for d in node.shape):
                assert large == 2 * small, (node, small, large)


def test_flops_of_matmul_and_elementwise():
    a, b = sg.placeholder("a", (3, 4)), sg.placeholder("b", (4, 5))
    c = a @ b
    assert c.op.flops(c, {}) == 2 * 3 * 4 * 5
    n = sg.placeholder("n", ("batch", 4))
    t = sg.tanh(n)
    assert t.op.flops(t, {"batch": 10}) >= 40
    assert t.op.flops(t, {"batch": 20}) == 2 * t.op.flops(t, {"batch": 10})


def test_jvp_of_a_non_trivial_case_is_not_zero(rng):
    """Guard against a vacuous jvp/vjp test: the products are not both zero."""
    x = sg.placeholder("x", (3, 4))
    t = sg.placeholder("t", (3, 4))
    (jv,) = sg.jvp([sg.tanh(x) @ x.T], [x], [t])
    value = codegen.evaluate(jv, {x: rng.normal(size=(3, 4)), t: rng.normal(size=(3, 4))})
    assert np.abs(value).max() > 1e-3


def test_random_uniform_is_uniform_reproducible_and_keyed():
    x = sg.placeholder("x", (200, 50))
    key = sg.random_key("key", 3)
    u = sg.random_uniform(key, x)
    assert u.shape == x.shape and u.dtype == np.float64
    f = codegen.compile([x], [u, sg.random_uniform(sg.random_key("other", 4), x)])
    a, other = f(np.zeros((200, 50)))
    b, _ = f(np.zeros((200, 50)))
    np.testing.assert_array_equal(a, b)  # same key, same numbers
    assert not np.array_equal(a, other)  # another seed, other numbers
    assert a.min() >= 0.0 and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.02 and abs(a.var() - 1 / 12) < 0.01
    (direct,) = interpret([u], {x: np.zeros((200, 50))})
    np.testing.assert_array_equal(direct, a)  # the generated code draws what op.compute draws
    u32 = sg.random_uniform(key, sg.placeholder("y", (3,), dtype="float32"))
    assert u32.dtype == np.float32


# -- stop_gradient --------------------------------------------------------------------------
def test_stop_gradient_blocks_the_gradient(rng):
    x = sg.placeholder("x", (3, 4))
    a = rng.normal(size=(3, 4))
    g_stop = sg.grad((sg.stop_gradient(x) * 3.0).sum(), x)
    g_mixed = sg.grad((x * sg.stop_gradient(x)).sum(), x)
    (jv,) = sg.jvp([x * sg.stop_gradient(x)], [x], [sg.constant(np.ones((3, 4)))])
    v_stop, v_mixed, v_jv = codegen.compile([x], [g_stop, g_mixed, jv])(a)
    np.testing.assert_array_equal(v_stop, np.zeros((3, 4)))
    np.testing.assert_allclose(v_mixed, a, rtol=1e-15)  # not 2 a
    np.testing.assert_allclose(v_jv, a, rtol=1e-15)


def test_where_condition_gets_a_zero_gradient(rng):
    a, z = sg.placeholder("a", (3, 4)), sg.placeholder("z", (3, 4))
    ga, gz = sg.grad(sg.where(z > 0, a, -a).sum(), [a, z])
    zv = away_from_zero(rng, (3, 4))
    va, vz = codegen.compile([a, z], [ga, gz])(rng.normal(size=(3, 4)), zv)
    np.testing.assert_array_equal(va, np.where(zv > 0, 1.0, -1.0))
    np.testing.assert_array_equal(vz, np.zeros((3, 4)))


def test_max_splits_the_gradient_between_ties():
    x = sg.placeholder("x", (2, 3))
    g = sg.grad(sg.max(x, axis=1).sum(), x)
    value = codegen.evaluate(g, {x: np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])})
    np.testing.assert_allclose(value, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15)


def test_maximum_and_minimum_send_ties_to_the_first_operand():
    a, b = sg.placeholder("a", (3,)), sg.placeholder("b", (3,))
    outs = sg.grad((sg.maximum(a, b) + 2.0 * sg.minimum(a, b)).sum(), [a, b])
    ga, gb = codegen.compile([a, b], outs)(np.array([1.0, 2.0, 0.0]), np.array([1.0, 1.0, 3.0]))
    np.testing.assert_array_equal(ga, [3.0, 1.0, 2.0])
    np.testing.assert_array_equal(gb, [0.0, 2.0, 1.0])


# -- 4. numerical stability at +-1000 -----------------------------------------------------------
L2, L3 = math.log(2.0), math.log(3.0)
LE = math.log1p(math.exp(-1.0))  # log(1 + e^-1)
BIG = np.array([[1000.0, 1000.0, -1000.0], [-1000.0, 0.0, 0.0], [1000.0, 999.0, -1000.0], [-1000.0, -1000.0, -1000.0]])
S1 = 1.0 / (1.0 + math.exp(-1.0))
BIG_SOFTMAX = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [S1, 1.0 - S1, 0.0], [1 / 3, 1 / 3, 1 / 3]])
BIG_LSE = np.array([1000.0 + L2, L2, 1000.0 + LE, -1000.0 + L3])
BIG_LOG_SOFTMAX = np.array(
    [[-L2, -L2, -2000.0 - L2], [-1000.0 - L2, -L2, -L2], [-LE, -1.0 - LE, -2000.0 - LE], [-L3, -L3, -L3]]
)
BIG_LABELS = np.array([0, 0, 1, 2])
BIG_ONE_HOT = np.eye(3)[BIG_LABELS]
BIG_SCE_ROWS = np.array([L2, 1000.0 + L2, 1.0 + LE, L3])


def _stable(build, x_value, extra=None):
    """Value and gradient of sum(build(x) * R) with a fixed R, compiled, under strict FP checks;
    interpreting the graph through each op's ``compute`` must give the same numbers."""
    x = sg.placeholder("x", x_value.shape)
    out = build(x)
    R = np.linspace(-1.0, 2.0, math.prod(out.shape) or 1).reshape(out.shape)
    g = sg.grad((out * R).sum(), x)
    f = codegen.compile([x], [out, g])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = f(x_value)
        direct = interpret([out, g], {x: x_value})  # each op's compute, the reference semantics
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(direct[0], value, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(direct[1], grad, rtol=1e-12, atol=1e-300)
    return value, grad, R


def test_stable_logsumexp():
    value, grad, R = _stable(lambda x: sg.logsumexp(x, axis=-1), BIG)
    np.testing.assert_allclose(value, BIG_LSE, rtol=1e-14)
    np.testing.assert_allclose(grad, R[:, None] * BIG_SOFTMAX, rtol=1e-12, atol=1e-300)


def test_stable_logsumexp_all_axes():
    value, grad, R = _stable(lambda x: sg.logsumexp(x), BIG[:3])
    np.testing.assert_allclose(value, 1000.0 + math.log(2.0 + 1.0 + math.exp(-1.0)), rtol=1e-14)
    w = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, math.exp(-1.0), 0.0]).reshape(3, 3)
    np.testing.assert_allclose(grad, R * w / w.sum(), rtol=1e-12)


def test_stable_softmax():
    value, grad, R = _stable(sg.softmax, BIG)
    np.testing.assert_allclose(value, BIG_SOFTMAX, rtol=1e-14, atol=1e-300)
    s = BIG_SOFTMAX
    np.testing.assert_allclose(grad, s * (R - (R * s).sum(-1, keepdims=True)), rtol=1e-12, atol=1e-15)


def test_stable_log_softmax():
    value, grad, R = _stable(sg.log_softmax, BIG)
    np.testing.assert_allclose(value, BIG_LOG_SOFTMAX, rtol=1e-14)
    np.testing.assert_allclose(grad, R - BIG_SOFTMAX * R.sum(-1, keepdims=True), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind", ["int_labels", "one_hot"])
def test_stable_softmax_cross_entropy(kind, reduction):
    labels = sg.constant(BIG_LABELS) if kind == "int_labels" else sg.constant(BIG_ONE_HOT)
    value, grad, R = _stable(lambda x: sg.softmax_cross_entropy(x, labels, reduction=reduction), BIG)
    rows_grad = BIG_SOFTMAX - BIG_ONE_HOT
    if reduction == "none":
        # logsumexp - picked logit cancels 1000s: allow a few ulps of 1000 (~1e-13) absolute
        np.testing.assert_allclose(value, BIG_SCE_ROWS, rtol=1e-14, atol=1e-12)
        expected = R[:, None] * rows_grad
    else:
        scale = 1 / 4 if reduction == "mean" else 1.0
        np.testing.assert_allclose(value, scale * BIG_SCE_ROWS.sum(), rtol=1e-14, atol=1e-12)
        expected = R * scale * rows_grad
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_stable_binary_cross_entropy(reduction):
    logits = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0])
    targets = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    rows = np.array([1000.0, 1000.0, 0.0, 0.0, L2])
    rows_grad = np.array([1.0, -1.0, 0.0, 0.0, -0.5])  # sigmoid(x) - t
    value, grad, R = _stable(lambda x: sg.binary_cross_entropy(x, targets, reduction=reduction), logits)
    if reduction == "none":
        np.testing.assert_allclose(value, rows, rtol=1e-14, atol=1e-300)
        expected = R * rows_grad
    else:
        scale = 1 / 5 if reduction == "mean" else 1.0
        np.testing.assert_allclose(value, scale * rows.sum(), rtol=1e-14)
        expected = R * scale * rows_grad
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-300)


def test_stable_sigmoid():
    value, grad, R = _stable(sg.sigmoid, np.array([1000.0, -1000.0, 0.0, 40.0]))
    s40 = 1.0 / (1.0 + math.exp(-40.0))
    np.testing.assert_allclose(value, [1.0, 0.0, 0.5, s40], rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(grad, R * np.array([0.0, 0.0, 0.25, s40 * (1 - s40)]), rtol=1e-12, atol=1e-300)


def test_stable_softplus():
    value, grad, R = _stable(sg.softplus, np.array([1000.0, -1000.0, 0.0, -40.0]))
    np.testing.assert_allclose(value, [1000.0, 0.0, L2, math.log1p(math.exp(-40.0))], rtol=1e-14, atol=1e-300)
    expected = R * np.array([1.0, 0.0, 0.5, 1.0 / (1.0 + math.exp(40.0))])
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-300)


V3 = np.array([1000.0, -1000.0, 0.0])
SIG3 = np.array([1.0, 0.0, 0.5])


@pytest.mark.parametrize(
    "build, x_value, value, dvalue",
    [
        # dvalue(R) is the exact gradient of sum(value * R)
        pytest.param(lambda x: sg.log(sg.softmax(x)), BIG, BIG_LOG_SOFTMAX,
                     lambda R: R - BIG_SOFTMAX * R.sum(-1, keepdims=True), id="log_of_softmax"),
        pytest.param(lambda x: sg.log(sg.sum(sg.exp(x), axis=-1)), BIG, BIG_LSE,
                     lambda R: R[:, None] * BIG_SOFTMAX, id="log_of_sum_of_exp"),
        pytest.param(lambda x: sg.exp(x - sg.logsumexp(x, axis=-1, keepdims=True)), BIG, BIG_SOFTMAX,
                     lambda R: BIG_SOFTMAX * (R - (R * BIG_SOFTMAX).sum(-1, keepdims=True)), id="exp_minus_logsumexp"),
        pytest.param(lambda x: sg.log(sg.sigmoid(x)), V3, np.array([0.0, -1000.0, -L2]),
                     lambda R: R * (1 - SIG3), id="log_of_sigmoid"),
        pytest.param(lambda x: sg.log(1.0 - sg.sigmoid(x)), V3, np.array([-1000.0, 0.0, -L2]),
                     lambda R: -R * SIG3, id="log_of_one_minus_sigmoid"),
        pytest.param(lambda x: sg.log(1.0 + sg.exp(x)), V3, np.array([1000.0, 0.0, L2]),
                     lambda R: R * SIG3, id="log_of_one_plus_exp"),
    ],
)
def test_stable_user_compositions(build, x_value, value, dvalue, request):
    """Unstable-looking compositions of stable ops still give finite, exact values and gradients
    (the simplifier's stabilizing rewrites, or stable derivative rules, must take care of them)."""
    x = sg.placeholder("x", x_value.shape)
    out = build(x)
    R = np.linspace(-1.0, 2.0, math.prod(out.shape)).reshape(out.shape)
    g = sg.grad((out * R).sum(), x)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v, gv = codegen.compile([x], [out, g])(x_value)
    # exp(x - logsumexp(x)) is computed as written (as PyTorch and JAX compute the cross-entropy
    # gradient): x - logsumexp(x) carries an absolute error of about |x| * eps, here 1000 * 2e-16
    loose = request.node.callspec.id == "exp_minus_logsumexp"
    np.testing.assert_allclose(v, value, rtol=1e-12 if loose else 1e-14, atol=1e-300)
    np.testing.assert_allclose(gv, dvalue(R), rtol=1e-12, atol=1e-13 if loose else 1e-15)


# -- 5. second derivatives: reverse over reverse vs finite differences of the first gradient ----------
def _tanh_of_matmul(x, W):
    return sg.tanh(x @ W)


# -- issue 16: naive forms the stabilize rules rewrite, at |x| = 1e4 and 1e-10 -------------------
TINY = np.array([1e4, -1e4, 1e-10, -1e-10, 0.0])
SIG_TINY = np.array([1.0, 0.0, 0.5 + 2.5e-11, 0.5 - 2.5e-11, 0.5])
SOFT_ROWS = np.array([[1e4, 1e4, -1e4], [1e-10, -1e-10, 0.0], [-1e4, -1e4, -1e4]])


def _np_stable_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


SOFT_VALUE = _np_stable_softmax(SOFT_ROWS)


@pytest.mark.parametrize(
    "build, x_value, value, dvalue",
    [
        # dvalue(R) is the exact gradient of sum(value * R)
        pytest.param(lambda x: 1.0 / (1.0 + sg.exp(-x)), TINY, SIG_TINY, lambda R: R * SIG_TINY * (1 - SIG_TINY),
                     id="naive_sigmoid"),
        pytest.param(lambda x: 1.0 / (sg.exp(x) + 1.0), TINY, 1 - SIG_TINY, lambda R: -R * SIG_TINY * (1 - SIG_TINY),
                     id="naive_sigmoid_of_minus_x"),
        pytest.param(lambda x: sg.exp(x) / sg.sum(sg.exp(x), axis=-1, keepdims=True), SOFT_ROWS, SOFT_VALUE,
                     lambda R: SOFT_VALUE * (R - (R * SOFT_VALUE).sum(-1, keepdims=True)), id="naive_softmax"),
        pytest.param(lambda x: sg.exp(x) / sg.sum(sg.exp(x)), SOFT_ROWS[0], SOFT_VALUE[0],
                     lambda R: SOFT_VALUE[0] * (R - (R * SOFT_VALUE[0]).sum()), id="naive_softmax_of_a_vector"),
        # log(1 + x) and exp(x) - 1 computed as written lose all but 8 digits at x = 1e-10
        pytest.param(lambda x: sg.log(1.0 + x), np.array([1e4, 1e-10, -1e-10, 0.0, -0.5]),
                     np.log1p([1e4, 1e-10, -1e-10, 0.0, -0.5]),
                     lambda R: R / (1.0 + np.array([1e4, 1e-10, -1e-10, 0.0, -0.5])), id="log_one_plus"),
        pytest.param(lambda x: sg.exp(x) - 1.0, np.array([-1e4, 1e-10, -1e-10, 0.0, 2.0]),
                     np.expm1([-1e4, 1e-10, -1e-10, 0.0, 2.0]),
                     lambda R: R * np.exp([-1e4, 1e-10, -1e-10, 0.0, 2.0]), id="exp_minus_one"),
    ],
)
def test_naive_forms_are_stabilized(build, x_value, value, dvalue):
    """Value and gradient finite and correct where the naive form overflows (exp(1e4)) or cancels
    (1 + 1e-10): the stabilize rules rewrite it before compiling and before differentiating."""
    x = sg.placeholder("x", x_value.shape)
    out = build(x)
    R = np.linspace(-1.0, 2.0, math.prod(out.shape)).reshape(out.shape)
    g = sg.grad((out * R).sum(), x)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v, gv = codegen.compile([x], [out, g])(x_value)
    np.testing.assert_allclose(v, value, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(gv, dvalue(R), rtol=1e-13, atol=1e-300)


def test_naive_forms_overflow_without_the_rules():
    """What the rules fix: the same graphs, compiled without simplification, give NaN at |x| = 1e4."""
    x = sg.placeholder("x", (5,))
    with np.errstate(all="ignore"):
        sig = codegen.compile([x], 1.0 / (1.0 + sg.exp(-x)), simplify=False)(TINY)
        soft = codegen.compile([x], sg.exp(x) / sg.sum(sg.exp(x)), simplify=False)(TINY)
    assert np.isnan(soft).any()
    assert np.isfinite(sig).all()  # the value survives; the gradient of the naive form (below) does not
    g = sg.grad((1.0 / (1.0 + sg.exp(-x))).sum(), x)  # differentiated from sigmoid(x): stabilized first
    np.testing.assert_allclose(codegen.compile([x], g)(TINY), SIG_TINY * (1 - SIG_TINY), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "selu", "erf", "arctan", "arcsinh", "log1p", "expm1",
                                  "reciprocal"])
def test_new_elementwise_builtins_are_finite_at_large_and_tiny_inputs(name):
    """No overflow (in the unused branch of a where, or in a derivative) at +-1e4 and +-1e-10, values and
    gradients as PyTorch's in float64."""
    torch = pytest.importorskip("torch")
    xv = np.array([1e4, -1e4, 1e-10, -1e-10, 0.5])
    if name == "log1p":
        xv[1] = 0.0  # outside its domain
    if name == "expm1":
        xv[0] = 700.0  # exp(1e4) is no float
    value, grad, R = _stable(getattr(sg, name), xv)
    t = torch.tensor(xv, requires_grad=True)
    fn = {"gelu": torch.nn.functional.gelu, "silu": torch.nn.functional.silu, "elu": torch.nn.functional.elu,
          "selu": torch.selu, "arctan": torch.atan, "arcsinh": torch.asinh}.get(name) or getattr(torch, name)
    out = fn(t)
    (out * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(value, out.detach().numpy(), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-13, atol=1e-300)


def test_arcsinh_gradient_does_not_overflow_at_1e200():
    """1 / hypot(1, x), not 1 / sqrt(1 + x**2) (which is 0 at x = 1e200: x**2 overflows)."""
    value, grad, R = _stable(sg.arcsinh, np.array([1e200, -1e200, 1e-200]))
    np.testing.assert_allclose(grad, R * np.array([1e-200, 1e-200, 1.0]), rtol=1e-15)


def test_hypot_gradient_at_the_origin_is_zero_without_a_warning():
    """d hypot(a, b) = (a, b) / hypot: at the origin (the kink) 0, not 0 / 0."""
    a, b = sg.placeholder("a", (3,)), sg.placeholder("b", (3,))
    ga, gb = sg.grad(sg.hypot(a, b).sum(), [a, b])
    with np.errstate(all="raise"):
        va, vb = codegen.compile([a, b], [ga, gb])(np.array([0.0, 3.0, 1e-300]), np.array([0.0, -4.0, 0.0]))
    np.testing.assert_array_equal(va, [0.0, 0.6, 1.0])
    np.testing.assert_array_equal(vb, [0.0, -0.8, 0.0])


SECOND_ORDER = [
    # tanh and sigmoid have derivatives written in their own output y (1 - y**2, y * (1 - y)):
    # differentiating those derivative ops again must not confuse their output with y.
    pytest.param([(3, 4)], lambda x: sg.tanh(x), positive, id="tanh"),
    pytest.param([(3, 4)], lambda x: sg.sigmoid(x), normal, id="sigmoid"),
    pytest.param([(3, 4)], lambda x: sg.sqrt(x), positive, id="sqrt"),
    pytest.param([(3, 4)], lambda x: sg.exp(x) * sg.sin(x), normal, id="exp_times_sin"),
    pytest.param([(3, 4), (4, 2)], lambda x, W: (x @ W) ** 3, normal, id="cube_of_matmul"),
    pytest.param([(4,), (4, 4)], lambda x, A: (x @ A @ x) * x, normal, id="quadratic_form_matmul"),
    pytest.param([(3, 4), (4, 2)], lambda x, W: sg.softmax(x @ W) * sg.exp(W.sum(0)), normal, id="softmax_of_matmul"),
    pytest.param([(3, 4), (4, 2)], _tanh_of_matmul, normal, id="tanh_of_matmul"),
    # linear algebra and indexing (issue 16): every derivative is built of differentiable ops
    pytest.param([(3, 4), (4, 5)], lambda a, b: sg.tanh(sg.einsum("ij,jk->ik", a, b)), normal, id="einsum"),
    pytest.param([(3, 3)], lambda a: sg.einsum("ii,ij->j", a, a) ** 2, normal, id="einsum_diagonal"),
    pytest.param([(3, 3), (3,)], lambda a, b: sg.solve(a, b) * b, lambda r, s: well_conditioned(r, s)
                 if len(s) == 2 else normal(r, s), id="solve"),
    pytest.param([(3, 3)], lambda a: sg.inv(a), well_conditioned, id="inv"),
    pytest.param([(3, 3)], lambda a: sg.det(a), well_conditioned, id="det"),
    pytest.param([(2, 3, 3)], lambda a: sg.slogdet(a)[1], well_conditioned, id="logabsdet"),
    pytest.param([(3, 4)], lambda x: sg.norm(x, axis=0), normal, id="norm"),
    pytest.param([(3, 3)], lambda x: sg.cholesky(x @ x.T + np.eye(3)), normal, id="cholesky"),
    pytest.param([(3, 3)], lambda x: sg.eigh(x + x.T)[0] * sg.eigh(x + x.T)[1] ** 2, normal, id="eigh"),
    pytest.param([(4, 3)], lambda x: sg.take(x, [3, 0, 3], axis=0) ** 3, normal, id="take"),
    pytest.param([(3, 4)], lambda x: sg.gather(x, np.array([[0, 0], [3, 1], [2, 2]]), axis=-1) ** 3, normal,
                 id="gather"),
    # issue 16: derivatives written in y (tan, exp2, hypot), in erf (gelu), Piecewise (elu, selu, hypot)
    pytest.param([(3, 4)], lambda x: sg.tan(x * 0.5) + sg.exp2(x) + sg.reciprocal(x) + sg.log1p(x) + sg.expm1(x),
                 positive, id="tan_exp2_reciprocal_log1p_expm1"),
    pytest.param([(3, 4)], lambda x: sg.arcsin(x * 0.4) + sg.arctanh(x * 0.4) + sg.arcsinh(x) + sg.arctan(x)
                 + sg.sinh(x) * sg.cosh(x), positive, id="inverse_trig_hyperbolic"),
    pytest.param([(3, 4)], lambda x: sg.gelu(x) + sg.silu(x) + sg.erf(x) + sg.log2(x) * sg.log10(x), positive,
                 id="gelu_silu_erf"),
    pytest.param([(3, 4)], lambda x: sg.elu(x, 0.7) + sg.selu(x), away_from_zero, id="elu_selu"),
    pytest.param([(3, 4), (4,)], lambda x, y: sg.arctan2(x, y) * sg.hypot(x, y), away_from_zero,
                 id="arctan2_hypot"),
    # issue 16 (redops)
    pytest.param([(3, 4)], lambda x: sg.prod(x, axis=1), normal, id="prod"),
    pytest.param([(3, 4)], lambda x: sg.cumprod(x, axis=1), positive, id="cumprod"),
    pytest.param([(3, 4), (4,)], lambda x, y: sg.logaddexp(x, y) ** 2, normal, id="logaddexp"),
    pytest.param([(3, 4)], lambda x: sg.sort(x * x, axis=0) * sg.cumsum(x, axis=1), distinct, id="sort_cumsum"),
    pytest.param([(3, 4)], lambda x: sg.min(x, axis=0) ** 3 + sg.roll(sg.flip(x, 1), 1, axis=1) ** 2, distinct,
                 id="min_roll_flip"),
]


@pytest.mark.parametrize("shapes, build, sample", SECOND_ORDER)
def test_second_derivative_reverse_over_reverse(shapes, build, sample, rng):
    xs = [sg.placeholder(f"x{i}", s) for i, s in enumerate(shapes)]
    arrays = [sample(rng, s) for s in shapes]
    out = build(*xs)
    R = rng.normal(size=out.shape)
    cost = (out * R).sum()
    g = sg.grad(cost, xs)
    V = [rng.normal(size=s) for s in shapes]
    s = sg.sum(sg.concatenate([sg.reshape((gi * vi).sum(), (1,)) for gi, vi in zip(g, V)]))
    h = sg.grad(s, xs)  # the Hessian of cost applied to V
    f_g = codegen.compile(xs, g)
    got = codegen.compile(xs, h)(*arrays)

    def projected_gradient(*args):
        return sum(np.sum(gi * vi) for gi, vi in zip(f_g(*args), V))

    for i in range(len(xs)):
        expected = numeric_grad(projected_gradient, arrays, i)
        np.testing.assert_allclose(got[i], expected, rtol=FD_RTOL, atol=1e-7, err_msg=f"wrt input {i}")


def test_second_derivative_of_quadratic_form_is_exact(rng):
    """d2/dx2 of x @ A @ x is A + A.T, exactly: a check independent of finite differences."""
    x = sg.placeholder("x", (4,))
    A = rng.normal(size=(4, 4))
    g = sg.grad(x @ A @ x, x)
    rows = [sg.grad((g * np.eye(4)[i]).sum(), x) for i in range(4)]
    hessian = np.stack(codegen.compile([x], rows)(rng.normal(size=4)))
    np.testing.assert_allclose(hessian, A + A.T, rtol=1e-14, atol=1e-14)


def test_second_derivative_of_tanh_closed_form(rng):
    """d2/dx2 tanh(x) = -2 tanh(x) (1 - tanh(x)**2), elementwise."""
    x = sg.placeholder("x", (5,))
    h = sg.grad(sg.grad(sg.tanh(x).sum(), x).sum(), x)
    a = rng.normal(size=5)
    t = np.tanh(a)
    np.testing.assert_allclose(codegen.evaluate(h, {x: a}), -2 * t * (1 - t**2), rtol=1e-12)


# -- 6. float32 graphs stay float32 --------------------------------------------------------------
FLOAT32_CASES = [
    pytest.param(lambda x: sg.tanh(x * 2.0 + 1.0) ** 2 / 3.0, id="arith_tanh_power"),
    pytest.param(lambda x: sg.exp(-x) / (1.0 + x * x) - 2 * x, id="exp_divide_int"),
    pytest.param(lambda x: sg.sigmoid(x) * sg.softplus(x) - sg.relu(x - 0.5), id="sigmoid_softplus_relu"),
    pytest.param(lambda x: sg.sqrt(x * x + 1.0) + sg.log(x * x + 0.5) + sg.abs(x), id="sqrt_log_abs"),
    pytest.param(lambda x: sg.sin(x) * sg.cos(x) + sg.square(x) + sg.hard_tanh(x) + sg.leaky_relu(x, 0.1),
                 id="trig_etc"),
    pytest.param(lambda x: sg.step(x) * x + sg.where(x > 0.0, x, 0.1 * x), id="step_where"),
    pytest.param(lambda x: sg.maximum(x, 0.25) * sg.minimum(x, -0.25), id="maximum_minimum"),
    pytest.param(lambda x: sg.softmax(x * 0.5) + sg.log_softmax(x, axis=0), id="softmax_log_softmax"),
    pytest.param(lambda x: x - sg.logsumexp(x, axis=-1, keepdims=True) + x.mean(0) + sg.max(x, axis=1, keepdims=True),
                 id="reductions"),
    pytest.param(lambda x: (x @ x.T) / 4.0 + x.sum() * 0.5, id="matmul"),
    pytest.param(lambda x: sg.concatenate([x[:, ::2], x[::-1, 1::2] ** 2], axis=0) * x[2, 1],
                 id="indexing_concatenate"),
    pytest.param(lambda x: sg.transpose(sg.broadcast_to(x, (2, 3, 4)), (2, 0, 1)).reshape(4, -1), id="shapes"),
    pytest.param(lambda x: sg.binary_cross_entropy(x, sg.sigmoid(2.0 * x), reduction="none")
                 + sg.mse(x, x * 0.5, reduction="none"), id="bce_mse"),
    pytest.param(lambda x: sg.softmax_cross_entropy(x, sg.constant(np.array([0, 3, 1])), reduction="none")
                 + sg.softmax_cross_entropy(x, sg.softmax(x * 2.0), reduction="none"), id="cross_entropy"),
    pytest.param(lambda x: sg.elementwise(lambda z: sympy.log(1 + sympy.exp(z)) * sympy.Rational(1, 3))(x),
                 id="user_elementwise"),
    pytest.param(lambda x: sg.einsum("ij,kj->ik", x, x) @ sg.inv(x[:, :3] @ x[:, :3].T + np.eye(3, dtype="float32"))
                 + sg.norm(x, axis=1, keepdims=True) + sg.take(x, [2, 0, 2], axis=1) * sg.slogdet(x[:, 1:] + 3.0)[1],
                 id="linalg_and_take"),
    # issue 16's built-ins; exp2, log2, log10, erf and gelu have irrational constants in their derivatives
    pytest.param(lambda x: sg.exp2(x) + sg.log2(x * x + 1.0) + sg.log10(x * x + 0.5) + sg.log1p(x * x)
                 + sg.expm1(x) + sg.reciprocal(x * x + 1.0), id="exp_log_variants"),
    pytest.param(lambda x: sg.tan(x * 0.5) + sg.sinh(x) * sg.cosh(x) + sg.arcsin(x * 0.5) + sg.arccos(x * 0.5)
                 + sg.arctan(x) + sg.arcsinh(x) + sg.arctanh(x * 0.5), id="trig_hyperbolic_inverse"),
    pytest.param(lambda x: sg.erf(x) + sg.gelu(x) + sg.silu(x) + sg.elu(x, 0.5) + sg.selu(x), id="activations"),
    pytest.param(lambda x: sg.arctan2(x, x.T.sum(1) + 2.0) + sg.hypot(x, 1.5) + (x * 3.0) % 1.25, id="binary"),
    # issue 16 (redops)
    pytest.param(lambda x: sg.prod(x, axis=1, keepdims=True) * sg.min(x, 0) + sg.logaddexp(x, 0.5),
                 id="prod_min_logaddexp"),
    pytest.param(lambda x: sg.cumprod(x, axis=1) + sg.cumsum(sg.sort(x, 0), 0) + sg.pad(sg.diff(x), ((0, 0), (0, 1))),
                 id="cumulative_and_ordering"),
    pytest.param(lambda x: sg.tile(sg.triu(x), (1, 2))[:, :4] * sg.clip(x, -0.5, 0.5) + sg.stack(sg.split(x, 3))[1],
                 id="arrange"),
]


@pytest.mark.parametrize("build", FLOAT32_CASES)
def test_float32_graph_stays_float32(build, rng):
    x32 = sg.placeholder("x", (3, 4), dtype="float32")
    out = build(x32)
    R = np.linspace(-1, 1, math.prod(out.shape)).reshape(out.shape)
    g = sg.grad((out * sg.constant(R.astype(np.float32))).sum(), x32)
    float_nodes = [n for n in topo_sort([out, g]) if n.dtype.kind == "f"]
    wrong = sorted({f"{n.op.name}: {n.dtype}" for n in float_nodes if n.dtype != np.float32})
    assert not wrong, f"float64 nodes in a float32 graph: {wrong}"
    a = rng.uniform(-1.5, 1.5, size=(3, 4))
    value, grad = codegen.compile([x32], [out, g])(a.astype(np.float32))
    assert value.dtype == np.float32 and grad.dtype == np.float32
    assert value.shape == tuple(out.shape) and grad.shape == (3, 4)
    # the same graph in float64 gives (nearly) the same numbers
    x64 = sg.placeholder("x", (3, 4))
    out64 = build(x64)
    g64 = sg.grad((out64 * R).sum(), x64)
    value64, grad64 = codegen.compile([x64], [out64, g64])(a)
    assert value64.dtype == np.float64
    np.testing.assert_allclose(value, value64, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(grad, grad64, rtol=2e-4, atol=2e-4)


class _NoDerivative(sympy.Function):
    """A function NumPy can print (as sin) but SymPy cannot differentiate."""

    def _numpycode(self, printer):
        return f"np.sin({printer._print(self.args[0])})"


@pytest.mark.parametrize("fn, match", [
    (_NoDerivative, r"elementwise 'nodiff': SymPy cannot differentiate .* with respect to x0; it leaves "
                    r"Derivative\(_NoDerivative\(x0\), x0\) unevaluated"),
    (sympy.gamma, r"elementwise 'nodiff': its derivative with respect to argument 0, .*polygamma.*has no NumPy form"),
])
def test_user_elementwise_without_a_printable_derivative_is_refused_when_defined(fn, match):
    """Refused when the function is defined, saying why, not when the gradient is compiled."""
    with pytest.raises(ValueError, match=match):
        sg.elementwise(lambda z: fn(z), name="nodiff")


def test_user_elementwise_floor_ceiling_and_mod_gradients_compile(rng):
    """Issue 16: these built gradients that only failed in codegen (PrintMethodNotImplementedError ... Derivative)."""
    a, b = sg.placeholder("a", (4,)), sg.placeholder("b", (4,))
    av, bv = np.array([5.5, -0.3, 2.25, 7.0]), np.array([2.0, 1.0, -2.0, 4.0])
    fl = sg.elementwise(lambda z: sympy.floor(z), name="fl")
    ce = sg.elementwise(lambda z: sympy.ceiling(3 * z), name="ce")
    got = codegen.evaluate([sg.grad(fl(a).sum(), a), sg.grad(ce(a).sum(), a), *sg.grad(_mod(a, b).sum(), [a, b])],
                           {a: av, b: bv})
    np.testing.assert_array_equal(got[0], np.zeros(4))
    np.testing.assert_array_equal(got[1], np.zeros(4))
    np.testing.assert_array_equal(got[2], np.ones(4))
    np.testing.assert_array_equal(got[3], -np.floor(av / bv))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_std_gradient_at_zero_spread_is_zero_as_in_pytorch():
    """Issue 16: sqrt(var) has derivative 1 / (2 * 0) * 0 = nan where all values are equal;
    sg.std gives 0 there, as torch.std does (a single element has zero spread)."""
    torch = pytest.importorskip("torch")
    x = sg.placeholder("x", (3, 2))
    xv = np.array([[1.0, 1.0], [2.0, 5.0], [-3.0, -3.0]])  # rows 0 and 2: zero spread
    for axis, ddof in ((1, 0), (1, 1), (0, 0), (None, 0)):
        got = codegen.evaluate(sg.grad(sg.std(x, axis=axis, ddof=ddof).sum(), x), {x: xv})
        t = torch.tensor(xv, requires_grad=True)
        torch.std(t, dim=axis, correction=ddof).sum().backward()
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, err_msg=f"axis={axis}, ddof={ddof}")
    one = sg.placeholder("one", (1,))  # a single element: std 0, gradient 0 (sqrt(var) gives nan)
    std, g = codegen.evaluate([sg.std(one), sg.grad(sg.std(one), one)], {one: np.array([4.0])})
    assert std == 0.0 and g.tolist() == [0.0]
    h = codegen.evaluate(sg.hessian(sg.std(one), one), {one: np.array([4.0])})
    assert h.tolist() == [[0.0]]


def test_var_and_std_refuse_a_negative_ddof():
    with pytest.raises(ValueError, match=r"var: ddof must be a non-negative number, got -1"):
        sg.std(sg.placeholder("x", (3,)), ddof=-1)


# -- behaviour pinned down (issue 16) -------------------------------------------------------------
@pytest.mark.parametrize("loss, a, b, match", [
    (sg.mse, (3, 1), (3,), r"mse: prediction shape \(3, 1\) and target shape \(3,\) differ"),
    (sg.mse, (3,), (3, 1), r"mse: prediction shape \(3,\) and target shape \(3, 1\) differ"),
    (sg.mse, (2, 3), (3, 2), r"mse: prediction shape \(2, 3\) and target shape \(3, 2\) differ"),
    (sg.binary_cross_entropy, (4, 1), (4,), r"binary_cross_entropy: prediction shape \(4, 1\) and target shape \(4,\)"),
    (sg.softmax_cross_entropy, (4, 3), (4, 1), r"softmax_cross_entropy: prediction shape \(4, 3\) and target shape \(4, 1\)"),
    (sg.softmax_cross_entropy, (4, 3), (3,), r"softmax_cross_entropy: prediction shape \(4, 3\) and target shape \(3,\)"),
])
def test_losses_refuse_mismatched_shapes_instead_of_broadcasting(loss, a, b, match):
    """Without the check, mse((3, 1), (3,)) silently broadcasts to a (3, 3) loss."""
    with pytest.raises(sg.ShapeError, match=match):
        loss(sg.placeholder("p", a), sg.placeholder("t", b))


def test_softmax_cross_entropy_refuses_integer_labels_of_the_wrong_shape():
    with pytest.raises(sg.ShapeError, match=r"pick: labels must have the shape of x without its last axis"):
        sg.softmax_cross_entropy(sg.placeholder("p", (4, 3)), sg.placeholder("y", (5,), dtype="int64"))


@pytest.mark.parametrize("k", [0, -1, 2.0, True, None])
def test_one_hot_refuses_a_class_count_that_is_not_a_positive_int(k):
    y = sg.placeholder("y", (3,), dtype="int64")
    with pytest.raises(ValueError, match=rf"one_hot: num_classes must be a positive int, got {k!r}"):
        sg.one_hot(y, k)
    assert sg.one_hot(y, np.int64(4)).shape == (3, 4)  # a NumPy integer is an int


def test_negating_a_boolean_node_is_a_dtype_error():
    x = sg.placeholder("x", (3,))
    with pytest.raises(sg.DTypeError, match=r"negative: cannot negate a boolean"):
        -(x > 0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", ["scalar_placeholder", "array_constant", "int_tensor"])
def test_power_with_a_non_constant_scalar_an_array_constant_or_an_integer_tensor_exponent(kind):
    a = sg.placeholder("a", (3,))
    av = np.array([0.5, 2.0, 3.0])
    if kind == "scalar_placeholder":
        e = sg.placeholder("e", ())
        ev, feed = np.array(2.5), {}
    elif kind == "array_constant":
        e, ev = None, np.array([1.0, 2.0, 0.0])
    else:
        e = sg.placeholder("e", (3,), dtype="int64")
        ev = np.array([2, 0, 3])
    out = a ** (ev if e is None else e)
    feed = {a: av} if e is None else {a: av, e: ev}
    assert out.dtype == np.float64 and out.shape == (3,)
    ga = sg.grad(out.sum(), a)
    got, got_ga = codegen.evaluate([out, ga], feed)
    np.testing.assert_allclose(got, av ** ev, rtol=1e-14)
    np.testing.assert_allclose(got_ga, np.where(ev == 0, 0.0, ev * av ** (ev - 1.0)), rtol=1e-14)
    if kind == "scalar_placeholder":  # d/de of sum(a ** e) = sum(a ** e * log a)
        ge = codegen.evaluate(sg.grad(out.sum(), e), feed)
        assert ge.shape == () and ge == pytest.approx(np.sum(av**ev * np.log(av)), rel=1e-14)
    if kind == "int_tensor":
        with pytest.raises(sg.DTypeError, match=r"grad: cannot differentiate with respect to placeholder 'e' of dtype int64"):
            sg.grad(out.sum(), e)


@pytest.mark.parametrize("b_dtype", ["float64", "python_float"])
def test_where_with_mixed_float_dtypes(b_dtype):
    c, a = sg.placeholder("c", (3,)), sg.placeholder("a", (3,), dtype="float32")
    cv, av = np.array([1.0, -1.0, 1.0]), np.array([1.5, 2.5, 3.5], np.float32)
    if b_dtype == "float64":
        b = sg.placeholder("b", (3,))
        bv, feed, expected = np.array([0.1, 0.2, 0.3]), {c: cv, a: av}, np.dtype(np.float64)
        feed[b] = bv
    else:
        b, bv, feed, expected = 0.1, 0.1, {c: cv, a: av}, np.dtype(np.float32)  # a Python number is weak
    w = sg.where(c > 0, a, b)
    assert w.dtype == expected
    got = codegen.evaluate(w, feed)
    assert got.dtype == expected
    np.testing.assert_array_equal(got, np.where(cv > 0, av, bv).astype(expected))
    wrt = [a] if b_dtype == "python_float" else [a, b]
    grads = sg.grad(sg.sum(w), wrt)
    assert [g.dtype for g in grads] == [n.dtype for n in wrt]  # each gradient in its input's precision
    for g, value in zip(codegen.evaluate(grads, feed), ((cv > 0) * 1.0, (cv <= 0) * 1.0)):
        np.testing.assert_array_equal(g, value)


def test_flops_with_named_sizes():
    x = sg.placeholder("x", ("batch", 4))
    W = sg.placeholder("W", (4, "hidden"))
    h = x @ W
    assert h.op.flops(h, {"batch": 8, "hidden": 5}) == 2 * 8 * 4 * 5
    t = sg.tanh(h)
    assert t.op.flops(t, {"batch": 8, "hidden": 5}) == 8 * 5 * t.op.flops(t, {"batch": 1, "hidden": 1})
    s = sg.sum(t, axis=0)
    assert s.op.flops(s, {"batch": 8, "hidden": 5}) == 40
    assert s.op.flops(s, {"batch": 16, "hidden": 5}) == 80
    m = sg.mean(t)  # a count read from the shape at run time: the division is one flop
    assert m.op.flops(m, {"batch": 3, "hidden": 7}) == 21
    # a size left out counts as 1
    assert h.op.flops(h, {}) == 2 * 4


# -- linear algebra and indexing (issue 16) ------------------------------------------------------
def test_norm_gradient_at_zero_is_zero_and_finite_elsewhere():
    """The 2-norm has no derivative at 0: its gradient there is 0 (a subgradient, as in PyTorch)."""
    x = sg.placeholder("x", (2, 3))
    g = sg.grad(sg.norm(x, axis=-1).sum() + sg.norm(x), x)
    value = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]])
    got = codegen.evaluate(g, {x: value})
    np.testing.assert_allclose(got, [[0.0, 0.0, 0.0], [0.6 + 0.6, 0.0, 0.8 + 0.8]], rtol=1e-14)
    assert np.all(np.isfinite(codegen.evaluate(g, {x: np.zeros((2, 3))})))


def test_hessian_of_logdet_is_minus_the_inverse_sandwich(rng):
    """d2/dA2 log|det A| [V, V] = -trace(A^-1 V A^-1 V), through sg.hessian (forward over reverse)."""
    a = sg.placeholder("a", (3, 3))
    h = sg.hessian(sg.slogdet(a)[1], a)
    A = well_conditioned(rng, (3, 3))
    H = codegen.evaluate(h, {a: A})
    V = rng.normal(size=(3, 3))
    Ai = np.linalg.inv(A)
    np.testing.assert_allclose(np.einsum("ij,ijkl,kl->", V, H, V), -np.trace(Ai @ V @ Ai @ V), rtol=1e-10)


def test_hessian_of_a_quadratic_form_in_einsum_and_solve(rng):
    """The Hessian of 1/2 x^T A x - b^T x (written with einsum) is (A + A^T)/2, and one in-graph
    Newton step x - solve(H, grad) lands on the minimizer solve(A, b) (a symmetric A)."""
    x = sg.placeholder("x", (4,))
    M = rng.normal(size=(4, 4))
    A, b = M @ M.T + 4 * np.eye(4), rng.normal(size=4)
    f = 0.5 * sg.einsum("i,ij,j->", x, A, x) - sg.dot(b, x)
    g, H = sg.grad(f, x), sg.hessian(f, x)
    step = x - sg.solve(H, g)
    got_H, got_step = codegen.compile([x], [H, step])(rng.normal(size=4))
    np.testing.assert_allclose(got_H, A, rtol=1e-12)
    np.testing.assert_allclose(got_step, np.linalg.solve(A, b), rtol=1e-10)


def test_jacobian_through_solve_take_and_einsum_with_basis_axes(rng):
    """sg.jacobian in both modes runs the rules on tangents and cotangents with leading basis axes."""
    a, b = sg.placeholder("a", (3, 3)), sg.placeholder("b", (3,))
    spd = a @ a.T
    y = (sg.take(sg.solve(a, b), [2, 0, 2]) * sg.einsum("ii", a) + sg.norm(sg.inv(a), axis=0) + sg.det(a)
         + sg.cholesky(spd)[:, 1] + sg.eigh(spd)[0] + sg.eigh(spd)[1][1] ** 2 + sg.gather(b, [1, 1, 0], 0))
    A, B = well_conditioned(rng, (3, 3)), rng.normal(size=3)
    for x in (a, b):
        fwd, rev = codegen.compile([a, b], [sg.jacobian(y, x, mode=m) for m in ("forward", "reverse")])(A, B)
        np.testing.assert_allclose(fwd, rev, rtol=1e-10, atol=1e-12)
        assert fwd.shape == (3,) + x.shape


def test_einsum_and_linalg_refuse_what_they_cannot_do():
    a, v = sg.placeholder("a", (3, 4)), sg.placeholder("v", (5,))
    with pytest.raises(sg.ShapeError, match="axis 'j' has lengths 4 and 5"):
        sg.einsum("ij,j->i", a, v)
    with pytest.raises(ValueError, match="output letter 'k'"):
        sg.einsum("ij->k", a)
    with pytest.raises(sg.ShapeError, match="needs square matrices"):
        sg.inv(a)
    with pytest.raises(sg.DTypeError, match="float matrix"):
        sg.det(sg.placeholder("n", (2, 2), dtype="int64"))
    with pytest.raises(TypeError, match="indices must be integers"):
        sg.take(a, [0.5])
    with pytest.raises(IndexError, match="out of bounds"):
        sg.take(a, [3])


# -- issue 16 (redops): min, prod, argmax/argmin, logaddexp, cumulative and ordering ops ---------------
def test_prod_gradient_and_hessian_at_zeros_match_torch():
    """prod's derivative is the product of the other entries, not out / x (nan at a zero)."""
    torch = pytest.importorskip("torch")
    x = sg.placeholder("x", (4, 3))
    xv = np.array([[1.5, -2.0, 3.0], [0.0, 2.0, -1.5], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    out = sg.prod(x, axis=1)
    g = sg.grad(out.sum(), x)
    h = sg.hessian(sg.prod(x[1]) + sg.prod(x[2]) + sg.prod(x[3]), x)
    got_g, got_h = codegen.evaluate([g, h], {x: xv})
    t = torch.tensor(xv, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.prod(t, 1).sum(), t, create_graph=True)
    np.testing.assert_array_equal(got_g, tg.detach().numpy())
    th = torch.autograd.functional.hessian(lambda v: torch.prod(v[1]) + torch.prod(v[2]) + torch.prod(v[3]), t)
    np.testing.assert_array_equal(got_h, th.numpy())


def test_min_and_max_share_the_gradient_between_ties():
    x = sg.placeholder("x", (4,))
    got = codegen.evaluate(sg.grad(sg.min(x), x), {x: np.array([1.0, -2.0, 3.0, -2.0])})
    np.testing.assert_array_equal(got, [0.0, 0.5, 0.0, 0.5])


def test_argmax_and_argmin_are_int64_without_derivative():
    x = sg.placeholder("x", (3, 4))
    assert sg.argmax(x, axis=1).dtype == np.int64 and sg.argmin(x).shape == ()
    assert sg.grad((sg.cast(sg.argmax(x, 1), "float64") + x.sum(1)).sum(), x) is not None
    with pytest.raises(TypeError, match=r"argmax: axis must be an int or None, got \(0, 1\)"):
        sg.argmax(x, axis=(0, 1))
    with pytest.raises(sg.DTypeError, match=r"argmin: cannot search booleans"):
        sg.argmin(x > 0)


def test_logaddexp_gradient_splits_evenly_at_equal_operands_and_stays_finite():
    a, b = sg.placeholder("a", (3,)), sg.placeholder("b", (3,))
    av, bv = np.array([0.0, 1000.0, -1000.0]), np.array([0.0, -1000.0, -1000.0])
    out = sg.logaddexp(a, b)
    with np.errstate(over="raise", invalid="raise"):
        v, ga, gb = codegen.evaluate([out, *sg.grad(out.sum(), [a, b])], {a: av, b: bv})
    np.testing.assert_allclose(v, np.logaddexp(av, bv), rtol=1e-15)
    np.testing.assert_allclose(ga, [0.5, 1.0, 0.5], rtol=1e-12)  # (out carries |x| * eps)
    np.testing.assert_allclose(gb, [0.5, 0.0, 0.5], rtol=1e-12)


def test_cumprod_gradient_at_zeros_matches_torch():
    """cumprod's gradient is not rcumsum(g * out) / x (nan at a zero)."""
    torch = pytest.importorskip("torch")
    x = sg.placeholder("x", (4, 5))
    xv = np.array([[1.5, 0.0, 2.0, -1.0, 3.0], [0.0, 2.0, 0.0, 4.0, 0.5], [2.0, -1.0, 3.0, 0.5, 0.0],
                   [0.0, 0.0, 0.0, 0.0, 0.0]])
    R = np.arange(20.0).reshape(4, 5) - 7.0
    got = codegen.evaluate(sg.grad((sg.cumprod(x, axis=1) * R).sum(), x), {x: xv})
    t = torch.tensor(xv, requires_grad=True)
    (torch.cumprod(t, 1) * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-15)
    # the second derivative too, forward over reverse (sg.hessian) and reverse over reverse
    v = sg.placeholder("v", (6,))
    r = np.array([1.0, -2.0, 3.0, 0.5, 2.0, -1.5])
    f = (sg.cumprod(v) * r).sum()
    g = sg.grad(f, v)
    rows = [sg.grad(g[i], v) for i in range(6)]
    for vv in ([1.5, 0.0, 2.0, 0.0, 3.0, 2.0], [0.0, 0.0, 2.0, -1.0, 3.0, 0.0], [2.0, 0.0, 0.0, 0.0, 3.0, 0.0]):
        vv = np.array(vv)
        expected = torch.autograd.functional.hessian(lambda w: (torch.cumprod(w, 0) * torch.tensor(r)).sum(),
                                                     torch.tensor(vv)).numpy()
        np.testing.assert_array_equal(codegen.evaluate(sg.hessian(f, v), {v: vv}), expected)
        np.testing.assert_array_equal(np.stack(codegen.evaluate(rows, {v: vv})), expected)


def test_sort_and_cumsum_jacobians_and_a_second_derivative(rng):
    """The rules under a batch of basis tangents (sg.jacobian) and differentiated again."""
    x = sg.placeholder("x", (2, 4))
    xv = distinct(rng, (2, 4))
    order = np.argsort(xv, axis=1)
    expected = np.zeros((2, 4, 2, 4))
    for i in range(2):
        for k in range(4):
            expected[i, k, i, order[i, k]] = 1.0
    for mode in ("forward", "reverse"):
        np.testing.assert_array_equal(codegen.evaluate(sg.jacobian(sg.sort(x), x, mode=mode), {x: xv}), expected)
    cum = np.tril(np.ones((4, 4)))
    np.testing.assert_array_equal(codegen.evaluate(sg.jacobian(sg.cumsum(x[0]), x), {x: xv})[:, 0], cum)
    # d2/dx2 of sum(cumprod(x)) for x without zeros, against finite differences of the gradient
    y = sg.placeholder("y", (4,))
    yv = rng.uniform(0.5, 1.5, size=4)
    h = codegen.evaluate(sg.hessian(sg.cumprod(y).sum(), y), {y: yv})
    f_g = codegen.compile([y], sg.grad(sg.cumprod(y).sum(), y))
    fd = np.stack([(f_g(yv + EPS * e) - f_g(yv - EPS * e)) / (2 * EPS) for e in np.eye(4)])
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-8)


def test_order_ops_refuse_bad_arguments():
    x = sg.placeholder("x", (3, 4))
    with pytest.raises(TypeError, match=r"cumsum: axis must be an int or None, got \(0, 1\)"):
        sg.cumsum(x, axis=(0, 1))
    with pytest.raises(ValueError, match=r"diff: order must be a non-negative int, got -1"):
        sg.diff(x, n=-1)
    with pytest.raises(sg.DTypeError, match=r"cumprod: cannot accumulate booleans"):
        sg.cumprod(x > 0)
    with pytest.raises(sg.DTypeError, match=r"argsort: cannot sort booleans"):
        sg.sort(x > 0)


def test_arrange_ops_refuse_bad_arguments():
    x = sg.placeholder("x", (3, 4))
    with pytest.raises(ValueError, match=r"split: an axis of length 3 does not divide into 2 equal sections"):
        sg.split(x, 2)
    with pytest.raises(ValueError, match=r"stack: all inputs must have the same shape"):
        sg.stack([x, x[0]])
    with pytest.raises(ValueError, match=r"pad: a pad width must be >= 0, got -1"):
        sg.pad(x, (1, -1))
    with pytest.raises(ValueError, match=r"pad: pad_width"):
        sg.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"repeat: needs static sizes, got shape \('n', 4\)"):
        sg.repeat(sg.placeholder("y", ("n", 4)), 2, axis=1)
    with pytest.raises(ValueError, match=r"triu: needs an array of at least two dimensions"):
        sg.triu(x[0])
    with pytest.raises(ValueError, match=r"clip: give a_min, a_max or both"):
        sg.clip(x)
    with pytest.raises(ValueError, match=r"moveaxis: source"):
        sg.moveaxis(x, (0, 1), 0)


def test_split_returns_a_list_of_nodes_and_clip_gradient_at_the_bounds_is_one():
    x = sg.placeholder("x", (6,))
    parts = sg.split(x, [2, 5])
    assert isinstance(parts, list) and [p.shape for p in parts] == [(2,), (3,), (1,)]
    g = codegen.evaluate(sg.grad(sg.clip(x, -1.0, 1.0).sum(), x), {x: np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 0.5])})
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0, 1.0])  # as torch.clamp


def test_a_broadcast_python_number_keeps_the_float32_dtype():
    """Issue 16 (redops): np.broadcast_to(0.0, shape) is float64, so concatenating it (sg.pad, the jvp of
    concatenate with a zero tangent) turned a float32 graph's value into float64."""
    x = sg.placeholder("x", (3, 4), dtype="float32")
    y, t = sg.placeholder("y", (3, 4), dtype="float32"), sg.placeholder("t", (3, 4), dtype="float32")
    (jv,) = sg.jvp([sg.concatenate([x, y])], [x], [t])  # y's tangent is zero
    feed = {v: np.ones((3, 4), np.float32) for v in (x, y, t)}
    for out in (sg.pad(x, 1), sg.concatenate([x, sg.ops.zeros_like(x)]), jv):
        assert codegen.evaluate(out, feed).dtype == np.float32


def test_erf_of_a_scalar_compiles_and_differentiates():
    """The erf kernel (math.erf per element) gave a Python float for a 0-d input, which has no .astype."""
    x = sg.placeholder("x", (3,))
    y = sg.erf(sg.sum(x))
    value, grad = codegen.compile([x], [y, *sg.grad(y, [x])])(np.full(3, 0.2))
    assert np.isclose(value, math.erf(0.6))
    np.testing.assert_allclose(grad, np.full(3, 2 / math.sqrt(math.pi) * math.exp(-0.36)))


def test_power_of_a_zero_constant_base_differentiates_in_the_exponent_as_pytorch():
    """d/dy 0**y is 0 for y >= 0 (no 0 * log 0) and 0**y * log 0 = -inf for y < 0, as torch.pow."""
    y = sg.placeholder("y", (3,))
    z = sg.constant(0.0) ** y
    with np.errstate(divide="ignore", invalid="ignore"):  # 0**-1 and log(0), on purpose
        value, grad = codegen.compile([y], [z, *sg.grad(z.sum(), [y])])(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(value, [np.inf, 1.0, 0.0])
    np.testing.assert_array_equal(grad, [-np.inf, 0.0, 0.0])


@pytest.mark.parametrize("exponent", [np.zeros(2), np.array([0.0, 2.0]), np.array([2.0, 0.0])])
def test_power_by_a_constant_array_with_zeros_has_a_zero_gradient_at_a_zero_base(exponent):
    """d/dx x**c is 0 where c == 0, also at x = 0 (not 0 * 0**-1 = nan): the mask stays for such constants."""
    x = sg.placeholder("x", (2,))
    with np.errstate(divide="ignore", invalid="ignore"):  # 0**-1 in the masked-out entries
        (grad,) = codegen.compile([x], sg.grad((x ** exponent).sum(), [x]))(np.zeros(2))
    np.testing.assert_array_equal(grad, np.where(exponent == 1, 1.0, 0.0))


def test_power_by_a_nonzero_constant_array_needs_no_mask():
    """A constant exponent (or base) with no zero entry, even of one element, shows the masks cannot matter."""
    x = sg.placeholder("x", (3,))
    for node in (x ** np.array([3.0]), np.array([2.0]) ** x):
        (grad,) = sg.grad(node.sum(), [x])
        assert "where" not in sg.count_ops(grad), sg.dprint(grad)


def test_cast_and_stop_gradient_nodes_show_their_names_in_dprint():
    x = sg.placeholder("x", (3,))
    text = sg.dprint(sg.stop_gradient(sg.cast(x, np.float32)))
    assert "= cast(%x, dtype=float32)" in text and "= stop_gradient(%t1)" in text, text

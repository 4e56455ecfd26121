"""linalg.py's mutation run (tests/MUTANTS.md): what the value tables of test_ops, test_jacobian and
test_flops_table left open. Every message of the builders and of the ops in full; einsum's parsing
edges (spaces, capital letters, ellipses of different widths, identities, 52 letters); the gradient
of einsums whose letters collide with the rule's own (``X``, fresh letters for diagonals); dot/inner/
outer/tensordot/trace/diagonal/diag beyond the registry's shapes and dtypes; float32 graphs that
stay float32 through their derivatives; batched and named-size Cholesky gradients; the norm's
rule at zero; exact flop counts over named batch and matrix sizes."""

from __future__ import annotations

import re

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph.graph import apply, topo_sort
from symgraph.ops.linalg import EighValues, EighVectors, Einsum, LogAbsDet, MatMul, Norm, SignDet, Solve

P = sg.placeholder
HERE = r" at \S*test_linalg_mutants\.py:\d+$"  # an op's message ends with the user's line


def _rng():
    return np.random.default_rng(1616)


def _run(outputs, feed):
    return codegen.evaluate(outputs, feed)


# -- the builders' argument errors: the whole message (no location) -----------------------------------
BUILDER_ERRORS = [
    (lambda: sg.einsum("ij"), ValueError, "einsum: needs at least one operand"),
    (lambda: sg.einsum("ij,jk->ik", P("a", (3, 4))), ValueError, "einsum: 'ij,jk->ik' names 2 operands, got 1"),
    (lambda: sg.einsum("i#,j", P("a", (3, 4)), P("b", (4,))), ValueError,
     "einsum: 'i#,j': subscripts are letters, ',' , '->' and '...'; got '#'"),
    (lambda: sg.einsum("...ijk", P("a", (3, 4))), ValueError,
     "einsum: '...ijk' names more axes than its operand has (2)"),
    (lambda: sg.einsum("ij->ii", P("a", (3, 4))), ValueError,
     "einsum: output letter 'i' appears twice or in no operand ('ij->ii')"),
    (lambda: sg.einsum("ij,jk->X", P("a", (3, 4)), P("b", (4, 5))), ValueError,
     "einsum: output letter 'X' appears twice or in no operand ('ij,jk->X')"),
    # 27 + 26 axes: dot needs 53 distinct letters
    (lambda: sg.dot(P("a", (1,) * 27), P("b", (1,) * 26)), ValueError, "einsum: more than 52 distinct axes"),
    (lambda: sg.tensordot(P("a", (3, 3)), P("b", (3, 3)), axes=([0, 1], [0])), ValueError,
     "tensordot: axes ([0, 1], [0]) pair 2 axes of a with 1 of b"),
    (lambda: sg.matrix_trace(P("a", (3, 3)), 1, -1), ValueError, "trace: axis1 and axis2 must differ"),
    (lambda: sg.diagonal(P("a", (3, 3)), 0, -2), ValueError, "diagonal: axis1 and axis2 must differ"),
    (lambda: sg.diagonal(P("a", ("n", 3))), ValueError,
     "the diagonal of axes of lengths 'n' and 3: they must be equal or static"),
    (lambda: sg.matrix_trace(P("a", (3, "n"))), ValueError,
     "the diagonal of axes of lengths 3 and 'n': they must be equal or static"),
    (lambda: sg.diag(P("v", (3,)), 1), NotImplementedError, "diag: only the main diagonal (k=0)"),
    (lambda: sg.diag(P("a", (3, 3, 3))), ValueError,
     "diag: needs a vector of static length or a matrix, got shape (3, 3, 3)"),
    (lambda: sg.diag(P("v", ("n",))), ValueError,
     "diag: needs a vector of static length or a matrix, got shape ('n',)"),
]


@pytest.mark.parametrize("build, error, message", BUILDER_ERRORS)
def test_builder_errors_say_exactly_what_is_wrong(build, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        build()


def test_einsum_rejects_an_arrow_split_by_an_ellipsis():
    """"-...>" is no arrow: taking "..." out must not join '-' and '>' into one that is then taken
    out too (before the fix, "i-...>i" built a node whose subscripts NumPy rejects at run time)."""
    with pytest.raises(ValueError, match="^" + re.escape(
            "einsum: 'i-...>i': subscripts are letters, ',' , '->' and '...'; got '-'") + "$"):
        sg.einsum("i-...>i", P("a", (3, 4, 5, 6, 3)))
    with pytest.raises(ValueError, match=re.escape("got '.'")):  # and "..->." hides no ellipsis
        sg.einsum("i..->.i", P("a", (3, 3)))


# -- the ops' errors: "<op>: <problem> (operand shapes/dtypes ...) at <the user's line>" ---------------
A34, A33 = (3, 4), (3, 3)
OP_ERRORS = [
    (lambda: sg.matmul(P("s", ()), P("v", (3,))), sg.ShapeError,
     "matmul: matmul needs operands with at least one dimension; use * for scalars (operand shapes (), (3,))"),
    (lambda: sg.matmul(P("v", (3,)), P("s", ())), sg.ShapeError,
     "matmul: matmul needs operands with at least one dimension; use * for scalars (operand shapes (3,), ())"),
    (lambda: sg.matmul(P("a", A34, dtype="bool"), P("v", (4,))), sg.DTypeError,
     "matmul: matmul of booleans is not defined (operand dtypes bool, float64)"),
    (lambda: sg.matmul(P("a", A34), P("v", (4,), dtype="bool")), sg.DTypeError,
     "matmul: matmul of booleans is not defined (operand dtypes float64, bool)"),
    (lambda: sg.matmul(P("a", A34), P("b", (5, 2))), sg.ShapeError,
     "matmul: inner dimensions differ: 4 != 5 (operand shapes (3, 4), (5, 2))"),
    (lambda: sg.matmul(P("a", (2, 3, 4)), P("b", (5, 4, 2))), sg.ShapeError,
     "matmul: batch dimensions cannot be broadcast (2 vs 5) (operand shapes (2, 3, 4), (5, 4, 2))"),
    (lambda: apply(Einsum("ij,jk->ik"), P("a", A34)), sg.ShapeError,
     "einsum: 'ij,jk->ik' needs 2 operands, got 1 (operand shapes (3, 4))"),
    (lambda: apply(Einsum("ij->i"), P("a", (3, 4, 5))), sg.ShapeError,
     "einsum: 'ij' names 2 axes of an operand with 3 (operand shapes (3, 4, 5))"),
    (lambda: sg.einsum("ij,j->i", P("a", A34), P("b", (4,), dtype="bool")), sg.DTypeError,
     "einsum: einsum of booleans is not defined; convert with .astype(...) first (operand dtypes float64, bool)"),
    (lambda: sg.inv(P("v", (3,))), sg.ShapeError,
     "inv: needs a matrix (or a stack of them) as its first operand (operand shapes (3,))"),
    (lambda: sg.inv(P("a", A33, dtype="int64")), sg.DTypeError,
     "inv: needs a float matrix; convert with .astype(...) first (operand dtypes int64)"),
    # every square op checks its operand: the op's own name, its operands
    (lambda: sg.inv(P("a", A34)), sg.ShapeError, "inv: needs square matrices, got 3x4 (operand shapes (3, 4))"),
    (lambda: sg.det(P("a", A34)), sg.ShapeError, "det: needs square matrices, got 3x4 (operand shapes (3, 4))"),
    (lambda: apply(LogAbsDet(), P("a", A34)), sg.ShapeError,
     "logabsdet: needs square matrices, got 3x4 (operand shapes (3, 4))"),
    (lambda: apply(SignDet(), P("a", A34)), sg.ShapeError,
     "signdet: needs square matrices, got 3x4 (operand shapes (3, 4))"),
    (lambda: sg.cholesky(P("a", A34)), sg.ShapeError,
     "cholesky: needs square matrices, got 3x4 (operand shapes (3, 4))"),
    (lambda: apply(EighValues(), P("a", A34)), sg.ShapeError,
     "eigh_values: needs square matrices, got 3x4 (operand shapes (3, 4))"),
    (lambda: apply(EighVectors(), P("a", A34)), sg.ShapeError,
     "eigh_vectors: needs square matrices, got 3x4 (operand shapes (3, 4))"),
    (lambda: sg.solve(P("a", A34), P("b", (3,))), sg.ShapeError,
     "solve: needs square matrices, got 3x4 (operand shapes (3, 4), (3, 1))"),
    (lambda: apply(Solve(), P("a", A33), P("b", (3,))), sg.ShapeError,
     "solve: the right-hand side must be (..., M, K); sg.solve lifts a vector (operand shapes (3, 3), (3,))"),
    (lambda: apply(Solve(), P("a", A33), P("b", (4, 2))), sg.ShapeError,
     "solve: the right-hand side has 4 rows, the matrix 3 (operand shapes (3, 3), (4, 2))"),
    # named rows, static columns: the columns are the matrix's size
    (lambda: apply(Solve(), P("a", ("n", 3)), P("b", (4, 2))), sg.ShapeError,
     "solve: the right-hand side has 4 rows, the matrix 3 (operand shapes (n, 3), (4, 2))"),
    (lambda: apply(Solve(), P("a", (2, 3, 3)), P("b", (4, 3, 2))), sg.ShapeError,
     "solve: batch dimensions cannot be broadcast (2 vs 4) (operand shapes (2, 3, 3), (4, 3, 2))"),
    (lambda: apply(Norm((-1,)), P("a", A34, dtype="int64")), sg.DTypeError,
     "norm: needs a float operand (sg.norm converts integers) (operand dtypes int64)"),
    (lambda: sg.norm(P("a", A34), axis=2), sg.ShapeError,
     "norm: axis 2 is out of range for an array of 2 dimension(s)"),
]


@pytest.mark.parametrize("build, error, message", OP_ERRORS)
def test_op_errors_name_the_op_the_problem_the_operands_and_the_line(build, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}{HERE}"):
        build()


def test_derivatives_over_named_sizes_say_they_are_not_implemented():
    x = P("x", ("n", "n"))
    with pytest.raises(NotImplementedError, match=r"^einsum: the gradient of a diagonal over a named axis \('n'\)$"):
        sg.grad(sg.sum(sg.einsum("ii->i", x)), [x])
    with pytest.raises(NotImplementedError,
                       match=r"^cholesky: differentiating over matrices of a named size \('n'\)$"):
        sg.grad(sg.sum(sg.cholesky(x)), [x])
    _, vectors = sg.eigh(x)  # (was NumPy's "'str' object cannot be interpreted as an integer")
    with pytest.raises(NotImplementedError,
                       match=r"^eigh_vectors: differentiating over matrices of a named size \('n'\)$"):
        sg.grad(sg.sum(vectors), [x])
    with pytest.raises(NotImplementedError, match=r"^eigh_vectors: differentiating over matrices of a named size"):
        sg.jvp(vectors, [x], [P("t", ("n", "n"))])


@pytest.mark.parametrize("da, db, want", [
    ("float32", "float64", "float64"), ("float64", "float32", "float64"), ("int64", "float32", "float64"),
    ("float32", "int64", "float64"), ("int32", "int32", "int32"),
])
def test_matmul_dtype_is_the_operands_common_type(da, db, want):
    assert str(sg.matmul(P("a", (2, 3), dtype=da), P("b", (3,), dtype=db)).dtype) == want


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("sa, sb", [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 3))])
def test_matmul_jacobians_of_vectors_in_both_modes(sa, sb, mode):
    """The sweeps carry a basis axis in front of the tangent or cotangent (the vector cases lift it)."""
    rng = _rng()
    a, b = P("a", sa), P("b", sb)
    av, bv = rng.normal(size=sa), rng.normal(size=sb)
    y = sg.matmul(a, b)
    ja, jb = _run([sg.jacobian(y, a, mode=mode), sg.jacobian(y, b, mode=mode)], {a: av, b: bv})
    if len(sa) == len(sb) == 1:  # y = a . b
        want_a, want_b = bv, av
    elif len(sb) == 1:  # y_i = A_ik b_k: dy_i/dA_jk = [i = j] b_k, dy/db = A
        want_a, want_b = np.eye(3)[:, :, None] * bv, av
    else:  # y_p = a_k B_kp: dy/da = B^T, dy_p/dB_kq = a_k [p = q]
        want_a, want_b = bv.T, av[None, :, None] * np.eye(3)[:, None, :]
    np.testing.assert_allclose(ja, want_a, rtol=1e-12)
    np.testing.assert_allclose(jb, want_b, rtol=1e-12)


@pytest.mark.parametrize("mode", ["forward", "reverse", "optimal"])
def test_jacobian_through_a_dot_product_of_vectors_into_a_matrix(mode):
    """y = tanh(a . b) C: a reverse sweep reaches the dot product with one cotangent per entry of y."""
    rng = _rng()
    a, b = P("a", (4,)), P("b", (4,))
    av, bv, c = rng.normal(size=4), rng.normal(size=4), rng.normal(size=(2, 3))
    y = sg.tanh(sg.matmul(a, b)) * sg.constant(c)
    ja, jb = _run([sg.jacobian(y, a, mode=mode), sg.jacobian(y, b, mode=mode)], {a: av, b: bv})
    d = (1 - np.tanh(av @ bv) ** 2) * c  # dy/d(a . b)
    np.testing.assert_allclose(ja, d[..., None] * bv, rtol=1e-12)
    np.testing.assert_allclose(jb, d[..., None] * av, rtol=1e-12)


# -- einsum's parsing --------------------------------------------------------------------------------
def test_einsum_reads_subscripts_with_spaces():
    rng = _rng()
    a, b = P("a", (3, 4)), P("b", (4, 5))
    av, bv = rng.normal(size=a.shape), rng.normal(size=b.shape)
    got = _run(sg.einsum(" ij, jk -> ik ", a, b), {a: av, b: bv})
    np.testing.assert_allclose(got, av @ bv, rtol=1e-12)


def test_einsum_implicit_output_counts_capital_letters_like_numpy():
    rng = _rng()
    x = P("x", (2, 3))
    xv = rng.normal(size=x.shape)
    y = sg.einsum("iX", x)  # 'X' sorts before 'i': the output is "Xi", a transpose
    assert y.shape == (3, 2)
    np.testing.assert_allclose(_run(y, {x: xv}), np.einsum("iX", xv), rtol=1e-12)


def test_einsum_ellipsis_of_three_axes_before_one_letter():
    rng = _rng()
    x = P("x", (2, 3, 4, 5))
    xv = rng.normal(size=x.shape)
    y = sg.einsum("...i->...", x)
    assert y.shape == (2, 3, 4)
    np.testing.assert_allclose(_run(y, {x: xv}), xv.sum(-1), rtol=1e-12)


def test_einsum_identity_is_the_operand_itself():
    x = P("x", (2, 3))
    assert sg.einsum("ij->ij", x) is x
    assert sg.einsum("ij", x) is x
    assert sg.einsum("...->...", x) is x


def test_einsum_can_use_all_52_letters():
    y = sg.dot(P("a", (1,) * 26), P("b", (1,) * 26))  # 26 + 26 distinct axes: every letter once
    assert y.shape == (1,) * 50


# -- einsum's gradient when the subscripts use the letters its rule picks -------------------------------
def test_einsum_gradient_with_capital_x_in_the_subscripts():
    rng = _rng()
    x, v = P("x", (3, 4)), P("v", (4,))
    xv, vv, w = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=4)
    y = sg.einsum("Xj,j->j", x, v)  # y_j = sum_X x[X, j] v[j]
    gx, gv = sg.grad(sg.sum(y * w), [x, v])
    got_x, got_v = _run([gx, gv], {x: xv, v: vv})
    np.testing.assert_allclose(got_x, np.broadcast_to(w * vv, (3, 4)), rtol=1e-12)
    np.testing.assert_allclose(got_v, w * xv.sum(0), rtol=1e-12)


def test_einsum_gradient_of_a_triple_diagonal_next_to_an_early_letter():
    rng = _rng()
    x = P("x", (3, 3, 3, 3))
    xv, w = rng.normal(size=x.shape), rng.normal(size=3)
    y = sg.einsum("aaab->b", x)  # y_b = sum_a x[a, a, a, b]; the fresh letters must avoid 'b'
    np.testing.assert_allclose(_run(y, {x: xv}), np.einsum("aaab->b", xv), rtol=1e-12)
    (g,) = sg.grad(sg.sum(y * w), [x])
    want = np.zeros(x.shape)
    for a in range(3):
        want[a, a, a, :] = w
    np.testing.assert_allclose(_run(g, {x: xv}), want, rtol=1e-12)


def test_float32_derivatives_stay_float32():
    """No float64 temporaries in a float32 graph's derivatives (the identities and masks the rules
    build take the operands' dtype): they would double the memory and time of every step."""
    x, v = P("x", (3, 3), dtype="float32"), P("v", (3, 2), dtype="float32")
    for y in (sg.einsum("ii,ij->j", x, v), sg.cholesky(x), sg.eigh(x)[1], sg.eigh(x)[0]):
        for d in (sg.grad(sg.sum(y), [x]), sg.jvp([y], [x], [x])):
            assert {str(n.dtype) for n in topo_sort(d)} == {"float32"}


# -- dot, inner, outer, tensordot ------------------------------------------------------------------------
def test_dot_and_inner_with_a_scalar_multiply():
    rng = _rng()
    s, m = P("s", ()), P("m", (2, 3))
    sv, mv = 2.5, rng.normal(size=(2, 3))
    feed = {s: np.float64(sv), m: mv}
    got = _run([sg.dot(s, m), sg.dot(m, s), sg.inner(s, m), sg.inner(m, s)], feed)
    for g in got:
        np.testing.assert_allclose(g, sv * mv, rtol=1e-12)


@pytest.mark.parametrize("sa, sb", [((3, 4), (2, 4, 5)), ((4,), (2, 4, 5)), ((2, 3, 4), (3, 4, 5))])
def test_dot_beyond_matrices_sums_over_b_second_to_last_axis(sa, sb):
    rng = _rng()
    a, b = P("a", sa), P("b", sb)
    av, bv = rng.normal(size=sa), rng.normal(size=sb)
    y = sg.dot(a, b)
    want = np.dot(av, bv)
    assert y.shape == want.shape
    np.testing.assert_allclose(_run(y, {a: av, b: bv}), want, rtol=1e-12)


@pytest.mark.parametrize("sa, sb, op", [
    ((2, 3), (3, 4), "matmul"), ((3,), (3, 4), "matmul"), ((2, 3), (3,), "matmul"), ((3,), (3,), "matmul"),
    ((2, 2, 3), (3, 4), "einsum"), ((2, 2, 3), (3,), "einsum"), ((3,), (2, 3, 4), "einsum"),
])
def test_dot_is_a_matrix_product_for_vectors_and_matrices_else_an_einsum(sa, sb, op):
    assert sg.dot(P("a", sa), P("b", sb)).op.name == op


def test_outer_flattens_operands_of_any_rank():
    rng = _rng()
    v, m, t = P("v", (3,)), P("m", (2, 2)), P("t", (2, 1, 3))
    vv, mv, tv = rng.normal(size=3), rng.normal(size=(2, 2)), rng.normal(size=(2, 1, 3))
    got = _run([sg.outer(v, m), sg.outer(t, v), sg.outer(m, t)], {v: vv, m: mv, t: tv})
    for g, want in zip(got, (np.outer(vv, mv), np.outer(tv, vv), np.outer(mv, tv))):
        assert g.shape == want.shape
        np.testing.assert_allclose(g, want, rtol=1e-12)


def test_outer_of_vectors_takes_them_as_they_are():
    v, w = P("v", (3,)), P("w", (4,))
    assert sg.outer(v, w).inputs == (v, w)  # no reshape node in between


def test_tensordot_with_single_axes_and_several_free_axes():
    rng = _rng()
    a, b = P("a", (2, 3, 4)), P("b", (4, 5, 6))
    av, bv = rng.normal(size=a.shape), rng.normal(size=b.shape)
    ys = [sg.tensordot(a, b, axes=1), sg.tensordot(a, b, axes=(2, 0)), sg.tensordot(b, a, axes=(0, -1))]
    wants = [np.tensordot(av, bv, axes=1), np.tensordot(av, bv, axes=(2, 0)), np.tensordot(bv, av, axes=(0, -1))]
    for g, want in zip(_run(ys, {a: av, b: bv}), wants):
        assert g.shape == want.shape
        np.testing.assert_allclose(g, want, rtol=1e-12)


# -- trace, diagonal, diag -----------------------------------------------------------------------------
def test_trace_and_diagonal_of_a_4d_array_keep_two_axes():
    rng = _rng()
    x = P("x", (2, 3, 4, 3))
    xv = rng.normal(size=x.shape)
    t, d = sg.matrix_trace(x, 1, 3), sg.diagonal(x, 1, 3)
    got_t, got_d = _run([t, d], {x: xv})
    np.testing.assert_allclose(got_t, np.trace(xv, 0, 1, 3), rtol=1e-12)
    np.testing.assert_allclose(got_d, np.diagonal(xv, 0, 1, 3), rtol=1e-12)


def test_diagonal_and_trace_of_a_tall_matrix():
    rng = _rng()
    x = P("x", (4, 3))
    xv = rng.normal(size=x.shape)
    got_d, got_t = _run([sg.diagonal(x), sg.matrix_trace(x)], {x: xv})
    np.testing.assert_allclose(got_d, np.diagonal(xv), rtol=1e-12)
    np.testing.assert_allclose(got_t, np.trace(xv), rtol=1e-12)


@pytest.mark.parametrize("dtype, want", [
    ("float32", "float32"), ("int32", "int32"), ("uint8", "uint8"), ("int64", "int64"), ("bool", "int64"),
])
def test_diag_of_a_vector_keeps_its_numeric_dtype(dtype, want):
    v = P("v", (3,), dtype=dtype)
    y = sg.diag(v)
    assert str(y.dtype) == want
    vv = np.array([1, 0, 2]).astype(dtype)
    got = _run(y, {v: vv})
    assert got.dtype == np.dtype(want)
    np.testing.assert_array_equal(got, np.diag(vv).astype(want))


# -- solve, slogdet ------------------------------------------------------------------------------------
def test_solve_of_a_batch_of_matrices_with_one_vector():
    rng = _rng()
    a, b = P("a", (2, 3, 3)), P("b", (3,))
    av, bv = rng.normal(size=a.shape) + 3 * np.eye(3), rng.normal(size=3)
    y = sg.solve(a, b)
    assert y.shape == (2, 3)
    np.testing.assert_allclose(_run(y, {a: av, b: bv}), np.linalg.solve(av, bv), rtol=1e-12)


def test_solve_of_a_4d_stack():
    rng = _rng()
    a, b = P("a", (2, 5, 3, 3)), P("b", (2, 5, 3, 1))
    av, bv = rng.normal(size=a.shape) + 3 * np.eye(3), rng.normal(size=b.shape)
    y = apply(Solve(), a, b)
    assert y.shape == (2, 5, 3, 1)
    np.testing.assert_allclose(_run(y, {a: av, b: bv}), np.linalg.solve(av, bv), rtol=1e-12)


@pytest.mark.parametrize("da, db, want", [
    ("float32", "float32", "float32"), ("float64", "float32", "float64"), ("float32", "float64", "float64"),
])
def test_solve_dtype_is_the_operands_common_type(da, db, want):
    assert str(sg.solve(P("a", (3, 3), dtype=da), P("b", (3, 2), dtype=db)).dtype) == want


def test_slogdet_of_a_batch():
    rng = _rng()
    a = P("a", (2, 3, 3))
    av = rng.normal(size=a.shape)
    sign, logabs = sg.slogdet(a)
    assert sign.shape == logabs.shape == (2,)
    got_s, got_l = _run([sign, logabs], {a: av})
    want_s, want_l = np.linalg.slogdet(av)
    np.testing.assert_array_equal(got_s, want_s)
    np.testing.assert_allclose(got_l, want_l, rtol=1e-12)


# -- cholesky's derivative: batches of batches, named rows ---------------------------------------------
def _spd(rng, shape):
    m = rng.normal(size=shape)
    return m @ np.swapaxes(m, -1, -2) + 3 * np.eye(shape[-1])


def test_cholesky_gradient_of_a_4d_stack_is_each_matrix_gradient():
    rng = _rng()
    a, a1, w1 = P("a", (2, 2, 3, 3)), P("a1", (3, 3)), P("w1", (3, 3))
    av, w = _spd(rng, a.shape), rng.normal(size=a.shape)
    (g,) = sg.grad(sg.sum(sg.cholesky(a) * w), [a])
    (g1,) = sg.grad(sg.sum(sg.cholesky(a1) * w1), [a1])
    got = _run(g, {a: av})
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(got[i, j], _run(g1, {a1: av[i, j], w1: w[i, j]}), rtol=1e-10)


def test_cholesky_gradient_with_named_rows_uses_the_static_columns():
    rng = _rng()
    a, a1 = P("a", ("n", 3)), P("a1", (3, 3))
    av, w = _spd(rng, (3, 3)), rng.normal(size=(3, 3))
    (g,) = sg.grad(sg.sum(sg.cholesky(a) * w), [a])
    (g1,) = sg.grad(sg.sum(sg.cholesky(a1) * w), [a1])
    np.testing.assert_allclose(_run(g, {a: av}), _run(g1, {a1: av}), rtol=1e-12)


# -- norm --------------------------------------------------------------------------------------------------
def test_norm_op_drops_its_axes_by_default():
    assert apply(Norm((-1,)), P("x", (3, 4))).shape == (3,)


def test_norm_hessian_at_zero_is_the_rule_dividing_by_one():
    """At x = 0 the rule divides by 1 (the docstring): the gradient there is g x / 1, whose derivative
    is the identity; elsewhere the Hessian is (I - u u^T) / |x| with u = x / |x|."""
    x = P("x", (3,))
    h = sg.hessian(sg.norm(x), x)
    np.testing.assert_allclose(_run(h, {x: np.zeros(3)}), np.eye(3), rtol=0, atol=0)
    xv = np.array([1.0, -2.0, 2.0])
    u = xv / 3.0
    np.testing.assert_allclose(_run(h, {x: xv}), (np.eye(3) - np.outer(u, u)) / 3.0, rtol=1e-12)


# -- flop estimates over named sizes: b = 5 (batch), n = 4 (matrix size) ----------------------------------
SIZES = {"b": 5, "n": 4}
B33, BNN = ("b", 3, 3), (2, "n", "n")  # cube: 5 * 3^3 = 135; 2 * 4^3 = 128
FLOPS = [
    (lambda: sg.inv(P("a", B33)), 270),  # 2 * cube
    (lambda: sg.inv(P("a", BNN)), 256),
    (lambda: sg.det(P("a", B33)), 90),  # cube * 2 // 3
    (lambda: sg.det(P("a", BNN)), 85),
    (lambda: apply(LogAbsDet(), P("a", B33)), 90),
    (lambda: apply(LogAbsDet(), P("a", BNN)), 85),
    (lambda: sg.cholesky(P("a", B33)), 45),  # cube // 3
    (lambda: sg.cholesky(P("a", BNN)), 42),
    (lambda: apply(EighValues(), P("a", B33)), 1215),  # 9 * cube
    (lambda: apply(EighVectors(), P("a", BNN)), 1152),
    (lambda: apply(EighVectors(), P("a", B33)), 1215),
    (lambda: apply(EighValues(), P("a", BNN)), 1152),
    # cube * 2 // 3 + 2 * (entries of X) * M
    (lambda: apply(Solve(), P("a", B33), P("r", ("b", 3, 2))), 90 + 2 * 30 * 3),
    (lambda: apply(Solve(), P("a", BNN), P("r", (2, "n", 3))), 85 + 2 * 24 * 4),
    (lambda: apply(Norm((-1,)), P("x", ("b", 4))), 40),  # 2 * entries of x
    (lambda: apply(Norm((-2, -1)), P("x", ("b", "n"))), 40),
    (lambda: apply(MatMul(), P("a", ("b", 3, "n")), P("c", ("n", 2))), 2 * 30 * 4),  # 2 * (entries of a @ c) * n
    # empty stacks cost 1 (never 0: the cost model divides by nothing, and an op is never free)
    (lambda: sg.inv(P("a", (0, 3, 3))), 1),
    (lambda: sg.det(P("a", (0, 3, 3))), 1),
    (lambda: apply(LogAbsDet(), P("a", (0, 3, 3))), 1),
    (lambda: sg.cholesky(P("a", (0, 3, 3))), 1),
    (lambda: apply(EighValues(), P("a", (0, 3, 3))), 1),
    (lambda: apply(EighVectors(), P("a", (0, 3, 3))), 1),
    (lambda: apply(Solve(), P("a", (0, 3, 3)), P("r", (0, 3, 2))), 1),
]


@pytest.mark.parametrize("build, flops", FLOPS)
def test_flop_estimates_over_named_sizes(build, flops):
    node = build()
    assert node.op.flops(node, SIZES) == flops

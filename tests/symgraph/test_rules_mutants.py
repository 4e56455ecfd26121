"""Branches of the simplifier's rules that mutation testing of ``symgraph/rules.py`` found untested
(tests/MUTANTS.md): each test names the rule, checks whether it fires where it should (and stays
off where it must not), and compares the values of the simplified graph with the graph as written,
both compiled with ``simplify=False``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy as sp

import codegen
import symgraph as sg
from symgraph import rules
from symgraph.rules import RULE_SETS

RULES = {r.name: r for s in RULE_SETS for r in s.rules}


def run(inputs, outputs, feeds):
    """Compile exactly these nodes (no simplification) and run them: a list of arrays."""
    return codegen.compile(inputs, list(outputs), simplify=False)(*feeds)


def simplified(outputs, rule, fires, unsafe=False, fuse=False):
    """The outputs simplified; ``rule`` fired (``fires``) or did not, per the report."""
    out, report = sg.simplify(list(outputs), report=True, unsafe=unsafe, fuse=fuse)
    assert (report.rules[rule] >= 1) == fires, report
    return out


def assert_same_values(inputs, before, after, feeds, rtol=1e-12):
    """The two lists of nodes compute the same arrays (shapes, dtypes, nan and inf included)."""
    with np.errstate(all="ignore"):
        expected, got = run(inputs, before, feeds), run(inputs, after, feeds)
    assert len(before) == len(after) == len(expected) == len(got)
    for e, g in zip(expected, got):
        e, g = np.asarray(e), np.asarray(g)
        assert e.shape == g.shape and e.dtype == g.dtype, (e.shape, e.dtype, g.shape, g.dtype)
        np.testing.assert_allclose(g, e, rtol=rtol, atol=0, equal_nan=True)


def vec(name, n=3):
    return sg.placeholder(name, (n,))


# -- Rule and its doc ---------------------------------------------------------------------------------
def test_rules_are_immutable_and_hashable():
    rule = RULES["add_zero"]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'name'"):
        rule.name = "renamed"
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'rules'"):
        rules.ALGEBRA.rules = ()
    assert len({*RULES.values(), RULES["add_zero"]}) == len(RULES)  # usable as set members and dict keys
    assert hash(rules.ALGEBRA) == hash(rules.RuleSet("algebra", rules.ALGEBRA.rules))


def test_a_rule_without_a_docstring_has_an_empty_doc():
    rule = rules.Rule("mine", ("add",), lambda n: None)
    assert rule.doc == ""
    assert rules.Rule("mine", ("add",), rules.add_zero).doc == "x + 0 -> x"


# -- predicates ----------------------------------------------------------------------------------------
def test_a_user_elementwise_op_named_like_a_primitive_is_not_matched_as_one(rng):
    """name(): a user op called "log" over exp(x) is no log(exp(x)) (log_exp would return x)."""
    x = vec("x")
    my_log = sg.elementwise(lambda v: sp.log(v + 2), name="log")
    my_neg = sg.elementwise(lambda v: 3 * v, name="negative")
    outs = [my_log(sg.exp(x)), my_neg(my_neg(x))]  # neg_neg would return x
    after = simplified(outs, "log_exp", fires=False)
    assert sg.simplify(outs, report=True, fuse=False)[1].rules["neg_neg"] == 0
    xv = rng.normal(size=3)
    assert_same_values([x], outs, after, [xv])
    np.testing.assert_allclose(run([x], after, [xv])[0], np.log(np.exp(xv) + 2), rtol=1e-12)


def test_a_rule_for_elementwise_matches_user_derivative_and_fused_ops_whatever_their_name(rng):
    """name(): a user-defined, derivative or fused elementwise op is "elementwise" to the rules (a rule set
    of the caller's may match it); a built-in function such as tanh keeps its own name."""
    x = vec("x")
    my_log = sg.elementwise(lambda v: sp.log(v + 2), name="log")
    seen = []
    watch = rules.RuleSet("watch", (rules.Rule("watch", ("elementwise",), lambda n: seen.append(n.op.name)),))
    fused = sg.simplify(sg.tanh(x) * 2.0 + 1.0)  # one fused node
    derivative = sg.grad(sg.sum(my_log(x)), x)  # 1 * dlog(x)
    sg.simplify([my_log(x), fused, derivative, sg.tanh(x)], rule_sets=(watch,), fuse=False)
    assert set(seen) == {"log", fused.op.name, "dlog"}, seen  # (once per pass of the simplifier)
    assert rules.name(sg.tanh(x)) == "tanh" and rules.name(my_log(x)) == "elementwise"


def test_fits_needs_the_same_shape_not_only_the_same_dtype(rng):
    """x + zeros((2, 3)) is a (2, 3) array: add_zero may not return the (3,) x (likewise * ones, / ones, ** 1)."""
    x = vec("x")
    zeros, ones = sg.constant(np.zeros((2, 3))), sg.constant(np.ones((2, 3)))
    outs = [x + zeros, zeros + x, x - zeros, zeros - x, x * ones, ones * x, x / ones, x ** ones]
    after = sg.simplify(outs, fuse=False)
    assert [o.shape for o in after] == [(2, 3)] * len(outs)
    xv = rng.normal(size=3)
    assert_same_values([x], outs, after, [xv])


def test_scalar_source_looks_through_expand_dims(rng):
    """sum(broadcast_to(expand_dims(s))) is s * 6, and f(expand_dims(s), y) is f(s, y)."""
    s, y = sg.placeholder("s", ()), sg.placeholder("y", (1,))
    outs = [sg.sum(sg.broadcast_to(sg.expand_dims(s, 0), (2, 3))), y - sg.expand_dims(s, 0)]
    after = simplified(outs, "sum_of_broadcast", fires=True)
    assert "expand_dims" not in sg.count_ops(after) and "broadcast_to" not in sg.count_ops(after)
    sv, yv = np.array(1.5), np.array([4.0])
    assert_same_values([s, y], outs, after, [sv, yv])
    np.testing.assert_array_equal(run([s, y], after, [sv, yv])[0], 9.0)


# -- unsafe rules fire on their pattern only --------------------------------------------------------------
def test_mul_zero_fires_for_a_zero_on_either_side_and_only_for_a_zero(rng):
    x = vec("x")
    ones = sg.constant(np.ones((2, 3)))  # broadcasts: mul_one leaves ones * tanh(x) to the other rules
    after = simplified([0.0 * sg.tanh(x)], "mul_zero", fires=True, unsafe=True)
    assert "tanh" not in sg.count_ops(after)
    outs = [ones * sg.tanh(x), sg.tanh(x) * ones]
    kept = simplified(outs, "mul_zero", fires=False, unsafe=True)
    xv = rng.normal(size=3)
    assert_same_values([x], outs, kept, [xv])
    np.testing.assert_allclose(run([x], kept, [xv])[0], np.broadcast_to(np.tanh(xv), (2, 3)), rtol=1e-15)


def test_exp_log_fires_only_on_a_log(rng):
    x = vec("x")
    outs = [sg.exp(sg.tanh(x)), sg.exp(sg.sin(x))]
    after = simplified(outs, "exp_log", fires=False, unsafe=True)
    xv = rng.normal(size=3)
    assert_same_values([x], outs, after, [xv])
    np.testing.assert_allclose(run([x], after, [xv])[0], np.exp(np.tanh(xv)), rtol=1e-15)


# -- const_assoc's guards ---------------------------------------------------------------------------------
def test_const_assoc_merges_integer_constants():
    """(x * 2) * 3 -> x * 6 and (x + 2) + 3 -> x + 5 for an int64 x (no underflow test for integers)."""
    x = sg.placeholder("x", (3,), dtype="int64")
    outs = [(x * 2) * 3, (x + 2) + 3]
    after = simplified(outs, "const_assoc", fires=True)
    assert sg.count_ops(after[0])["multiply"] == 1 and sg.count_ops(after[1])["add"] == 1
    xv = np.array([-4, 0, 7])
    assert_same_values([x], outs, after, [xv])
    np.testing.assert_array_equal(run([x], after, [xv])[0], xv * 6)


def test_const_assoc_merges_a_product_that_is_the_smallest_normal_number():
    """2**-1000 * 2**-22 = 2**-1022 = finfo.tiny, a normal number: no underflow, so the constants merge."""
    x = vec("x")
    out = (x * 2.0 ** -1000) * 2.0 ** -22
    (after,) = simplified([out], "const_assoc", fires=True)
    assert sg.count_ops(after)["multiply"] == 1
    xv = np.array([1.0, -3.0, 2.0 ** 1000])
    assert_same_values([x], [out], [after], [xv])
    np.testing.assert_array_equal(run([x], [after], [xv])[0], xv * np.finfo(np.float64).tiny)


@pytest.mark.parametrize("build", [
    pytest.param(lambda x: (x * 0.0) * 3.0, id="(x*0)*3"),
    pytest.param(lambda x: (x * 3.0) * 0.0, id="(x*3)*0"),
])
def test_const_assoc_merges_a_zero_factor(build):
    """A zero product of a zero factor is no underflow: (x * 0) * 3 and (x * 3) * 0 become x * 0."""
    x = vec("x")
    out = build(x)
    (after,) = simplified([out], "const_assoc", fires=True)
    assert sg.count_ops(after)["multiply"] == 1
    xv = np.array([2.0, -1.0, np.inf])
    assert_same_values([x], [out], [after], [xv])


def test_an_empty_constant_is_not_a_zero_to_the_rules():
    """is_value: np.all of no entries is True, but an empty constant is no 0. sum over an axis of length 0
    is 0, whereas sum_of_masked taking the empty y for 0 would give where(m > 0, sum(x, 0), 0) = x[0]."""
    x, m = sg.placeholder("x", (1, 3)), vec("m")
    empty = sg.constant(np.zeros((0, 3)))
    out = sg.sum(sg.where(m > 0, x, empty), axis=0)  # the where is (0, 3): its sum over axis 0 is zeros(3)
    (after,) = simplified([out], "sum_of_masked", fires=False)
    xv, mv = np.array([[1.0, 2.0, 3.0]]), np.array([1.0, -1.0, 1.0])
    assert_same_values([x, m], [out], [after], [xv, mv])
    np.testing.assert_array_equal(run([x, m], [after], [xv, mv])[0], np.zeros(3))


# -- constant_fold ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2,), (5,), (2, 3)])
def test_constant_fold_keeps_a_broadcast_of_a_scalar_unstored(shape):
    """broadcast_to(3.0, shape) folded would be a stored array of numel(shape) entries: it stays a broadcast
    (a constant of one entry, broadcast when the code runs); an array constant's arithmetic folds."""
    (kept,) = simplified([sg.broadcast_to(sg.constant(3.0), shape)], "constant_fold", fires=False)
    assert kept.op.name == "broadcast_to" and kept.inputs[0].op.value.shape == (), sg.dprint(kept)
    np.testing.assert_array_equal(run([], [kept], [])[0], np.full(shape, 3.0))
    (folded,) = simplified([sg.constant(np.full(shape, 3.0)) * 2.0], "constant_fold", fires=True)
    np.testing.assert_array_equal(folded.op.value, np.full(shape, 6.0))


def test_constant_fold_of_python_numbers_is_a_python_number():
    """(x * 2.0) * 3.0 -> x * 6.0 with 6.0 weak like the numbers it came from (printed as 6.0 and inlined into
    a fused expression); a fold involving a typed constant stays typed (np.float64(6.0))."""
    x = vec("x")
    (after,) = simplified([(x * 2.0) * 3.0], "constant_fold", fires=True)
    six = after.inputs[1]
    assert six.op.name == "constant" and six.op.weak and six.op.value == 6.0
    assert "x * 6.0" in codegen.compile([x], (x * 2.0) * 3.0).source
    fused = sg.simplify((x * 2.0) * 3.0 + 1.0)
    assert fused.inputs == (x,), sg.dprint(fused)  # 6.0 is inside the expression, not read as an array
    (typed,) = simplified([(x * sg.constant(2.0)) * 3.0], "constant_fold", fires=True)
    assert not typed.inputs[1].op.weak
    assert "x * np.float64(6.0)" in codegen.compile([x], (x * sg.constant(2.0)) * 3.0).source
    xv = np.array([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(run([x], [after, fused, typed], [xv]), [xv * 6.0, xv * 6.0 + 1.0, xv * 6.0])


# -- linear algebra ----------------------------------------------------------------------------------------
def test_transpose_of_matmul_fires_only_when_it_saves_a_transpose(rng):
    """(a @ b.T).T -> b @ a.T (one transpose instead of two); (a @ b).T is left alone (it would gain one)."""
    a, b = sg.placeholder("a", (2, 3)), sg.placeholder("b", (4, 3))
    c = sg.placeholder("c", (3, 4))
    (saved,) = simplified([(a @ b.T).T], "transpose_of_matmul", fires=True)
    assert sg.count_ops(saved)["transpose"] == 1 and saved.op.name == "matmul"
    (plain,) = simplified([(a @ c).T], "transpose_of_matmul", fires=False)
    assert sg.count_ops(plain)["transpose"] == 1 and plain.op.name == "transpose"
    feeds = [rng.normal(size=(2, 3)), rng.normal(size=(4, 3)), rng.normal(size=(3, 4))]
    assert_same_values([a, b, c], [(a @ b.T).T, (a @ c).T], [saved, plain], feeds)


def test_matmul_of_basis_only_drops_a_two_dimensional_identity_of_matching_dtype(rng):
    """basis((2, 2)) is a (4, 2, 2) stack, no identity matrix; a float64 identity times a float32 matrix is
    float64: neither product is M."""
    m, n = sg.placeholder("m", (2, 5)), sg.placeholder("n", (5, 2))
    m32, n32 = sg.placeholder("m32", (3, 5), dtype="float32"), sg.placeholder("n32", (5, 3), dtype="float32")
    stack, identity = sg.ops.shape.basis((2, 2), "float64"), sg.ops.shape.basis((3,), "float64")
    outs = [stack @ m, n @ stack, identity @ m32, n32 @ identity]
    after = simplified(outs, "matmul_of_basis", fires=False)
    assert [o.shape for o in after] == [(4, 2, 5), (4, 5, 2), (3, 5), (5, 3)]
    assert all(o.dtype == np.float64 for o in after)
    feeds = [rng.normal(size=(2, 5)), rng.normal(size=(5, 2)), rng.normal(size=(3, 5)).astype(np.float32),
             rng.normal(size=(5, 3)).astype(np.float32)]
    assert_same_values([m, n, m32, n32], outs, after, feeds)
    got = run([m, n, m32, n32], after, feeds)
    np.testing.assert_array_equal(got[0][1], np.array([[0.0, 1.0], [0.0, 0.0]]) @ feeds[0])
    np.testing.assert_array_equal(got[2], feeds[2].astype(np.float64))


def test_matmul_of_a_basis_row_or_column_only_of_matching_dtype_and_a_matrix(rng):
    """e_k @ M -> M[k] and M @ e_k -> column k of M only when that is the product: not for a float32 M (the
    product is float64), nor for a stack of matrices M (M.T would reverse all three axes)."""
    identity = sg.ops.shape.basis((3,), "float64")
    rows, columns = sg.expand_dims(identity, -2), sg.expand_dims(identity, -1)  # (3, 1, 3), (3, 3, 1)
    m32, n32 = sg.placeholder("m32", (3, 4), dtype="float32"), sg.placeholder("n32", (2, 3), dtype="float32")
    stack = sg.placeholder("stack", (3, 2, 3))
    outs = [rows @ m32, n32 @ columns, stack @ columns]
    after = simplified(outs, "matmul_of_basis", fires=False)
    assert [(o.shape, o.dtype) for o in after] == [((3, 1, 4), np.float64), ((3, 2, 1), np.float64),
                                                   ((3, 2, 1), np.float64)]
    feeds = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32),
             rng.normal(size=(3, 2, 3))]
    assert_same_values([m32, n32, stack], outs, after, feeds)
    got = run([m32, n32, stack], after, feeds)
    np.testing.assert_array_equal(got[1][:, :, 0], feeds[1].T.astype(np.float64))
    np.testing.assert_array_equal(got[2][:, :, 0], [feeds[2][k][:, k] for k in range(3)])


def test_stacked_matvec_fires_only_on_its_pattern(rng):
    """squeeze(..., -1) of anything but A @ expand_dims(B, -1) with a matrix A is left to the other rules."""
    x, v = sg.placeholder("x", (3, 1)), vec("v")
    a, c = sg.placeholder("a", (2, 3)), sg.placeholder("c", (3, 1))
    stack, b = sg.placeholder("stack", (4, 2, 3)), sg.placeholder("b", (4, 3))
    u, w, r = sg.placeholder("u", (1,)), sg.placeholder("w", (1, 1)), sg.placeholder("r", (1, 4))
    outs = [sg.squeeze(sg.tanh(x), -1),  # one input
            sg.squeeze(x + sg.expand_dims(v, -1), -1),  # two inputs, no matmul
            sg.squeeze(a @ sg.tanh(c), -1),  # a matmul with no expand_dims
            sg.squeeze(stack @ sg.expand_dims(b, -1), -1),  # a stack of matrices A
            sg.squeeze(sg.tanh(x.T) @ a.T, -2),  # squeeze(..., -2) of a matmul with no expand_dims
            sg.squeeze((u * w) @ r, -2),  # u (1,) is no B: (u * w) @ r is not u @ r
            sg.squeeze(sg.expand_dims(b, -2) @ sg.transpose(stack, (0, 2, 1)), -2)]  # B[k] @ A[k]: a stack again
    after = simplified(outs, "stacked_matvec", fires=False)
    feeds = [rng.normal(size=(3, 1)), rng.normal(size=3), rng.normal(size=(2, 3)), rng.normal(size=(3, 1)),
             rng.normal(size=(4, 2, 3)), rng.normal(size=(4, 3)), np.array([2.0]), np.array([[3.0]]),
             rng.normal(size=(1, 4))]
    inputs = [x, v, a, c, stack, b, u, w, r]
    assert_same_values(inputs, outs, after, feeds)
    got = run(inputs, after, feeds)
    np.testing.assert_allclose(got[1], feeds[0][:, 0] + feeds[1], rtol=1e-15)
    np.testing.assert_allclose(got[3], np.einsum("kij,kj->ki", feeds[4], feeds[5]), rtol=1e-12)
    np.testing.assert_allclose(got[4], np.tanh(feeds[0][:, 0]) @ feeds[2].T, rtol=1e-12)
    np.testing.assert_allclose(got[5], 6.0 * feeds[8][0], rtol=1e-15)
    np.testing.assert_allclose(got[6], got[3], rtol=1e-12)


# -- stabilization -----------------------------------------------------------------------------------------
def test_log_one_plus_leaves_log_of_one_plus_exp_to_softplus_whatever_the_rule_order():
    """log(1 + exp(z)) must become softplus(z), not log1p(exp(z)) (inf at z = 800), even when log_one_plus
    runs before log_one_plus_exp."""
    z = vec("z")
    out = sg.log(1.0 + sg.exp(z))
    reversed_order = rules.RuleSet("reversed", (RULES["log_one_plus"], RULES["log_one_plus_exp"]))
    after, report = sg.simplify(out, report=True, rule_sets=(reversed_order,), fuse=False)
    assert report.rules == {"log_one_plus_exp": 1} and after.op.name == "softplus", report
    zv = np.array([800.0, -40.0, 0.5])
    np.testing.assert_allclose(run([z], [after], [zv])[0], np.logaddexp(0.0, zv), rtol=1e-15)


def test_naive_softmax_needs_exp_over_its_own_sum_along_one_axis(rng):
    """exp(z) / max(exp(z)), tanh(z) / sum(tanh(z)) and exp(z) / sum(exp(z)) over both axes of a matrix
    (a 0-d sum) are no softmax along one axis: left as written."""
    z = sg.placeholder("z", (2, 3))
    outs = [sg.exp(z) / sg.max(sg.exp(z), axis=-1, keepdims=True),
            sg.tanh(z) / sg.sum(sg.tanh(z), axis=-1, keepdims=True),
            sg.exp(z) / sg.sum(sg.exp(z))]
    after = simplified(outs, "naive_softmax", fires=False)
    zv = rng.normal(size=(2, 3))
    assert_same_values([z], outs, after, [zv])
    got = run([z], after, [zv])
    np.testing.assert_allclose(got[2], np.exp(zv) / np.exp(zv).sum(), rtol=1e-14)
    np.testing.assert_allclose(got[2].sum(), 1.0, rtol=1e-14)


def test_naive_sigmoid_of_a_negation_reads_x_itself():
    """1 / (1 + exp(-x)) -> sigmoid(x), not sigmoid(-(-x)): the stabilization the differentiator runs alone
    (no neg_neg after it) leaves no double negation."""
    x = vec("x")
    after = sg.simplify(1.0 / (1.0 + sg.exp(-x)), rule_sets=(rules.STABILIZE,), fuse=False)
    assert after.op.name == "sigmoid" and after.inputs == (x,), sg.dprint(after)
    xv = np.array([-800.0, 0.0, 3.0])
    np.testing.assert_allclose(run([x], [after], [xv])[0], [0.0, 0.5, 1.0 / (1.0 + np.exp(-3.0))], rtol=1e-15)


def test_add_unpick_with_the_unpick_on_either_side(rng):
    """unpick(v) + a -> add_at(a, v) fires with the unpick first; unpick(v) - a is v - a at the labelled
    entries, not a - v: it is left alone."""
    z, v = sg.placeholder("z", (4, 3)), vec("v", 4)
    labels = sg.placeholder("labels", (4,), dtype="int64")
    u = sg.ops.nn.Unpick(3)
    (added,) = simplified([sg.graph.apply(u, v, labels) + sg.exp(z)], "add_unpick", fires=True)
    assert added.op.name == "add_at", sg.dprint(added)
    (subtracted,) = simplified([sg.graph.apply(u, v, labels) - sg.exp(z)], "add_unpick", fires=False)
    feeds = [rng.normal(size=(4, 3)), rng.normal(size=4), np.array([0, 2, 1, 2])]
    got = run([z, v, labels], [added, subtracted], feeds)
    one_hot_v = np.eye(3)[feeds[2]] * feeds[1][:, None]
    np.testing.assert_allclose(got[0], np.exp(feeds[0]) + one_hot_v, rtol=1e-15)
    np.testing.assert_allclose(got[1], one_hot_v - np.exp(feeds[0]), rtol=1e-15)


@pytest.mark.parametrize("shape", [(3,), (2, 4, 3)], ids=["one row", "a batch of sequences"])
def test_add_unpick_with_labels_of_any_rank(shape, rng):
    """labels have the shape of the sum without its last axis: () for one row, (2, 4) for (2, 4, 3)."""
    z, v = sg.placeholder("z", shape), sg.placeholder("v", shape[:-1])
    labels = sg.placeholder("labels", shape[:-1], dtype="int64")
    out = sg.exp(z) - sg.graph.apply(sg.ops.nn.Unpick(3), v, labels)
    (after,) = simplified([out], "add_unpick", fires=True)
    assert after.op.name == "add_at", sg.dprint(after)
    feeds = [rng.normal(size=shape), rng.normal(size=shape[:-1]), rng.integers(0, 3, size=shape[:-1])]
    assert_same_values([z, v, labels], [out], [after], feeds)
    expected = np.exp(feeds[0]) - np.eye(3)[feeds[2]] * feeds[1][..., None]
    np.testing.assert_allclose(run([z, v, labels], [after], feeds)[0], expected, rtol=1e-15)


# -- masked gradients ----------------------------------------------------------------------------------------
def test_mask_product_of_a_zero_one_mask_on_either_branch(rng):
    """where(c, 1, 0) * d -> where(c, d, 0) and where(c, 0, 1) / d -> where(c, 0, 1 / d): the kept branch may
    be any nonzero value, 1 included."""
    x, d = vec("x", 5), vec("d", 5)
    outs = [sg.where(x > 0, 1.0, 0.0) * d, sg.where(x > 0, 0.0, 1.0) / d]
    after = simplified(outs, "mask_product", fires=True)
    assert all(o.op.name == "where" for o in after), sg.dprint(after)
    xv, dv = np.array([1.0, -1.0, 2.0, -2.0, 0.5]), rng.uniform(0.5, 2, 5)
    assert_same_values([x, d], outs, after, [xv, dv])
    got = run([x, d], after, [xv, dv])
    np.testing.assert_array_equal(got[0], np.where(xv > 0, dv, 0.0))
    np.testing.assert_array_equal(got[1], np.where(xv > 0, 0.0, 1.0 / dv))


def test_mask_product_needs_a_zero_branch(rng):
    """where(c, x, 2) * d has no zero branch: where(c, x * d, 0) or where(c, 0, 2 * d) would drop a branch."""
    x, d = vec("x", 5), vec("d", 5)
    outs = [sg.where(x > 0, x, 2.0) * d, d * sg.where(x > 0, 2.0, x), sg.where(x > 0, x, 2.0) / d]
    after = simplified(outs, "mask_product", fires=False)
    xv, dv = np.array([1.0, -1.0, 2.0, -2.0, 0.5]), rng.uniform(0.5, 2, 5)
    assert_same_values([x, d], outs, after, [xv, dv])
    np.testing.assert_allclose(run([x, d], after, [xv, dv])[0], np.where(xv > 0, xv, 2.0) * dv, rtol=1e-15)


# -- conv nets -------------------------------------------------------------------------------------------------
def test_pool_of_monotone_declines_for_an_activation_rebuilt_in_the_pass_that_has_another_use(rng):
    """relu(x * 1) becomes a new node relu(x) in the first pass, used by the pool and by the sum: a node built
    in the pass has no use count, so it counts as shared (moving relu past the pool would add work)."""
    x = sg.placeholder("x", (1, 2, 4, 4))
    r = sg.relu(x * 1.0)
    outs = [sg.max_pool2d(r, 2), sg.sum(r)]
    after = simplified(outs, "pool_of_monotone", fires=False)
    assert sg.count_ops(after)["relu"] == 1 and after[0].op.name == "max_pool2d", sg.dprint(after)
    xv = rng.normal(size=(1, 2, 4, 4))
    assert_same_values([x], outs, after, [xv])
    np.testing.assert_allclose(run([x], after, [xv])[1], np.maximum(xv, 0).sum(), rtol=1e-14)


def test_sole_use_is_false_outside_the_simplifier():
    x = vec("x")
    assert not rules.sole_use(sg.relu(x))
    with rules.counting_uses({id(x): 1}):
        assert rules.sole_use(x)
    assert not rules.sole_use(x)  # the counts are gone with the context


# -- the rule table ----------------------------------------------------------------------------------------------
def test_drop_broadcast_fires_for_each_of_its_four_ops(rng):
    """add, subtract, multiply and divide of a broadcast scalar and a full-shape y read the scalar itself."""
    s, y = sg.placeholder("s", ()), vec("y")
    b = sg.broadcast_to(s, (3,))
    outs = [b + y, y - b, b * y, y / b]
    for out in outs:
        (after,) = simplified([out], "drop_broadcast", fires=True)
        assert "broadcast_to" not in sg.count_ops(after) and after.op.name == out.op.name, sg.dprint(after)
    after = sg.simplify(outs, fuse=False)
    sv, yv = np.array(1.5), rng.normal(size=3)
    assert_same_values([s, y], outs, after, [sv, yv])
    np.testing.assert_allclose(run([s, y], after, [sv, yv]), [sv + yv, yv - sv, sv * yv, yv / sv], rtol=1e-15)

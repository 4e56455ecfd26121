"""Labels belong to the call that made them: nothing is written on the shared, hash-consed nodes."""

import numpy as np
import sympy

import codegen
import symgraph as sg
from symgraph.provenance import labels_of


def _body(source: str) -> str:
    return source[source.index("\n    #"):]  # the function body, after the docstring


def test_a_vjp_does_not_label_the_same_value_built_by_the_user():
    w = sg.parameter("w", value=np.array([1.0, 2.0]))
    x = sg.placeholder("x", shape=(2,))
    c = sg.placeholder("c", shape=(2,))
    (gw,) = sg.vjp(w * x, [w], [c])
    plain = _body(codegen.compile([x, c], [c * x]).source)
    assert "grad_w" not in plain and "vjp" not in plain and "# backward" not in plain
    assert "multiply1 = c * x" in plain
    labelled = _body(codegen.compile([x, c], [gw]).source)
    assert "grad_w = c * x" in labelled and "# vjp of multiply(w, x) wrt w" in labelled
    f = codegen.compile([x, c], [c * x, gw])
    assert all(np.array_equal(a, [3.0, 8.0]) for a in f(np.array([1.0, 2.0]), np.array([3.0, 4.0])))


def test_a_jvp_kept_alive_does_not_label_a_later_gradient():
    w = sg.parameter("w", value=np.array(0.3))
    t = sg.placeholder("t", shape=())
    z = sg.tanh(sg.tanh(sg.tanh(w)))
    [tz] = sg.jvp([z], [w], [t])  # kept alive: its nodes (tanh' of each layer) are shared with the gradient
    (gz,) = sg.grad(z, [w])
    body = _body(codegen.compile([], [gz]).source)
    assert "forward mode" not in body and "jvp" not in body and "tan_" not in body
    assert "# backward" in body and "vjp of tanh" in body and "grad_w =" in body
    forward = _body(codegen.compile([t], [tz]).source)
    assert "# forward mode: tangents" in forward and "jvp of tanh" in forward and "grad_" not in forward
    value = np.tanh(np.tanh(np.tanh(0.3)))
    expected = (1 - value**2) * (1 - np.tanh(np.tanh(0.3)) ** 2) * (1 - np.tanh(0.3) ** 2)
    assert np.isclose(codegen.compile([], [gz])(), expected)
    assert np.isclose(codegen.compile([t], [tz])(np.array(2.0)), 2.0 * expected)


def test_dprint_and_to_dot_name_derivatives_as_the_generated_code_does():
    x = sg.placeholder("x", shape=(4, 3))
    w = sg.parameter("w", value=np.ones(3))
    b = sg.parameter("b", value=np.zeros(()))
    loss = sg.tanh(x @ w + b).sum()
    grads = sg.grad(loss, [w, b])
    listing = sg.dprint(grads)
    assert "%grad_w = " in listing and "%grad_b = " in listing
    assert '"grad_w"' in sg.to_dot(grads)
    source = codegen.compile([x], grads).source
    assert "grad_w = " in source and "grad_b = " in source
    assert "grad_" not in sg.dprint([loss])  # the primal graph alone carries no derivative label


def test_two_calls_label_one_shared_node_each_their_own_way():
    x = sg.placeholder("x", shape=(3,))
    y = sg.sin(x).sum()
    (g,) = sg.grad(y, [x])
    (t,) = sg.jvp([sg.sin(x)], [x], [sg.constant(np.ones(3))])
    cos = [n for n in sg.topo_sort([g]) if n.op.name == "dsin"]
    assert cos and cos[0] in sg.topo_sort([t])  # sin' = cos(x): the same interned node in both graphs
    assert labels_of([g]).origin[cos[0]][0] == "vjp"
    assert labels_of([t]).origin[cos[0]][0] == "jvp"


def test_nodes_do_not_change_when_differentiated_or_simplified():
    x = sg.placeholder("x", shape=(3,))
    h = sg.tanh(x * 2.0)
    before = [(n, n.op, n.inputs, n.name, n.labels) for n in sg.topo_sort([h])]
    g = sg.grad(h.sum(), x)
    sg.simplify([g, sg.jvp([h], [x], [x])[0]])
    assert before == [(n, n.op, n.inputs, n.name, n.labels) for n in sg.topo_sort([h])]


def test_named_gives_a_named_copy_and_leaves_the_shared_node_alone():
    x = sg.placeholder("x", shape=(3,))
    shared = sg.exp(x)
    a = shared.named("a")
    assert a is not shared and shared.name is None and a.name == "a"
    assert shared.named("a") is a  # asking again gives the same copy
    b = sg.exp(x).named("b")
    assert b.name == "b" and a.name == "a"
    f = codegen.compile([x], [a, b])
    assert f.source.count("np.exp(x)") == 1  # one value: computed once, under one of its names
    assert "a = np.exp(x)" in f.source or "b = np.exp(x)" in f.source
    va, vb = f(np.arange(3.0))
    assert np.array_equal(va, np.exp(np.arange(3.0))) and np.array_equal(vb, va)


def test_results_of_one_request_are_one_node():
    x = sg.placeholder("x", shape=(3,))
    cost = sg.tanh(x).sum()
    assert sg.grad(cost, x) is sg.grad(cost, [x])[0]
    assert sg.jacobian(sg.tanh(x), x, mode="forward") is sg.jacobian(sg.tanh(x), x, mode="forward")


def test_simplify_results_keep_the_derivative_labels_and_say_which_rules_built_them():
    x = sg.placeholder("x", shape=(4, 3))
    w = sg.parameter("w", value=np.ones(3))
    g = sg.grad((sg.tanh(x @ w) * 1.0 + 0.0).sum(), w)
    simplified = sg.simplify(g)
    source = codegen.compile([x], simplified, show_rules=True).source
    assert "grad_w = " in source and "vjp of" in source and "[rules: " in source


def test_hessian_lines_are_labelled_by_both_sweeps():
    w = sg.placeholder("w", shape=(2,))
    cost = (sg.tanh(w) ** 2).sum()
    source = codegen.compile([w], [sg.hessian(cost, w)]).source
    assert "# backward" in source and "# forward mode: tangents" in source


def test_op_equality_never_matches_a_string():
    x = sg.placeholder("x", shape=(3,))
    assert sg.tanh(x).op != "tanh" and sg.tanh(x).op.name == "tanh"
    assert sg.tanh(x).op == sg.tanh(sg.exp(x)).op


def test_a_user_elementwise_named_like_a_builtin_is_its_own_op():
    x = sg.placeholder("x", shape=(3,))
    mine = sg.elementwise(lambda z: sympy.log(1 + sympy.exp(z)), name="softplus")(x)
    assert mine is not sg.softplus(x) and mine.op != sg.softplus(x).op
    same_expr = sg.elementwise(lambda z: sympy.Max(z, 0), name="relu")(x)  # relu's expression, sympy's derivative
    assert same_expr is not sg.relu(x)
    xv = np.array([-1.0, 0.5, 3.0])
    f = codegen.compile([x], [sg.grad(mine.sum(), x), sg.grad(sg.softplus(x).sum(), x)])
    mine_grad, builtin_grad = f(xv)
    np.testing.assert_allclose(mine_grad, 1 / (1 + np.exp(-xv)), rtol=1e-12)
    np.testing.assert_allclose(builtin_grad, mine_grad, rtol=1e-12)

"""codegen.compile / codegen.evaluate: results, determinism, updates, readable source.

Contract: DESIGN.md section A ("Compiling and running"); style: section C.
"""

import ast
import io
import re
import sys
import tokenize

import numpy as np
import pytest

import codegen
import symgraph as sg

# -- helpers ------------------------------------------------------------------------


def build_mlp(rng, name_hidden=False):
    """A 2-layer tanh MLP with softmax cross-entropy; returns a dict of its pieces."""
    x = sg.placeholder("x", shape=("batch", 3))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W1 = sg.parameter("W1", value=rng.normal(size=(3, 5)))
    b1 = sg.parameter("b1", value=rng.normal(size=5) * 0.1)
    W2 = sg.parameter("W2", value=rng.normal(size=(5, 4)))
    b2 = sg.parameter("b2", value=rng.normal(size=4) * 0.1)
    h1 = sg.tanh(x @ W1 + b1)
    if name_hidden:
        h1 = h1.named("h1")
    logits = h1 @ W2 + b2
    loss = sg.softmax_cross_entropy(logits, y)
    params = [W1, b1, W2, b2]
    return dict(x=x, y=y, params=params, loss=loss, grads=sg.grad(loss, params), h1=h1, logits=logits)


def mlp_batch(rng, n):
    return rng.normal(size=(n, 3)), rng.integers(0, 4, size=n)


def numpy_mlp_loss(xb, yb, W1, b1, W2, b2):
    """Reference loss written by hand in NumPy."""
    logits = np.tanh(xb @ W1 + b1) @ W2 + b2
    m = logits.max(axis=1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(yb)), yb].mean()


def function_body(source, fn_name=None):
    """The FunctionDef node of the generated public function."""
    tree = ast.parse(source)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    assert len(fns) == 1, [f.name for f in fns]
    if fn_name is not None:
        assert fns[0].name == fn_name
    return fns[0]


def comment_lines(source):
    """Line numbers (1-based) of statements that carry a real # comment token (not a '#' inside
    a string): on the statement's own line, or alone on the line just above it when the
    statement is too long to share a line (section headers like '# backward' don't count)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    lines = source.splitlines()
    out = set()
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        row = tok.start[0]
        own_line = lines[row - 1].strip().startswith("#")
        header = re.fullmatch(r"# (forward|backward|forward mode: tangents|updates.*)", tok.string)
        if not own_line:
            out.add(row)
        elif not header:
            out.add(row + 1)
    return out


def assigned_names(fn):
    out = []
    for stmt in fn.body:
        if isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    out.append(t.id)
    return out


# -- compile / evaluate: results ------------------------------------------------------


def test_single_output_node_returns_a_value_and_list_returns_a_list(rng):
    x = sg.placeholder("x", shape=(2, 3))
    s = (x * x).sum()
    xb = rng.normal(size=(2, 3))

    single = codegen.compile([x], s)(xb)
    assert isinstance(single, np.ndarray) and single.shape == ()
    np.testing.assert_allclose(single, (xb * xb).sum())

    one = codegen.compile([x], [s])(xb)
    assert isinstance(one, list) and len(one) == 1
    np.testing.assert_allclose(one[0], (xb * xb).sum())

    two = codegen.compile([x], [s, x * 2.0])(xb)
    assert isinstance(two, list) and len(two) == 2
    np.testing.assert_allclose(two[1], xb * 2.0)

    assert codegen.compile([x], [])(xb) == []


def test_evaluate_single_and_list(rng):
    x = sg.placeholder("x", shape=(4,))
    xb = rng.normal(size=4)
    v = codegen.evaluate(sg.exp(x), {x: xb})
    assert isinstance(v, np.ndarray)
    np.testing.assert_allclose(v, np.exp(xb))
    vs = codegen.evaluate([sg.exp(x), x.sum()], {x: xb})
    assert isinstance(vs, list) and len(vs) == 2
    np.testing.assert_allclose(vs[1], xb.sum())


def test_mlp_loss_matches_handwritten_numpy(rng):
    m = build_mlp(rng)
    f = codegen.compile([m["x"], m["y"]], m["loss"])
    xb, yb = mlp_batch(rng, 6)
    np.testing.assert_allclose(f(xb, yb), numpy_mlp_loss(xb, yb, *(p.value for p in m["params"])), rtol=1e-12)


def test_mlp_gradient_matches_finite_differences_of_evaluate(rng):
    m = build_mlp(rng)
    x, y, loss = m["x"], m["y"], m["loss"]
    f = codegen.compile([x, y], [loss, *m["grads"]])
    xb, yb = mlp_batch(rng, 5)
    loss_value, *grads = f(xb, yb)
    np.testing.assert_allclose(loss_value, codegen.evaluate(loss, {x: xb, y: yb}), rtol=1e-12)
    eps = 1e-6
    for p, g in zip(m["params"], grads):
        assert g.shape == p.shape
        w0 = p.value.copy()
        num = np.zeros_like(w0)
        for i in np.ndindex(w0.shape):
            for sign in (1.0, -1.0):
                w = w0.copy()
                w[i] += sign * eps
                p.value = w
                num[i] += sign * codegen.evaluate(loss, {x: xb, y: yb}) / (2 * eps)
        p.value = w0
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8, err_msg=p.name)


def test_simplify_false_gives_the_same_numbers(rng):
    m = build_mlp(rng)
    x, y = m["x"], m["y"]
    # a constant sub-expression, so that the simplifier does fire
    scale = sg.constant(np.full(4, 2.0)) * 0.25 + 0.5
    cost = m["loss"] + (m["logits"] * scale).mean()
    outs = [cost, *sg.grad(cost, m["params"])]
    f_simple = codegen.compile([x, y], outs, simplify=True)
    f_raw = codegen.compile([x, y], outs, simplify=False)
    assert "no rule fired" not in f_simple.source  # the two programs really differ
    xb, yb = mlp_batch(rng, 7)
    for a, b in zip(f_simple(xb, yb), f_raw(xb, yb)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_compiling_twice_gives_byte_identical_source(rng):
    m = build_mlp(rng)
    outs = [m["loss"], *m["grads"]]
    s1 = codegen.compile([m["x"], m["y"]], outs).source
    s2 = codegen.compile([m["x"], m["y"]], outs).source
    assert s1 == s2


def _mlp_source_in_fresh_graph(seed, fold):
    with sg.fresh_graph():
        m = build_mlp(np.random.default_rng(seed))
        cost = m["loss"]
        if fold:
            cost = cost + (m["logits"] * (sg.constant(np.ones(4)) * 3.0)).sum()
        return codegen.compile([m["x"], m["y"]], [cost, *sg.grad(cost, m["params"])],
                               updates={m["params"][0]: m["params"][0] * 0.5}).source


@pytest.mark.parametrize("fold", [False, True])
def test_source_is_byte_identical_across_fresh_graphs(fold):
    # a third unrelated graph in between must not shift any numbering
    a = _mlp_source_in_fresh_graph(0, fold)
    with sg.fresh_graph():
        sg.tanh(sg.placeholder("junk", shape=(3,))) * 2.0
    b = _mlp_source_in_fresh_graph(0, fold)
    assert a == b
    # parameter values are not baked into the source, so another seed gives the same text too
    assert _mlp_source_in_fresh_graph(1, fold) == a


def test_different_batch_sizes_between_calls(rng):
    m = build_mlp(rng)
    f = codegen.compile([m["x"], m["y"]], [m["loss"], *m["grads"]])
    values = [p.value for p in m["params"]]
    for n in (5, 2, 1, 9):
        xb, yb = mlp_batch(rng, n)
        loss_value, gW1, *_ = f(xb, yb)
        np.testing.assert_allclose(loss_value, numpy_mlp_loss(xb, yb, *values), rtol=1e-12)
        assert gW1.shape == (3, 5)


def test_parameters_are_read_from_value_at_call_time(rng):
    x = sg.placeholder("x", shape=("batch", 3))
    W = sg.parameter("W", value=rng.normal(size=(3, 2)))
    f = codegen.compile([x], x @ W)
    xb = rng.normal(size=(4, 3))
    r1 = f(xb)
    np.testing.assert_allclose(r1, xb @ W.value)
    W.value = W.value * 2.0  # rebinding the value
    r2 = f(xb)
    np.testing.assert_allclose(r2, 2.0 * r1)
    W.value[...] = 0.0  # mutating the array in place
    np.testing.assert_array_equal(f(xb), np.zeros((4, 2)))


# -- updates ------------------------------------------------------------------------


def test_updates_swap_two_parameters():
    a = sg.parameter("a", value=np.array([1.0, 2.0]))
    b = sg.parameter("b", value=np.array([3.0, 4.0]))
    f = codegen.compile([], [], updates={a: b, b: a})
    f()
    np.testing.assert_array_equal(a.value, [3.0, 4.0])
    np.testing.assert_array_equal(b.value, [1.0, 2.0])
    f()
    np.testing.assert_array_equal(a.value, [1.0, 2.0])
    np.testing.assert_array_equal(b.value, [3.0, 4.0])


def test_updates_swap_through_views():
    A = sg.parameter("A", value=np.array([[1.0, 2.0], [3.0, 4.0]]))
    B = sg.parameter("B", value=np.array([[5.0, 6.0], [7.0, 8.0]]))
    A0, B0 = A.value.copy(), B.value.copy()
    f = codegen.compile([], [], updates={A: B.T, B: A.T})
    f()
    np.testing.assert_array_equal(A.value, B0.T)
    np.testing.assert_array_equal(B.value, A0.T)


def test_update_with_incompatible_dtype_raises_value_error():
    n = sg.parameter("n", value=np.array([1, 2]), dtype="int64")
    with pytest.raises(ValueError, match="'n'"):
        codegen.compile([], [], updates={n: n * 0.5})


def test_updates_rotate_three_parameters_with_outputs():
    a = sg.parameter("a", value=np.array([1.0]))
    b = sg.parameter("b", value=np.array([2.0]))
    c = sg.parameter("c", value=np.array([3.0]))
    f = codegen.compile([], [a, b, c], updates={a: b, b: c, c: a})
    out = f()
    np.testing.assert_array_equal(np.concatenate(out), [1.0, 2.0, 3.0])  # values before the update
    np.testing.assert_array_equal(np.concatenate([a.value, b.value, c.value]), [2.0, 3.0, 1.0])


def test_updates_are_simultaneous():
    a = sg.parameter("a", value=np.array([2.0, 3.0]))
    b = sg.parameter("b", value=np.array([5.0, 7.0]))
    f = codegen.compile([], [], updates={a: a + b, b: a * b})
    f()
    np.testing.assert_array_equal(a.value, [7.0, 10.0])
    np.testing.assert_array_equal(b.value, [10.0, 21.0])  # uses the old a, not a + b


@pytest.mark.parametrize("order", ["v_first", "w_first"])
def test_an_in_place_step_that_is_another_updated_state_reads_its_old_value(order, load_saved):
    """{v: v*0.5 + g, w: w - v}: w's in-place step is v, itself updated; w must use the OLD v
    (updates are simultaneous), in whichever order the dict lists them, compiled and saved."""
    v = sg.state("v", value=np.array([1.0, 2.0]))
    w = sg.parameter("w", value=np.array([10.0, 20.0]))
    g = sg.placeholder("g", (2,))
    updates = {v: v * 0.5 + g, w: w - v}
    f = codegen.compile([g], [], updates=updates if order == "v_first" else dict(reversed(list(updates.items()))))
    f(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(v.value, [1.5, 2.0])
    np.testing.assert_array_equal(w.value, [9.0, 18.0])  # 10 - 1, 20 - 2: not 10 - 1.5
    f(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(v.value, [1.75, 2.0])
    np.testing.assert_array_equal(w.value, [7.5, 16.0])
    vs, ws = np.array([1.0, 2.0]), np.array([10.0, 20.0])
    load_saved(f)(np.array([1.0, 1.0]), v=vs, w=ws)
    np.testing.assert_array_equal(ws, [9.0, 18.0])


def test_sgd_update_is_applied_in_place_after_outputs(rng):
    m = build_mlp(rng)
    x, y, W1 = m["x"], m["y"], m["params"][0]
    gW1 = m["grads"][0]
    xb, yb = mlp_batch(rng, 6)
    loss_before, grad_before = codegen.compile([x, y], [m["loss"], gW1])(xb, yb)
    arr_before = W1.value
    expected = arr_before - 0.1 * grad_before

    step = codegen.compile([x, y], m["loss"], updates={W1: W1 - 0.1 * gW1})
    out = step(xb, yb)
    np.testing.assert_allclose(out, loss_before, rtol=1e-12)  # output computed with the old W1
    assert W1.value is arr_before  # same array object: updated in place
    np.testing.assert_allclose(arr_before, expected, rtol=1e-12)
    # the next call reads the updated value
    expected_loss = numpy_mlp_loss(xb, yb, *(p.value for p in m["params"]))
    np.testing.assert_allclose(step(xb, yb), expected_loss, rtol=1e-12)


def test_output_that_is_the_updated_parameter_returns_the_old_value():
    W = sg.parameter("W", value=np.array([[1.0, 2.0], [3.0, 4.0]]))
    old = W.value.copy()
    f = codegen.compile([], [W, W.T, W * 3.0], updates={W: W + 1.0})
    w_out, wt_out, w3 = f()
    np.testing.assert_array_equal(w_out, old)
    np.testing.assert_array_equal(wt_out, old.T)
    np.testing.assert_array_equal(w3, old * 3.0)
    np.testing.assert_array_equal(W.value, old + 1.0)
    assert not np.shares_memory(w_out, W.value)
    assert not np.shares_memory(wt_out, W.value)


def test_single_output_that_is_the_updated_parameter():
    W = sg.parameter("W", value=np.array([1.0, 2.0]))
    f = codegen.compile([], W, updates={W: W * 10.0})
    np.testing.assert_array_equal(f(), [1.0, 2.0])
    np.testing.assert_array_equal(f(), [10.0, 20.0])
    np.testing.assert_array_equal(W.value, [100.0, 200.0])


def test_swap_through_an_identity_elementwise_op():
    ident = sg.elementwise(lambda z: z, name="ident")
    a = sg.parameter("a", value=np.array([1.0, 2.0]))
    b = sg.parameter("b", value=np.array([3.0, 4.0]))
    f = codegen.compile([], [], updates={a: ident(b), b: ident(a)})
    f()
    np.testing.assert_array_equal(a.value, [3.0, 4.0])
    np.testing.assert_array_equal(b.value, [1.0, 2.0])


def test_output_through_an_identity_elementwise_op_sees_the_old_value():
    ident = sg.elementwise(lambda z: z, name="ident")
    W = sg.parameter("W", value=np.array([1.0, 2.0]))
    f = codegen.compile([], ident(W), updates={W: W + 1.0})
    np.testing.assert_array_equal(f(), [1.0, 2.0])
    np.testing.assert_array_equal(W.value, [2.0, 3.0])


@pytest.mark.parametrize("wrap", ["stop_gradient", "identity"])
def test_output_that_is_an_alias_of_its_input(wrap, rng):
    x = sg.placeholder("x", shape=(3,))
    fn = sg.stop_gradient if wrap == "stop_gradient" else sg.elementwise(lambda z: z, name="ident")
    f = codegen.compile([x], [fn(x * 2.0), fn(x)])
    xb = rng.normal(size=3)
    doubled, same = f(xb)
    np.testing.assert_allclose(doubled, xb * 2.0)
    np.testing.assert_allclose(same, xb)


def test_update_with_wrong_shape_raises_value_error():
    W = sg.parameter("W", value=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="W"):
        codegen.compile([], [], updates={W: sg.constant(np.zeros((3, 2)))})
    with pytest.raises(ValueError, match="W"):
        codegen.compile([], [], updates={W: W.sum(axis=0)})


@pytest.mark.parametrize("kind", ["placeholder", "constant", "op node", "string"])
def test_update_key_not_a_parameter_raises_type_error(kind):
    W = sg.parameter("W", value=np.zeros(3))
    x = sg.placeholder("x", shape=(3,))
    key = {"placeholder": x, "constant": sg.constant(np.zeros(3)), "op node": W * 2.0, "string": "W"}[kind]
    inputs = [x] if kind == "placeholder" else []
    with pytest.raises(TypeError, match=r"compile: updates keys must be parameters or state leaves, got "
                                        + re.escape(repr(key)[:80])):
        codegen.compile(inputs, [], updates={key: W + 1.0})


def test_update_with_a_constant_array_value():
    W = sg.parameter("W", value=np.zeros(3))
    arr = W.value
    codegen.compile([], [], updates={W: np.array([1.0, 2.0, 3.0])})()
    assert W.value is arr
    np.testing.assert_array_equal(arr, [1.0, 2.0, 3.0])


def test_constant_output_is_not_shared_between_calls():
    f = codegen.compile([], sg.constant(np.ones(3)))
    r = f()
    r[...] = 7.0
    np.testing.assert_array_equal(f(), np.ones(3))


# -- readable source (DESIGN.md section C) ----------------------------------------------


@pytest.fixture
def mlp_source(rng):
    m = build_mlp(rng)
    f = codegen.compile([m["x"], m["y"]], [m["loss"], *m["grads"]])
    return f.source


def test_saved_module_is_standalone_python_that_imports_only_numpy(rng, tmp_path):
    """(compile already parses .source to run it: a parse check of it could not fail.) The saved
    file parses, imports nothing but numpy and the standard library, and runs in a fresh namespace
    to the same values."""
    m = build_mlp(rng)
    f = codegen.compile([m["x"], m["y"]], [m["loss"], *m["grads"]])
    path = tmp_path / "mlp.py"
    f.save(path)
    tree = ast.parse(path.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "numpy" in imported and imported - {"numpy"} <= set(sys.stdlib_module_names), imported
    namespace = {"__name__": "mlp"}
    exec(compile(tree, str(path), "exec"), namespace)
    fn = namespace[namespace["__all__"][0]]
    xv, yv = mlp_batch(rng, 5)
    kwargs = {p.name: p.value for p in m["params"]}
    for got, want in zip(fn(xv, yv, **kwargs), f(xv, yv)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_every_statement_in_the_function_has_a_comment(mlp_source):
    fn = function_body(mlp_source)
    commented = comment_lines(mlp_source)
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    stmts = [s for s in body if not isinstance(s, ast.Return)]
    assert len(stmts) >= 10
    assert not uncommented(mlp_source, stmts, commented)


def uncommented(source, stmts, commented) -> list[str]:
    """The statements without a comment of their own, except those continuing a group of calls (a value
    computed by several calls with ``out=`` under one comment)."""
    missing, previous = [], None
    for s in stmts:
        own = any(line in commented for line in range(s.lineno, s.end_lineno + 1))
        group = (isinstance(previous, ast.Expr) and isinstance(previous.value, ast.Call)
                 and any(k.arg == "out" for k in previous.value.keywords))
        if not own and not group:
            missing.append(ast.get_source_segment(source, s))
        previous = s
    return missing


def test_every_update_statement_has_a_comment(rng):
    m = build_mlp(rng)
    W1, b1 = m["params"][:2]
    gW1, gb1 = m["grads"][:2]
    f = codegen.compile([m["x"], m["y"]], [m["loss"], W1],
                        updates={W1: W1 - 0.1 * gW1, b1: b1 - 0.1 * gb1})
    src = f.source
    fn = function_body(src, "train_step")
    commented = comment_lines(src)
    stmts = [s for s in fn.body[1:] if not isinstance(s, ast.Return)]
    assert not uncommented(src, stmts, commented)
    text = "\n".join(src.splitlines()[fn.lineno - 1:])
    assert re.search(r"^\s*W1(\[\.\.\.\] =| -=) ", text, re.M)  # written in place (`W -= d` for w - d)
    assert re.search(r"^\s*b1(\[\.\.\.\] =| -=) ", text, re.M)


def test_variables_are_named_after_the_graph(mlp_source):
    fn = function_body(mlp_source, "compute")
    assert [a.arg for a in fn.args.args] == ["x", "y"]
    assert [a.arg for a in fn.args.kwonlyargs] == ["W1", "b1", "W2", "b2"]
    names = assigned_names(fn)
    for p in ("W1", "b1", "W2", "b2"):
        assert f"grad_{p}" in names
    ret = fn.body[-1]
    assert isinstance(ret, ast.Return)
    returned = [e.id for e in ret.value.elts]
    assert returned[1:] == ["grad_W1", "grad_b1", "grad_W2", "grad_b2"]


def test_named_intermediate_node_gets_its_name_and_a_node_comment(rng):
    m = build_mlp(rng, name_hidden=True)
    src = codegen.compile([m["x"], m["y"]], [m["loss"], *m["grads"]]).source
    assert re.search(r"^\s*h1 = .*# node h1: ", src, re.M)
    assert re.search(r"^\s*grad_h1 = ", src, re.M)


def test_backward_section_is_marked_after_forward(mlp_source):
    lines = [ln.strip() for ln in mlp_source.splitlines()]
    assert "# forward" in lines and "# backward" in lines
    assert lines.index("# forward") < lines.index("# backward")
    after = lines[lines.index("# backward") + 1:]
    assert any(ln.startswith("grad_") for ln in after)
    before = lines[lines.index("# forward") + 1:lines.index("# backward")]
    assert not any(ln.startswith("grad_") for ln in before)


def test_no_random_or_sympy_style_names(mlp_source, rng):
    fn = function_body(mlp_source)
    ops = {"tanh", "add", "matmul", "logsumexp", "subtract", "mean", "multiply", "negative", "pick",
           "unpick", "add_at", "count", "divide", "exp", "sum", "broadcast_to", "transpose", "const", "buf"}
    leaves = {"x", "y", "W1", "b1", "W2", "b2", "key", "buffers"}  # key, buffers: the memory plan's prologue
    for name in assigned_names(fn):
        assert not re.fullmatch(r"x\d+|_.*|.*_\d+", name), name  # SymPy cse names, private, dedup suffix
        base = name[len("grad_"):] if name.startswith("grad_") else name
        m = re.fullmatch(r"([a-z_]+?)([1-9]\d*)", base)
        constant = re.fullmatch(r"(ones|zeros)(_(batch|\d+))+", base)  # read-only arrays of the memory plan
        assert base in leaves or constant or (m is not None and m.group(1) in ops), name


def test_forward_mode_tangents_are_named_tan(rng):
    x = sg.placeholder("x", shape=(3,))
    t = sg.placeholder("t", shape=(3,))
    (out,) = sg.jvp([sg.tanh(x).named("h")], [x], [t])
    src = codegen.compile([x, t], out).source
    ast.parse(src)
    assert re.search(r"^\s*tan_h = ", src, re.M)
    xb, tb = rng.normal(size=3), rng.normal(size=3)
    np.testing.assert_allclose(codegen.evaluate(out, {x: xb, t: tb}), tb * (1 - np.tanh(xb) ** 2))


def test_forward_mode_code_is_not_labelled_backward():
    x = sg.placeholder("x", shape=(3,))
    t = sg.placeholder("t", shape=(3,))
    (out,) = sg.jvp([sg.tanh(x)], [x], [t])
    src = codegen.compile([x, t], out).source
    assert "differentiation: forward" in src
    assert "# backward" not in src


def test_compile_pauses_the_garbage_collector_and_restores_its_state():
    import gc

    x = sg.placeholder("x", (3,))
    assert gc.isenabled()
    codegen.compile([x], sg.tanh(x))
    assert gc.isenabled()
    gc.disable()
    try:
        codegen.compile([x], sg.exp(x))
        assert not gc.isenabled()  # a caller's choice is left alone
    finally:
        gc.enable()
    with pytest.raises(TypeError, match=r"compile: updates keys must be parameters or state leaves, "
                                        r"got <Node placeholder 'x'"):
        codegen.compile([x], [sg.tanh(x)], updates={x: x})  # an error inside still restores it
    assert gc.isenabled()

"""The memory plan (buffers reused with out=) computes exactly what plain code computes."""

import re

import numpy as np
import pytest

import codegen
import symgraph as sg


def mlp(rng, dtype="float64", hidden_activation=sg.tanh):
    x = sg.placeholder("x", shape=("batch", 6), dtype=dtype)
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W1 = sg.parameter("W1", value=rng.normal(size=(6, 8)) * 0.5, dtype=dtype)
    b1 = sg.parameter("b1", value=rng.normal(size=8) * 0.1, dtype=dtype)
    W2 = sg.parameter("W2", value=rng.normal(size=(8, 4)) * 0.5, dtype=dtype)
    b2 = sg.parameter("b2", value=rng.normal(size=4) * 0.1, dtype=dtype)
    h = hidden_activation(x @ W1 + b1)
    loss = sg.softmax_cross_entropy(h @ W2 + b2, y)
    return x, y, loss, [W1, b1, W2, b2]


def batches(rng, sizes, dtype="float64"):
    return [(rng.normal(size=(n, 6)).astype(dtype), rng.integers(0, 4, size=n)) for n in sizes]


OPTIMIZERS = {
    "sgd": lambda: sg.optim.SGD(0.3),
    "momentum": lambda: sg.optim.Momentum(0.1, nesterov=True),
    "adam": lambda: sg.optim.Adam(0.01),
}


def planned_matches_plain(leaves, build, run):
    """Compile with and without the memory plan (``build(plan)``), each from the same starting values
    of ``leaves``; the arrays ``run(step)`` lists must agree. Returns the planned step."""
    start = [leaf.value.copy() for leaf in leaves]
    steps, results = {}, {}
    for plan in (True, False):
        for leaf, value in zip(leaves, start):
            leaf.value = value.copy()
        steps[plan] = build(plan)
        assert ("out=buf" in steps[plan].source) == plan
        results[plan] = run(steps[plan])
    for planned, plain in zip(results[True], results[False]):
        for a, b in zip(planned, plain):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    return steps[True]


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("activation", [sg.tanh, sg.relu, sg.sigmoid], ids=["tanh", "relu", "sigmoid"])
def test_planned_and_plain_train_steps_agree_across_batch_sizes(opt, activation, rng):
    x, y, loss, params = mlp(rng, hidden_activation=activation)
    updates = OPTIMIZERS[opt]().updates(loss, params)
    leaves = list(updates)

    def run(step):
        trace = []
        for xb, yb in batches(np.random.default_rng(1), [5, 3, 5, 7, 3]):  # sizes come back: buffers reused
            trace.append([np.array(v, copy=True) for v in step(xb, yb)])
            trace.append([leaf.value.copy() for leaf in leaves])
        return trace

    planned_matches_plain(leaves, lambda plan: codegen.compile(
        [x, y], [loss, *sg.grad(loss, params)], updates=updates, memory_plan=plan), run)


def test_returned_arrays_are_not_buffers(rng):
    x, y, loss, params = mlp(rng)
    step = codegen.compile([x, y], [loss, *sg.grad(loss, params)], updates=sg.optim.SGD(0.1).updates(loss, params))
    (xb, yb), (xc, yc) = batches(rng, [5, 5])
    first = step(xb, yb)
    kept = [np.array(v, copy=True) for v in first]
    step(xc, yc)  # would overwrite the first results if they lived in buffers
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b)


def test_buffers_are_allocated_once_per_input_size_and_reused(rng):
    x, y, loss, params = mlp(rng)
    step = codegen.compile([x, y], loss, updates=sg.optim.SGD(0.1).updates(loss, params))
    src = step.source
    assert re.search(r"np\.dot\(x, W1, out=buf\d+\)", src)
    assert re.search(r"np\.add\((\w+), b1, out=buf\d+\)", src)  # the bias added in the matmul's buffer
    for xb, yb in batches(rng, [5, 5, 3, 5, 3]):
        step(xb, yb)
    store = step._fn.__globals__["_THREAD"].cache
    assert sorted(store) == [(3,), (5,)]
    first = [id(b) for b in store[(5,)]]
    step(*batches(rng, [5])[0])
    assert [id(b) for b in store[(5,)]] == first


def test_float32_buffers_stay_float32(rng):
    x, y, loss, params = mlp(rng, dtype="float32")
    step = codegen.compile([x, y], loss, updates=sg.optim.SGD(0.1).updates(loss, params))
    assert "float64" not in step.source.split("def _allocate")[1].split("def ")[0]
    xb, yb = batches(rng, [4], "float32")[0]
    assert np.asarray(step(xb, yb)).dtype == np.float32
    assert all(p.value.dtype == np.float32 for p in params)


def test_saved_module_with_buffers_runs_standalone(rng, tmp_path):
    import importlib.util

    x, y, loss, params = mlp(rng)
    step = codegen.compile([x, y], loss, updates=sg.optim.SGD(0.1).updates(loss, params), name="train_step")
    path = step.save(tmp_path / "step.py")
    spec = importlib.util.spec_from_file_location("saved_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    values = {p.name: p.value.copy() for p in params}
    xb, yb = batches(rng, [5])[0]
    expected = step(xb, yb)
    got = module.train_step(xb, yb, **values)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    for p in params:
        np.testing.assert_allclose(values[p.name], p.value, rtol=1e-12)


def tied(rng):
    """An autoencoder whose one weight matrix is read twice: by the encoder and, transposed, by the
    decoder, so its update must wait for both products and both of their gradients."""
    x = sg.placeholder("x", shape=("batch", 6))
    W = sg.parameter("W", value=rng.normal(size=(6, 3)) * 0.5)
    c = sg.parameter("c", value=rng.normal(size=6) * 0.1)
    loss = sg.mse(sg.tanh(x @ W) @ W.T + c, x)
    return x, loss, [W, c]


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model", ["mlp", "tied"])
def test_updates_moved_up_to_where_nothing_reads_the_parameter_agree_with_updates_at_the_end(opt, model, rng):
    if model == "mlp":
        x, y, loss, params = mlp(rng)
        inputs, data = [x, y], batches(np.random.default_rng(2), [5, 3, 5])
    else:
        x, loss, params = tied(rng)
        inputs, data = [x], [(xb,) for xb, _ in batches(np.random.default_rng(2), [5, 3, 5])]
    updates = OPTIMIZERS[opt]().updates(loss, params)
    leaves = list(updates)
    step = planned_matches_plain(
        leaves, lambda plan: codegen.compile(inputs, loss, updates=updates, memory_plan=plan, early_updates=plan),
        lambda step: [[float(step(*batch)), *(leaf.value.copy() for leaf in leaves)] for batch in data])
    lines = [ln.strip() for ln in step.source.splitlines()]
    moved = [ln for ln in lines if ln.endswith("nothing below reads it")]
    if opt == "sgd":
        assert len(moved) == len(params), step.source  # every SGD update runs as soon as it can
    for ln in moved:  # ... after every line that reads the parameter
        name = ln.split()[0]
        after = lines[lines.index(ln) + 1:]
        assert not any(re.search(rf"\b{name}\b", a.split("#")[0]) for a in after if a), (name, step.source)


def test_buffers_of_different_shapes_share_a_block_when_never_live_together(rng):
    x = sg.placeholder("x", shape=("batch", 20))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    sizes = [20, 16, 12, 5]
    params, h = [], x
    for i, (m, n) in enumerate(zip(sizes, sizes[1:])):
        W = sg.parameter(f"W{i + 1}", value=rng.normal(size=(m, n)) / np.sqrt(m))
        b = sg.parameter(f"b{i + 1}", value=np.zeros(n))
        params += [W, b]
        h = h @ W + b
        h = sg.relu(h) if i < len(sizes) - 2 else h
    loss = sg.softmax_cross_entropy(h, y)
    updates = sg.optim.SGD(0.5).updates(loss, params)
    data = [(rng.normal(size=(n, 20)), rng.integers(0, 5, size=n)) for n in (7, 3, 7)]
    step = planned_matches_plain(
        params, lambda plan: codegen.compile([x, y], loss, updates=updates, memory_plan=plan, early_updates=plan),
        lambda step: [[float(step(xb, yb)), *(p.value.copy() for p in params)] for xb, yb in data])
    # with early updates the weight gradients (20, 16), (16, 12), (12, 5) are dead once applied: one block holds them
    block = re.search(r"^    (block\d+) = np\.empty\(20 \* 16, dtype=np\.float64\)  # (.*)$", step.source, re.M)
    assert block is not None, step.source
    views = re.findall(rf"^        {block.group(1)}.*# (buf\d+)$", step.source, re.M)
    listed = block.group(2).split(":")[0].split(", ")
    assert len(views) >= 3 and sorted(views) == sorted(listed)


def test_cross_entropy_train_step_builds_no_one_hot_matrix(rng):
    x, y, loss, params = mlp(rng, hidden_activation=sg.relu)
    step = codegen.compile([x, y], loss, updates=sg.optim.SGD(0.1).updates(loss, params))
    src = step.source
    for absent in ("_one_hot(", "_unpick(", "np.eye("):
        assert absent not in src, absent
    assert re.search(r"= _add_at\(\w+, -\w+, y, out=buf\d+\)", src), src  # -1/N added at each label, in place
    assert re.search(r"np\.exp\(add2 - logsumexp1\[\.\.\., None\]\)", src)  # the forward logsumexp, reused


def test_binary_cross_entropy_gradient_reuses_the_losss_softplus(rng):
    x = sg.placeholder("x", shape=("batch", 3))
    t = sg.placeholder("t", shape=("batch", 1))
    w = sg.parameter("w", value=rng.normal(size=(3, 1)))
    loss = sg.binary_cross_entropy(x @ w, t)
    step = codegen.compile([x, t], loss, updates=sg.optim.SGD(0.5).updates(loss, [w]))
    assert "_sigmoid" not in step.source and step.source.count("np.logaddexp(") == 1, step.source
    xb, tb = rng.normal(size=(6, 3)), rng.uniform(size=(6, 1))
    w0 = w.value.copy()
    z = xb @ w0
    expected = w0 - 0.5 * xb.T @ ((1 / (1 + np.exp(-z)) - tb) / z.size)
    step(xb, tb)
    np.testing.assert_allclose(w.value, expected, rtol=1e-12)


# -- random training graphs: outputs of every kind, the memory plan on and off ----------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXTRA_OUTPUTS = {  # outputs a user may ask of a training step, views of updated parameters among them
    "W": lambda W, b, h, g: W, "W.T": lambda W, b, h, g: W.T, "W[0]": lambda W, b, h, g: W[0],
    "W[:, 1:3]": lambda W, b, h, g: W[:, 1:3], "reshape(W)": lambda W, b, h, g: sg.reshape(W, (-1,)),
    "expand_dims(W)": lambda W, b, h, g: sg.expand_dims(W, 0), "b": lambda W, b, h, g: b,
    "b * 2": lambda W, b, h, g: b * 2.0, "h": lambda W, b, h, g: h, "h.T": lambda W, b, h, g: h.T,
    "grad W": lambda W, b, h, g: g, "grad W.T": lambda W, b, h, g: g.T, "W - grad": lambda W, b, h, g: W - g,
}
OPTIMIZER_CHOICES = {**OPTIMIZERS, "rmsprop": lambda: sg.optim.RMSProp(0.01), "adagrad": lambda: sg.optim.AdaGrad(0.1)}


@settings(max_examples=60, deadline=None)
@given(extras=st.lists(st.sampled_from(sorted(EXTRA_OUTPUTS)), min_size=1, max_size=4, unique=True),
       opt=st.sampled_from(sorted(OPTIMIZER_CHOICES)), activation=st.sampled_from(["tanh", "relu", "sigmoid"]),
       early=st.booleans(), seed=st.integers(0, 2**16))
def test_random_training_graphs_agree_with_and_without_the_memory_plan(extras, opt, activation, early, seed):
    rng = np.random.default_rng(seed)
    with sg.fresh_graph():
        x = sg.placeholder("x", shape=("batch", 3))
        y = sg.placeholder("y", shape=("batch",), dtype="int64")
        W = sg.parameter("W", value=rng.normal(size=(3, 4)))
        b = sg.parameter("b", value=rng.normal(size=4))
        V = sg.parameter("V", value=rng.normal(size=(4, 2)))
        h = getattr(sg, activation)(x @ W + b)
        loss = sg.softmax_cross_entropy(h @ V, y)
        updates = OPTIMIZER_CHOICES[opt]().updates(loss, [W, b, V])
        (g,) = sg.grad(loss, [W])
        outputs = [loss] + [EXTRA_OUTPUTS[e](W, b, h, g) for e in extras]
        leaves = list(updates)
        data = [(rng.normal(size=(n, 3)), rng.integers(0, 2, size=n)) for n in (5, 5, 3)]

        def run(step):
            out = [[np.array(v, copy=True) for v in step(xv, yv)] for xv, yv in data]
            return [*out, [leaf.value.copy() for leaf in leaves]]

        planned_matches_plain(leaves, lambda plan: codegen.compile([x, y], outputs, updates=updates,
                                                                    memory_plan=plan, early_updates=early), run)


def test_an_output_that_views_an_updated_parameter_shows_its_value_before_the_step(rng):
    x, y, loss, params = mlp(rng)
    W1 = params[0]
    start = W1.value.copy()
    f = codegen.compile([x, y], [loss, W1.T, W1[0], sg.reshape(W1, (-1,))],
                        updates=sg.optim.SGD(0.5).updates(loss, params), early_updates=True)
    xv, yv = batches(rng, [4])[0]
    _, t, row, flat = f(xv, yv)
    np.testing.assert_array_equal(t, start.T)
    np.testing.assert_array_equal(row, start[0])
    np.testing.assert_array_equal(flat, start.reshape(-1))
    assert not np.array_equal(W1.value, start)  # the step did happen


@pytest.mark.parametrize("early", [False, True], ids=["atomic", "early_updates"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_a_step_that_fails_midway_changes_no_parameter_unless_updates_run_early(opt, early):
    """log's derivative 1/z overflows in the backward pass at a subnormal z, after the gradients of the
    second layer are known: an error raised there (np.errstate) leaves every parameter and state as it
    was, because updates run at the end; with early_updates=True the second layer has moved already."""
    x = sg.placeholder("x", shape=("batch", 1))
    t = sg.placeholder("t", shape=("batch", 1))
    W1 = sg.parameter("W1", value=np.ones((1, 1)))
    W2 = sg.parameter("W2", value=np.full((1, 1), 0.5))
    b2 = sg.parameter("b2", value=np.zeros(1))
    loss = sg.mse(sg.log(x @ W1) @ W2 + b2, t)
    updates = OPTIMIZERS[opt]().updates(loss, [W1, W2, b2])
    leaves = list(updates)
    step = codegen.compile([x, t], loss, updates=updates, early_updates=early)
    step(np.array([[2.0]]), np.array([[1.0]]))  # optimizer state leaves its initial values
    before = [leaf.value.copy() for leaf in leaves]
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        step(np.array([[1e-310]]), np.array([[1.0]]))
    changed = [leaf.name for leaf, value in zip(leaves, before) if not np.array_equal(leaf.value, value)]
    if early and opt == "sgd":  # momentum and Adam steps read their state: those updates never move
        assert "W2" in changed and "W1" not in changed
    else:
        assert changed == []


def _cached_sizes(f):
    """The input sizes this thread holds buffers for, least recently used first."""
    return list(f._fn.__globals__["_THREAD"].cache)


@pytest.mark.parametrize("limit", [1, 3, None])
def test_buffers_are_kept_for_the_most_recently_used_input_sizes_only(limit, rng):
    x, y, loss, params = mlp(rng)
    f = codegen.compile([x, y], [loss, *sg.grad(loss, params)], buffer_cache=limit)
    assert f"MAX_SIZES = {limit}" in f.source
    reference = codegen.compile([x, y], [loss, *sg.grad(loss, params)], memory_plan=False)
    for n in [1, 2, 3, 4, 5, 2]:
        xb, yb = batches(rng, [n])[0]
        for a, b in zip(f(xb, yb), reference(xb, yb)):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    expected = [(1,), (3,), (4,), (5,), (2,)]  # 2 was used again last
    assert _cached_sizes(f) == (expected if limit is None else expected[-limit:])


def test_buffer_cache_must_be_positive():
    x = sg.placeholder("x", shape=(3,))
    with pytest.raises(ValueError, match="buffer_cache must be a positive int or None, got 0"):
        codegen.compile([x], sg.exp(x), buffer_cache=0)


def test_calls_from_several_threads_at_once_are_each_right(rng):
    import threading

    x, y, loss, params = mlp(rng)
    f = codegen.compile([x, y], [loss, *sg.grad(loss, params)])
    data = batches(rng, [16] * 8)  # one batch size: every thread wants the same buffers
    expected = [[a.copy() for a in f(xb, yb)] for xb, yb in data]
    wrong, start = [], threading.Barrier(4)

    def work(k):
        start.wait()
        for i in range(200):
            j = (i + k) % len(data)
            got = f(*data[j])
            if not all(np.array_equal(a, b) for a, b in zip(got, expected[j])):
                wrong.append((k, i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_a_possible_view_of_two_buffered_values_is_deleted_once():
    """einsum may return a view of either operand, so its value is bound to both operands' buffers;
    overwriting the second buffer must not ``del`` the name again (it was an UnboundLocalError)."""
    x = sg.placeholder("x", (4,))
    d = x - x
    m = np.eye(4) * 4.0 + 0.3 * sg.tanh(sg.outer(d, d))
    y = sg.inv(m)
    (jt,) = sg.jvp([y], [x], [np.ones(4)])
    (g,) = sg.grad((y * np.arange(16.0).reshape(4, 4)).sum(), [x])
    f = codegen.compile([x], [y, jt, g], simplify=False)
    got = f(np.full(4, 0.5))
    np.testing.assert_allclose(got[0], np.eye(4) / 4)
    np.testing.assert_allclose(got[1], np.zeros((4, 4)))
    np.testing.assert_allclose(got[2], np.zeros(4))
    for line in f.source.splitlines():
        if line.strip().startswith("del "):
            names = line.split("#")[0].strip()[4:].split(", ")
            assert len(names) == len(set(names)), line


# -- the plan of one step, line by line: buffer reuse, blocks, dels, where the updates go ---------------
def _relu_step(rng, **options):
    """The relu MLP's SGD step, returning [loss, W1]: W1 is read at the end (returned), the others are not."""
    x, y, loss, params = mlp(rng, hidden_activation=sg.relu)
    updates = sg.optim.SGD(0.1).updates(loss, params)
    return (lambda **more: codegen.compile([x, y], [loss, params[0]], updates=updates, **{**options, **more})), params


def _memory(source):
    """{buffer: the memory it is (a block it shares, or its own)} and {block: its members}, from _allocate."""
    allocate = source[source.index("def _allocate"):source.index("_THREAD =")]
    memory = {buf: (m.group(1) or buf) for m in re.finditer(r"^ {8}(block\d+)?.*,  # (buf\d+)$", allocate, re.M)
              for buf in [m.group(2)]}
    blocks = {b: members.split(", ") for b, members in
              re.findall(r"^    (block\d+) = np\.empty\(.*\)  # (.*): never live at the same time$", allocate, re.M)}
    return memory, blocks


def _body(source):
    return source.split("def train_step")[1].splitlines()


@pytest.mark.parametrize("early", [False, True], ids=["atomic", "early_updates"])
def test_an_elementwise_op_writes_into_the_buffer_of_the_input_it_reads_for_the_last_time(early, rng):
    build, params = _relu_step(rng, early_updates=early)
    source = build().source
    dot = re.search(r"matmul1 = np\.dot\(x, W1, out=(buf\d+)\)", source)
    assert dot, source
    buf = dot.group(1)
    assert f"add1 = np.add(matmul1, b1, out={buf})" in source  # elementwise: into matmul1's buffer
    assert f"relu1 = np.maximum(add1, zeros_batch_8, out={buf})" in source
    second = re.search(r"matmul2 = np\.dot\(relu1, W2, out=(buf\d+)\)", source).group(1)
    assert second != buf  # a matmul never writes into the buffer it reads
    # the truth values of relu's derivative go to a scratch buffer of booleans, not of floats
    scratch = re.search(r"np\.greater\(relu1, zeros_batch_8, out=(buf\d+)\)", source).group(1)
    assert f"np.empty((batch, 8), dtype=np.bool_),  # {scratch}" in source
    planned_matches_plain(params, (lambda plan: build(memory_plan=plan, early_updates=early and plan)),
                          lambda f: [[np.array(v, copy=True) for v in f(xb, yb)] + [p.value.copy() for p in params]
                                     for xb, yb in batches(np.random.default_rng(1), [5, 3, 5])])


def test_buffers_never_live_at_the_same_time_share_blocks_of_two_or_more(rng):
    build, _ = _relu_step(rng)
    memory, blocks = _memory(build().source)
    assert [len(m) for m in blocks.values()] == [2]  # the atomic step: (batch,) and (batch, 8) values
    memory, blocks = _memory(build(early_updates=True).source)
    # early updates free each weight gradient once applied: (4,), (8, 4), (8,), (6, 8) share one block
    assert sorted(len(m) for m in blocks.values()) == [2, 4], blocks
    for block, members in blocks.items():
        assert all(memory[b] == block for b in members)
    # and three have memory of their own: the (batch, 8) and (batch, 4) values and the boolean scratch
    assert sum(m == b for b, m in memory.items()) == 3


@pytest.mark.parametrize("early", [False, True], ids=["atomic", "early_updates"])
def test_the_names_bound_to_a_buffer_are_deleted_when_it_takes_a_new_value(early, rng):
    build, _ = _relu_step(rng, early_updates=early)
    source = build().source
    memory, _ = _memory(source)
    lines = _body(source)
    bound: dict[str, dict[str, str]] = {}  # memory -> {name: its buffer}
    checked = 0
    for k, line in enumerate(lines):
        named = re.match(r"^ +(\w+) = .*\bout=(buf\d+)\)(?:  +#.*)?$", line)
        if not named:
            continue
        target, buf = named.groups()
        stale = bound.pop(memory[buf], {})
        if stale:
            dels = re.match(r"^ +del ([\w, ]+?) +# (.*)$", lines[k + 1])
            assert dels and set(dels.group(1).split(", ")) == set(stale), (line, lines[k + 1])
            others = sorted(set(stale.values()) - {buf})
            where = f"{buf}, sharing {memory[buf]} with {', '.join(others)}," if others else buf
            assert dels.group(2) == f"{where} now holds {target}", lines[k + 1]
            checked += 1
        else:
            assert not lines[k + 1].strip().startswith("del "), (line, lines[k + 1])
        bound[memory[buf]] = {target: buf}
    assert checked >= 6  # the step reuses its buffers (7 times in this step)
    if early:
        assert any("sharing block" in line for line in lines)


def test_updates_move_up_unless_something_reads_the_parameter_at_the_end(rng):
    build, params = _relu_step(rng, early_updates=True)
    source = build().source
    moved = re.findall(r"^ +(\w+) -= \w+ +# update \1 here: nothing below reads it$", source, re.M)
    assert sorted(moved) == ["W2", "b1", "b2"], source  # W1 is returned: its update waits for the copy
    tail = source.split("# updates:")[1]
    assert "W1_out = W1.copy()  # a copy for the caller\n    W1 -= grad_W1  # update W1 in place" in tail, tail
    assert "return mean1, W1_out" in tail
    W1 = params[0]
    start = W1.value.copy()
    xb, yb = batches(rng, [5])[0]
    _, returned = build()(xb, yb)
    np.testing.assert_array_equal(returned, start)
    assert not np.array_equal(W1.value, start)
    # the memory plan off prints plain code: every update at the end, early_updates or not
    plain = build(memory_plan=False).source
    assert "nothing below reads it" not in plain and plain.count("update W") == 2 and plain.count("update b") == 2


def test_a_state_update_listed_before_a_parameter_does_not_keep_it_from_moving_up():
    g = sg.placeholder("g", shape=(3,))
    s = sg.state("s", np.array([1.0, 2.0, 3.0]))
    w = sg.parameter("w", np.array([0.5, -1.0, 2.0]))
    f = codegen.compile([g], sg.sum(g * w), updates={s: s * g, w: w - 0.1 * g}, early_updates=True)
    assert re.search(r"^ +w -= \w+ +# update w here: nothing below reads it$", f.source, re.M), f.source
    f(np.array([1.0, 2.0, -1.0]))
    np.testing.assert_allclose(w.value, [0.4, -1.2, 2.1], rtol=1e-15)
    np.testing.assert_array_equal(s.value, [1.0, 4.0, -3.0])


def test_a_step_or_new_value_that_is_a_state_is_copied_before_any_update_writes():
    g = sg.placeholder("g", shape=(3,))
    s = sg.state("s", np.array([1.0, 2.0, 3.0]))
    w = sg.parameter("w", np.array([0.5, -1.0, 2.0]))
    f = codegen.compile([g], sg.sum(g * w), updates={s: s * g, w: w - s})  # w's step is s itself
    assert "step_w = s.copy()  # read before any write" in f.source, f.source
    f(np.array([1.0, 2.0, -1.0]))
    np.testing.assert_array_equal(w.value, [-0.5, -3.0, -1.0])  # the old s
    np.testing.assert_array_equal(s.value, [1.0, 4.0, -3.0])
    a = sg.state("a", np.array([1.0, 2.0]))
    b = sg.state("b", np.array([3.0, 4.0]))
    f = codegen.compile([g], sg.sum(g), updates={a: b, b: a})  # a swap
    assert re.search(r"new_[ab] = [ab]\.copy\(\)  # read before any write", f.source), f.source
    assert re.search(r"^ +([ab])\[\.\.\.\] = new_\1  # update \1$", f.source, re.M), f.source  # not in place: copied
    f(np.zeros(3))
    np.testing.assert_array_equal(a.value, [3.0, 4.0])
    np.testing.assert_array_equal(b.value, [1.0, 2.0])


@pytest.mark.parametrize("early", [False, True], ids=["atomic", "early_updates"])
def test_a_folded_gemm_update_says_so(early, rng, monkeypatch):
    from codegen.backends.numpy import NumPyPrinter

    monkeypatch.setattr(NumPyPrinter, "gemm_fold_entries", 1)  # fold even the small MLP's updates
    x, y, loss, params = mlp(rng)
    updates = sg.optim.SGD(0.1).updates(loss, params)
    build = lambda plan: codegen.compile([x, y], loss, updates=updates, memory_plan=plan,  # noqa: E731
                                         early_updates=early and plan)
    source = planned_matches_plain(params, build, lambda f: [[float(f(xb, yb)), *(p.value.copy() for p in params)]
                                                            for xb, yb in batches(np.random.default_rng(1), [5, 3])]).source
    how = "W1 -= x.T @ grad_add1: one GEMM adds the product into W1"
    want = f"# update W1 here: nothing below reads it ({how})" if early else f"# update W1 in place: {how}"
    assert f"{want}\n    _gemm_update(W1, x.T, grad_add1, -1.0)" in source, source


def test_a_returned_value_printed_as_its_input_is_still_copied_out_of_its_buffer():
    # unsimplified, stop_gradient prints as its input: its memory is that input's buffer
    x = sg.placeholder("x", ("n", 3))
    A = sg.parameter("A", np.arange(9.0).reshape(3, 3) / 10)
    h = sg.exp(x @ A)
    f = codegen.compile([x], [sg.stop_gradient(h), sg.sum(h * 2.0)], simplify=False)
    assert "out=buf" in f.source
    first = f(np.ones((2, 3)))[0]
    kept = first.copy()
    f(np.full((2, 3), -1.0))  # would overwrite the first result if it were the buffer
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_allclose(kept, np.exp(np.ones((2, 3)) @ A.value), rtol=1e-15)


def test_a_value_written_on_the_line_that_last_reads_another_shape_gets_memory_of_its_own(rng):
    # h1 (n, 8) is read for the last time by the matmul that writes h2 (n, 4): live on the same line,
    # so the two buffers may not share a block (the matmul would read what it writes)
    x = sg.placeholder("x", ("n", 6))
    A = sg.parameter("A", rng.normal(size=(6, 8)))
    B = sg.parameter("B", rng.normal(size=(8, 4)))
    h1 = sg.tanh(x @ A)
    out = sg.sum(sg.exp(h1 @ B) * 2.0)
    f = codegen.compile([x], out)
    plain = codegen.compile([x], out, memory_plan=False)
    assert "out=buf" in f.source and "block" not in f.source, f.source
    for n in (3, 5):
        xv = rng.normal(size=(n, 6))
        np.testing.assert_allclose(f(xv), plain(xv), rtol=1e-13)


def test_a_scratch_buffer_that_held_a_named_value_deletes_the_name():
    w = sg.parameter("w", np.ones(2))
    cost = (w * w).sum()
    f = codegen.compile([], cost, updates=sg.optim.AdamW(0.01).updates(cost))
    assert re.search(r"^ +del grad_w +# buf\d+ is scratch space for the line above$", f.source, re.M), f.source


# -- the mutants left open by the first mutation run (tests/MUTANTS.md, codegen/memory.py) -----------
def test_a_matmul_never_writes_into_the_buffer_of_an_input_it_reads_for_the_last_time(rng):
    """np.dot(a, b, out=a's buffer) would overwrite a while reading it: only elementwise ops may take an
    input's buffer on the line that reads it last."""
    x, W1, W2 = sg.placeholder("x", (4, 5)), sg.placeholder("W1", (5, 5)), sg.placeholder("W2", (5, 5))
    f = codegen.compile([x, W1, W2], [sg.sum(sg.tanh(sg.tanh(x @ W1) @ W2))])
    assert "tanh1 = np.tanh(matmul1, out=buf1)" in f.source  # elementwise: the input's buffer
    assert "matmul2 = np.dot(tanh1, W2, out=buf2)" in f.source  # a product: a buffer of its own
    vx, v1, v2 = rng.normal(size=(4, 5)), rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    np.testing.assert_allclose(f(vx, v1, v2)[0], np.tanh(np.tanh(vx @ v1) @ v2).sum())


def test_a_returned_value_that_no_update_or_later_call_can_change_is_not_copied():
    """Only a returned array that is a buffer, a state, a parameter or a constant is copied for the caller."""
    x, W = sg.placeholder("x", (4, 5)), sg.placeholder("W", (5, 5))
    f = codegen.compile([x, W], [x @ W, x.T])
    assert ".copy()" not in f.source
    assert "return matmul1, transpose1" in f.source


def test_overlaps_counts_intervals_that_touch_at_an_end():
    """Live intervals (first, last) include both ends: a value written on the line where another is read
    for the last time overlaps it."""
    from codegen.memory import _overlaps

    assert _overlaps([(3, 5)], (1, 3)) and _overlaps([(3, 5)], (5, 7)) and _overlaps([(0, 0)], (0, 0))
    assert not _overlaps([(3, 5)], (1, 2)) and not _overlaps([(3, 5)], (6, 8))
    assert _overlaps([(0, 1), (4, 6)], (2, 4)) and not _overlaps([(0, 1), (4, 6)], (2, 3))


def test_the_del_before_a_shared_block_is_rewritten_names_every_buffer_whose_names_it_drops():
    from codegen.memory import MemoryPlan

    plan = MemoryPlan.__new__(MemoryPlan)  # _unbind reads only the blocks
    plan.shared = {b: ("block1", ["buf1", "buf2", "buf3"]) for b in ("buf1", "buf2", "buf3")}
    out, bound = [], {"block1": {"a": "buf1", "b": "buf2", "c": "buf2"}}
    assert plan._unbind(out, bound, "buf3", "now holds d", "forward") == "block1"
    (st,) = out
    assert (st.target, st.comment) == ("a, b, c", "buf3, sharing block1 with buf1, buf2, now holds d")


def test_a_returned_identity_of_a_buffered_value_is_copied_out_of_the_buffer(rng):
    """An op printed as its input (here a user's identity function, which declares no view) is an alias:
    the returned array is the buffer of tanh1, so the caller gets a copy the next call cannot change."""
    x, W = sg.placeholder("x", (4, 5)), sg.placeholder("W", (5, 5))
    identity = sg.elementwise(lambda a: a, name="identity")
    f = codegen.compile([x, W], [identity(sg.tanh(x @ W))], simplify=False)
    assert "tanh1_out = tanh1.copy()  # a copy for the caller" in f.source
    vx, vW = rng.normal(size=(4, 5)), rng.normal(size=(5, 5))
    (first,) = f(vx, vW)
    f(2 * vx, vW)
    np.testing.assert_allclose(first, np.tanh(vx @ vW))


def test_one_scratch_buffer_serves_every_relu_derivative_of_one_shape():
    """A lowered line's scratch buffer is free again after its line: the truth values of four relu
    derivatives of one shape share one boolean buffer (the pool is searched down to its first entry)."""
    x, y = sg.placeholder("x", ("batch", 6)), sg.placeholder("y", ("batch",), dtype="int64")
    h = x
    for i in range(4):
        h = sg.relu(h @ sg.parameter(f"W{i}", value=np.full((6, 6), 0.1)))
    loss = sg.softmax_cross_entropy(h @ sg.parameter("V", value=np.full((6, 3), 0.1)), y)
    f = codegen.compile([x, y], loss, updates=sg.optim.SGD(0.1).updates(loss))
    scratch = re.findall(r"np\.greater\(relu(\d), zeros_batch_6, out=(buf\d+)\)", f.source)
    assert [k for k, _ in scratch] == ["4", "3", "2", "1"] and len({b for _, b in scratch}) == 1, scratch


def _code_lines(f) -> list[str]:
    return [line.split("#")[0].strip() for line in f.source[f.source.index("# forward"):].splitlines()
            if line.split("#")[0].strip()]


def test_where_early_updates_go_when_the_step_reads_no_line_or_only_the_first():
    """``A -= c`` (a step computed by no line, A read by none) stays at the end, and does not stop the
    updates listed after it from moving; a step computed by the first line moves up to just after it."""
    x, c = sg.placeholder("x", (4, 3)), sg.placeholder("c", (3, 3))
    W, A = sg.parameter("W", value=np.full((3, 3), 0.5)), sg.parameter("A", value=np.full((3, 3), 2.0))
    loss = sg.sum(sg.tanh(x @ W))
    (g,) = sg.grad(loss, [W])
    body = _code_lines(codegen.compile([x, c], loss, updates={A: A - c, W: W - 0.1 * g}, early_updates=True))
    assert body[-2:] == ["A -= c", "return sum1"]
    assert body.index("W -= multiply1") == body.index("multiply1 = np.multiply(0.1, grad_W, out=buf2)") + 2

    with sg.fresh_graph():
        x, c = sg.placeholder("x", (4, 3)), sg.placeholder("c", (3, 3))
        A = sg.parameter("A", value=np.full((3, 3), 2.0))
        step = sg.tanh(c) * 2.0
        f = codegen.compile([x, c], sg.sum(step) + sg.sum(x), updates={A: A - step}, early_updates=True)
    assert _code_lines(f)[:4] == ["np.tanh(c, out=buf1)", "multiply1 = np.multiply(buf1, 2.0, out=buf1)",
                            "A -= multiply1", "add1 = np.add.reduce(multiply1, axis=None) + np.add.reduce(x, axis=None)"]
    vx, vc = np.ones((4, 3)), np.full((3, 3), 0.5)
    assert float(f(vx, vc)) == pytest.approx(9 * 2 * np.tanh(0.5) + 12)
    np.testing.assert_allclose(A.value, 2.0 - 2 * np.tanh(0.5))


def test_a_step_that_views_a_state_keeps_its_update_at_the_end():
    """``W -= V.T`` with V updated too: the step reads a state (through a view), so W's update waits for
    the end, where the step is copied before V is written."""
    x = sg.placeholder("x", (4, 3))
    W, V = sg.parameter("W", value=np.full((3, 3), 0.5)), sg.parameter("V", value=np.eye(3))
    f = codegen.compile([x], sg.sum(sg.tanh(x @ W)), updates={V: V * 0.5, W: W - V.T}, early_updates=True)
    assert _code_lines(f)[-4:] == ["step_W = transpose1.copy()", "V[...] = new_V", "W -= step_W", "return sum1"]
    # the same with a step printed as the state itself (stop_gradient is an alias: it reads V, not a line)
    f = codegen.compile([x], sg.sum(sg.tanh(x @ W)), updates={V: V * 0.5, W: W - sg.stop_gradient(V)},
                        early_updates=True, simplify=False)
    assert _code_lines(f)[-4:] == ["step_W = V.copy()", "V[...] = new_V", "W -= step_W", "return sum1"]


def test_gradients_kept_to_the_end_share_blocks_with_values_freed_early(rng):
    """Updates at the end keep each weight gradient live to the end: such a buffer may share a block
    with values freed early, never with another kept to the end. Which blocks count as held to the end
    decides the packing, pinned here for a fixed-batch net: three 8×8 blocks, grad_W0 (buf8) in tanh1's."""
    x, y = sg.placeholder("x", (8, 6)), sg.placeholder("y", (8,), dtype="int64")
    h = x
    for i, (a, b) in enumerate([(6, 8), (8, 8), (8, 3)]):
        h = h @ sg.parameter(f"W{i}", value=np.full((a, b), 0.1))
        h = sg.tanh(h) if b != 3 else h
    loss = sg.softmax_cross_entropy(h, y)
    f = codegen.compile([x, y], loss, updates=sg.optim.Momentum(0.1).updates(loss), early_updates=False)
    blocks = re.findall(r"(block\d) = np\.empty\(8 \* 8, dtype=np\.float64\)  # (buf\d, buf\d): never live", f.source)
    assert blocks == [("block1", "buf1, buf8"), ("block2", "buf4, buf5"), ("block3", "buf3, buf7")], blocks
    assert "del tanh1                                   # buf8, sharing block1 with buf1, now holds grad_W0" in f.source

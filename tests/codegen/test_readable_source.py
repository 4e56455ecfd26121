"""Generated code a reader can trust: names, comments and sections.

- No name is read, or left bound, after the buffer behind it holds another value: the
  generator deletes it (``del logits``) on the line after the write.
- Every line's comment says which value it computes (no bare "fused elementwise").
- A derivative line is in its derivative section; a line only the updates need, or one computed
  from derivatives without being one, is under "# optimizer" (in a program without updates, the
  latter stays in its derivatives' section); everything else is "# forward".
"""

import ast
import re

import numpy as np
import pytest

import codegen
import symgraph as sg


def digits_step():
    """The train step of examples/train_digits.py (its model, cost and optimizer), without the data."""
    x = sg.placeholder("x", shape=("batch", 64))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    model = sg.nn.Sequential([
        sg.nn.Dense(128, init=sg.init.he_normal(seed=0)), sg.nn.BatchNorm(), sg.relu, sg.nn.Dropout(0.2, seed=0),
        sg.nn.Dense(64, activation=sg.relu, init=sg.init.he_normal(seed=1)), sg.nn.Dropout(0.2, seed=1),
        sg.nn.Dense(10, init=sg.init.glorot_uniform(seed=2)),
    ])
    logits = model(x, training=True).named("logits")
    weights = [layer.W for layer in model.layers if isinstance(layer, sg.nn.Dense)]
    cost = (sg.softmax_cross_entropy(logits, y) + sg.regularize.l2_penalty(weights, 1e-3)).named("cost")
    optimizer = sg.optim.Adam(sg.schedules.cosine(1e-2, total_steps=100))
    updates = {**optimizer.updates(cost, model.parameters), **model.state_updates}
    return codegen.compile([x, y], cost, updates=updates, name="train_step")


def deep_step(rng, layers=6, opt=None):
    x = sg.placeholder("x", shape=("batch", 5))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    h, params = x, []
    for i in range(layers):
        W = sg.parameter(f"W{i}", value=rng.normal(size=(5, 5)) * 0.5)
        b = sg.parameter(f"b{i}", value=np.zeros(5))
        h, params = sg.tanh(h @ W + b), params + [W, b]
    loss = sg.softmax_cross_entropy(h, y)
    updates = (opt or sg.optim.SGD(0.1)).updates(loss, params)
    return codegen.compile([x, y], [loss, *sg.grad(loss, params[:2])], updates=updates)


def tied_step(rng):
    x = sg.placeholder("x", shape=("batch", 6))
    W = sg.parameter("W", value=rng.normal(size=(6, 3)) * 0.5)
    c = sg.parameter("c", value=np.zeros(6))
    loss = sg.mse(sg.tanh(x @ W) @ W.T + c, x)
    return codegen.compile([x], loss, updates=sg.optim.Momentum(0.1).updates(loss, [W, c]))


def jacobian_step(rng):
    x = sg.placeholder("x", shape=(3,))
    W = sg.parameter("W", value=rng.normal(size=(3, 4)))
    out = sg.tanh(x @ W)
    return codegen.compile([x], [out, sg.jacobian(out, x, mode="forward"), sg.jacobian(out, x, mode="reverse")])


STEPS = {
    "digits": lambda rng: digits_step(),
    "deep-sgd": deep_step,
    "deep-adam": lambda rng: deep_step(rng, opt=sg.optim.Adam(0.01)),
    "tied": tied_step,
    "jacobian": jacobian_step,
}

# -- names ---------------------------------------------------------------------------------
_VIEW_METHODS = {"reshape", "transpose", "swapaxes", "broadcast_to", "squeeze"}


def _memory_of_buffers(module: ast.Module) -> dict[str, str]:
    """Buffer name -> the memory it is (its block, or itself), from ``_allocate`` and the unpacking."""
    allocate = next(n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "_allocate")
    arrays = next(n for n in allocate.body if isinstance(n, ast.Return)).value.elts
    function = module.body[-1]
    unpack = next(n for n in function.body if isinstance(n, ast.Assign)
                  and getattr(getattr(n.value, "func", None), "id", "") == "_buffers")
    memory = {}
    for target, array in zip(unpack.targets[0].elts, arrays):
        base = array
        while not isinstance(base, ast.Name):  # block1[:n].reshape(...) -> block1
            base = base.func.value if isinstance(base, ast.Call) else base.value
        memory[target.id] = base.id if base.id.startswith("block") else target.id
    return memory


def _viewed_name(value: ast.expr) -> str | None:
    """The name ``value`` is a view of (``h.T``, ``h[..., None]``, ``h.reshape(...)``,
    ``np.broadcast_to(h, ...)``), or None."""
    if isinstance(value, ast.Attribute) and value.attr == "T" or isinstance(value, ast.Subscript):
        inner = value.value
    elif isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in _VIEW_METHODS:
        inner = value.args[0] if getattr(value.func.value, "id", "") == "np" else value.func.value
    else:
        return None
    return inner.id if isinstance(inner, ast.Name) else _viewed_name(inner)


def stale_names(source: str) -> list[str]:
    """Problems found: a name read after its buffer took another value, or left bound past the line
    after the write (where the generator deletes it)."""
    module = ast.parse(source)
    if not any(isinstance(n, ast.FunctionDef) and n.name == "_allocate" for n in module.body):
        return []
    memory_of = _memory_of_buffers(module)
    bound: dict[str, set] = {}  # memory -> names bound to it
    memory_by_name: dict[str, str] = {}
    dead, must_delete, problems = set(), set(), []
    for stmt in module.body[-1].body:
        if isinstance(stmt, ast.Delete):
            gone = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
            must_delete -= gone
            dead -= gone
            continue
        if must_delete:
            problems.append(f"left bound after their buffer took another value: {sorted(must_delete)}")
            must_delete = set()
        read = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        problems += [f"{name} read after its buffer took another value" for name in read & dead]
        if not (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)):
            continue
        target, value = stmt.targets[0].id, stmt.value
        out = next((k.value.id for k in getattr(value, "keywords", ()) if k.arg == "out"), None)
        if out in memory_of:
            memory = memory_of[out]
            stale = bound.get(memory, set()) - {target}
            dead |= stale
            must_delete |= stale
            bound[memory] = {target}
            memory_by_name[target] = memory
        elif _viewed_name(value) in memory_by_name:
            memory_by_name[target] = memory_by_name[_viewed_name(value)]
            bound[memory_by_name[target]].add(target)
    return problems


@pytest.mark.parametrize("step", sorted(STEPS))
def test_no_name_outlives_the_value_in_its_buffer(step, rng):
    source = STEPS[step](rng).source
    assert stale_names(source) == []


def test_the_check_finds_a_stale_name():
    source = "\n".join([
        "def _allocate(batch):", "    return (np.empty((batch, 3)),)", "",
        "def f(x):", "    buf1, = _buffers()",
        "    a = np.add(x, 1.0, out=buf1)", "    a_T = a.T", "    b = np.multiply(x, 2.0, out=buf1)",
        "    c = a_T + b", "    return c",
    ])
    problems = stale_names(source)
    assert any("left bound" in p and "a" in p and "a_T" in p for p in problems)
    assert "a_T read after its buffer took another value" in problems


def test_digits_step_deletes_the_logits_when_their_buffer_takes_the_gradient():
    lines = [ln.strip() for ln in digits_step().source.splitlines()]
    written = next(i for i, ln in enumerate(lines) if ln.startswith("logits = "))
    buffer = re.search(r"out=(buf\d+)", lines[written]).group(1)
    overwrite = next(i for i, ln in enumerate(lines[written + 1:], written + 1) if f"out={buffer}" in ln)
    deleted = next(i for i, ln in enumerate(lines[overwrite:], overwrite) if ln.startswith("del logits"))
    assert all("out=" in ln for ln in lines[overwrite:deleted])  # right after the calls computing the new value
    assert not any(re.search(r"\blogits\b", ln.split("#")[0]) for ln in lines[overwrite + 1:deleted])
    assert not any(re.search(r"\blogits\b", ln.split("#")[0]) for ln in lines[deleted + 1:])


# -- comments and sections -----------------------------------------------------------------
def sections(source: str) -> dict[str, str]:
    """Assigned name -> the section header it is printed under."""
    found, section = {}, None
    body = source.split('    """\n', 2)[-1]
    for line in body.splitlines():
        text = line.strip()
        if re.fullmatch(r"# [a-z :,;]+", text):
            section = text[2:]
        elif re.match(r"\w+ = ", text):
            found[text.split(" = ")[0]] = section
    return found


def test_every_line_says_which_value_it_computes():
    source = digits_step().source
    assert "fused elementwise" not in source
    # state written in place: the comment above the calls says which value they compute, and how
    assert re.search(r"# new value of dense1_W_m: 0.9 \* dense1_W_m \+ 0.1 \* grad_dense1_W\n"
                     r"\s+np.multiply\(0.9, dense1_W_m, out=dense1_W_m\)", source)
    assert re.search(r"# step subtracted from dense1_W: .*\n(\s+np\.\w+\(.*\n)*\s+\w+ = ", source)


def test_lines_are_in_the_section_of_what_they_compute():
    where = sections(digits_step().source)
    assert where["lr"] == "optimizer"  # reads the old step counter: computed before it is overwritten
    for name in ("step_size", "sqrt_bias_correction2"):  # read the new one
        assert where[name].startswith("updates: nothing above writes"), name
    for name in ("logits", "dense1", "batchnorm1_mean", "cost", "square1"):
        assert where[name] == "forward", name
    for name in ("grad_logits", "grad_dense1_W", "grad_dense1_b"):
        assert where[name] == "backward", name


def test_without_updates_a_value_computed_from_derivatives_stays_with_them(rng):
    where = sections(jacobian_step(rng).source)
    assert where["tan_tanh1"] == "forward mode: tangents" and where["grad_x"] == "backward"
    assert "optimizer" not in where.values()

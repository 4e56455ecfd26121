"""User text never reaches generated source unescaped; names stay distinct and bound right.

DESIGN.md section B: "Generated variables are named after graph nodes (names
sanitized to valid identifiers; no user text ever reaches the source
unescaped)". Section C: deterministic numbering, fixed prefixes.
"""

import ast
import builtins
import keyword
import re

import numpy as np
import pytest

import codegen
import symgraph as sg
from codegen.naming import MAX_LENGTH, Namer, full_name, identifier

DANGEROUS = [
    "a\nimport os",
    "q'uote",
    'dq"uote',
    'tri"""ple',
    "tri'''ple",
    "back\\slash",
    "end\\",
    "import os",
    "__import__('os').system('echo pwned')",
    "lambda",
    "class",
    "sum",
    "9lives",
    "!!!",
    "x",
    "x",
    "np",
    "_softmax",
    "αβγ",
    "δ",
    "名前",
    "compute",
    "base64",
    "None",
    "True",
    "const1",
    "tanh1",
    "grad_w",
    "x_2",
    "#comment",
    "a; b",
    "{x}",
]

RAW_FRAGMENTS = ["import os", "__import__(", "('os')", '"""ple', "'''ple", "\\slash", "end\\", "q'uote", 'dq"uote',
                 "αβγ", "δ", "名前", "#comment", "a; b", "{x}", "!!!"]


def _public_function(source):
    tree = ast.parse(source)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    assert len(fns) == 1
    return tree, fns[0]


def _check_safe(source):
    """The source parses, imports only numpy/base64, and calls nothing dangerous."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= {"numpy", "base64", "threading"}
        assert not isinstance(node, ast.ImportFrom)
        if isinstance(node, ast.Name):
            assert node.id not in {"os", "eval", "exec", "__import__", "open", "system", "sys"}, node.id
        if isinstance(node, ast.Attribute):
            assert node.attr not in {"system", "popen"}
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("import ") or stripped.startswith("from "):
            assert stripped in {"import numpy as np", "import base64", "import threading"}, line
    # one module docstring and one function docstring hold triple quotes; nothing else
    assert source.count('"""') == 2 * len([n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef))
                                            and ast.get_docstring(n) is not None])


# -- identifier ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("W1", "W1"),
        ("grad W", "grad_W"),
        ("a\nimport os", "a_import_os"),
        ("lambda", "lambda_"),
        ("class", "class_"),
        ("sum", "sum_"),
        ("np", "np_"),
        ("9lives", "v_9lives"),
        ("!!!", "v"),
        ("_softmax", "softmax"),
        ("a__b", "a_b"),
    ],
)
def test_identifier_examples(text, expected):
    assert identifier(text) == expected


@pytest.mark.parametrize("text", DANGEROUS + ["", "_", "__", "0", "match", "case", "type", "print", "é", "x" * 300])
def test_identifier_is_valid_ascii_and_not_reserved(text):
    name = identifier(text)
    assert name.isidentifier()
    assert name.isascii()
    assert not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
    assert name not in dir(builtins)
    assert name not in {"np", "cp", "base64"}
    assert identifier(name) == name  # idempotent


def test_identifier_fallback():
    assert identifier("???", fallback="node") == "node"
    assert identifier("1x", fallback="node") == "node_1x"


def test_namer_unique_and_numbered():
    n = Namer(reserved={"compute"})
    assert [n.unique("x"), n.unique("x"), n.unique("x")] == ["x", "x_2", "x_3"]
    assert n.unique("x_2") not in {"x", "x_2", "x_3"}
    assert n.unique("compute") == "compute_2"
    assert [n.numbered("matmul"), n.numbered("matmul")] == ["matmul1", "matmul2"]
    assert n.unique("matmul1") not in {"matmul1", "matmul2"}
    n.unique("tanh1")
    assert n.numbered("tanh") == "tanh2"  # skips a taken name
    assert n.unique("lambda") == "lambda_"
    assert n.unique("a\nb") == "a_b"


def test_namer_never_repeats_over_adversarial_sequence():
    n = Namer()
    got = [n.unique(t) for t in DANGEROUS * 3] + [n.numbered(t) for t in ("x", "x", "v", "const")]
    assert len(got) == len(set(got))
    assert all(g.isidentifier() and not keyword.iskeyword(g) for g in got)


_DETERMINISM_SCRIPT = """
import numpy as np, sympy, symgraph as sg, codegen
from codegen.naming import Namer
names = {names!r}
n = Namer(reserved={{"f"}})
print([n.unique(t) for t in names] + [n.numbered("add") for _ in range(3)])
x = sg.placeholder("x", ("batch", 3)); y = sg.placeholder("y", ("batch",), dtype="int64")
W = sg.parameter("W", value=np.ones((3, 4))); b = sg.parameter("b", value=np.zeros(4))
soft = sg.elementwise(lambda z: sympy.log(1 + sympy.exp(z)) * z, name="soft")
loss = sg.softmax_cross_entropy(soft(sg.tanh(x @ W + b)), y) + 0.1 * sg.std(W)
updates = {{p: p - 0.1 * g for p, g in zip([W, b], sg.grad(loss, [W, b]))}}
print(codegen.compile([x, y], loss, updates=updates).source)
"""


def test_names_and_generated_source_are_the_same_in_every_process():
    """Byte-identical output across processes: string hashing (set and dict order of names) changes
    with PYTHONHASHSEED between processes, which calling twice in one process cannot see."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = _DETERMINISM_SCRIPT.format(names=DANGEROUS)
    outputs = []
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert "def " in outputs[0] and "a_import_os" in outputs[0]
    assert outputs[0] == outputs[1] == outputs[2]


# -- whole programs with dangerous names -----------------------------------------------


def test_dangerous_placeholder_names_compile_safely_and_bind_correctly(rng):
    phs = [sg.placeholder(name, shape=(2,)) for name in DANGEROUS]
    w = sg.parameter("w\n#", value=np.array([0.5, -1.5]))
    total = sum((i + 1.0) * p for i, p in enumerate(phs)) * w
    out = sg.tanh(total).sum()
    g = sg.grad(out, w)
    f = codegen.compile(phs, [out, g])
    src = f.source
    _check_safe(src)
    for frag in RAW_FRAGMENTS:
        assert frag not in src, frag
    assert src.isascii()

    _, fn = _public_function(src)
    args = [a.arg for a in fn.args.args]
    assert len(args) == len(DANGEROUS) and len(set(args)) == len(args)
    assert fn.name not in args
    for a in args:
        assert not keyword.iskeyword(a) and a not in dir(builtins) and a != "np"

    data = [rng.normal(size=2) for _ in phs]
    total_ref = sum((i + 1.0) * d for i, d in enumerate(data)) * w.value
    val, gw = f(*data)
    np.testing.assert_allclose(val, np.tanh(total_ref).sum(), rtol=1e-12)
    ref_g = (1 - np.tanh(total_ref) ** 2) * sum((i + 1.0) * d for i, d in enumerate(data))
    np.testing.assert_allclose(gw, ref_g, rtol=1e-12)


def test_two_placeholders_named_x_are_distinct_arguments(rng):
    x1 = sg.placeholder("x", shape=(3,))
    x2 = sg.placeholder("x", shape=(3,))
    f = codegen.compile([x1, x2], x1 - 2.0 * x2)
    _, fn = _public_function(f.source)
    assert [a.arg for a in fn.args.args] == ["x", "x_2"]
    a, b = rng.normal(size=3), rng.normal(size=3)
    np.testing.assert_allclose(f(a, b), a - 2.0 * b)
    np.testing.assert_allclose(f(b, a), b - 2.0 * a)


def test_placeholder_and_parameter_with_the_same_name(rng):
    xp = sg.placeholder("W", shape=(2, 2))
    W = sg.parameter("W", value=rng.normal(size=(2, 2)))
    f = codegen.compile([xp], xp @ W)
    _, fn = _public_function(f.source)
    assert len({a.arg for a in fn.args.args + fn.args.kwonlyargs}) == 2
    xb = rng.normal(size=(2, 2))
    np.testing.assert_allclose(f(xb), xb @ W.value)


def test_names_equal_to_helpers_do_not_shadow_them(rng):
    s = sg.placeholder("_softmax", shape=(2, 3))
    l = sg.placeholder("_logsumexp", shape=(2, 3))
    n = sg.placeholder("np", shape=(2, 3))
    out = sg.softmax(s) + sg.logsumexp(l, axis=-1).reshape((2, 1)) * sg.tanh(n)
    f = codegen.compile([s, l, n], out)
    src = f.source
    _check_safe(src)
    assert "def _softmax(" in src and "def _logsumexp(" in src
    a, b, c = (rng.normal(size=(2, 3)) for _ in range(3))
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    lse = np.log(np.exp(b).sum(axis=-1))
    np.testing.assert_allclose(f(a, b, c), e / e.sum(axis=-1, keepdims=True) + lse[:, None] * np.tanh(c), rtol=1e-12)


def test_placeholder_named_like_a_module_constant_does_not_shadow_it(rng):
    x = sg.placeholder("const1", shape=(100,))
    big = np.linspace(-1.0, 1.0, 100)  # large enough to be written as a module-level constant
    small = np.arange(3.0)
    out = [x * big, sg.constant(small, name="const2") + 1.0]
    f = codegen.compile([x], out)
    src = f.source
    _check_safe(src)
    xb = rng.normal(size=100)
    r_big, r_small = f(xb)
    np.testing.assert_allclose(r_big, xb * big)
    np.testing.assert_allclose(r_small, small + 1.0)


def test_placeholder_named_like_the_function(rng):
    x = sg.placeholder("compute", shape=(2,))
    f = codegen.compile([x], x * 3.0)
    tree, fn = _public_function(f.source)
    assert fn.name == "compute" and fn.args.args[0].arg != "compute"
    xb = rng.normal(size=2)
    np.testing.assert_allclose(f(xb), xb * 3.0)


def test_dangerous_names_on_every_kind_of_user_text(rng):
    x = sg.placeholder('x"""\nimport os', shape=("bat\"\"\"ch\nimport os", 2))
    y = sg.placeholder("y\\", shape=("bat\"\"\"ch\nimport os",), dtype="int64")
    W = sg.parameter("W'''\nimport os", value=rng.normal(size=(2, 3)))
    c = sg.constant(np.arange(3.0), name='c"""\nimport os')
    act = sg.elementwise(lambda z: z * z + 1, name='sq"""\nimport os')
    h = act(x @ W).named("h\n__import__('os')") + c
    loss = sg.softmax_cross_entropy(h, y)
    gW = sg.grad(loss, W)
    f = codegen.compile([x, y], [loss, gW], updates={W: W - 0.01 * gW}, name='step"""\nimport os')
    src = f.source
    _check_safe(src)
    for frag in ("import os", "__import__", "'''", "\\"):
        assert frag not in src, frag
    tree, fn = _public_function(src)
    all_names = [n.value.elts for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", None) == "__all__"]
    assert [e.value for e in all_names[0]] == [fn.name]

    xb, yb = rng.normal(size=(4, 2)), np.array([0, 2, 1, 1])
    W0 = W.value.copy()
    z = (xb @ W0) ** 2 + 1 + np.arange(3.0)
    lse = np.log(np.exp(z).sum(axis=1))
    ref_loss = (lse - z[np.arange(4), yb]).mean()
    loss_value, g = f(xb, yb)
    np.testing.assert_allclose(loss_value, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(W.value, W0 - 0.01 * g, rtol=1e-12)


def test_dangerous_named_dimension(rng):
    dim = 'bat"""ch\nimport os'
    x = sg.placeholder("x", shape=(dim, 2))
    z = sg.placeholder("z", shape=(dim,))
    f = codegen.compile([x, z], x.sum(axis=1) * z)
    src = f.source
    _check_safe(src)
    assert "import os" not in src and 'bat"""ch' not in src
    xb, zb = rng.normal(size=(5, 2)), rng.normal(size=5)
    np.testing.assert_allclose(f(xb, zb), xb.sum(axis=1) * zb)
    with pytest.raises(ValueError) as err:
        f(xb, rng.normal(size=4))
    assert repr(dim) in str(err.value) or dim in str(err.value)


def test_many_duplicate_names_stay_distinct(rng):
    xs = [sg.placeholder("v", shape=(1,)) for _ in range(12)] + [sg.placeholder("!!!", shape=(1,)) for _ in range(3)]
    f = codegen.compile(xs, sum(float(i) * x for i, x in enumerate(xs)))
    _, fn = _public_function(f.source)
    args = [a.arg for a in fn.args.args]
    assert len(set(args)) == len(xs)
    data = [np.array([float(10 * i + 1)]) for i in range(len(xs))]
    np.testing.assert_allclose(f(*data), sum(i * d for i, d in enumerate(data)))


# -- long names (issue 11, defect 7) ----------------------------------------------------------


def test_long_identifiers_are_shortened_with_a_hash_of_the_whole_name():
    a, b = "a" * 100 + "x", "a" * 100 + "y"  # the same first 100 characters
    assert len(identifier(a)) == len(identifier(b)) == MAX_LENGTH
    assert identifier(a) != identifier(b)
    assert identifier(a).startswith("a" * 31 + "_")
    assert identifier("a" * MAX_LENGTH) == "a" * MAX_LENGTH  # up to the limit: unchanged
    assert full_name(a) == a and full_name("short") is None


@pytest.mark.parametrize("length", [100, 150, 300])
def test_long_names_in_every_place_compile_run_and_show_in_full(rng, load_saved, length):
    def text(c):
        return (c + "_long") * (length // 6) + c * (length % 6)  # length characters

    x = sg.placeholder(text("x"), shape=(text("batch"), 3))
    W = sg.parameter(text("W"), value=rng.normal(size=(3, 4)))
    layer = sg.nn.Dense(2, name=text("layer"), init=sg.init.glorot_uniform(seed=0))
    h = sg.tanh(x @ W).named(text("h"))
    loss = (layer(h) ** 2).mean().named(text("loss"))
    params = [W, *layer.parameters]
    f = codegen.compile([x], loss, updates=sg.optim.SGD(0.1).updates(loss, params), name=text("step"))
    source = f.source
    _check_safe(source)
    _, fn = _public_function(source)
    arguments = [a.arg for a in fn.args.args + fn.args.kwonlyargs]
    assert fn.name == identifier(text("step")) and len(fn.name) <= MAX_LENGTH
    assert all(len(a) <= MAX_LENGTH for a in arguments)
    docstring = ast.get_docstring(fn)
    for name in (text("x"), text("batch"), text("W"), f"{text('layer')}_W", text("loss")):
        assert name in docstring, name  # the full name, beside its identifier
    assert text("h") in source  # in the comment of the line computing h

    xb = rng.normal(size=(5, 3))
    values = {p.name: p.value.copy() for p in params}
    dense = np.tanh(xb @ values[text("W")]) @ values[f"{text('layer')}_W"] + values[f"{text('layer')}_b"]
    expected = float(np.mean(dense**2))
    assert abs(float(f(xb)) - expected) < 1e-9
    saved = {identifier(name): value for name, value in values.items()}
    step = load_saved(f)
    step(**{arguments[0]: xb}, **saved)  # by keyword: the shortened identifier
    for p in params:
        np.testing.assert_allclose(saved[identifier(p.name)], p.value, rtol=1e-12)
    with pytest.raises(ValueError, match=re.escape(text("x"))):
        f(np.ones((5, 4)))


def test_dimensions_whose_names_sanitize_alike_stay_distinct(load_saved):
    x = sg.placeholder("x", shape=("a b", 3))
    y = sg.placeholder("y", shape=("a_b", 3))
    W = sg.parameter("W", value=np.ones((3, 3)))
    f = codegen.compile([x, y], (sg.tanh(x @ W)).sum() + sg.tanh(y @ W).sum())
    assert "def _allocate(a_b, a_b_2):" in f.source and "x: (a_b, 3)" in f.source and "y: (a_b_2, 3)" in f.source
    expected = 2 * np.tanh(3.0) * 3 + 4 * np.tanh(3.0) * 3
    assert np.isclose(f(np.ones((2, 3)), np.ones((4, 3))), expected)
    saved = load_saved(f)
    assert np.isclose(saved(np.ones((2, 3)), np.ones((4, 3)), W=W.value.copy()), expected)

"""The graph IR: nodes, hash-consing, leaves, weak constants, intern tables, and build-time errors.

Per-op values and gradients live in test_ops.py; this file checks what every
node shares (identity, metadata, coercion of Python numbers) and that errors
raised while building a graph point at the user's own file and line.
"""

import os
import re

import numpy as np
import pytest

import codegen
import symgraph as sg

HERE = os.path.basename(__file__)


def _line_of(marker: str) -> int:
    """Line number (1-based) of the line in this file that carries ``# <marker>``."""
    with open(__file__, encoding="utf-8") as f:
        hits = [i for i, line in enumerate(f, 1) if line.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, f"marker {marker!r} must appear exactly once"
    return hits[0]


def _assert_located_here(message: str, marker: str):
    """The error message names this test file and the line of the offending call (not a library frame)."""
    match = re.search(r" at (\S+):(\d+)", message)
    assert match is not None, f"no file:line in {message!r}"
    assert os.path.abspath(match.group(1)) == os.path.abspath(__file__), message
    assert int(match.group(2)) == _line_of(marker), message


# -- hash-consing and identity ---------------------------------------------------------
def test_same_op_same_inputs_same_attrs_is_the_same_node():
    x = sg.placeholder("x", (3, 4))
    y = sg.placeholder("y", (3, 4))
    assert sg.tanh(x) is sg.tanh(x)
    assert (x + y) is (x + y)
    assert sg.matmul(x, y.T) is (x @ y.T)
    assert x.sum(axis=0) is x.sum(axis=0)
    # attributes are normalized before interning: axis 0 and -2 of a 2-d array are the same axis
    assert x.sum(axis=0) is x.sum(axis=-2)
    assert x.T is sg.transpose(x) is sg.transpose(x, (1, 0))
    # a whole expression built twice is one shared subgraph
    a = sg.sigmoid(x * 2.0 + y).sum(axis=1)
    b = sg.sigmoid(x * 2.0 + y).sum(axis=1)
    assert a is b


def test_different_attrs_or_inputs_give_different_nodes():
    x = sg.placeholder("x", (3, 4))
    y = sg.placeholder("y", (3, 4))
    assert x.sum(axis=0) is not x.sum(axis=1)
    assert x.sum(axis=0) is not x.sum(axis=0, keepdims=True)
    assert x.mean(axis=0) is not x.sum(axis=0)
    assert sg.leaky_relu(x, 0.1) is sg.leaky_relu(x, 0.1)
    assert sg.leaky_relu(x, 0.1) is not sg.leaky_relu(x, 0.2)
    assert (x - y) is not (y - x)
    assert sg.tanh(x) is not sg.tanh(y)
    assert x.astype("float32") is not x.astype("float16")


def test_leaves_are_distinct_even_with_the_same_name():
    a = sg.placeholder("x", (3,))
    b = sg.placeholder("x", (3,))
    assert a is not b
    assert a != b
    assert sg.tanh(a) is not sg.tanh(b)
    p = sg.parameter("W", value=np.zeros(2))
    q = sg.parameter("W", value=np.zeros(2))
    assert p is not q and sg.exp(p) is not sg.exp(q)


def test_equal_constants_are_shared_and_different_dtypes_are_not():
    assert sg.constant(np.ones(3)) is sg.constant(np.ones(3))
    assert sg.constant(np.ones(3)) is not sg.constant(np.ones(4))
    assert sg.constant(1.0) is not sg.constant(1)  # float64 vs int64
    assert sg.constant(np.arange(3.0)) is not sg.constant(np.arange(3.0)[::-1])


def test_eq_and_hash_are_identity_and_return_bools():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (3,))
    t = sg.tanh(x)
    assert (x == x) is True
    assert (x == y) is False
    assert (x != y) is True
    assert (x != x) is False
    assert (x == 1.0) is False  # not a graph node, not an elementwise comparison
    assert (t == sg.tanh(x)) is True  # interned: literally the same object
    assert hash(x) == object.__hash__(x) and hash(t) == object.__hash__(t)
    table = {x: "x", y: "y", t: "t"}
    assert table[x] == "x" and table[y] == "y" and table[sg.tanh(x)] == "t"
    assert len({x, y, t, sg.tanh(x)}) == 3
    assert x in [y, x] and t not in [x, y]


def test_bool_of_a_node_raises_type_error():
    x = sg.placeholder("x", (3,))
    with pytest.raises(TypeError, match="truth value of a symgraph node"):
        bool(x)
    with pytest.raises(TypeError, match="truth value of a symgraph node"):
        if x < 1.0:  # a data-dependent branch cannot be decided while building
            pass
    with pytest.raises(TypeError, match="truth value of a symgraph node"):
        not sg.tanh(x)


def test_node_metadata():
    x = sg.placeholder("x", ("batch", 3))
    W = sg.parameter("W", value=np.ones((3, 2)))
    h = sg.tanh(x @ W)
    assert x.shape == ("batch", 3) and x.dtype == np.float64 and x.name == "x"
    assert W.shape == (3, 2) and W.name == "W"
    assert h.shape == ("batch", 2) and h.dtype == np.dtype("float64")
    assert h.inputs[0].op.name == "matmul"
    assert h.inputs[0].inputs == (x, W)
    assert h.inputs == (x @ W,)
    assert x.inputs == () and W.inputs == ()
    assert h.name is None
    assert x.op.name == "placeholder" and W.op.name == "parameter"


def test_op_compares_equal_to_its_name():
    x = sg.placeholder("x", (2,))
    assert sg.tanh(x).op.name == "tanh"
    assert not (sg.tanh(x).op.name == "sigmoid")
    assert sg.tanh(x).op.name != "sin"
    assert (x + x).op.name == "add" and (x * x).op.name == "multiply" and (x @ x).op.name == "matmul"
    assert str(sg.exp(x).op) == "exp"


def test_operators_accept_numbers_and_arrays_on_either_side():
    x = sg.placeholder("x", (3,))
    arr = np.arange(3.0)
    for node in (x + 1, 1 + x, x * arr, arr * x, arr - x, 2.0 / x, x**2, 2.0**x, -x, arr @ x):
        assert isinstance(node, sg.Node)
    assert (arr + x).inputs[1] is x
    assert (arr @ x).shape == ()
    comparison = x < 0.5
    assert isinstance(comparison, sg.Node) and comparison.dtype == np.bool_


# -- placeholders, parameters, constants -----------------------------------------------
@pytest.mark.parametrize(
    "shape, expected",
    [((2, 3), (2, 3)), (("batch", 3), ("batch", 3)), ((None, 4), (None, 4)), ((), ()), (5, (5,)), ([0, "n"], (0, "n"))],
)
def test_placeholder_dims(shape, expected):
    x = sg.placeholder("x", shape)
    assert x.shape == expected
    assert x.ndim == len(expected)


@pytest.mark.parametrize("bad", [(-1, 3), (2.0, 3), (True, 3), ("", 3)])
def test_placeholder_rejects_bad_dims(bad):
    with pytest.raises((ValueError, TypeError), match=r"placeholder 'x': shape entries must be int >= 0"):
        sg.placeholder("x", bad)


def test_numpy_integers_are_shape_entries_and_axes():  # issue 11: np.int64(3) was refused
    n = np.int64(3)
    x = sg.placeholder("x", (n, np.int32(2)))
    assert x.shape == (3, 2) and all(type(d) is int for d in x.shape)
    assert sg.placeholder("v", n).shape == (3,)
    W = sg.parameter("W", shape=(n, np.uint8(2)), init=sg.init.zeros())
    assert W.shape == (3, 2) and type(W.shape[0]) is int
    assert sg.parameter("b", value=np.zeros(3), shape=(n,)).shape == (3,)
    assert x.reshape((np.int64(2), n)).shape == (2, 3)
    assert x.reshape(np.int64(6)).shape == (6,)
    assert sg.broadcast_to(x, (np.int64(4), 3, 2)).shape == (4, 3, 2)
    assert x.sum(axis=np.int64(0)) is x.sum(axis=0)
    assert sg.expand_dims(x, np.int64(0)) is sg.expand_dims(x, 0)
    assert x[np.int64(1)].shape == (2,)
    with pytest.raises(ValueError, match="placeholder 'y'"):
        sg.placeholder("y", (np.bool_(True), 2))


def test_placeholder_dtypes():
    assert sg.placeholder("y", ("batch",), dtype="int64").dtype == np.int64
    assert sg.placeholder("m", (2,), dtype=bool).dtype == np.bool_
    assert sg.placeholder("f", (2,), dtype="float32").dtype == np.float32
    with pytest.raises(sg.DTypeError, match=r"placeholder 'c': dtype complex128 is not supported"):
        sg.placeholder("c", (2,), dtype="complex128")
    with pytest.raises(TypeError, match=r"placeholder: name must be a non-empty str"):
        sg.placeholder("", (2,))


def test_named_dims_broadcast_against_static_ones():
    x = sg.placeholder("x", ("batch", 3))
    b = sg.placeholder("b", (3,))
    assert (x + b).shape == ("batch", 3)
    u = sg.placeholder("u", (None, 3))
    assert (u + sg.placeholder("v", (2, 3))).shape == (2, 3)


def test_parameter_from_value_copies_and_converts():
    source = np.arange(6, dtype=np.float32).reshape(2, 3)
    W = sg.parameter("W", value=source)
    assert W.shape == (2, 3) and W.dtype == np.float32  # a float value keeps its dtype (issue 11)
    source[0, 0] = 100.0
    assert W.value[0, 0] == 0.0  # the parameter owns a copy
    np.testing.assert_array_equal(W.value, np.arange(6.0).reshape(2, 3))
    assert sg.parameter("W64", value=source, dtype="float64").dtype == np.float64


def test_parameter_from_shape_and_init():
    seen = []

    def init(shape):
        seen.append(shape)
        return np.full(shape, 0.5)

    V = sg.parameter("V", shape=(4, 3), init=init)
    assert seen == [(4, 3)]
    assert V.shape == (4, 3)
    np.testing.assert_array_equal(V.value, np.full((4, 3), 0.5))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # neither value nor init
        {"shape": (2, 2)},  # shape without init
        {"shape": ("batch", 2), "init": lambda s: np.zeros((1, 2))},  # symbolic shape
        {"shape": (2, 2), "init": lambda s: np.zeros((3, 3))},  # init returns the wrong shape
        {"value": np.zeros(2), "init": lambda s: np.zeros(s)},  # both
        {"value": np.zeros(2), "shape": (3,)},  # value and shape disagree
    ],
)
def test_parameter_rejects_inconsistent_arguments(kwargs):
    with pytest.raises(ValueError, match=r"parameter 'W': "):
        sg.parameter("W", **kwargs)


def test_parameter_value_read_and_write():
    W = sg.parameter("W", value=np.zeros((2, 3)))
    new = np.ones((2, 3))
    W.value = new
    np.testing.assert_array_equal(W.value, np.ones((2, 3)))
    new[0, 0] = 7.0
    assert W.value[0, 0] == 1.0  # assignment stores a copy
    W.value = np.full((2, 3), 3, dtype=np.int64)  # safe cast into the float parameter
    assert W.value.dtype == np.float64 and W.value[1, 2] == 3.0
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        W.value = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"parameter 'W': cannot assign a value of shape \(6,\)"):
        W.value = np.zeros(6)
    np.testing.assert_array_equal(W.value, np.full((2, 3), 3.0))  # failed writes change nothing


def test_parameter_value_write_rejects_unsafe_dtype():
    n = sg.parameter("n", value=np.zeros(3, dtype=np.int64), dtype="int64")
    with pytest.raises(ValueError, match=r"parameter 'n': cannot assign float64 data to a int64 parameter"):
        n.value = np.array([0.5, 1.5, 2.5])
    np.testing.assert_array_equal(n.value, [0, 0, 0])



# -- values that would change in the leaf's dtype (issue 11, defect 11; DESIGN.md A: dtype=None) ----


@pytest.mark.parametrize("value, dtype, match", [
    ([1.7], "int64", r"parameter 'p': value 1.7 at index \(0,\) would become 1 in int64"),
    ([1e30], "int64", r"parameter 'p': value 1e\+30 at index \(0,\) would become"),
    (10**30, "int64", r"parameter 'p': value 1000000000000000000000000000000 does not fit int64"),
    ([np.nan], "int32", r"parameter 'p': value nan"),
    ([300], "int8", r"parameter 'p': value 300 at index \(0,\) would become 44 in int8"),
    (-1, "uint8", r"parameter 'p': value -1 would become 255 in uint8"),
    (np.uint64(2**64 - 1), "int64", r"parameter 'p': value 18446744073709551615 would become -1"),
    (2, bool, r"parameter 'p': value 2 would become True in bool"),
    ([1e300], "float32", r"parameter 'p': value 1e\+300 at index \(0,\) would become inf in float32"),
    (70000, "float16", r"parameter 'p': value 70000 would become inf in float16"),
    ([1 + 2j], "int64", r"parameter 'p': value holds complex128 data"),
    ([1 + 2j], None, r"parameter 'p': value holds complex128 data"),
    (["a"], None, r"parameter 'p': value holds <U1 data"),
    ([1.0, None], None, r"parameter 'p': value holds a NoneType element"),
    ([[1.0], [1.0, 2.0]], None, r"parameter 'p': value is not an array of numbers"),
])
def test_parameter_refuses_values_that_would_change(value, dtype, match):
    with pytest.raises(sg.DTypeError, match=match):
        sg.parameter("p", value=value, dtype=dtype)


@pytest.mark.parametrize("value, dtype, expected", [
    ([2.0, -3.0], "int64", [2, -3]),  # integral floats fit
    ([1, 0], bool, [True, False]),
    ([0.1], "float32", [np.float32(0.1)]),  # rounding to a narrower float is not a change
    ([np.inf, -np.inf, np.nan], "float32", [np.inf, -np.inf, np.nan]),  # kept, not made
    (10**30, None, [1e30]),  # a Python int beyond int64, into the default float64
])
def test_parameter_accepts_values_that_fit(value, dtype, expected):
    p = sg.parameter("p", value=value, dtype=dtype)
    np.testing.assert_array_equal(np.atleast_1d(p.value), np.array(expected, dtype=p.dtype))


def test_dtype_none_keeps_a_float_value_and_makes_others_float64():
    for dtype in (np.float16, np.float32, np.float64):
        assert sg.parameter("f", value=np.zeros(2, dtype)).dtype == dtype
        assert sg.parameter("s", value=dtype(1.5)).dtype == dtype
    assert sg.parameter("i", value=[1, 2]).dtype == np.float64
    assert sg.parameter("b", value=True).dtype == np.float64
    assert sg.parameter("py", value=1.5).dtype == np.float64
    assert sg.parameter("W", shape=(2,), init=lambda s: np.zeros(s, np.float32)).dtype == np.float64  # init
    assert sg.parameter("W", shape=(2,), init=sg.init.zeros(), dtype="float32").dtype == np.float32


def test_state_and_constant_check_values_and_name_themselves():
    assert sg.state("count", 3).dtype == np.int64  # state keeps its value's dtype
    assert sg.state("m", np.zeros(2, np.float32)).dtype == np.float32
    with pytest.raises(sg.DTypeError, match=r"state 'k': value holds complex128"):
        sg.state("k", 1j)
    with pytest.raises(sg.DTypeError, match=r"state 'k': value 1.5 would become 1 in int64"):
        sg.state("k", 1.5, dtype="int64")
    with pytest.raises(sg.DTypeError, match=r"constant 'c': value 1.7 would become 1 in int64"):
        sg.constant(1.7, name="c", dtype="int64")
    assert sg.constant([1, 2], dtype="float32").dtype == np.float32


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
@pytest.mark.parametrize("dtype, new, match", [
    ("int8", [300, 1], r"parameter 'q': value 300 at index \(0,\) would become 44 in int8"),
    ("float32", [1e300, 1.0], r"parameter 'q': value 1e\+300 at index \(0,\) would become inf in float32"),
])
def test_parameter_assign_refuses_values_that_would_change(dtype, new, match):
    q = sg.parameter("q", value=np.zeros(2), dtype=dtype)
    with pytest.raises(sg.DTypeError, match=match):
        q.value = np.array(new)
    np.testing.assert_array_equal(q.value, [0, 0])

def test_only_parameters_have_writable_values():
    x = sg.placeholder("x", (2,))
    with pytest.raises(AttributeError, match="placeholder node x holds no value"):
        x.value
    with pytest.raises(AttributeError, match="only a parameter's value can be assigned, not a placeholder's"):
        x.value = np.zeros(2)
    c = sg.constant(np.ones(2))
    np.testing.assert_array_equal(c.value, np.ones(2))
    with pytest.raises(AttributeError, match="only a parameter's value can be assigned, not a constant's"):
        c.value = np.zeros(2)
    with pytest.raises(AttributeError, match="tanh node .*holds no value"):
        sg.tanh(x).value


def test_parameter_value_is_read_at_call_time():
    W = sg.parameter("W", value=np.ones(3))
    x = sg.placeholder("x", (3,))
    f = codegen.compile([x], (x * W).sum())
    assert f(np.ones(3)) == pytest.approx(3.0)
    W.value = np.full(3, 2.0)
    assert f(np.ones(3)) == pytest.approx(6.0)


def test_constants():
    value = np.arange(4.0)
    c = sg.constant(value)
    value[0] = 99.0
    assert c.value[0] == 0.0  # copied
    assert c.shape == (4,) and c.dtype == np.float64 and c.inputs == ()
    assert c.op.name == "constant"
    with pytest.raises(ValueError, match="read-only"):
        c.value[1] = 5.0  # read-only: constants are shared by hash-consing
    assert sg.constant(np.float32(3)).dtype == np.float32
    assert sg.constant(2.0, name="two").name == "two"
    with pytest.raises(sg.DTypeError, match="constant: value holds <U1 data"):
        sg.constant(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="constant: value is already a graph node"):
        sg.constant(sg.placeholder("x", (1,)))


# -- weak Python-number constants (NEP 50 style) -------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda x: x * 2.0,
        lambda x: 2.0 * x,
        lambda x: x + 1,
        lambda x: 1 - x,
        lambda x: x / 3,
        lambda x: 1.0 / x,
        lambda x: x**2,
        lambda x: sg.maximum(x, 0.0),
        lambda x: sg.where(x > 0, x, 0.0),
        lambda x: sg.tanh(x) * 0.5 + 0.5,
        lambda x: sg.exp(-x).mean() + 1e-8,
        lambda x: sg.softmax(x * 10.0),
        lambda x: sg.mse(x, np.zeros(3, np.float32)),
    ],
)
def test_python_numbers_keep_a_float32_graph_float32(build):
    x = sg.placeholder("x", (3,), dtype="float32")
    out = build(x)
    assert out.dtype == np.float32
    for node in sg.topo_sort([out]):
        if node.dtype.kind == "f":
            assert node.dtype == np.float32, f"{node!r} was promoted"


def test_numpy_values_are_strong_and_promote():
    x = sg.placeholder("x", (3,), dtype="float32")
    assert (x + np.float64(2.0)).dtype == np.float64
    assert (x + np.ones(3)).dtype == np.float64
    assert (x + np.ones(3, dtype=np.float32)).dtype == np.float32


def test_python_numbers_and_integer_graphs():
    i = sg.placeholder("i", (3,), dtype="int32")
    assert (i + 1).dtype == np.int32
    assert (i * 2).dtype == np.int32
    assert (i + 1.5).dtype == np.float64  # a float meets an int: float
    assert (i / 2).dtype == np.float64  # true division
    assert (i > 1).dtype == np.bool_


def test_float32_graph_compiles_to_float32_values():
    x = sg.placeholder("x", (3,), dtype="float32")
    out = sg.tanh(x * 2.0) + 1
    value = codegen.evaluate(out, {x: np.array([0.1, 0.2, 0.3], dtype=np.float32)})
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, np.tanh(np.array([0.2, 0.4, 0.6])) + 1, rtol=1e-6)


# -- intern tables ------------------------------------------------------------------------------
def test_fresh_graph_is_current_inside_and_restored_after(fresh_graph):
    assert sg.current_graph() is fresh_graph
    with sg.fresh_graph() as inner:
        assert sg.current_graph() is inner and inner is not fresh_graph
        assert len(inner) == 0
    assert sg.current_graph() is fresh_graph
    with pytest.raises(RuntimeError, match="boom"):
        with sg.fresh_graph():
            raise RuntimeError("boom")
    assert sg.current_graph() is fresh_graph


def test_fresh_graph_isolates_interning():
    x = sg.placeholder("x", (3,))
    outer = sg.tanh(x)
    with sg.fresh_graph() as inner:
        inside = sg.tanh(x)
        assert inside is not outer  # a separate intern table
        assert sg.tanh(x) is inside  # which still hash-conses
        assert len(inner) == 1
    assert sg.tanh(x) is outer


def test_intern_table_counts_live_op_nodes(fresh_graph):
    x = sg.placeholder("x", (3,))
    assert len(fresh_graph) == 0  # leaves are not interned
    a = sg.tanh(x)
    b = sg.tanh(x)
    assert len(fresh_graph) == 1 and a is b
    c = sg.sin(a)
    assert len(fresh_graph) == 2 and c.inputs == (a,)


# -- topological order --------------------------------------------------------------------------
def _assert_topological(order):
    position = {id(n): i for i, n in enumerate(order)}
    assert len(position) == len(order), "a node appears twice"
    for n in order:
        for i in n.inputs:
            assert position[id(i)] < position[id(n)], f"{i!r} comes after its user {n!r}"


def test_topo_sort_puts_inputs_first_and_lists_each_node_once():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (3,))
    a = sg.tanh(x)
    b = a * y
    c = a + b  # diamond through a
    s = sg.sin(c)
    d = s - a
    order = sg.topo_sort([d])
    _assert_topological(order)
    assert {id(n) for n in order} == {id(n) for n in (x, y, a, b, c, s, d)}
    assert sg.topo_sort([d, c]) == order  # c is already an ancestor of d
    assert sg.topo_sort([x]) == [x]


def test_topo_sort_of_unrelated_outputs_includes_both():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (2,))
    order = sg.topo_sort([sg.tanh(x), sg.exp(y)])
    _assert_topological(order)
    assert len(order) == 4


def test_topo_sort_of_nodes_built_across_intern_tables():
    leaves = [sg.placeholder(f"p{i}", (3,)) for i in range(5)]
    x = sg.placeholder("x", (3,))
    with sg.fresh_graph():
        y = sg.tanh(x + leaves[0])
        _assert_topological(sg.topo_sort([y]))


# -- build-time errors: type, message, and the user's own line ---------------------------------
def test_error_classes_are_value_errors():
    assert issubclass(sg.ShapeError, ValueError)
    assert issubclass(sg.DTypeError, ValueError)
    assert not issubclass(sg.ShapeError, sg.DTypeError)


def test_matmul_shape_error_names_op_shapes_and_user_line():
    x = sg.placeholder("x", ("batch", 3))
    W = sg.placeholder("W", (4, 2))
    with pytest.raises(sg.ShapeError, match="matmul: inner dimensions differ") as info:
        x @ W  # err:matmul
    message = str(info.value)
    assert "matmul" in message
    assert "(batch, 3)" in message and "(4, 2)" in message
    _assert_located_here(message, "err:matmul")


def test_broadcast_shape_error_names_op_shapes_and_user_line():
    a = sg.placeholder("a", (3,))
    b = sg.placeholder("b", (4,))
    with pytest.raises(sg.ShapeError, match="add: operands cannot be broadcast together") as info:
        a + b  # err:add
    message = str(info.value)
    assert "add" in message and "(3,)" in message and "(4,)" in message
    _assert_located_here(message, "err:add")


def test_shape_error_from_a_reflected_numpy_operand_points_at_user_line():
    a = sg.placeholder("a", (3,))
    with pytest.raises(sg.ShapeError, match="multiply: operands cannot be broadcast together") as info:
        np.ones(4) * a  # err:rmul
    assert "multiply" in str(info.value)
    _assert_located_here(str(info.value), "err:rmul")


def test_shape_error_inside_a_loss_points_at_user_line():
    logits = sg.placeholder("logits", (5, 3))
    target = sg.placeholder("target", (5, 4))
    with pytest.raises(sg.ShapeError, match="mse: prediction shape") as info:
        sg.mse(logits, target)  # err:mse
    message = str(info.value)
    assert "mse" in message and "(5, 3)" in message and "(5, 4)" in message
    _assert_located_here(message, "err:mse")


def _helper_that_builds_a_bad_node(x):
    return sg.concatenate([x, x.T], axis=0)  # err:helper


def test_shape_error_points_at_the_innermost_user_frame():
    x = sg.placeholder("x", (2, 3))
    with pytest.raises(sg.ShapeError, match="concatenate: shapes differ") as info:
        _helper_that_builds_a_bad_node(x)
    assert "concatenate" in str(info.value) and "(2, 3)" in str(info.value) and "(3, 2)" in str(info.value)
    _assert_located_here(str(info.value), "err:helper")


def test_reshape_to_a_wrong_size_is_a_located_shape_error():
    x = sg.placeholder("x", (3, 4))
    with pytest.raises(sg.ShapeError, match="reshape: cannot reshape 12 elements") as info:
        x.reshape(5, -1)  # err:reshape
    assert "reshape" in str(info.value) and "(3, 4)" in str(info.value)
    _assert_located_here(str(info.value), "err:reshape")


def test_dtype_error_where_with_a_non_boolean_condition():
    a = sg.placeholder("a", (3,))
    with pytest.raises(sg.DTypeError, match="where: the condition must be boolean") as info:
        sg.where(a, a, 0.0)  # err:where
    assert "where" in str(info.value) and "float64" in str(info.value)
    _assert_located_here(str(info.value), "err:where")


def test_dtype_error_one_hot_of_floats():
    labels = sg.placeholder("labels", (5,))
    with pytest.raises(sg.DTypeError, match="one_hot: labels must be integer") as info:
        sg.one_hot(labels, 3)  # err:one_hot
    assert "one_hot" in str(info.value)
    _assert_located_here(str(info.value), "err:one_hot")
    assert sg.one_hot(sg.placeholder("ok", (5,), dtype="int64"), 3).shape == (5, 3)


def test_dtype_error_arithmetic_on_two_booleans():
    a = sg.placeholder("a", (3,))
    with pytest.raises(sg.DTypeError, match="add: arithmetic on booleans") as info:
        (a > 0) + (a < 1)  # err:bool_add
    assert "add" in str(info.value) and "bool" in str(info.value)
    _assert_located_here(str(info.value), "err:bool_add")
    with pytest.raises(sg.DTypeError, match="multiply: arithmetic on booleans"):
        (a > 0) * (a < 1)


def test_reduction_axis_out_of_range():
    x = sg.placeholder("x", (3, 4))
    with pytest.raises(ValueError, match="axis"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="axis"):
        sg.mean(x, axis=-3)
    with pytest.raises(ValueError, match="axis"):
        sg.max(x, axis=(0, 0))  # repeated
    with pytest.raises(ValueError, match="softmax: axis 5 is out of range"):
        sg.softmax(x, axis=5)


def test_reduction_axis_out_of_range_is_a_located_shape_error():
    x = sg.placeholder("x", (3, 4))
    with pytest.raises(sg.ShapeError, match="sum: axis 2 is out of range") as info:
        x.sum(axis=2)  # err:axis
    _assert_located_here(str(info.value), "err:axis")


def test_reshape_with_two_minus_ones():
    x = sg.placeholder("x", (3, 4))
    with pytest.raises(ValueError, match="-1"):
        x.reshape(-1, -1)
    assert x.reshape(-1, 2).shape == (6, 2)


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5, "0.1"])
def test_invalid_leaky_relu_alpha(alpha):
    x = sg.placeholder("x", (3,))
    with pytest.raises(ValueError, match="alpha"):
        sg.leaky_relu(x, alpha)


def test_no_node_is_built_when_an_error_is_raised(fresh_graph):
    a = sg.placeholder("a", (3,))
    b = sg.placeholder("b", (4,))
    with pytest.raises(sg.ShapeError, match="multiply: operands cannot be broadcast together"):
        a * b
    assert len(fresh_graph) == 0


# -- indexing with what NumPy calls fancy indexing (issue 11: "truth value ... is ambiguous";
# issue 16: integer arrays and NumPy masks index, a mask node is refused: its count is not static) ----


@pytest.mark.parametrize("index, what", [
    (True, "a bool \\(True\\)"),
    (np.bool_(False), "a bool \\(np.False_\\)"),
])
def test_indexing_with_a_bool_is_a_clear_error(index, what):
    x = sg.placeholder("x", (3,))
    with pytest.raises(TypeError, match=f"getitem of 'x': only ints, slices and ... can index a node, got {what}; "
                                        "select by a mask with sg.where"):
        x[index]
    with pytest.raises(TypeError, match="^getitem: only ints"):
        sg.tanh(x)[index]  # an unnamed node


def test_indexing_with_a_mask_node_is_a_clear_error_about_the_shape():
    x = sg.placeholder("x", (3,))
    with pytest.raises(TypeError, match="getitem of 'x': indexing with a boolean mask node .* no static shape; "
                                        "use sg.where"):
        x[x > 0]
    with pytest.raises(TypeError, match="^getitem: indexing with a boolean mask node"):
        sg.tanh(x)[(Ellipsis, x > 0)]


@pytest.mark.parametrize("index", [
    np.array([True, False, True]), [True, False, True], (Ellipsis, np.array([True, False, True])),
    np.array([0, 2]), [0, 2], [0, -1], (Ellipsis, [2, 0, 0]),
])
def test_indexing_with_an_integer_array_or_a_numpy_mask_is_numpys(index):
    import codegen

    x = sg.placeholder("x", (3,))
    value = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(codegen.evaluate(x[index], {x: value}), value[index])


def test_indexing_with_an_index_placeholder_checks_the_indices_on_every_call():
    import codegen

    x, i = sg.placeholder("x", (3,)), sg.placeholder("i", (2,), dtype="int64")
    f = codegen.compile([x, i], x[i])
    np.testing.assert_array_equal(f(np.array([1.0, 2.0, 3.0]), np.array([2, 2])), [3.0, 3.0])
    with pytest.raises(ValueError, match="0 to 2"):
        f(np.array([1.0, 2.0, 3.0]), np.array([0, 3]))
    with pytest.raises(ValueError, match="0 to 2"):
        f(np.array([1.0, 2.0, 3.0]), np.array([-1, 0]))

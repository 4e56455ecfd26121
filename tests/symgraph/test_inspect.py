"""Looking at graphs and cleaning them: dprint, count_ops, to_networkx, to_dot and simplify.

Listings are checked with regular expressions and against the graph itself,
never against golden text.
"""

import re
from collections import Counter

import networkx as nx
import numpy as np
import pytest

import codegen
import symgraph as sg

# `%t3 = tanh(%t2)  (2, 4) float64`: a name, an op (with arguments unless a leaf), the shape, the dtype
LINE = re.compile(r"^%(?P<name>\S+) = (?P<op>[A-Za-z_][\w/]*)(?:\((?P<args>.*)\))?  (?P<shape>\([^()]*\)) (?P<dtype>\w+)$")


def _shape_text(shape):
    inner = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _inlined(node):
    """dprint writes unnamed scalar constants inline instead of on a line of their own."""
    return node.op.name == "constant" and node.ndim == 0 and not node.name


def _sample_graph():
    x = sg.placeholder("x", ("batch", 3))
    W = sg.parameter("W", value=np.ones((3, 4)))
    b = sg.constant(np.zeros(4))
    h = sg.tanh(x @ W + b)
    out = (h * 2.0).sum(axis=1) + sg.sigmoid(h).mean(axis=1)
    return x, W, h, out


# -- dprint -------------------------------------------------------------------------------------
def test_dprint_one_line_per_node_in_topological_order():
    x, W, h, out = _sample_graph()
    text = sg.dprint(out)
    assert isinstance(text, str)
    lines = text.splitlines()
    nodes = [n for n in sg.topo_sort([out]) if not _inlined(n)]
    assert len(lines) == len(nodes)
    defined = set()
    for line, node in zip(lines, nodes):
        m = LINE.match(line)
        assert m, f"not an SSA line: {line!r}"
        assert m["op"] == node.op.name
        assert m["shape"] == _shape_text(node.shape)
        assert m["dtype"] == str(node.dtype)
        for ref in re.findall(r"%([^\s,()]+)", m["args"] or ""):
            assert ref in defined, f"{ref} used before it is defined in {line!r}"
        assert m["name"] not in defined, f"{m['name']} defined twice"
        defined.add(m["name"])
        if node.inputs:
            assert m["args"] is not None
            # every input appears as an argument: a reference or an inline scalar
            assert len(re.findall(r"%[^\s,()]+|-?\d+\.?\d*(?:e-?\d+)?", m["args"])) >= len(node.inputs)


def test_dprint_names_leaves_after_themselves():
    x = sg.placeholder("inputs", (2, 4))
    t = sg.tanh(x * 3.0)
    lines = sg.dprint(t).splitlines()
    assert re.match(r"^%inputs = placeholder  \(2, 4\) float64$", lines[0])
    product = re.match(r"^%(\w+) = multiply\(%inputs, (3\.0|%\w+)\)  \(2, 4\) float64$", lines[-2])
    assert product, lines
    assert re.match(rf"^%\w+ = tanh\(%{product[1]}\)  \(2, 4\) float64$", lines[-1])
    assert "3" in "\n".join(lines[1:-1])  # the scalar, inline or on its own line


def test_dprint_of_several_outputs_lists_shared_nodes_once():
    x = sg.placeholder("x", (3,))
    a = sg.tanh(x)
    lines = sg.dprint([sg.sin(a), sg.cos(a)]).splitlines()
    assert len(lines) == 4
    assert sum(" = tanh(" in line for line in lines) == 1
    assert sg.dprint([a]) == sg.dprint(a)


def test_dprint_gives_same_named_leaves_distinct_labels():
    a = sg.placeholder("x", (3,))
    b = sg.placeholder("x", (3,))
    lines = sg.dprint(a * b).splitlines()
    names = [LINE.match(line)["name"] for line in lines]
    assert len(set(names)) == 3
    assert LINE.match(lines[2])["args"] == f"%{names[0]}, %{names[1]}"


def test_dprint_labels_stay_unique_when_a_name_looks_like_a_generated_one():
    a = sg.placeholder("x", (3,))
    b = sg.placeholder("x", (3,))
    c = sg.placeholder("x_2", (3,))
    lines = sg.dprint(a + b + c).splitlines()
    names = [LINE.match(line)["name"] for line in lines]
    assert len(set(names)) == len(names) == 5


def test_dprint_keeps_one_line_per_node_for_odd_names():
    x = sg.placeholder('a"b\nc', (2,))
    lines = sg.dprint(sg.tanh(x)).splitlines()
    assert len(lines) == 2


# -- count_ops ----------------------------------------------------------------------------------
def test_count_ops_counts_each_distinct_node_once():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (3,))
    t = sg.tanh(x)
    out = t * t + sg.tanh(y) + sg.constant(np.arange(3.0))
    counts = sg.count_ops(out)
    assert isinstance(counts, dict)
    assert counts == {"placeholder": 2, "tanh": 2, "multiply": 1, "add": 2, "constant": 1}
    assert sum(counts.values()) == len(sg.topo_sort([out]))


def test_count_ops_of_several_outputs_is_their_union():
    x = sg.placeholder("x", (3,))
    a, b = sg.sin(x), sg.cos(x)
    assert sg.count_ops([a, b]) == {"placeholder": 1, "sin": 1, "cos": 1}
    assert sg.count_ops([a, a]) == sg.count_ops(a) == {"placeholder": 1, "sin": 1}


def test_count_ops_of_a_gradient_graph_includes_the_forward_values_it_reuses():
    x = sg.placeholder("x", (3,))
    g = sg.grad(sg.tanh(x).sum(), x)
    counts = sg.count_ops(g)
    assert counts.get("tanh") == 1  # the backward pass reads the forward tanh, it does not rebuild it
    assert counts.get("placeholder") == 1


# -- to_networkx ----------------------------------------------------------------------------------
def test_to_networkx_has_one_vertex_per_node_and_input_to_user_edges():
    x, W, h, out = _sample_graph()
    g = sg.to_networkx(out)
    assert isinstance(g, nx.DiGraph)
    order = sg.topo_sort([out])
    assert g.number_of_nodes() == len(order)
    assert nx.is_directed_acyclic_graph(g)
    assert g.number_of_edges() == sum(len(set(map(id, n.inputs))) for n in order)
    by_node = {id(data["node"]): key for key, data in g.nodes(data=True)}
    for n in order:
        key = by_node[id(n)]
        assert set(g.predecessors(key)) == {by_node[id(i)] for i in n.inputs}
    # every topological order of the networkx graph is one in which inputs come first
    position = {key: i for i, key in enumerate(nx.topological_sort(g))}
    for n in order:
        for i in n.inputs:
            assert position[by_node[id(i)]] < position[by_node[id(n)]]
    assert g.in_degree(by_node[id(x)]) == 0 and g.out_degree(by_node[id(out)]) == 0


def test_to_networkx_vertices_carry_op_shape_and_dtype():
    x, W, h, out = _sample_graph()
    g = sg.to_networkx(out)
    got = Counter((d["op"], tuple(d["shape"]), str(d["dtype"])) for _, d in g.nodes(data=True))
    want = Counter((n.op.name, n.shape, str(n.dtype)) for n in sg.topo_sort([out]))
    assert got == want


def test_to_networkx_one_edge_for_an_input_used_twice():
    x = sg.placeholder("x", (3,))
    g = sg.to_networkx(x * x)
    assert g.number_of_nodes() == 2 and g.number_of_edges() == 1


def test_to_networkx_keeps_distinct_nodes_distinct_whatever_their_names():
    a = sg.placeholder("x", (3,))
    b = sg.placeholder("x", (3,))
    c = sg.placeholder("x_2", (3,))
    out = a + b + c
    assert sg.to_networkx(out).number_of_nodes() == len(sg.topo_sort([out]))


# -- to_dot ---------------------------------------------------------------------------------------
DOT_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<arrow>->)|(?P<id>[A-Za-z_][\w.]*|-?\d+(?:\.\d+)?)|(?P<punct>[{}\[\];,=]))')


def _dot_tokens(text):
    """Tokens of a DOT text; fails on anything that is not a well-formed token (an unbalanced quote, say)."""
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        m = DOT_TOKEN.match(text, pos)
        assert m and m.end() > pos, f"cannot tokenize DOT at {text[pos:pos + 30]!r}"
        kind = m.lastgroup
        tokens.append((kind, m[kind]))
        pos = m.end()
    return tokens


def _unquote(token):
    kind, value = token
    if kind != "str":
        return value
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "l": "\n", "r": "\n"}.get(m[1], m[1]), value[1:-1])


def _parse_dot(text):
    """Vertex statements ({id: attrs}) and edges of a flat `digraph name { ... }`."""
    tokens = _dot_tokens(text)
    assert tokens[0] == ("id", "digraph") and tokens[2] == ("punct", "{") and tokens[-1] == ("punct", "}")
    vertices, edges, stmt = {}, [], []
    for tok in tokens[3:-1]:
        if tok != ("punct", ";"):
            stmt.append(tok)
            continue
        if len(stmt) >= 3 and stmt[1][0] == "arrow":  # a -> b [label="0"]
            edges.append((_unquote(stmt[0]), _unquote(stmt[2])))
        elif stmt[0][1] not in ("node", "edge", "graph") and not (len(stmt) == 3 and stmt[1] == ("punct", "=")):
            assert stmt[1] == ("punct", "[") and stmt[-1] == ("punct", "]"), stmt
            attrs, body = {}, stmt[2:-1]
            for i in range(0, len(body), 4):  # key = value [,]
                assert body[i + 1] == ("punct", "="), body
                attrs[body[i][1]] = _unquote(body[i + 2])
            vertices[_unquote(stmt[0])] = attrs
        stmt = []
    assert not stmt, f"unterminated statement {stmt}"
    return vertices, edges


def test_to_dot_lists_every_node_and_edge():
    x, W, h, out = _sample_graph()
    text = sg.to_dot(out)
    assert isinstance(text, str) and text.lstrip().startswith("digraph")
    vertices, edges = _parse_dot(text)
    g = sg.to_networkx(out)
    assert len(vertices) == g.number_of_nodes()
    assert set(edges) == set(g.edges())
    assert all(v in vertices for e in edges for v in e)


def test_to_dot_escapes_quotes_and_newlines_in_names():
    name = 'a"b\nc'
    x = sg.placeholder(name, (2,))
    y = sg.placeholder("back\\slash", (2,))
    text = sg.to_dot(sg.tanh(x) + y)
    for line in text.splitlines():  # a raw newline inside a quoted string would split a statement
        assert len(re.findall(r'(?<!\\)(?:\\\\)*"', line)) % 2 == 0, f"unbalanced quotes in {line!r}"
    vertices, edges = _parse_dot(text)
    assert len(vertices) == 4 and len(edges) == 3
    labels = [attrs.get("label", key) for key, attrs in vertices.items()]
    for text in (name, "back\\slash"):  # named as in generated code, the user's text shown escaped on one line
        shown = text.encode("unicode_escape").decode("ascii")
        assert any(shown in label.split("\n")[0] for label in labels), labels


# -- simplify -------------------------------------------------------------------------------------
def test_simplify_returns_a_node_for_a_node_and_a_list_for_a_list():
    x = sg.placeholder("x", (3,))
    out = sg.tanh(x) * (sg.constant(2.0) + 1.0)
    single = sg.simplify(out)
    assert isinstance(single, sg.Node) and single.shape == out.shape and single.dtype == out.dtype
    many = sg.simplify([out, x])
    assert isinstance(many, list) and len(many) == 2
    assert many[0] is single and many[1] is x


def test_simplify_report():
    x = sg.placeholder("x", (3,))
    c = sg.constant(np.arange(3.0))
    out = x * (sg.exp(c) * 2.0 + 1.0)
    result, report = sg.simplify(out, report=True)
    assert isinstance(result, sg.Node)
    assert report.nodes_before == len(sg.topo_sort([out])) == 8
    assert report.nodes_after == len(sg.topo_sort([result])) <= 3  # x, one folded constant, one product
    assert sum(report.rules.values()) >= 1  # at least one (folding) rule fired
    assert all(isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in report.rules.items())
    assert "8" in str(report) and str(report.nodes_after) in str(report)
    listed, report2 = sg.simplify([out], report=True)
    assert isinstance(listed, list) and listed[0] is result and report2.nodes_after == report.nodes_after


def test_constant_folding_of_an_all_constant_subgraph():
    c = sg.constant(np.array([[0.5, -1.0], [2.0, 0.0]]))
    out = sg.tanh(c @ c.T + 1.0).sum(axis=0) * 3.0
    folded = sg.simplify(out)
    assert folded.op.name == "constant" and folded.inputs == ()
    value = np.array([[0.5, -1.0], [2.0, 0.0]])
    np.testing.assert_allclose(folded.value, np.tanh(value @ value.T + 1.0).sum(axis=0) * 3.0, rtol=1e-12)
    assert folded.shape == out.shape and folded.dtype == out.dtype


def test_constant_folding_keeps_float32():
    c = sg.constant(np.array([1.0, 2.0], dtype=np.float32))
    x = sg.placeholder("x", (2,), dtype="float32")
    out = x * sg.exp(c * 0.5)
    simplified = sg.simplify(out)
    assert simplified.dtype == np.float32
    (const,) = [n for n in sg.topo_sort([simplified]) if n.op.name == "constant"]
    assert const.dtype == np.float32


def test_simplified_graph_computes_the_same_values(rng):
    x = sg.placeholder("x", (4, 3))
    W = sg.parameter("W", value=rng.normal(size=(3, 2)))
    k = sg.constant(rng.normal(size=(2,)))
    cost = (sg.tanh(x @ W + sg.exp(k) * 2.0) * sg.sin(k)).mean()
    outs = [cost, *sg.grad(cost, [x, W])]
    simplified = sg.simplify(outs)
    xv = rng.normal(size=(4, 3))
    before = codegen.compile([x], outs, simplify=False)(xv)
    after = codegen.compile([x], simplified, simplify=False)(xv)
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert len(sg.topo_sort(simplified)) < len(sg.topo_sort(outs))


def test_simplify_leaves_the_input_graph_unchanged_and_is_idempotent():
    x = sg.placeholder("x", (3,))
    inner = sg.constant(2.0) * 3.0
    out = sg.tanh(x) + inner
    inputs_before = out.inputs
    once = sg.simplify(out)
    assert out.inputs == inputs_before and out.inputs[1] is inner and inner.op.name == "multiply"
    twice, report = sg.simplify(once, report=True)
    assert twice is once
    assert report.nodes_before == report.nodes_after and sum(report.rules.values()) == 0


def test_simplify_drops_dead_code():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (3,))
    shared = sg.tanh(x)
    unused = sg.sin(shared) * sg.exp(y)  # built, but not requested
    out = shared + 1.0
    result = sg.simplify(out)
    kept = sg.topo_sort([result])
    assert all(n is not unused and n.op not in ("sin", "exp") for n in kept)
    assert y not in kept
    # and folding removes the now-dead constant operands
    folded = sg.simplify(x * sg.sqrt(sg.constant(np.array([4.0, 9.0, 16.0]))))
    assert sg.count_ops(folded) == {"placeholder": 1, "constant": 1, "multiply": 1}


def test_printed_attributes_are_the_builders_keywords():
    """dprint's `op(%x, axis=(-1,))` can be typed back: each builder takes the keyword dprint shows
    and gives the same (hash-consed) node. Issue 11: squeeze printed `axes=` but refused it."""
    x = sg.placeholder("x", (3, 1, 4))
    built = {
        "squeeze": sg.squeeze(x, 1), "expand_dims": sg.expand_dims(x, 0), "sum": x.sum(axis=(0, 2)),
        "mean": sg.mean(x, 0, keepdims=True), "max": sg.max(x, -1), "logsumexp": sg.logsumexp(x, axis=-1),
        "transpose": sg.transpose(x, (2, 0, 1)), "reshape": x.reshape((4, 3)), "softmax": sg.softmax(x, 0),
    }
    for op, node in built.items():
        line = sg.dprint(node).splitlines()[-1]
        keywords = dict(re.findall(r", (\w+)=(\([^)]*\)|[^,)]+)", line))
        assert keywords, line
        rebuilt = getattr(sg, op)(x, **{k: eval(v) for k, v in keywords.items()})
        assert rebuilt is node, (line, rebuilt)


def test_squeeze_takes_axis_or_axes_once():
    x = sg.placeholder("x", (3, 1))
    assert sg.squeeze(x, axis=-1) is sg.squeeze(x, axes=(-1,)) is sg.squeeze(x, 1)
    with pytest.raises(TypeError, match="squeeze: give the axes to remove as axis=... \\(or axes=...\\), exactly once"):
        sg.squeeze(x, axis=1, axes=1)
    with pytest.raises(TypeError, match="squeeze: give the axes"):
        sg.squeeze(x)

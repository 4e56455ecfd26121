"""``sg.explore``: one self-contained HTML page to look inside a compiled graph.

The page shows the graph as a picture (inline SVG, one ``<g class="node">`` per node) beside the
NumPy code :func:`codegen.compile` generates for it (one ``<span class="line">`` per source line).
Clicking a node highlights the lines that compute it (for a value folded into another line, that
line); clicking a line highlights the nodes it computes. With a ``feed``, a control steps through
the forward sweep (each value, in the order the code computes them) and, for a scalar output, the
reverse sweep (each adjoint, from the output back to the inputs), the values from
:func:`symgraph.trace`.

The page needs no network: its CSS, JavaScript and data are inline, and it opens from file://.
"""

from __future__ import annotations

import html
import json
import os

import numpy as np

from .graph import Constant, Node, Parameter, Placeholder, topo_sort
from .files import atomic_write
from .shapes import format_shape

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 124, 38, 22, 46, 16  # the picture's geometry, in pixels


def explore(outputs, path, feed: dict | None = None, wrt=None, simplify: bool = False, memory_plan: bool = False,
            title: str | None = None) -> str:
    """Write the explorer page of ``outputs`` (a node or a list) to ``path``; returns the path.

    ``feed``: {placeholder (or its name): array}; with it the page steps through the sweeps with
    values. ``wrt``: the nodes the reverse sweep differentiates the first output with respect
    to (default: every float placeholder and parameter; see :func:`symgraph.trace`). ``simplify``: draw and compile the simplified graph (by default the graph as built,
    so every node drawn is one you wrote). ``memory_plan``: print buffer writes (``out=buf1``) as
    ``codegen.compile`` does by default; the page shows plain expressions unless asked.
    """
    import codegen  # (codegen imports symgraph)

    outputs = [outputs] if isinstance(outputs, Node) else list(outputs)
    order = topo_sort(outputs)
    feed = _bind_feed(feed or {}, order)
    inputs = [n for n in order if type(n.op) is Placeholder]
    fn = codegen.compile(inputs, outputs, simplify=simplify, memory_plan=memory_plan)
    order = topo_sort(fn.outputs)
    lines = _node_lines(order, fn.line_of)
    names = _names(order, fn.name_of, fn.line_of)
    sweeps = _sweeps(order, fn.outputs, feed, names, lines, wrt) if feed or not inputs else []
    page = _page(title or f"symgraph explorer: {fn.name}", order, names, fn.source, lines, fn.line_of, sweeps)
    path = os.fspath(path)
    return atomic_write(path, lambda f: f.write(page), "explore", "page", binary=False)


def _bind_feed(feed: dict, order: list[Node]) -> dict[Node, np.ndarray]:
    """{placeholder: array}, the keys given as placeholders or by name."""
    by_name = {n.name: n for n in order if type(n.op) is Placeholder}
    bound = {}
    for key, value in feed.items():
        node = by_name.get(key) if isinstance(key, str) else key
        if node is None:
            raise KeyError(f"explore: feed names {key!r}, which is not a placeholder of the graph")
        bound[node] = np.asarray(value, dtype=node.dtype)
    return bound


def _node_lines(order: list[Node], line_of: dict[int, list[int]]) -> dict[int, list[int]]:
    """{id(node): its source lines}: a node the code folded into its user's line (or printed as
    its input) gets the lines of the users that print it. Leaves and constants have none."""
    users: dict[int, list[Node]] = {}
    for node in order:
        for x in node.inputs:
            users.setdefault(id(x), []).append(node)
    lines: dict[int, list[int]] = {}
    for node in reversed(order):  # users first
        own = line_of.get(id(node))
        if own:
            lines[id(node)] = list(own)
        elif node.inputs:
            lines[id(node)] = sorted({k for u in users.get(id(node), []) for k in lines.get(id(u), [])})
    return lines


def _names(order: list[Node], name_of: dict[int, str], line_of: dict[int, list[int]]) -> dict[int, str]:
    """Each node's name in the generated code (or its own name, or its op's). A value folded into
    another line has only a would-be name there, maybe shared: it is made unique (``matmul_2``)."""
    names, used = {}, set()
    for n in sorted(order, key=lambda n: id(n) not in line_of):  # the code's own names first
        name = base = name_of.get(id(n)) or n.name or n.op.name
        k = 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        names[id(n)] = name
        used.add(name)
    return names


def _kind(node: Node) -> str:
    if isinstance(node.op, Parameter):
        return "parameter"
    if isinstance(node.op, Placeholder):
        return "input"
    return "constant" if isinstance(node.op, Constant) else "op"


def _format(value) -> str:
    """A value as the page shows it: short arrays in full, long ones summarized."""
    return np.array2string(np.asarray(value), precision=4, threshold=60, edgeitems=3, suppress_small=True)


# -- the sweeps ---------------------------------------------------------------------------------

def _sweeps(order, outputs, feed, names, lines, wrt) -> list[dict]:
    """The sweeps as page steps ``{nodes, lines, label, value}`` (nodes by index, the first the one the
    step is about). A scalar float first output is traced (:func:`symgraph.trace`): its forward sweep,
    then its reverse sweep, each adjoint step on its primal node and, when the page draws it, on the
    gradient node the code names as the trace does (``grad_h``), with that node's lines. Other
    outputs: the forward sweep of every node drawn, each value from its op's ``compute``."""
    index = {id(n): i for i, n in enumerate(order)}
    by_name = {names[id(n)]: i for i, n in enumerate(order)}

    def step(node, name, label, value, adjoint=False):
        """A step about ``node`` (a forward value, or the primal of an adjoint named ``name``)."""
        primal = index.get(id(node), None if adjoint else by_name.get(name))
        shown = by_name.get(name) if adjoint else primal  # the node whose lines the step highlights
        nodes = [i for i in dict.fromkeys([primal, shown]) if i is not None]
        return {"nodes": nodes, "lines": [] if shown is None else lines.get(id(order[shown]), []),
                "label": label, "value": _format(value)}

    out = outputs[0]
    if out.shape == () and out.dtype.kind == "f":
        from .trace import trace

        needed = {id(n) for n in topo_sort([out])}
        t = trace(out, {k: v for k, v in feed.items() if id(k) in needed}, wrt=wrt)
        return [{"name": "forward", "steps": [step(r.node, r.name, f"{r.name} = {r.op}", r.value) for r in t.forward]},
                {"name": "reverse", "steps": [step(r.node, r.name, f"{r.name} = {r.op}", r.value, adjoint=True)
                                              for r in t.reverse]}]
    values = _forward_values(order, {id(k): v for k, v in feed.items()})
    computed = sorted((n for n in order if not isinstance(n.op, Constant)),
                      key=lambda n: (min(lines.get(id(n)) or [0]), index[id(n)]))
    return [{"name": "forward", "steps": [step(n, names[id(n)], f"{names[id(n)]} = {n.op.name}", values[id(n)])
                                          for n in computed]}]


def _forward_values(order: list[Node], feed: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Every node's value, from the feed, the parameters' arrays and each op's ``compute``."""
    values: dict[int, np.ndarray] = {}
    for node in order:
        if isinstance(node.op, Parameter):
            values[id(node)] = np.asarray(node.op.value)
        elif isinstance(node.op, Placeholder):
            values[id(node)] = feed[id(node)]
        else:
            values[id(node)] = np.asarray(node.op.compute(*(values[id(x)] for x in node.inputs)))
    return values


# -- the page ---------------------------------------------------------------------------------------

def _layout(order: list[Node]) -> dict[int, tuple[float, float]]:
    """{id(node): (x, y)} of each box's top-left corner: one row per topological depth (the longest
    path from a leaf), each row ordered by the mean position of the nodes' inputs above."""
    depth: dict[int, int] = {}
    for node in order:
        depth[id(node)] = 1 + max((depth[id(x)] for x in node.inputs), default=-1)
    rows: list[list[Node]] = [[] for _ in range(max(depth.values(), default=0) + 1)]
    for node in order:
        rows[depth[id(node)]].append(node)
    slot: dict[int, float] = {}
    for row in rows:
        keyed = [(np.mean([slot[id(x)] for x in n.inputs]) if n.inputs else i, i, n) for i, n in enumerate(row)]
        for i, (_, _, n) in enumerate(sorted(keyed, key=lambda t: (t[0], t[1]))):
            slot[id(n)] = i
    width = max(len(r) for r in rows) if rows else 1
    pos = {}
    for r, row in enumerate(rows):
        shift = (width - len(row)) * (BOX_W + GAP_X) / 2  # center each row
        for n in row:
            pos[id(n)] = (MARGIN + shift + slot[id(n)] * (BOX_W + GAP_X), MARGIN + r * (BOX_H + GAP_Y))
    return pos


def _svg(order: list[Node], names: dict[int, str]) -> str:
    """The picture: edges as curves with arrowheads, then one ``<g class="node" id="node-<i>">`` per node."""
    pos = _layout(order)
    index = {id(n): i for i, n in enumerate(order)}
    width = max((x for x, _ in pos.values()), default=0) + BOX_W + MARGIN
    height = max((y for _, y in pos.values()), default=0) + BOX_H + MARGIN
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
    for node in order:
        x2, y2 = pos[id(node)]
        for x in dict.fromkeys(node.inputs):  # one edge per input, however many slots it fills
            x1, y1 = pos[id(x)]
            a, b = (x1 + BOX_W / 2, y1 + BOX_H), (x2 + BOX_W / 2, y2)
            mid = (a[1] + b[1]) / 2
            out.append(f'<path class="edge" data-from="{index[id(x)]}" data-to="{index[id(node)]}" '
                       f'd="M{a[0]:.1f},{a[1]:.1f} C{a[0]:.1f},{mid:.1f} {b[0]:.1f},{mid:.1f} {b[0]:.1f},{b[1]:.1f}" '
                       'marker-end="url(#arrow)"/>')
    for i, node in enumerate(order):
        x, y = pos[id(node)]
        name, detail = names[id(node)], f"{node.op.name} {format_shape(node.shape)}"
        own = f" (named {node.name!r})" if node.name and node.name != name else ""
        rx = BOX_H / 2 if node.is_leaf else 4
        out.append(
            f'<g class="node {_kind(node)}" id="node-{i}" data-node="{i}" transform="translate({x:.1f},{y:.1f})">'
            f'<title>{html.escape(name + own)}: {html.escape(detail)} {node.dtype}</title>'
            f'<rect width="{BOX_W}" height="{BOX_H}" rx="{rx}"/>'
            f'<text x="{BOX_W / 2}" y="15" class="name">{html.escape(_clip(name))}</text>'
            f'<text x="{BOX_W / 2}" y="30" class="detail">{html.escape(_clip(detail))}</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def _clip(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _code(source: str) -> str:
    """The source, one ``<span class="line" id="line-<k>">`` per line (k from 1), numbered."""
    return "".join(f'<span class="line" id="line-{k}" data-line="{k}"><span class="ln">{k}</span>'
                   f"{html.escape(text)}\n</span>" for k, text in enumerate(source.splitlines(), 1))


def _script_json(data) -> str:
    """JSON for an inline ``<script>``: ``<`` escaped, so no text can close the element."""
    return json.dumps(data).replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _line_nodes(order, lines, line_of) -> dict[int, list[int]]:
    """{line: indices of the nodes it computes}: the node whose statement it is first, then those folded in."""
    found: dict[int, list[int]] = {}
    for own in (True, False):
        for i, n in enumerate(order):
            for k in (line_of.get(id(n), []) if own else lines.get(id(n), [])):
                if i not in found.setdefault(k, []):
                    found[k].append(i)
    return found


def _page(title, order, names, source, lines, line_of, sweeps) -> str:
    nodes = [{"name": names[id(n)], "op": n.op.name, "shape": format_shape(n.shape), "dtype": str(n.dtype),
              "kind": _kind(n), "lines": lines.get(id(n), [])} for n in order]
    text = source.splitlines()
    start = max(k for k, line in enumerate(text) if line.startswith("def "))  # the function, last in the module
    while start > 0 and text[start - 1].strip():  # and its decorator
        start -= 1
    data = {"nodes": nodes, "lineNodes": _line_nodes(order, lines, line_of), "sweeps": sweeps, "start": start + 1}
    controls = ('<select id="sweep">' + "".join(
        f'<option value="{i}">{html.escape(s["name"])} sweep ({len(s["steps"])} steps)</option>'
        for i, s in enumerate(sweeps)) + '</select><button id="prev" title="previous step (left arrow)">'
        '\u25c0</button><button id="next" title="next step (right arrow)">\u25b6</button>'
        if sweeps else '<span class="hint">pass feed= to step through the sweeps with values</span>')
    return _TEMPLATE.format(title=html.escape(title), css=_CSS, controls=controls, svg=_svg(order, names),
                            code=_code(source), data=_script_json(data), js=_JS)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{css}</style></head>
<body>
<header><h1>{title}</h1><div id="controls">{controls}</div></header>
<div id="info"><span id="status">Click a node or a line.</span><pre id="value"></pre></div>
<main><div id="graph">{svg}</div><pre id="code">{code}</pre></main>
<script>const DATA = {data};
{js}</script>
</body></html>
"""

_CSS = """
body { margin: 0; font: 14px system-ui, sans-serif; color: #222; }
header { display: flex; align-items: center; gap: 1em; padding: 6px 12px; background: #f3f3f6;
         border-bottom: 1px solid #ccc; }
h1 { font-size: 16px; margin: 0; }
#controls button, #controls select { font-size: 14px; margin-right: 4px; }
.hint { color: #777; }
#info { padding: 4px 12px; border-bottom: 1px solid #ddd; min-height: 1.5em; }
#status { font-weight: 600; }
#value { margin: 2px 0; max-height: 8em; overflow: auto; font-size: 12px; }
main { display: flex; height: calc(100vh - 120px); }
#graph { flex: 1; overflow: auto; border-right: 1px solid #ccc; }
#code { flex: 1; overflow: auto; margin: 0; padding: 6px 0; font: 12px/1.45 ui-monospace, monospace; }
.line { display: block; padding-right: 8px; cursor: pointer; white-space: pre; }
.line:hover { background: #f4f4f4; }
.line.hl { background: #ffe680; }
.ln { display: inline-block; width: 3.5em; color: #999; text-align: right; margin-right: 1em; user-select: none; }
.edge { fill: none; stroke: #999; stroke-width: 1.2; }
marker path { fill: #999; }
.node { cursor: pointer; }
.node rect { fill: #fff; stroke: #555; stroke-width: 1.2; }
.node.input rect { fill: #dbeafe; }
.node.parameter rect { fill: #dcfce7; }
.node.constant rect { fill: #eee; }
.node text { text-anchor: middle; font-size: 11px; pointer-events: none; }
.node text.name { font-weight: 600; }
.node text.detail { fill: #555; font-size: 10px; }
.node.selected rect { stroke: #d97706; stroke-width: 3; fill: #fff3c4; }
.node.related rect { stroke: #d97706; stroke-dasharray: 4 2; stroke-width: 2; }
"""

_JS = r"""
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const lineNodes = DATA.lineNodes;  // line number -> the nodes it computes
  let sweep = 0, step = -1;
  $("code").scrollTop = $("line-" + DATA.start).offsetTop - $("code").offsetTop;  // open at the function

  function clear() {
    document.querySelectorAll(".selected, .related, .hl").forEach((e) => e.classList.remove("selected", "related", "hl"));
  }
  function highlight(nodes, lines) {
    clear();
    nodes.forEach((i, j) => $("node-" + i).classList.add(j === 0 ? "selected" : "related"));
    lines.forEach((k) => $("line-" + k).classList.add("hl"));
    if (lines.length) $("line-" + lines[0]).scrollIntoView({block: "nearest"});
    if (nodes.length) $("node-" + nodes[0]).scrollIntoView({block: "nearest", inline: "nearest"});
  }
  function describe(i) {
    const n = DATA.nodes[i];
    return n.name + ": " + n.op + " " + n.shape + " " + n.dtype +
      (n.lines.length ? "  (line " + n.lines.join(", ") + ")" : n.kind === "op" ? "" : "  (" + n.kind + ")");
  }
  function show(status, value) {
    $("status").textContent = status;
    $("value").textContent = value || "";
  }
  function selectNode(i) {
    highlight([i], DATA.nodes[i].lines);
    show(describe(i), "");
  }
  function selectLine(k) {
    const nodes = lineNodes[k] || [];
    if (!nodes.length) { clear(); $("line-" + k).classList.add("hl"); show("line " + k + ": no node", ""); return; }
    highlight(nodes, [k]);
    show("line " + k + " computes " + nodes.map((i) => DATA.nodes[i].name).join(", "), "");
  }
  function go(delta) {
    const steps = DATA.sweeps[sweep].steps;
    if (!steps.length) return;
    step = Math.max(0, Math.min(steps.length - 1, step + delta));
    const s = steps[step];
    highlight(s.nodes, s.lines);
    show(DATA.sweeps[sweep].name + " " + (step + 1) + "/" + steps.length + ": " + s.label, s.value);
  }

  document.querySelectorAll(".node").forEach((g) => g.addEventListener("click", () => selectNode(+g.dataset.node)));
  $("code").addEventListener("click", (e) => {
    const line = e.target.closest(".line");
    if (line) selectLine(+line.dataset.line);
  });
  if (DATA.sweeps.length) {
    $("sweep").addEventListener("change", (e) => { sweep = +e.target.value; step = -1; go(1); });
    $("prev").addEventListener("click", () => go(-1));
    $("next").addEventListener("click", () => go(1));
    document.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight") go(1);
      if (e.key === "ArrowLeft") go(-1);
    });
  }
})();
"""

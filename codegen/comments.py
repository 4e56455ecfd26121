"""The comment at the end of each generated line: which node, derivative rule or update it computes.

Derivative lines say which rule built them (``vjp of tanh(z1)``, ``adjoint of h: sum of 2
contributions``), read from the call's :class:`symgraph.provenance.Labels`; other lines show
their node over the variable names, or the update they belong to.
"""

from __future__ import annotations

import re

import sympy as sp

from symgraph.graph import Node
from symgraph.ops import BroadcastTo
from symgraph.ops.conv import shown_as
from symgraph.shapes import format_shape

from .naming import full_name, identifier


def _op_label(node: Node) -> str:
    """The op's name for a comment (user-named elementwise ops are reduced to safe characters)."""
    return re.sub(r"[^0-9A-Za-z_/]", "_", node.op.name)


def shape_text(shape, dim_ids: dict[str, str] | None = None) -> str:
    """The shape for a comment or docstring, each named dimension by its identifier in the module."""
    return format_shape(tuple((dim_ids or {}).get(d) or identifier(d) if isinstance(d, str) else d for d in shape))


class Commenter:
    """Comments over the names a :class:`codegen.schedule.Schedule` has given so far."""

    def __init__(self, schedule, show_rules: bool):
        self.s = schedule
        self.show_rules = show_rules

    def line(self, node: Node) -> str:
        """The comment of the line computing ``node``."""
        text = self.about(node)
        if self.show_rules:
            rules = self.rules_in(node)
            text += f" [rules: {', '.join(rules)}]" if rules else ""
        return text

    def about(self, node: Node) -> str:
        """What the node is: the derivative rule that built it, the update it belongs to, or itself."""
        origin = self.s.labels.origin.get(node)
        if origin is not None:
            return self.derivative(origin, node)
        s = self.s
        if id(node) in s.update_of:
            return f"new value of {s.names[id(s.update_of[id(node)])]}"
        if id(node) in s.step_of:
            state, sign = s.step_of[id(node)]
            return f"step {'subtracted from' if sign == '-' else 'added to'} {s.names[id(state)]}"
        what, name = self.describe(node), s.labels.name(node)
        detail = getattr(node.op, "detail", None)  # attributes worth a word: "stride 1, padding 1"
        if detail is not None:
            what = f"{what}, {detail(node)}"
        if not name:
            return what
        full = full_name(name)  # a shortened identifier: the whole name too
        return f"node {s.names[id(node)]}{f' ({full})' if full else ''}: {what}"

    def describe(self, node: Node, depth: int = 0) -> str:
        """The node as ``op(arg, ...)`` over variable names, for comments."""
        key, s = id(node), self.s
        code = s.codes.get(key)
        if depth > 0 and (key in s.named or (code is not None and code.literal)):
            return s.names[key] if key in s.named else code.text
        if not node.inputs:
            if code is not None:
                return code.text
            name = s.labels.name(node)
            return identifier(name) if name else node.op.name
        if depth >= 3:
            return "..."
        if getattr(node.op, "show_expr", False):  # a fused or user expression: show it over its inputs
            names = {sym: sp.Symbol(self.describe(i, depth + 1)) for sym, i in zip(node.op.symbols, node.inputs)}
            with sp.evaluate(False):
                return re.sub(r"[^ -~]", "_", str(node.op.expr.xreplace(names)))
        name, inputs = shown_as(node) or (_op_label(node), node.inputs)
        args = ", ".join(self.describe(i, depth + 1) for i in inputs)
        return f"{name}({args})"

    def derivative(self, origin, node: Node) -> str:
        """The rule a derivative line comes from: ``vjp of ...``, ``jvp of ...``, ``adjoint of ...``."""
        kind = origin[0]
        if kind == "vjp":
            _, primal, index = origin
            wrt = "" if index is None else f" wrt {self.describe(primal.inputs[index], 1)}"
            return f"vjp of {self.describe(primal)}{wrt}"
        if kind == "jvp":
            return f"jvp of {self.describe(origin[1])}"
        if kind == "sum":
            return f"adjoint of {self.describe(origin[1], 1)}: sum of {origin[2]} contributions"
        if kind == "fit":
            _, like, shape, parent, _ = origin
            if isinstance(node.op, BroadcastTo):
                source = self.describe(node) if parent is None else self.derivative(parent, node)
                return f"{source}, broadcast to {shape_text(node.shape)}"
            return f"un-broadcast {self.describe(like, 1)} {shape_text(like.shape)} <- {shape_text(shape)}"
        return self.describe(node)

    def rules_in(self, node: Node) -> list[str]:
        """The simplifier rules that built this line: its node and the values inlined into it."""
        found: list[str] = []
        stack = [node]
        rules = self.s.labels.rules
        while stack:
            n = stack.pop()
            found += [r for r in rules.get(n, ()) if r not in found]
            stack += [i for i in n.inputs if i.inputs and id(i) not in self.s.named]
        return found

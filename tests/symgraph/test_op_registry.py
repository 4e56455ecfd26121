"""Walk every op class: each has a docstring, a printer method and its own rules,
and each is reached by the table of cases in test_ops.py (so a new op without a
case, or without a jvp/vjp check, is noticed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import codegen
import symgraph as sg
import symgraph.ops
from symgraph.graph import Constant, Op, Placeholder, topo_sort

RULES = ("infer", "compute", "vjp", "jvp")
OP_CLASSES = symgraph.ops.op_classes()
LEAVES = [c for c in OP_CLASSES if issubclass(c, (Placeholder, Constant))]
NON_LEAVES = [c for c in OP_CLASSES if c not in LEAVES]

# Differentiable op classes that the generic jvp/vjp test need not reach.
# Each entry needs a comment saying why; keep it short (ideally empty).
JVP_VJP_ALLOW_LIST: dict[str, str] = {
    # "ClassName": "why it cannot be a row of test_ops.CASES",
}
# Non-leaf op classes that no forward row of test_ops.CASES needs to build.
FORWARD_ALLOW_LIST: dict[str, str] = {
    # an internal seed of sg.jacobian/hessian (no inputs, no derivative), not a public op
    "Basis": "built only by sg.jacobian / sg.hessian; covered by their tests",
}
# The elementwise functions of the public contract (DESIGN.md section A).
PUBLIC_ELEMENTWISE = {
    "exp", "log", "sqrt", "square", "abs", "sin", "cos", "tanh", "sigmoid", "relu", "leaky_relu", "softplus",
    "hard_tanh", "step",
}


def _load_cases():
    """The CASES table of test_ops.py, loaded by path (test directories are not packages)."""
    name = "_symgraph_test_ops_cases"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_ops.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _reached(cases, differentiated_only: bool) -> tuple[set[str], set[str]]:
    """Op class names and elementwise op names in the graphs the cases build; with
    ``differentiated_only``, only nodes that depend on a differentiated input (the
    nodes whose jvp/vjp rules the generic test really runs)."""
    classes, elementwise = set(), set()
    for case in cases:
        with sg.fresh_graph():
            xs = [
                sg.placeholder(f"x{i}", spec.dims if spec.dims is not None else spec.shape, dtype=spec.dtype)
                for i, spec in enumerate(case.inputs)
            ]
            live = {id(x) for x, spec in zip(xs, case.inputs) if spec.diff}
            for node in topo_sort([case.build(*xs)]):
                if any(id(i) in live for i in node.inputs):
                    live.add(id(node))
                elif differentiated_only:
                    continue
                classes.add(type(node.op).__name__)
                if isinstance(node.op, symgraph.ops.Elementwise):
                    elementwise.add(node.op.name)
    return classes, elementwise


def _class_id(cls):
    return cls.__name__


def test_the_walk_finds_the_op_set():
    names = {c.__name__ for c in OP_CLASSES}
    assert {"Add", "MatMul", "Elementwise", "Softmax", "GetItem", "Placeholder", "Constant"} <= names
    assert len(OP_CLASSES) >= 35
    assert len(names) == len(OP_CLASSES)


@pytest.mark.parametrize("cls", OP_CLASSES, ids=_class_id)
def test_op_class_has_its_own_docstring(cls):
    doc = cls.__dict__.get("__doc__")
    assert doc and doc.strip(), f"{cls.__name__} has no docstring of its own"


@pytest.mark.parametrize("cls", OP_CLASSES, ids=_class_id)
def test_printer_has_a_method_for_the_op(cls):
    method = getattr(codegen.NumPyPrinter, f"_print_{cls.__name__}", None)
    assert callable(method), f"codegen.NumPyPrinter has no _print_{cls.__name__}"


@pytest.mark.parametrize("cls", NON_LEAVES, ids=_class_id)
def test_non_leaf_op_overrides_every_rule(cls):
    missing = [m for m in RULES if getattr(cls, m) is getattr(Op, m)]
    assert not missing, f"{cls.__name__} inherits Op.{missing} (it would raise NotImplementedError)"


@pytest.mark.parametrize("cls", OP_CLASSES, ids=_class_id)
def test_op_class_has_a_name_and_params(cls):
    assert isinstance(cls.name, str) and cls.name.isidentifier()
    assert isinstance(cls.params, tuple) and all(isinstance(p, str) for p in cls.params)
    assert isinstance(cls.differentiable, bool)


def test_op_names_are_unique():
    by_name: dict[str, list[str]] = {}
    for c in OP_CLASSES:
        by_name.setdefault(c.name, []).append(c.__name__)
    assert {k: v for k, v in by_name.items() if len(v) > 1} == {}


def test_every_differentiable_op_is_covered_by_the_jvp_vjp_test():
    cases = _load_cases()
    reached, _ = _reached(cases.GRAD_CASES, differentiated_only=True)
    differentiable = {c.__name__ for c in NON_LEAVES if c.differentiable}
    assert set(JVP_VJP_ALLOW_LIST) <= {c.__name__ for c in OP_CLASSES}, "stale allow-list entry"
    missing = differentiable - reached - set(JVP_VJP_ALLOW_LIST)
    assert not missing, f"differentiable ops with no row in test_ops.GRAD_CASES: {sorted(missing)}"


def test_every_op_is_built_by_some_forward_case():
    cases = _load_cases()
    reached, _ = _reached(cases.CASES, differentiated_only=False)
    assert set(FORWARD_ALLOW_LIST) <= {c.__name__ for c in OP_CLASSES}, "stale allow-list entry"
    missing = {c.__name__ for c in NON_LEAVES} - reached - set(FORWARD_ALLOW_LIST)
    assert not missing, f"ops with no row in test_ops.CASES: {sorted(missing)}"


def test_every_public_elementwise_function_is_covered_by_the_jvp_vjp_test():
    cases = _load_cases()
    _, elementwise = _reached(cases.GRAD_CASES, differentiated_only=True)
    missing = PUBLIC_ELEMENTWISE - elementwise
    assert not missing, f"elementwise functions with no row in test_ops.GRAD_CASES: {sorted(missing)}"
    # and every public elementwise builder builds an op of that name
    for name in PUBLIC_ELEMENTWISE:
        with sg.fresh_graph():
            node = getattr(sg, name)(sg.placeholder("x", (2,)))
        assert isinstance(node.op, symgraph.ops.Elementwise) and node.op.name == name


def test_every_grad_case_differentiates_something():
    cases = _load_cases()
    empty = [c.name for c in cases.GRAD_CASES if not any(i.diff for i in c.inputs)]
    assert not empty

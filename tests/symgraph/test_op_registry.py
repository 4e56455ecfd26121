"""Walk every op class: each has a docstring, a printer method in every backend, its own
rules and the code generator's facts, and each is reached by the table of cases in
test_ops.py (so a new op without a case, or without a jvp/vjp check, is noticed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import codegen
import codegen.backends
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
    # issue 16
    "log1p", "expm1", "exp2", "log2", "log10", "reciprocal", "tan", "sinh", "cosh", "arcsin", "arccos", "arctan",
    "arcsinh", "arctanh", "ceil", "erf", "gelu", "silu", "elu", "selu",
}
# The binary ones (issue 16); sg.swish is sg.silu.
PUBLIC_ELEMENTWISE_BINARY = {"arctan2", "hypot", "mod"}


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


@pytest.mark.parametrize("backend", sorted(codegen.backends.BACKENDS))
@pytest.mark.parametrize("cls", OP_CLASSES, ids=_class_id)
def test_every_backend_printer_has_a_method_for_the_op(cls, backend):
    printer = codegen.backends.BACKENDS[backend].printer_class
    method = getattr(printer, f"_print_{cls.__name__}", None)
    assert callable(method), f"{printer.__name__} ({backend}) has no _print_{cls.__name__}"


def test_codegen_numpy_printer_is_the_numpy_backends():
    assert codegen.NumPyPrinter is codegen.backends.BACKENDS["numpy"].printer_class


# -- the code generator's facts ----------------------------------------------------------
FACTS = ("view_of", "elementwise", "writes_into")


@pytest.mark.parametrize("cls", NON_LEAVES, ids=_class_id)
def test_op_declares_every_code_generator_fact(cls):
    """Each fact is set on the class or on a base below Op (Binary, Reduce, ShapeOp, ...), never
    left to Op's conservative default by accident. Leaves have no inputs: the defaults do."""
    for fact in FACTS:
        owner = next(c for c in cls.__mro__ if fact in c.__dict__)
        assert owner is not Op, f"{cls.__name__} does not declare {fact} (it falls back to Op's default)"
    assert cls.view_of is None or all(isinstance(i, int) for i in cls.view_of)
    assert isinstance(cls.elementwise, bool) and isinstance(cls.writes_into, bool)


@pytest.mark.parametrize("backend", sorted(codegen.backends.BACKENDS))
@pytest.mark.parametrize("cls", [c for c in NON_LEAVES if c.writes_into], ids=_class_id)
def test_an_op_that_writes_into_a_buffer_has_the_printer_form(cls, backend):
    printer = codegen.backends.BACKENDS[backend].printer_class
    assert callable(getattr(printer, f"_out_{cls.__name__}", None)), f"{printer.__name__} has no _out_{cls.__name__}"


def _computed_nodes():
    """(node, input arrays, output array) for every node the forward cases build, run by op.compute."""
    cases = _load_cases()
    found = []
    rng = np.random.default_rng(0)
    for case in cases.CASES:
        with sg.fresh_graph(), np.errstate(all="ignore"):
            xs, arrays = cases.make_inputs(case, rng)
            values = {id(x): a for x, a in zip(xs, arrays)}
            for node in topo_sort([case.build(*xs)]):
                if node.is_leaf:
                    values.setdefault(id(node), getattr(node.op, "value", None))
                elif id(node) not in values:
                    args = [values[id(i)] for i in node.inputs]
                    values[id(node)] = node.op.compute(*args)
                    found.append((node, args, values[id(node)]))
    return found


def test_view_facts_match_what_numpy_does():
    """An op declaring ``view_of=()`` never returns memory of an input (else a buffer could change
    under a returned value); one declaring input k returns a view of it in some case."""
    seen_view: dict[str, bool] = {}
    for node, args, out in _computed_nodes():
        view_of = node.op.view_of
        if view_of is None:
            continue
        name = type(node.op).__name__
        for k, a in enumerate(args):
            if isinstance(a, np.ndarray) and isinstance(out, np.ndarray) and np.shares_memory(a, out):
                assert k in view_of, f"{name} returns memory of input {k} but declares view_of={view_of}"
                seen_view[name] = True
        if view_of:
            seen_view.setdefault(name, False)
    never = [name for name, seen in seen_view.items() if not seen]
    assert not never, f"ops declaring view_of whose compute never returned a view: {never}"


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
    missing = (PUBLIC_ELEMENTWISE | PUBLIC_ELEMENTWISE_BINARY) - elementwise
    assert not missing, f"elementwise functions with no row in test_ops.GRAD_CASES: {sorted(missing)}"
    # and every public elementwise builder builds an op of that name
    for name in PUBLIC_ELEMENTWISE | PUBLIC_ELEMENTWISE_BINARY:
        with sg.fresh_graph():
            args = [sg.placeholder(f"x{k}", (2,)) for k in range(2 if name in PUBLIC_ELEMENTWISE_BINARY else 1)]
            node = getattr(sg, name)(*args)
        assert isinstance(node.op, symgraph.ops.Elementwise) and node.op.name == name
    assert sg.swish is sg.silu


def test_every_grad_case_differentiates_something():
    cases = _load_cases()
    empty = [c.name for c in cases.GRAD_CASES if not any(i.diff for i in c.inputs)]
    assert not empty

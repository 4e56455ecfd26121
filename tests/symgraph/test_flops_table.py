"""Every op's FLOP estimate, pinned: for each case of test_ops.CASES, the estimate of every node of the
case's graph and of its gradient (named sizes set to 3) is the one in tests/golden/flops.json.

The estimates order the Jacobian chain (``jacobian(mode="auto")``) and the teaching tools' cost tables,
so a change to one is a change users see. When a change is meant, rewrite the table with
``python tests/symgraph/test_flops_table.py`` and read its diff (``git diff tests/golden/flops.json``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import symgraph as sg
from symgraph.graph import topo_sort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_op_registry import _load_cases  # noqa: E402  (the CASES table, loaded by path)

TABLE = Path(__file__).resolve().parents[1] / "golden" / "flops.json"
NAMED_SIZE = 3


def estimates(case) -> list[str]:
    """``"op: flops"`` for every non-leaf node of the case's graph and gradient graph, in topological order."""
    xs = [sg.placeholder(f"x{i}", spec.dims if spec.dims is not None else spec.shape, dtype=spec.dtype)
          for i, spec in enumerate(case.inputs)]
    graphs = [case.build(*xs)]
    if case.grad:
        graphs += sg.grad(sg.sum(graphs[0] * 1.5), [x for x, spec in zip(xs, case.inputs) if spec.diff])
    nodes = [n for n in topo_sort(graphs) if not n.is_leaf]
    sizes = {d: NAMED_SIZE for n in nodes for m in (n, *n.inputs) for d in m.shape if isinstance(d, str)}
    return [f"{n.op.name}: {n.op.flops(n, sizes)}" for n in nodes]


CASES = _load_cases().CASES


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_flops_estimates_are_the_pinned_ones(case):
    pinned = json.loads(TABLE.read_text(encoding="utf-8"))
    assert estimates(case) == pinned[case.name]


def test_the_table_has_a_row_for_each_case_and_no_other():
    assert sorted(json.loads(TABLE.read_text(encoding="utf-8"))) == sorted(c.name for c in CASES)


if __name__ == "__main__":
    table = {}
    for case in CASES:
        with sg.fresh_graph():
            table[case.name] = estimates(case)
    old = TABLE.read_text(encoding="utf-8") if TABLE.exists() else ""
    new = json.dumps(table, indent=1) + "\n"
    TABLE.write_text(new, encoding="utf-8")
    print(f"{TABLE}: {'unchanged' if new == old else 'rewritten'} ({len(table)} cases)")

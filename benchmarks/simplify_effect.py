"""How much the simplifier shrinks gradient graphs and generated code, and how long it takes.

Run: python benchmarks/simplify_effect.py
Prints, for each network, the forward graph's node count, the gradient graph's
node count before and after simplification (and its ratio to the forward
graph), the generated source's line count with and without simplification,
and which rules fired. Then times simplification of 10- to 300-layer MLP
gradients.
"""

from __future__ import annotations

import time

import numpy as np

import codegen
import symgraph as sg


def mlp(depth: int, width: int, classes: int, activation=sg.tanh):
    rng = np.random.default_rng(0)
    x = sg.placeholder("x", shape=("batch", width))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    h, params = x, []
    for i in range(depth):
        fan_out = classes if i == depth - 1 else width
        W = sg.parameter(f"W{i + 1}", value=rng.normal(size=(width, fan_out)) / np.sqrt(width))
        b = sg.parameter(f"b{i + 1}", value=np.zeros(fan_out))
        params += [W, b]
        h = h @ W + b
        if i < depth - 1:
            h = activation(h)
    return [x, y], sg.softmax_cross_entropy(h, y), params


def logistic_regression():
    rng = np.random.default_rng(0)
    x = sg.placeholder("x", shape=("batch", 2))
    t = sg.placeholder("t", shape=("batch",))
    w = sg.parameter("w", value=rng.normal(size=2))
    b = sg.parameter("b", value=0.0)
    return [x, t], sg.binary_cross_entropy(x @ w + b, t), [w, b]


def nodes(outputs) -> int:
    return len(sg.topo_sort(outputs))


def main():
    cases = [
        ("3-layer MLP 64-32-32-10, tanh", lambda: mlp(3, 32, 10)),
        ("20-layer tanh MLP, width 64", lambda: mlp(20, 64, 10)),
        ("logistic regression (BCE)", logistic_regression),
    ]
    print(f"{'network':34} {'fwd':>5} {'grad raw':>9} {'grad simp':>9} {'x fwd':>6} "
          f"{'lines raw':>9} {'lines simp':>10}")
    for label, build in cases:
        with sg.fresh_graph():
            inputs, loss, params = build()
            grads = sg.grad(loss, params)
            outs = [loss, *grads]
            simplified, report = sg.simplify(outs, report=True)
            raw_lines = len(codegen.compile(inputs, outs, simplify=False).source.splitlines())
            simp_lines = len(codegen.compile(inputs, outs).source.splitlines())
            fwd = nodes([loss])
            print(f"{label:34} {fwd:5d} {nodes(outs):9d} {nodes(simplified):9d} "
                  f"{nodes(simplified) / fwd:6.2f} {raw_lines:9d} {simp_lines:10d}")
            print(f"    rules: {', '.join(f'{k} x{v}' for k, v in report.rules.most_common())}")
    print()
    print("simplification time of an MLP gradient (width 32, tanh):")
    for depth in (10, 100, 300):
        with sg.fresh_graph():
            _, loss, params = mlp(depth, 32, 10)
            outs = [loss, *sg.grad(loss, params)]
            start = time.perf_counter()
            simplified = sg.simplify(outs)
            seconds = time.perf_counter() - start
            print(f"  {depth:4d} layers: {nodes(outs):6d} -> {nodes(simplified):6d} nodes in {seconds:.3f} s")


if __name__ == "__main__":
    main()

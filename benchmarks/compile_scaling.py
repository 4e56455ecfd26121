"""Compile time of long elementwise graphs: it must grow about linearly with the graph.

Two graphs of n steps each (issue 11, item 4), compiled with their gradient:

    chain       z <- tanh(z) * 1.1 + 0.1, n times (fusion must split it: one SymPy expression of
                3n operations would overflow the printer's recursion)
    polynomial  Horner's scheme z <- z * x + c_k, n times (the gradient doubles the chain)

For each n it prints the seconds from graph to callable (differentiate + codegen.compile), the
time per step, and the growth against the previous n (1.00 per step is linear).

    .venv/bin/python benchmarks/compile_scaling.py              # n = 100, 1000, 10000
    .venv/bin/python benchmarks/compile_scaling.py --sizes 100 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import codegen
import symgraph as sg


def chain(n: int):
    x = sg.placeholder("x", shape=(3,))
    z = x
    for _ in range(n):
        z = sg.tanh(z) * 1.1 + 0.1
    return x, z


def polynomial(n: int):
    x = sg.placeholder("x", shape=(3,))
    z = sg.constant(1.0)
    for k in range(n):
        z = z * x + float(k % 7 + 1)
    return x, z


def seconds_to_callable(build, n: int) -> tuple[float, int]:
    """(seconds from graph to a called function, source lines) for the value and its gradient."""
    with sg.fresh_graph():
        x, z = build(n)
        start = time.perf_counter()
        f = codegen.compile([x], [z, sg.grad(z.sum(), x)])
        f(np.linspace(-0.5, 0.5, 3))
        return time.perf_counter() - start, len(f.source.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    args = parser.parse_args()
    for name, build in (("chain", chain), ("polynomial", polynomial)):
        previous = None
        for n in args.sizes:
            seconds, lines = seconds_to_callable(build, n)
            per_step = seconds / n
            growth = "" if previous is None else f"  per-step time x{per_step / previous:.2f} of the previous size"
            print(f"{name:10s} n={n:6d}: {seconds:7.2f} s, {per_step * 1e3:6.2f} ms per step, {lines} lines{growth}")
            previous = per_step


if __name__ == "__main__":
    main()

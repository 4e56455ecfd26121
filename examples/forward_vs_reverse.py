"""Forward mode or reverse mode? Ask the cost model, then check it with a stopwatch.

A Jacobian can be built two ways. Forward mode pushes one *tangent* per input
through the graph (n of them); reverse mode pulls one *cotangent* per output
back through it (m of them). Both give the same m x n matrix, at a price
roughly proportional to n and to m respectively. ``sg.explain_mode`` builds
both Jacobian graphs, adds up their FLOP estimates and says which it would
pick; for a chain of maps it also solves the matrix-chain problem: the
Jacobian of a chain is a product J_k ... J_2 J_1, and any bracketing of that
product gives the same matrix at a different cost.

This script shows four things:

(a) a scalar loss of an MLP with respect to a weight matrix: n large, m = 1,
    so reverse mode (backpropagation) wins;
(b) a map from R^2 to 500 outputs: n = 2, m = 500, so forward mode wins;
(c) the "ABCD" chain x -> x@A -> @B -> @C -> @D, wide at both ends and
    narrow in the middle, where neither pure mode is optimal and the best
    bracketing (found by dynamic programming) is much cheaper than both;
(d) each Jacobian computed both ways: the two agree, and the mode the cost
    model prefers is also the faster one on the clock.

Run it from the repository root:  python examples/forward_vs_reverse.py

Key facts are also printed as ``key: value`` lines so that
tests/test_teaching_examples.py can check them.
"""

import itertools
import time
from functools import lru_cache

import numpy as np

import codegen
import symgraph as sg

BATCH, FEATURES, HIDDEN, CLASSES = 16, 20, 30, 3  # the MLP of part (a)
FAN_OUT = 500  # the number of outputs in part (b)
ABCD_DIMS = (300, 500, 8, 400, 100)  # x in R^300 -> 500 -> 8 -> 400 -> R^100
REPEATS = 5  # timing repeats; the best (smallest) time is reported


def header(title):
    print()
    print(f"== {title} ==")


def best_time(fn, *args, repeats=REPEATS):
    """The smallest wall-clock time of ``repeats`` calls (the least disturbed one)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


# -- the three functions -----------------------------------------------------------
def mlp_loss(rng):
    """(a) A one-hidden-layer classifier; returns the placeholders, W1, the loss and a feed."""
    x = sg.placeholder("x", shape=(BATCH, FEATURES))
    labels = sg.placeholder("labels", shape=(BATCH,), dtype="int64")
    W1 = sg.parameter("W1", value=rng.normal(size=(FEATURES, HIDDEN)) / np.sqrt(FEATURES))
    b1 = sg.parameter("b1", value=np.zeros(HIDDEN))
    W2 = sg.parameter("W2", value=rng.normal(size=(HIDDEN, CLASSES)) / np.sqrt(HIDDEN))
    loss = sg.softmax_cross_entropy(sg.tanh(x @ W1 + b1) @ W2, labels).named("loss")
    feed = [rng.normal(size=(BATCH, FEATURES)), rng.integers(0, CLASSES, size=BATCH)]
    return [x, labels], W1, loss, feed


def fan_out_map(rng):
    """(b) u in R^2 -> 500 outputs, through a hidden layer of 64 units."""
    u = sg.placeholder("u", shape=(2,))
    A = sg.constant(rng.normal(size=(2, 64)), name="A")
    B = sg.constant(rng.normal(size=(64, FAN_OUT)) / 8, name="B")
    out = sg.sin(sg.tanh(u @ A) @ B).named("out")
    return [u], u, out, [rng.normal(size=2)]


def abcd_chain(rng, dims=ABCD_DIMS, between=None):
    """(c) x -> x@A -> @B -> @C -> @D, by constant matrices of sizes dims[i] x dims[i+1].

    ``between`` (e.g. sg.tanh) is applied after each of the first three maps.
    """
    x = sg.placeholder("x", shape=(dims[0],))
    matrices = [rng.normal(size=(dims[i], dims[i + 1])) / np.sqrt(dims[i]) for i in range(4)]
    h = x
    for i, (name, M) in enumerate(zip("ABCD", matrices)):
        h = h @ sg.constant(M, name=name)
        if between is not None and i < 3:
            h = between(h)
    return [x], x, h, [rng.normal(size=dims[0])], matrices


# -- the matrix-chain problem by brute force, to check the report's DP ----------------
def all_bracketings(dims):
    """Every bracketing of J_k ... J_1 (J_i is dims[i] x dims[i-1]), with its cost in multiply-adds.

    Returns {order: cost}, written like the report: "((J4 J3) (J2 J1))".
    """

    @lru_cache(maxsize=None)
    def orders(i, j):  # all ways to compute J_j ... J_i, as (text, cost) pairs
        if i == j:
            return [(f"J{i}", 0)]
        result = []
        for s in range(i, j):  # (J_j ... J_{s+1}) (J_s ... J_i)
            for (left, lc), (right, rc) in itertools.product(orders(s + 1, j), orders(i, s)):
                result.append((f"({left} {right})", lc + rc + dims[j] * dims[s] * dims[i - 1]))
        return result

    return dict(orders(1, len(dims) - 1))


# -- the parts ----------------------------------------------------------------------
def explain(tag, title, output, wrt, why):
    header(f"({tag}) {title}")
    report = sg.explain_mode(output, wrt)
    print(report)
    print()
    print(why.format(n=report.n_inputs, m=report.n_outputs))
    print()
    print(f"choice: {report.choice}")
    print(f"n_inputs: {report.n_inputs}")
    print(f"n_outputs: {report.n_outputs}")
    print(f"forward_flops: {report.forward_flops}")
    print(f"reverse_flops: {report.reverse_flops}")
    return report


def part_c(rng):
    inputs, x, out, feed, matrices = abcd_chain(rng)
    header("(c) the ABCD chain: x -> x@A -> @B -> @C -> @D, sizes " + " -> ".join(map(str, ABCD_DIMS)))
    report = sg.explain_mode(out, x)
    print(report)
    chain = report.chain
    dims = [chain.links[0].cols] + [link.rows for link in chain.links]
    print()
    print("The Jacobian of the chain is the matrix product J4 J3 J2 J1 (J1 = A^T, ..., J4 = D^T).")
    print("Matrix products are associative: every bracketing gives the same matrix, at a different price.")
    print("Forward mode multiplies from the input side, J4 (J3 (J2 J1)); reverse mode from the output")
    print("side, ((J4 J3) J2) J1. Here both ends are wide and the middle is only 8 wide, so the cheapest")
    print("plan multiplies each half towards the bottleneck first and meets in the middle. Finding it is")
    print("the matrix-chain-ordering problem, solved by dynamic programming in O(k^3) for k links.")
    print()
    print("every bracketing (multiply-adds, dense p*q*r per product):")
    brackets = all_bracketings(dims)
    pure = {"(J4 (J3 (J2 J1)))": "input-first (forward)", "(((J4 J3) J2) J1)": "output-first (reverse)"}
    for order, cost in sorted(brackets.items(), key=lambda kv: kv[1]):
        notes = [pure.get(order, ""), "<- dynamic programming's choice" if order == chain.best_order else ""]
        print(f"  {order:<20} {cost:>12,}  {' '.join(n for n in notes if n)}".rstrip())
    print()
    print(f"forward_chain_cost: {chain.forward_cost}")
    print(f"reverse_chain_cost: {chain.reverse_cost}")
    print(f"dp_cost: {chain.best_cost}")
    print(f"dp_order: {chain.best_order}")
    print(f"brute_force_min: {min(brackets.values())}")
    print(f"dp_saving: {min(chain.forward_cost, chain.reverse_cost) / chain.best_cost:.1f}x "
          "cheaper than the better pure mode")

    # The same chain with an elementwise map after each of A, B, C: its Jacobian is diagonal,
    # so multiplying by it costs p*r, not p*q*r, and the best plan keeps its shape.
    _, xt, outt, _, _ = abcd_chain(np.random.default_rng(1), between=sg.tanh)
    tanh_chain = sg.explain_mode(outt, xt).chain
    print()
    print("With tanh after A, B and C the chain has 7 links; the diagonal (elementwise) ones are cheap:")
    print(f"  best order {tanh_chain.best_order}: {tanh_chain.best_cost:,} multiply-adds "
          f"(input-first {tanh_chain.forward_cost:,}, output-first {tanh_chain.reverse_cost:,})")
    print(f"tanh_dp_cost: {tanh_chain.best_cost}")

    # Why do the "forward mode"/"reverse mode" rows disagree with "input-first"/"output-first"?
    # The first two are flops (2 per multiply-add) of the graphs symgraph really builds; those
    # start from an identity matrix (one basis vector per tangent or cotangent) and multiply it
    # by the first Jacobian, an n x n x d1 (or m x m x d3) product that the chain rows leave out.
    n, m = dims[0], dims[-1]
    seeds = {"forward": n * n * dims[1], "reverse": m * m * dims[-2]}
    print()
    print("Two cost models sit in this table. 'forward mode'/'reverse mode' count flops (2 per")
    print("multiply-add) of the Jacobian graphs symgraph builds; 'input-first'/'output-first' count")
    print("multiply-adds of the matrix chain alone. The graphs begin by multiplying an identity matrix")
    print("(the seed: one basis vector per tangent or cotangent) by the first Jacobian they meet:")
    for mode, flops, chain_cost in (("forward", report.forward_flops, chain.forward_cost),
                                    ("reverse", report.reverse_flops, chain.reverse_cost)):
        seed = seeds[mode]
        if flops == 2 * (chain_cost + seed):
            how = f"= 2 x ({chain_cost:,} + {seed:,} for the identity seed times the first Jacobian)"
        elif flops == 2 * chain_cost:
            how = f"= 2 x {chain_cost:,} (the seed product costs nothing)"
        else:
            how = f"(chain alone: 2 x {chain_cost:,} = {2 * chain_cost:,})"
        print(f"  {mode:<8} {flops:>12,} flops {how}")
    graph_pick = "forward" if report.forward_flops < report.reverse_flops else "reverse"
    chain_pick = "forward" if chain.forward_cost < chain.reverse_cost else "reverse"
    if graph_pick != chain_pick:
        print(f"The seed terms (n*n*d1 = {seeds['forward']:,} forward, m*m*d3 = {seeds['reverse']:,} "
              f"reverse, in multiply-adds)\nare why the graph costs prefer {graph_pick} mode here while "
              f"the chain alone slightly prefers {chain_pick}.")
    return (inputs, x, out, feed), matrices, report


def compare(tag, inputs, wrt, output, feed, predicted):
    """(d) Compile the Jacobian in both modes, check they agree, time them."""
    values, times = {}, {}
    for mode in ("forward", "reverse"):
        f = codegen.compile(inputs, sg.jacobian(output, wrt, mode=mode))
        values[mode] = f(*feed)
        times[mode] = best_time(f, *feed)
    diff = float(np.max(np.abs(values["forward"] - values["reverse"])))
    agree = bool(np.allclose(values["forward"], values["reverse"], rtol=1e-10, atol=1e-12))
    faster = min(times, key=times.get)
    slower = max(times, key=times.get)
    print(f"({tag}) Jacobian {values['forward'].shape}: forward {times['forward'] * 1e3:8.3f} ms, "
          f"reverse {times['reverse'] * 1e3:8.3f} ms; max |difference| {diff:.1e}; "
          f"{faster} is {times[slower] / times[faster]:.1f}x faster (cost model said {predicted})")
    print(f"agree_{tag}: {agree}")
    print(f"faster_{tag}: {faster}")
    print(f"speedup_{tag}: {times[slower] / times[faster]:.2f}")
    return agree


def time_bracketings(matrices, best_order):
    """The chain's Jacobian as explicit NumPy products, in the three orders of part (c).

    With row vectors (x @ A @ B @ C @ D) the Jacobian is (A B C D)^T, and J_i = M_i^T,
    so "J4 (J3 (J2 J1))" is ((A B) C) D, "((J4 J3) J2) J1" is A (B (C D)), and
    "((J4 J3) (J2 J1))" is (A B) (C D).
    """
    A, B, C, D = matrices
    plans = {
        "input-first  J4 (J3 (J2 J1))": lambda: ((A @ B) @ C) @ D,
        "output-first ((J4 J3) J2) J1": lambda: A @ (B @ (C @ D)),
        f"best         {best_order}": lambda: (A @ B) @ (C @ D),
    }
    reference = plans["input-first  J4 (J3 (J2 J1))"]()
    print("(c) the chain's Jacobian as three NumPy products (symgraph itself runs only pure modes):")
    results = {}
    for label, plan in plans.items():
        assert np.allclose(plan(), reference)
        results[label] = best_time(plan, repeats=3 * REPEATS)
        print(f"    {label:<36} {results[label] * 1e3:8.3f} ms")
    return results


def main():
    rng = np.random.default_rng(0)
    start = time.perf_counter()

    inputs_a, W1, loss, feed_a = mlp_loss(rng)
    report_a = explain(
        "a", f"scalar loss of an MLP ({FEATURES}-{HIDDEN}-{CLASSES}, batch {BATCH}) with respect to W1",
        loss, W1,
        "Reverse mode pulls one cotangent per output back through the graph; forward mode pushes one\n"
        "tangent per input forward. A loss is a single number (m = {m}) but W1 has n = {n} entries:\n"
        "reverse mode needs one backward sweep (this is backpropagation), forward mode needs {n}.\n"
        "Whenever a scalar is differentiated with respect to many parameters, reverse mode wins.")

    inputs_b, u, out_b, feed_b = fan_out_map(rng)
    report_b = explain(
        "b", f"a map from R^2 to {FAN_OUT} outputs (u -> sin(tanh(u @ A) @ B))", out_b, u,
        "Now the shapes are the other way round: n = {n} inputs and m = {m} outputs. Forward mode\n"
        "needs only {n} tangent sweeps, one per input direction, while reverse mode would need {m}\n"
        "cotangent sweeps, one per output. When n < m, forward mode wins.")

    (inputs_c, x_c, out_c, feed_c), matrices, report_c = part_c(rng)

    header("(d) both modes, on the clock")
    print(f"Each Jacobian is compiled in both modes and run; times are the best of {REPEATS} calls.")
    compare("a", inputs_a, W1, loss, feed_a, report_a.choice)
    compare("b", inputs_b, u, out_b, feed_b, report_b.choice)
    compare("c", inputs_c, x_c, out_c, feed_c, report_c.choice)
    timings = time_bracketings(matrices, report_c.chain.best_order)
    fastest = min(timings, key=timings.get)
    print(f"fastest_bracketing: {fastest.split()[0]}")
    print()
    print(f"total run time: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()

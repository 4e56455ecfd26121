"""Forward mode or reverse mode? Ask the cost model, then check it with a stopwatch.

A Jacobian can be built two ways. Forward mode pushes one *tangent* per input
through the graph (n of them); reverse mode pulls one *cotangent* per output
back through it (m of them). Both give the same m x n matrix, at a price
roughly proportional to n and to m respectively. ``sg.explain_mode`` builds
the Jacobian graphs, adds up their FLOP estimates and says which it would
pick; for a chain of maps it also solves the matrix-chain problem: the
Jacobian of a chain x -> x@A -> @B -> @C -> @D is (with row vectors, as in
the course) the product ABCD, and any bracketing of that product gives the
same matrix at a different cost. Forward mode is ((AB)C)D, reverse mode is
A(B(CD)); ``sg.jacobian(y, x, mode="optimal")`` builds the cheapest one.

This script shows four things:

(a) a scalar loss of an MLP with respect to a weight matrix: n large, m = 1,
    so reverse mode (backpropagation) wins;
(b) a map from R^2 to 500 outputs: n = 2, m = 500, so forward mode wins;
(c) the "ABCD" chain, wide at both ends and narrow in the middle, where
    neither pure mode is optimal and the best bracketing, (AB)(CD), found by
    dynamic programming, is much cheaper than both;
(d) each Jacobian compiled by symgraph in each mode and timed: the results
    agree, and the mode the cost model prefers is also the faster one on the
    clock, the optimal bracketing included.

Run it from the repository root:  python examples/forward_vs_reverse.py

Key facts are also printed as ``key: value`` lines so that
tests/test_teaching_examples.py can check them.
"""

import itertools
import statistics
import time
from functools import lru_cache

import numpy as np

import codegen
import symgraph as sg

BATCH, FEATURES, HIDDEN, CLASSES = 16, 20, 30, 3  # the MLP of part (a)
FAN_OUT = 500  # the number of outputs in part (b)
ABCD_DIMS = (300, 500, 8, 400, 100)  # x in R^300 -> 500 -> 8 -> 400 -> R^100
SMALL_DIMS = (6, 8, 2, 8, 4)  # the same chain with small matrices
REPEATS, CALLS = 7, 15  # timing: the median of REPEATS rounds, each the median of CALLS calls


def header(title):
    print()
    print(f"== {title} ==")


def median_time(fn, *args, calls=CALLS):
    """The median wall-clock time of ``calls`` calls."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
def all_bracketings(dims, names="ABCDEFG"):
    """Every bracketing of the chain's product, in the course's notation (matrix i is
    dims[i-1] x dims[i], named by a letter, input side first), with its cost in multiply-adds.

    Returns {order: cost}, written like the report: "(AB)(CD)".
    """

    @lru_cache(maxsize=None)
    def orders(i, j):  # all ways to compute the product of matrices i..j, as (text, cost) pairs
        if i == j:
            return [(names[i - 1], 0)]
        result = []
        for s in range(i, j):  # (i..s)(s+1..j)
            for (left, lc), (right, rc) in itertools.product(orders(i, s), orders(s + 1, j)):
                wrap = [t if len(t) == 1 else f"({t})" for t in (left, right)]
                result.append(("".join(wrap), lc + rc + dims[i - 1] * dims[s] * dims[j]))
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
    print(f"auto: {report.auto}")
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
    dims = [chain.links[0].n_in] + [link.n_out for link in chain.links]
    print()
    print("With row vectors, y = x A B C D and the Jacobian (transposed) is the product ABCD itself.")
    print("Matrix products are associative: every bracketing gives the same matrix, at a different price.")
    print("Forward mode multiplies from the input side, ((AB)C)D; reverse mode from the output side,")
    print("A(B(CD)). Here both ends are wide and the middle is only 8 wide, so the cheapest plan")
    print("multiplies each half towards the bottleneck first and meets in the middle. Finding it is the")
    print("matrix-chain-ordering problem, solved by dynamic programming in O(k^3) for k links, and")
    print('sg.jacobian(y, x, mode="optimal") builds it ("auto" does too, as it is the cheapest).')
    print()
    print("every bracketing (multiply-adds, dense p*q*r per product):")
    brackets = all_bracketings(dims)
    pure = {"((AB)C)D": "input side first (forward)", "A(B(CD))": "output side first (reverse)"}
    for order, cost in sorted(brackets.items(), key=lambda kv: kv[1]):
        notes = [pure.get(order, ""), "<- dynamic programming's choice" if order == chain.best_order else ""]
        print(f"  {order:<12} {cost:>12,}  {' '.join(n for n in notes if n)}".rstrip())
    print()
    print(f"forward_chain_cost: {chain.forward_cost}")
    print(f"reverse_chain_cost: {chain.reverse_cost}")
    print(f"dp_cost: {chain.best_cost}")
    print(f"dp_order: {chain.best_order}")
    print(f"brute_force_min: {min(brackets.values())}")
    print(f"dp_saving: {min(chain.forward_cost, chain.reverse_cost) / chain.best_cost:.1f}x "
          "cheaper than the better pure mode")
    print(f"graph_flops: forward {report.forward_flops}, reverse {report.reverse_flops}, "
          f"optimal {report.optimal_flops} (2 flops per multiply-add)")
    print(f"optimal_flops: {report.optimal_flops}")
    print(f"abcd_choice: {report.choice}")
    print(f"abcd_auto: {report.auto}")

    # The same chain with an elementwise map after each of A, B, C: its Jacobian is diagonal,
    # so multiplying by it costs p*r, not p*q*r, and the best plan keeps its shape.
    _, xt, outt, _, _ = abcd_chain(np.random.default_rng(1), between=sg.tanh)
    tanh_chain = sg.explain_mode(outt, xt).chain
    print()
    print("With tanh after A, B and C the chain has 7 links; the diagonal (elementwise) ones are cheap:")
    print(f"  best order {tanh_chain.best_order}: {tanh_chain.best_cost:,} multiply-adds "
          f"(input side first {tanh_chain.forward_cost:,}, output side first {tanh_chain.reverse_cost:,})")
    print(f"tanh_dp_cost: {tanh_chain.best_cost}")

    # Small constant matrices: compiling folds the whole (constant) Jacobian, but the cost
    # model counts the work before constants are folded, as if A..D were trained weights.
    _, xs, outs, _, _ = abcd_chain(np.random.default_rng(2), dims=SMALL_DIMS)
    small = sg.explain_mode(outs, xs)
    print()
    print("The same chain with small constant matrices, sizes " + " -> ".join(map(str, SMALL_DIMS)) + ":")
    print(small)
    print(f"small_choice: {small.choice}")
    print(f"small_auto: {small.auto}")
    print(f"small_flops: forward {small.forward_flops}, reverse {small.reverse_flops}, optimal {small.optimal_flops}")
    return (inputs, x, out, feed), matrices, report


def compare(tag, inputs, wrt, output, feed, predicted, modes=("forward", "reverse")):
    """(d) Compile the Jacobian in each mode, check they agree, time them (median of interleaved repeats)."""
    fns = {mode: codegen.compile(inputs, sg.jacobian(output, wrt, mode=mode)) for mode in modes}
    values = {mode: f(*feed) for mode, f in fns.items()}
    times = {mode: [] for mode in modes}
    for _ in range(REPEATS):
        for mode, f in fns.items():  # interleaved, so a disturbance hits every mode alike
            times[mode].append(median_time(f, *feed))
    times = {mode: statistics.median(ts) for mode, ts in times.items()}
    reference = values[modes[0]]
    diff = max(float(np.max(np.abs(v - reference))) for v in values.values())
    agree = all(np.allclose(v, reference, rtol=1e-10, atol=1e-12) for v in values.values())
    faster = min(times, key=times.get)
    slowest_other = min(t for m, t in times.items() if m != faster)
    shown = ", ".join(f"{mode} {t * 1e3:8.3f} ms" for mode, t in times.items())
    print(f"({tag}) Jacobian {reference.shape}: {shown}; max |difference| {diff:.1e}; "
          f"{faster} is {slowest_other / times[faster]:.1f}x faster than the next (cost model said {predicted})")
    print(f"agree_{tag}: {agree}")
    print(f"faster_{tag}: {faster}")
    print(f"speedup_{tag}: {slowest_other / times[faster]:.2f}")
    for mode, t in times.items():
        print(f"time_{mode}_{tag}: {t * 1e3:.4f} ms")
    return agree


def abcd_with_parameters(matrices):
    """The ABCD chain with A..D as parameters: their values are read at call time, so the
    compiled Jacobian really multiplies them (constants would be folded while compiling)."""
    x = sg.placeholder("x", shape=(ABCD_DIMS[0],))
    h = x
    for name, M in zip("ABCD", matrices):
        h = h @ sg.parameter(name, value=M)
    return [x], x, h


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

    (_, _, _, feed_c), matrices, report_c = part_c(rng)

    header("(d) each mode, on the clock")
    print(f"Each Jacobian is compiled by symgraph in each mode and run; a time is the median of {REPEATS}\n"
          f"rounds (the modes interleaved), each the median of {CALLS} calls.")
    compare("a", inputs_a, W1, loss, feed_a, report_a.auto)
    compare("b", inputs_b, u, out_b, feed_b, report_b.auto)
    inputs_p, x_p, out_p = abcd_with_parameters(matrices)
    print("(c) with A..D as parameters (read at call time), in all three modes:")
    compare("c", inputs_p, x_p, out_p, feed_c, report_c.auto, modes=("forward", "reverse", "optimal"))
    print()
    print(f"total run time: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()

"""The course's backprop table, made by symgraph: sg.trace on a small network.

The forward sweep computes u1 ... un in order (each an op of earlier u's); the reverse
sweep starts from grad_un = 1 and walks the table backwards, each adjoint grad_ui the sum,
over the users uj of ui, of grad_uj times the local derivative d uj / d ui. sg.trace records
both sweeps with their values, naming every value as the generated code does.

Run it from the repository root:  python examples/backprop_table.py [--out DIR]
Pictures (forward graph, gradient graph, both modes side by side, all with values) go to
examples/out/ (or DIR); ``key: value`` lines are checked by tests/test_teaching_examples.py.
"""

import sys
from pathlib import Path

import numpy as np

import codegen
import symgraph as sg


def main(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    # a 2-2-1 network on one example: h = tanh(W x + c), p = sigmoid(v . h), loss = (p - y)^2
    x = sg.placeholder("x", shape=(2,))
    y = sg.placeholder("y", shape=())
    W = sg.parameter("W", value=np.array([[0.5, -0.3], [0.2, 0.8]]))
    c = sg.parameter("c", value=np.array([0.1, -0.1]))
    v = sg.parameter("v", value=np.array([1.0, -1.5]))
    h = sg.tanh(x @ W + c).named("h")
    p = sg.sigmoid(h @ v).named("p")
    loss = sg.square(p - y).named("loss")
    feed = {x: np.array([1.0, 2.0]), y: np.array(1.0)}

    print("== the backprop table (sg.trace) ==")
    t = sg.trace(loss, feed, wrt=[W, c, v])
    print(t)

    # the table's adjoints are the gradient the compiled code computes
    grads = codegen.evaluate(sg.grad(loss, [W, c, v]), feed)
    worst = max(float(np.max(np.abs(t.adjoint(n) - g))) for n, g in zip([W, c, v], grads))
    print()
    print(f"rows_forward: {len(t.forward)}")
    print(f"rows_reverse: {len(t.reverse)}")
    print(f"loss: {float(t.value(loss)):.6f}")
    print(f"max_difference_from_grad: {worst:.1e}")

    print()
    print("== forward mode: the tangent of every value along x ==")
    print(sg.trace(loss, feed, wrt=x, mode="forward"))

    forward = sg.draw(loss, out / "backprop_forward.png", feed=feed, engine="matplotlib")
    reverse = sg.draw([loss, *sg.grad(loss, [W, c, v])], out / "backprop_reverse.png", feed=feed,
                      engine="matplotlib")
    modes = sg.compare_modes(h, x, feed={x: feed[x]}, path=out / "backprop_modes.png")
    print()
    print("== forward and reverse mode for h(x), side by side (sg.compare_modes) ==")
    print(modes)
    print()
    print(f"saved_forward: {forward}")
    print(f"saved_reverse: {reverse}")
    print(f"saved_modes: {modes.path}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[args.index("--out") + 1]) if "--out" in args else Path(__file__).parent / "out")

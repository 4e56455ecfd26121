"""The XOR network of examples/xor.py in the explorer: its loss and gradients, drawn beside the
NumPy code symgraph generates for them, with every value of one pass over the four points.

Run it from the repository root:  python examples/explore_xor.py   (writes examples/out/xor.html)
or through the command line tool, which reads ``outputs`` and ``feed`` from this file:

    python -m symgraph explore examples/explore_xor.py -o examples/out/xor.html

Open the page in a browser (no network needed): click a node or a line of code, and step through
the sweeps with the arrow buttons (or the arrow keys).
"""

from pathlib import Path

import numpy as np

import symgraph as sg

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0], dtype=np.float64)

# The book's weights (Goodfellow et al., Deep Learning, section 6.1), which compute XOR exactly,
# but for the bias b, a quarter off: a loss of 1/16 and gradients to see in the reverse sweep.
x = sg.placeholder("x", (4, 2))
y = sg.placeholder("y", (4,))
W = sg.parameter("W", np.array([[1.0, 1.0], [1.0, 1.0]]))
c = sg.parameter("c", np.array([0.0, -1.0]))
w = sg.parameter("w", np.array([1.0, -2.0]))
b = sg.parameter("b", np.array(0.25))

hidden = sg.relu(x @ W + c).named("hidden")
output = (hidden @ w + b).named("output")
loss = sg.mse(output, y).named("loss")

outputs = [loss, *sg.grad(loss, [W, c, w, b])]
feed = {x: X, y: Y}

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    print("wrote", sg.explore(outputs, out / "xor.html", feed=feed, title="XOR: loss and gradients"))

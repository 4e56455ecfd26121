"""Five optimizers, two problems: a narrow valley and handwritten digits.

SGD, Momentum, AdaGrad, RMSProp and Adam each become one compiled training
step: ``opt.updates(loss, params)`` writes the optimizer's formula as graph
nodes, and ``codegen.compile`` prints it, with the gradient, as one NumPy
function that updates the parameters and the optimizer's state in place.

(a) The narrow valley. f(w) = 0.1·w1² + 2·w2² curves twenty times more
    steeply across its valley (w2) than along it (w1): the classic
    ill-conditioned quadratic (Dive into Deep Learning introduces momentum
    with it, section 12.6). From w = (-5, -2), each optimizer takes 40 steps.
    SGD's learning rate, 0.45, is close to its stability limit 2/4 = 0.5 (4 is
    the steepest curvature): the largest step it can afford, and there it
    zig-zags, overshooting the valley floor at every step. Momentum with the
    same rate averages successive gradients (b ← μ·b + g): the across-valley
    components, which alternate in sign, cancel, and the along-valley ones
    add up. The table counts how often w2 changes sign and how far w travels
    across the valley (Σ|Δw2|; going straight to the floor takes 2.0).

(b) Digits. An MLP (64 -> 64 ReLU -> 10) on scikit-learn's 8x8 digits, the
    same initial weights for every optimizer, 10 epochs of mini-batches of 32.
    The learning rates are not tuned: torch.optim's defaults for AdaGrad,
    RMSProp and Adam, and the usual 0.1 for SGD and Momentum. The table says
    what each optimizer does out of the box, in the same number of steps.

One figure (``--out``, default ``examples/out/``) shows the valley paths and
the loss curves of both problems; the tables are printed.

Run it from the repository root:  python examples/optimizers.py [--out DIR] [--epochs N]
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

import codegen
import symgraph as sg

NAMES = ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam"]
COLORS = {"SGD": "tab:red", "Momentum": "tab:blue", "AdaGrad": "tab:orange", "RMSProp": "tab:purple",
          "Adam": "tab:green"}

# -- (a) the narrow valley --------------------------------------------------------------------

CURVATURE = np.array([0.2, 4.0])  # f(w) = 0.5 * (0.2 w1² + 4 w2²) = 0.1 w1² + 2 w2²
START = np.array([-5.0, -2.0])
STEPS = 40
VALLEY_OPTIMIZERS = {  # hand-picked rates: SGD and Momentum share theirs, to compare like with like
    "SGD": lambda: sg.optim.SGD(0.45),
    "Momentum": lambda: sg.optim.Momentum(0.45, momentum=0.5),
    "AdaGrad": lambda: sg.optim.AdaGrad(0.4),
    "RMSProp": lambda: sg.optim.RMSProp(0.4),
    "Adam": lambda: sg.optim.Adam(0.4),
}


def valley(w):
    """f(w) = 0.5 * Σ curvature·w²: on a graph node, or on arrays of points (last axis = (w1, w2))."""
    return 0.5 * (CURVATURE * w * w).sum(axis=-1)


def descend(optimizer):
    """STEPS compiled steps from START; returns the path, shape (STEPS + 1, 2), and f along it."""
    with sg.fresh_graph():  # a new intern table: each optimizer's graph and names start afresh
        w = sg.parameter("w", value=START.copy())
        loss = valley(w).named("loss")
        step = codegen.compile([], loss, updates=optimizer.updates(loss, [w]), name="descend")
        path = [w.value.copy()]
        for _ in range(STEPS):
            step()  # returns f before the step; the update is applied in place after it
            path.append(w.value.copy())
    path = np.array(path)
    return path, valley(path)


def run_valley():
    print(f"(a) the narrow valley f(w) = 0.1*w1^2 + 2*w2^2, from w = ({START[0]:g}, {START[1]:g}), {STEPS} steps")
    print(f"{'optimizer':<10} {'settings':<24} {'final loss':>10} {'w2 sign changes':>16} {'across-valley travel':>21}")
    results = {}
    for name in NAMES:
        optimizer = VALLEY_OPTIMIZERS[name]()
        path, losses = descend(optimizer)
        flips = int(np.sum(np.sign(path[1:, 1]) != np.sign(path[:-1, 1])))
        travel = float(np.abs(np.diff(path[:, 1])).sum())
        results[name] = {"path": path, "loss": losses, "flips": flips, "travel": travel}
        print(f"{name:<10} {settings(optimizer):<24} {losses[-1]:>10.2e} {flips:>16d} {travel:>21.2f}")
    sgd, mom = results["SGD"], results["Momentum"]
    damped = mom["flips"] < sgd["flips"] and mom["travel"] < sgd["travel"]
    print(f"momentum {'damps' if damped else 'does NOT damp'} the zig-zag: w2 changes sign {mom['flips']} times "
          f"instead of {sgd['flips']}, and w travels {mom['travel']:.1f} across the valley instead of "
          f"{sgd['travel']:.1f}")
    return results


def settings(optimizer):
    text = f"lr={optimizer.lr:g}"
    if isinstance(optimizer, sg.optim.Momentum):
        text += f", momentum={optimizer.momentum:g}"
    return text


# -- (b) digits ---------------------------------------------------------------------------------

DIGITS_OPTIMIZERS = {  # untuned: torch.optim's default rates, and the usual 0.1 for SGD and Momentum
    "SGD": lambda: sg.optim.SGD(0.1),
    "Momentum": lambda: sg.optim.Momentum(0.1, momentum=0.9),
    "AdaGrad": lambda: sg.optim.AdaGrad(0.01),
    "RMSProp": lambda: sg.optim.RMSProp(0.01),
    "Adam": lambda: sg.optim.Adam(0.001),
}


def load_digits_split(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, stratify=digits.target, random_state=seed
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def train_digits(optimizer, data, epochs):
    """Train a fresh MLP (always the same initial weights) with one optimizer; return its history."""
    x_train, y_train, x_test, y_test = data
    with sg.fresh_graph():
        x = sg.placeholder("x", shape=("batch", 64))
        y = sg.placeholder("y", shape=("batch",), dtype="int64")
        model = sg.nn.Sequential([
            sg.nn.Dense(64, activation=sg.relu, init=sg.init.he_normal(seed=0)),
            sg.nn.Dense(10, init=sg.init.glorot_uniform(seed=1)),
        ])
        logits = model(x)
        loss = sg.softmax_cross_entropy(logits, y).named("loss")
        step = codegen.compile([x, y], loss, updates=optimizer.updates(loss, model.parameters))
        predict = codegen.compile([x], logits, name="predict")
    history = sg.fit(step, (x_train, y_train), epochs=epochs, batch_size=32, seed=0, progress=False)
    history["test_accuracy"] = float(np.mean(np.argmax(predict(x_test), axis=1) == y_test))
    return history


def run_digits(epochs):
    data = load_digits_split()
    print(f"\n(b) digits: MLP 64 -> 64 (ReLU) -> 10, the same initial weights for each optimizer, "
          f"{epochs} epochs of batches of 32")
    print(f"{'optimizer':<10} {'settings':<24} {'loss epoch 1':>12} {'final loss':>11} {'test accuracy':>14} "
          f"{'time':>7}")
    results = {}
    for name in NAMES:
        optimizer = DIGITS_OPTIMIZERS[name]()
        tic = time.perf_counter()
        history = train_digits(optimizer, data, epochs)
        results[name] = {"settings": settings(optimizer), **history}
        print(f"{name:<10} {settings(optimizer):<24} {history['loss'][0]:>12.4f} {history['loss'][-1]:>11.4f} "
              f"{history['test_accuracy']:>14.4f} {time.perf_counter() - tic:>6.2f}s")
    return results


# -- the figure ---------------------------------------------------------------------------------


def save_figure(path, valley_results, digits_results):
    import matplotlib

    matplotlib.use("Agg")  # draw to a file; no display needed
    import matplotlib.pyplot as plt

    fig, (paths_ax, valley_ax, digits_ax) = plt.subplots(1, 3, figsize=(16, 4.8))

    w1, w2 = np.meshgrid(np.linspace(-5.5, 1.5, 300), np.linspace(-2.5, 2.5, 300))
    paths_ax.contour(w1, w2, valley(np.stack([w1, w2], axis=-1)), levels=15, colors="lightgray", linewidths=0.8)
    for name, r in valley_results.items():
        paths_ax.plot(r["path"][:, 0], r["path"][:, 1], ".-", color=COLORS[name], label=name, lw=1.2, ms=4)
    paths_ax.plot(*START, "ko")
    paths_ax.set_title(f"(a) paths through the valley 0.1·w1² + 2·w2² ({STEPS} steps)")
    paths_ax.set_xlabel("w1 (along the valley)")
    paths_ax.set_ylabel("w2 (across the valley)")
    paths_ax.legend(loc="upper right", fontsize=8)

    for name, r in valley_results.items():
        valley_ax.semilogy(np.arange(STEPS + 1), np.maximum(r["loss"], 1e-30), color=COLORS[name], label=name)
    valley_ax.set_title("(a) valley: loss per step")
    valley_ax.set_xlabel("step")
    valley_ax.set_ylabel("f(w)  (log scale)")
    valley_ax.set_ylim(bottom=1e-13)  # RMSProp dives further; the rest is where the curves differ
    valley_ax.grid(alpha=0.3)
    valley_ax.legend(fontsize=8)

    for name, r in digits_results.items():
        digits_ax.semilogy(r["epoch"], r["loss"], "o-", color=COLORS[name], ms=3,
                           label=f"{name} ({r['settings']}): test acc {r['test_accuracy']:.3f}")
    digits_ax.set_title("(b) digits MLP: training loss per epoch")
    digits_ax.set_xlabel("epoch")
    digits_ax.set_ylabel("mean cross-entropy  (log scale)")
    digits_ax.grid(alpha=0.3)
    digits_ax.legend(fontsize=8)

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="directory for the figure (default: examples/out/)")
    parser.add_argument("--epochs", type=int, default=10, help="digits epochs per run (default: 10)")
    args = parser.parse_args(argv)
    missing = [m for m in ("sklearn", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:  # a hint, not a traceback
        sys.exit(f"optimizers.py needs scikit-learn and matplotlib (missing: {', '.join(missing)}); "
                 f"install them with:  pip install -e \".[examples]\"")
    started = time.perf_counter()

    valley_results = run_valley()
    digits_results = run_digits(args.epochs)

    args.out.mkdir(parents=True, exist_ok=True)
    figure = save_figure(args.out / "optimizers.png", valley_results, digits_results)
    print(f"\nsaved figure: {figure}")
    print(f"wall time: {time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    main()

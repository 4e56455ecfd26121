"""Softmax (multinomial logistic) regression on three Gaussian blobs.

The model is the simplest classifier there is: one linear layer whose three
outputs (logits) are turned into class probabilities by a softmax,

    p(class | x) = softmax(x @ W + b),

trained to minimise the cross-entropy by mini-batch gradient descent. The
update rule is written as ``updates`` and compiled once into a train-step
function; the batch dimension is symbolic, so the same function takes the
last, smaller mini-batch of each epoch too.

Run it from the repository root:

    python examples/logistic_regression.py [--out DIR] [--epochs N]

It prints the loss and accuracy every few epochs, the final training
accuracy, and the generated train step. Into ``--out`` (default
``examples/out/``) it saves that train step as a standalone module and, if
matplotlib is installed, a plot of the decision regions.
"""

import argparse
from pathlib import Path

import numpy as np

import codegen
import symgraph as sg

CLASSES = 3


def make_blobs(n_per_class=150, spread=1.0, seed=0):
    """Three 2-D Gaussian blobs centred on a circle of radius 2.5; labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    angles = np.deg2rad([90, 210, 330])
    centres = 2.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    X = np.concatenate([rng.normal(centre, spread, size=(n_per_class, 2)) for centre in centres])
    Y = np.repeat(np.arange(CLASSES), n_per_class)
    order = rng.permutation(len(Y))
    return X[order], Y[order]


def accuracy(logits, labels):
    """Fraction of rows whose largest logit is the true class."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def save_plot(path, predict, X, Y):
    """Decision regions and the data, if matplotlib is installed (else do nothing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    lo, hi = X.min(axis=0) - 1, X.max(axis=0) + 1
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    regions = np.argmax(predict(grid), axis=1).reshape(gx.shape)

    fig, ax = plt.subplots(figsize=(5, 5))
    colours = ["tab:red", "tab:blue", "tab:green"]  # one per class, for regions and points alike
    ax.contourf(gx, gy, regions, levels=np.arange(CLASSES + 1) - 0.5, colors=colours, alpha=0.2)
    ax.scatter(X[:, 0], X[:, 1], c=[colours[k] for k in Y], s=12, edgecolors="k", linewidths=0.3)
    ax.set_title("softmax regression: decision regions")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="directory for the saved train step and plot (default: examples/out/)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    X, Y = make_blobs(seed=args.seed)
    print(f"data: {len(Y)} points, {CLASSES} classes")

    # The model: the batch dimension is a name, so any batch size fits.
    x = sg.placeholder("x", shape=("batch", 2))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")  # class indices
    W = sg.parameter("W", value=np.zeros((2, CLASSES)))  # zeros are fine: the loss is convex
    b = sg.parameter("b", value=np.zeros(CLASSES))
    logits = (x @ W + b).named("logits")
    loss = sg.softmax_cross_entropy(logits, y).named("loss")  # mean over the batch

    # Gradient descent, written as updates: W <- W - lr * dloss/dW, and so for b.
    grad_W, grad_b = sg.grad(loss, [W, b])
    train_step = codegen.compile([x, y], loss, updates={W: W - args.lr * grad_W, b: b - args.lr * grad_b})
    predict = codegen.compile([x], logits)

    rng = np.random.default_rng(args.seed)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(Y))  # a new shuffle every epoch
        total = 0.0
        for start in range(0, len(Y), args.batch_size):
            batch = order[start : start + args.batch_size]
            total += float(train_step(X[batch], Y[batch])) * len(batch)
        if epoch == 1 or epoch % 5 == 0:
            print(f"epoch {epoch:3d}  loss {total / len(Y):.4f}  accuracy {accuracy(predict(X), Y):.3f}")

    print(f"accuracy: {accuracy(predict(X), Y):.3f}")
    print("W =", np.round(W.value, 3).tolist())
    print("b =", np.round(b.value, 3).tolist())

    args.out.mkdir(parents=True, exist_ok=True)
    print("saved train step:", train_step.save(args.out / "logistic_regression_train_step.py"))
    plot = save_plot(args.out / "logistic_regression.png", predict, X, Y)
    if plot is not None:
        print("saved plot:", plot)

    print()
    print("== The generated train step (train_step.source) ==")
    print(train_step.source)


if __name__ == "__main__":
    main()

"""The course's linear-regression toy, with pictures: gradient, Hessian, condition number,
gradient descent's rate versus Newton's single step.

Two points, x1 = (2, 2) with y1 = 2 and x2 = (2, 0) with y2 = 0, and a line through the
origin, y = w^T x. The loss is the sum of squared errors, halved so that the Hessian is
X^T X without a factor 2:

    L(w) = 1/2 sum_i (w^T x_i - y_i)^2,   grad L = X^T (X w - y),   H = X^T X = [[8, 4], [4, 4]].

Gradient descent with the best fixed rate lr = 2 / (lambda_min + lambda_max) shrinks the
error by (kappa - 1) / (kappa + 1) per step (kappa = lambda_max / lambda_min, the condition
number); Newton's step w - H^{-1} grad L lands on the minimum at once.

Run it from the repository root:  python examples/linear_regression_toy.py [--out DIR]
Pictures go to examples/out/ (or DIR); ``key: value`` lines are checked by
tests/test_teaching_examples.py.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import codegen  # noqa: E402
import symgraph as sg  # noqa: E402

X_DATA = np.array([[2.0, 2.0], [2.0, 0.0]])
Y_DATA = np.array([2.0, 0.0])
STEPS = 25


def flat(array):
    return " ".join(np.array2string(np.asarray(array), precision=6, suppress_small=True).split())


def main(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    X = sg.placeholder("X", shape=(2, 2))
    y = sg.placeholder("y", shape=(2,))
    w = sg.placeholder("w", shape=(2,))
    residual = (X @ w - y).named("residual")
    loss = (0.5 * sg.sum(sg.square(residual))).named("loss")
    (grad,) = sg.grad(loss, [w])
    hessian = sg.hessian(loss, w)
    f = codegen.compile([X, y, w], [loss, grad, hessian])

    w0 = np.zeros(2)
    value, g0, H = f(X_DATA, Y_DATA, w0)
    eig = np.linalg.eigvalsh(H)
    kappa = eig[-1] / eig[0]
    lr = 2 / (eig[0] + eig[-1])
    w_star = np.linalg.solve(X_DATA.T @ X_DATA, X_DATA.T @ Y_DATA)
    print(f"loss_at_zero: {float(value):g}")
    print(f"gradient_at_zero: {flat(g0)}")
    print(f"hessian: {flat(H)}")
    print(f"eigenvalues: {flat(eig)}")
    print(f"condition_number: {kappa:.6f}")
    print(f"best_rate: {lr:.6f}")
    print(f"predicted_error_factor: {(kappa - 1) / (kappa + 1):.6f}")
    print(f"minimum: {flat(w_star)}")

    path_gd, errors = [w0], [np.linalg.norm(w0 - w_star)]
    for _ in range(STEPS):
        _, g, _ = f(X_DATA, Y_DATA, path_gd[-1])
        path_gd.append(path_gd[-1] - lr * g)
        errors.append(np.linalg.norm(path_gd[-1] - w_star))
    rates = np.array(errors[1:]) / np.array(errors[:-1])
    print(f"measured_error_factor: {rates[-1]:.6f}")  # the slowest direction dominates
    newton = w0 - np.linalg.solve(H, g0)
    print(f"newton_step: {flat(newton)}")
    print(f"newton_error: {np.linalg.norm(newton - w_star):.2e}")

    # pictures: the loss surface with both paths, the error per step, the graph with values
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    g1, g2 = np.meshgrid(np.linspace(-1.5, 2.5, 200), np.linspace(-1.5, 2.5, 200))
    W = np.stack([g1, g2], axis=-1)
    L = 0.5 * (((W @ X_DATA.T) - Y_DATA) ** 2).sum(axis=-1)
    a.contour(g1, g2, L, levels=np.geomspace(0.01, 40, 15), cmap="viridis", linewidths=0.8)
    p = np.array(path_gd)
    a.plot(p[:, 0], p[:, 1], "o-", ms=3, color="tab:red", label=f"gradient descent, lr = {lr:.3f}")
    a.plot([w0[0], newton[0]], [w0[1], newton[1]], "s--", color="tab:blue", label="Newton: one step")
    a.plot(*w_star, "k*", ms=12, label="minimum")
    a.set(xlabel="w1", ylabel="w2", title=f"L(w): H = [[8, 4], [4, 4]], kappa = {kappa:.2f}")
    a.legend(fontsize=8)
    b.semilogy(errors, "o-", ms=3, color="tab:red", label="gradient descent")
    b.semilogy(errors[0] * ((kappa - 1) / (kappa + 1)) ** np.arange(len(errors)), ":", color="gray",
               label="((kappa-1)/(kappa+1))^t")
    b.set(xlabel="step", ylabel="|w - w*|", title="error per step")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "linear_regression_toy.png", dpi=100)
    plt.close(fig)
    print(f"saved_plot: {out / 'linear_regression_toy.png'}")
    graph = sg.draw([loss, grad], out / "linear_regression_toy_graph.png",
                    feed={X: X_DATA, y: Y_DATA, w: w0}, engine="matplotlib")
    print(f"saved_graph: {graph}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[args.index("--out") + 1]) if "--out" in args else Path(__file__).parent / "out")

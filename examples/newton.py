"""Gradient descent versus Newton's method, with Hessians computed by symgraph.

Gradient descent takes a step of fixed size along -grad L. How fast it
converges is decided by the curvature of L, i.e. by its Hessian H: along an
eigenvector of eigenvalue lambda, one step with learning rate lr multiplies
the error by (1 - lr * lambda). The best fixed rate balances the flattest and
the steepest directions, lr = 2 / (lambda_1 + lambda_M), and then the error
shrinks by (kappa - 1) / (kappa + 1) per step, kappa = lambda_M / lambda_1
being the condition number. Newton's method rescales the step by the inverse
Hessian, w <- w - H^{-1} grad L, which removes the dependence on kappa
altogether: it is exact in one step on a quadratic, and converges
quadratically near the optimum of any smooth, strongly convex function.

(a) The course's toy quadratic: linear regression on two points,
    x1 = (2, 2), y1 = 2 and x2 = (2, 0), y2 = 0, with
    L(w) = 1/2 sum_i (y_i - w^T x_i)^2, whose Hessian is A = [[8, 4], [4, 4]]
    and gradient A w - b with b = [4, 4].
(b) Logistic regression on a seeded 2-D toy data set of 200 points, with a
    small L2 term: Newton (Hessian from sg.hessian, np.linalg.solve) reaches
    a gradient norm of 1e-10 in a handful of steps; gradient descent crawls.

Run it from the repository root:  python examples/newton.py

Key facts are also printed as ``key: value`` lines so that
tests/test_teaching_examples.py can check them.
"""

import time

import numpy as np

import codegen
import symgraph as sg

GD_STEPS_SHOWN = 8  # gradient-descent steps printed for the quadratic
N_POINTS, L2 = 200, 1e-3  # the logistic-regression data set and its L2 weight
TOL = 1e-10  # gradient norm at which we call an iteration converged
GD_MAX_STEPS = 20_000


def header(title):
    print()
    print(f"== {title} ==")


def flat(array, precision=10):
    """A NumPy array printed on one line, e.g. '[[8. 4.] [4. 4.]]'."""
    return " ".join(np.array2string(np.asarray(array), precision=precision).split())


# -- (a) the toy quadratic ------------------------------------------------------
def quadratic():
    header("(a) the toy quadratic: linear regression on two points")
    X_data = np.array([[2.0, 2.0], [2.0, 0.0]])  # one point per row
    y_data = np.array([2.0, 0.0])

    # Static shapes (2, 2) and (2,): sg.hessian fails when the batch dimension is
    # symbolic, e.g. ("batch", 2) (see the problems reported with this example).
    X = sg.placeholder("X", shape=(2, 2))
    y = sg.placeholder("y", shape=(2,))
    w = sg.parameter("w", value=np.zeros(2))
    loss = (0.5 * sg.sum(sg.square(y - X @ w))).named("loss")
    g = sg.grad(loss, w)
    H = sg.hessian(loss, w)
    derivatives = codegen.compile([X, y], [loss, g, H])

    _, g0, A = derivatives(X_data, y_data)  # at w = 0 the gradient A w - b is just -b
    b = -g0
    w_star = np.linalg.solve(A, b)
    eigenvalues = np.linalg.eigvalsh(A)  # ascending: lambda_1 <= ... <= lambda_M
    lam_1, lam_M = eigenvalues[0], eigenvalues[-1]
    kappa = lam_M / lam_1
    lr = 2 / (lam_1 + lam_M)
    predicted = (kappa - 1) / (kappa + 1)
    print(f"hessian: {flat(A)}")
    print(f"b: {flat(b)}")
    print(f"w_star: {flat(w_star)}")
    print(f"eigenvalues: {flat(eigenvalues)}")
    print(f"kappa: {kappa:.10f}")
    print(f"best_lr: {lr:.10f}")
    print(f"predicted_rate: {predicted:.10f}")
    print()
    print("The Hessian is constant: L is quadratic, L(w) = 1/2 w^T A w - b^T w + 1/2 |y|^2, with")
    print("A = sum_i x_i x_i^T. Its eigenvalues are the curvatures along its two eigenvectors; their")
    print(f"ratio kappa = {kappa:.4f} says the bowl is {kappa:.1f} times steeper one way than the other.")
    print(f"With lr = 2/(lambda_1 + lambda_M) = {lr:.4f}, the error is multiplied by +-(kappa-1)/(kappa+1)")
    print(f"= {predicted:.4f} along each eigenvector, so ||w_t - w*|| shrinks by that factor every step.")

    # Gradient descent, compiled with the update written as a graph: w <- w - lr * grad L.
    w0 = np.array([1.0, -1.0])
    w.value = w0.copy()
    step = codegen.compile([X, y], loss, updates={w: w - lr * g})
    print()
    print(f"gradient descent from w0 = {flat(w0)}, lr = {lr:.4f}:")
    print(f"  {'t':>3}  {'loss':>14}  {'||w_t - w*||':>14}  {'ratio':>8}")
    errors = [float(np.linalg.norm(w.value - w_star))]
    print(f"  {0:>3}  {float(step(X_data, y_data)):>14.10f}  {errors[0]:>14.10f}")
    for t in range(1, GD_STEPS_SHOWN + 1):
        errors.append(float(np.linalg.norm(w.value - w_star)))  # w_t (the call above made the step)
        current_loss = float(step(X_data, y_data))  # the loss at w_t, then w_{t+1} is computed
        print(f"  {t:>3}  {current_loss:>14.10f}  {errors[t]:>14.10f}  {errors[t] / errors[t - 1]:>8.5f}")
    ratios = [errors[t] / errors[t - 1] for t in range(1, len(errors))]
    measured = float(np.exp(np.mean(np.log(ratios[2:]))))  # after a few steps, geometric mean
    print(f"measured_rate: {measured:.10f}")
    print(f"rate_relative_error: {abs(measured - predicted) / predicted:.2e}")

    # Newton's method: one step w1 = w0 - A^{-1} grad L(w0) lands on w*.
    w.value = w0.copy()
    _, g_w0, H_w0 = derivatives(X_data, y_data)
    w1 = w0 - np.linalg.solve(H_w0, g_w0)
    newton_error = float(np.linalg.norm(w1 - w_star))
    print()
    print(f"Newton's method from w0 = {flat(w0)}: w1 = w0 - H^-1 grad L(w0) = {flat(w1)}")
    print("On a quadratic the second-order Taylor model is L itself, so one Newton step is exact.")
    print(f"newton_one_step_error: {newton_error:.3e}")


# -- (b) logistic regression ----------------------------------------------------------
def make_data(n=N_POINTS, seed=0):
    """Two overlapping Gaussian clouds in 2-D, labels 0 and 1, plus a column of ones (the bias).

    The features are deliberately neither centred nor scaled alike (the second one is three
    times wider, both are offset from 0), as raw data often is: that is what makes the Hessian
    ill-conditioned and gradient descent slow.
    """
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.float64)
    centres = np.where(labels[:, None] > 0, [1.0, 0.5], [-1.0, -0.5])
    points = (centres + rng.normal(size=(n, 2))) * [1.0, 3.0] + [2.0, 1.0]
    return np.hstack([points, np.ones((n, 1))]), labels


def logistic_regression():
    header(f"(b) logistic regression: {N_POINTS} points in 2-D, L2 weight {L2:g}")
    X_data, y_data = make_data()
    n = len(y_data)

    # theta = (w1, w2, bias): one vector, so that sg.hessian gives the full 3 x 3 Hessian.
    X = sg.placeholder("X", shape=(n, 3))
    y = sg.placeholder("y", shape=(n,))
    theta = sg.parameter("theta", value=np.zeros(3))
    loss = (sg.binary_cross_entropy(X @ theta, y) + 0.5 * L2 * sg.sum(sg.square(theta))).named("loss")
    g = sg.grad(loss, theta)
    H = sg.hessian(loss, theta)
    derivatives = codegen.compile([X, y], [loss, g, H])

    # The logistic Hessian is X^T diag(p (1 - p)) X / n + L2 I; sigma' <= 1/4 = sigma'(0), so the
    # curvature is largest at theta = 0 and lr = 1 / lambda_max(H(0)) is safe everywhere.
    _, _, H0 = derivatives(X_data, y_data)
    p0 = np.full(n, 0.5)
    by_hand = X_data.T @ (X_data * (p0 * (1 - p0))[:, None]) / n + L2 * np.eye(3)
    print(f"hessian_matches_formula: {bool(np.allclose(H0, by_hand, rtol=1e-12, atol=1e-14))}")
    lr = 1 / np.linalg.eigvalsh(H0)[-1]

    # Newton's method, on the host: each iteration's H comes out of the compiled function.
    theta.value = np.zeros(3)
    newton = []  # (loss, |grad|) per iteration
    for _ in range(50):
        L, G, HH = derivatives(X_data, y_data)
        newton.append((float(L), float(np.linalg.norm(G))))
        if newton[-1][1] < TOL:
            break
        theta.value = theta.value - np.linalg.solve(HH, G)
    theta_newton = theta.value.copy()
    _, _, H_star = derivatives(X_data, y_data)

    # The same Newton step inside the graph: sg.solve(H, g) in the compiled update, no Hessian copied out.
    theta.value = np.zeros(3)
    newton_step = codegen.compile([X, y], [loss, g], updates={theta: theta - sg.solve(H, g)})
    for _ in range(len(newton) - 1):
        newton_step(X_data, y_data)
    in_graph_gap = float(np.max(np.abs(theta.value - theta_newton)))

    # Gradient descent, the update compiled into the step: theta <- theta - lr * grad.
    theta.value = np.zeros(3)
    step = codegen.compile([X, y], [loss, g], updates={theta: theta - lr * g})
    gd = []
    start = time.perf_counter()
    while len(gd) < GD_MAX_STEPS:
        L, G = step(X_data, y_data)  # loss and gradient at theta_t, then theta_{t+1}
        gd.append((float(L), float(np.linalg.norm(G))))
        if gd[-1][1] < TOL:
            break
    gd_seconds = time.perf_counter() - start

    print(f"gradient descent uses lr = 1/lambda_max(H(0)) = {lr:.4f}")
    print()
    print(f"  {'iter':>4}  {'Newton loss':>18}  {'|grad|':>9}  {'GD loss':>18}  {'|grad|':>9}")
    for t in range(max(len(newton), 10)):
        left = f"{newton[t][0]:>18.14f}  {newton[t][1]:>9.2e}" if t < len(newton) else " " * 29
        print(f"  {t:>4}  {left}  {gd[t][0]:>18.14f}  {gd[t][1]:>9.2e}")
    for t in [m for m in (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if m < len(gd) - 1]:
        print(f"  {t:>4}  {'':29}  {gd[t][0]:>18.14f}  {gd[t][1]:>9.2e}")
    print(f"  {len(gd) - 1:>4}  {'':29}  {gd[-1][0]:>18.14f}  {gd[-1][1]:>9.2e}   (gradient descent's last step)")

    eig = np.linalg.eigvalsh(H_star)
    kappa = eig[-1] / eig[0]
    newton_steps = len(newton) - 1
    print()
    print(f"Newton needs {newton_steps} steps to reach |grad| < {TOL:g}; gradient descent needs {len(gd) - 1}"
          f" ({gd_seconds:.2f} s).")
    # Near the optimum gradient descent is linear: g_{t+1} ~ (I - lr H*) g_t, so the gradient norm
    # shrinks by the largest |1 - lr lambda_i(H*)| per step; measure it over the last steps.
    predicted_rate = float(np.max(np.abs(1 - lr * eig)))
    tail = [gd[t][1] / gd[t - 1][1] for t in range(len(gd) - 50, len(gd))]
    measured_rate = float(np.exp(np.mean(np.log(tail))))
    print("Far from the optimum Newton's steps are ordinary; near it the number of correct digits")
    print("doubles every step (quadratic convergence). Gradient descent gains only a fixed factor per")
    print(f"step near the optimum, max_i |1 - lr lambda_i(H*)| = {predicted_rate:.5f} (measured over its last 50")
    print(f"steps: {measured_rate:.5f}), because the Hessian there has condition number kappa = {kappa:.1f}.")
    print()
    print(f"newton_iterations: {newton_steps}")
    print(f"newton_final_grad_norm: {newton[-1][1]:.3e}")
    print(f"newton_converged: {newton[-1][1] < TOL}")
    print(f"newton_in_graph_minus_host: {in_graph_gap:.2e}")
    print(f"gd_iterations: {len(gd) - 1}")
    print(f"gd_final_grad_norm: {gd[-1][1]:.3e}")
    print(f"gd_converged: {gd[-1][1] < TOL}")
    print(f"loss_at_optimum: {newton[-1][0]:.14f}")
    print(f"theta_star: {flat(theta_newton)}")
    print(f"theta_gd_minus_newton: {float(np.max(np.abs(theta.value - theta_newton))):.2e}")
    print(f"hessian_at_optimum: {flat(H_star, precision=6)}")
    print(f"hessian_eigenvalues_at_optimum: {flat(eig, precision=6)}")
    print(f"kappa_at_optimum: {kappa:.6f}")
    print(f"gd_predicted_rate: {predicted_rate:.6f}")
    print(f"gd_measured_rate: {measured_rate:.6f}")


def main():
    start = time.perf_counter()
    quadratic()
    logistic_regression()
    print()
    print(f"total run time: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()

"""The teaching examples run, and the facts they teach hold.

Each example runs in a subprocess from the repository root (as a student would
run it); the ``key: value`` lines it prints are parsed and checked.
"""

import re

import numpy as np
import pytest
from example_runner import run_example



def sections(output):
    """{"a": text, "b": text, ...} split at the '== (a) ... ==' headers."""
    parts = re.split(r"^== \((\w)\) .*==$", output, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def facts(text):
    """The 'key: value' lines (key without spaces) of some output, as strings."""
    return dict(re.findall(r"^(\w+): (.*)$", text, flags=re.M))


def numbers(text):
    return np.array([float(v) for v in re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?", text)])


@pytest.fixture(scope="module")
def forward_vs_reverse():
    return sections(run_example("forward_vs_reverse.py"))


@pytest.fixture(scope="module")
def newton():
    return sections(run_example("newton.py"))


# -- forward_vs_reverse.py -------------------------------------------------------------
def test_scalar_loss_picks_reverse_mode(forward_vs_reverse):
    a = facts(forward_vs_reverse["a"])
    assert a["choice"] == "reverse"
    assert int(a["n_outputs"]) == 1 and int(a["n_inputs"]) > 100
    assert int(a["reverse_flops"]) * 10 < int(a["forward_flops"])


def test_few_inputs_many_outputs_picks_forward_mode(forward_vs_reverse):
    b = facts(forward_vs_reverse["b"])
    assert b["choice"] == "forward"
    assert (int(b["n_inputs"]), int(b["n_outputs"])) == (2, 500)
    assert int(b["forward_flops"]) * 10 < int(b["reverse_flops"])


def test_abcd_chain_dynamic_programming_beats_both_pure_modes(forward_vs_reverse):
    c = facts(forward_vs_reverse["c"])
    dp, fwd, rev = int(c["dp_cost"]), int(c["forward_chain_cost"]), int(c["reverse_chain_cost"])
    assert dp <= fwd and dp <= rev
    assert dp * 4 < min(fwd, rev)  # the sizes were chosen so that neither pure mode is close
    assert dp == int(c["brute_force_min"])  # the DP found the cheapest of all bracketings
    assert c["dp_order"] == "(AB)(CD)"  # the course's notation: input side first
    # (300*500*8 + 300*8*400 + 300*400*100, 400*100*8 + 500*8*100 + 300*500*100, ...)
    assert (fwd, rev, dp) == (14_160_000, 15_720_000, 1_760_000)
    assert int(c["optimal_flops"]) == 2 * dp  # the graph symgraph builds does the DP's work
    assert c["abcd_choice"] == "forward" and c["abcd_auto"] == "optimal"  # choice: the cheaper pure mode
    assert int(c["tanh_dp_cost"]) <= int(c["dp_cost"]) + 100 * 400 + 400 * 8 + 8 * 500
    # small constant matrices are costed before they are folded
    assert c["small_choice"] == "reverse" and c["small_auto"] == "optimal"
    assert c["small_flops"] == "forward 768, reverse 640, optimal 416"


def test_each_mode_agrees_and_the_cheapest_one_is_fastest(forward_vs_reverse):
    d = facts(forward_vs_reverse["d"])
    for tag in "abc":
        assert d[f"agree_{tag}"] == "True"
    # The predicted gaps in (a) and (b) are ~100x in flops; timing noise cannot flip them.
    assert d["faster_a"] == "reverse"
    assert d["faster_b"] == "forward"
    assert float(d["speedup_a"]) > 3 and float(d["speedup_b"]) > 3
    # (c): the optimal bracketing, compiled by symgraph, against both pure modes (8x fewer flops)
    assert {f"time_{m}_c" for m in ("forward", "reverse", "optimal")} <= set(d)
    assert d["faster_c"] == "optimal"


# -- newton.py ------------------------------------------------------------------
def test_quadratic_hessian_and_condition_number(newton):
    a = facts(newton["a"])
    assert a["hessian"] == "[[8. 4.] [4. 4.]]"
    np.testing.assert_allclose(numbers(a["hessian"]), [8, 4, 4, 4])
    np.testing.assert_allclose(numbers(a["b"]), [4, 4])
    np.testing.assert_allclose(numbers(a["w_star"]), [0, 1], atol=1e-12)
    np.testing.assert_allclose(numbers(a["eigenvalues"]), [6 - np.sqrt(20), 6 + np.sqrt(20)], rtol=1e-9)
    kappa = float(a["kappa"])
    np.testing.assert_allclose(kappa, (6 + np.sqrt(20)) / (6 - np.sqrt(20)), rtol=1e-9)
    np.testing.assert_allclose(float(a["best_lr"]), 2 / 12, rtol=1e-9)
    np.testing.assert_allclose(float(a["predicted_rate"]), (kappa - 1) / (kappa + 1), rtol=1e-9)


def test_quadratic_gradient_descent_rate_matches_theory(newton):
    a = facts(newton["a"])
    kappa = float(a["kappa"])
    predicted = (kappa - 1) / (kappa + 1)
    assert abs(float(a["measured_rate"]) - predicted) <= 0.1 * predicted


def test_newton_solves_the_quadratic_in_one_step(newton):
    assert float(facts(newton["a"])["newton_one_step_error"]) < 1e-12


def test_newton_converges_on_logistic_regression(newton):
    b = facts(newton["b"])
    assert b["hessian_matches_formula"] == "True"
    assert b["newton_converged"] == "True"
    assert float(b["newton_final_grad_norm"]) < 1e-10
    assert int(b["newton_iterations"]) <= 10
    assert int(b["gd_iterations"]) > 10 * int(b["newton_iterations"])
    assert float(b["theta_gd_minus_newton"]) < 1e-6
    assert float(b["newton_in_graph_minus_host"]) < 1e-12  # the same steps with sg.solve in the graph
    eig = numbers(b["hessian_eigenvalues_at_optimum"])
    assert len(eig) == 3 and np.all(eig > 0)  # a minimum: the Hessian is positive definite
    np.testing.assert_allclose(float(b["kappa_at_optimum"]), eig[-1] / eig[0], rtol=1e-4)
    np.testing.assert_allclose(float(b["gd_measured_rate"]), float(b["gd_predicted_rate"]), rtol=1e-3)


def test_newton_loss_decreases_every_iteration(newton):
    rows = re.findall(r"^\s+(\d+)\s+(\d\.\d{14})\s+(\S+)\s+(\d\.\d{14})\s+(\S+)$", newton["b"], flags=re.M)
    newton_losses = [float(r[1]) for r in rows]
    assert len(newton_losses) >= 3
    assert all(later <= earlier + 1e-15 for earlier, later in zip(newton_losses, newton_losses[1:]))


# -- backprop_table.py and linear_regression_toy.py (sg.trace, sg.draw, sg.compare_modes) ----------
PNG = b"\x89PNG\r\n\x1a\n"


def test_backprop_table_matches_grad_and_draws_both_sweeps(tmp_path):
    out = run_example("backprop_table.py", "--out", tmp_path)
    f = facts(out)
    assert float(f["max_difference_from_grad"]) < 1e-12
    assert int(f["rows_forward"]) == 12 and int(f["rows_reverse"]) == 10
    for name in ("grad_loss", "grad_h", "grad_add1", "grad_W", "tanh'(h)", "tan_h"):
        assert name in out, name
    for key in ("saved_forward", "saved_reverse", "saved_modes"):
        path = f[key]
        assert path.startswith(str(tmp_path))
        data = open(path, "rb").read()
        assert data.startswith(PNG) and len(data) > 10_000


def test_linear_regression_toy_hessian_rates_and_pictures(tmp_path):
    f = facts(run_example("linear_regression_toy.py", "--out", tmp_path))
    assert f["hessian"] == "[[8. 4.] [4. 4.]]"
    assert f["gradient_at_zero"] == "[-4. -4.]"
    assert float(f["condition_number"]) == pytest.approx((6 + 2 * 5**0.5) / (6 - 2 * 5**0.5), rel=1e-6)
    assert float(f["measured_error_factor"]) == pytest.approx(float(f["predicted_error_factor"]), rel=1e-4)
    assert f["newton_step"] == f["minimum"] == "[0. 1.]"
    for key in ("saved_plot", "saved_graph"):
        assert open(f[key], "rb").read(8) == PNG

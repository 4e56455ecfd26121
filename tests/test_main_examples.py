"""The main examples (train_digits.py, optimizers.py, cnn_digits.py) run as a user runs them and keep their promises.

They need the ``examples`` extra (scikit-learn and matplotlib); without it these tests are skipped.
train_digits.py runs with its default settings: the >= 97% test accuracy checked here is the
one the README's first command reports.
"""

import ast
import importlib.util
import re

from pathlib import Path

import numpy as np
import pytest
from example_runner import value_after
from example_runner import run_example as run_in_process

pytest.importorskip("sklearn", reason="the examples extra (scikit-learn) is not installed")
pytest.importorskip("matplotlib", reason="the examples extra (matplotlib) is not installed")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OPTIMIZERS = ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam"]


def run_example(name, out, *args):
    """Run examples/<name> with ``--out out``; return its stdout."""
    return run_in_process(name, "--out", out, *args)


def assert_png(path):
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert path.stat().st_size > 10_000, f"{path} is suspiciously small"


def assert_generated_module(path, function_name):
    """Valid Python whose __all__ names exactly one function, defined in it and importable with NumPy only."""
    source = path.read_text()
    tree = ast.parse(source)
    exported = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
    ]
    assert exported == [[function_name]], exported
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert function_name in defined
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"numpy", "threading"}, imported  # NumPy and the standard library's threading only
    spec = importlib.util.spec_from_file_location(f"generated_{function_name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(getattr(module, function_name))


# -- train_digits.py ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits_out")
    return run_example("train_digits.py", out), out


def test_digits_reaches_97_percent_with_default_settings(digits_run):
    stdout, _ = digits_run
    accuracy = float(value_after("test accuracy:", stdout).split()[0])
    assert accuracy >= 0.97, stdout
    epochs = re.findall(r"^epoch\s+(\d+)/(\d+)\s+loss ([0-9.]+)\s+eval ([0-9.]+)", stdout, flags=re.MULTILINE)
    assert len(epochs) == 10, stdout
    losses = [float(e[2]) for e in epochs]
    assert losses[-1] < losses[0]
    assert float(epochs[-1][3]) == pytest.approx(accuracy, abs=1e-4)  # the last epoch's eval is the reported one


def test_digits_reports_time_and_throughput(digits_run):
    stdout, _ = digits_run
    assert re.match(r"[0-9.]+s for 10 epochs", value_after("training time:", stdout))
    throughput = float(value_after("throughput:", stdout).split()[0].replace(",", ""))
    assert throughput > 0
    assert float(value_after("wall time:", stdout).rstrip("s")) > 0


def test_digits_checkpoint_round_trips(digits_run):
    stdout, out = digits_run
    line = value_after("checkpoint:", stdout)
    wiped, reloaded = (float(v) for v in re.findall(r"test accuracy ([0-9.]+);.*-> ([0-9.]+)$", line)[0])
    assert reloaded == float(value_after("test accuracy:", stdout).split()[0])
    assert wiped < 0.5
    path = Path(value_after("saved checkpoint:", stdout))
    assert path.parent == out and path.is_file()
    with np.load(path) as checkpoint:
        assert {"dense1_W", "batchnorm1_running_mean", "dropout1_key", "step"} <= set(checkpoint.files)


def test_digits_saves_curve_and_generated_modules(digits_run):
    stdout, out = digits_run
    curve = Path(value_after("saved training curve:", stdout))
    assert curve.parent == out
    assert_png(curve)
    step_file = Path(value_after("saved train step:", stdout))
    assert step_file.parent == out and step_file.suffix == ".py"
    assert_generated_module(step_file, "train_step")
    source = step_file.read_text()
    assert "# backward" in source and "grad_dense1_W" in source  # forward, backward and the update in one function
    assert "dense1_W_m" in source and "batchnorm1_running_var" in source  # Adam's and batch norm's state
    assert_generated_module(Path(value_after("saved predict:", stdout)), "predict")


def test_digits_prints_the_generated_code(digits_run):
    stdout, _ = digits_run
    shown = stdout.split("== The generated training step", 1)[1].split("== The same model in evaluation mode", 1)
    assert "# forward" in shown[0] and "# backward" in shown[0] and "grad_" in shown[0]
    assert "return cost" in shown[0]
    assert "running_mean" in shown[1] and "_uniform" not in shown[1]  # eval: running statistics, no dropout


# -- optimizers.py ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def optimizers_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("optimizers_out")
    return run_example("optimizers.py", out), out


def table(stdout, header):
    """{optimizer: the rest of its row} for the table that follows the line starting with ``header``."""
    section = stdout.split(header, 1)[1]
    rows = {}
    for line in section.splitlines()[2:]:
        name = line.split(" ", 1)[0]
        if name not in OPTIMIZERS:
            break
        rows[name] = line
    return rows


def test_optimizers_valley_momentum_damps_the_zigzag(optimizers_run):
    stdout, _ = optimizers_run
    rows = table(stdout, "(a) the narrow valley")
    assert list(rows) == OPTIMIZERS, stdout
    numbers = {name: re.findall(r"(\S+)\s+(\d+)\s+([0-9.]+)$", row)[0] for name, row in rows.items()}
    loss = {name: float(n[0]) for name, n in numbers.items()}
    flips = {name: int(n[1]) for name, n in numbers.items()}
    travel = {name: float(n[2]) for name, n in numbers.items()}
    assert flips["SGD"] == 40  # SGD near its stability limit overshoots the valley floor at every step
    assert flips["Momentum"] < flips["SGD"]
    assert travel["Momentum"] < travel["SGD"]
    assert loss["Momentum"] < loss["SGD"]
    assert all(np.isfinite(v) and v < 50 for v in loss.values())  # f(start) = 6.5; nothing diverged


def test_optimizers_digits_table_and_figure(optimizers_run):
    stdout, out = optimizers_run
    rows = table(stdout, "(b) digits")
    assert list(rows) == OPTIMIZERS, stdout
    for row in rows.values():
        numbers = re.findall(r"([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+[0-9.]+s$", row)[0]
        first, final, accuracy = (float(v) for v in numbers)
        assert final < first  # every optimizer made progress from the same start
        assert accuracy > 0.9
    figure = Path(value_after("saved figure:", stdout))
    assert figure.parent == out
    assert_png(figure)


# -- cnn_digits.py ------------------------------------------------------------------------
# A fast run (2 epochs on 300 training images); the full run's >= 98.5% is reported in the issue, not tested here.


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn_out")
    return run_example("cnn_digits.py", out, "--epochs", "2", "--subset", "300"), out


def test_cnn_digits_trains_and_reports(cnn_run):
    stdout, _ = cnn_run
    assert value_after("data:", stdout).startswith("300 training images (x5 with one-pixel shifts = 1500 images)")
    epochs = re.findall(r"^epoch\s+(\d+)/(\d+)\s+loss ([0-9.]+)\s+eval ([0-9.]+)", stdout, flags=re.MULTILINE)
    assert len(epochs) == 2, stdout
    assert float(epochs[1][2]) < float(epochs[0][2])
    accuracy = float(value_after("test accuracy:", stdout).split()[0])
    assert accuracy > 0.6, stdout  # (0.83 at the default seed)
    assert float(epochs[-1][3]) == pytest.approx(accuracy, abs=1e-4)
    assert re.match(r"[0-9.]+s for 2 epochs", value_after("training time:", stdout))
    assert float(value_after("wall time:", stdout).rstrip("s")) > 0


def test_cnn_digits_prints_conv_lines_and_saves(cnn_run):
    stdout, out = cnn_run
    shown = stdout.split("== The generated convolution and pooling lines", 1)[1]
    for helper in ("_conv_columns(x, ", "_conv2d_from_columns(conv_columns1, conv1_W", "_max_pool2d(", "# backward",
                   "_max_pool2d_grad(", "_conv_transpose2d(", "_conv2d_weight_grad_from_columns(conv_columns1, "):
        assert helper in shown, (helper, shown)
    curve = Path(value_after("saved training curve:", stdout))
    assert curve.parent == out
    assert_png(curve)
    step_file = Path(value_after("saved train step:", stdout))
    assert step_file.parent == out and step_file.name == "cnn_train_step.py"
    assert_generated_module(step_file, "train_step")
    source = step_file.read_text()
    assert "def _conv_columns(" in source and "grad_conv1_W" in source and "conv1_W_m" in source  # helper, grad, Adam

"""The example scripts run from a clean process and print what they promise."""

import ast
import re
from pathlib import Path

from example_runner import run_example, value_after

SOURCE_HEADER = "(train_step.source) =="


def losses(out, prefix):
    return [float(m) for m in re.findall(rf"^{prefix}\s+\d+\s+loss ([0-9.]+)", out, flags=re.MULTILINE)]


def generated_source(out):
    """The train step's source, printed last; it must be valid Python with a gradient in it."""
    assert SOURCE_HEADER in out, out
    source = out.split(SOURCE_HEADER, 1)[1]
    ast.parse(source)
    assert "def " in source
    assert "grad_" in source
    return source


def test_xor_fixed_network_and_training():
    out = run_example("xor.py")
    assert value_after("fixed network:", out) == "[0, 1, 1, 0]"
    assert value_after("trained network:", out) == "[0, 1, 1, 0]"
    trained = ast.literal_eval(value_after("trained network outputs:", out))
    assert all(abs(o - t) < 0.5 for o, t in zip(trained, [0, 1, 1, 0]))
    history = losses(out, "step")
    assert len(history) >= 2 and history[-1] < history[0]
    assert value_after("XW + c:", out) == "[[0.0, -1.0], [1.0, 0.0], [1.0, 0.0], [2.0, 1.0]]"  # the book's matrices
    assert value_after("max(0, XW + c):", out) == "[[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 1.0]]"
    assert "grad_hidden" in out.split(SOURCE_HEADER)[0] and "tanh'(hidden)" in out  # the backprop table
    source = generated_source(out)
    assert "def train_step(" in source
    for param in ("W", "c", "w", "b"):
        assert f"grad_{param} = " in source
        assert f"{param}[...] = " in source or f"{param} -= " in source  # the update, written in place


def test_logistic_regression_reaches_high_accuracy(tmp_path):
    out = run_example("logistic_regression.py", "--out", str(tmp_path))
    assert float(value_after("accuracy:", out)) > 0.9
    history = losses(out, "epoch")
    assert len(history) >= 2 and history[-1] < history[0]
    saved = Path(value_after("saved train step:", out))
    assert saved.parent == tmp_path and saved.exists()
    source = generated_source(out)
    assert saved.read_text() == source.strip("\n") + "\n"
    assert "grad_W = " in source and "grad_b = " in source

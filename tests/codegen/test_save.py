"""f.save(path): a standalone module that needs only NumPy (DESIGN.md section A).

Each saved module is imported in a fresh interpreter where importing symgraph
or codegen fails, so the module really stands alone.
"""

import json
import os
import pathlib
import re
import stat
import subprocess
import sys

import numpy as np
import pytest

import codegen
import symgraph as sg

RUNNER = r"""
import importlib.util, inspect, json, sys, types
sys.modules["symgraph"] = None  # any import of these now raises ImportError
sys.modules["codegen"] = None
import numpy as np

path, inp, out = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("saved_module", path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
public = sorted(k for k, v in vars(mod).items() if isinstance(v, types.FunctionType) and not k.startswith("_"))
fn = getattr(mod, mod.__all__[0])
params = inspect.signature(fn).parameters.values()
data = np.load(inp)
args = [data[f"in_{i}"] for i in range(int(data["n_in"]))]
kwargs = {k[3:]: data[k].copy() for k in data.files if k.startswith("kw_")}
passed = dict(kwargs)
res = fn(*args, **kwargs)
n_out = int(data["n_out"])
res = [res] if n_out == 1 else list(res)
np.savez(out, **{f"out_{i}": np.asarray(r) for i, r in enumerate(res)},
         **{f"kw_{k}": v for k, v in passed.items()})
print(json.dumps({
    "all": list(mod.__all__),
    "public": public,
    "name": fn.__name__,
    "positional": [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD],
    "keyword": [p.name for p in params if p.kind == p.KEYWORD_ONLY],
    "same_objects": all(kwargs[k] is passed[k] for k in kwargs),
    "loaded": sorted(m for m in ("symgraph", "codegen") if sys.modules.get(m) is not None),
}))
"""


def run_saved(path, tmp_path, inputs, kwargs, n_out):
    """Import the saved module in a fresh interpreter and call its function once."""
    inp, out = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(inp, n_in=len(inputs), n_out=n_out, **{f"in_{i}": a for i, a in enumerate(inputs)},
             **{f"kw_{k}": v for k, v in kwargs.items()})
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(path), str(inp), str(out)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(proc.stdout.strip().splitlines()[-1])
    with np.load(out) as data:
        outs = [data[f"out_{i}"] for i in range(n_out)]
        after = {k[3:]: data[k] for k in data.files if k.startswith("kw_")}
    return meta, outs, after


def build_train_step(rng):
    x = sg.placeholder("x", shape=("batch", 3))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W1 = sg.parameter("W1", value=rng.normal(size=(3, 5)))
    b1 = sg.parameter("b1", value=np.zeros(5))
    W2 = sg.parameter("W2", value=rng.normal(size=(5, 4)))
    b2 = sg.parameter("b2", value=np.zeros(4))
    loss = sg.softmax_cross_entropy(sg.tanh(x @ W1 + b1) @ W2 + b2, y)
    params = [W1, b1, W2, b2]
    grads = sg.grad(loss, params)
    updates = {p: p - 0.1 * g for p, g in zip(params, grads)}
    f = codegen.compile([x, y], [loss, grads[0]], updates=updates)
    return f, params


def test_saved_train_step_matches_compiled_function(rng, tmp_path):
    f, params = build_train_step(rng)
    path = tmp_path / "mlp_step.py"
    assert f.save(str(path)) == str(path)
    xb, yb = rng.normal(size=(6, 3)), rng.integers(0, 4, size=6)
    before = {p.name: p.value.copy() for p in params}

    expected_loss, expected_gW1 = f(xb, yb)  # updates the parameters in place
    expected_after = {p.name: p.value.copy() for p in params}
    assert not np.allclose(expected_after["W1"], before["W1"])  # the step did change something

    meta, (loss_value, gW1), after = run_saved(path, tmp_path, [xb, yb], before, n_out=2)
    assert meta["loaded"] == []
    assert meta["all"] == [meta["name"]] == ["train_step"]
    assert meta["public"] == ["train_step"]
    assert meta["positional"] == ["x", "y"]
    assert meta["keyword"] == ["W1", "b1", "W2", "b2"]
    np.testing.assert_allclose(loss_value, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(gW1, expected_gW1, rtol=1e-12)
    # the arrays passed as keyword arguments were updated in place
    assert meta["same_objects"]
    for name, value in expected_after.items():
        np.testing.assert_allclose(after[name], value, rtol=1e-12, err_msg=name)


def test_saved_module_text_is_the_source(rng, tmp_path):
    x = sg.placeholder("x", shape=(2,))
    f = codegen.compile([x], sg.exp(x))
    path = tmp_path / "exp_mod.py"
    returned = f.save(pathlib.Path(path))  # path-like accepted
    assert os.fspath(returned) == str(path)
    assert path.read_text(encoding="utf-8") == f.source
    # saving again overwrites, and leaves no temporary files behind
    f.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp_mod.py"]


def test_saved_module_with_constants_helpers_and_odd_names(rng, tmp_path):
    x = sg.placeholder('in"""put\nimport os', shape=("batch", 80))
    scale = rng.normal(size=80)  # large: stored as a base64 module constant
    small = np.array([1.0, -2.0, 3.0])
    V = sg.parameter("class", value=rng.normal(size=(80, 3)))
    logits = (x * scale) @ V + small
    out = [sg.softmax(logits), sg.logsumexp(logits, axis=-1), sg.sigmoid(logits).sum()]
    f = codegen.compile([x], out, name="predict")
    path = tmp_path / "predict_mod.py"
    f.save(path)
    assert "import os" not in path.read_text(encoding="utf-8")
    xb = rng.normal(size=(4, 80))
    expected = f(xb)
    meta, got, after = run_saved(path, tmp_path, [xb], {"class_": V.value}, n_out=3)
    assert meta["all"] == ["predict"] and meta["public"] == ["predict"]
    assert meta["keyword"] == ["class_"]
    assert len(meta["positional"]) == 1
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_array_equal(after["class_"], V.value)  # no updates: untouched


def test_saved_swap_update_applies_together(tmp_path):
    a = sg.parameter("a", value=np.array([1.0, 2.0]))
    b = sg.parameter("b", value=np.array([3.0, 4.0]))
    f = codegen.compile([], a + b, updates={a: b, b: a})
    path = tmp_path / "swap_mod.py"
    f.save(path)
    meta, (total,), after = run_saved(path, tmp_path, [], {"a": a.value, "b": b.value}, n_out=1)
    assert meta["positional"] == [] and meta["keyword"] == ["a", "b"]
    np.testing.assert_array_equal(total, [4.0, 6.0])
    np.testing.assert_array_equal(after["a"], [3.0, 4.0])
    np.testing.assert_array_equal(after["b"], [1.0, 2.0])


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_saved_file_has_ordinary_permissions(tmp_path):
    x = sg.placeholder("x", shape=(2,))
    f = codegen.compile([x], x * 2.0)
    reference = tmp_path / "plain.py"
    reference.write_text("x = 1\n")
    path = tmp_path / "saved.py"
    f.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


@pytest.mark.parametrize("target, error, match", [
    ("", ValueError, r"compute\.save: '' is not a file name"),
    (".", ValueError, r"compute\.save: '\.' is not a file name"),
    ("{dir}", IsADirectoryError, r"compute\.save: cannot write module '.*': it is a directory"),
    ("{dir}/missing/m.py", FileNotFoundError, r"compute\.save: cannot write module '.*m\.py': directory '.*missing' "
                                               r"does not exist"),
    ("{dir}/" + "m" * 300 + ".py", OSError, r"compute\.save: cannot write module '.*': its name is too long"),
])
def test_save_refuses_bad_targets_clearly_and_leaves_no_file(target, error, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x = sg.placeholder("x", shape=(3,))
    f = codegen.compile([x], sg.exp(x))
    with pytest.raises(error, match=match):
        f.save(target.format(dir=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_save_interrupted_midway_leaves_no_temporary_file(tmp_path, monkeypatch):
    x = sg.placeholder("x", shape=(3,))
    f = codegen.compile([x], sg.exp(x))

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        f.save(tmp_path / "m.py")
    assert list(tmp_path.iterdir()) == []


# -- a saved module checks its arguments as the compiled function does (issue 11, defect 6) ---


@pytest.fixture
def adam_step(rng):
    """A float32 train step with Adam (its state includes the 0-d ``step``), and its parameters and state."""
    x = sg.placeholder("x", shape=("batch", 3), dtype="float32")
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W = sg.parameter("W", value=rng.normal(size=(3, 4)).astype(np.float32))
    b = sg.parameter("b", value=np.zeros(4, dtype=np.float32))
    loss = sg.softmax_cross_entropy(x @ W + b, y)
    f = codegen.compile([x, y], loss, updates=sg.optim.Adam(0.1).updates(loss, [W, b]))
    return f, f.params


def state_of(params):
    return {p.name: p.value.copy() for p in params}


def bad_state(state, case):
    """The keyword arguments with one mistake in them, and the argument it names."""
    bad = dict(state)
    if case == "float":
        bad["step"] = 0.0
    elif case == "list":
        bad["W"] = state["W"].tolist()
    elif case == "shape":
        bad["b"] = np.zeros(5, dtype=np.float32)
    elif case == "dtype":
        bad["W"] = state["W"].astype(np.float64)
    elif case == "read-only":
        bad["b"] = state["b"].copy()
        bad["b"].flags.writeable = False
    elif case == "shared":  # the same array passed twice: updating one would change the other
        bad["W_m"] = bad["W_v"]
    elif case == "overlapping":  # views of one buffer that overlap
        buffer = np.zeros(16, dtype=np.float32)
        bad["b_m"], bad["b_v"] = buffer[:4], buffer[2:6]
    names = {"float": "step", "list": "W", "shape": "b", "dtype": "W", "read-only": "b", "shared": "W_[mv]",
             "overlapping": "b_[mv]"}
    return bad, names[case]


@pytest.mark.parametrize("case", ["float", "list", "shape", "dtype", "read-only", "shared", "overlapping"])
def test_saved_module_refuses_bad_state_before_changing_anything(adam_step, load_saved, case):
    f, params = adam_step
    step = load_saved(f)
    state, name = bad_state(state_of(params), case)
    before = {k: np.array(v, copy=True) for k, v in state.items()}
    with pytest.raises(ValueError, match=rf"train_step: keyword argument '{name}'"):
        step(np.ones((2, 3), dtype=np.float32), np.array([0, 3]), **state)
    for key, value in state.items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_saved_module_accepts_state_with_any_strides(adam_step, load_saved, rng):
    f, params = adam_step
    step = load_saved(f)
    xb, yb = rng.normal(size=(5, 3)).astype(np.float32), rng.integers(0, 4, size=5)
    contiguous, strided = state_of(params), state_of(params)
    strided["W"] = np.asfortranarray(strided["W"])
    strided["b"] = np.repeat(strided["b"], 2)[::2]  # a view with a stride of two elements
    np.testing.assert_array_equal(step(xb, yb, **strided), step(xb, yb, **contiguous))
    for key, value in contiguous.items():
        np.testing.assert_array_equal(strided[key], value, err_msg=key)


def test_saved_module_accepts_state_in_separate_views_of_one_buffer(adam_step, load_saved, rng):
    f, params = adam_step
    step = load_saved(f)
    xb, yb = rng.normal(size=(5, 3)).astype(np.float32), rng.integers(0, 4, size=5)
    separate, packed = state_of(params), state_of(params)
    buffer = np.zeros(8, dtype=np.float32)  # b_m and b_v side by side in one array
    packed["b_m"], packed["b_v"] = buffer[:4], buffer[4:]
    np.testing.assert_array_equal(step(xb, yb, **packed), step(xb, yb, **separate))
    np.testing.assert_array_equal(buffer, np.concatenate([separate["b_m"], separate["b_v"]]))


@pytest.mark.parametrize("args, kwargs", [
    ((np.ones((2, 4)), np.array([0, 1])), {}),                     # shape
    ((np.ones((2, 3)), np.array([0, 1, 2])), {}),                  # named dimension
    ((np.full((2, 3), 1e300), np.array([0, 1])), {}),              # inf in float32
    ((np.ones((2, 3)), np.array([0.5, 1.0])), {}),                 # a fraction into int64
    ((np.ones((2, 3)), np.array([0, 4])), {}),                     # a label out of range
    ((np.ones((2, 3)), np.array([-1, 0])), {}),
    ((np.ones((2, 3)),), {}),                                      # missing
    ((np.ones((2, 3)),), {"x": np.ones((2, 3)), "y": np.array([0])}),  # given twice
    ((np.ones((2, 3)), np.array([0, 1])), {"z": 1}),               # unknown
])
def test_saved_module_and_compiled_function_give_the_same_errors(adam_step, load_saved, args, kwargs):
    f, params = adam_step
    step = load_saved(f)
    with pytest.raises((TypeError, ValueError)) as compiled:
        f(*args, **kwargs)
    with pytest.raises(compiled.type) as saved:
        step(*args, **kwargs, **state_of(params))
    assert str(saved.value) == str(compiled.value)
    assert re.search(r"'[xyz]'", str(saved.value))


def test_saved_module_takes_inputs_by_keyword_and_converts_them(adam_step, load_saved, rng):
    f, params = adam_step
    step = load_saved(f)
    xb, yb = rng.normal(size=(5, 3)), rng.integers(0, 4, size=5).astype(np.float64)  # converted: float32, int64
    by_position, by_keyword = state_of(params), state_of(params)
    expected = step(xb.astype(np.float32), yb.astype(np.int64), **by_position)
    np.testing.assert_array_equal(step(y=yb.tolist(), x=xb, **by_keyword), expected)
    for key, value in by_position.items():
        np.testing.assert_array_equal(by_keyword[key], value, err_msg=key)

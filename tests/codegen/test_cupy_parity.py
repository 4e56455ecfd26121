"""The CuPy backend against the NumPy backend, run on the CPU stand-in (codegen.testing.emulated_cupy).

Every function here is compiled for both backends from the same graph and called with the
same arrays: the op registry (values, vjps and jvps), Jacobians and Hessians, every optimizer
with its schedule, BatchNorm and Dropout in training and evaluation, ``sg.fit`` with
checkpoints, and the digits example. Float64 results agree to rtol 1e-10, float32 to 1e-5.
The stand-in compiles each kernel's exact source with the host compiler; the last test
compiles every kernel these tests generated with nvcc (skipped, with the reason, without it).
When a real GPU and CuPy are present (``SYMGRAPH_REAL_CUPY=1``), the same tests run on them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import codegen
import symgraph as sg
from codegen import testing
from codegen.testing import nvcc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "symgraph"))
from test_ops import CASES, GRAD_CASES, make_inputs  # noqa: E402

RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
KERNELS: dict[str, str] = {}  # kernel source -> its name, for every CuPy module compiled here
REAL = os.environ.get("SYMGRAPH_REAL_CUPY") == "1"
_KERNEL = re.compile(r'cp\.RawKernel\(r"""\n(.*?)""", \'(\w+)\'\)', re.S)


@pytest.fixture(autouse=True)
def cupy():
    """The ``cupy`` module the tests run on: the stand-in (or real CuPy with SYMGRAPH_REAL_CUPY=1)."""
    if REAL:
        import cupy

        yield cupy
        return
    with testing.emulated_cupy() as module:
        yield module


def cupy_compile(*args, **kwargs):
    f = codegen.compile(*args, backend="cupy", **kwargs)
    for source, name in _KERNEL.findall(f.source):
        KERNELS.setdefault(source, name)
    return f


def host(value):
    return value.get() if hasattr(value, "get") and not isinstance(value, np.ndarray) else np.asarray(value)


def assert_close(got, expected, dtype=None, what=""):
    got, expected = host(got), np.asarray(expected)
    assert got.shape == expected.shape, what
    assert got.dtype == expected.dtype, what
    rtol = RTOL.get(np.dtype(dtype or expected.dtype), 1e-10)
    finite = np.abs(expected[np.isfinite(expected)]) if expected.dtype.kind == "f" else np.abs(expected)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * max(1.0, finite.max(initial=0)), err_msg=what)


def both(inputs, outputs, arrays, **kwargs):
    """(CuPy results on the host, NumPy results) of the same graph."""
    expected = codegen.compile(inputs, outputs, **kwargs)(*arrays)
    got = cupy_compile(inputs, outputs, **kwargs)(*arrays)
    if isinstance(outputs, list):
        return [host(g) for g in got], expected
    return host(got), expected


# -- the op registry ----------------------------------------------------------------------
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_forward(case, rng):
    xs, arrays = make_inputs(case, rng)
    out = case.build(*xs)
    with np.errstate(all="ignore"):
        got, expected = both(xs, out, arrays)
    assert_close(got, expected, what=case.name)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in GRAD_CASES])
def test_vjp_and_jvp(case, rng):
    xs, arrays = make_inputs(case, rng)
    out = case.build(*xs)
    idx = [i for i, spec in enumerate(case.inputs) if spec.diff]
    wrt = [xs[i] for i in idx]
    ts = [sg.placeholder(f"t{i}", xs[i].shape) for i in idx]
    c = sg.placeholder("c", out.shape)
    (jv,) = sg.jvp([out], wrt, ts)
    vj = sg.vjp([out], wrt, [c])
    values = arrays + [rng.normal(size=a.shape) for a in (arrays[i] for i in idx)]
    values.append(rng.normal(size=np.shape(codegen.evaluate(out, dict(zip(xs, arrays))))))
    with np.errstate(all="ignore"):
        got, expected = both(xs + ts + [c], [jv, *vj], values)
    for g, e in zip(got, expected):
        assert_close(g, e, what=case.name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mod_takes_the_sign_of_the_divisor_as_numpy_does(dtype):
    """A user's Mod printed as C's fmod took the dividend's sign: Mod(-0.5, 2) gave -0.5, not 1.5."""
    import sympy

    mod = sg.elementwise(lambda a, b: sympy.Mod(a, b), name="mod")
    a, b = sg.placeholder("a", (6,), dtype=dtype), sg.placeholder("b", (6,), dtype=dtype)
    av = np.array([5.5, -0.5, 5.5, -5.5, 4.0, -4.0], dtype)
    bv = np.array([2.0, 2.0, -2.0, -2.0, 2.0, -2.0], dtype)
    got, expected = both([a, b], mod(a, b), [av, bv])
    np.testing.assert_array_equal(expected, np.mod(av, bv))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))  # -0.0 for a zero over b < 0


# -- Jacobians and Hessians ---------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian(mode, rng):
    x = sg.placeholder("x", (5,))
    W = sg.parameter("W", rng.normal(size=(5, 4)))
    y = sg.tanh(x @ W) * sg.sigmoid(x @ W)
    got, expected = both([x], sg.jacobian(y, x, mode=mode), [rng.normal(size=5)])
    assert_close(got, expected)


def test_hessian_of_a_logistic_loss(rng):
    X = rng.normal(size=(32, 6))
    t = (rng.random(32) > 0.5).astype(float)
    w = sg.placeholder("w", (6,))
    loss = sg.mean(sg.softplus(sg.constant(X) @ w) - sg.constant(t) * (sg.constant(X) @ w))
    got, expected = both([w], sg.hessian(loss, w), [rng.normal(size=6)])
    assert_close(got, expected)


# -- training -----------------------------------------------------------------------------
OPTIMIZERS = {
    "sgd": lambda: sg.optim.SGD(0.1),
    "momentum": lambda: sg.optim.Momentum(0.05, 0.9),
    "adagrad": lambda: sg.optim.AdaGrad(0.05),
    "rmsprop": lambda: sg.optim.RMSProp(0.01),
    "adam": lambda: sg.optim.Adam(sg.schedules.cosine(0.01, total_steps=10)),
    "adamw": lambda: sg.optim.AdamW(0.01, weight_decay=0.1),
    "nadam": lambda: sg.optim.Nadam(0.01),
    "adadelta": lambda: sg.optim.Adadelta(),
    "rprop": lambda: sg.optim.Rprop(0.01),
}


def _mlp_step(optimizer, dtype, backend, seed=0, batchnorm=False, dropout=False):
    """A 6-16-3 MLP step (tanh, optionally BatchNorm and Dropout) in a fresh graph."""
    with sg.fresh_graph():
        layers = [sg.nn.Dense(16, init=sg.init.glorot_uniform(seed=seed))]
        layers += [sg.nn.BatchNorm()] if batchnorm else []
        layers += [sg.tanh]
        layers += [sg.nn.Dropout(0.3, seed=seed)] if dropout else []
        layers += [sg.nn.Dense(3, init=sg.init.glorot_uniform(seed=seed + 1))]
        model = sg.nn.Sequential(layers)
        x = sg.placeholder("x", ("batch", 6), dtype=dtype)
        y = sg.placeholder("y", ("batch",), dtype="int64")
        loss = sg.softmax_cross_entropy(model(x, training=True), y)
        updates = {**optimizer().updates(loss, model.parameters), **model.state_updates}
        step = codegen.compile([x, y], loss, updates=updates, backend=backend)
        predict = codegen.compile([x], model(x, training=False), backend=backend)
        leaves = sorted(updates, key=lambda leaf: leaf.name)
        if backend == "cupy":
            for source, name in _KERNEL.findall(step.source + predict.source):
                KERNELS.setdefault(source, name)
        return step, predict, leaves


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps(name, dtype, rng):
    X = rng.normal(size=(20, 6)).astype(dtype)
    Y = rng.integers(0, 3, size=20)
    (step_np, _, leaves_np), (step_cp, _, leaves_cp) = (_mlp_step(OPTIMIZERS[name], dtype, b) for b in ("numpy", "cupy"))
    for k in range(4):
        assert_close(step_cp(X, Y), step_np(X, Y), dtype, f"{name} loss, step {k}")
    for a, b in zip(leaves_cp, leaves_np):
        assert_close(a.value, b.value, dtype, f"{name}: {b.name}")


SCHEDULES = {
    "constant": lambda: sg.schedules.constant(0.05),
    "inverse_time": lambda: sg.schedules.inverse_time(0.05, 0.5),
    "inverse_sqrt": lambda: sg.schedules.inverse_sqrt(0.05),
    "exponential": lambda: sg.schedules.exponential(0.05, 0.9),
    "step": lambda: sg.schedules.step(0.05, 0.5, 2),
    "cosine": lambda: sg.schedules.cosine(0.05, 5, lr_min=0.001),
    "warmup": lambda: sg.schedules.warmup(sg.schedules.cosine(0.05, 5), 2),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules(name, rng):
    X = rng.normal(size=(10, 6)).astype(np.float32)
    Y = rng.integers(0, 3, size=10)
    optimizer = lambda: sg.optim.Momentum(SCHEDULES[name](), 0.9)  # noqa: E731
    (step_np, _, leaves_np), (step_cp, _, leaves_cp) = (_mlp_step(optimizer, "float32", b) for b in ("numpy", "cupy"))
    for k in range(5):
        assert_close(step_cp(X, Y), step_np(X, Y), np.float32, f"{name}: loss, step {k}")
    for a, b in zip(leaves_cp, leaves_np):
        assert_close(a.value, b.value, np.float32, f"{name}: {b.name}")


def test_evaluate_and_keyword_inputs(cupy, rng):
    x = sg.placeholder("x", ("n", 3))
    y = sg.placeholder("y", (3,))
    out = sg.tanh(x * y).sum(axis=0)
    xv, yv = rng.normal(size=(4, 3)), rng.normal(size=3)
    got = codegen.evaluate(out, {x: xv, y: yv}, backend="cupy")
    assert isinstance(got, cupy.ndarray)
    assert_close(got, np.tanh(xv * yv).sum(axis=0))
    f = cupy_compile([x, y], out)
    assert_close(f(y=cupy.asarray(yv), x=xv), np.tanh(xv * yv).sum(axis=0))  # NumPy and CuPy inputs
    with pytest.raises(ValueError, match="input 'y' expects shape"):
        f(xv, np.zeros(4))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_random_uniform_draws_what_numpy_draws(dtype):
    """The CuPy helper draws on the host with NumPy's generator (float16 on the 2**-11 grid, as NumPy's)."""
    key = sg.random_key("key", 7)
    x = sg.placeholder("x", (5, 3), dtype=dtype)
    u = sg.random_uniform(key, x)
    data = np.zeros((5, 3), dtype=dtype)
    got = host(cupy_compile([x], u)(data))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, codegen.compile([x], u)(data))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batchnorm_and_dropout_train_and_eval(dtype, rng):
    X = rng.normal(size=(12, 6)).astype(dtype)
    Y = rng.integers(0, 3, size=12)
    built = [_mlp_step(OPTIMIZERS["momentum"], dtype, b, batchnorm=True, dropout=True) for b in ("numpy", "cupy")]
    (step_np, predict_np, leaves_np), (step_cp, predict_cp, leaves_cp) = built
    for _ in range(3):
        assert_close(step_cp(X, Y), step_np(X, Y), dtype, "loss")
    for a, b in zip(leaves_cp, leaves_np):
        assert_close(a.value, b.value, dtype, b.name)
    assert_close(predict_cp(X), predict_np(X), dtype, "eval")


def _cnn_step(dtype, backend):
    """A small conv net step (Conv2d with bias, BatchNorm2d, ReLU, max-pool, Dense) in a fresh graph."""
    with sg.fresh_graph():
        model = sg.nn.Sequential([sg.nn.Conv2d(4, 3, padding=1, init=sg.init.glorot_uniform(seed=0)),
                                  sg.nn.BatchNorm2d(), sg.relu, sg.nn.MaxPool2d(2), sg.nn.Flatten(),
                                  sg.nn.Dense(3, init=sg.init.glorot_uniform(seed=1))])
        x = sg.placeholder("x", ("batch", 2, 6, 6), dtype=dtype)
        y = sg.placeholder("y", ("batch",), dtype="int64")
        loss = sg.softmax_cross_entropy(model(x, training=True), y)
        updates = {**OPTIMIZERS["momentum"]().updates(loss, model.parameters), **model.state_updates}
        step = codegen.compile([x, y], loss, updates=updates, backend=backend)
        predict = codegen.compile([x], model(x, training=False), backend=backend)
        if backend == "cupy":
            for source, name in _KERNEL.findall(step.source + predict.source):
                KERNELS.setdefault(source, name)
        return step, predict, sorted(updates, key=lambda leaf: leaf.name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv_net_with_batchnorm2d_trains_and_predicts_alike(dtype, rng):
    X = rng.normal(size=(5, 2, 6, 6)).astype(dtype)
    Y = rng.integers(0, 3, size=5)
    (step_np, predict_np, leaves_np), (step_cp, predict_cp, leaves_cp) = (_cnn_step(dtype, b) for b in ("numpy", "cupy"))
    for _ in range(3):
        assert_close(step_cp(X, Y), step_np(X, Y), dtype, "loss")
    for a, b in zip(leaves_cp, leaves_np):
        assert_close(a.value, b.value, dtype, b.name)
    assert_close(predict_cp(X), predict_np(X), dtype, "eval")


def test_parameters_stay_on_the_device_and_save_load_sees_them(tmp_path, cupy, rng):
    X = rng.normal(size=(8, 6)).astype(np.float32)
    Y = rng.integers(0, 3, size=8)
    step, _, leaves = _mlp_step(OPTIMIZERS["adam"], "float32", "cupy")
    step(X, Y)
    arrays = [leaf.value for leaf in leaves]
    assert all(isinstance(a, cupy.ndarray) for a in arrays)
    step(X, Y)
    assert all(leaf.value is a for leaf, a in zip(leaves, arrays))  # updated in place on the device
    saved = [a.get() for a in arrays]
    sg.save_params(leaves, tmp_path / "p.npz")
    step(X, Y)
    sg.load_params(leaves, tmp_path / "p.npz")
    for leaf, value in zip(leaves, saved):
        assert isinstance(leaf.value, np.ndarray)
        np.testing.assert_array_equal(leaf.value, value)
    step(X, Y)  # uploads the loaded values again
    assert all(isinstance(leaf.value, cupy.ndarray) for leaf in leaves)


def test_fit_with_checkpoints_and_resume(tmp_path, rng):
    X = rng.normal(size=(40, 6)).astype(np.float32)
    Y = rng.integers(0, 3, size=40)
    results = {}
    for backend in ("numpy", "cupy"):
        step, _, leaves = _mlp_step(OPTIMIZERS["adam"], "float32", backend)
        path = tmp_path / f"{backend}.npz"
        sg.fit(step, (X, Y), epochs=2, batch_size=16, seed=1, progress=False, checkpoint=(path, leaves))
        history = sg.fit(step, (X, Y), epochs=3, batch_size=16, seed=1, progress=False, checkpoint=(path, leaves),
                         resume=True)
        results[backend] = (history["loss"], [host(leaf.value) for leaf in leaves])
    np.testing.assert_allclose(results["cupy"][0], results["numpy"][0], rtol=1e-5)
    for a, b in zip(results["cupy"][1], results["numpy"][1]):
        assert_close(a, b, np.float32)


def test_digits_example_trains_alike(rng):
    spec = importlib.util.spec_from_file_location("digits_example", Path(__file__).parents[2] / "examples" / "train_digits.py")
    digits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(digits)
    X = rng.normal(size=(64, 64)).astype(np.float32)
    Y = rng.integers(0, 10, size=64)
    losses = {}
    for backend in ("numpy", "cupy"):
        with sg.fresh_graph():
            x = sg.placeholder("x", ("batch", 64))
            y = sg.placeholder("y", ("batch",), dtype="int64")
            model = digits.build_model(0)
            loss = sg.softmax_cross_entropy(model(x, training=True), y)
            updates = {**sg.optim.Adam(digits.LEARNING_RATE).updates(loss, model.parameters), **model.state_updates}
            f = (cupy_compile if backend == "cupy" else codegen.compile)([x, y], loss, updates=updates)
            losses[backend] = [float(host(f(X[i:i + 16], Y[i:i + 16]))) for i in range(0, 64, 16)]
    np.testing.assert_allclose(losses["cupy"], losses["numpy"], rtol=1e-5)


# -- last: every kernel above, compiled by nvcc ---------------------------------------------
def test_every_kernel_compiles_with_nvcc():
    """The kernels of every module compiled above (tests/conftest.py checks, after the last test,
    every kernel any test ran on the stand-in)."""
    found, reason = nvcc.nvcc_available()
    if not found:
        pytest.skip(f"nvcc not available: {reason}")
    if len(KERNELS) < 50:
        pytest.skip(f"only {len(KERNELS)} kernels: run it with the rest of this file, whose kernels it compiles")
    warnings = nvcc.check_with_nvcc([(name, source) for source, name in KERNELS.items()])
    print(f"nvcc compiled {len(KERNELS)} kernels; warnings: {warnings or 'none'}")

"""The CuPy backend's source, which needs no CuPy and no GPU to print, save and read.

(Running it is tested in test_cupy_parity.py, on the CPU stand-in.)
"""

import importlib.util
import re

import numpy as np
import pytest

import codegen
import symgraph as sg


def mlp_adam(dtype):
    rng = np.random.default_rng(0)
    x = sg.placeholder("x", ("batch", 4), dtype=dtype)
    y = sg.placeholder("y", ("batch",), dtype="int64")
    W1 = sg.parameter("W1", (rng.normal(size=(4, 8)) / 2).astype(dtype))
    b1 = sg.parameter("b1", np.zeros(8, dtype))
    W2 = sg.parameter("W2", (rng.normal(size=(8, 3)) / 3).astype(dtype))
    h = sg.tanh(x @ W1 + b1).named("h")
    loss = sg.softmax_cross_entropy(h @ W2, y).named("loss")
    updates = sg.optim.Adam(1e-3).updates(loss, [W1, b1, W2])
    return codegen.compile([x, y], loss, updates=updates, backend="cupy")


def kernels(source):
    return re.findall(r'cp\.RawKernel\(r"""\n(.*?)""", \'(\w+)\'\)', source, re.S)


def test_float32_kernels_use_single_precision_only():
    source = mlp_adam("float32").source
    found = [text for text, _ in kernels(source) if "float* out" in text]  # (Adam counts steps in float64)
    assert len(found) >= 4
    body = "\n".join(found)
    assert "tanhf(" in body and "double" not in body
    assert not re.search(r"\b(tanh|exp|log|sqrt|pow)\(", body)  # the double functions
    assert not re.search(r"\d\.\d+(e-?\d+)?(?![\dF])", body.replace("1.0e-8F", "")), "a double literal"
    assert "cp.dot(x, W1, out=buf" in source
    assert "import cupy as cp" in source


def test_float64_kernels_use_double():
    body = "\n".join(text for text, _ in kernels(mlp_adam("float64").source))
    assert "tanh(" in body and "float" not in body.replace("float64", "")


def test_source_and_save_need_no_cupy(tmp_path):
    f = mlp_adam("float32")
    path = f.save(tmp_path / "step.py")
    assert open(path).read() == f.source
    compile(f.source, "step.py", "exec")  # valid Python


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_calling_without_cupy_says_how_to_install_it():
    f = mlp_adam("float32")
    with pytest.raises(ImportError, match=r"pip install -e \"\.\[cuda\]\""):
        f(np.zeros((2, 4), np.float32), np.zeros(2, np.int64))


def test_each_kernel_is_defined_once_and_reused():
    with sg.fresh_graph():
        x = sg.placeholder("x", ("batch", 8))
        h = x
        for k in range(4):
            h = sg.tanh(h @ sg.parameter(f"W{k}", np.eye(8)) + 1.0)
        source = codegen.compile([x], h, backend="cupy").source
    assert [name for _, name in kernels(source)] == ["tanh_kernel"]  # tanh(a + 1.0), for every layer
    assert source.count("= tanh_kernel(matmul") == 4


def test_readme_shows_the_current_cupy_golden_code():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text().split("## On a GPU: the CuPy backend")[1].split("\n## ")[0]
    golden = (root / "tests" / "golden" / "mlp_adam_cupy_train_step.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    assert blocks[0].strip() in golden
    assert all(line in golden for line in blocks[1].splitlines())


def test_calling_without_a_device_says_so(monkeypatch):
    """CuPy installed but no GPU (here: the stand-in counting no device)."""
    from codegen import testing

    f = mlp_adam("float32")
    with testing.emulated_cupy() as cp:
        monkeypatch.setattr(cp.cuda.runtime, "getDeviceCount", lambda: 0)
        with pytest.raises(RuntimeError, match="needs a CUDA device.*emulated_cupy"):
            f(np.zeros((2, 4), np.float32), np.zeros(2, np.int64))

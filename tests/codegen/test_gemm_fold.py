"""An SGD-like update ``W -= a @ b`` of a large matrix is one GEMM of NumPy's own BLAS that adds
the product into W (``_gemm_update``: no array for the product, no pass to subtract it); its
operands are kept to the end, so the update still runs after every read of W. It must compute
what the plain two steps compute, and fall back to them where BLAS cannot read the arrays."""

import numpy as np
import pytest

from codegen.backends.numpy import NumPyPrinter
from symgraph import kernels
from test_blocks import OPTIMIZERS, trajectory, wide_step


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("early", [False, True], ids=["atomic", "early_updates"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_the_gemm_fold_computes_what_the_two_steps_compute(optimizer, early, dtype, monkeypatch):
    source, folded = trajectory(optimizer, dtype, early)
    assert ("_gemm_update(W1, x.T, grad_add1, -1.0)" in source) == (optimizer == "sgd"), source
    monkeypatch.setattr(NumPyPrinter, "gemm_fold_entries", None)
    plain_source, plain = trajectory(optimizer, dtype, early)
    assert "_gemm_update" not in plain_source
    tol = 1e-5 if dtype == "float32" else 1e-12
    for got, want in zip(folded, plain):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.max(np.abs(b)))


def test_the_gemm_runs_with_the_updates_and_the_product_gets_no_array():
    f, _ = wide_step("sgd", "float32")
    lines = [ln.strip() for ln in f.source.splitlines()]
    call = lines.index("_gemm_update(W1, x.T, grad_add1, -1.0)")
    assert call > lines.index(next(ln for ln in lines if ln.startswith("# updates:")))
    assert not any(ln.startswith("grad_W1 =") for ln in lines)
    assert "W2 -= grad_W2" in f.source  # 784 x 3: below the size where the fold pays


def test_a_parameter_passed_as_a_strided_view_is_updated_through_the_numpy_fallback():
    f, _ = wide_step("sgd", "float64")
    rng = np.random.default_rng(3)
    xb, yb = rng.standard_normal((8, 400)), rng.integers(0, 3, size=8)
    plain = {name: op.value.copy() for name, op in f._param_ops}
    wide = np.zeros((400, 2 * 784))
    wide[:, ::2] = plain["W1"]
    strided = {**{k: v.copy() for k, v in plain.items()}, "W1": wide[:, ::2]}
    f._fn(xb, yb, **strided)  # the GEMM needs W1 in C order: NumPy's two steps update this view
    f._fn(xb, yb, **plain)
    assert not np.array_equal(plain["W1"], f._param_ops[0][1].value)  # (it was updated)
    np.testing.assert_allclose(wide[:, ::2], plain["W1"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_update_reads_transposes_and_strided_rows_in_place(dtype):
    if kernels._blas_gemm(np.dtype(dtype)) is None:
        pytest.skip("this NumPy bundles no OpenBLAS with cblas ?gemm")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 40)).astype(dtype), rng.standard_normal((64, 30)).astype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for left, right in [(a.T, b), (np.asfortranarray(a).T, b), (a[::2].T, b[::2]), (a.T, np.asfortranarray(b))]:
        c = rng.standard_normal((left.shape[0], right.shape[1])).astype(dtype)
        want = c + 0.5 * (left.astype(np.float64) @ right.astype(np.float64))
        assert kernels._gemm_update(c, left, right, 0.5) is c
        np.testing.assert_allclose(c, want, rtol=tol, atol=tol * np.abs(want).max())


def test_gemm_update_falls_back_to_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    c = rng.standard_normal((4, 6))[:, ::2]  # not C-contiguous
    want = c - a.T @ b
    kernels._gemm_update(c, a.T, b, -1.0)
    np.testing.assert_allclose(c, want, rtol=1e-14)
    ci, ai, bi = np.ones((4, 3), dtype=np.int64), np.ones((5, 4), dtype=np.int64), np.ones((5, 3), dtype=np.int64)
    kernels._gemm_update(ci, ai.T, bi, -1)  # no integer GEMM
    np.testing.assert_array_equal(ci, 1 - 5)
    with pytest.raises(ValueError, match="not aligned"):  # mismatched shapes never reach BLAS: NumPy refuses them
        kernels._gemm_update(np.zeros((4, 3)), a.T, b[:4], -1.0)

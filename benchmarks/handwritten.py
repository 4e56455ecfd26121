"""Hand-optimized NumPy training steps: the reference that benchmarks/train_step.py measures against.

Each ``make_<network>(params, lr, batch)`` returns ``step(x, labels) -> loss``: one forward pass,
one backward pass and one plain SGD update (``w -= lr * grad``), for the four networks of the
benchmark. ``params`` is the list ``[W1, b1, W2, b2, ...]`` of NumPy arrays (weights laid out
``(fan_in, fan_out)`` as in ``x @ W``); the step updates them in place, exactly as the generated
step updates its parameters. It computes the same math as the symgraph graph: the mean
softmax cross-entropy over the batch (integer labels) or, for ``tiny``, the mean binary
cross-entropy from logits (float targets of shape ``(batch, 1)``), both numerically stable for
logits of any size, and works in the parameters' dtype (float32 stays float32).

The reference has the same interface constraints as the generated code (separate ``W`` and ``b``
arrays owned by the caller, a fresh batch on every call) and may precompute anything that does not
depend on the batch's values. What it does, the best we know how to write in NumPy:

- every intermediate lives in a buffer allocated once, for the batch size given, and every
  NumPy call writes into one (positional ``out`` argument, which parses faster than ``out=``);
- 2-D products use ``np.dot`` (less dispatch than ``np.matmul`` on small matrices, the same BLAS
  GEMM on large ones), with transposed operands passed as views (BLAS transpose flags, no copy);
  the views of fixed buffers (``H.T``, ``W.T``) are made once;
- the learning rate is folded into the gradient of the logits, so each update is one ``W -= dW``
  and each bias gradient one matrix-vector product ``ones @ dZ``;
- ReLU is ``np.maximum(A, ZEROS, out=A)`` against a preallocated zeros array; its derivative a
  float mask ``np.greater(H, 0-d zero)`` multiplied in;
- softmax cross-entropy and its gradient are fused: the logits are computed transposed, ``(classes,
  batch)``, so the max and the sums over classes reduce over the leading axis (NumPy's reduction
  over a short trailing axis is several times slower); the label entries are read and corrected
  through flat indices ``label * batch + row`` (the first read validates the labels); the three
  classifiers share it as one function, ``_softmax_cross_entropy``;
- NumPy functions and bound methods are local names of the closure;
- values whose lifetimes do not overlap share memory (the weight gradients, each dead after its
  update; the backward buffers of the medium and deep networks), so the step's footprint is about
  the activations kept for the backward pass plus one gradient of the largest weight.

The deep network's step loops over its layers (straight-line code for 32 layers would be the
same calls; the loop costs well under 1 %).
"""

from __future__ import annotations

import numpy as np

__all__ = ["NETWORKS", "make_deep", "make_medium", "make_small", "make_step", "make_tiny"]


def _shared(shapes, dt):
    """C-contiguous arrays of the given shapes that all start at the same memory (for values whose
    lifetimes do not overlap, e.g. the weight gradients, each used once by its update)."""
    flat = np.empty(max(int(np.prod(shape)) for shape in shapes), dt)
    return [flat[: int(np.prod(shape))].reshape(shape) for shape in shapes]


def _softmax_cross_entropy(C: int, B: int, dt, lr: float):
    """The fused softmax cross-entropy of the small, medium and deep steps, on logits stored transposed.

    Returns ``(ZT, ce)``: the caller writes the logits, ``(classes, batch)``, into ``ZT``; ``ce(y)``
    returns the mean loss and leaves ``lr * dLoss/dZ`` (still transposed) in ``ZT``. The max and the
    sums over classes reduce over the leading axis (NumPy's reduction over a short trailing axis is
    several times slower); the label entries are read and corrected through flat indices
    ``label * batch + row`` (the first read validates the labels). It costs the step one Python
    call (about 0.1 µs)."""
    subtract, multiply, add, divide, exp, log, dot = (
        np.subtract, np.multiply, np.add, np.divide, np.exp, np.log, np.dot)
    max_reduce = np.maximum.reduce
    ZT = np.empty((C, B), dt)
    ZTf = ZT.reshape(-1)
    take = ZTf.take
    MX, S, P, LS = (np.empty(B, dt) for _ in range(4))   # row max, sum of exp, picked logit, loss rows
    IDX = np.empty(B, np.int64)                           # flat index of (label, row) in ZT
    ONES_C = np.ones(C, dt)
    ROWS = np.arange(B)
    NB = np.array(B)
    INV_B = np.full(B, 1.0 / B, dt)
    LR_B = np.full(B, lr / B, dt)
    lr_b = np.array(lr / B, dt)

    def ce(y):
        max_reduce(ZT, 0, None, MX)
        subtract(ZT, MX, ZT)
        multiply(y, NB, IDX)
        add(IDX, ROWS, IDX)
        take(IDX, None, P)                    # mode "raise": checks the labels
        exp(ZT, ZT)
        dot(ONES_C, ZT, S)
        log(S, LS)
        subtract(LS, P, LS)
        loss = dot(LS, INV_B)
        divide(LR_B, S, S)
        multiply(ZT, S, ZT)                   # lr * softmax / B
        ZTf[IDX] -= lr_b                      # ... minus lr / B at the label
        return loss

    return ZT, ce


def make_tiny(params, lr: float, batch: int):
    """2-4-1 sigmoid MLP, mean binary cross-entropy from logits: ``step(x (B, 2), t (B, 1)) -> loss``."""
    W1, b1, W2, b2 = params
    dt = W1.dtype
    B, n_hidden, n_out = batch, W1.shape[1], W2.shape[1]
    dot, add, subtract, multiply = np.dot, np.add, np.subtract, np.multiply
    exp, logaddexp, vdot = np.exp, np.logaddexp, np.vdot
    empty = np.empty
    A1 = empty((B, n_hidden), dt)             # x @ W1 + b1
    H1 = empty((B, n_hidden), dt)             # sigmoid(A1)
    H1T = H1.T
    S1 = empty((B, n_hidden), dt)             # sigmoid'(A1) = H1 - H1**2
    DH1 = empty((B, n_hidden), dt)            # dLoss/dH1, then dLoss/dA1
    Z = empty((B, n_out), dt)                 # logits
    SP = empty((B, n_out), dt)                # softplus(Z)
    ZT = empty((B, n_out), dt)                # Z * t, then the per-element loss
    G = empty((B, n_out), dt)                 # lr * dLoss/dZ
    DW1, DB1, DW2, DB2 = (np.empty_like(p) for p in params)
    W2T = W2.T
    ZEROS_H = np.zeros((B, n_hidden), dt)
    ZEROS_Z = np.zeros((B, n_out), dt)
    ONES_B = np.ones(B, dt)
    INV_N = np.full((B, n_out), 1.0 / (B * n_out), dt)    # mean over every element
    LR_N = np.full((B, n_out), lr / (B * n_out), dt)      # learning rate folded into the mean

    def step(x, t):
        # forward
        dot(x, W1, A1)
        add(A1, b1, A1)
        logaddexp(ZEROS_H, A1, H1)            # sigmoid(A1) = exp(A1 - softplus(A1)): 3 calls, stable
        subtract(A1, H1, H1)
        exp(H1, H1)
        dot(H1, W2, Z)
        add(Z, b2, Z)
        # loss = mean(softplus(z) - z * t)
        logaddexp(ZEROS_Z, Z, SP)
        multiply(Z, t, ZT)
        subtract(SP, ZT, ZT)
        loss = vdot(ZT, INV_N)
        # G = lr * dLoss/dZ = (sigmoid(Z) - t) * lr / N, with sigmoid(Z) = exp(Z - softplus(Z))
        subtract(Z, SP, G)
        exp(G, G)
        subtract(G, t, G)
        multiply(G, LR_N, G)
        # backward and update
        dot(G, W2T, DH1)                      # before W2 changes
        dot(H1T, G, DW2)
        subtract(W2, DW2, W2)
        dot(ONES_B, G, DB2)
        subtract(b2, DB2, b2)
        multiply(H1, H1, S1)
        subtract(H1, S1, S1)
        multiply(DH1, S1, DH1)
        dot(x.T, DH1, DW1)
        subtract(W1, DW1, W1)
        dot(ONES_B, DH1, DB1)
        subtract(b1, DB1, b1)
        return loss

    return step


def make_small(params, lr: float, batch: int):
    """64-32-10 ReLU MLP, mean softmax cross-entropy: ``step(x (B, 64), y (B,) int) -> loss``."""
    W1, b1, W2, b2 = params
    dt = W1.dtype
    B, n_hidden, C = batch, W1.shape[1], W2.shape[1]
    dot, add, subtract, multiply = np.dot, np.add, np.subtract, np.multiply
    maximum, greater = np.maximum, np.greater
    empty = np.empty
    H1 = empty((B, n_hidden), dt)
    H1T = H1.T
    M1 = empty((B, n_hidden), dt)             # relu'(A1) as 0/1
    DH1 = empty((B, n_hidden), dt)
    ZT, softmax_cross_entropy = _softmax_cross_entropy(C, B, dt, lr)  # ZT: the logits, transposed
    GT = ZT.T                                 # lr * dLoss/dZ as (B, C), a view
    DW1, DW2 = _shared([W1.shape, W2.shape], dt)    # each weight gradient dies at its update
    DB1, DB2 = _shared([b1.shape, b2.shape], dt)
    W2T = W2.T
    b2c = b2[:, None]
    ZEROS1 = np.zeros((B, n_hidden), dt)
    ZERO = np.zeros((), dt)
    ONES_B = np.ones(B, dt)

    def step(x, y):
        # forward
        dot(x, W1, H1)
        add(H1, b1, H1)
        maximum(H1, ZEROS1, out=H1)
        dot(W2T, H1T, ZT)                     # logits transposed: (W2.T @ H1.T) = (H1 @ W2).T
        add(ZT, b2c, ZT)
        loss = softmax_cross_entropy(y)       # leaves lr * dLoss/dZ, transposed, in ZT
        # backward and update
        dot(H1T, GT, DW2)
        dot(GT, W2T, DH1)                     # before W2 changes
        subtract(W2, DW2, W2)
        dot(ZT, ONES_B, DB2)
        subtract(b2, DB2, b2)
        greater(H1, ZERO, M1)
        multiply(DH1, M1, DH1)
        dot(x.T, DH1, DW1)
        subtract(W1, DW1, W1)
        dot(ONES_B, DH1, DB1)
        subtract(b1, DB1, b1)
        return loss

    return step


def make_medium(params, lr: float, batch: int):
    """784-512-512-10 ReLU MLP, mean softmax cross-entropy: ``step(x (B, 784), y (B,) int) -> loss``."""
    W1, b1, W2, b2, W3, b3 = params
    dt = W1.dtype
    B, n1, n2, C = batch, W1.shape[1], W2.shape[1], W3.shape[1]
    dot, add, subtract, multiply = np.dot, np.add, np.subtract, np.multiply
    maximum, greater = np.maximum, np.greater
    empty = np.empty
    H1 = empty((B, n1), dt)
    H1T = H1.T
    H2 = empty((B, n2), dt)
    H2T = H2.T
    # two buffers for the four backward values (B, 512): DH2 | M2, then DH1 over M2, then M1 over DH2
    DH2, M1 = _shared([(B, n2), (B, n1)], dt)
    M2, DH1 = _shared([(B, n2), (B, n1)], dt)
    ZT, softmax_cross_entropy = _softmax_cross_entropy(C, B, dt, lr)
    GT = ZT.T                                 # lr * dLoss/dZ as (B, C), a view
    DW1, DW2, DW3 = _shared([W1.shape, W2.shape, W3.shape], dt)
    DB1, DB2, DB3 = _shared([b1.shape, b2.shape, b3.shape], dt)
    W2T, W3T = W2.T, W3.T
    b3c = b3[:, None]
    ZEROS = np.zeros(B * max(n1, n2), dt)
    ZEROS1, ZEROS2 = ZEROS[: B * n1].reshape(B, n1), ZEROS[: B * n2].reshape(B, n2)
    ZERO = np.zeros((), dt)
    ONES_B = np.ones(B, dt)

    def step(x, y):
        # forward
        dot(x, W1, H1)
        add(H1, b1, H1)
        maximum(H1, ZEROS1, out=H1)
        dot(H1, W2, H2)
        add(H2, b2, H2)
        maximum(H2, ZEROS2, out=H2)
        dot(W3T, H2T, ZT)
        add(ZT, b3c, ZT)
        loss = softmax_cross_entropy(y)       # leaves lr * dLoss/dZ, transposed, in ZT
        # backward and update
        dot(H2T, GT, DW3)
        dot(GT, W3T, DH2)
        subtract(W3, DW3, W3)
        dot(ZT, ONES_B, DB3)
        subtract(b3, DB3, b3)
        greater(H2, ZERO, M2)
        multiply(DH2, M2, DH2)
        dot(H1T, DH2, DW2)
        dot(DH2, W2T, DH1)                    # over M2
        subtract(W2, DW2, W2)
        dot(ONES_B, DH2, DB2)
        subtract(b2, DB2, b2)
        greater(H1, ZERO, M1)                 # over DH2
        multiply(DH1, M1, DH1)
        dot(x.T, DH1, DW1)
        subtract(W1, DW1, W1)
        dot(ONES_B, DH1, DB1)
        subtract(b1, DB1, b1)
        return loss

    return step


def make_deep(params, lr: float, batch: int):
    """A tanh MLP of any depth ending in a softmax layer (the benchmark: 32 layers of width 64),
    mean softmax cross-entropy: ``step(x (B, n_in), y (B,) int) -> loss``."""
    Ws, bs = params[0::2], params[1::2]
    L = len(Ws)
    dt = Ws[0].dtype
    B, C = batch, Ws[-1].shape[1]
    dot, add, subtract, multiply, tanh = np.dot, np.add, np.subtract, np.multiply, np.tanh
    empty = np.empty
    widths = [W.shape[1] for W in Ws[:-1]]
    Hs = [empty((B, n), dt) for n in widths]                   # hidden activations (all kept for backward)
    ping = _shared([(B, n) for n in widths], dt)              # their gradients alternate between two buffers
    pong = _shared([(B, n) for n in widths], dt)
    DHs = [(ping if i % 2 else pong)[i] for i in range(L - 1)]
    Ts = _shared([(B, n) for n in widths], dt)                 # 1 - H**2, one buffer
    ONE = np.ones(B * max(widths), dt)
    ONEs = [ONE[: B * n].reshape(B, n) for n in widths]
    DWs = _shared([W.shape for W in Ws], dt)                   # each weight gradient dies at its update
    DBs = _shared([b.shape for b in bs], dt)
    ZT, softmax_cross_entropy = _softmax_cross_entropy(C, B, dt, lr)
    GT = ZT.T
    WL, bL, WLT, bLc = Ws[-1], bs[-1], Ws[-1].T, bs[-1][:, None]
    ONES_B = np.ones(B, dt)
    # forward: layer i reads the previous activation (x for the first) and writes Hs[i]
    hidden = [(Ws[i], bs[i], Hs[i]) for i in range(1, L - 1)]
    first = (Ws[0], bs[0], Hs[0])
    H_last, H_lastT = Hs[-1], Hs[-1].T
    # backward: layer i (from L-2 down to 1) with gradient G = DHs[i] of its output Hs[i], input Hs[i-1]
    back = [(Hs[i - 1].T, DHs[i], Ws[i], Ws[i].T, bs[i], DWs[i], DBs[i], DHs[i - 1], Hs[i - 1], Ts[i - 1], ONEs[i - 1])
            for i in range(L - 2, 0, -1)]
    W1, b1, DW1, DB1, DH1 = Ws[0], bs[0], DWs[0], DBs[0], DHs[0]
    DWL, DBL, DH_last, T_last, ONE_last = DWs[-1], DBs[-1], DHs[-1], Ts[-1], ONEs[-1]

    def step(x, y):
        # forward
        W, b, H = first
        dot(x, W, H)
        add(H, b, H)
        tanh(H, H)
        h = H
        for W, b, H in hidden:
            dot(h, W, H)
            add(H, b, H)
            tanh(H, H)
            h = H
        dot(WLT, H_lastT, ZT)
        add(ZT, bLc, ZT)
        loss = softmax_cross_entropy(y)       # leaves lr * dLoss/dZ, transposed, in ZT
        # backward and update: the softmax layer
        dot(H_lastT, GT, DWL)
        dot(GT, WLT, DH_last)
        subtract(WL, DWL, WL)
        dot(ZT, ONES_B, DBL)
        subtract(bL, DBL, bL)
        multiply(H_last, H_last, T_last)      # tanh' = 1 - H**2
        subtract(ONE_last, T_last, T_last)
        multiply(DH_last, T_last, DH_last)
        # the hidden layers
        for HpT, G, W, WT, b, DW, DB, DHp, Hp, T, ONE in back:
            dot(HpT, G, DW)
            dot(G, WT, DHp)
            subtract(W, DW, W)
            dot(ONES_B, G, DB)
            subtract(b, DB, b)
            multiply(Hp, Hp, T)
            subtract(ONE, T, T)
            multiply(DHp, T, DHp)
        # the first layer (no gradient for x)
        dot(x.T, DH1, DW1)
        subtract(W1, DW1, W1)
        dot(ONES_B, DH1, DB1)
        subtract(b1, DB1, b1)
        return loss

    if L < 3:
        raise ValueError("make_deep: use at least 3 layers")
    return step


NETWORKS = {"tiny": make_tiny, "small": make_small, "medium": make_medium, "deep": make_deep}


def make_step(network: str, params, lr: float, batch: int):
    """The hand-optimized train step of ``network`` (a key of NETWORKS)."""
    return NETWORKS[network](params, lr, batch)

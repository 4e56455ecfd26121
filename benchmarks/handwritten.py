"""Hand-optimized NumPy training steps: the reference that benchmarks/train_step.py measures against.

``make_step(network, params, batch, optimizer)`` returns ``step(x, labels) -> loss``: one forward
pass, one backward pass and one update of every parameter by ``optimizer``, for the four networks
of the benchmark. ``params`` is the list ``[W1, b1, W2, b2, ...]`` of NumPy arrays (weights laid out
``(fan_in, fan_out)`` as in ``x @ W``); the step updates them in place, exactly as the generated
step updates its parameters. It computes the same math as the symgraph graph: the mean
softmax cross-entropy over the batch (integer labels) or, for ``tiny``, the mean binary
cross-entropy from logits (float targets of shape ``(batch, 1)``), both numerically stable for
logits of any size, and works in the parameters' dtype (float32 stays float32).

The optimizers follow torch.optim's formulas (the same as ``sg.optim``'s), with their state in
arrays allocated once and updated in place:

- ``SGD(lr)``: ``w -= lr * g``;
- ``Momentum(lr, momentum)``: ``b = momentum * b + g; w -= lr * b`` (torch.optim.SGD, no dampening);
- ``Adam(lr, beta1, beta2, eps)``: with ``n`` the step number, ``m = beta1 * m + (1 - beta1) * g``,
  ``v = beta2 * v + (1 - beta2) * g**2``,
  ``w -= lr / (1 - beta1**n) * m / (sqrt(v) / sqrt(1 - beta2**n) + eps)`` (bias-corrected, eps
  outside the square root).

The reference has the same interface constraints as the generated code (separate ``W`` and ``b``
arrays owned by the caller, a fresh batch on every call) and may precompute anything that does not
depend on the batch's values. What it does, the best we know how to write in NumPy:

- every intermediate lives in a buffer allocated once, for the batch size given, and every
  NumPy call writes into one (positional ``out`` argument, which parses faster than ``out=``);
- 2-D products use ``np.dot`` (less dispatch than ``np.matmul`` on small matrices, the same BLAS
  GEMM on large ones), with transposed operands passed as views (BLAS transpose flags, no copy);
  the views of fixed buffers (``H.T``, ``W.T``) are made once;
- SGD's learning rate is folded into the gradient of the logits, so each SGD update is one
  ``W -= dW`` (``optimizer.grad_scale`` is that factor: lr for SGD, 1 for the others); each bias
  gradient is one matrix-vector product ``ones @ dZ``;
- each parameter's update is one call of its updater (``optimizer.updaters``): for SGD the bound
  in-place subtraction ``W.__isub__`` itself (no Python frame), for Momentum and Adam a closure
  making 4 and 12 NumPy calls on preallocated arrays (Adam's two scalars, from the step number, are
  computed once per step in Python floats, as torch does);
- ReLU is ``np.maximum(A, ZEROS, out=A)`` against a preallocated zeros array; its derivative a
  float mask ``np.greater(H, 0-d zero)`` multiplied in;
- softmax cross-entropy and its gradient are fused: the logits are computed transposed, ``(classes,
  batch)``, so the max and the sums over classes reduce over the leading axis (NumPy's reduction
  over a short trailing axis is several times slower); the label entries are read and corrected
  through flat indices ``label * batch + row`` (the first read validates the labels); the three
  classifiers share it as one function, ``_softmax_cross_entropy``;
- NumPy functions and bound methods are local names of the closure;
- values whose lifetimes do not overlap share memory (the weight gradients, each dead after its
  update; the backward buffers of the medium and deep networks; Adam's scratch array), so the
  step's footprint is about the activations kept for the backward pass plus one gradient of the
  largest weight (for Adam also one scratch array of that size), besides the optimizer's state.

The deep network's step loops over its layers (straight-line code for 32 layers would be the
same calls; the loop costs well under 1 %).
"""

from __future__ import annotations

import numpy as np

__all__ = ["NETWORKS", "SGD", "Adam", "Momentum", "make_deep", "make_medium", "make_small", "make_step",
           "make_tiny"]


def _shared(shapes, dt):
    """C-contiguous arrays of the given shapes that all start at the same memory (for values whose
    lifetimes do not overlap, e.g. the weight gradients, each used once by its update)."""
    flat = np.empty(max(int(np.prod(shape)) for shape in shapes), dt)
    return [flat[: int(np.prod(shape))].reshape(shape) for shape in shapes]


def _softmax_cross_entropy(C: int, B: int, dt, scale: float):
    """The fused softmax cross-entropy of the small, medium and deep steps, on logits stored transposed.

    Returns ``(ZT, ce)``: the caller writes the logits, ``(classes, batch)``, into ``ZT``; ``ce(y)``
    returns the mean loss and leaves ``scale * dLoss/dZ`` (still transposed) in ``ZT``. The max and the
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
    SCALE_B = np.full(B, scale / B, dt)
    scale_b = np.array(scale / B, dt)

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
        divide(SCALE_B, S, S)
        multiply(ZT, S, ZT)                   # scale * softmax / B
        ZTf[IDX] -= scale_b                   # ... minus scale / B at the label
        return loss

    return ZT, ce


def make_tiny(params, batch: int, optimizer):
    """2-4-1 sigmoid MLP, mean binary cross-entropy from logits: ``step(x (B, 2), t (B, 1)) -> loss``."""
    W1, b1, W2, b2 = params
    update_W1, update_b1, update_W2, update_b2 = optimizer.updaters(params)
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
    G = empty((B, n_out), dt)                 # s * dLoss/dZ
    DW1, DB1, DW2, DB2 = (np.empty_like(p) for p in params)
    W2T = W2.T
    ZEROS_H = np.zeros((B, n_hidden), dt)
    ZEROS_Z = np.zeros((B, n_out), dt)
    ONES_B = np.ones(B, dt)
    INV_N = np.full((B, n_out), 1.0 / (B * n_out), dt)    # mean over every element
    SCALE_N = np.full((B, n_out), optimizer.grad_scale / (B * n_out), dt)  # SGD's lr folded into the mean

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
        # G = s * dLoss/dZ = (sigmoid(Z) - t) * s / N, with sigmoid(Z) = exp(Z - softplus(Z))
        subtract(Z, SP, G)
        exp(G, G)
        subtract(G, t, G)
        multiply(G, SCALE_N, G)
        # backward and update
        dot(G, W2T, DH1)                      # before W2 changes
        dot(H1T, G, DW2)
        update_W2(DW2)
        dot(ONES_B, G, DB2)
        update_b2(DB2)
        multiply(H1, H1, S1)
        subtract(H1, S1, S1)
        multiply(DH1, S1, DH1)
        dot(x.T, DH1, DW1)
        update_W1(DW1)
        dot(ONES_B, DH1, DB1)
        update_b1(DB1)
        return loss

    return step


def make_small(params, batch: int, optimizer):
    """64-32-10 ReLU MLP, mean softmax cross-entropy: ``step(x (B, 64), y (B,) int) -> loss``."""
    W1, b1, W2, b2 = params
    update_W1, update_b1, update_W2, update_b2 = optimizer.updaters(params)
    dt = W1.dtype
    B, n_hidden, C = batch, W1.shape[1], W2.shape[1]
    dot, add, multiply = np.dot, np.add, np.multiply
    maximum, greater = np.maximum, np.greater
    empty = np.empty
    H1 = empty((B, n_hidden), dt)
    H1T = H1.T
    M1 = empty((B, n_hidden), dt)             # relu'(A1) as 0/1
    DH1 = empty((B, n_hidden), dt)
    ZT, softmax_cross_entropy = _softmax_cross_entropy(C, B, dt, optimizer.grad_scale)  # ZT: logits, transposed
    GT = ZT.T                                 # s * dLoss/dZ as (B, C), a view
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
        loss = softmax_cross_entropy(y)       # leaves s * dLoss/dZ, transposed, in ZT
        # backward and update
        dot(H1T, GT, DW2)
        dot(GT, W2T, DH1)                     # before W2 changes
        update_W2(DW2)
        dot(ZT, ONES_B, DB2)
        update_b2(DB2)
        greater(H1, ZERO, M1)
        multiply(DH1, M1, DH1)
        dot(x.T, DH1, DW1)
        update_W1(DW1)
        dot(ONES_B, DH1, DB1)
        update_b1(DB1)
        return loss

    return step


def make_medium(params, batch: int, optimizer):
    """784-512-512-10 ReLU MLP, mean softmax cross-entropy: ``step(x (B, 784), y (B,) int) -> loss``."""
    W1, b1, W2, b2, W3, b3 = params
    update_W1, update_b1, update_W2, update_b2, update_W3, update_b3 = optimizer.updaters(params)
    dt = W1.dtype
    B, n1, n2, C = batch, W1.shape[1], W2.shape[1], W3.shape[1]
    dot, add, multiply = np.dot, np.add, np.multiply
    maximum, greater = np.maximum, np.greater
    empty = np.empty
    H1 = empty((B, n1), dt)
    H1T = H1.T
    H2 = empty((B, n2), dt)
    H2T = H2.T
    # two buffers for the four backward values (B, 512): DH2 | M2, then DH1 over M2, then M1 over DH2
    DH2, M1 = _shared([(B, n2), (B, n1)], dt)
    M2, DH1 = _shared([(B, n2), (B, n1)], dt)
    ZT, softmax_cross_entropy = _softmax_cross_entropy(C, B, dt, optimizer.grad_scale)
    GT = ZT.T                                 # s * dLoss/dZ as (B, C), a view
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
        loss = softmax_cross_entropy(y)       # leaves s * dLoss/dZ, transposed, in ZT
        # backward and update
        dot(H2T, GT, DW3)
        dot(GT, W3T, DH2)
        update_W3(DW3)
        dot(ZT, ONES_B, DB3)
        update_b3(DB3)
        greater(H2, ZERO, M2)
        multiply(DH2, M2, DH2)
        dot(H1T, DH2, DW2)
        dot(DH2, W2T, DH1)                    # over M2
        update_W2(DW2)
        dot(ONES_B, DH2, DB2)
        update_b2(DB2)
        greater(H1, ZERO, M1)                 # over DH2
        multiply(DH1, M1, DH1)
        dot(x.T, DH1, DW1)
        update_W1(DW1)
        dot(ONES_B, DH1, DB1)
        update_b1(DB1)
        return loss

    return step


def make_deep(params, batch: int, optimizer):
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
    ZT, softmax_cross_entropy = _softmax_cross_entropy(C, B, dt, optimizer.grad_scale)
    GT = ZT.T
    WLT, bLc = Ws[-1].T, bs[-1][:, None]
    ONES_B = np.ones(B, dt)
    # forward: layer i reads the previous activation (x for the first) and writes Hs[i]
    hidden = [(Ws[i], bs[i], Hs[i]) for i in range(1, L - 1)]
    first = (Ws[0], bs[0], Hs[0])
    H_last, H_lastT = Hs[-1], Hs[-1].T
    # backward: layer i (from L-2 down to 1) with gradient G = DHs[i] of its output Hs[i], input Hs[i-1]
    updates = optimizer.updaters(params)
    update_Ws, update_bs = updates[0::2], updates[1::2]
    back = [(Hs[i - 1].T, DHs[i], Ws[i].T, update_Ws[i], update_bs[i], DWs[i], DBs[i], DHs[i - 1], Hs[i - 1],
             Ts[i - 1], ONEs[i - 1])
            for i in range(L - 2, 0, -1)]
    DW1, DB1, DH1, update_W1, update_b1 = DWs[0], DBs[0], DHs[0], update_Ws[0], update_bs[0]
    update_WL, update_bL = update_Ws[-1], update_bs[-1]
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
        loss = softmax_cross_entropy(y)       # leaves s * dLoss/dZ, transposed, in ZT
        # backward and update: the softmax layer
        dot(H_lastT, GT, DWL)
        dot(GT, WLT, DH_last)
        update_WL(DWL)
        dot(ZT, ONES_B, DBL)
        update_bL(DBL)
        multiply(H_last, H_last, T_last)      # tanh' = 1 - H**2
        subtract(ONE_last, T_last, T_last)
        multiply(DH_last, T_last, DH_last)
        # the hidden layers
        for HpT, G, WT, update_W, update_b, DW, DB, DHp, Hp, T, ONE in back:
            dot(HpT, G, DW)
            dot(G, WT, DHp)
            update_W(DW)
            dot(ONES_B, G, DB)
            update_b(DB)
            multiply(Hp, Hp, T)
            subtract(ONE, T, T)
            multiply(DHp, T, DHp)
        # the first layer (no gradient for x)
        dot(x.T, DH1, DW1)
        update_W1(DW1)
        dot(ONES_B, DH1, DB1)
        update_b1(DB1)
        return loss

    if L < 3:
        raise ValueError("make_deep: use at least 3 layers")
    return step


# ----------------------------------------------------------------------------------------------
# optimizers: state allocated once, updated in place
#
# ``updaters(params)`` returns one callable per parameter, ``update(g)``: it updates that parameter
# (and its state) in place from its gradient ``g`` (times ``grad_scale``), held in the step's buffer,
# which the update may overwrite (nothing reads it afterwards). ``wrap(step)`` returns the step as
# called (Adam counts steps there); ``reset()`` zeroes the state.
# ----------------------------------------------------------------------------------------------

class SGD:
    """``w -= lr * g``. The step folds lr into its backward pass (``grad_scale``), so the update is
    ``w -= g'`` with ``g' = lr * g``: the bound method ``w.__isub__``, one NumPy call, no frame."""

    def __init__(self, lr: float):
        self.lr = self.grad_scale = lr

    def updaters(self, params):
        return [w.__isub__ for w in params]

    def wrap(self, step):
        return step

    def reset(self):
        pass


class Momentum:
    """torch.optim.SGD(momentum=...), no dampening: ``b = momentum * b + g; w -= lr * b``
    (b starts at zero, so the first step gives b = g, as torch's)."""

    grad_scale = 1.0

    def __init__(self, lr: float, momentum: float = 0.9):
        self.lr, self.momentum = lr, momentum
        self.state = []

    def updaters(self, params):
        return [self._updater(w) for w in params]

    def _updater(self, w):
        multiply, add, subtract = np.multiply, np.add, np.subtract
        b = np.zeros_like(w)
        self.state.append(b)
        mu, lr = self.momentum, self.lr

        def update(g):
            multiply(b, mu, b)
            add(b, g, b)
            multiply(b, lr, g)                # lr * b, into the gradient's buffer
            subtract(w, g, w)

        return update

    def wrap(self, step):
        return step

    def reset(self):
        for b in self.state:
            b.fill(0)


class Adam:
    """torch.optim.Adam (no weight decay, not amsgrad). With n the step number,
    ``m = beta1 * m + (1 - beta1) * g``; ``v = beta2 * v + (1 - beta2) * g**2``;
    ``w -= lr / (1 - beta1**n) * m / (sqrt(v) / sqrt(1 - beta2**n) + eps)``,
    computed as ``w -= k * m / (sqrt(v) + e)`` with ``k = lr * sqrt(1 - beta2**n) / (1 - beta1**n)``
    and ``e = eps * sqrt(1 - beta2**n)`` (numerator and denominator multiplied by
    ``sqrt(1 - beta2**n)``: one pass over the array fewer); ``k`` and ``e`` are Python floats
    computed once per step."""

    grad_scale = 1.0

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.n = 0
        self.scalars = [0.0, 0.0]             # k and e of the current step
        self.state = []

    def updaters(self, params):
        scratch = _shared([w.shape for w in params], params[0].dtype)  # one array, for one update at a time
        return [self._updater(w, s) for w, s in zip(params, scratch)]

    def _updater(self, w, s):
        multiply, add, subtract, divide, sqrt = np.multiply, np.add, np.subtract, np.divide, np.sqrt
        m, v = np.zeros_like(w), np.zeros_like(w)
        self.state += [m, v]
        b1, c1, b2, c2 = self.beta1, 1.0 - self.beta1, self.beta2, 1.0 - self.beta2
        scalars = self.scalars

        def update(g):
            multiply(m, b1, m)                # m = b1 * m + (1 - b1) * g
            multiply(g, c1, s)
            add(m, s, m)
            multiply(v, b2, v)                # v = b2 * v + (1 - b2) * g * g, in g's buffer
            multiply(g, g, g)
            multiply(g, c2, g)
            add(v, g, v)
            k, e = scalars
            sqrt(v, s)                        # w -= k * m / (sqrt(v) + e)
            add(s, e, s)
            divide(m, s, s)
            multiply(s, k, s)
            subtract(w, s, w)

        return update

    def wrap(self, step):
        scalars, b1, b2, lr, eps = self.scalars, self.beta1, self.beta2, self.lr, self.eps

        def adam_step(x, labels):
            self.n += 1
            root = (1.0 - b2**self.n) ** 0.5
            scalars[0] = lr * root / (1.0 - b1**self.n)
            scalars[1] = eps * root
            return step(x, labels)

        return adam_step

    def reset(self):
        self.n = 0
        for a in self.state:
            a.fill(0)


NETWORKS = {"tiny": make_tiny, "small": make_small, "medium": make_medium, "deep": make_deep}


def make_step(network: str, params, batch: int, optimizer):
    """The hand-optimized train step of ``network`` (a key of NETWORKS) with ``optimizer`` (an
    ``SGD``, ``Momentum`` or ``Adam`` of this module, made for this step alone)."""
    return optimizer.wrap(NETWORKS[network](params, batch, optimizer))

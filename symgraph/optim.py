"""Optimizers as update graphs: each update rule is built from graph nodes.

An optimizer's :meth:`Optimizer.updates` returns the ``updates`` dict for
``codegen.compile``: ``{parameter: new value, state leaf: new state, ...}``.
The compiled training step computes the gradients, the optimizer's formula
and the new state in one call, and applies every update together, in place
(so every right-hand side below reads the values from before the step)::

    opt = sg.optim.Adam(1e-3)
    step = codegen.compile([x, y], loss, updates=opt.updates(loss))
    for xb, yb in batches:
        loss_value = step(xb, yb)

The formulas are PyTorch's (torch.optim, default options otherwise), so a
training run can be compared with it step by step. In the docstrings, ``w`` is
a parameter, ``g`` its gradient, ``η`` the learning rate and ``t`` the number
of updates already applied (0 on the first step). ``η`` may be a number or a
schedule from :mod:`symgraph.schedules`, evaluated at ``t`` inside the graph.

State. Each parameter's state lives in state leaves (``sg.state``) named after
it, ``W1_velocity``, ``W1_m``, ``W1_v``..., created zero (Rprop's step sizes
start at ``η``) with the parameter's shape and dtype. An optimizer whose formula
or schedule reads ``t`` also has one step counter, a float64 scalar leaf named
``step`` that the training step increments. ``opt.state`` lists every state
leaf (for checkpoints with ``sg.save_params``). State belongs to the optimizer:
calling ``updates`` again for a parameter it already handles reuses that
parameter's state leaves and the same step counter (for example to compile a
second training function over another cost that continues the same run); it
never creates a second set.

Dtypes. Per-parameter state has the parameter's dtype, and every array formula
is computed in it (a float32 parameter stays float32). The scalar factors that
depend only on ``t`` (schedules, bias corrections) are computed in float64, as
the Python floats PyTorch uses, and cast to the parameter's dtype before they
meet its arrays.

Gradients come from :meth:`Optimizer.gradients` (``sg.grad``); override it, or
pass ``grads=`` to ``updates``, to transform them first (clipping, for one).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .autodiff import grad as _grad
from .autodiff import vjp
from .graph import Constant, Node, Parameter, as_node, parameters_of, state
from .ops import cast, maximum, minimum, sqrt, where
from .schedules import Schedule

__all__ = ["SGD", "AdaGrad", "Adadelta", "Adam", "AdamW", "Momentum", "Nadam", "Optimizer", "RMSProp", "Rprop"]


def _number(value, what: str, low: float = 0.0, high: float | None = None) -> float:
    """A finite float in [low, high) (or [low, ∞))."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{what} must be a finite number, got {value!r}")
    if value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{what} must be {bound}, got {value!r}")
    return float(value)


def _one_minus(beta: float) -> float:
    """1 - beta as the decimal number it stands for: 0.1 for beta = 0.9, not 0.09999999999999998
    (a difference of one unit in the last place, which would only clutter the generated code)."""
    return float(f"{1.0 - beta:.15g}")


def _scalar(x, like: Node, name: str | None = None):
    """A float64 scalar factor (a number or node) in the dtype of the parameter it will meet.

    ``name`` names a computed factor for the generated code (constants and named nodes are left alone).
    """
    if not isinstance(x, Node):
        return x
    if name and not isinstance(x.op, Constant) and not x.name:
        x = x.named(name)
    return cast(x, like.dtype)


class Optimizer:
    """Base class: turns a cost into the ``updates`` dict of one training step.

    Subclasses implement :meth:`rule` (one parameter's new value and new state)
    and set ``reads_step = True`` when their formula reads ``t``.
    """

    reads_step = False

    def __init__(self, lr):
        if isinstance(lr, Schedule) or (callable(lr) and not isinstance(lr, numbers.Real)):
            self.lr = lr
        else:
            self.lr = _number(lr, f"{type(self).__name__}: lr")
        self.step: Node | None = None  # the step counter, made by the first updates() that needs it
        self._slots: dict[Node, dict[str, Node]] = {}  # parameter -> {slot name: state leaf}
        self._shared: dict[str, Node] = {}  # state shared by all parameters (Nadam's mu_product)

    def __repr__(self):
        lr = self.lr if isinstance(self.lr, Schedule) else repr(self.lr)
        return f"{type(self).__name__}(lr={lr})"

    @property
    def state(self) -> list[Node]:
        """Every state leaf of this optimizer: the step counter, shared state, then each parameter's."""
        leaves = [] if self.step is None else [self.step]
        leaves += list(self._shared.values())
        for slots in self._slots.values():
            leaves += list(slots.values())
        return leaves

    # -- the pieces a subclass uses ------------------------------------------------
    def slot(self, param: Node, name: str, fill: float = 0.0) -> Node:
        """The state leaf ``<param>_<name>`` (made on first use, filled with ``fill``)."""
        slots = self._slots.setdefault(param, {})
        if name not in slots:
            slots[name] = state(f"{param.name}_{name}", np.full(param.shape, fill, dtype=param.dtype))
        return slots[name]

    def shared(self, name: str, value: float) -> Node:
        """A float64 scalar state leaf shared by every parameter (made on first use)."""
        if name not in self._shared:
            self._shared[name] = state(name, np.array(value, dtype=np.float64))
        return self._shared[name]

    def rule(self, w: Node, g: Node, lr, t: Node | None) -> tuple[Node, dict]:
        """(new value of ``w``, {state leaf: new state}) for one parameter.

        ``lr`` is a Python float or a float64 scalar node; ``t`` the step counter
        (None unless the formula or the schedule reads it).
        """
        raise NotImplementedError

    def shared_updates(self, t: Node | None) -> dict:
        """Updates of state shared by all parameters (after :meth:`rule` ran for each)."""
        return {}

    # -- the public interface ---------------------------------------------------------
    def gradients(self, cost: Node, params: list[Node]) -> list[Node]:
        """The gradient nodes the update uses: ``sg.grad(cost, params)``. Override to transform them."""
        return _grad(cost, list(params))

    def updates(self, cost: Node, params=None, grads=None) -> dict:
        """The ``updates`` dict of one training step on ``cost``.

        ``params`` defaults to the trainable parameters the cost depends on
        (``sg.parameters_of(cost)``). ``grads``, if given, replaces
        :meth:`gradients` (one node per parameter, of its shape).
        """
        params = self._check_params(cost, params)
        grads = self.gradients(cost, params) if grads is None else list(grads)
        if len(grads) != len(params):
            raise ValueError(f"{type(self).__name__}.updates: {len(grads)} gradients for {len(params)} parameters")
        for p, g in zip(params, grads):
            if not isinstance(g, Node) or g.shape != p.shape:
                raise ValueError(f"{type(self).__name__}.updates: the gradient of {p.name!r} must be a node of "
                                 f"shape {p.shape}, got {g!r:.80}")
        t = self._step_counter()
        lr = self._rate(t)
        out: dict = {}
        for p, g in zip(params, grads):
            new_w, new_state = self.rule(p, cast(g, p.dtype), lr, t)
            out[p] = new_w
            out.update(new_state)
        out.update(self.shared_updates(t))
        if t is not None:
            out[t] = t + 1.0
        return out

    def _check_params(self, cost, params) -> list[Node]:
        what = f"{type(self).__name__}.updates"
        if not isinstance(cost, Node):
            raise TypeError(f"{what}: cost must be a graph node, got {type(cost).__name__}")
        params = parameters_of(cost) if params is None else [params] if isinstance(params, Node) else list(params)
        if not params:
            raise ValueError(f"{what}: there are no parameters to train (the cost depends on no trainable parameter)")
        for p in params:
            if not isinstance(p, Node) or not isinstance(p.op, Parameter):
                raise TypeError(f"{what}: params must be parameter leaves, got {p!r:.80}")
            if p.dtype.kind != "f":
                raise TypeError(f"{what}: parameter {p.name!r} has dtype {p.dtype}; "
                                "only float parameters can be trained")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{what}: a parameter appears twice in params")
        return params

    def _uses_step(self) -> bool:
        return self.reads_step or (not isinstance(self.lr, float) and getattr(self.lr, "uses_step", True))

    def _step_counter(self) -> Node | None:
        if self.step is None and self._uses_step():
            self.step = state("step", np.array(0.0))
        return self.step

    def _rate(self, t: Node | None):
        """The learning rate: a Python float, or a float64 scalar node computed from ``t``."""
        if isinstance(self.lr, float):
            return self.lr
        rate = self.lr(t if t is not None else as_node(0.0))
        if not isinstance(rate, Node) or rate.ndim != 0:
            raise ValueError(f"{type(self).__name__}: the learning-rate schedule must give a scalar node, "
                             f"got {rate!r:.80}")
        if not isinstance(rate.op, Constant) and not rate.name:
            rate = rate.named("lr")
        return rate


class SGD(Optimizer):
    """Plain gradient descent: ``w ← w − η·g``.

    When it computes the gradients itself, SGD folds the learning rate into the
    backward pass: it pulls back the cotangent η instead of 1 (the vjp is
    linear, so the result is η·g), and each update is then ``w ← w − (η·g)``,
    which the code generator writes as one in-place ``w -= ...``.
    """

    def rule(self, w, g, lr, t):
        return w - _scalar(lr, w) * g, {}

    def updates(self, cost: Node, params=None, grads=None) -> dict:
        if grads is not None or type(self).gradients is not Optimizer.gradients:
            return super().updates(cost, params, grads)
        params = self._check_params(cost, params)
        if cost.shape != ():
            raise ValueError(f"SGD.updates: the cost must be a scalar node, but its shape is {cost.shape}")
        t = self._step_counter()
        lr = self._rate(t)
        seed = as_node(lr, like=cost) if isinstance(lr, float) else cast(lr, cost.dtype)
        steps = vjp([cost], params, [seed])  # η·g for every parameter, in one backward sweep
        out: dict = {p: p - cast(d, p.dtype) for p, d in zip(params, steps)}
        if t is not None:
            out[t] = t + 1.0
        return out


class Momentum(Optimizer):
    """Gradient descent with momentum (torch.optim.SGD with ``momentum``, no dampening).

    ``b ← μ·b + g``; then ``w ← w − η·b``, or with ``nesterov=True``
    ``w ← w − η·(g + μ·b)`` (with the new ``b``). State: ``<w>_velocity`` (b).
    """

    def __init__(self, lr, momentum=0.9, nesterov=False):
        super().__init__(lr)
        self.momentum = _number(momentum, "Momentum: momentum", 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def rule(self, w, g, lr, t):
        b = self.slot(w, "velocity")
        new_b = self.momentum * b + g
        direction = g + self.momentum * new_b if self.nesterov else new_b
        return w - _scalar(lr, w) * direction, {b: new_b}


class AdaGrad(Optimizer):
    """AdaGrad: ``s ← s + g²``; ``w ← w − η·g / (√s + ε)``. State: ``<w>_sq_sum`` (s)."""

    def __init__(self, lr, eps=1e-8):
        super().__init__(lr)
        self.eps = _number(eps, "AdaGrad: eps")

    def rule(self, w, g, lr, t):
        s = self.slot(w, "sq_sum")
        new_s = s + g * g
        return w - _scalar(lr, w) * g / (sqrt(new_s) + self.eps), {s: new_s}


class RMSProp(Optimizer):
    """RMSProp (torch's ``alpha`` is ``rho``): ``v ← ρ·v + (1−ρ)·g²``; ``w ← w − η·g / (√v + ε)``.
    State: ``<w>_sq_avg`` (v)."""

    def __init__(self, lr, rho=0.9, eps=1e-8):
        super().__init__(lr)
        self.rho = _number(rho, "RMSProp: rho", 0.0, 1.0)
        self.eps = _number(eps, "RMSProp: eps")

    def rule(self, w, g, lr, t):
        v = self.slot(w, "sq_avg")
        new_v = self.rho * v + _one_minus(self.rho) * (g * g)
        return w - _scalar(lr, w) * g / (sqrt(new_v) + self.eps), {v: new_v}


class Adam(Optimizer):
    """Adam with bias correction. With ``n = t + 1`` (this step's number):

    ``m ← β1·m + (1−β1)·g``; ``v ← β2·v + (1−β2)·g²``;
    ``w ← w − η/(1−β1ⁿ) · m / (√v / √(1−β2ⁿ) + ε)``.
    State: ``<w>_m``, ``<w>_v`` and the step counter.
    """

    reads_step = True

    def __init__(self, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        name = type(self).__name__
        self.beta1 = _number(beta1, f"{name}: beta1", 0.0, 1.0)
        self.beta2 = _number(beta2, f"{name}: beta2", 0.0, 1.0)
        self.eps = _number(eps, f"{name}: eps")

    def moments(self, w, g):
        """(m, v, new m, new v): the two moving averages of Adam and its variants."""
        m, v = self.slot(w, "m"), self.slot(w, "v")
        new_m = self.beta1 * m + _one_minus(self.beta1) * g
        new_v = self.beta2 * v + _one_minus(self.beta2) * (g * g)
        return m, v, new_m, new_v

    def adam_step(self, w, new_m, new_v, lr, t):
        """η/(1−β1ⁿ) · m / (√v / √(1−β2ⁿ) + ε), the step Adam subtracts, computed as
        ``step_size · m / (√v + eps_hat)`` with ``step_size = η·√(1−β2ⁿ)/(1−β1ⁿ)`` and
        ``eps_hat = ε·√(1−β2ⁿ)`` (the same number, both factors scaled by √(1−β2ⁿ); the form of
        Kingma & Ba's section 2): one pass fewer over the parameter's arrays."""
        n = t + 1.0
        root_bc2 = sqrt(1.0 - self.beta2**n).named("sqrt_bias_correction2")
        step_size = _scalar(lr * root_bc2 / (1.0 - self.beta1**n), w, "step_size")
        eps_hat = _scalar(self.eps * root_bc2, w, "eps_hat")
        return step_size * new_m / (sqrt(new_v) + eps_hat)

    def rule(self, w, g, lr, t):
        m, v, new_m, new_v = self.moments(w, g)
        return w - self.adam_step(w, new_m, new_v, lr, t), {m: new_m, v: new_v}


class AdamW(Adam):
    """Adam with decoupled weight decay λ (torch.optim.AdamW):
    ``w ← w·(1 − η·λ) − η/(1−β1ⁿ) · m / (√v / √(1−β2ⁿ) + ε)``,
    with ``m``, ``v``, ``n`` as in :class:`Adam`."""

    def __init__(self, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(lr, beta1, beta2, eps)
        self.weight_decay = _number(weight_decay, "AdamW: weight_decay")

    def rule(self, w, g, lr, t):
        m, v, new_m, new_v = self.moments(w, g)
        decay = _scalar(1.0 - lr * self.weight_decay, w, "decay")
        return w * decay - self.adam_step(w, new_m, new_v, lr, t), {m: new_m, v: new_v}


class Nadam(Adam):
    """Adam with Nesterov momentum (torch.optim.NAdam). With ``n = t + 1`` and
    ``μ_k = β1·(1 − 0.5·0.96^(k·ψ))`` (ψ = ``momentum_decay``):

    ``m``, ``v`` as in :class:`Adam`; ``P ← P·μ_n`` (the product of the μ so far);
    ``d = √(v / (1−β2ⁿ)) + ε``;
    ``w ← w − η·(1−μ_n)/(1−P) · g/d − η·μ_{n+1}/(1 − P·μ_{n+1}) · m/d``.
    State: ``<w>_m``, ``<w>_v``, the step counter and ``mu_product`` (P, starts at 1).
    """

    def __init__(self, lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8, momentum_decay=4e-3):
        super().__init__(lr, beta1, beta2, eps)
        self.momentum_decay = _number(momentum_decay, "Nadam: momentum_decay")

    def _mu(self, k):
        return self.beta1 * (1.0 - 0.5 * 0.96 ** (k * self.momentum_decay))

    def _products(self, t):
        """(μ_n, μ_{n+1}, new P, new P·μ_{n+1}): scalar nodes shared by every parameter."""
        n = t + 1.0
        mu, mu_next = self._mu(n), self._mu(n + 1.0)
        mu = mu if mu.name else mu.named("mu")
        mu_next = mu_next if mu_next.name else mu_next.named("mu_next")
        new_product = self.shared("mu_product", 1.0) * mu
        return mu, mu_next, new_product, new_product * mu_next

    def rule(self, w, g, lr, t):
        m, v, new_m, new_v = self.moments(w, g)
        mu, mu_next, product, product_next = self._products(t)
        denom = sqrt(new_v / _scalar(1.0 - self.beta2 ** (t + 1.0), w, "bias_correction2")) + self.eps
        grad_coef = _scalar(lr * (1.0 - mu) / (1.0 - product), w, "grad_coef")
        momentum_coef = _scalar(lr * mu_next / (1.0 - product_next), w, "momentum_coef")
        new_w = w - grad_coef * g / denom - momentum_coef * new_m / denom
        return new_w, {m: new_m, v: new_v}

    def shared_updates(self, t):
        return {self.shared("mu_product", 1.0): self._products(t)[2]}


class Adadelta(Optimizer):
    """Adadelta (ε inside the square roots, as in torch.optim.Adadelta):

    ``v ← ρ·v + (1−ρ)·g²``; ``δ = √(u + ε) / √(v + ε) · g``;
    ``u ← ρ·u + (1−ρ)·δ²``; ``w ← w − η·δ``.
    State: ``<w>_sq_avg`` (v) and ``<w>_delta_sq_avg`` (u).
    """

    def __init__(self, lr=1.0, rho=0.9, eps=1e-6):
        super().__init__(lr)
        self.rho = _number(rho, "Adadelta: rho", 0.0, 1.0)
        self.eps = _number(eps, "Adadelta: eps")

    def rule(self, w, g, lr, t):
        v, u = self.slot(w, "sq_avg"), self.slot(w, "delta_sq_avg")
        new_v = self.rho * v + _one_minus(self.rho) * (g * g)
        delta = sqrt(u + self.eps) / sqrt(new_v + self.eps) * g
        new_u = self.rho * u + _one_minus(self.rho) * (delta * delta)
        return w - _scalar(lr, w) * delta, {v: new_v, u: new_u}


class Rprop(Optimizer):
    """Resilient backpropagation (torch.optim.Rprop), sign-based, for full-batch training.

    Per element, with ``p`` the previous step's (masked) gradient and ``s`` the step size:
    ``f = η+ where g·p > 0, η− where g·p < 0, else 1``; ``s ← clip(s·f, s_min, s_max)``;
    ``g' = 0 where g·p < 0, else g``; ``w ← w − sign(g')·s``; ``p ← g'``.
    ``lr`` is the initial step size (a number: it fills ``s`` when the state is made;
    a schedule is refused). State: ``<w>_prev`` (p) and ``<w>_step_size`` (s).
    """

    def __init__(self, lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50)):
        if not isinstance(lr, numbers.Real):
            raise TypeError(f"Rprop: lr is the initial step size and must be a number, got {lr!r}")
        super().__init__(lr)
        minus, plus = etas
        self.eta_minus = _number(minus, "Rprop: etas[0]", 0.0, 1.0)
        self.eta_plus = _number(plus, "Rprop: etas[1]", 1.0)
        low, high = step_sizes
        self.step_min, self.step_max = _number(low, "Rprop: step_sizes[0]"), _number(high, "Rprop: step_sizes[1]")
        if self.step_min > self.step_max:
            raise ValueError(f"Rprop: step_sizes must be (min, max) with min <= max, got {step_sizes!r}")

    def rule(self, w, g, lr, t):
        prev, size = self.slot(w, "prev"), self.slot(w, "step_size", fill=self.lr)
        agreement = g * prev
        # Each np.where has an array branch (s·η+, not η+ alone), so NumPy keeps w's dtype.
        scaled = where(agreement > 0.0, size * self.eta_plus, where(agreement < 0.0, size * self.eta_minus, size))
        new_size = minimum(maximum(scaled, self.step_min), self.step_max)
        new_prev = where(agreement < 0.0, as_node(0.0, like=g), g)
        new_w = where(new_prev > 0.0, w - new_size, where(new_prev < 0.0, w + new_size, w))  # w − sign(g')·s
        return new_w, {prev: new_prev, size: new_size}

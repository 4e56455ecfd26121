"""Optimizers as update graphs: 5 compiled training steps of each optimizer against a
plain NumPy re-implementation of its documented formula (and against torch.optim
when PyTorch is installed), simultaneous updates, schedules as learning rates,
float32 parameters and the optimizer's state leaves."""

import math
import re

import numpy as np
import pytest

import codegen
import symgraph as sg
import symgraph.optim as optim
from symgraph import schedules

STEPS = 5


# -- the problem: tanh(x @ W + b) fitted to y by mean squared error, W (3, 2), b (2,) ---------------
def _data(seed=0):
    rng = np.random.default_rng(seed)
    W0, b0 = rng.normal(size=(3, 2)), rng.normal(size=2)
    batches = [(rng.normal(size=(4, 3)), rng.normal(size=(4, 2))) for _ in range(STEPS)]
    return W0, b0, batches


def _model(W0, b0, dtype="float64"):
    x, y = sg.placeholder("x", (4, 3), dtype), sg.placeholder("y", (4, 2), dtype)
    W, b = sg.parameter("W", W0, dtype=dtype), sg.parameter("b", b0, dtype=dtype)
    loss = ((sg.tanh(x @ W + b) - y) ** 2).mean()
    return x, y, W, b, loss


def _np_loss_and_grads(W, b, X, Y):
    """The loss and its gradients, derived by hand."""
    h = np.tanh(X @ W + b)
    r = h - Y
    dz = 2.0 * r / r.size * (1.0 - h**2)
    return np.mean(r**2), [X.T @ dz, dz.sum(axis=0)]


# -- NumPy re-implementations of the documented formulas ---------------------------------------
class Ref:
    """One optimizer's formula in plain NumPy. ``lr`` is a number or a function of t."""

    def __init__(self, lr, **hp):
        self.lr = lr if callable(lr) else (lambda t, value=lr: value)
        self.hp = hp
        self.state = {}
        self.flips = 0  # Rprop: how many gradient sign changes were seen

    def slot(self, i, name, like, fill=0.0):
        return self.state.setdefault((i, name), np.full_like(like, fill))

    def step(self, t, ws, gs):
        return [self.update(t, i, w, g) for i, (w, g) in enumerate(zip(ws, gs))]


class RefSGD(Ref):
    def update(self, t, i, w, g):
        return w - self.lr(t) * g


class RefMomentum(Ref):
    def update(self, t, i, w, g):
        mu = self.hp["momentum"]
        b = mu * self.slot(i, "b", w) + g
        self.state[(i, "b")] = b
        return w - self.lr(t) * ((g + mu * b) if self.hp["nesterov"] else b)


class RefAdaGrad(Ref):
    def update(self, t, i, w, g):
        s = self.slot(i, "s", w) + g * g
        self.state[(i, "s")] = s
        return w - self.lr(t) * g / (np.sqrt(s) + self.hp["eps"])


class RefRMSProp(Ref):
    def update(self, t, i, w, g):
        rho = self.hp["rho"]
        v = rho * self.slot(i, "v", w) + (1 - rho) * g * g
        self.state[(i, "v")] = v
        return w - self.lr(t) * g / (np.sqrt(v) + self.hp["eps"])


class RefAdam(Ref):
    def update(self, t, i, w, g):
        b1, b2, eps, wd = self.hp["beta1"], self.hp["beta2"], self.hp["eps"], self.hp.get("weight_decay", 0.0)
        m = b1 * self.slot(i, "m", w) + (1 - b1) * g
        v = b2 * self.slot(i, "v", w) + (1 - b2) * g * g
        self.state[(i, "m")], self.state[(i, "v")] = m, v
        n, lr = t + 1, self.lr(t)
        return w * (1 - lr * wd) - lr / (1 - b1**n) * m / (np.sqrt(v) / math.sqrt(1 - b2**n) + eps)


class RefNadam(Ref):
    def update(self, t, i, w, g):
        b1, b2, eps, psi = self.hp["beta1"], self.hp["beta2"], self.hp["eps"], self.hp["momentum_decay"]
        n, lr = t + 1, self.lr(t)
        mu = b1 * (1 - 0.5 * 0.96 ** (n * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((n + 1) * psi))
        product = math.prod(b1 * (1 - 0.5 * 0.96 ** (k * psi)) for k in range(1, n + 1))
        m = b1 * self.slot(i, "m", w) + (1 - b1) * g
        v = b2 * self.slot(i, "v", w) + (1 - b2) * g * g
        self.state[(i, "m")], self.state[(i, "v")] = m, v
        d = np.sqrt(v / (1 - b2**n)) + eps
        return w - lr * (1 - mu) / (1 - product) * g / d - lr * mu_next / (1 - product * mu_next) * m / d


class RefAdadelta(Ref):
    def update(self, t, i, w, g):
        rho, eps = self.hp["rho"], self.hp["eps"]
        v = rho * self.slot(i, "v", w) + (1 - rho) * g * g
        u = self.slot(i, "u", w)
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        self.state[(i, "v")], self.state[(i, "u")] = v, rho * u + (1 - rho) * delta * delta
        return w - self.lr(t) * delta


class RefRprop(Ref):
    def update(self, t, i, w, g):
        (eta_minus, eta_plus), (lo, hi) = self.hp["etas"], self.hp["step_sizes"]
        prev, size = self.slot(i, "prev", w), self.slot(i, "size", w, fill=self.lr(0))
        agreement = g * prev
        self.flips += int(np.sum(agreement < 0))
        size = np.clip(size * np.where(agreement > 0, eta_plus, np.where(agreement < 0, eta_minus, 1.0)), lo, hi)
        g = np.where(agreement < 0, 0.0, g)
        self.state[(i, "prev")], self.state[(i, "size")] = g, size
        return w - np.sign(g) * size


ADAM = dict(beta1=0.9, beta2=0.999, eps=1e-8)
WARM_COSINE = schedules.warmup(schedules.cosine(0.05, total_steps=4, lr_min=0.01), steps=2)

# name: (symgraph optimizer, NumPy reference)
CASES = {
    "SGD": (lambda: optim.SGD(0.3), lambda: RefSGD(0.3)),
    "Momentum": (lambda: optim.Momentum(0.1), lambda: RefMomentum(0.1, momentum=0.9, nesterov=False)),
    "Nesterov": (lambda: optim.Momentum(0.1, 0.8, nesterov=True),
                 lambda: RefMomentum(0.1, momentum=0.8, nesterov=True)),
    "AdaGrad": (lambda: optim.AdaGrad(0.1), lambda: RefAdaGrad(0.1, eps=1e-8)),
    "RMSProp": (lambda: optim.RMSProp(0.01), lambda: RefRMSProp(0.01, rho=0.9, eps=1e-8)),
    "Adam": (lambda: optim.Adam(0.05), lambda: RefAdam(0.05, **ADAM)),
    "AdamW": (lambda: optim.AdamW(0.05, weight_decay=0.1), lambda: RefAdam(0.05, weight_decay=0.1, **ADAM)),
    "Nadam": (lambda: optim.Nadam(0.05), lambda: RefNadam(0.05, momentum_decay=4e-3, **ADAM)),
    "Adadelta": (lambda: optim.Adadelta(), lambda: RefAdadelta(1.0, rho=0.9, eps=1e-6)),
    "Rprop": (lambda: optim.Rprop(0.3), lambda: RefRprop(0.3, etas=(0.5, 1.2), step_sizes=(1e-6, 50))),
    "SGD+step": (lambda: optim.SGD(schedules.step(0.3, 0.5, every=2)), lambda: RefSGD(schedules.step(0.3, 0.5, 2))),
    "Momentum+inverse_sqrt": (lambda: optim.Momentum(schedules.inverse_sqrt(0.1)),
                              lambda: RefMomentum(schedules.inverse_sqrt(0.1), momentum=0.9, nesterov=False)),
    "Adam+warmup_cosine": (lambda: optim.Adam(WARM_COSINE), lambda: RefAdam(WARM_COSINE, **ADAM)),
    "AdamW+exponential": (lambda: optim.AdamW(schedules.exponential(0.05, 0.3)),
                          lambda: RefAdam(schedules.exponential(0.05, 0.3), weight_decay=0.01, **ADAM)),
    "Nadam+inverse_time": (lambda: optim.Nadam(schedules.inverse_time(0.05, 0.5)),
                           lambda: RefNadam(schedules.inverse_time(0.05, 0.5), momentum_decay=4e-3, **ADAM)),
    "Adadelta+step": (lambda: optim.Adadelta(schedules.step(1.0, 0.1, every=3)),
                      lambda: RefAdadelta(schedules.step(1.0, 0.1, 3), rho=0.9, eps=1e-6)),
}


def _train_step(opt, dtype="float64", seed=0):
    W0, b0, batches = _data(seed)
    x, y, W, b, loss = _model(W0, b0, dtype)
    updates = opt.updates(loss)
    return codegen.compile([x, y], loss, updates=updates), (W, b), updates, batches


@pytest.mark.parametrize("name", list(CASES))
def test_five_steps_match_the_numpy_formula(name):
    make, make_ref = CASES[name]
    step, (W, b), _, batches = _train_step(make())
    ref, ws = make_ref(), list(_data()[:2])
    for t, (X, Y) in enumerate(batches):
        loss = step(X, Y)
        ref_loss, grads = _np_loss_and_grads(*ws, X, Y)
        ws = ref.step(t, ws, grads)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)  # the loss before the update
        np.testing.assert_allclose(W.value, ws[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.value, ws[1], rtol=1e-12, atol=1e-15)
    assert not np.allclose(W.value, _data()[0])  # the parameters did move
    if name == "Rprop":
        assert ref.flips > 0  # the run exercised the sign-change branch


# -- torch.optim itself ------------------------------------------------------------------------
def _torch_cases(torch):
    return {
        "SGD": (optim.SGD(0.3), lambda p: torch.optim.SGD(p, lr=0.3)),
        "Momentum": (optim.Momentum(0.1), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
        "Nesterov": (optim.Momentum(0.1, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
        "AdaGrad": (optim.AdaGrad(0.1), lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-8)),
        "RMSProp": (optim.RMSProp(0.01), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8)),
        "Adam": (optim.Adam(0.05), lambda p: torch.optim.Adam(p, lr=0.05)),
        "AdamW": (optim.AdamW(0.05), lambda p: torch.optim.AdamW(p, lr=0.05)),
        "NAdam": (optim.Nadam(), lambda p: torch.optim.NAdam(p)),
        "Adadelta": (optim.Adadelta(), lambda p: torch.optim.Adadelta(p)),
        "Rprop": (optim.Rprop(0.3), lambda p: torch.optim.Rprop(p, lr=0.3)),
        "Adam+warmup_cosine": (optim.Adam(WARM_COSINE), lambda p: torch.optim.Adam(p, lr=0.05)),
    }


TORCH_NAMES = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam", "AdamW", "NAdam", "Adadelta", "Rprop",
               "Adam+warmup_cosine"]


@pytest.fixture
def torch64():
    torch = pytest.importorskip("torch")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch's scalar state (NAdam's mu_product) follows it
    yield torch
    torch.set_default_dtype(old)


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_five_steps_match_torch_optim(name, torch64):
    torch = torch64
    opt, make_torch = _torch_cases(torch)[name]
    step, (W, b), _, batches = _train_step(opt)
    W0, b0, _ = _data()
    Wt, bt = torch.tensor(W0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    topt = make_torch([Wt, bt])
    scheduler = None
    if "+" in name:  # the same schedule, as a factor of torch's base rate
        scheduler = torch.optim.lr_scheduler.LambdaLR(topt, lambda t: WARM_COSINE(t) / 0.05)
    for X, Y in batches:
        loss = step(X, Y)
        topt.zero_grad()
        tloss = ((torch.tanh(torch.tensor(X) @ Wt + bt) - torch.tensor(Y)) ** 2).mean()
        tloss.backward()
        topt.step()
        if scheduler is not None:
            scheduler.step()
        np.testing.assert_allclose(loss, tloss.item(), rtol=1e-12)
        np.testing.assert_allclose(W.value, Wt.detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.value, bt.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_default_hyperparameters_are_torchs(torch64):
    torch = torch64
    p = [torch.zeros(1, requires_grad=True)]
    nadam, adadelta, rprop = optim.Nadam(), optim.Adadelta(), optim.Rprop()
    d = torch.optim.NAdam(p).defaults
    assert (nadam.lr, (nadam.beta1, nadam.beta2), nadam.eps, nadam.momentum_decay) == (
        d["lr"], d["betas"], d["eps"], d["momentum_decay"])
    d = torch.optim.Adadelta(p).defaults
    assert (adadelta.lr, adadelta.rho, adadelta.eps) == (d["lr"], d["rho"], d["eps"])
    d = torch.optim.Rprop(p).defaults
    assert (rprop.lr, (rprop.eta_minus, rprop.eta_plus), (rprop.step_min, rprop.step_max)) == (
        d["lr"], d["etas"], d["step_sizes"])
    assert optim.AdamW(1e-3).weight_decay == torch.optim.AdamW(p).defaults["weight_decay"]
    adam, d = optim.Adam(1e-3), torch.optim.Adam(p).defaults
    assert ((adam.beta1, adam.beta2), adam.eps) == (d["betas"], d["eps"])


# -- updates are simultaneous ---------------------------------------------------------------
def test_each_new_value_reads_the_old_values_of_the_other_parameters():
    # cost = sum((a*c - 1)^2): the gradient of a reads c and that of c reads a
    a0, c0, lr = np.array([1.5, -0.5]), np.array([0.8, 2.0]), 0.1
    a, c = sg.parameter("a", a0), sg.parameter("c", c0)
    cost = ((a * c - 1.0) ** 2).sum()
    step = codegen.compile([], cost, updates=optim.SGD(lr).updates(cost))
    step()
    r = a0 * c0 - 1.0
    want_a, want_c = a0 - lr * 2 * r * c0, c0 - lr * 2 * r * a0  # both from the old a0, c0
    np.testing.assert_allclose(a.value, want_a, rtol=1e-14)
    np.testing.assert_allclose(c.value, want_c, rtol=1e-14)
    sequential_c = c0 - lr * 2 * (want_a * c0 - 1.0) * want_a  # what reading the new a would give
    assert not np.allclose(c.value, sequential_c)


def test_state_and_parameter_updates_are_simultaneous_too():
    # Momentum: the new w uses the new velocity by formula, and the velocity the old one
    w = sg.parameter("w", np.array([2.0]))
    cost = (w * w).sum()
    opt = optim.Momentum(0.1, momentum=0.5)
    step = codegen.compile([], [cost, w], updates=opt.updates(cost))
    out_cost, out_w = step()
    assert out_cost == 4.0 and out_w[0] == 2.0  # outputs are computed before the updates
    (velocity,) = opt.state
    assert velocity.value[0] == 4.0 and w.value[0] == 2.0 - 0.1 * 4.0
    step()
    assert velocity.value[0] == 0.5 * 4.0 + 2 * 1.6
    np.testing.assert_allclose(w.value, [1.6 - 0.1 * 5.2], rtol=1e-15)


# -- schedules as learning rates ---------------------------------------------------------------
@pytest.mark.parametrize("schedule", [
    schedules.constant(0.2), schedules.inverse_time(0.2, 0.5), schedules.inverse_sqrt(0.2),
    schedules.exponential(0.2, 0.3), schedules.step(0.2, 0.5, every=2), schedules.cosine(0.2, 3, lr_min=0.02),
    schedules.warmup(schedules.inverse_time(0.2, 0.1), steps=3),
], ids=lambda s: s.name)
def test_a_schedule_sets_the_step_size_of_each_step(schedule):
    # a linear cost has a constant gradient k, so each SGD step moves w by exactly -lr_t * k
    k = np.array([1.0, -2.0, 0.5])
    w = sg.parameter("w", np.zeros(3))
    cost = (w * k).sum()
    opt = optim.SGD(schedule)
    step = codegen.compile([], cost, updates=opt.updates(cost))
    seen = []
    for _ in range(6):
        before = w.value.copy()
        step()
        seen.append((before - w.value) / k)
    want = schedule(np.arange(6))
    np.testing.assert_allclose(np.array(seen), np.repeat(want[:, None], 3, axis=1), rtol=1e-12)
    if schedule.uses_step:
        assert opt.step.value == 6.0
    else:
        assert opt.step is None  # a constant rate needs no step counter


def test_step_counter_only_when_needed():
    w = sg.parameter("w", np.ones(2))
    cost = (w * w).sum()
    for opt, has_step in [(optim.SGD(0.1), False), (optim.Momentum(0.1), False), (optim.Adam(0.1), True),
                          (optim.SGD(schedules.exponential(0.1, 0.1)), True), (optim.Nadam(), True),
                          (optim.Adadelta(schedules.constant(1.0)), False)]:
        updates = opt.updates(cost)
        assert (opt.step is not None) == has_step
        if has_step:
            assert opt.step.name == "step" and opt.step.value.dtype == np.float64 and opt.step in updates


# -- dtypes ---------------------------------------------------------------------------------
OPTIMIZERS = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam", "AdamW", "Nadam", "Adadelta", "Rprop",
              "Adam+warmup_cosine", "SGD+step"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_parameters_stay_float32(name):
    make, make_ref = CASES[name]
    opt = make()
    step, (W, b), updates, batches = _train_step(opt, dtype="float32")
    for leaf, value in updates.items():  # per-parameter state has the parameter's dtype
        want = np.float64 if leaf is opt.step or leaf.name == "mu_product" else np.float32
        assert leaf.dtype == want and value.dtype == want, leaf.name
    # the generated code computes every new value in float32 too (no silent float64 detour)
    x, y = step.inputs
    new_values = codegen.compile([x, y], list(updates.values()))(*batches[0])
    assert [v.dtype for v in new_values] == [leaf.dtype for leaf in updates]
    ref, ws = make_ref(), list(_data()[:2])
    for t, (X, Y) in enumerate(batches):
        step(X.astype(np.float32), Y.astype(np.float32))
        ws = ref.step(t, ws, _np_loss_and_grads(*ws, X, Y)[1])
    assert W.value.dtype == np.float32 and b.value.dtype == np.float32
    assert all(s.value.dtype == np.float32 for s in opt.state if s.dtype != np.float64)
    np.testing.assert_allclose(W.value, ws[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.value, ws[1], rtol=1e-4, atol=1e-5)


# -- state leaves ----------------------------------------------------------------------------
def test_state_leaves_are_named_after_the_parameters():
    W0, b0, _ = _data()
    *_, loss = _model(W0, b0)
    cases = [
        (optim.Momentum(0.1), ["W_velocity", "b_velocity"]),
        (optim.AdaGrad(0.1), ["W_sq_sum", "b_sq_sum"]),
        (optim.RMSProp(0.1), ["W_sq_avg", "b_sq_avg"]),
        (optim.Adam(0.1), ["step", "W_m", "W_v", "b_m", "b_v"]),
        (optim.Nadam(), ["step", "mu_product", "W_m", "W_v", "b_m", "b_v"]),
        (optim.Adadelta(), ["W_sq_avg", "W_delta_sq_avg", "b_sq_avg", "b_delta_sq_avg"]),
        (optim.Rprop(), ["W_prev", "W_step_size", "b_prev", "b_step_size"]),
    ]
    for opt, names in cases:
        updates = opt.updates(loss)
        assert [s.name for s in opt.state] == names
        assert all(s in updates for s in opt.state)
        assert not any(s.op.trainable for s in opt.state)  # state is not trained by the next optimizer
        assert sg.parameters_of(list(updates.values())) == sg.parameters_of(loss)


def test_adam_train_step_source_reads_well():
    W0, b0, _ = _data()
    x, y, W, b, loss = _model(W0, b0)
    source = codegen.compile([x, y], loss, updates=optim.Adam(1e-3).updates(loss)).source
    for text in ["# new value of W_m: 0.9 * W_m + 0.1 * grad_W", "np.multiply(0.9, W_m, out=W_m)",
                 "np.add(step, 1.0, out=step)", "step_size =", "np.sqrt(W_v, out="]:
        assert text in source
    assert "[...] =" not in source  # the state is written in place: nothing is copied back


def test_calling_updates_again_reuses_the_same_state():
    W0, b0, batches = _data()
    x, y, W, b, loss = _model(W0, b0)
    opt = optim.Adam(0.05)
    first = opt.updates(loss)
    state = opt.state
    second = opt.updates(sg.tanh(loss))  # another cost over the same parameters
    assert opt.state == state and len(state) == 5
    assert set(first) == set(second)
    f = codegen.compile([x, y], loss, updates=first)
    g = codegen.compile([x, y], loss, updates=second)
    f(*batches[0])
    g(*batches[1])
    assert opt.step.value == 2.0  # both functions advance one run


def test_params_default_to_the_trainable_parameters():
    w = sg.parameter("w", np.ones(2))
    v = sg.parameter("v", np.ones(2))
    frozen = sg.parameter("frozen", np.ones(2), trainable=False)
    cost = (w * v * frozen).sum()
    assert set(optim.SGD(0.1).updates(cost)) == {w, v}
    assert set(optim.SGD(0.1).updates(cost, [v])) == {v}
    assert set(optim.SGD(0.1).updates(cost, v)) == {v}


def test_given_gradients_replace_the_computed_ones():
    w = sg.parameter("w", np.array([1.0, -2.0]))
    cost = (w * w).sum()
    (g,) = sg.grad(cost, [w])
    clipped = sg.minimum(sg.maximum(g, -1.0), 1.0)
    step = codegen.compile([], [], updates=optim.SGD(0.1).updates(cost, [w], grads=[clipped]))
    step()
    np.testing.assert_allclose(w.value, [0.9, -1.9], rtol=1e-15)


def test_the_gradients_hook_can_be_overridden():
    class HalfSGD(optim.SGD):
        def gradients(self, cost, params):
            return [0.5 * g for g in super().gradients(cost, params)]

    w = sg.parameter("w", np.array([1.0, -2.0]))
    cost = (w * w).sum()
    codegen.compile([], [], updates=HalfSGD(0.1).updates(cost))()
    np.testing.assert_allclose(w.value, [0.9, -1.8], rtol=1e-15)


def _raises(kind, message):
    """pytest.raises for exactly this message (the whole of it, not a part)."""
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


def test_errors():
    w = sg.parameter("w", np.ones(2))
    n = sg.parameter("n", np.ones(2, dtype=np.int64), dtype="int64")
    x = sg.placeholder("x", (2,))
    cost = (w * x).sum()
    with _raises(TypeError, "SGD.updates: params must be parameter leaves, got <Node placeholder 'x' (2,) float64>"):
        optim.SGD(0.1).updates(cost, [x])
    with _raises(TypeError, "SGD.updates: parameter 'n' has dtype int64; only float parameters can be trained"):
        optim.SGD(0.1).updates((w * n).sum(), [n])
    with _raises(ValueError, "SGD.updates: there are no parameters to train (the cost depends on no trainable "
                             "parameter)"):
        optim.SGD(0.1).updates(x.sum())
    with _raises(ValueError, "SGD.updates: a parameter appears twice in params"):
        optim.SGD(0.1).updates(cost, [w, w])
    with _raises(TypeError, "Adam.updates: cost must be a graph node, got float"):
        optim.Adam(0.1).updates(1.0, [w])
    with _raises(ValueError, "SGD.updates: the gradient of 'w' must be a node of shape (2,), got <Node sum () float64>"):
        optim.SGD(0.1).updates(cost, [w], grads=[w.sum()])
    with _raises(ValueError, "Momentum.updates: the gradient of 'w' must be a node of shape (2,), got array([1., 1.])"):
        optim.Momentum(0.1).updates(cost, [w], grads=[np.ones(2)])  # an array of the right shape is not a node
    with _raises(ValueError, "AdaGrad.updates: 0 gradients for 1 parameters"):
        optim.AdaGrad(0.1).updates(cost, [w], grads=[])
    with _raises(ValueError, "SGD.updates: the cost must be a scalar node, but its shape is (2,)"):
        optim.SGD(0.1).updates(w * 2.0)
    with _raises(ValueError, "SGD: the learning-rate schedule must give a scalar node, got 0.1"):
        optim.SGD(lambda t: 0.1).updates(cost)
    with _raises(ValueError, "Adam: the learning-rate schedule must give a scalar node, got <Node reshape (1,) float64>"):
        optim.Adam(lambda t: sg.reshape(t, (1,))).updates(cost)
    with _raises(TypeError, "Rprop: lr is the initial step size and must be a number, got constant(lr=0.1)"):
        optim.Rprop(schedules.constant(0.1))
    with _raises(ValueError, "Rprop: step_sizes must be (min, max) with min <= max, got (1.0, 0.5)"):
        optim.Rprop(0.1, step_sizes=(1.0, 0.5))


@pytest.mark.parametrize("make, message", [
    (lambda: optim.SGD(-0.1), "SGD: lr must be >= 0.0, got -0.1"),
    (lambda: optim.Momentum(0.1, momentum=1.0), "Momentum: momentum must be in [0.0, 1.0), got 1.0"),
    (lambda: optim.Momentum(0.1, momentum=-0.5), "Momentum: momentum must be in [0.0, 1.0), got -0.5"),
    (lambda: optim.AdaGrad(0.1, eps=-1e-8), "AdaGrad: eps must be >= 0.0, got -1e-08"),
    (lambda: optim.RMSProp(0.1, rho=1.0), "RMSProp: rho must be in [0.0, 1.0), got 1.0"),
    (lambda: optim.RMSProp(0.1, eps=-1.0), "RMSProp: eps must be >= 0.0, got -1.0"),
    (lambda: optim.Adam(0.1, beta1=1.0), "Adam: beta1 must be in [0.0, 1.0), got 1.0"),
    (lambda: optim.Adam(0.1, beta2=1.0), "Adam: beta2 must be in [0.0, 1.0), got 1.0"),
    (lambda: optim.AdamW(0.1, beta2=-0.1), "AdamW: beta2 must be in [0.0, 1.0), got -0.1"),
    (lambda: optim.Adam(0.1, eps=-1.0), "Adam: eps must be >= 0.0, got -1.0"),
    (lambda: optim.AdamW(0.1, weight_decay=-0.01), "AdamW: weight_decay must be >= 0.0, got -0.01"),
    (lambda: optim.Nadam(momentum_decay=-1.0), "Nadam: momentum_decay must be >= 0.0, got -1.0"),
    (lambda: optim.Adadelta(rho=1.0), "Adadelta: rho must be in [0.0, 1.0), got 1.0"),
    (lambda: optim.Adadelta(eps=-1.0), "Adadelta: eps must be >= 0.0, got -1.0"),
    (lambda: optim.Rprop(etas=(1.0, 1.2)), "Rprop: etas[0] must be in [0.0, 1.0), got 1.0"),
    (lambda: optim.Rprop(etas=(0.5, 0.9)), "Rprop: etas[1] must be >= 1.0, got 0.9"),
    (lambda: optim.Rprop(step_sizes=(-1.0, 50)), "Rprop: step_sizes[0] must be >= 0.0, got -1.0"),
    (lambda: optim.Rprop(step_sizes=(0.0, -1.0)), "Rprop: step_sizes[1] must be >= 0.0, got -1.0"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_hyperparameter_out_of_range_is_refused_naming_it_and_its_range(make, message):
    with _raises(ValueError, message):
        make()


@pytest.mark.parametrize("value, shown", [("0.1", "'0.1'"), (float("nan"), "nan"), (float("inf"), "inf"),
                                          (True, "True"), (None, "None")])
def test_a_hyperparameter_that_is_not_a_finite_number_is_refused(value, shown):
    with _raises(TypeError, f"SGD: lr must be a finite number, got {shown}"):
        optim.SGD(value)
    with _raises(TypeError, f"Adam: beta1 must be a finite number, got {shown}"):
        optim.Adam(0.1, beta1=value)


def test_the_lower_bound_of_each_range_is_allowed():
    # [low, high): low itself is a valid value (a rate of 0, no momentum, no eps, no decay)
    assert optim.SGD(0.0).lr == 0.0
    assert optim.Momentum(0.1, momentum=0.0).momentum == 0.0
    assert optim.AdaGrad(0.1, eps=0.0).eps == 0.0
    assert optim.RMSProp(0.1, rho=0.0, eps=0.0).rho == 0.0
    adam = optim.AdamW(0.1, beta1=0.0, beta2=0.0, eps=0.0, weight_decay=0.0)
    assert (adam.beta1, adam.beta2, adam.eps, adam.weight_decay) == (0.0, 0.0, 0.0, 0.0)
    assert optim.Nadam(momentum_decay=0.0).momentum_decay == 0.0
    assert optim.Adadelta(rho=0.0, eps=0.0).rho == 0.0
    rprop = optim.Rprop(0.5, etas=(0.0, 1.0), step_sizes=(0.5, 0.5))  # min == max is a fixed step
    assert (rprop.eta_minus, rprop.eta_plus, rprop.step_min, rprop.step_max) == (0.0, 1.0, 0.5, 0.5)
    # and an integer is taken as the float it stands for
    assert type(optim.SGD(1).lr) is float and optim.SGD(1).lr == 1.0


def test_a_zero_learning_rate_leaves_the_parameters_where_they_are():
    W0, b0, batches = _data()
    step, (W, b), _, _ = _train_step(optim.Momentum(0.0))
    for X, Y in batches:
        step(X, Y)
    np.testing.assert_array_equal(W.value, W0)
    np.testing.assert_array_equal(b.value, b0)


def test_repr_shows_the_class_and_the_learning_rate():
    assert repr(optim.Adam(0.05)) == "Adam(lr=0.05)"
    assert repr(optim.Rprop()) == "Rprop(lr=0.01)"
    assert repr(optim.SGD(schedules.inverse_time(0.1, 0.5))) == "SGD(lr=inverse_time(lr=0.1, rate=0.5))"


@pytest.mark.parametrize("name", ["SGD", "Momentum"])
def test_a_plain_function_of_the_step_count_is_a_learning_rate(name):
    # any callable that builds a scalar node from t works as a schedule (and reads the step counter)
    lr = lambda t: 0.3 / (1.0 + t)  # noqa: E731
    opt = optim.SGD(lr) if name == "SGD" else optim.Momentum(lr, momentum=0.5)
    assert opt.lr is lr
    ref = RefSGD(lr) if name == "SGD" else RefMomentum(lr, momentum=0.5, nesterov=False)
    step, (W, b), _, batches = _train_step(opt)
    ws = list(_data()[:2])
    for t, (X, Y) in enumerate(batches):
        step(X, Y)
        ws = ref.step(t, ws, _np_loss_and_grads(*ws, X, Y)[1])
        np.testing.assert_allclose(W.value, ws[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.value, ws[1], rtol=1e-12, atol=1e-15)
    assert opt.step.value == len(batches)


# -- the scalar factors of the generated code have names -------------------------------------------
@pytest.mark.parametrize("make, names", [
    (lambda: optim.SGD(schedules.inverse_time(0.1, 0.5)), ["lr"]),
    (lambda: optim.Adam(schedules.exponential(0.05, 0.3)), ["lr", "sqrt_bias_correction2", "step_size", "eps_hat"]),
    (lambda: optim.AdamW(schedules.step(0.05, 0.5, every=2)), ["lr", "decay", "step_size", "eps_hat"]),
    (lambda: optim.Nadam(schedules.inverse_sqrt(0.05)),
     ["lr", "mu", "mu_next", "bias_correction2", "grad_coef", "momentum_coef"]),
], ids=["SGD", "Adam", "AdamW", "Nadam"])
def test_each_scalar_factor_of_the_step_is_a_named_line_of_the_generated_code(make, names):
    W0, b0, _ = _data()
    x, y, W, b, loss = _model(W0, b0)
    source = codegen.compile([x, y], loss, updates=make().updates(loss)).source
    defined = set(re.findall(r"^ +(\w+) = ", source, re.M))
    assert set(names) <= defined, source


def test_a_schedule_that_names_its_rate_keeps_that_name():
    # the optimizer names a computed rate "lr" only when the schedule left it unnamed
    W0, b0, batches = _data()
    x, y, W, b, loss = _model(W0, b0)
    rate = lambda t: (0.3 / (1.0 + t)).named("my_rate")  # noqa: E731
    step = codegen.compile([x, y], loss, updates=optim.SGD(rate).updates(loss))
    defined = set(re.findall(r"^ +(\w+) = ", step.source, re.M))
    assert "my_rate" in defined and "lr" not in defined, step.source


def test_a_rate_that_declares_it_needs_no_step_count_is_evaluated_at_t_0():
    # uses_step = False: no step counter is made, and the rate is the one of the first step (t = 0)
    class FirstRate:
        uses_step = False

        def __call__(self, t):
            return 0.2 / (1.0 + t)  # reads t all the same: it sees 0

    k = np.array([1.0, -2.0])
    w = sg.parameter("w", np.zeros(2))
    cost = (w * k).sum()
    opt = optim.SGD(FirstRate())
    step = codegen.compile([], cost, updates=opt.updates(cost))
    for n in range(1, 4):
        step()
        np.testing.assert_allclose(w.value, -0.2 * n * k, rtol=1e-15)
    assert opt.step is None and opt.state == []

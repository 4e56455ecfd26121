"""Layers for concise training scripts: ``Dense``, ``BatchNorm``, ``Dropout``, ``Sequential``,
``PReLU``, ``Maxout``, ``RBF``, and for images ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``Flatten``,
``BatchNorm2d``.

A layer is a small Python object that *builds graph nodes* when called on a
node; it holds no arrays itself except through the leaves it creates.

    model = nn.Sequential([
        nn.Dense(64, activation=sg.relu),
        nn.BatchNorm(),
        nn.Dropout(0.2, seed=0),
        nn.Dense(10),
    ])
    logits = model(x, training=True)           # the training graph
    eval_logits = model(x, training=False)     # the evaluation graph, same leaves
    loss = sg.softmax_cross_entropy(logits, y)
    grads = sg.grad(loss, model.parameters)
    updates = {p: p - 0.1 * g for p, g in zip(model.parameters, grads)}
    updates.update(model.state_updates)        # running statistics, dropout keys
    train_step = codegen.compile([x, y], loss, updates=updates)
    predict = codegen.compile([x], eval_logits)

The contract:

- **Leaves on first call.** A layer creates its parameters and state leaves
  the first time it is called, sized from the input's last (static)
  dimension (image layers: its channel axis 1); calling it again (on another input, or in the other mode)
  reuses them. Leaves are named ``<layer>_<what>`` (``dense1_W``,
  ``batchnorm1_gamma``, ``dropout1_key``), where a layer's name is given or
  numbered per class within the current graph (``dense1``, ``dense2``, ...;
  numbering restarts in each :func:`symgraph.fresh_graph`).
- **One definition, two modes.** ``layer(x, training=True)`` builds the
  training graph, ``training=False`` the evaluation graph; both read the same
  leaves. Layers whose behaviour depends on the mode (``BatchNorm``,
  ``Dropout``) refuse a call without ``training``; for ``Dense`` it may be
  left out.
- **Updates are handed back, never applied behind your back.** Each call with
  ``training=True`` records the updates its state needs (batch-norm running
  statistics, the dropout key's counter) in ``.state_updates``, a dict
  ``{state leaf: new value node}`` to merge into the ``updates`` given to
  ``codegen.compile``. It holds the most recent training call's updates;
  evaluation calls leave it alone, so the order in which the two graphs are
  built does not matter. Without them, the compiled step never changes the
  running statistics, and dropout draws the same mask on every call.
- **Leaves in the input's precision.** Parameters and running statistics
  take the dtype of the input the layer is first called on when it is a
  float (a float32 model stays float32), float64 otherwise.
- ``.parameters``: trainable leaves (differentiate and update these);
  ``.state``: non-trainable leaves; ``.leaves``: both (for checkpoints);
  each in creation order.
"""

from __future__ import annotations

import weakref

import numpy as np

from . import init as initializers
from . import ops
from .graph import Node, current_graph, parameter, state as state_leaf
from .ops import cast, exp, expand_dims, maxout, next_key, prelu, random_key, random_uniform, sqrt
from .ops.reduce import count

__all__ = [
    "AvgPool2d", "BatchNorm", "BatchNorm2d", "Conv2d", "Dense", "Dropout", "Flatten", "Layer", "MaxPool2d", "Maxout", "PReLU", "RBF",
    "Sequential",
]

_numbering: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # graph -> {prefix: layers named so far}


def _auto_name(prefix: str) -> str:
    """``prefix<n>``, numbered per prefix within the current graph (so numbering restarts in a fresh graph)."""
    counts = _numbering.setdefault(current_graph(), {})
    counts[prefix] = counts.get(prefix, 0) + 1
    return f"{prefix}{counts[prefix]}"


def _float_dtype(x: Node) -> np.dtype:
    """The dtype of a layer's leaves: the input's when it is a float, else float64."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)


def _last_dim(layer: Layer, x: Node) -> int:
    if x.ndim == 0 or not isinstance(x.shape[-1], int):
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r}: the input's last dimension must be a static int "
            f"(it sizes the layer's parameters); got input shape {x.shape}"
        )
    return x.shape[-1]


def _positive_int(layer: str, what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: {what} must be a positive int, got {value!r}")
    return int(value)


def _pair(layer: str, what: str, value, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as a pair; else a ValueError naming the layer and argument."""
    pair = value if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum for v in pair):
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{layer}: {what} must be {kind} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _padding(layer: str, value):
    """``"same"``, ``"valid"``, or an int or pair of ints >= 0 (as a pair)."""
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise ValueError(f"{layer}: padding must be an int >= 0, a pair of them, 'same' or 'valid', got {value!r}")
        return value
    return _pair(layer, "padding", value, minimum=0)


def _image(layer: Layer, x: Node, channels: int | None = None) -> int:
    """Check that ``x`` is an ``N×C×H×W`` batch of images with a static C (equal to ``channels`` if given)."""
    if x.ndim != 4 or not isinstance(x.shape[1], int) or channels not in (None, x.shape[1]):
        want = "C" if channels is None else channels
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: expects N×{want}×H×W images (channels first, "
                         f"a static channel count), got input shape {x.shape}")
    return x.shape[1]


class Layer:
    """Base class: call it on a node to build graph nodes.

    Subclasses implement ``build(x)`` (create leaves through :meth:`add_parameter`
    and :meth:`add_state`, once, on the first call) and ``forward(x, training)``
    (build the output; record state updates with :meth:`set_update`).
    ``uses_mode`` says whether the layer behaves differently in training.
    """

    prefix = "layer"
    uses_mode = False

    def __init__(self, name: str | None = None):
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"{type(self).__name__}: name must be a non-empty str, got {name!r}")
        self.name = name or _auto_name(self.prefix)
        self.built = False
        self._leaves: list[Node] = []
        self._updates: dict[Node, Node] = {}

    # -- building ---------------------------------------------------------------
    def add_parameter(self, what: str, shape, init, dtype=None) -> Node:
        leaf = parameter(f"{self.name}_{what}", shape=shape, init=init, dtype=dtype)
        self._leaves.append(leaf)
        return leaf

    def add_state(self, leaf_or_what, value=None) -> Node:
        leaf = leaf_or_what if isinstance(leaf_or_what, Node) else state_leaf(f"{self.name}_{leaf_or_what}", value)
        self._leaves.append(leaf)
        return leaf

    def set_update(self, leaf: Node, value: Node):
        self._updates[leaf] = value

    def build(self, x: Node):
        pass

    def forward(self, x: Node, training: bool) -> Node:
        raise NotImplementedError

    def __call__(self, x, *, training: bool | None = None) -> Node:
        if not isinstance(x, Node):
            raise TypeError(f"{type(self).__name__} {self.name!r}: call it on a graph node, got {type(x).__name__}")
        if training is None:
            if self.uses_mode:
                raise TypeError(
                    f"{type(self).__name__} {self.name!r} behaves differently in training and evaluation: "
                    f"call it with training=True or training=False"
                )
            training = False
        if not self.built:
            self.build(x)
            self.built = True
        if training:
            self._updates = {}
        return self.forward(x, bool(training))

    # -- what the model exposes ---------------------------------------------------
    @property
    def leaves(self) -> list[Node]:
        """Every leaf this layer created (parameters and state), in creation order."""
        return list(self._leaves)

    @property
    def parameters(self) -> list[Node]:
        """The trainable leaves, in creation order (empty until the first call)."""
        return [leaf for leaf in self.leaves if leaf.op.trainable]

    @property
    def state(self) -> list[Node]:
        """The non-trainable leaves (running statistics, random keys), in creation order."""
        return [leaf for leaf in self.leaves if not leaf.op.trainable]

    @property
    def state_updates(self) -> dict[Node, Node]:
        """``{state leaf: new value node}`` recorded by the most recent ``training=True`` call."""
        return dict(self._updates)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class Dense(Layer):
    """``activation(x @ W + b)``: ``W`` of shape ``(in, units)`` and ``b`` of shape ``(units,)``.

    ``in`` is the input's last dimension (leading axes are batch axes).
    ``activation`` is a callable on nodes (``sg.relu``, ``sg.tanh``, ...) or
    ``None``. Leaves: ``<name>_W`` (from ``init``), ``<name>_b`` (zeros).
    """

    prefix = "dense"

    def __init__(self, units: int, activation=None, init=None, use_bias: bool = True, name: str | None = None):
        _positive_int("Dense", "units", units)
        if activation is not None and not callable(activation):
            raise TypeError(f"Dense: activation must be a callable (such as sg.relu) or None, got {activation!r}")
        super().__init__(name)
        self.units = int(units)
        self.activation = activation
        self.init = init if init is not None else initializers.glorot_uniform()
        self.use_bias = use_bias

    def build(self, x):
        dtype = _float_dtype(x)
        self.W = self.add_parameter("W", (_last_dim(self, x), self.units), self.init, dtype)
        self.b = self.add_parameter("b", (self.units,), initializers.zeros(), dtype) if self.use_bias else None

    def forward(self, x, training):
        if x.shape[-1] != self.W.shape[0]:
            raise ValueError(f"Dense {self.name!r}: built for inputs with last dimension {self.W.shape[0]}, "
                             f"called on shape {x.shape}")
        z = x @ self.W
        if self.b is not None:
            z = z + self.b
        if self.activation is None:
            return z.named(self.name)
        return self.activation(z.named(f"{self.name}_z")).named(self.name)

    def __repr__(self):
        act = getattr(self.activation, "__name__", self.activation)
        return f"Dense({self.units}, activation={act}, name={self.name!r})"


class BatchNorm(Layer):
    """Batch normalization over every axis but the last (the features), as ``torch.nn.BatchNorm1d``.

    Training: ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with the
    batch mean and the biased batch variance, and the updates
    ``running = (1 - momentum) * running + momentum * batch_stat`` where the
    running variance takes the unbiased batch variance (``var * n / (n - 1)``).
    Evaluation: the same formula with the running statistics (and no updates).

    Leaves: ``<name>_gamma`` (ones) and ``<name>_beta`` (zeros), trainable;
    ``<name>_running_mean`` (zeros) and ``<name>_running_var`` (ones), state.
    """

    prefix = "batchnorm"
    uses_mode = True
    feature_axis = -1  # the axis whose entries each have their own statistics, gamma and beta

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, name: str | None = None):
        what = type(self).__name__
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{what}: momentum must be in [0, 1], got {momentum}")
        if not eps >= 0:
            raise ValueError(f"{what}: eps must be >= 0, got {eps}")
        super().__init__(name)
        self.momentum = float(momentum)
        self.eps = float(eps)

    def _features(self, x) -> int:
        return _last_dim(self, x)

    def _per_feature(self, v):
        """A (features,) leaf or statistic, shaped to broadcast against the input."""
        return v

    def build(self, x):
        n, dtype = self._features(x), _float_dtype(x)
        self.gamma = self.add_parameter("gamma", (n,), initializers.constant(1.0), dtype)
        self.beta = self.add_parameter("beta", (n,), initializers.zeros(), dtype)
        self.running_mean = self.add_state("running_mean", np.zeros(n, dtype))
        self.running_var = self.add_state("running_var", np.ones(n, dtype))

    def _check(self, x):
        if x.ndim < 2 or x.shape[-1] != self.gamma.shape[0]:
            raise ValueError(f"BatchNorm {self.name!r}: expects (batch, ..., {self.gamma.shape[0]}) inputs, "
                             f"got shape {x.shape}")

    def forward(self, x, training):
        self._check(x)
        f = self._per_feature
        gamma, beta = f(self.gamma), f(self.beta)
        if not training:
            x_hat = (x - f(self.running_mean)) / sqrt(f(self.running_var) + self.eps)
            return (gamma * x_hat + beta).named(self.name)
        axes = tuple(a for a in range(-x.ndim, 0) if a != self.feature_axis)  # negative, as count() expects
        n = count(x, axes)
        pooled = [x.shape[a] for a in axes]
        if all(isinstance(d, int) for d in pooled) and int(np.prod(pooled)) < 2:
            raise ValueError(f"{type(self).__name__} {self.name!r}: training needs more than one value per "
                             f"feature, got input shape {x.shape}")
        mean = x.mean(axis=axes).named(f"{self.name}_mean")
        centered = x - f(mean)
        var = (centered * centered).mean(axis=axes).named(f"{self.name}_var")  # biased: normalizes the batch
        y = (gamma * (centered / sqrt(f(var) + self.eps)) + beta).named(self.name)
        m = self.momentum
        self.set_update(self.running_mean, (1 - m) * self.running_mean + m * mean)
        self.set_update(self.running_var, (1 - m) * self.running_var + (m * var) * (n / (n - 1)))  # unbiased
        return y

    def __repr__(self):
        return f"{type(self).__name__}(momentum={self.momentum}, eps={self.eps}, name={self.name!r})"


class BatchNorm2d(BatchNorm):
    """Batch normalization of N×C×H×W images per channel, as ``torch.nn.BatchNorm2d``: the statistics
    of each channel are taken over the batch and both spatial axes, and each channel has its own
    gamma and beta. Otherwise :class:`BatchNorm` (same formulas, leaves and updates)."""

    prefix = "batchnorm2d"
    feature_axis = -3

    def _features(self, x) -> int:
        if x.ndim != 4 or not isinstance(x.shape[1], int):
            raise ValueError(f"BatchNorm2d {self.name!r}: expects N×C×H×W inputs with a static C, "
                             f"got shape {x.shape}")
        return x.shape[1]

    def _per_feature(self, v):
        return v.reshape((v.shape[0], 1, 1))

    def _check(self, x):
        if x.ndim != 4 or x.shape[1] != self.gamma.shape[0]:
            raise ValueError(f"BatchNorm2d {self.name!r}: expects N×{self.gamma.shape[0]}×H×W inputs, "
                             f"got shape {x.shape}")


class Dropout(Layer):
    """Inverted dropout: in training, each entry is kept with probability ``1 - rate``
    and scaled by ``1 / (1 - rate)``; in evaluation, the identity.

    The mask comes from ``sg.random_uniform`` on the state leaf ``<name>_key``
    (``[seed, counter]``, see :func:`symgraph.random_key`); the training call's
    update advances the counter, so each step draws a new mask while two models
    built with the same seed draw the same sequence of masks. Two dropout layers
    with the same seed and input shape draw the same masks: give each its own seed.
    """

    prefix = "dropout"
    uses_mode = True

    def __init__(self, rate: float, seed: int = 0, name: str | None = None):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        if not isinstance(seed, (int, np.integer)):
            raise TypeError(f"Dropout: seed must be an int, got {seed!r}")
        super().__init__(name)
        self.rate = float(rate)
        self.seed = int(seed)

    def build(self, x):
        self.key = self.add_state(random_key(f"{self.name}_key", self.seed))

    def forward(self, x, training):
        if not training or self.rate == 0.0:
            return x
        if x.dtype.kind != "f":
            raise TypeError(f"Dropout {self.name!r}: expects a float input, got {x.dtype}")
        keep = random_uniform(self.key, x) >= self.rate
        mask = (cast(keep, x.dtype) * (1.0 / (1.0 - self.rate))).named(f"{self.name}_mask")
        self.set_update(self.key, next_key(self.key))
        return (x * mask).named(self.name)

    def __repr__(self):
        return f"Dropout({self.rate}, seed={self.seed}, name={self.name!r})"


class PReLU(Layer):
    """Parametric ReLU, as ``torch.nn.PReLU``: ``max(x, 0) + a * min(x, 0)`` with a learnable slope ``a``.

    ``num_parameters=1`` learns one slope shared by every entry; ``num_parameters=C``
    learns one per channel, where the channel axis is ``axis`` (1, as in PyTorch:
    the features of a ``(batch, C)`` input, the channels of an ``N×C×H×W`` one).
    Leaf: ``<name>_slope`` of shape ``(num_parameters,)``, every entry ``init``
    (0.25, PyTorch's default). A slope is not kept in [0, 1): training may move it
    anywhere (a negative slope gives a non-monotonic unit; weight decay on it is
    usually left out). The function is :func:`symgraph.prelu`.
    """

    prefix = "prelu"

    def __init__(self, num_parameters: int = 1, init: float = 0.25, axis: int = 1, name: str | None = None):
        self.num_parameters = _positive_int("PReLU", "num_parameters", num_parameters)
        if isinstance(init, bool) or not isinstance(init, (int, float, np.floating, np.integer)):
            raise TypeError(f"PReLU: init must be a number (the initial slope), got {init!r}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"PReLU: axis must be an int, got {axis!r}")
        super().__init__(name)
        self.init, self.axis = float(init), int(axis)

    def build(self, x):
        self.slope = self.add_parameter("slope", (self.num_parameters,), initializers.constant(self.init),
                                        _float_dtype(x))

    def forward(self, x, training):
        c = self.num_parameters
        if c == 1:
            return prelu(x, self.slope.reshape(())).named(self.name)
        axis = self.axis + x.ndim if self.axis < 0 else self.axis
        if not 0 <= axis < x.ndim or x.shape[axis] != c:
            raise ValueError(f"PReLU {self.name!r}: num_parameters={c} must equal the length of the channel axis "
                             f"(axis={self.axis}), got input shape {x.shape}")
        slope = self.slope.reshape((c,) + (1,) * (x.ndim - axis - 1))  # broadcasts along the channel axis
        return prelu(x, slope).named(self.name)

    def __repr__(self):
        return f"PReLU(num_parameters={self.num_parameters}, init={self.init}, axis={self.axis}, name={self.name!r})"


class Maxout(Layer):
    """Maxout units (Goodfellow et al., 2013): an affine map to ``units * pieces`` values, then the
    maximum over each unit's ``pieces`` (see :func:`symgraph.maxout`).

    ``y_j = max_k (x @ W + b)[j * pieces + k]``: unit ``j`` owns columns
    ``j*pieces ... j*pieces + pieces - 1``. Leaves: ``<name>_W`` of shape
    ``(in, units * pieces)`` (from ``init``, Glorot uniform by default) and
    ``<name>_b`` of shape ``(units * pieces,)`` (zeros), as in ``Dense``.
    """

    prefix = "maxout"

    def __init__(self, units: int, pieces: int = 2, init=None, use_bias: bool = True, name: str | None = None):
        self.units = _positive_int("Maxout", "units", units)
        self.pieces = _positive_int("Maxout", "pieces", pieces)
        super().__init__(name)
        self.init = init if init is not None else initializers.glorot_uniform()
        self.use_bias = use_bias

    def build(self, x):
        dtype, width = _float_dtype(x), self.units * self.pieces
        self.W = self.add_parameter("W", (_last_dim(self, x), width), self.init, dtype)
        self.b = self.add_parameter("b", (width,), initializers.zeros(), dtype) if self.use_bias else None

    def forward(self, x, training):
        if x.ndim == 0 or x.shape[-1] != self.W.shape[0]:
            raise ValueError(f"Maxout {self.name!r}: built for inputs with last dimension {self.W.shape[0]}, "
                             f"called on shape {x.shape}")
        z = x @ self.W
        if self.b is not None:
            z = z + self.b
        return maxout(z.named(f"{self.name}_z"), self.pieces).named(self.name)

    def __repr__(self):
        return f"Maxout({self.units}, pieces={self.pieces}, name={self.name!r})"


class RBF(Layer):
    """Gaussian radial-basis units: ``y_j = exp(-||x - c_j||² / (2 σ_j²))``, one per centre ``c_j``.

    The widths are learned through their logarithm, ``σ_j = exp(s_j)``, so a
    gradient step can never make a width zero or negative (and the output is
    ``exp(-||x - c_j||² · exp(-2 s_j) / 2)``, one fused elementwise chain).
    Leaves: ``<name>_centres`` of shape ``(units, in)`` (from ``init``, uniform
    on [-1, 1) by default: place them over your data, e.g. by assigning
    ``.value`` to k-means centres or to samples) and ``<name>_log_width`` of
    shape ``(units,)``, every entry ``log(width)``.

    The squared distances are formed as ``x[..., None, :] - c``: exact (no
    cancellation, never negative), at the cost of a ``(..., units, in)``
    intermediate.
    """

    prefix = "rbf"

    def __init__(self, units: int, width: float = 1.0, init=None, name: str | None = None):
        self.units = _positive_int("RBF", "units", units)
        if isinstance(width, bool) or not isinstance(width, (int, float, np.floating, np.integer)) or not width > 0:
            raise ValueError(f"RBF: width must be a positive number (the initial σ), got {width!r}")
        if init is not None and not callable(init):
            raise TypeError(f"RBF: init must be an initializer (such as sg.init.normal(1.0)) or None, got {init!r}")
        super().__init__(name)
        self.width = float(width)
        self.init = init if init is not None else initializers.uniform(-1.0, 1.0)

    def build(self, x):
        dtype = _float_dtype(x)
        self.centres = self.add_parameter("centres", (self.units, _last_dim(self, x)), self.init, dtype)
        self.log_width = self.add_parameter("log_width", (self.units,), initializers.constant(np.log(self.width)),
                                            dtype)

    def forward(self, x, training):
        if x.ndim == 0 or x.shape[-1] != self.centres.shape[1]:
            raise ValueError(f"RBF {self.name!r}: built for inputs with last dimension {self.centres.shape[1]}, "
                             f"called on shape {x.shape}")
        diff = expand_dims(x, -2) - self.centres  # (..., units, in)
        sq_dist = (diff * diff).sum(axis=-1).named(f"{self.name}_sq_dist")
        return exp(-0.5 * sq_dist * exp(-2.0 * self.log_width)).named(self.name)

    def __repr__(self):
        return f"RBF({self.units}, width={self.width}, name={self.name!r})"


class Conv2d(Layer):
    """2-D convolution of ``N×C×H×W`` images, as ``torch.nn.Conv2d`` (a cross-correlation, see
    :func:`symgraph.conv2d`): ``y = conv2d(x, W, bias=b)``, the bias added as y is written.

    ``kernel_size``, ``stride``, ``dilation``: an int or a pair (height, width);
    ``padding``: an int, a pair, ``"same"`` or ``"valid"``; ``groups`` splits the
    channels into that many independent convolutions (it must divide ``C`` and
    ``out_channels``). ``C`` is read from the input on the first call.

    Leaves: ``<name>_W`` of shape ``(out_channels, C/groups, kH, kW)`` and
    ``<name>_b`` of shape ``(out_channels,)``. ``W`` is drawn by ``init``
    (Glorot uniform by default) with PyTorch's fans, ``fan_in = C/groups·kH·kW``
    and ``fan_out = out_channels·kH·kW``: pass ``init=sg.init.he_normal()`` for
    ReLU networks. (PyTorch's own default is ``U(±1/sqrt(fan_in))``, a third of
    He's variance.) ``b`` starts at zeros, as ``Dense``'s does (PyTorch draws it
    from ``U(±1/sqrt(fan_in))``).
    """

    prefix = "conv"

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 use_bias: bool = True, init=None, name: str | None = None):
        self.out_channels = _positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = _pair("Conv2d", "kernel_size", kernel_size)
        self.stride = _pair("Conv2d", "stride", stride)
        self.padding = _padding("Conv2d", padding)
        self.dilation = _pair("Conv2d", "dilation", dilation)
        self.groups = _positive_int("Conv2d", "groups", groups)
        if self.padding == "same" and self.stride != (1, 1):
            raise ValueError(f"Conv2d: padding='same' needs stride=1 (as in PyTorch), got stride={stride!r}")
        if self.out_channels % self.groups:
            raise ValueError(f"Conv2d: groups={groups} must divide out_channels={out_channels}")
        if init is not None and not callable(init):
            raise TypeError(f"Conv2d: init must be an initializer (such as sg.init.he_normal()) or None, got {init!r}")
        super().__init__(name)
        self.use_bias = use_bias
        self.init = init if init is not None else initializers.glorot_uniform()

    def build(self, x):
        channels, dtype = _image(self, x), _float_dtype(x)
        if channels % self.groups:
            raise ValueError(f"Conv2d {self.name!r}: groups={self.groups} must divide the input's channels "
                             f"({channels}), got input shape {x.shape}")
        kh, kw = self.kernel_size
        shape = (self.out_channels, channels // self.groups, kh, kw)
        fans = (shape[1] * kh * kw, self.out_channels * kh * kw)
        init = self.init
        if isinstance(init, initializers.Initializer):
            init = lambda s: self.init(s, fans=fans)  # noqa: E731
        self.W = self.add_parameter("W", shape, init, dtype)
        self.b = self.add_parameter("b", (self.out_channels,), initializers.zeros(), dtype) if self.use_bias else None

    def forward(self, x, training):
        _image(self, x, self.W.shape[1] * self.groups)
        y = ops.conv2d(x, self.W, stride=self.stride, padding=self.padding, dilation=self.dilation,
                       groups=self.groups, bias=self.b)
        return y.named(self.name)

    def __repr__(self):
        return (f"Conv2d({self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding!r}, dilation={self.dilation}, groups={self.groups}, name={self.name!r})")


class _Pool2d(Layer):
    """Pooling over ``kernel`` windows of ``N×C×H×W`` images (no leaves); ``stride`` defaults to ``kernel``."""

    function = None  # the op builder's name in symgraph.ops

    def __init__(self, kernel, stride=None, padding=0, name: str | None = None):
        what = type(self).__name__
        self.kernel = _pair(what, "kernel", kernel)
        self.stride = self.kernel if stride is None else _pair(what, "stride", stride)
        self.padding = _pair(what, "padding", padding, minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel)):
            raise ValueError(f"{what}: padding must be at most half the kernel, got padding={padding!r} "
                             f"and kernel={kernel!r}")
        super().__init__(name)

    def forward(self, x, training):
        _image(self, x)
        pool = getattr(ops, self.function)
        return pool(x, self.kernel, stride=self.stride, padding=self.padding).named(self.name)

    def __repr__(self):
        return (f"{type(self).__name__}(kernel={self.kernel}, stride={self.stride}, padding={self.padding}, "
                f"name={self.name!r})")


class MaxPool2d(_Pool2d):
    """The maximum over each window, as ``torch.nn.MaxPool2d`` (padding counts as -inf); see
    :func:`symgraph.max_pool2d`."""

    prefix, function = "maxpool", "max_pool2d"


class AvgPool2d(_Pool2d):
    """The mean over each window, as ``torch.nn.AvgPool2d``; see :func:`symgraph.avg_pool2d`."""

    prefix, function = "avgpool", "avg_pool2d"


class Flatten(Layer):
    """Axes ``start_axis`` and after merged into one, as ``torch.nn.Flatten(start_dim)``: an
    ``N×C×H×W`` batch becomes ``N×(C·H·W)``, ready for ``Dense``. See :func:`symgraph.flatten`."""

    prefix = "flatten"

    def __init__(self, start_axis: int = 1, name: str | None = None):
        if isinstance(start_axis, bool) or not isinstance(start_axis, (int, np.integer)):
            raise TypeError(f"Flatten: start_axis must be an int, got {start_axis!r}")
        super().__init__(name)
        self.start_axis = int(start_axis)

    def forward(self, x, training):
        axis = self.start_axis + x.ndim if self.start_axis < 0 else self.start_axis
        if not 0 <= axis < max(x.ndim, 1):
            raise ValueError(f"Flatten {self.name!r}: start_axis={self.start_axis} is out of range for input "
                             f"shape {x.shape}")
        return ops.flatten(x, start_axis=self.start_axis).named(self.name)

    def __repr__(self):
        return f"Flatten(start_axis={self.start_axis}, name={self.name!r})"


class Sequential(Layer):
    """Layers applied one after another. Items are layers or plain functions of a node
    (``sg.relu``, ``lambda h: h.reshape((-1, 64))``); ``training`` is passed to layers only."""

    prefix = "sequential"

    def __init__(self, layers, name: str | None = None):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"Sequential: item {i} is not a layer or a function: {layer!r}")
        super().__init__(name)
        self.layers = layers

    @property
    def uses_mode(self):
        return any(isinstance(la, Layer) and la.uses_mode for la in self.layers)

    def forward(self, x, training):
        for layer in self.layers:
            x = layer(x, training=training) if isinstance(layer, Layer) else layer(x)
        return x

    def __call__(self, x, *, training: bool | None = None) -> Node:
        if training is None and self.uses_mode:
            modal = next(la for la in self.layers if isinstance(la, Layer) and la.uses_mode)
            raise TypeError(f"Sequential {self.name!r} holds {type(modal).__name__} {modal.name!r}, which behaves "
                            f"differently in training and evaluation: call it with training=True or training=False")
        if not isinstance(x, Node):
            raise TypeError(f"Sequential {self.name!r}: call it on a graph node, got {type(x).__name__}")
        return self.forward(x, bool(training))

    @property
    def leaves(self) -> list[Node]:
        seen, leaves = set(), []
        for layer in self.layers:
            for leaf in layer.leaves if isinstance(layer, Layer) else ():
                if id(leaf) not in seen:
                    seen.add(id(leaf))
                    leaves.append(leaf)
        return sorted(leaves, key=lambda leaf: leaf.serial)

    @property
    def state_updates(self) -> dict[Node, Node]:
        updates = {}
        for layer in self.layers:
            if isinstance(layer, Layer):
                updates.update(layer.state_updates)
        return updates

    def __repr__(self):
        inner = ",\n".join(f"    {la!r}" for la in self.layers)
        return f"Sequential([\n{inner},\n], name={self.name!r})"

"""The graph IR: immutable, hash-consed nodes and the leaves that feed them.

A :class:`Node` is an op applied to input nodes, with a static shape and dtype
inferred when it is built. Op nodes are interned in a :class:`Graph`: building
the same op on the same inputs twice returns the same node, so common
subexpressions are shared for free. Leaves (placeholders, parameters) are
always distinct objects. ``==`` and ``hash`` keep Python identity semantics,
so nodes can be dictionary keys.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import weakref

import numpy as np

from .errors import DTypeError, ShapeError, user_location
from .shapes import Shape, check_shape, format_shape


class Graph:
    """The intern table for op nodes.

    One instance is current at a time (see :func:`current_graph`); tests can
    start from a fresh one with :func:`fresh_graph`. A call that wants to know
    which nodes its rules build or reach (to label them in its own table)
    watches the interning with :meth:`watching`.
    """

    def __init__(self):
        self._nodes: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._copies: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._watchers: list = []

    def __len__(self) -> int:
        return len(self._nodes)

    @contextlib.contextmanager
    def watching(self, see):
        """Call ``see(node)`` for every node interned inside this block (built or found);
        only the innermost watcher sees it."""
        self._watchers.append(see)
        try:
            yield
        finally:
            self._watchers.pop()

    def intern(self, op: Op, inputs: tuple) -> Node:
        key = (op, inputs)
        node = self._nodes.get(key)
        if node is None:
            shape, dtype = op.infer(*inputs)
            node = Node(op, inputs, shape, dtype, next_serial())
            self._nodes[key] = node
        if self._watchers:
            self._watchers[-1](node)
        return node

    def copy(self, node: Node, labels=None, name: str | None = None) -> Node:
        """A copy of ``node`` carrying a display ``name`` or a call's ``labels`` (see
        :meth:`Node.copy`). Copies are interned too: asking again for the same node and name
        gives the same copy, and a second call returning the same value adds its labels to the
        copy's (where they say something new), so the value stays one node."""
        key = (node, name, labels is not None)
        copy = self._copies.get(key)
        if copy is None:
            copy = self._copies[key] = node.copy(labels, name)
        elif labels is not None and labels is not copy.labels:
            copy.labels.update(labels)
        return copy

    def leaf(self, op: Op, shape: Shape, dtype) -> Node:
        return Node(op, (), shape, np.dtype(dtype), next_serial())


_current: list[Graph] = []
_serials = itertools.count()  # process-wide, so nodes from different intern tables stay ordered


def next_serial() -> int:
    """A number larger than that of every node built so far (nodes are numbered as they are built)."""
    return next(_serials)


def current_graph() -> Graph:
    if not _current:
        _current.append(Graph())
    return _current[-1]


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while a large graph is built or rewritten: each of its
    passes walks every live object, so over a large graph they would make differentiation and
    compile time grow faster than the graph. Building nodes makes almost no garbage cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def fresh_graph():
    """Build nodes in a new, empty intern table for the duration of the block."""
    _current.append(Graph())
    try:
        yield _current[-1]
    finally:
        _current.pop()


class Node:
    """One value in the graph: ``op(*inputs)`` with a static shape and dtype.

    Nothing about a node changes once it is built. Op nodes are interned (one
    node per op and inputs); a *copy* is a distinct node with the same op and
    inputs that carries something of its own: a display name (``named``) or
    ``labels``, the table of the call (``grad``, ``simplify``, ...) that
    returned it (see :mod:`symgraph.provenance`). The simplifier merges a copy
    with the interned node it copies.
    """

    __slots__ = ("op", "inputs", "shape", "dtype", "serial", "labels", "is_copy", "_name", "__weakref__")
    __array_priority__ = 1000  # make ndarray <op> Node defer to Node's reflected operators
    __array_ufunc__ = None

    def __init__(self, op, inputs, shape, dtype, serial, labels=None, name=None):
        self.op = op
        self.inputs = inputs
        self.shape = shape
        self.dtype = dtype
        self.serial = serial
        self.labels = labels  # the labels of the call that returned this copy, if it is one
        self.is_copy = False  # True for a named or labelled copy of an op node (see copy)
        self._name = name or getattr(op, "leaf_name", None)

    def copy(self, labels=None, name=None) -> Node:
        """A distinct node computing the same value, carrying ``labels`` and ``name``
        (a leaf is never copied: a copy of a placeholder would be another input).
        Use :meth:`Graph.copy`, which returns the same copy for the same request."""
        if self.is_leaf:
            raise TypeError(f"a {self.op.name} leaf cannot be copied")
        # the copy takes the original's place in the topological order (its inputs are older still):
        # a value returned by grad is scheduled where the gradient was computed, not after everything
        node = Node(self.op, self.inputs, self.shape, self.dtype, self.serial,
                    labels if labels is not None else self.labels, name or self._name)
        node.is_copy = True
        return node

    # -- identity and display -------------------------------------------------
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __iter__(self):
        raise TypeError("a symgraph node is not iterable; index it (x[0]) or pass a list of nodes")

    def __bool__(self):
        raise TypeError(
            "the truth value of a symgraph node is not known until the graph runs; "
            "use sg.where for a data-dependent choice, and `is` to compare node identity"
        )

    @property
    def name(self) -> str | None:
        return self._name

    def named(self, name: str) -> Node:
        """This value under a display name (used by dprint and in generated code).

        Returns a named copy: the node itself is shared by every graph that reaches it
        and is left as it is. A placeholder or parameter is renamed for display in place
        (a leaf is the one input it stands for)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a node name must be a non-empty str, got {name!r}")
        if self.is_leaf:
            self._name = name
            return self
        return self if name == self._name else current_graph().copy(self, name=name)

    def _repr_svg_(self):
        """Jupyter shows a node as a picture of its graph (see :func:`symgraph.picture.draw`)."""
        from .picture import repr_svg

        return repr_svg(self)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_leaf(self) -> bool:
        """True for placeholders and parameters (the values a compiled function is given)."""
        return isinstance(self.op, Placeholder)

    @property
    def value(self):
        """The array held by a parameter or constant."""
        if not hasattr(self.op, "value"):
            raise AttributeError(f"{self.op.name} node {self.name or ''} holds no value; feed it when calling")
        return self.op.value

    @value.setter
    def value(self, array):
        if not isinstance(self.op, Parameter):
            raise AttributeError(f"only a parameter's value can be assigned, not a {self.op.name}'s")
        self.op.assign(array)

    def __repr__(self):
        label = f" {self.name!r}" if self.name else ""
        return f"<Node {self.op.name}{label} {format_shape(self.shape)} {self.dtype}>"

    # -- operators build nodes (the builders live in symgraph.ops) ---------------
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().subtract(self, other)

    def __rsub__(self, other):
        return _ops().subtract(other, self)

    def __mul__(self, other):
        return _ops().multiply(self, other)

    def __rmul__(self, other):
        return _ops().multiply(other, self)

    def __truediv__(self, other):
        return _ops().divide(self, other)

    def __rtruediv__(self, other):
        return _ops().divide(other, self)

    def __mod__(self, other):
        return _ops().mod(self, other)

    def __rmod__(self, other):
        return _ops().mod(other, self)

    def __pow__(self, other):
        return _ops().power(self, other)

    def __rpow__(self, other):
        return _ops().power(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __neg__(self):
        return _ops().negative(self)

    def __pos__(self):
        return self

    def __lt__(self, other):
        return _ops().less(self, other)

    def __le__(self, other):
        return _ops().less_equal(self, other)

    def __gt__(self, other):
        return _ops().greater(self, other)

    def __ge__(self, other):
        return _ops().greater_equal(self, other)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    @property
    def T(self):
        return _ops().transpose(self)

    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops().max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):  # issue 16 (redops): min, prod, argmax, argmin, cumsum, cumprod
        return _ops().min(self, axis, keepdims)

    def prod(self, axis=None, keepdims=False):
        return _ops().prod(self, axis, keepdims)

    def argmax(self, axis=None, keepdims=False):
        return _ops().argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        return _ops().argmin(self, axis, keepdims)

    def cumsum(self, axis=None):
        return _ops().cumsum(self, axis)

    def cumprod(self, axis=None):
        return _ops().cumprod(self, axis)

    def reshape(self, *shape):
        return _ops().reshape(self, shape[0] if len(shape) == 1 else shape)

    def astype(self, dtype):
        return _ops().cast(self, dtype)


def _ops():
    from . import ops

    return ops


class Op:
    """Base class of every op: attributes, shape/dtype rule, semantics, derivatives.

    Subclasses set ``name`` and ``params`` (the attribute names that, with the
    class, make up the op's identity) and implement, side by side:

    - ``infer(*inputs) -> (shape, dtype)``: the static rule; raise through
      :meth:`shape_error` / :meth:`dtype_error`;
    - ``compute(*arrays)``: the forward semantics in NumPy (the reference the
      code generator is tested against, and what constant folding runs);
    - ``vjp(node, cot)``: one cotangent node (or ``None`` for zero) per input;
    - ``jvp(node, tangents)``: the output tangent node from input tangents
      (``None`` entries are zero); return ``None`` for a zero tangent;
    - ``flops(node, sizes)``: an estimate of the floating-point operations.

    Rules build graph nodes with the same public builders user code calls.
    """

    name = "op"
    params: tuple[str, ...] = ()
    differentiable = True  # False: no input ever receives a gradient (comparisons, one_hot, ...)
    broadcasting = False  # True: elementwise with NumPy broadcasting between the inputs
    shape_inputs: tuple[int, ...] = ()  # inputs read only for their shape (never differentiated)
    # Facts the code generator reads (an op that declares nothing is handled conservatively):
    view_of: tuple[int, ...] | None = None  # inputs the result may be a view of; None: unknown, so any input
    elementwise: bool = False  # result element i reads only input elements at i: may overwrite an input's buffer
    writes_into: bool = False  # has a form that writes the result into a given buffer (the printer spells it)
    labels_input: int | None = None  # the input holding integer class labels: the generated code checks
    labels_use: str = ""  # them against label_classes(node); labels_use names the reader in that message

    def label_classes(self, node) -> int:
        """The number of classes the labels input indexes (ops with a ``labels_input``)."""
        raise NotImplementedError

    def _key(self):
        return (type(self),) + tuple(getattr(self, p) for p in self.params)

    def __eq__(self, other):
        return isinstance(other, Op) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        attrs = ", ".join(f"{p}={getattr(self, p)!r}" for p in self.params)
        return f"{self.name}({attrs})" if attrs else self.name

    def __str__(self):
        return self.name

    def attrs(self) -> dict:
        return {p: getattr(self, p) for p in self.params}

    # -- errors that point at the user's own line -------------------------------
    def shape_error(self, inputs, detail: str) -> ShapeError:
        shapes = ", ".join(format_shape(i.shape) for i in inputs)
        return ShapeError(f"{self.name}: {detail} (operand shapes {shapes}) at {user_location()}")

    def dtype_error(self, inputs, detail: str) -> DTypeError:
        dtypes = ", ".join(str(i.dtype) for i in inputs)
        return DTypeError(f"{self.name}: {detail} (operand dtypes {dtypes}) at {user_location()}")

    # -- rules (subclasses override) --------------------------------------------
    def infer(self, *inputs):
        raise NotImplementedError

    def compute(self, *arrays):
        raise NotImplementedError

    def vjp(self, node, cot):
        raise NotImplementedError(f"{self.name} has no vjp rule")

    def jvp(self, node, tangents):
        raise NotImplementedError(f"{self.name} has no jvp rule")

    def flops(self, node, sizes) -> int:
        from .shapes import numel

        return numel(node.shape, sizes)

    scalar_expr = None  # elementwise ops: (*sympy_symbols) -> the SymPy expression of one element


class NoDerivative(Op):
    """Base of ops through which nothing is differentiated and that cost nothing
    to speak of: leaves, constants, stop_gradient, shape reads, seeds."""

    differentiable = False

    def vjp(self, node, cot):
        return tuple(None for _ in node.inputs)

    def jvp(self, node, tangents):
        return None

    def flops(self, node, sizes):
        return 0


# -- leaves -------------------------------------------------------------------
class Placeholder(NoDerivative):
    """An input fed at call time."""

    name = "placeholder"

    def __init__(self, leaf_name: str):
        self.leaf_name = leaf_name

    def _key(self):
        return (id(self),)  # every leaf is distinct, even when two share a name


def host_array(value) -> np.ndarray:
    """A leaf's value as a NumPy array: a device array (a CuPy function keeps parameters on the
    device, see codegen.function.DeviceFunction) is copied to the host."""
    if not isinstance(value, np.ndarray) and hasattr(value, "get"):
        return value.get()
    return np.asarray(value)


class Parameter(Placeholder):
    """A trainable leaf that owns its NumPy array (``.value``)."""

    name = "parameter"

    def __init__(self, leaf_name: str, value: np.ndarray, trainable: bool = True):
        super().__init__(leaf_name)
        self.value = value
        self.trainable = trainable

    def assign(self, array):
        array = np.asarray(array)
        if array.shape != self.value.shape:
            raise ValueError(
                f"parameter {self.leaf_name!r}: cannot assign a value of shape {array.shape}; "
                f"its shape is {self.value.shape}"
            )
        if not np.can_cast(array.dtype, self.value.dtype, "same_kind"):
            raise DTypeError(f"parameter {self.leaf_name!r}: cannot assign {array.dtype} data to a {self.value.dtype} parameter")
        self.value = _exact_array(array, self.value.dtype, f"parameter {self.leaf_name!r}")


class Constant(NoDerivative):
    """A fixed array baked into the graph. ``weak`` marks a Python number whose
    dtype was taken from the operand it meets (NumPy's NEP 50 rule)."""

    name = "constant"
    params = ("weak",)

    def __init__(self, value: np.ndarray, weak: bool = False, leaf_name: str | None = None):
        self.value = value
        self.value.flags.writeable = False
        self.weak = weak
        self.leaf_name = leaf_name

    def _key(self):
        v = self.value
        return (Constant, v.dtype.str, v.shape, v.tobytes(), self.weak, self.leaf_name)

    def infer(self):
        return self.value.shape, self.value.dtype

    def compute(self):
        return self.value


_FLOAT_KINDS = "f"


def _check_dtype(dtype, what: str) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"{what}: unknown dtype {dtype!r}") from None
    if dt.kind not in "biuf":
        raise DTypeError(f"{what}: dtype {dt} is not supported (use bool, integer or float dtypes)")
    return dt


_REAL = (int, float, np.integer, np.floating)  # in an object array: NumPy makes one for Python ints beyond int64


def _numbers(value, what: str) -> np.ndarray:
    """``value`` as an array of bool, integer or float numbers (Python ints too large for
    int64 stay objects), or a ``DTypeError`` naming ``what``."""
    try:
        given = np.asarray(value)
    except (TypeError, ValueError) as e:  # ragged nested lists
        raise DTypeError(f"{what}: value is not an array of numbers ({e})") from None
    bad = [v for v in given.flat if not isinstance(v, _REAL)][:1] if given.dtype == object else []
    if given.dtype.kind not in "biufO" or bad:
        shown = f"a {type(bad[0]).__name__} element ({bad[0]!r:.40})" if bad else f"{given.dtype} data"
        raise DTypeError(f"{what}: value holds {shown}; only bool, integer and float values are supported")
    return given


def _exact_array(value, dtype, what: str) -> np.ndarray:
    """A new array holding ``value`` in ``dtype`` (``None``: a float value keeps its dtype,
    any other value becomes float64), or a ``DTypeError`` naming ``what`` when the value is
    not real numbers or storing it would change a value: a fraction, NaN or out-of-range
    number into an integer or bool dtype, a finite number that overflows to inf in a narrower
    float. Rounding to a narrower float is not a change."""
    given = _numbers(value, what)
    if dtype is None:
        dtype = given.dtype if given.dtype.kind == "f" else np.float64
    dt = _check_dtype(dtype, what)
    try:
        with np.errstate(all="ignore"):
            array = np.array(given, dtype=dt, copy=True)
    except (TypeError, ValueError, OverflowError):  # a Python int beyond the dtype's range
        raise DTypeError(f"{what}: value {value!r:.60} does not fit {dt}") from None
    changed = np.argwhere(_changed(given, array))
    if len(changed):
        at = tuple(int(i) for i in changed[0])
        where = f" at index {at}" if at else ""
        raise DTypeError(f"{what}: value {np.asarray(given[at]).item()!r}{where} would become "
                         f"{array[at].item()!r} in {dt}; convert it yourself if that is intended")
    return array


def _changed(given: np.ndarray, array: np.ndarray) -> np.ndarray:
    """Where ``array`` (``given`` converted) holds a different value: inf from a finite number
    in a float dtype; in an integer or bool dtype, any value that does not convert back or
    whose sign flipped (a wrap-around)."""
    if array.dtype.kind == "f":
        if given.dtype == object:  # Python numbers: float() raised on overflow
            return np.zeros(given.shape, dtype=bool)
        return np.isinf(array) & ~np.isinf(given.astype(np.float64))
    with np.errstate(all="ignore"):
        back = array.astype(given.dtype)
    return np.asarray((back != given) | ((array < 0) != (given < 0)), dtype=bool)


def placeholder(name: str, shape, dtype="float64") -> Node:
    """An input of the graph, fed positionally when a compiled function is called.

    ``shape`` entries are ``int`` (or any NumPy integer), ``str`` (a named dimension) or ``None``.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"placeholder: name must be a non-empty str, got {name!r}")
    shape = check_shape(shape, f"placeholder {name!r}")
    return current_graph().leaf(Placeholder(name), shape, _check_dtype(dtype, f"placeholder {name!r}"))


def parameter(name: str, value=None, shape=None, init=None, dtype=None, trainable: bool = True) -> Node:
    """A trainable leaf owning a NumPy array: give ``value``, or ``shape`` and ``init``.

    ``dtype=None``: a float value keeps its dtype (float32 stays float32); any
    other value, and ``init``'s arrays, become float64. A value that would change
    when stored in the dtype (1.7 into int64, 1e300 into float32, a complex
    number) raises ``DTypeError`` naming the parameter.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"parameter: name must be a non-empty str, got {name!r}")
    array = _leaf_array(f"parameter {name!r}", value, shape, init, dtype)
    return current_graph().leaf(Parameter(name, array, trainable), array.shape, array.dtype)


def _leaf_array(what: str, value, shape, init, dtype) -> np.ndarray:
    """The array a parameter or state leaf owns, from ``value`` or from ``init(shape)``."""
    if value is not None:
        if init is not None:
            raise ValueError(f"{what}: give either value or init, not both")
        array = _exact_array(value, dtype, what)
        if shape is not None and (shape := check_shape(shape, what)) != array.shape:
            raise ValueError(f"{what}: shape {shape} does not match the value's shape {array.shape}")
        return array
    if shape is None or init is None:
        raise ValueError(f"{what}: give value=..., or shape=... together with init=...")
    shape = check_shape(shape, what)
    if not all(isinstance(d, int) for d in shape):
        raise ValueError(f"{what}: a parameter's shape must be all ints, got {shape!r}")
    array = _exact_array(init(shape), np.float64 if dtype is None else dtype, what)
    if array.shape != shape:
        raise ValueError(f"{what}: init returned shape {array.shape}, expected {shape}")
    return array


def state(name: str, value, dtype=None) -> Node:
    """A non-trainable leaf owning an array (optimizer state, running statistics, random keys),
    changed only through a compiled function's ``updates``. Keeps ``value``'s dtype unless given
    (with the same checks as :func:`parameter`)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"state: name must be a non-empty str, got {name!r}")
    what = f"state {name!r}"
    array = _leaf_array(what, value, None, None, _numbers(value, what).dtype if dtype is None else dtype)
    return current_graph().leaf(Parameter(name, array, False), array.shape, array.dtype)


def parameters_of(nodes, trainable: bool | None = True) -> list[Node]:
    """The parameter leaves the nodes depend on, in the order they were created
    (``trainable=None``: all of them; ``False``: only state leaves)."""
    nodes = [nodes] if isinstance(nodes, Node) else list(nodes)
    return [n for n in topo_sort(nodes) if isinstance(n.op, Parameter)
            and (trainable is None or n.op.trainable == trainable)]


def constant(value, name: str | None = None, dtype=None) -> Node:
    """A fixed array (or number) in the graph. Equal constants are the same node.
    With ``dtype``, a value that would change in it raises ``DTypeError`` (as for :func:`parameter`)."""
    if isinstance(value, Node):
        raise TypeError("constant: value is already a graph node")
    what = f"constant {name!r}" if name else "constant"
    given = _numbers(value, what)
    array = _exact_array(given, given.dtype if dtype is None else dtype, what)
    return current_graph().intern(Constant(array, weak=False, leaf_name=name), ())


def as_node(value, like: Node | None = None) -> Node:
    """A node for ``value``: nodes pass through, Python numbers become weak
    constants that take ``like``'s dtype when it is of the same or a wider kind,
    arrays become constants of their own dtype."""
    if isinstance(value, Node):
        return value
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        kind = "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"
        dtype = {"b": np.bool_, "i": np.int64, "f": np.float64}[kind]
        if like is not None:
            order = "biuf"
            if order.index(like.dtype.kind) >= order.index(kind) or (kind == "i" and like.dtype.kind == "u"):
                dtype = like.dtype
        try:
            array = np.array(value, dtype=dtype)
        except OverflowError:  # does not fit the narrow int dtype
            array = np.array(value)
        return current_graph().intern(Constant(array, weak=True), ())
    if isinstance(value, (np.ndarray, np.generic, list, tuple)):
        array = np.array(value, copy=True)
        if array.dtype.kind not in "biuf":
            raise DTypeError(f"cannot use a {array.dtype} array in a graph (value {value!r:.60})")
        return current_graph().intern(Constant(array, weak=False), ())
    raise TypeError(f"cannot use {type(value).__name__} {value!r:.60} as a graph node")


def apply(op: Op, *inputs) -> Node:
    """Build (or find the interned) node ``op(*inputs)``; inputs are coerced with :func:`as_node`."""
    nodes = [i for i in inputs if isinstance(i, Node)]
    like = max(nodes, key=lambda n: "buif".index(n.dtype.kind), default=None)
    return current_graph().intern(op, tuple(as_node(i, like) for i in inputs))


def topo_sort(outputs) -> list[Node]:
    """Every node the outputs depend on, inputs before consumers.

    Nodes are immutable, so each input exists before any node that uses it:
    sorting the ancestors by creation serial is a topological order, and a
    deterministic one (it follows the order the user built the graph in). A
    copy shares the serial of the node it copies (see :meth:`Node.copy`).
    """
    seen: dict[int, Node] = {}
    stack = [outputs] if isinstance(outputs, Node) else list(outputs)
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.inputs)
    return sorted(seen.values(), key=lambda n: n.serial)

"""``codegen.compile``: a graph becomes a callable backed by a generated module."""

from __future__ import annotations

import builtins
import html
import inspect
import linecache
import os
import types

import numpy as np

import symgraph
from symgraph.files import atomic_write
from symgraph.graph import Node, Parameter, Placeholder, gc_paused, topo_sort
from symgraph.shapes import format_shape

from symgraph.provenance import Labels, labels_of
from symgraph.simplify import simplify_labelled

from . import backends
from .memory import MemoryPlan
from .module import assemble, module_header
from .naming import identifier
from .conv_columns import share_columns
from .schedule import Program, Schedule, inplace_step


# Parameters whose .value a CuPy function has made a device array: a NumPy function that reads one
# first copies it back to the host (a value lives where it was last used).
ON_DEVICE: set = set()


class CompiledFunction:
    """A compiled graph: call it with the inputs, read ``.source``, ``.save(path)`` it.

    Calling validates every input (shape, dtype, named-dimension consistency),
    reads each parameter's ``.value``, runs the generated function and applies
    the updates in place. Inputs are passed by position or by keyword, as to a
    Python function: the keyword is the input's name in the generated source
    (the placeholder's name, or the identifier it was sanitized or shortened to).
    """

    def __init__(self, inputs, outputs, single, updates, params, param_names, source, fn_name, backend=None):
        self.backend = backend or backends.get("numpy")
        self.inputs = inputs
        self.outputs = outputs
        self.updates = updates
        self.params = params
        self.source = source
        self.name = fn_name
        self._single = single
        self._param_ops = [(k, p.op) for k, p in zip(param_names, params)]  # each call reads op.value
        self._arity = len(inputs)
        self._load()

    def _load(self):
        """Run the module's source and build the call path."""
        filename = f"<symgraph {self.name} {id(self):x}>"
        source = self.source
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # readable tracebacks
        module = types.ModuleType(f"symgraph_generated_{self.name}")
        exec(builtins.compile(source, filename, "exec"), module.__dict__)  # source printed by our own printer
        self._fn = getattr(module, self.name).__wrapped__  # the body, without the checks its decorator adds
        self._check = self._module_checks(module._checked)
        self._entry = self._specialized_entry()

    def _module_checks(self, checked):
        """``check(args, kwargs) -> (inputs, {})``: the input checks the generated module carries (``checked``
        is its copy of :func:`codegen.checks._checked`), naming inputs and dimensions as the graph does (a
        saved module, whose source holds only identifiers, names them by those). Parameters are not
        arguments here: each call passes their ``.value``, an array of the right shape and dtype."""
        names = inspect.signature(self._fn).parameters
        inputs = [(name, leaf.shape, leaf.dtype.name) + ((leaf.name,) if leaf.name != name else ())
                  for leaf, name in zip(self.inputs, names)]
        return checked(self.name, inputs)(self._fn).check

    def _specialized_entry(self):
        """The call path, written for these inputs at compile time: one expression checks that each
        input is already an array of the backend's type, dtype and shape (else the general path converts it
        or raises), then the generated function is called with each parameter's current value."""
        args = [f"a{i}" for i in range(len(self.inputs))]
        checks, dims = [], {}
        for i, (leaf, a) in enumerate(zip(self.inputs, args)):
            checks.append(f"type({a}) is ndarray and {a}.dtype == D{i} and {a}.ndim == {leaf.ndim}")
            for axis, d in enumerate(leaf.shape):
                if isinstance(d, int):
                    checks.append(f"{a}.shape[{axis}] == {d}")
                elif d in dims:  # a named dimension seen before: the sizes must agree
                    checks.append(f"{a}.shape[{axis}] == {dims[d]}")
                else:
                    dims[d] = f"{a}.shape[{axis}]"
        if self._param_ops and self._resident:  # (a value on another device is moved by the general path)
            checks.append(self._resident)
        call_args = ", ".join(args + [f"{k}={self._param_text.format(j=j)}" for j, (k, _) in enumerate(self._param_ops)])
        # one output: a NumPy scalar (a mean, a sum) is returned as a 0-d array, here, without a call
        finish = "r if type(r) is ndarray else asarray(r, dtype=O)" if self._single else "result(r)"
        text = "\n".join([
            f"def entry({', '.join(args)}):",
            f"    if {' and '.join(checks) or 'True'}:",
            f"        r = fn({call_args})",
            "    else:",
            f"        r = checked({', '.join(args)})",
            f"    return {finish}",
        ])
        namespace = {"ndarray": self.backend.array_type, "asarray": self.backend.asarray,
                     "O": self.outputs[0].dtype if self._single else None,
                     "fn": self._fn, "result": self._result, "checked": self._checked,
                     "value": self._value, "ON_DEVICE": ON_DEVICE,
                     **{f"D{i}": leaf.dtype for i, leaf in enumerate(self.inputs)},
                     **{f"P{j}": op for j, (_, op) in enumerate(self._param_ops)}}
        exec(builtins.compile(text, f"<symgraph {self.name} entry>", "exec"), namespace)  # names we made
        return namespace["entry"]

    def _checked(self, /, *args, **kwargs):
        """The general path: the generated module's own checks (a saved module runs the same), which
        bind keyword inputs, convert inputs to the placeholders' dtypes or raise a clear error."""
        arrays, _ = self._check(args, kwargs)
        return self._fn(*arrays, **{k: self._value(op) for k, op in self._param_ops})

    _param_text = "P{j}.value"  # the entry's code for parameter j's array
    _resident = "not ON_DEVICE"  # the entry's check that every parameter's array is where the code runs

    @staticmethod
    def _value(op):
        """The parameter's array, on the host: a value a CuPy function left on the device is copied back."""
        value = op.value
        if op in ON_DEVICE:
            ON_DEVICE.discard(op)
            if not isinstance(value, np.ndarray):
                value = op.value = value.get()
        return value

    def _result(self, result):
        """The outputs as arrays (a NumPy scalar, from a mean or a sum, as a 0-d array): one, or a list."""
        if not self.outputs:
            return []
        result = (result,) if self._single or len(self.outputs) == 1 else result
        arrays = [r if isinstance(r, self.backend.array_type) else self.backend.asarray(r, dtype=o.dtype)
                  for r, o in zip(result, self.outputs)]
        return arrays[0] if self._single else arrays

    # set by compile: {id(node): numbers of the .source lines computing it}, {id(node): its name there}
    line_of: dict[int, list[int]] = {}
    name_of: dict[int, str] = {}

    def _repr_html_(self) -> str:
        """Jupyter shows a compiled function as its source, HTML-escaped."""
        return f"<pre><code>{html.escape(self.source)}</code></pre>"

    def __repr__(self):
        ins = ", ".join(p.name for p in self.inputs)
        return f"<CompiledFunction {self.name}({ins})>"

    def save(self, path) -> str:
        """Write the generated module (standalone: it needs only its backend's array library) to ``path``,
        atomically (a temporary file beside it, removed on any failure, renamed over ``path``)."""
        path = os.fspath(path)
        if not path or os.path.basename(path) in ("", ".", ".."):
            raise ValueError(f"{self.name}.save: {path!r} is not a file name")
        return atomic_write(path, lambda f: f.write(self.source), f"{self.name}.save", "module", binary=False)

    def __call__(self, /, *args, **kwargs):  # "self" may be an input's keyword
        if kwargs or len(args) != self._arity:  # keywords, or a missing input: bound by the general path
            return self._result(self._checked(*args, **kwargs))
        return self._entry(*args)


class DeviceFunction(CompiledFunction):
    """A function compiled for a device (``backend="cupy"``): call it with NumPy or CuPy arrays; it
    returns CuPy arrays.

    The module runs on the ``cupy`` installed when it is called (CuPy, or the stand-in of
    :func:`codegen.testing.emulated_cupy`), loaded again when that changes. Parameters and state
    stay on the device: the first call copies each one's ``.value`` to the device and makes that
    device array its ``.value``, which later calls update in place. Read a value with ``.get()``
    (``sg.save_params`` does); a value assigned later (``load_params``, ``assign``) is copied to the
    device by the next call, and a NumPy function that reads one copies it back to the host first.
    """

    _param_text = "value(P{j})"
    _resident = None  # value() moves each parameter to the device

    def _load(self):
        self._runtime = None  # loaded by the first call: the module imports cupy

    def __call__(self, /, *args, **kwargs):
        runtime = self.backend.runtime()
        if runtime is not self._runtime:
            self.backend.check_device(runtime)
            self._runtime, self._array = runtime, runtime.ndarray
            super()._load()
        return super().__call__(*args, **kwargs)

    def _value(self, op):
        """The parameter's array on the device (copied there, once, when it is not)."""
        value = op.value
        if type(value) is not self._array:
            value = op.value = self._runtime.asarray(value)
            ON_DEVICE.add(op)
        return value


def _validate(inputs, outputs, updates):
    for i, p in enumerate(inputs):
        if not isinstance(p, Node) or type(p.op) is not Placeholder:
            raise TypeError(f"compile: inputs[{i}] must be a placeholder, got {p!r:.80}")
    first: dict[int, int] = {}
    for i, p in enumerate(inputs):
        if id(p) in first:
            raise ValueError(f"compile: placeholder {p.name!r} appears twice in inputs "
                             f"(inputs[{first[id(p)]}] and inputs[{i}])")
        first[id(p)] = i
    for i, o in enumerate(outputs):
        if not isinstance(o, Node):
            raise TypeError(f"compile: outputs[{i}] must be a graph node, got {type(o).__name__}")
    pairs = []
    for state, value in (updates or {}).items():
        if not isinstance(state, Node) or not isinstance(state.op, Parameter):
            raise TypeError(f"compile: updates keys must be parameters or state leaves, got {state!r:.80}")
        value = symgraph.as_node(value, like=state)
        if value.shape != state.shape:
            raise ValueError(f"compile: the update of {state.name!r} has shape {format_shape(value.shape)}, "
                             f"but the parameter's shape is {format_shape(state.shape)}")
        if not np.can_cast(value.dtype, state.dtype, "same_kind"):
            raise ValueError(f"compile: the update of {state.name!r} has dtype {value.dtype}, "
                             f"which cannot be stored in a {state.dtype} parameter")
        if value.dtype != state.dtype:
            value = symgraph.cast(value, state.dtype)
        pairs.append((state, value))
    known = {id(p) for p in inputs}
    for node in topo_sort(list(outputs) + [v for _, v in pairs]):
        if type(node.op) is Placeholder and id(node) not in known:
            raise ValueError(f"compile: the outputs depend on placeholder {node.name!r}, which is not in inputs")
    return pairs


def compile(inputs, outputs, updates=None, backend: str = "numpy", simplify: bool = True,  # noqa: A001
            name: str | None = None, show_rules: bool = False, memory_plan: bool = True,
            early_updates: bool = False, buffer_cache: int | None = 8):
    """Compile graph nodes into a callable backed by generated source for ``backend``.

    ``inputs``: placeholders, called positionally in that order. ``outputs``:
    a node or a list (the call returns a value or a list to match).
    ``updates``: {parameter: new value node}, applied together in place after every
    value of the step is computed, so a step that fails midway (an exception, Ctrl-C)
    changes no parameter. ``backend``: a name registered in :mod:`codegen.backends`:
    ``"numpy"``, or ``"cupy"`` (a :class:`DeviceFunction`: NumPy or CuPy arrays in, CuPy arrays
    out, parameters and state kept on the GPU; see its docstring).
    ``simplify``: run :func:`symgraph.simplify` first, then let conv2d nodes share their image's
    columns with its weight gradient (:mod:`codegen.conv_columns`); False prints the graph as
    built, node for node. ``name``: the generated
    function's name. ``show_rules``: end each line's comment with the simplifier
    rules that shaped it. ``memory_plan``: write intermediate values into buffers
    allocated once per input size and reused (``np.dot(a, b, out=buf1)``); False
    prints plain expressions.

    ``early_updates``: apply each in-place update ``w -= d`` as soon as nothing below
    reads ``w``, as hand-written NumPy does: the buffer of ``d`` is free from there on
    (one parameter-sized buffer per parameter less), but a step that fails after the
    first such update leaves the parameters partly updated. ``buffer_cache``: how many
    input sizes (batch sizes, ...) each thread keeps buffers for, the least recently used
    dropped first; ``None`` keeps every size. Each thread has its own buffers, so the
    function may be called from several threads at once.
    """
    if buffer_cache is not None and (not isinstance(buffer_cache, int) or buffer_cache < 1):
        raise ValueError(f"compile: buffer_cache must be a positive int or None, got {buffer_cache!r}")
    target = backends.get(backend)
    with gc_paused():  # compiling makes many objects and almost no garbage cycles
        inputs = [inputs] if isinstance(inputs, Node) else list(inputs)
        single = isinstance(outputs, Node)
        outputs = [outputs] if single else list(outputs)
        pairs = _validate(inputs, outputs, updates)
        values = [v for _, v in pairs]
        labels, report = labels_of(outputs + values), None
        if simplify:
            in_place = [v for s, v in pairs if inplace_step(s, v) is not None]  # kept unfused: `w -= d`
            everything, labels, report = simplify_labelled(outputs + values, labels, unfused=in_place)
            outputs, values = everything[: len(outputs)], everything[len(outputs) :]
            pairs = [(s, v) for (s, _), v in zip(pairs, values)]
        if simplify and target.share_conv_columns:  # (a graph rewrite: simplify=False prints the graph as built)
            everything, labels = share_columns(outputs + values, labels)
            outputs, values = everything[: len(outputs)], everything[len(outputs) :]
            pairs = [(s, v) for (s, _), v in zip(pairs, values)]
        fn_name = identifier(name or ("train_step" if pairs else "compute"))
        order = topo_sort(outputs + values + [s for s, _ in pairs])
        params = [n for n in order if isinstance(n.op, Parameter)]
        program = Program(fn_name, inputs, outputs, pairs, params, order, early_updates, buffer_cache)
        header = module_header(program, _mode(labels, order), report, target, _jacobian_lines(labels))
        source, names, lines = _generate(program, target, labels, header, show_rules, memory_plan)
        cls = DeviceFunction if target.on_device else CompiledFunction
        fn = cls(inputs, outputs, single, pairs, params, [names[id(p)] for p in params], source, fn_name, target)
        fn.line_of, fn.name_of = lines, names
        return fn


def _mode(labels: Labels, order: list[Node]) -> str:
    """The differentiation modes the labels record for the compiled nodes, for the module header."""
    kinds = {labels.origin[n][0] for n in order if n in labels.origin}
    return " and ".join(m for m, k in (("forward", "jvp"), ("reverse", "vjp")) if k in kinds) or "none"


def _jacobian_lines(labels: Labels) -> list[str]:
    """One header line per Jacobian the labels record (``sg.jacobian``'s mode, costs, bracketing)."""
    return list(dict.fromkeys(note.header_line() for note in labels.jacobians.values()))


def _generate(program: Program, backend, labels: Labels, header: str, show_rules: bool, memory_plan: bool):
    """The passes: schedule -> memory plan -> module text.
    Returns (source, node id -> name, node id -> the source lines computing it)."""
    schedule = Schedule(program, backend, labels, show_rules, memory_plan)
    statements = schedule.run()
    memory = MemoryPlan(schedule)
    body, tail, returns = memory.run(statements, memory_plan)
    body, tail = backend.finish(schedule, body, tail)
    source = assemble(schedule, memory, body, tail, returns, header)
    return source, schedule.names, _line_numbers(source, program.name, body + tail)


def _line_numbers(source: str, fn_name: str, statements: list) -> dict[int, list[int]]:
    """{id(node): the 1-based numbers of the source lines of the statements computing it}.

    The statements are printed in order in the function body, each text line at the start of a
    source line (followed by nothing or its comment), so one forward scan finds them all."""
    lines = source.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"def {fn_name}("))
    found: dict[int, list[int]] = {}

    def prints(line: str, text: str) -> bool:
        line = line.strip()
        return line.startswith(text) and line[len(text):].strip()[:1] in ("", "#")

    for st in statements:
        for text in st.text.split("\n"):
            text = text.strip()
            k = next((k for k in range(at, len(lines)) if prints(lines[k], text)), None)
            if k is None:  # (not printed as one line: nothing to map)
                continue
            if st.node is not None:
                found.setdefault(id(st.node), []).append(k + 1)
            at = k + 1
    return found


def evaluate(outputs, feed: dict | None = None, backend: str = "numpy"):
    """Compile and run once: ``feed`` maps placeholders to arrays (CuPy arrays out for ``backend="cupy"``)."""
    feed = feed or {}
    f = compile(list(feed), outputs, backend=backend)
    return f(*feed.values())

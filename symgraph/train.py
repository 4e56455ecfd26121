"""The training loop and checkpoints: ``fit``, ``save_params``, ``load_params``.

``fit`` is a short, boring loop: split the data into mini-batches (reshuffled
every epoch by a seeded NumPy ``Generator``), call the compiled ``step`` on each
batch, average the losses, optionally evaluate, print one progress line and
save a checkpoint. Everything that trains lives in ``step`` (the compiled
forward, backward and update); this module only feeds it.

Checkpoints are ``.npz`` files (zip archives) holding one ``<leaf name>.npy``
member per leaf. Every leaf member ends in ``.npy`` and is read back under
exactly the name it was written with (leaves named ``x`` and ``x.npy`` are two
different keys), so names are unambiguous; two distinct leaves with the same
name, or a name a zip archive cannot hold (a NUL character), are refused at
save time. A checkpoint written by ``fit`` also holds the member
``symgraph-fit.json`` (it does not end in ``.npy``, so it is never a leaf's):
the number of finished epochs and the shuffling generator's state, which
``fit(..., resume=True)`` continues from.

``save_params`` writes a temporary file ``.<name>.symgraph-tmp-<pid>-<random>``
next to the target, fsyncs it and renames it over the target (``os.replace``),
so an interrupted save leaves the previous checkpoint intact. The temporary
file is removed on every error; a process killed during a save (``kill -9``)
cannot remove it, so each save first removes the temporary files of the same
target whose process no longer runs (on POSIX systems; elsewhere they stay).
Processes are looked up on this machine: do not save to one path from several
machines sharing a file system.
``load_params`` validates the whole file before it assigns anything, so a bad
file changes no value.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import zipfile
from collections.abc import Mapping

import numpy as np

from .files import atomic_write, check_target
from .graph import Node, Parameter, _exact_array, host_array

__all__ = ["Checkpoint", "fit", "load_params", "save_params"]


# -- checkpoints --------------------------------------------------------------------------

_RECORD = "symgraph-fit.json"  # fit's progress; never a leaf's member, which all end in ".npy"


def _leaves(leaves, what: str) -> list[Node]:
    """Parameter and state leaves from a node, an iterable or a mapping of nodes, or a
    model-like object with ``.parameters`` and/or ``.state`` (lists, or methods returning them).
    Duplicates (the same node twice) are dropped; two distinct leaves sharing a name raise."""
    if isinstance(leaves, Node):
        items = [leaves]
    elif isinstance(leaves, Mapping):
        items = list(leaves.values())
    elif hasattr(leaves, "parameters") or hasattr(leaves, "state"):
        items = []
        for attr in ("parameters", "state"):
            got = getattr(leaves, attr, None)
            got = got() if callable(got) else got
            items += [got] if isinstance(got, Node) else list(got or ())
    else:
        try:
            items = list(leaves)
        except TypeError:
            raise TypeError(f"{what}: leaves must be a node, a list of nodes or a model, "
                            f"got {type(leaves).__name__}") from None
    result, seen, names = [], set(), {}
    for leaf in items:
        if not isinstance(leaf, Node) or not isinstance(leaf.op, Parameter):
            raise TypeError(f"{what}: only parameter and state leaves hold values to save, got {leaf!r:.80}")
        if id(leaf) in seen:
            continue
        seen.add(id(leaf))
        if leaf.name in names:
            raise ValueError(f"{what}: two different leaves are named {leaf.name!r}; checkpoints key arrays by "
                             f"name, so give them distinct names")
        _member(leaf, what)
        names[leaf.name] = leaf
        result.append(leaf)
    return result


def _member(leaf: Node, what: str) -> str:
    """The archive member holding a leaf, ``<name>.npy``, or a ValueError if a zip file cannot hold that name."""
    member = f"{leaf.name}.npy"
    if zipfile.ZipInfo(member).filename != member:
        raise ValueError(f"{what}: leaf name {leaf.name!r} cannot be a checkpoint key (a zip archive "
                         f"stores it as {zipfile.ZipInfo(member).filename[:-4]!r}); rename the leaf")
    return member


def save_params(leaves, path) -> str:
    """Write the leaves' values to the ``.npz`` file ``path`` (exactly that path; no
    suffix is added), atomically: a temporary file in the same directory is
    written, fsynced and renamed over ``path``. Returns the path.

    ``leaves``: parameter/state nodes (a node, a list, a mapping of nodes, or an
    object with ``.parameters``/``.state``). Names must be unique. Temporary files
    of ``path`` left by a process killed during a save are removed first (see the
    module docstring).
    """
    return _write(_leaves(leaves, "save_params"), os.fspath(path), None, "save_params")


def _write(leaves: list[Node], path: str, record: dict | None, what: str) -> str:
    """Write the leaves (and fit's ``record``) to ``path`` atomically."""
    members = [(_member(leaf, what), leaf) for leaf in leaves]

    def write(f):
        # zipfile + write_array is what np.savez does, without its reserved keyword names
        # ("file", "allow_pickle"), which would collide with leaf names
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for member, leaf in members:
                with zf.open(member, "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, host_array(leaf.value), allow_pickle=False)
            if record is not None:
                zf.writestr(_RECORD, json.dumps(record))

    return atomic_write(path, write, what, "checkpoint")


def _read(path: str, what: str) -> tuple[dict[str, np.ndarray], dict | None]:
    """Every leaf array of the checkpoint by name, fully read (so a bad CRC or a short member
    shows here), and fit's record (None when the file has none)."""
    try:
        with open(path, "rb") as f:
            if f.read(6) == b"\x93NUMPY":
                raise ValueError("it holds a single .npy array, not an .npz archive")
            f.seek(0)
            with zipfile.ZipFile(f) as zf:
                return _read_members(zf)
    except FileNotFoundError:
        raise ValueError(f"{what}: checkpoint {path!r} does not exist") from None
    except Exception as e:  # BadZipFile, EOFError, pickle refusal, bad header...: all mean "not a checkpoint"
        raise ValueError(f"{what}: {path!r} is not a readable .npz checkpoint "
                         f"(truncated or corrupt?): {type(e).__name__}: {e}") from e


def _read_members(zf: zipfile.ZipFile) -> tuple[dict[str, np.ndarray], dict | None]:
    arrays, record = {}, None
    for member in zf.namelist():
        with zf.open(member) as f:
            if member.endswith(".npy"):
                arrays[member[: -len(".npy")]] = np.lib.format.read_array(f, allow_pickle=False)
            elif member == _RECORD:
                record = json.loads(f.read())
    return arrays, record


def load_params(leaves, path, strict: bool = False) -> None:
    """Read values saved by :func:`save_params` back into the leaves' ``.value``.

    Every leaf's name must be in the file, with the same shape and a dtype that
    converts to the leaf's without changing kind (``same_kind``: float64 into
    float32 is allowed, float into int is not) nor any value (1e300 into float32
    is refused). Extra arrays in the file are ignored, unless ``strict=True``.
    Raises ``ValueError`` naming the file and the leaf for a missing, truncated,
    corrupt or mismatched file; everything is checked before anything is
    assigned, so on error no value changes.
    """
    path = os.fspath(path)
    _assign(_leaves(leaves, "load_params"), _read(path, "load_params")[0], path, strict, "load_params")


def _assign(leaves: list[Node], arrays: dict, path: str, strict: bool, what: str) -> None:
    """Check every leaf's array, then assign them all (or none)."""
    values = [_checked(leaf, arrays, path, what) for leaf in leaves]
    if strict:
        extra = sorted(set(arrays) - {leaf.name for leaf in leaves})
        if extra:
            raise ValueError(f"{what}: checkpoint {path!r} holds arrays for no given leaf: {', '.join(extra)}")
    for leaf, value in zip(leaves, values):
        leaf.value = value


def _checked(leaf: Node, arrays: dict, path: str, what: str) -> np.ndarray:
    """The checkpoint's array for ``leaf``, converted to its dtype, or a ValueError naming the leaf."""
    if leaf.name not in arrays:
        raise ValueError(f"{what}: checkpoint {path!r} has no array for leaf {leaf.name!r} "
                         f"(it has: {', '.join(sorted(arrays)) or 'nothing'})")
    saved, current = arrays[leaf.name], host_array(leaf.value)
    if saved.shape != current.shape:
        raise ValueError(f"{what}: leaf {leaf.name!r} has shape {current.shape}, but checkpoint "
                         f"{path!r} holds shape {saved.shape}")
    if not np.can_cast(saved.dtype, current.dtype, "same_kind"):
        raise ValueError(f"{what}: leaf {leaf.name!r} is {current.dtype}, but checkpoint {path!r} "
                         f"holds {saved.dtype} data, which does not convert to it")
    return _exact_array(saved, current.dtype, f"{what}: leaf {leaf.name!r} from checkpoint {path!r}")


# -- the training loop --------------------------------------------------------------------


@dataclasses.dataclass
class Checkpoint:
    """Where and how often ``fit`` saves: the leaves (as :func:`save_params` does) and
    fit's progress, after every ``every``-th epoch and after the last one.
    ``fit(checkpoint=(path, leaves))`` is shorthand for ``Checkpoint(path, leaves)``.
    ``fit`` checks that the directory exists and is writable before the first epoch.
    For ``fit(..., resume=True)``, give every leaf the step changes: parameters,
    optimizer state, running statistics, random keys (``sg.parameters_of([loss,
    *updates.values()], trainable=None)`` lists them)."""

    path: str | os.PathLike
    leaves: object
    every: int = 1


class _Progress:
    """One status line per epoch. On a TTY the line is redrawn in place with ``\\r``
    while the epoch runs (at most every ``interval`` seconds); elsewhere (files,
    pipes, CI logs) only the finished line is written."""

    def __init__(self, stream, epochs: int, n: int, interval: float = 0.1):
        self.stream, self.epochs, self.n, self.interval = stream, epochs, n, interval
        try:
            self.tty = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            self.tty = False
        self.width = len(str(epochs))
        self.drawn = 0  # length of the line currently on screen (TTY only)
        self.last = 0.0

    def _draw(self, text: str, end: str = ""):
        pad = " " * max(0, self.drawn - len(text))
        self.stream.write(("\r" if self.tty else "") + text + pad + end)
        self.stream.flush()
        self.drawn = 0 if end else len(text)

    def update(self, epoch: int, seen: int, loss: float, elapsed: float):
        now = time.perf_counter()
        if not self.tty or (now - self.last < self.interval and seen < self.n):
            return
        self.last = now
        filled = 20 * seen // self.n
        bar = "=" * filled + (">" if filled < 20 else "") + " " * (19 - filled)
        rate = seen / elapsed if elapsed > 0 else float("inf")
        self._draw(f"epoch {epoch:>{self.width}}/{self.epochs} [{bar}] {seen}/{self.n}  "
                   f"loss {loss:.4f}  {rate:,.0f} samples/s")

    def end_epoch(self, epoch: int, loss: float, metric, seconds: float, rate: float):
        text = f"epoch {epoch:>{self.width}}/{self.epochs}  loss {loss:.4f}"
        if metric is not None:
            text += f"  eval {metric:.4f}" if isinstance(metric, float) else f"  eval {metric}"
        self._draw(text + f"  {seconds:.2f}s  {rate:,.0f} samples/s", end="\n")

    def close(self):
        if self.drawn:  # interrupted mid-epoch: leave the cursor on a fresh line
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = 0


def _loss_of(result) -> float:
    if isinstance(result, (list, tuple)):
        if not result:
            raise ValueError("fit: step returned an empty list; it must return the loss (or a list starting with it)")
        result = result[0]
    if result is None:
        raise ValueError("fit: step returned None; it must return the loss (or a list starting with it)")
    return float(np.mean(result))  # a scalar, or per-sample losses (reduction="none")


def fit(step, data, epochs: int, batch_size: int, shuffle: bool = True, seed=None, eval_fn=None,
        progress: bool = True, checkpoint=None, stream=None, resume: bool = False) -> dict:
    """Train by calling ``step`` on mini-batches of ``data`` until ``epochs`` epochs are done.

    ``data``: a tuple of arrays (or one array) with the same length along axis 0;
    each mini-batch of ``batch_size`` rows (the last one may be smaller) is passed
    to ``step`` positionally, in the tuple's order. ``step`` (typically a function
    compiled with ``updates``) returns the loss, a scalar or an array (averaged),
    or a list/tuple whose first element is the loss.

    ``shuffle``: a new random order every epoch, from ``np.random.default_rng(seed)``
    (same seed, same orders); ``shuffle=False`` keeps the data's order.
    ``eval_fn``: called with no arguments after each epoch; its result (a number,
    e.g. validation accuracy, stored as a float when it converts to one) goes to
    ``history["eval"]`` and the progress line.
    ``progress``: print one line per epoch (loss, eval, time, samples/s) to
    ``stream`` (default ``sys.stderr``); on a TTY the line is redrawn in place
    with a bar while the epoch runs. ``progress=False`` prints nothing.
    ``checkpoint``: ``(path, leaves)`` or a :class:`Checkpoint`; the leaves and the
    number of finished epochs and shuffling state are saved atomically after every
    ``every``-th epoch and after the last.
    ``resume``: continue from the checkpoint file if it exists: restore its leaves
    (all of the checkpoint's leaves, and only those, must be in it, with their
    shapes), the number of finished epochs and the shuffling state (which takes
    the place of ``seed``), then run only the remaining epochs up to ``epochs``.
    A run resumed in a new process, from a model built the same way, ends with
    the same values, bit for bit, as a run that was never interrupted. Without a
    checkpoint file, training starts from scratch. When the step is a compiled
    function, every leaf it updates must be in the checkpoint (otherwise the
    resumed run would restart, say, Adam's moments).

    Returns the history: ``{"epoch": [1, 2, ...], "loss": [...]`` (mean loss per
    sample, each batch's loss weighted by its size), ``"time": [...]`` (seconds of
    training per epoch, without evaluation or checkpointing), ``"samples_per_sec":
    [...]``, and ``"eval": [...]`` when ``eval_fn`` is given ``}``. With
    ``resume=True`` it covers the epochs this call ran, under their numbers in
    the whole run (``[4, 5, 6]`` after a checkpoint at epoch 3), and
    ``history["resumed_from"]`` is the number of epochs the checkpoint had
    finished (0 when there was no checkpoint file; ``epochs`` or more when
    nothing was left to run, and the lists are empty).
    """
    arrays = _check_data(data)
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"fit: batch_size must be a positive int, got {batch_size!r}")
    checkpoint, leaves = _checkpoint_leaves(checkpoint, step, resume)
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    out = sys.stderr if stream is None else stream
    done = _resume(checkpoint, leaves, rng, n, epochs, out if progress else None) if resume else 0
    history = {"epoch": [], "loss": [], "time": [], "samples_per_sec": []}
    if eval_fn is not None:
        history["eval"] = []
    if resume:
        history["resumed_from"] = done
    bar = _Progress(out, epochs, n) if progress else None
    try:
        for epoch in range(done + 1, epochs + 1):
            order = rng.permutation(n) if shuffle else None
            loss, seconds = _run_epoch(step, arrays, order, batch_size, bar, epoch)
            rate = n / seconds if seconds > 0 else float("inf")
            history["epoch"].append(epoch)
            history["loss"].append(loss)
            history["time"].append(seconds)
            history["samples_per_sec"].append(rate)
            metric = None
            if eval_fn is not None:
                metric = eval_fn()
                try:
                    metric = float(metric)
                except (TypeError, ValueError):
                    pass
                history["eval"].append(metric)
            if bar:
                bar.end_epoch(epoch, loss, metric, seconds, rate)
            if checkpoint is not None and (epoch % checkpoint.every == 0 or epoch == epochs):
                record = {"epochs_done": epoch, "samples": n, "shuffle_state": rng.bit_generator.state}
                _write(leaves, os.fspath(checkpoint.path), record, "fit")
    finally:
        if bar:
            bar.close()
    return history


def _run_epoch(step, arrays, order, batch_size, bar, epoch) -> tuple[float, float]:
    """Call ``step`` on every mini-batch, in ``order`` (None: the data's): (mean loss per sample, seconds)."""
    n = len(arrays[0])
    total, start = 0.0, time.perf_counter()
    for lo in range(0, n, batch_size):
        hi = min(lo + batch_size, n)
        batch = [a[lo:hi] for a in arrays] if order is None else [a[order[lo:hi]] for a in arrays]
        total += _loss_of(step(*batch)) * (hi - lo)
        if bar:
            bar.update(epoch, hi, total / hi, time.perf_counter() - start)
    return total / n, time.perf_counter() - start


def _checkpoint_leaves(checkpoint, step, resume: bool) -> tuple[Checkpoint | None, list[Node]]:
    """The checkpoint (a Checkpoint or a (path, leaves) tuple) and its leaves, checked before the first epoch."""
    if checkpoint is None:
        if resume:
            raise ValueError("fit: resume=True needs a checkpoint to resume from (checkpoint=Checkpoint(path, leaves))")
        return None, []
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(*checkpoint)
    if not isinstance(checkpoint.every, (int, np.integer)) or checkpoint.every < 1:
        raise ValueError(f"fit: checkpoint.every must be a positive int, got {checkpoint.every!r}")
    leaves = _leaves(checkpoint.leaves, "fit")
    check_target(os.fspath(checkpoint.path), "fit", "checkpoint")
    if resume:
        held = {id(leaf) for leaf in leaves}
        missing = [leaf.name for leaf in _updated_leaves(step) if id(leaf) not in held]
        if missing:
            raise ValueError(f"fit: the checkpoint does not hold {', '.join(map(repr, missing))}, which step updates; "
                             f"a resumed run would restart them. Checkpoint every leaf the step changes "
                             f"(sg.parameters_of([loss, *updates.values()], trainable=None) lists them)")
    return checkpoint, leaves


def _updated_leaves(step) -> list[Node]:
    """The leaves a compiled step updates (its ``updates``: a dict or (leaf, value) pairs); none for other callables."""
    updates = getattr(step, "updates", None)
    if isinstance(updates, Mapping):
        return list(updates)
    try:
        return [leaf for leaf, _ in updates]
    except (TypeError, ValueError):
        return []


def _resume(checkpoint: Checkpoint, leaves, rng, n: int, epochs: int, stream) -> int:
    """Restore the leaves and the shuffling state from the checkpoint file, if there is one;
    returns the number of epochs it had finished (0 without a file)."""
    path = os.fspath(checkpoint.path)
    if not os.path.exists(path):
        return 0
    what = "fit(resume=True)"
    arrays, record = _read(path, what)
    if record is None:
        raise ValueError(f"{what}: checkpoint {path!r} holds no training progress (it was written by save_params, "
                         f"not fit); load it with sg.load_params and call fit without resume")
    try:
        done, samples = int(record["epochs_done"]), int(record["samples"])
        rng.bit_generator.state = record["shuffle_state"]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{what}: checkpoint {path!r} holds an unreadable training record ({e!r})") from None
    if samples != n:
        raise ValueError(f"{what}: checkpoint {path!r} was written while training on {samples} samples, "
                         f"but data holds {n}")
    _assign(leaves, arrays, path, True, what)
    if stream is not None:
        left = f"{epochs - done} epoch(s) left" if done < epochs else "nothing left to train"
        stream.write(f"resumed from {path} after epoch {done} of {epochs}: {left}\n")
    return done


def _check_data(data) -> list[np.ndarray]:
    if isinstance(data, np.ndarray):
        data = (data,)
    if not isinstance(data, (tuple, list)) or not data:
        raise TypeError(f"fit: data must be a tuple of arrays (or one array), got {type(data).__name__}")
    arrays = [np.asarray(a) for a in data]
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"fit: data[{i}] is a scalar; every array needs a leading sample axis")
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) > 1:
        shown = ", ".join(f"data[{i}]: {a.shape}" for i, a in enumerate(arrays))
        raise ValueError(f"fit: the arrays in data have different lengths along axis 0 ({shown})")
    if lengths[0] == 0:
        raise ValueError("fit: data holds no samples")
    return arrays

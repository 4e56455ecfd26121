"""The training loop and checkpoints: ``fit``, ``save_params``, ``load_params``.

``fit`` is a short, boring loop: split the data into mini-batches (reshuffled
every epoch by a seeded NumPy ``Generator``), call the compiled ``step`` on each
batch, average the losses, optionally evaluate, print one progress line and
save a checkpoint. Everything that trains lives in ``step`` (the compiled
forward, backward and update); this module only feeds it.

Checkpoints are ``.npz`` files holding one array per leaf, keyed by the leaf's
name. ``save_params`` writes a temporary file in the target's directory,
fsyncs it and renames it over the target (``os.replace``), so an interrupted
save leaves the previous checkpoint intact. ``load_params`` validates the whole
file before it assigns anything, so a bad file changes no value.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping

import numpy as np

from .graph import Node, Parameter

__all__ = ["Checkpoint", "fit", "load_params", "save_params"]


# -- checkpoints --------------------------------------------------------------------------


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
        names[leaf.name] = leaf
        result.append(leaf)
    return result


def save_params(leaves, path) -> str:
    """Write the leaves' values to the ``.npz`` file ``path`` (exactly that path; no
    suffix is added), atomically: a temporary file in the same directory is
    written, fsynced and renamed over ``path``. Returns the path.

    ``leaves``: parameter/state nodes (a node, a list, a mapping of nodes, or an
    object with ``.parameters``/``.state``). Names must be unique.
    """
    leaves = _leaves(leaves, "save_params")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # zipfile + write_array is what np.savez does, without its reserved keyword names
            # ("file", "allow_pickle"), which would collide with leaf names
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for leaf in leaves:
                    with zf.open(f"{leaf.name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(leaf.value), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # an ordinary data file, not mkstemp's private 0600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX); not possible everywhere
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of the checkpoint, fully read (so a bad CRC or a short member shows here)."""
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single .npy array, not an .npz archive")
        with npz:
            return {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise ValueError(f"load_params: checkpoint {path!r} does not exist") from None
    except Exception as e:  # BadZipFile, EOFError, pickle refusal, bad header...: all mean "not a checkpoint"
        raise ValueError(f"load_params: {path!r} is not a readable .npz checkpoint "
                         f"(truncated or corrupt?): {type(e).__name__}: {e}") from e


def load_params(leaves, path, strict: bool = False) -> None:
    """Read values saved by :func:`save_params` back into the leaves' ``.value``.

    Every leaf's name must be in the file, with the same shape and a dtype that
    converts to the leaf's without changing kind (``same_kind``: float64 into
    float32 is allowed, float into int is not). Extra arrays in the file are
    ignored, unless ``strict=True``. Raises ``ValueError`` naming the file and
    the leaf for a missing, truncated, corrupt or mismatched file; everything is
    checked before anything is assigned, so on error no value changes.
    """
    leaves = _leaves(leaves, "load_params")
    path = os.fspath(path)
    arrays = _read_npz(path)
    for leaf in leaves:
        if leaf.name not in arrays:
            raise ValueError(f"load_params: checkpoint {path!r} has no array for leaf {leaf.name!r} "
                             f"(it has: {', '.join(sorted(arrays)) or 'nothing'})")
        saved, current = arrays[leaf.name], np.asarray(leaf.value)
        if saved.shape != current.shape:
            raise ValueError(f"load_params: leaf {leaf.name!r} has shape {current.shape}, but checkpoint "
                             f"{path!r} holds shape {saved.shape}")
        if not np.can_cast(saved.dtype, current.dtype, "same_kind"):
            raise ValueError(f"load_params: leaf {leaf.name!r} is {current.dtype}, but checkpoint {path!r} "
                             f"holds {saved.dtype} data, which does not convert to it")
    if strict:
        extra = sorted(set(arrays) - {leaf.name for leaf in leaves})
        if extra:
            raise ValueError(f"load_params: checkpoint {path!r} holds arrays for no given leaf: {', '.join(extra)}")
    for leaf in leaves:
        leaf.value = arrays[leaf.name]


# -- the training loop --------------------------------------------------------------------


@dataclasses.dataclass
class Checkpoint:
    """Where and how often ``fit`` saves: ``save_params(leaves, path)`` after every
    ``every``-th epoch and after the last one. ``fit(checkpoint=(path, leaves))`` is
    shorthand for ``Checkpoint(path, leaves)``."""

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
        progress: bool = True, checkpoint=None, stream=None) -> dict:
    """Train by calling ``step`` on mini-batches of ``data`` for ``epochs`` epochs.

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
    ``checkpoint``: ``(path, leaves)`` or a :class:`Checkpoint`; the leaves are
    saved atomically with :func:`save_params` after every ``every``-th epoch and
    after the last.

    Returns the history: ``{"epoch": [1, 2, ...], "loss": [...]`` (mean loss per
    sample, each batch's loss weighted by its size), ``"time": [...]`` (seconds of
    training per epoch, without evaluation or checkpointing), ``"samples_per_sec":
    [...]``, and ``"eval": [...]`` when ``eval_fn`` is given ``}``.
    """
    arrays = _check_data(data)
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"fit: batch_size must be a positive int, got {batch_size!r}")
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(*checkpoint)
    if checkpoint is not None and (not isinstance(checkpoint.every, (int, np.integer)) or checkpoint.every < 1):
        raise ValueError(f"fit: checkpoint.every must be a positive int, got {checkpoint.every!r}")
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    history = {"epoch": [], "loss": [], "time": [], "samples_per_sec": []}
    if eval_fn is not None:
        history["eval"] = []
    bar = _Progress(sys.stderr if stream is None else stream, epochs, n) if progress else None
    try:
        for epoch in range(1, epochs + 1):
            order = rng.permutation(n) if shuffle else None
            total, seen, start = 0.0, 0, time.perf_counter()
            for lo in range(0, n, batch_size):
                hi = min(lo + batch_size, n)
                batch = [a[order[lo:hi]] for a in arrays] if shuffle else [a[lo:hi] for a in arrays]
                total += _loss_of(step(*batch)) * (hi - lo)
                seen = hi
                if bar:
                    bar.update(epoch, seen, total / seen, time.perf_counter() - start)
            seconds = time.perf_counter() - start
            rate = n / seconds if seconds > 0 else float("inf")
            history["epoch"].append(epoch)
            history["loss"].append(total / n)
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
                bar.end_epoch(epoch, total / n, metric, seconds, rate)
            if checkpoint is not None and (epoch % checkpoint.every == 0 or epoch == epochs):
                save_params(checkpoint.leaves, checkpoint.path)
    finally:
        if bar:
            bar.close()
    return history


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

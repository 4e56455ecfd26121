"""Out-lowering: a fused elementwise expression as a short sequence of ufunc calls writing into
buffers, so that evaluating it allocates no temporary array.

``np.divide(step_size * m, 1e-08 + np.sqrt(v) / c, out=buf)`` makes four temporaries the size
of ``m``; lowered, it is five calls, each with ``out=`` the line's buffer or a scratch buffer::

    np.multiply(step_size, m, out=buf1)
    np.sqrt(v, out=buf2)
    np.divide(buf2, c, out=buf2)
    np.add(1e-08, buf2, out=buf2)
    np.divide(buf1, buf2, out=buf1)

The printer turns the SymPy expression into a tree of :class:`Op` (one ufunc each, n-ary sums
and products folded left as the plain expression associates them) over :class:`Leaf` operands
(an argument, a number, or a subexpression smaller than the result, such as a scalar factor,
left for NumPy to evaluate). :meth:`Lowered.steps` orders the calls the Sethi-Ullman way: of two
compound operands the one needing more registers first, into the line's buffer, the other into
a scratch buffer, so scratch buffers appear only where two compound operands meet. Register 0
is the line's buffer; 1, 2, ... are scratch buffers the memory plan supplies.

Aliasing. The line's buffer may be the memory of some of its arguments (an input read for the
last time on that line, or the state a new value is written into); the memory plan names their
positions. The order then keeps every read of those arguments no later than the first write
into the line's buffer: a call may read and write the same memory (ufuncs allow that), but the
operand computed into the line's buffer goes last, and an operand that reads such an argument is
computed into a scratch buffer first.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

OUT = 0  # the register of the line's own buffer


@dataclass(frozen=True)
class Leaf:
    """An operand written as it is: an argument's code, a number, or a small subexpression."""

    text: str
    reads: frozenset = frozenset()  # the argument positions it reads
    rows: bool = False  # an array with the value's rows: sliced with them when the value is computed in blocks
    compound: bool = False  # an expression of arguments (evaluated again for each block, so never blocked)


@dataclass(frozen=True)
class Blocks:
    """Compute the value ``rows`` rows (of ``total``) at a time: every call on a block, then the next
    block. The block's operands and scratch buffers stay in cache, so the calls make one pass over
    memory instead of one each (``rows`` divides ``total``)."""

    rows: int
    total: int


@dataclass(frozen=True)
class Op:
    """One ufunc call ``fn(*operands)``; ``boolean`` when its result is a truth value (a comparison)."""

    fn: str
    operands: tuple
    boolean: bool = False

    @functools.cached_property
    def reads(self) -> frozenset:
        return frozenset().union(*(o.reads for o in self.operands))

    @functools.cached_property
    def need(self) -> int:
        """Registers needed to compute it into one, that one included (Sethi-Ullman number)."""
        subs = sorted((o.need for o in self.operands if isinstance(o, Op)), reverse=True)
        if len(subs) < 2:
            return subs[0] if subs else 1
        return max(subs[0], subs[1] + 1)

    @property
    def calls(self) -> int:
        return 1 + sum(o.calls for o in self.operands if isinstance(o, Op))


@dataclass(frozen=True)
class Step:
    fn: str
    operands: tuple  # Leaf or register number
    dest: int


class _Registers:
    """Scratch registers 1, 2, ...: each is reused once free; ``kinds`` says which hold truth values."""

    def __init__(self):
        self.kinds: list[bool] = []  # per scratch register: boolean?
        self.free: list[int] = []

    def take(self, boolean: bool) -> int:
        for r in self.free:
            if self.kinds[r - 1] == boolean:
                self.free.remove(r)
                return r
        self.kinds.append(boolean)
        return len(self.kinds)

    def give(self, r: int):
        if r != OUT:
            self.free.append(r)


@dataclass(frozen=True)
class Lowered:
    """A value computed by a sequence of ufunc calls into the line's buffer (see the module doc).

    ``expression`` is the plain expression it computes, for the line's comment.
    """

    tree: Op
    expression: str
    blocks: Blocks | None = None  # when the value is large (see Blocks)

    def steps(self, aliased: frozenset = frozenset()) -> tuple[tuple[Step, ...], tuple[bool, ...]]:
        """(the calls, whether each scratch register holds truth values) when the arguments at the
        positions ``aliased`` share the line's buffer."""
        steps: list[Step] = []
        registers = _Registers()
        _emit(self.tree, OUT, aliased, registers, steps)
        return tuple(steps), tuple(registers.kinds)

    def mapped(self, text) -> Lowered:
        """The same calls with the text of each leaf, and the expression, passed through ``text``: a form
        built once per expression (with placeholders for the arguments) filled in for one node."""
        return Lowered(_mapped(self.tree, text), text(self.expression))

    def scratch_kinds(self, aliased: frozenset) -> tuple[bool, ...]:
        return self.steps(aliased)[1]

    def leaves(self):
        """Every operand the calls read that is not another call's result."""
        return _leaves(self.tree)

    def blocked(self, out: str, aliased: frozenset) -> Blocks | None:
        """The blocks, unless an argument that shares the line's buffer is not that very array
        (a view of it in another order would be read after a block of it is written)."""
        if self.blocks is None or any(leaf.reads & aliased and not (leaf.rows and leaf.text == out)
                                      for leaf in _leaves(self.tree)):
            return None
        return self.blocks

    def scratch_shape(self, shape: tuple, out: str, aliased: frozenset) -> tuple:
        """The shape of its scratch buffers: the value's, or one block's."""
        blocks = self.blocked(out, aliased)
        return shape if blocks is None else (blocks.rows, *shape[1:])

    def lines(self, out: str, scratch: tuple[str, ...], aliased: frozenset) -> list[str]:
        """One line per call; the last one computes the value (the caller may bind a name to it).
        In blocks: a loop over them, the calls inside on slices, then ``out`` alone."""
        blocks = self.blocked(out, aliased)
        rows = "" if blocks is None else f"[_i:_i + {blocks.rows}]"
        names = (out + rows, *scratch)

        def text(operand):
            if isinstance(operand, Leaf):
                return operand.text + rows if operand.rows else operand.text
            return names[operand]

        calls = [f"{s.fn}({', '.join(map(text, s.operands))}, out={names[s.dest]})" for s in self.steps(aliased)[0]]
        if blocks is None:
            return calls
        loop = (f"for _i in range(0, {blocks.total}, {blocks.rows}):  # {blocks.rows} rows at a time, "
                f"so that these calls run in cache")
        return [loop, *("    " + c for c in calls), out]


def _leaves(t: Op):
    for o in t.operands:
        if isinstance(o, Op):
            yield from _leaves(o)
        else:
            yield o


def _mapped(t: Op, text) -> Op:
    return Op(t.fn, tuple(_mapped(o, text) if isinstance(o, Op) else dataclasses.replace(o, text=text(o.text))
                          for o in t.operands), t.boolean)


def _emit(t: Op, dest: int, aliased: frozenset, registers: _Registers, steps: list[Step]):
    """Append the calls computing ``t`` into register ``dest``, reading no argument in ``aliased``
    (those whose memory is ``dest``) after ``dest`` is first written."""
    placed = list(t.operands)
    compound = [k for k, o in enumerate(t.operands) if isinstance(o, Op)]
    scratch = []
    if len(compound) == 2:
        first, second = sorted(compound, key=lambda k: -t.operands[k].need)
        if t.operands[second].reads & aliased:
            first, second = second, first
        if t.operands[second].reads & aliased:  # both read it: the first into scratch, dest written last
            scratch.append(_into_scratch(t.operands[first], registers, steps))
            placed[first] = scratch[-1]
            _emit(t.operands[second], dest, aliased, registers, steps)
            placed[second] = dest
        else:
            _emit(t.operands[first], dest, aliased, registers, steps)
            placed[first] = dest
            scratch.append(_into_scratch(t.operands[second], registers, steps))
            placed[second] = scratch[-1]
    elif compound:
        (k,) = compound
        leaves_read = frozenset().union(*(o.reads for o in t.operands if isinstance(o, Leaf)))
        if leaves_read & aliased:  # dest must not be written before this call reads those leaves
            scratch.append(_into_scratch(t.operands[k], registers, steps))
            placed[k] = scratch[-1]
        else:
            _emit(t.operands[k], dest, aliased, registers, steps)
            placed[k] = dest
    steps.append(Step(t.fn, tuple(placed), dest))
    for r in scratch:
        registers.give(r)


def _into_scratch(t: Op, registers: _Registers, steps: list[Step]) -> int:
    # a truth value gets a boolean register only when it is one call (its operands are no registers)
    r = registers.take(t.boolean and t.calls == 1)
    _emit(t, r, frozenset(), registers, steps)
    return r

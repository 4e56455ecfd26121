"""What every backend's printer shares: printed code with its precedence, and the dispatch to
one ``_print_<Op>`` method per op class (SymPy's printer design).

A printed expression is a :class:`Code`: its text and the precedence of its
outermost operator, so operands are parenthesized only where Python needs it. A
form that writes into a given buffer is a :class:`Call`; the memory plan picks
the buffer later, so the text is only finished when the module is assembled.
"""

from __future__ import annotations

from dataclasses import dataclass

ATOM, POWER, UNARY, TERM, SUM, COMPARE = 16, 14, 13, 12, 11, 6


@dataclass(frozen=True)
class Code:
    text: str
    prec: int = ATOM
    literal: bool = False  # a Python number: has no array methods
    dims: tuple[str, ...] | None = None  # code for each dimension, for a value that is never computed


@dataclass(frozen=True)
class Call:
    """``fn(*args, out=<buffer>)``: a value written into a buffer the memory plan chooses."""

    fn: str
    args: tuple[str, ...]

    def text(self, out: str) -> str:
        return f"{self.fn}({', '.join(self.args)}, out={out})"

    def scratch_kinds(self, aliased: frozenset) -> tuple[bool, ...]:
        """The scratch buffers it needs (see :class:`codegen.lowering.Lowered`): none."""
        return ()

    def lines(self, out: str, scratch: tuple[str, ...], aliased: frozenset) -> list[str]:
        return [self.text(out)]


class Printer:
    """Base of the printers: dispatch, precedence and the helpers the printed code calls.

    ``helpers`` collects the helper kernels the code calls; ``pending`` the statements an
    expression needs first (``(name, code)``); ``temp_name`` and ``constant_array`` are
    supplied by the scheduler (unique names; read-only arrays of zeros or ones).
    """

    module = "np"

    def __init__(self):
        self.helpers: set[str] = set()
        self.pending: list[tuple[str, str]] = []
        self.temp_name = lambda: f"shared{len(self.pending) + 1}"
        self.constant_array = None

    def print(self, node, args: list[Code]) -> Code:
        method = getattr(self, f"_print_{type(node.op).__name__}", None)
        if method is None:
            raise NotImplementedError(f"{type(self).__name__} cannot print op {node.op.name}")
        return method(node, *args)

    def out_call(self, node, args: list[Code]) -> Call | None:
        """The node as one call writing into a buffer (``_out_<Op>``), or None if it has no such form."""
        if not node.op.writes_into:
            return None
        method = getattr(self, f"_out_{type(node.op).__name__}", None)
        return None if method is None else method(node, *args)

    def folds_gemm(self, step) -> bool:
        """Whether an update ``w -= step`` of the matrix product ``step`` is one call
        (:meth:`gemm_update`) that adds the product into ``w``: none by default."""
        return False

    def wrap(self, code: Code, prec: int) -> str:
        return code.text if code.prec >= prec else f"({code.text})"

    def call(self, fn: str, *args: str) -> Code:
        return Code(f"{fn}({', '.join(args)})")

    def helper(self, name: str, *args: str) -> Code:
        self.helpers.add(name)
        return self.call(name, *args)

    def binary(self, a: Code, op: str, b: Code, prec: int, right_assoc: bool = False) -> Code:
        left = self.wrap(a, prec + 1 if right_assoc else prec)
        right = self.wrap(b, prec if right_assoc else prec + 1)
        return Code(f"{left} {op} {right}", prec)

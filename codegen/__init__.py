"""codegen: compile symgraph graphs into readable NumPy modules.

``codegen.compile(inputs, outputs, updates=None)`` returns a callable with a
``.source`` (the generated module) and ``.save(path)``.
"""

from .function import CompiledFunction, compile, evaluate  # noqa: A004
from .printer import NumPyPrinter

__all__ = ["CompiledFunction", "NumPyPrinter", "compile", "evaluate"]

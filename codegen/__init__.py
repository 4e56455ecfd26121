"""codegen: compile symgraph graphs into readable NumPy modules.

``codegen.compile(inputs, outputs, updates=None)`` returns a callable with a
``.source`` (the generated module) and ``.save(path)``. The generator is a
pipeline of passes (:mod:`.schedule`, :mod:`.memory`, :mod:`.module`) over a
backend (:mod:`.backends`) that owns the printers, imports and helpers.
"""

from .backends import NumPyPrinter
from .function import CompiledFunction, compile, evaluate  # noqa: A004

__all__ = ["CompiledFunction", "NumPyPrinter", "compile", "evaluate"]

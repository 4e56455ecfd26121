"""symgraph: a symbol-to-symbol differentiation compiler for NumPy.

Declare a network as a static graph, ask for its gradient (or Jacobian-vector
products) as new graph nodes, and compile them with :mod:`codegen` into a
readable NumPy module. See DESIGN.md and the README for the whole story.
"""

from .autodiff import grad, jvp, vjp
from .errors import DTypeError, ShapeError
from .explore import explore
from .graph import (
    Graph, Node, Op, as_node, constant, current_graph, fresh_graph, parameter, parameters_of, placeholder, state,
    topo_sort,
)
from .jacobian import ModeReport, explain_mode, hessian, hvp, jacobian
from .inspect import count_ops, dprint, to_networkx
from .picture import ModeComparison, compare_modes, draw, to_dot
from .ops import (
    abs, binary_cross_entropy, floor, sign, broadcast_to, cast, concatenate, cos, elementwise, equal, exp, expand_dims,
    hard_tanh, leaky_relu, log, log_softmax, logsumexp, matmul, max, maximum, maxout, mean, minimum, mse, not_equal,
    one_hot, prelu, relu, reshape, sigmoid, sin, softmax, softmax_cross_entropy, softplus, sqrt, square, squeeze,
    next_key, random_key, random_uniform, std, step, stop_gradient, sum, tanh, transpose, var, where,
)
from .ops import avg_pool2d, conv2d, flatten, max_pool2d
# linear algebra (issue 16); the matrix trace is sg.matrix_trace (sg.trace is the backprop table)
from .ops import det, diag, diagonal, dot, einsum, inner, inv, norm, outer, slogdet, solve, tensordot
from .ops import trace as matrix_trace
from .ops import gather, take
from .ops import cholesky, eigh
from .ops import (  # issue 16: more elementwise built-ins
    arccos, arcsin, arcsinh, arctan, arctan2, arctanh, ceil, cosh, elu, erf, exp2, expm1, gelu, hypot, log10, log1p,
    log2, mod, reciprocal, selu, silu, sinh, swish, tan,
)
from .ops import argmax, argmin, logaddexp, min, prod  # issue 16 (redops)
from .ops import argsort, cumprod, cumsum, diff, sort
from .ops import clip, flip, moveaxis, pad, repeat, roll, split, stack, swapaxes, tile, tril, triu
from . import init, nn, optim, schedules
from .regularize import clip_by_global_norm, clip_by_value, ema, global_norm, l1_penalty, l2_penalty
from .simplify import SimplifyReport, simplify
from .train import Checkpoint, fit, load_params, save_params
from .trace import Row, Trace, trace

__version__ = "0.1.0"

__all__ = [
    "Checkpoint", "fit", "load_params", "save_params", "init", "nn", "optim", "schedules", "floor", "sign",
    "clip_by_global_norm", "clip_by_value", "ema", "global_norm", "l1_penalty", "l2_penalty",
    "DTypeError", "Graph", "ModeReport", "Node", "Op", "ShapeError", "SimplifyReport", "abs", "as_node",
    "binary_cross_entropy", "broadcast_to", "cast", "concatenate", "constant", "cos", "count_ops",
    "current_graph", "dprint", "elementwise", "equal", "exp", "explore", "expand_dims", "fresh_graph", "grad",
    "hard_tanh", "hessian", "hvp", "jacobian", "explain_mode", "jvp", "leaky_relu", "log", "log_softmax", "logsumexp", "matmul", "max", "maximum", "maxout",
    "mean", "minimum", "mse", "not_equal", "one_hot", "parameter", "placeholder", "prelu", "relu", "reshape",
    "next_key", "parameters_of", "random_key", "random_uniform", "sigmoid", "simplify", "state", "sin", "softmax", "softmax_cross_entropy", "softplus", "sqrt", "square",
    "squeeze", "step", "stop_gradient", "sum", "tanh", "to_dot", "to_networkx", "topo_sort", "trace", "Row", "Trace", "draw", "compare_modes", "ModeComparison", "transpose",
    "vjp", "where", "var", "std", "avg_pool2d", "conv2d", "flatten", "max_pool2d",
    # linear algebra (issue 16)
    "det", "diag", "diagonal", "dot", "einsum", "inner", "inv", "matrix_trace", "norm", "outer", "slogdet", "solve",
    "tensordot", "gather", "take", "cholesky", "eigh",
    # issue 16: more elementwise built-ins
    "arccos", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "ceil", "cosh", "elu", "erf", "exp2", "expm1",
    "gelu", "hypot", "log10", "log1p", "log2", "mod", "reciprocal", "selu", "silu", "sinh", "swish", "tan",
    # issue 16 (redops)
    "argmax", "argmin", "logaddexp", "min", "prod", "argsort", "cumprod", "cumsum", "diff", "sort",
    "clip", "flip", "moveaxis", "pad", "repeat", "roll", "split", "stack", "swapaxes", "tile", "tril", "triu",
]

"""Every op of symgraph, one class each, and the builders user code calls."""
# ruff: noqa: F401  (this module re-exports the op classes and builders)

from ..graph import Op
from .arith import (
    Add, Cast, Compare, Divide, Equal, Greater, GreaterEqual, Less, LessEqual, Maximum, Minimum, Multiply,
    Negative, NotEqual, Power, StopGradient, Subtract, Where, add, cast, divide, equal, greater, greater_equal,
    less, less_equal, maximum, minimum, multiply, negative, not_equal, power, stop_gradient, subtract, where,
)
from .conv import (
    AvgPool2D, AvgPool2DGrad, Conv2D, Conv2DFromColumns, Conv2DTranspose, Conv2DWeightGrad,
    Conv2DWeightGradFromColumns, ConvColumns, Flatten, MaxPool2D, MaxPool2DGrad, MaxPool2DPick, avg_pool2d, conv2d,
    flatten, max_pool2d,
)
from .linalg import MatMul, matmul
# linear algebra (issue 16)
from .linalg import (
    Det, Einsum, Inv, LogAbsDet, Norm, SignDet, Solve, det, diag, diagonal, dot, einsum, inner, inv, norm, outer,
    slogdet, solve, tensordot, trace,
)
from .linalg import Cholesky, EighValues, EighVectors, cholesky, eigh
from .index import Gather, Take, Ungather, Untake, gather, take
from .nn import AddAt, OneHot, Pick, Unpick, binary_cross_entropy, mse, one_hot, pick, softmax_cross_entropy
from .random import RandomUniform, next_key, random_key, random_uniform
from .reduce import (
    Count, LogSoftmax, LogSumExp, Max, Mean, Softmax, Sum, log_softmax, logsumexp, maxout, mean, reduce_max,
    reduce_sum, softmax, std, var,
)
from .scalar import (
    Elementwise, abs, cos, elementwise, exp, floor, hard_tanh, leaky_relu, log, prelu, relu, sigmoid, sign, sin, softplus,
    sqrt, square, step, tanh,
)
from .scalar import (  # issue 16: more elementwise built-ins
    arccos, arcsin, arcsinh, arctan, arctan2, arctanh, ceil, cosh, elu, erf, exp2, expm1, gelu, hypot, log10, log1p,
    log2, mod, reciprocal, selu, silu, sinh, swish, tan,
)
from .shape import (
    Basis, BroadcastTo, Concatenate, Embed, ExpandDims, GetItem, Reshape, Squeeze, Transpose, basis, broadcast_like,
    broadcast_to, concatenate, expand_dims, getitem, reshape, squeeze, transpose, zeros_like,
)

# issue 16 (redops): reductions, cumulative and ordering ops, arrays built from arrays
from .reduce import (
    ArgMax, ArgMin, LogAddExp, Min, Prod, argmax, argmin, logaddexp, prod, reduce_min,
)
from .order import ArgSort, CumProd, CumSum, PermuteAlong, argsort, cumprod, cumsum, diff, sort
from .arrange import clip, flip, moveaxis, pad, repeat, roll, split, stack, swapaxes, tile, tril, triu

sum = reduce_sum  # noqa: A001  (the public names shadow the builtins on purpose)
max = reduce_max  # noqa: A001
min = reduce_min  # noqa: A001


def op_classes() -> list[type[Op]]:
    """Every concrete op class (leaves included), for tests that walk the op set."""
    seen, stack = [], [Op]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    return sorted((c for c in seen if "name" in c.__dict__), key=lambda c: c.__name__)

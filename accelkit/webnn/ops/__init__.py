"""The WebNN operator families: each module holds its ops' checks, shape inference and execution.

Every module exports ``BUILDERS`` ({snake_case name: builder method}) and ``LIMITS`` ({op: {operand:
(data types, min rank, max rank)}}); the builder attaches the methods, ``op_support_limits`` reports
the limits.
"""

from __future__ import annotations

from . import (
    activations,
    conv,
    conversion,
    cumulative,
    elementwise,
    gather,
    matmul,
    normalization,
    pooling,
    reduction,
    resample,
    selection,
    shape,
)

MODULES = (
    elementwise,
    activations,
    matmul,
    conv,
    pooling,
    normalization,
    reduction,
    gather,
    shape,
    selection,
    conversion,
    cumulative,
    resample,
)

BUILDERS: dict = {}
LIMITS: dict = {}
for _m in MODULES:
    BUILDERS.update(_m.BUILDERS)
    LIMITS.update(_m.LIMITS)

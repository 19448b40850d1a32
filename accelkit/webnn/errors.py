"""The WebNN spec's error kinds, each also an ``accelkit.AccelkitError`` and the nearest Python builtin.

The spec throws ``TypeError`` for bad builder arguments and bad dispatch/read/write calls, and
``InvalidStateError`` / ``OperationError`` / ``NotSupportedError`` / ``DataError`` DOMExceptions
elsewhere. Catch them by the spec name (``webnn.MLTypeError``), by ``TypeError``/``RuntimeError``,
or by ``accelkit.AccelkitError``.
"""

from __future__ import annotations

from ..errors import AccelkitError


class MLTypeError(AccelkitError, TypeError):
    """A builder argument, descriptor, or dispatch/read/write argument that the spec rejects with TypeError."""


class DataError(AccelkitError, ValueError):
    """Data that does not fit what it is given to (the spec's DataError)."""


class InvalidStateError(AccelkitError, RuntimeError):
    """A builder that already built, a destroyed graph or context (the spec's InvalidStateError)."""


class OperationError(AccelkitError, RuntimeError):
    """A graph that could not be compiled for the device (the spec's OperationError)."""


class NotSupportedError(AccelkitError, NotImplementedError):
    """A context that cannot be created with the options asked for (the spec's NotSupportedError)."""


__all__ = ["DataError", "InvalidStateError", "MLTypeError", "NotSupportedError", "OperationError"]

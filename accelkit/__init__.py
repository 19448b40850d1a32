"""accelkit: run, inspect and measure transformer models (BERT, ViT, Whisper) on WebGPU from Python.

Importing accelkit opens no device; ``accelkit.device()`` picks and opens one on first use.

>>> import accelkit as ak
>>> x = ak.tensor([[1.0, 2.0], [3.0, 4.0]])
>>> (x @ x.T).numpy()

This is the top of the layering (DESIGN.md) and may import anything. Only ``errors`` is imported
eagerly; every other public name loads its subpackage on first use (PEP 562), so importing a low
layer (``accelkit.display``, ``accelkit.hardware``) does not pull in the layers above it.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

from .errors import (
    AccelkitError,
    ConfigError,
    DeviceError,
    DTypeError,
    InputError,
    KernelError,
    OutOfMemoryError,
    ShapeError,
    WeightsError,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs; at run time __getattr__ loads these
    from . import ops, sharing
    from .display import options
    from .graph import compile
    from .hardware import Device, device, devices
    from .pool import Pool
    from .profiler import profile
    from .tensor import DType, Tensor, arange, empty, float16, float32, full, int32, ones, tensor, zeros

__version__ = "0.1.0"

#: public name -> (module that defines it, attribute there; None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "ops": (".ops", None),
    "sharing": (".sharing", None),
    "Device": (".hardware", "Device"),
    "device": (".hardware", "device"),
    "devices": (".hardware", "devices"),
    "options": (".display", "options"),
    "compile": (".graph", "compile"),
    "Pool": (".pool", "Pool"),
    "profile": (".profiler", "profile"),
    **{
        name: (".tensor", name)
        for name in "DType Tensor arange empty float16 float32 full int32 ones tensor zeros".split()
    },
}


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'accelkit' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Accelkit(types.ModuleType):
    """The package module: ``ak.tensor`` stays the function even once the ``accelkit.tensor``
    subpackage is imported (the import system would otherwise bind the subpackage to that name)."""

    def __setattr__(self, name: str, value) -> None:
        if name == "tensor" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Accelkit


def load(source, device=None, dtype=None, **kwargs):
    """Load a model from a Hugging Face layout directory, ``"hf:org/name"``, or a bundled tiny checkpoint.

    See :func:`accelkit.models.auto.load`.
    """
    from .models.auto import load as _load

    return _load(source, device=device, dtype=dtype, **kwargs)


def load_ipython_extension(ipython):  # %load_ext accelkit
    from .notebook import load_ipython_extension as _load_ext

    _load_ext(ipython)


def unload_ipython_extension(ipython):  # %unload_ext accelkit
    from .notebook import unload_ipython_extension as _unload_ext

    _unload_ext(ipython)


__all__ = [
    "AccelkitError",
    "ConfigError",
    "DType",
    "DTypeError",
    "Device",
    "DeviceError",
    "InputError",
    "KernelError",
    "OutOfMemoryError",
    "Pool",
    "ShapeError",
    "Tensor",
    "WeightsError",
    "arange",
    "compile",
    "device",
    "devices",
    "empty",
    "float16",
    "float32",
    "full",
    "int32",
    "load",
    "ones",
    "ops",
    "options",
    "profile",
    "sharing",
    "tensor",
    "zeros",
]

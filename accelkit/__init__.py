"""accelkit: run, inspect and measure transformer models (BERT, ViT, Whisper) on WebGPU from Python.

Importing accelkit opens no device; ``accelkit.device()`` picks and opens one on first use.

>>> import accelkit as ak
>>> x = ak.tensor([[1.0, 2.0], [3.0, 4.0]])
>>> (x @ x.T).numpy()
"""

from __future__ import annotations

from . import ops
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
from .hardware import Device, device, devices
from .tensor import (
    DType,
    Tensor,
    arange,
    empty,
    float16,
    float32,
    full,
    int32,
    ones,
    tensor,
    zeros,
)

__version__ = "0.1.0"


def load(source, device=None, dtype=None, **kwargs):
    """Load a model from a Hugging Face layout directory, ``"hf:org/name"``, or a bundled tiny checkpoint.

    See :func:`accelkit.models.auto.load`.
    """
    from .models.auto import load as _load

    return _load(source, device=device, dtype=dtype, **kwargs)


def __getattr__(name):  # lazy, so that importing accelkit stays cheap and side-effect free
    if name == "Pool":
        from .pool import Pool

        return Pool
    if name == "options":
        from .notebook.options import options

        return options
    if name == "sharing":
        import importlib

        return importlib.import_module(".sharing", __name__)
    if name == "profile":
        from .profiler import profile

        return profile
    raise AttributeError(f"module 'accelkit' has no attribute {name!r}")


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
    "ShapeError",
    "Tensor",
    "WeightsError",
    "arange",
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
    "tensor",
    "zeros",
]

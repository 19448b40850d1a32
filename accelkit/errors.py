"""The errors accelkit raises on purpose: every one is a subclass of AccelkitError."""

from __future__ import annotations


class AccelkitError(Exception):
    """Base of every error the library raises on purpose."""


class ShapeError(AccelkitError, ValueError):
    """Shapes that do not fit together (names both shapes)."""


class DTypeError(AccelkitError, TypeError):
    """An unsupported or mismatched dtype."""


class DeviceError(AccelkitError, RuntimeError):
    """No such device, a device that could not be opened, or a device that was lost."""


class OutOfMemoryError(DeviceError, MemoryError):
    """A device allocation that does not fit (in the device or in a memory budget)."""


class WeightsError(AccelkitError, ValueError):
    """A checkpoint, weight file or cache entry that is missing, corrupt or does not fit the model."""


class ConfigError(WeightsError):
    """A malformed or unsupported model configuration."""


class KernelError(AccelkitError, RuntimeError):
    """A WGSL kernel that failed to compile or launch."""


class InputError(AccelkitError, ValueError):
    """Model input that is out of range (token ids, sequence length, audio, images)."""


__all__ = [
    "AccelkitError",
    "ShapeError",
    "DTypeError",
    "DeviceError",
    "OutOfMemoryError",
    "WeightsError",
    "ConfigError",
    "KernelError",
    "InputError",
]

"""Modules with a named-parameter tree: Module, Linear, LayerNorm, Embedding, Conv1d, Conv2d, ModuleList.

A model is built from its config with empty parameter slots (shape and dtype known, no data), then
``load_state_dict`` checks every name and shape against the checkpoint and fills the slots.
Parameter names follow Hugging Face transformers, so a ``save_pretrained`` checkpoint loads as is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..display import Displayable, module_html, module_tree_text
from ..errors import WeightsError
from ..tensor.dtype import DType, as_dtype, float32
from ..tensor.tensor import Tensor

_weights_version = 0  # bumped whenever any parameter's tensor is set (see Module.weights_version)


def _weights_changed() -> None:
    global _weights_version
    _weights_version += 1


def weights_version() -> int:
    """The number ``Module.weights_version`` gives: it changes whenever any parameter's tensor is set."""
    return _weights_version


@dataclass
class Parameter:
    """A named weight slot: expected shape and dtype, and the device tensor once loaded."""

    shape: tuple
    dtype: DType = float32
    tensor: Tensor | None = None
    shared: str | None = None  # why this storage is shared (dedup / published tensor), shown by reprs
    digest: str | None = None  # content hash of the loaded bytes (the weight store's sha256)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * (self.tensor.dtype.itemsize if self.tensor is not None else self.dtype.itemsize)

    def get(self) -> Tensor:
        if self.tensor is None:
            raise WeightsError(f"parameter of shape {self.shape} has not been loaded")
        return self.tensor

    def __setattr__(self, name: str, value) -> None:
        object.__setattr__(self, name, value)
        if name == "tensor":  # a new storage: compiled plans that bound the old one capture anew
            _weights_changed()


class Module(Displayable, text=module_tree_text, html=module_html):
    """A tree of modules and parameters; ``named_parameters`` walks it with dotted HF names."""

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_children", {})

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Parameter):
            self._params[name] = value
            self._children.pop(name, None)
            _weights_changed()
        elif isinstance(value, Module):
            self._children[name] = value
            self._params.pop(name, None)
        object.__setattr__(self, name, value)

    def __getattribute__(self, name: str):
        value = object.__getattribute__(self, name)
        if isinstance(value, Parameter):
            return value.get()
        return value

    @property
    def weights_version(self) -> int:
        """A number that changes whenever a parameter's tensor is replaced (loading, fusing, dedup,
        sharing, or by hand). One counter for every module: a compiled plan (``accelkit.graph``) built
        before a change is captured anew at its next call, here and in any other model."""
        return _weights_version

    def param(self, name: str) -> Parameter:
        """The Parameter slot itself (attribute access gives its tensor)."""
        return self._params[name]

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None:
            setattr(self, name, module)

    # ------------------------------------------------------------------ tree walking
    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._children.items()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._params.items():
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def num_parameters(self) -> int:
        return sum(p.numel for _, p in self.named_parameters())

    def nbytes(self) -> int:
        seen, total = set(), 0
        for _, p in self.named_parameters():
            t = p.tensor
            # a tied weight is the same view of a storage; fused q/k/v are different views of one
            key = (id(t.storage), t.offset, t.shape) if t is not None else None
            if key is not None and key in seen:
                continue
            seen.add(key)
            total += p.nbytes
        return total

    @property
    def device(self):
        for _, p in self.named_parameters():
            if p.tensor is not None:
                return p.tensor.device
        return None

    @property
    def dtype(self) -> DType | None:
        for _, p in self.named_parameters():
            if p.tensor is not None:
                return p.tensor.dtype
        return None

    # ------------------------------------------------------------------ loading
    def load_state_dict(
        self,
        get: Callable[[str], np.ndarray | Tensor] | dict,
        names=None,
        *,
        device=None,
        dtype=None,
        strict: bool = True,
        allow_missing: tuple[str, ...] = (),
        upload: Callable[[str, Parameter, np.ndarray | Tensor], Tensor] | None = None,
    ) -> dict:
        """Fill every parameter from a checkpoint.

        ``get(name)`` returns the stored array (or a dict name -> array); ``names`` are all names in
        the checkpoint. Missing or unexpected names and shape mismatches raise WeightsError listing
        each one with its shapes. ``upload`` may replace the default host -> device copy (the weight
        store uses it to dedup identical tensors). Returns {"missing": [...], "unexpected": [...]}.
        """
        from ..hardware import device as pick_device

        if isinstance(get, dict):
            table = get
            names = list(table) if names is None else names
            get = table.__getitem__
        dev = pick_device(device)
        target = as_dtype(dtype) if dtype is not None else None
        expected = dict(self.named_parameters())
        names = list(names or [])
        present = set(names)
        missing = [
            n for n in expected if n not in present and not any(n.startswith(p) for p in allow_missing)
        ]
        unexpected = [n for n in names if n not in expected]
        problems = []
        if missing:
            problems.append("missing: " + ", ".join(f"{n} {expected[n].shape}" for n in missing))
        if strict and unexpected:
            problems.append("unexpected: " + ", ".join(unexpected))
        arrays = {}
        for name, p in expected.items():
            if name not in present:
                continue
            value = get(name)
            shape = tuple(value.shape)
            if shape != tuple(p.shape):
                problems.append(
                    f"shape mismatch: {name} is {shape} in the checkpoint, the model expects {p.shape}"
                )
            arrays[name] = value
        if problems:
            raise WeightsError(
                f"{type(self).__name__}: checkpoint does not fit the model; " + "; ".join(problems)
            )
        for name, value in arrays.items():
            p = expected[name]
            if target is not None:
                p.dtype = target if np.asarray(value).dtype.kind == "f" else p.dtype
            if upload is not None:
                p.tensor = upload(name, p, value)
            elif isinstance(value, Tensor):
                p.tensor = value.to(dev, dtype=p.dtype)
            else:
                p.tensor = Tensor.from_numpy(np.asarray(value), p.dtype, dev, exact=True)
        return {"missing": missing, "unexpected": unexpected}

    def state_dict(self) -> dict[str, Tensor]:
        return {n: p.tensor for n, p in self.named_parameters() if p.tensor is not None}

    def release(self) -> None:
        """Drop every parameter tensor (device memory is freed when no one else holds it)."""
        for _, p in self.named_parameters():
            p.tensor = None

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        return ""


# ---------------------------------------------------------------------------------- layers


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features) as in Hugging Face checkpoints."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter((out_features, in_features))
        if bias:
            self.bias = Parameter((out_features,))

    def forward(self, x, activation: str | None = None, residual=None) -> Tensor:
        """``activation(x @ weight.T + bias) + residual``, one kernel on the WebGPU backend."""
        return ops.linear(x, self.weight, self.bias_or_none, activation, residual=residual)

    @property
    def has_bias(self) -> bool:
        """False for a layer made with ``bias=False``."""
        return "bias" in self._params

    @property
    def bias_or_none(self):
        """The bias, or None for a layer made with ``bias=False``."""
        return self.bias if self.has_bias else None

    __call__ = forward

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}"


class LayerNorm(Module):
    """Layer norm over the last dim; ``residual`` is added first in the same kernel."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter((dim,))
        self.bias = Parameter((dim,))

    def forward(self, x, residual=None) -> Tensor:
        return ops.layer_norm(x, self.weight, self.bias, self.eps, residual=residual)

    __call__ = forward

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps:g}"


def linear_layer_norm(linear: Linear, norm: LayerNorm, x, residual) -> Tensor:
    """``norm(linear(x) + residual)``: the two layers as one fused op where the backend has it
    (``ops.linear_layer_norm``), the same numbers as calling them in turn."""
    return ops.linear_layer_norm(
        x, linear.weight, linear.bias_or_none, residual, norm.weight, norm.bias, norm.eps
    )


class Embedding(Module):
    """A lookup table (num_embeddings, dim)."""

    def __init__(self, num_embeddings: int, dim: int) -> None:
        super().__init__()
        self.num_embeddings, self.dim = num_embeddings, dim
        self.weight = Parameter((num_embeddings, dim))

    def forward(self, ids) -> Tensor:
        return ops.embedding(ids, self.weight)

    __call__ = forward

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.dim}"


class Conv1d(Module):
    """1-D convolution (B, C_in, L) -> (B, C_out, L_out), weight (C_out, C_in, k)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.cin, self.cout, self.k, self.stride, self.padding = cin, cout, kernel_size, stride, padding
        self.weight = Parameter((cout, cin, kernel_size))
        self.bias = Parameter((cout,))

    def forward(self, x, activation: str | None = None) -> Tensor:
        return ops.conv1d(x, self.weight, self.bias, self.stride, self.padding, activation)

    __call__ = forward

    def extra_repr(self) -> str:
        return f"{self.cin} -> {self.cout}, k={self.k}, stride={self.stride}, padding={self.padding}"


class Conv2d(Module):
    """2-D convolution (B, C, H, W) -> (B, C_out, H_out, W_out), weight (C_out, C, kh, kw)."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.cin, self.cout, self.kernel, self.stride, self.padding = cin, cout, (kh, kw), stride, padding
        self.weight = Parameter((cout, cin, kh, kw))
        self.bias = Parameter((cout,))

    def forward(self, x) -> Tensor:
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    __call__ = forward

    def extra_repr(self) -> str:
        return f"{self.cin} -> {self.cout}, kernel={self.kernel}, stride={self.stride}"


class ModuleList(Module):
    """Numbered children (``layer.0``, ``layer.1`` ...), as transformers' nn.ModuleList names them."""

    def __init__(self, modules=()) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __getitem__(self, i: int) -> Module:
        return self._children[str(i % len(self))]

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._children.values())


__all__ = [
    "Conv1d",
    "Conv2d",
    "Embedding",
    "LayerNorm",
    "Linear",
    "Module",
    "ModuleList",
    "Parameter",
]

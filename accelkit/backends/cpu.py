"""The CPU backend: numpy on BLAS, with the same op set and semantics as the WebGPU backend.

Buffers are numpy byte arrays; a tensor is an ``np.ndarray`` view over its buffer built from its
shape, strides and offset, so views cost nothing here either. float16 tensors are computed in
float32 and rounded on store, as the GPU kernels do.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DeviceError, OutOfMemoryError
from .base import UNARY_FLOPS, Backend, profiled

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

# erf(x) for |x| <= 4 as x * P(x^2) / Q(x^2) (the rational approximation Eigen and XLA use for
# float32, accurate to a few ulp); |x| > 4 saturates to +-1. The WGSL kernels use the same one.
_ERF_ALPHA = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_BETA = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorised erf in the input's float precision (float32 in, float32 out)."""
    x = np.clip(x, -4.0, 4.0)
    x2 = x * x
    p = np.full_like(x, _ERF_ALPHA[0])
    for c in _ERF_ALPHA[1:]:
        p = p * x2 + c
    q = np.full_like(x, _ERF_BETA[0])
    for c in _ERF_BETA[1:]:
        q = q * x2 + c
    return x * p / q


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * np.asarray(1.0 / math.sqrt(2.0), x.dtype)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.asarray(_SQRT_2_OVER_PI, x.dtype) * (x + 0.044715 * x * x * x)))


def softmax_last(v: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; a row that is all -inf (everything masked) gives zeros, not NaN."""
    m = v.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(v - m)
    s = e.sum(axis=-1, keepdims=True)
    with np.errstate(all="ignore"):
        return np.where(s > 0, e / np.where(s > 0, s, 1.0), 0.0)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


UNARY = {
    "copy": lambda x: x,
    "cast": lambda x: x,
    "neg": np.negative,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "abs": np.abs,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": _sigmoid,
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "erf": erf,
    "silu": lambda x: x * _sigmoid(x),
    "sin": np.sin,
    "cos": np.cos,
}

BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
}

ACTIVATIONS = {None: None, "gelu": gelu, "gelu_tanh": gelu_tanh, "relu": UNARY["relu"], "tanh": np.tanh}


# floating-point operations per op, for the profile's GFLOP/s (the counts the WebGPU planners use);
# each takes the op's arguments (extra ones ignored)
def _size(t) -> int:
    return math.prod(t.shape)


def _matmul_flops(a, b, out, *_, **__) -> float:
    return 2.0 * _size(out) * a.shape[-1]


def _attention_flops(q, k, v, *_, **__) -> float:
    return 2.0 * _size(q) / q.shape[-1] * k.shape[-2] * (q.shape[-1] + v.shape[-1])


def _softmax_flops(x, *_, **__) -> float:
    return 6.0 * _size(x)


def _layer_norm_flops(x, weight, bias, out, eps, residual=None, *_, **__) -> float:
    return (8.0 + (residual is not None)) * _size(x)


def _residual(x, weight, bias, out, eps, residual=None, *_, **__) -> str:
    return "+residual" if residual is not None else ""


class CPUBackend(Backend):
    """numpy arrays as device buffers; every op is a numpy expression over views."""

    name = "cpu"
    supports_f16 = True  # stored as float16, computed in float32
    has_timestamps = False  # an op's device time is its host time
    fused_attention = False  # scores are materialised (numpy)
    supports_subgroups = False
    split_long_reductions = False  # numpy reduces a long axis at full speed
    replays = False  # compiled calls run eagerly: numpy has no per-dispatch cost to save

    def __init__(self) -> None:
        super().__init__()

    # ----------------------------------------------------------------------------- compiled execution
    # numpy has no per-dispatch host cost to save: compiled calls run eagerly here (``replays`` is
    # False), so code written with ``accelkit.compile`` is portable.
    def begin_capture(self, recorder) -> None:
        recorder.abort("the CPU backend runs compiled calls eagerly")

    def end_capture(self) -> None:
        pass

    def build_replay(self, program) -> None:
        raise DeviceError("the CPU backend does not replay programs (its compiled calls run eagerly)")

    def bind_replay(self, handle, buffers: dict) -> None:
        raise DeviceError("the CPU backend does not replay programs (its compiled calls run eagerly)")

    def replay(self, handle, writes: list, copies_in: list, copies_out: list) -> None:
        raise DeviceError("the CPU backend does not replay programs (its compiled calls run eagerly)")

    def replay_bytes(self, handle) -> int:
        return 0

    def free_replay(self, handle) -> None:
        pass

    # ----------------------------------------------------------------------------- buffers
    def alloc(self, nbytes: int, *, exact: bool = False) -> np.ndarray:
        try:
            buf = np.empty(max(int(nbytes), 0), dtype=np.uint8)
        except (MemoryError, ValueError) as exc:  # ValueError: more bytes than an array can index
            raise OutOfMemoryError(
                f"cpu: cannot allocate {nbytes:,} bytes ({nbytes / 2**30:.1f} GiB) of host memory: {exc}"
            ) from None
        self.memory_counter.add(buf.nbytes)
        return buf

    def free(self, buf: np.ndarray) -> None:
        self.memory_counter.sub(buf.nbytes)

    def buffer_bytes(self, buf: np.ndarray) -> int:
        return int(buf.nbytes)

    def write(self, buf: np.ndarray, byte_offset: int, data) -> None:
        src = np.frombuffer(memoryview(np.ascontiguousarray(data)).cast("B"), dtype=np.uint8)
        buf[byte_offset : byte_offset + src.size] = src

    def read(self, buf: np.ndarray, byte_offset: int, nbytes: int) -> bytes:
        return buf[byte_offset : byte_offset + nbytes].tobytes()

    def memory(self) -> dict:
        stats = self.memory_counter.stats()
        stats.update(cached_bytes=0, reserved_bytes=stats["allocated_bytes"], cached_buffers=0, plan_bytes=0)
        return stats

    def empty_cache(self) -> None:
        """Nothing to do: numpy buffers go back to the allocator when freed."""

    # ----------------------------------------------------------------------------- life & timing
    def sync(self) -> None:
        """Nothing to wait for: every op ran when it was called."""

    def check(self) -> None:
        """The CPU cannot be lost."""

    def prepare_profiling(self) -> None:
        """Nothing to set up: ops are timed on the host (``profiled``)."""

    # ----------------------------------------------------------------------------- views
    @staticmethod
    def view(t) -> np.ndarray:
        """The numpy view of a tensor over its buffer (no copy)."""
        item = t.dtype.itemsize
        if t.size == 0:
            return np.zeros(t.shape, dtype=t.dtype.np)
        return np.ndarray(
            t.shape,
            dtype=t.dtype.np,
            buffer=t.storage.handle,
            offset=t.offset * item,
            strides=tuple(s * item for s in t.strides),
        )

    def _compute(self, t) -> np.ndarray:
        """Values in the precision ops compute in: float32 for floats, int32 stays int32."""
        v = self.view(t)
        return v.astype(np.float32) if v.dtype == np.float16 else v

    @staticmethod
    def _store(out, values) -> None:
        if out.size:
            dst = CPUBackend.view(out)
            with np.errstate(all="ignore"):
                dst[...] = values.astype(dst.dtype, copy=False) if hasattr(values, "astype") else values

    # ----------------------------------------------------------------------------- ops
    @profiled("fill", out_arg=0)
    def fill(self, out, value: float) -> None:
        self._store(out, np.asarray(value, dtype=np.float64))

    @profiled("unary", out_arg=2, flops=lambda op, x, *_, **__: _size(x) * UNARY_FLOPS.get(op, 1))
    def unary(self, op: str, x, out, alpha: float = 0.0) -> None:
        v = self._compute(x)
        with np.errstate(all="ignore"):
            if op in ("copy", "cast"):
                res = v
            elif op == "scale":
                res = v * np.float32(alpha)
            else:
                fn = UNARY[op]
                src = v.astype(np.float32) if v.dtype.kind == "i" and op not in ("neg", "abs", "relu") else v
                res = fn(src)
        self._store(out, res)

    @profiled("binary", out_arg=3, flops=lambda op, a, b, out, *_, **__: _size(out))
    def binary(self, op: str, a, b, out) -> None:
        va, vb = self._compute(a), self._compute(b)
        with np.errstate(all="ignore"):
            if op == "div" and va.dtype.kind == "i" and vb.dtype.kind == "i":
                res = va.astype(np.float32) / vb.astype(np.float32)
            else:
                res = BINARY[op](va, vb)
        self._store(out, res)

    @profiled("matmul", out_arg=2, flops=_matmul_flops)
    def matmul(self, a, b, out, bias=None, activation: str | None = None, residual=None) -> None:
        va, vb = self._compute(a), self._compute(b)
        if va.dtype.kind == "i":
            va = va.astype(np.float32)
        if vb.dtype.kind == "i":
            vb = vb.astype(np.float32)
        res = np.matmul(va, vb)
        if bias is not None:
            res += self._compute(bias)
        fn = ACTIVATIONS[activation]
        if fn is not None:
            res = fn(res)
        if residual is not None:
            res = res + self._compute(residual)
        self._store(out, res)

    @profiled("softmax", out_arg=1, flops=_softmax_flops)
    def softmax(self, x, out) -> None:
        self._store(out, softmax_last(self._compute(x)))

    @profiled("layer_norm", out_arg=3, flops=_layer_norm_flops, variant=_residual)
    def layer_norm(self, x, weight, bias, out, eps: float, residual=None) -> None:
        v = self._compute(x)
        if residual is not None:
            v = v + self._compute(residual)
        mean = v.mean(axis=-1, keepdims=True, dtype=np.float64)
        centered = v - mean.astype(v.dtype)
        var = np.mean(np.square(centered, dtype=np.float64), axis=-1, keepdims=True)
        res = centered * (1.0 / np.sqrt(var + eps)).astype(np.float32)
        if weight is not None:
            res = res * self._compute(weight)
        if bias is not None:
            res = res + self._compute(bias)
        self._store(out, res)

    @profiled("reduce", out_arg=2)
    def reduce(self, op: str, x, out) -> None:
        """Reduce the middle axis of a contiguous (outer, n, inner) tensor into (outer, inner)."""
        v = self._compute(x)
        if op == "sum":
            res = v.sum(axis=1, dtype=np.float64 if v.dtype.kind == "f" else None)
        elif op == "mean":
            res = v.mean(axis=1, dtype=np.float64)
        elif op == "max":
            res = v.max(axis=1)
        elif op == "min":
            res = v.min(axis=1)
        elif op == "argmax":
            res = v.argmax(axis=1).astype(np.int32)
        else:  # pragma: no cover - guarded by the op layer
            raise ValueError(op)
        self._store(out, np.asarray(res))

    @profiled("embedding", out_arg=2)
    def embedding(self, ids, table, out) -> None:
        idx = self.view(ids).reshape(-1)
        tab = self._compute(table)
        self._store(out, tab[np.clip(idx, 0, tab.shape[0] - 1)].reshape(out.shape))

    @profiled("attention", out_arg=4, flops=_attention_flops)
    def attention(self, q, k, v, mask, out, scale: float, causal: bool, kv_start=None) -> None:
        """softmax(q k^T * scale + mask [+ causal]) v over (B, H, T, D) tensors, in float32."""
        vq, vk, vv = self._compute(q), self._compute(k), self._compute(v)
        vm = self._compute(mask) if mask is not None else None
        if kv_start is not None:  # only the keys before p + Tq exist for these rows
            tk = min(max(int(self.view(kv_start).reshape(-1)[0]), 0) + vq.shape[-2], vk.shape[-2])
            vk, vv = vk[..., :tk, :], vv[..., :tk, :]
            vm = vm[..., :tk] if vm is not None else None
        scores = np.matmul(vq, np.swapaxes(vk, -1, -2)) * np.float32(scale)
        if vm is not None:
            scores = scores + vm
        tq, tk = scores.shape[-2], scores.shape[-1]
        if causal:
            allowed = np.arange(tk)[None, :] <= (np.arange(tq)[:, None] + (tk - tq))
            scores = np.where(allowed, scores, -np.inf)
        self._store(out, np.matmul(softmax_last(scores).astype(np.float32), vv))

    @profiled("update_slice", out_arg=0)
    def update_slice(self, dst, src, start, axis: int) -> None:
        n = src.shape[axis]
        at = min(max(int(self.view(start).reshape(-1)[0]), 0), dst.shape[axis] - n)
        index = (slice(None),) * axis + (slice(at, at + n),)
        values = self.view(src).copy()  # src may overlap dst
        if dst.size:
            self.view(dst)[index] = values

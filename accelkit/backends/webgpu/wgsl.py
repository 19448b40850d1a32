"""WGSL plumbing shared by the WebGPU planners: kernel sources, the one templating step, uniform packing, plans.

Owns: finding ``kernels/*.wgsl``, ``render`` (sections, ``//# include`` of shared WGSL, ``{{NAME}}``
values, ``//#`` directives: the only way a planner turns a kernel file into WGSL), ``Params`` (uniform layout), ``KernelPlan``,
``Caps`` (what the device can do, as planners need it) and ``Layout`` (a tensor's place in a buffer).

A *planner* turns one op call (shapes, strides, dtypes) into a :class:`KernelPlan`: the WGSL source,
the storage-buffer bindings in order, the uniform parameter bytes and the workgroup grid. The
WebGPU backend compiles a plan's source once per ``plan.key`` and launches it. Planners never touch
wgpu, so they are plain functions that are easy to read and to test.

Binding convention for every kernel: ``@group(0) @binding(i)`` for the storage buffers in
``plan.access`` order (``"read"`` or ``"read_write"``), then the uniform ``Params`` struct at
binding ``len(plan.access)``. Tensors are bound whole; element offsets travel in ``Params``.
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ...errors import KernelError
from ..base import contiguous_strides

MAX_RANK = 8


@dataclass(frozen=True)
class KernelPlan:
    """One kernel launch: what to compile (source, keyed by ``key``), what to bind, how many workgroups."""

    key: tuple
    source: str
    access: tuple[str, ...]
    params: bytes
    workgroups: tuple[int, int, int]
    label: str = ""
    entry_point: str = "main"
    flops: float = 0.0
    bytes_moved: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    #: compile with naga's run-time checks (index clamps, loop counters; ``shader_module.py``): off for
    #: accelkit's kernels unless a planner measured them faster with the checks on
    checks: bool = False


@functools.cache
def kernels_dir() -> Path:
    """Where the WGSL sources are: inside the installed wheel, or ``kernels/`` of a source checkout."""
    try:
        packaged = resources.files("accelkit") / "kernels"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        pass
    here = Path(__file__).resolve().parents[3] / "kernels"
    if here.is_dir():
        return here
    raise KernelError(f"WGSL kernels not found (looked in the package and in {here})")


@functools.cache
def kernel_source(name: str) -> str:
    """The raw text of ``kernels/<name>.wgsl``."""
    path = kernels_dir() / f"{name}.wgsl"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KernelError(f"no WGSL kernel file {path}") from None


def expanded_source(name: str) -> str:
    """``kernels/<name>.wgsl`` with its ``//# include`` lines replaced (what a hash of the kernel must cover)."""
    return _include(kernel_source(name), name)


_INCLUDE = re.compile(r"^[ \t]*//#[ \t]*include[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_DIRECTIVE = re.compile(r"^\s*//#\s*(if|elif|else|endif|for|endfor)\b\s*(.*?)\s*$")
_EXPR = re.compile(r"\$\[([^\]]+)\]")


def render(name: str, kernel: str | None = None, **values) -> str:
    """``kernels/<name>.wgsl`` specialised for one kernel: the one templating step every planner uses.

    1. With ``kernel``, only the file's shared head plus its ``//! kernel <kernel>`` section is kept
       (files holding several entry points, e.g. ``elementwise.wgsl``). Then each line
       ``//# include NAME`` is replaced by the text of ``kernels/NAME.wgsl`` (WGSL several kernel files
       share, e.g. ``flat_1d.wgsl``'s entry point); what it includes goes through steps 2 and 3 too.
    2. Every ``{{NAME}}`` is replaced by ``str(values[NAME])``; an unfilled placeholder is an error.
       A value ``f16`` also switches on ``enable f16;``.
    3. Directives are expanded: ``//# if EXPR`` / ``//# elif EXPR`` / ``//# else`` / ``//# endif``
       keep or drop lines; ``//# for NAME in EXPR`` ... ``//# endfor`` repeats its body for each
       value (``//# for A, B in EXPR`` unpacks pairs), replacing ``$[expr]`` with the value of a
       Python expression over the loop names.
       EXPR sees only the literals that step 2 wrote (``//# if {{VEC}}`` -> ``//# if True``).
    """
    text = kernel_source(name)
    if kernel is not None:
        text = _section(text, name, kernel)
    text = _include(text, name)

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in values:
            raise KernelError(f"kernel {name}: template value {key} not given")
        return str(values[key])

    out = _PLACEHOLDER.sub(sub, text)
    if "f16" in {str(v) for v in values.values()} and "enable f16;" not in out:
        out = "enable f16;\n" + out
    return expand_directives(out, name)


@functools.lru_cache(maxsize=1024)
def render_cached(name: str, kernel: str | None, values: tuple) -> str:
    """``render`` memoised on ``values`` given as a hashable tuple of (NAME, value) pairs."""
    return render(name, kernel, **dict(values))


def _section(text: str, name: str, kernel: str) -> str:
    """The shared part of a multi-kernel WGSL file plus its ``//! kernel <kernel>`` section."""
    parts = text.split("\n//! kernel ")
    for part in parts[1:]:
        label, _, body = part.partition("\n")
        if label.strip() == kernel:
            return parts[0] + body
    raise KernelError(f"no '//! kernel {kernel}' section in kernels/{name}.wgsl")


def _include(text: str, name: str, seen: tuple = ()) -> str:
    """``text`` with every ``//# include NAME`` line replaced by ``kernels/NAME.wgsl`` (nested ones too)."""

    def sub(m: re.Match) -> str:
        included = m.group(1)
        if included in seen or included == name:
            raise KernelError(f"kernels/{name}.wgsl: '//# include {included}' includes itself")
        return _include(kernel_source(included).rstrip("\n"), included, (*seen, name))

    return _INCLUDE.sub(sub, text)


def expand_directives(text: str, name: str = "template") -> str:
    """Step 3 of ``render`` on its own: expand the ``//#`` directives and ``$[expr]`` of ``text``."""
    if "//#" not in text and "$[" not in text:
        return text
    lines = text.splitlines()
    out: list[str] = []
    _expand(lines, 0, len(lines), {}, out, name)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _eval(expr: str, env: dict):
    return eval(expr, {"__builtins__": {}, "range": range}, env)  # noqa: S307 - our own template text


def _block_end(lines, start: int, stop: int, opener: str, closer: str, name: str) -> int:
    depth = 0
    for i in range(start, stop):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            continue
        if m.group(1) == opener:
            depth += 1
        elif m.group(1) == closer:
            depth -= 1
            if depth == 0:
                return i
    raise KernelError(f"kernels/{name}.wgsl: //# {opener} at line {start + 1} has no //# {closer}")


def _expand(lines, start: int, stop: int, env: dict, out: list, name: str) -> None:
    i = start
    while i < stop:
        line = lines[i]
        m = _DIRECTIVE.match(line)
        if not m:
            if "$[" in line and not line.lstrip().startswith("//"):
                line = _EXPR.sub(lambda e: str(_eval(e.group(1), env)), line)
            out.append(line)
            i += 1
            continue
        word, arg = m.groups()
        if word == "for":
            end = _block_end(lines, i, stop, "for", "endfor", name)
            names, _, expr = arg.partition(" in ")
            names = [n.strip() for n in names.split(",")]
            for value in _eval(expr, env):
                values = [value] if len(names) == 1 else list(value)
                if len(values) != len(names):
                    raise KernelError(f"kernels/{name}.wgsl: '//# for {arg}': {value!r} does not unpack")
                _expand(lines, i + 1, end, {**env, **dict(zip(names, values))}, out, name)
            i = end + 1
        elif word == "if":
            end = _block_end(lines, i, stop, "if", "endif", name)
            # split the if-block into branches at its own depth
            branches, cond, body_start, depth = [], arg, i + 1, 0
            for j in range(i + 1, end):
                mj = _DIRECTIVE.match(lines[j])
                if not mj:
                    continue
                if mj.group(1) == "if":
                    depth += 1
                elif mj.group(1) == "endif":
                    depth -= 1
                elif depth == 0 and mj.group(1) in ("elif", "else"):
                    branches.append((cond, body_start, j))
                    cond = mj.group(2) if mj.group(1) == "elif" else "True"
                    body_start = j + 1
            branches.append((cond, body_start, end))
            for cond, lo, hi in branches:
                if _eval(cond, env):
                    _expand(lines, lo, hi, env, out, name)
                    break
            i = end + 1
        else:
            raise KernelError(f"kernels/{name}.wgsl: unexpected //# {word} at line {i + 1}")


class Params:
    """Packs a uniform buffer field by field with WGSL's uniform layout rules.

    Scalars (u32/i32/f32) are 4-byte aligned; ``vec4u``/``vec4f`` and arrays of them are 16-byte
    aligned; the struct is padded to 16 bytes. Declare the WGSL struct fields in the same order.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def _align(self, n: int) -> None:
        while len(self._buf) % n:
            self._buf += b"\0"

    def u32(self, *values: int) -> Params:
        for v in values:
            self._buf += struct.pack("<I", int(v) & 0xFFFFFFFF)
        return self

    def i32(self, *values: int) -> Params:
        for v in values:
            self._buf += struct.pack("<i", int(v))
        return self

    def f32(self, *values: float) -> Params:
        for v in values:
            self._buf += struct.pack("<f", float(v))
        return self

    def vec4u(self, values, length: int | None = None) -> Params:
        """An ``array<vec4<u32>, ceil(length/4)>`` (or one vec4u) holding ``values``, zero-padded."""
        values = [int(v) & 0xFFFFFFFF for v in values]
        n = length if length is not None else len(values)
        n = -(-n // 4) * 4
        self._align(16)
        self._buf += struct.pack(f"<{n}I", *(values + [0] * (n - len(values))))
        return self

    def to_bytes(self) -> bytes:
        self._align(16)
        return bytes(self._buf) or bytes(16)


def bind_group_entries(storage: list, uniform) -> list[dict]:
    """The bind-group entries of one dispatch, by the binding convention above: the ``storage`` buffers
    (GPUBuffers, bound whole) at bindings 0..n-1, the ``uniform`` buffer at n."""
    return [
        {"binding": i, "resource": {"buffer": g, "offset": 0, "size": g.size}}
        for i, g in enumerate([*storage, uniform])
    ]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def grid_1d(n_workgroups: int, max_per_dim: int = 65535) -> tuple[int, int, int]:
    """Spread a 1-D count of workgroups over x and y so neither exceeds the per-dimension limit.

    Kernels recover the flat index as ``wid.x + wid.y * num_workgroups.x``.
    """
    n = max(1, int(n_workgroups))
    if n <= max_per_dim:
        return (n, 1, 1)
    y = ceil_div(n, max_per_dim)
    return (ceil_div(n, y), y, 1)


@dataclass(frozen=True)
class Caps:
    """What a WebGPU device can do, as the planners need it (read off the device at open)."""

    f16: bool = False
    subgroups: bool = False
    subgroup_min: int = 4
    subgroup_max: int = 128
    timestamps: bool = False
    max_workgroup_storage: int = 16384
    max_invocations: int = 256
    max_workgroup_size_x: int = 256
    max_workgroups_per_dim: int = 65535
    max_storage_binding: int = 134217728
    vendor: str = ""
    device_name: str = ""
    is_software: bool = False


@dataclass(frozen=True)
class Layout:
    """How a tensor lies in its buffer, in elements: what planners take (a Tensor also fits)."""

    dtype: object  # accelkit.tensor.dtype.DType
    shape: tuple
    strides: tuple
    offset: int = 0

    @staticmethod
    def contiguous(dtype, shape, offset: int = 0) -> Layout:
        return Layout(dtype, tuple(shape), contiguous_strides(shape), offset)

"""The WebGPU backend (wgpu-py), one file per concern.

- ``device.py``: ``WebGPUBackend``: the opened device, buffers and their pool, memory accounting,
  the command encoder and submits, timestamps, and the protocol's op methods.
- ``wgsl.py``: kernel sources and the one templating step (``render``), ``KernelPlan``, ``Params``, ``Caps``.
- ``plans.py``: planners for elementwise, fill, softmax, layer norm, reductions, embedding.
- ``matmul.py``: the matmul planner (tiled and gemv variants).
- ``attention.py``: the fused attention planner (tile and decode shapes).
- ``runtime_dir.py``: a private ``XDG_RUNTIME_DIR`` set before the Vulkan loader starts.

The WGSL itself lives in the top-level ``kernels/`` folder, one op family per file.
"""

from .device import GPUBuffer, WebGPUBackend, is_software_adapter, size_class
from .runtime_dir import ensure_runtime_dir

__all__ = ["GPUBuffer", "WebGPUBackend", "ensure_runtime_dir", "is_software_adapter", "size_class"]

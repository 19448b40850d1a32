"""The WebGPU backend (wgpu-py), one file per concern.

- ``device.py``: ``WebGPUBackend``: the opened device, buffers and their pool, memory accounting,
  the command encoder and submits, timestamps, and the protocol's op methods.
- ``wgsl.py``: kernel sources and the one templating step (``render``), ``KernelPlan``, ``Params``, ``Caps``.
- ``plans.py``: planners for elementwise, fill, softmax, layer norm, reductions, embedding.
- ``matmul.py``: the matmul planner (tiled and gemv variants).
- ``attention.py``: the fused attention planner (tile and decode shapes).

The WGSL itself lives in the top-level ``kernels/`` folder, one op family per file.
"""

from .device import GPUBuffer, WebGPUBackend, is_software_adapter, size_class

__all__ = ["GPUBuffer", "WebGPUBackend", "is_software_adapter", "size_class"]

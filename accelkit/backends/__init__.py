"""Backends: the protocol every backend implements (``base.py``), ``cpu.py`` (numpy on BLAS) and
``webgpu/`` (wgpu-py). Owns buffers, copies, dispatch, synchronisation, timestamps and capabilities.
May import only ``errors`` (and numpy, wgpu); the tensor layer above hands it tensors duck-typed
(``base.TensorLike``).
"""

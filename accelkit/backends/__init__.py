"""Backends: one file per backend (``webgpu.py``, ``cpu.py``) behind the short protocol in ``base.py``."""

"""Weights in: safetensors read through memory maps, checkpoint directories, the content-addressed
weight store under the user cache directory, and optional Hugging Face Hub downloads.

    from accelkit.io import Checkpoint, resolve
    ckpt = Checkpoint.open(resolve("hf:google/vit-base-patch16-224"))
"""

from accelkit.io.checkpoint import Checkpoint, read_json, read_preprocessor_config, tensor_digest
from accelkit.io.hub import resolve
from accelkit.io.safetensors import SafetensorsFile, TensorInfo
from accelkit.io.store import (
    Entry,
    Progress,
    ProgressEvent,
    PruneReport,
    StoreError,
    VerifyReport,
    WeightStore,
    add_progress_hook,
    default_root,
    progress,
)

__all__ = [
    "Checkpoint",
    "Entry",
    "Progress",
    "ProgressEvent",
    "PruneReport",
    "SafetensorsFile",
    "StoreError",
    "TensorInfo",
    "VerifyReport",
    "WeightStore",
    "add_progress_hook",
    "default_root",
    "progress",
    "read_json",
    "read_preprocessor_config",
    "resolve",
    "tensor_digest",
]

"""Compiled execution: capture the dispatches of a call once into a plan, replay it with no Python per op.

API (small on purpose; the models and the Whisper decoder build on it):

- ``compile(fn, *, max_plans=8, device=None, version=None) -> Compiled`` (``ak.compile``): ``fn``
  called as before; the first call per input signature (Tensor shapes, dtypes, strides, offsets,
  devices and storage sharing; host array shapes and dtypes; every other argument's value) runs
  eagerly while recorded, later calls replay. Arguments nest in tuples, lists and dicts; results
  may be Tensors or such containers of them (other values are returned as captured).
- ``Compiled``: ``.plans`` (each signature's ``Plan`` or ``EagerEntry`` with the reason it cannot
  replay), ``.last`` ("replayed plan #2, 92 dispatches", "captured plan #1 ...", "eager #3: ..."),
  ``.calls`` / ``.captures`` / ``.replayed`` / ``.eager_calls``, ``.plan_bytes``, ``.free()``.
- ``Plan``: ``.stats`` (``PlanStats``: dispatches, slots, slot_bytes, eager_peak_bytes, plan_bytes,
  input/const bytes, ...), ``.replays``, ``.free()``. ``device.memory()["plan_bytes"]`` counts
  every live plan's buffers.

What a replay does per call: uploads each host array with one write, copies each device Tensor
argument into the plan's input buffer, encodes every recorded dispatch into one compute pass with
prebuilt bind groups, copies each output into a fresh buffer returned as a new Tensor (so outputs
held by the caller are never overwritten by a later replay), and submits once.

What a captured call may not do (its signature then runs eagerly, the reason in ``.plans``): read
device data back to the host (``.numpy()``, ``.item()``, a branch on values), upload host data into
a tensor made before the call (pass it as an argument), or keep a tensor it computed without
returning it. Writes into tensors made before the call (state such as a KV cache) replay into the
same buffers, as eagerly; writes into device Tensor arguments are copied back after the replay.

Models use it through ``PreTrainedModel.run_compiled(forward, *inputs)`` (``models/model.py``): the
call checks its inputs on the host first (same errors as eagerly), one ``Compiled`` per forward,
``model.plans`` / ``model.last_call`` / ``model.free()``, ``ak.load(..., compile=False)``, and
plans captured anew when ``nn.weights_version()`` changes (any parameter's tensor replaced).

Layers: ``capture.py`` (the recorder a backend reports to), ``memory_plan.py`` (liveness-based slot
assignment), ``plan.py`` (lowering and replay), ``compile.py`` (signatures, the LRU of plans). The
backend side is ``backends/webgpu/replay.py``; the CPU backend runs compiled calls eagerly.
"""

from __future__ import annotations

from .capture import Recorder
from .compile import BoundCall, Compiled, EagerEntry, compile, compile_enabled
from .memory_plan import MemoryPlan, plan_memory
from .plan import Plan, PlanStats

__all__ = [
    "BoundCall",
    "Compiled",
    "EagerEntry",
    "MemoryPlan",
    "Plan",
    "PlanStats",
    "Recorder",
    "compile",
    "compile_enabled",
    "plan_memory",
]

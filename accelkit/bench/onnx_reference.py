"""ONNX Runtime's WebGPU build as a peer reference for ``accelkit bench models`` (same weights, same process).

The transformers model of a checkpoint (built by the torch reference, on the CPU, in ``eval()``
mode: ``torch.onnx.export`` restores the training flag it finds, so a model left in training mode
would export with dropout on) is exported to ONNX once per checkpoint with a dynamic batch axis, and
run by ``onnxruntime`` with its ``WebGpuExecutionProvider`` (Dawn inside ONNX Runtime, on the same
GPU). A call is ``session.run`` on numpy inputs: upload, forward and the read-back of every output,
which is what an accelkit call followed by ``.numpy()`` does too.

Needs ``onnxruntime-webgpu`` (the WebGPU build of ONNX Runtime) and torch + transformers for the
export; where any is missing, or the provider is not offered, the target is left out with a note.
BERT and ViT are measured; Whisper's greedy decoding (an encoder and a decoder with a KV cache) is
not exported, and says so in the notes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

PROVIDER = "WebGpuExecutionProvider"
TARGET = "ort:webgpu"
FAMILIES = ("bert", "vit")


class OnnxRuntimeWebGPU:
    """The ORT WebGPU reference when importable, else ``available`` is False and ``notes`` says why."""

    def __init__(self, notes: list) -> None:
        self.ort = None
        try:
            import onnxruntime as ort
        except Exception as exc:  # ImportError, or a broken install
            notes.append(
                f"{TARGET} not measured: onnxruntime not importable ({type(exc).__name__}: {exc})"[:300]
            )
            return
        if PROVIDER not in ort.get_available_providers():
            notes.append(
                f"{TARGET} not measured: onnxruntime {ort.__version__} offers {ort.get_available_providers()}, "
                f"not {PROVIDER} (install onnxruntime-webgpu)"
            )
            return
        self.ort = ort

    @property
    def available(self) -> bool:
        return self.ort is not None

    def describe(self) -> dict:
        return {
            "target": TARGET,
            "name": f"onnxruntime {self.ort.__version__} {PROVIDER} (ONNX export of transformers; a call includes numpy in and out)",
        }

    def export(self, torch_model, family: str, example: dict[str, np.ndarray], path: Path) -> list[str]:
        """Write ``torch_model`` (a transformers model on the CPU) to ``path`` as ONNX; return its input names."""
        import torch

        names = list(example)
        arch = (getattr(torch_model.config, "architectures", None) or [""])[0]
        outputs = ["logits"] if "Classification" in arch else ["last_hidden_state", "pooler_output"]

        class Wrapper(torch.nn.Module):
            def __init__(self, model) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args):
                out = self.model(**dict(zip(names, args)))
                return tuple(out[k] for k in outputs)

        wrapper = Wrapper(torch_model).eval()  # export restores the training flag it finds: keep it off
        args = tuple(torch.from_numpy(example[k]) for k in names)
        dynamic = {k: {0: "batch"} for k in names}
        dynamic.update({k: {0: "batch"} for k in outputs})
        options = dict(input_names=names, output_names=outputs, dynamic_axes=dynamic, opset_version=17)
        with torch.no_grad():
            try:  # the TorchScript exporter: dynamic batch through dynamic_axes
                torch.onnx.export(wrapper, args, str(path), dynamo=False, **options)
            except TypeError:  # a torch without the dynamo= switch
                torch.onnx.export(wrapper, args, str(path), **options)
        self.outputs = outputs
        return names

    def session(self, path: Path):
        options = self.ort.SessionOptions()
        options.log_severity_level = 3
        return self.ort.InferenceSession(str(path), sess_options=options, providers=[PROVIDER])


def measure_target(
    ref: OnnxRuntimeWebGPU,
    build_cpu_model: Callable[[], object],
    family: str,
    batches,
    cfg: dict,
    workdir: Path,
    first_run: Callable,
    timed_runs: Callable,
    base_record: dict,
) -> list[dict]:
    """One record per batch for the ORT WebGPU target, timed by bench models' ``first_run``/``timed_runs``."""
    if family not in FAMILIES:
        return []
    try:
        model = build_cpu_model()
        path = workdir / f"{family}-{base_record['size']}.onnx"
        t0 = time.perf_counter()
        names = ref.export(model, family, cfg["inputs"][batches[0]], path)
        del model
        sess = ref.session(path)
        load_s = time.perf_counter() - t0
    except Exception as exc:
        return [{**base_record, "batch": b, "error": f"{type(exc).__name__}: {exc}"[:500]} for b in batches]
    records = []
    for i, batch in enumerate(batches):
        rec = {**base_record, "batch": batch, "load_s": load_s, "memory": {}}
        feed = {k: cfg["inputs"][batch][k] for k in names}
        try:

            def forward(feed=feed):
                return sess.run(None, feed)

            out, warm = first_run(forward, _no_sync, rec, cfg, i == 0)
            rec["outputs"] = {k: np.asarray(v) for k, v in zip(ref.outputs, out)}
            timed_runs(forward, _no_sync, rec, cfg, warm, None)
        except Exception as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
        records.append(rec)
    return records


def _no_sync() -> None:
    """``session.run`` returns host arrays: the work is done when it returns."""

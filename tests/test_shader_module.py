"""Shader modules with and without naga's run-time checks (backends/webgpu/shader_module.py).

accelkit's kernels are compiled without naga's index clamps and loop counters unless a plan asks
for them (``KernelPlan.checks``, the matmul rule ``SCHEME_CHECKS``) or ``ACCELKIT_SHADER_CHECKS``
turns them on everywhere; either way a kernel must compute the same thing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import accelkit as ak
from accelkit.backends.webgpu import autotune as at
from accelkit.backends.webgpu import matmul as wm
from accelkit.backends.webgpu import shader_module as sm
from accelkit.backends.webgpu.wgsl import Caps, Layout
from accelkit.tensor import Tensor, float32

CAPS = Caps(f16=True, max_workgroup_storage=49152, max_invocations=1024, max_workgroup_size_x=1024)


def lay(shape, strides=None):
    if strides is None:
        return Layout.contiguous(float32, shape, 0)
    return Layout(float32, tuple(shape), tuple(strides), 0)


@pytest.mark.parametrize(
    "value,want", [(None, False), ("0", False), ("off", False), ("1", True), ("ON", True)]
)
def test_the_switch(monkeypatch, value, want):
    if value is None:
        monkeypatch.delenv(sm.ENV_SWITCH, raising=False)
    else:
        monkeypatch.setenv(sm.ENV_SWITCH, value)
    assert sm.checks_wanted() is want


def test_the_matmul_rule_keeps_checks_for_s_loads_in_128_row_tiles():
    n, k = 768, 3072
    a, w, o = lay((1, 4096, k)), lay((1, k, n), (0, 1, k)), lay((1, 4096, n))
    s128 = wm.plan_matmul(CAPS, a, w, o, None, None, tile="128x128k16", loads="s")
    assert s128.checks and s128.extra["config"].endswith(" chk")
    u128 = wm.plan_matmul(CAPS, a, w, o, None, None, tile="128x128k16", loads="u")
    assert not u128.checks and "chk" not in u128.extra["config"]
    s64 = wm.plan_matmul(CAPS, a, w, o, None, None, tile="64x64k16", loads="s")
    assert not s64.checks
    forced = wm.plan_matmul(CAPS, a, w, o, None, None, tile="128x128k16", loads="s", checks=False)
    assert not forced.checks and forced.key == s128.key  # the same WGSL, compiled the other way
    assert wm.plan_matmul(CAPS, a, w, o, None, None, tile="64x64k16", checks=True).checks
    # the split-K reduction and the gemv kernels go without
    split = wm.plan_matmul(CAPS, lay((1, 128, k)), w, lay((1, 128, n)), None, None, tile="64x64k16", split=8)
    assert not split.extra["splitk"][1].checks
    gemv = wm.plan_matmul(CAPS, lay((1, 1, k)), w, lay((1, 1, n)), None, None)
    assert gemv.extra["variant"] == "gemv_dot" and not gemv.checks
    with pytest.raises(ak.KernelError, match="checks"):
        wm.plan_matmul(CAPS, a, w, o, None, None, checks="yes")


def test_autotune_times_both_ways_and_the_table_keeps_the_choice():
    cands = at.candidates(CAPS, 4096, 768, 3072, 4)
    configs = {(c["tile"], c["split"], c["loads"]) for c in cands}
    for tile, split, loads in configs:
        both = {c["checks"] for c in cands if (c["tile"], c["split"], c["loads"]) == (tile, split, loads)}
        assert both == {True, False}, (tile, split, loads)
    rule = cands[0]
    assert rule["checks"] == wm.scheme_checks(wm.TILES[rule["tile"]].bm, rule["loads"])
    assert (
        at.candidate_name({"tile": "64x64k16", "split": 2, "loads": "u", "checks": True})
        == "64x64k16/s2/u+chk"
    )


@pytest.mark.webgpu
@pytest.mark.parametrize(
    "shape,tile,loads", [((1, 131, 67, 45), "128x128", "s"), ((2, 37, 130, 29), "64x64k16", "u")]
)
def test_checked_and_unchecked_kernels_agree(webgpu, rng, shape, tile, loads):
    be = webgpu.backend
    batch, m, n, k = shape
    a = ak.tensor(rng.standard_normal((batch, m, k)).astype(np.float32), device=webgpu)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = ak.tensor(w, device=webgpu).transpose(-1, -2).expand((batch, k, n))
    want = a.numpy().astype(np.float64) @ w.T.astype(np.float64)
    outs = []
    for checks in (True, False):
        out = Tensor.empty((batch, m, n), float32, webgpu)
        plan = wm.plan_matmul(be.caps, a, b, out, None, "gelu", tile=tile, loads=loads, checks=checks)
        assert plan.checks is checks
        wm.launch_matmul(be, plan, a.storage.handle, b.storage.handle, None, None, out.storage.handle)
        outs.append(out.numpy())
    # the same arithmetic (bit for bit on lavapipe; a GPU compiler may schedule the two differently)
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-6 * np.abs(outs[0]).max())
    gelu = ak.ops.gelu(ak.tensor(want.astype(np.float32), device="cpu")).numpy().astype(np.float64)
    assert np.abs(outs[0] - gelu).max() <= 1e-4 * np.abs(gelu).max()
    assert {key for key, checked in be._pipelines if key == plan.key} == {plan.key}
    assert {checked for key, checked in be._pipelines if key == plan.key} == {True, False}


@pytest.mark.webgpu
def test_the_environment_switch_turns_checks_on_everywhere(tmp_path):
    """The same model output with every kernel checked (a fresh process with ACCELKIT_SHADER_CHECKS=1)."""
    code = (
        "import numpy as np, accelkit as ak\n"
        "dev = ak.device('webgpu')\n"
        "assert dev.backend.shader_checks is {want}\n"
        "m = ak.load('tiny-random-bert', device=dev)\n"
        "ids = np.arange(2 * 11).reshape(2, 11) % 97\n"
        "np.save({path!r}, np.asarray(m(ids).last_hidden_state.numpy()))\n"
    )
    outs = []
    for flag, want in (("1", True), ("0", False)):
        path = str(tmp_path / f"out{flag}.npy")
        env = {**os.environ, sm.ENV_SWITCH: flag}
        subprocess.run(
            [sys.executable, "-c", code.format(want=want, path=path)], env=env, check=True, timeout=300
        )
        outs.append(np.load(path))
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.webgpu
@pytest.mark.parametrize("checks", [True, False])
def test_a_wgsl_error_raises_at_once_both_ways(webgpu, checks):
    bad = "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }"
    with pytest.raises(Exception, match="expected to be `u32`"):
        sm.create_module(webgpu.backend.device, "bad", bad, checks=checks)

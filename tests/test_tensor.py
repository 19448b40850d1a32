"""Tensor layer: construction, dtypes, host transfer, views that never copy, writes into views, lifetime, repr.

Every test that touches device memory runs on every device present (see conftest.py); values are
compared with numpy doing the same thing to the same data.
"""

from __future__ import annotations

import contextlib
import gc
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import accelkit as ak


@contextlib.contextmanager
def no_allocation(device):
    """Assert that the block allocates no device buffer (frees by a stray gc pass are allowed)."""
    before = device.memory()
    yield
    after = device.memory()
    assert after["total_allocations"] == before["total_allocations"], (before, after)
    assert after["allocated_bytes"] <= before["allocated_bytes"], (before, after)
    assert after["buffers"] <= before["buffers"], (before, after)


def live_bytes(device) -> tuple[int, int]:
    gc.collect()
    m = device.memory()
    return m["allocated_bytes"], m["buffers"]


def arange_nd(shape, dev, dtype=np.float32):
    a = np.arange(math.prod(shape), dtype=dtype).reshape(shape)
    return a, ak.tensor(a, device=dev)


# ============================================================================ construction & dtypes


def test_tensor_from_lists_scalars_and_arrays(dev):
    t = ak.tensor([[1.0, 2.0], [3.0, 4.0]], device=dev)
    assert (t.shape, t.dtype, t.device) == ((2, 2), ak.float32, dev)
    np.testing.assert_array_equal(t.numpy(), [[1, 2], [3, 4]])

    i = ak.tensor([1, -2, 3], device=dev)
    assert i.dtype is ak.int32
    assert i.numpy().dtype == np.int32
    np.testing.assert_array_equal(i.numpy(), [1, -2, 3])

    b = ak.tensor(np.array([True, False, True]), device=dev)
    assert b.dtype is ak.int32
    np.testing.assert_array_equal(b.numpy(), [1, 0, 1])

    s = ak.tensor(2.5, device=dev)
    assert s.shape == () and s.ndim == 0 and s.size == 1
    assert s.item() == 2.5 and float(s) == 2.5
    assert s.numpy().shape == ()
    assert ak.tensor(np.float32(-1.5), device=dev).shape == ()
    assert ak.tensor(np.array(7, np.int64), device=dev).shape == ()


def test_float64_becomes_float32(dev):
    a = np.array([1.0 / 3.0, 1e-30, -2.5e20])
    t = ak.tensor(a, device=dev)
    assert t.dtype is ak.float32
    np.testing.assert_array_equal(t.numpy(), a.astype(np.float32))
    assert ak.tensor(a, dtype="float64", device=dev).dtype is ak.float32


@pytest.mark.parametrize("spec", ["float16", "f16", np.float16, ak.float16, "half"])
def test_float16_dtype(dev, spec):
    a = np.array([0.1, -65504.0, 1e-4, 3.0], dtype=np.float32)
    if not dev.supports_f16:
        with pytest.raises(ak.DTypeError, match="f16"):
            ak.tensor(a, dtype=spec, device=dev)
        return
    t = ak.tensor(a, dtype=spec, device=dev)
    assert t.dtype is ak.float16
    assert t.nbytes == 8
    out = t.numpy()
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, a.astype(np.float16))
    # a float16 array keeps its dtype by default
    assert ak.tensor(a.astype(np.float16), device=dev).dtype is ak.float16


def test_float16_odd_lengths_round_trip(dev):
    """2-byte elements in buffers written 4 bytes at a time: odd counts and odd offsets must survive."""
    if not dev.supports_f16:
        pytest.skip("device lacks shader-f16")
    for n in (1, 3, 5, 129):
        a = np.linspace(-3, 3, n).astype(np.float16)
        t = ak.tensor(a, device=dev)
        np.testing.assert_array_equal(t.numpy(), a)
        np.testing.assert_array_equal(t[1:].numpy(), a[1:])
        np.testing.assert_array_equal(t[1::2].numpy(), a[1::2])


def test_int64_narrowing_in_range(dev):
    lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    a = np.array([lo, -1, 0, 1, hi], dtype=np.int64)
    t = ak.tensor(a, device=dev)
    assert t.dtype is ak.int32
    np.testing.assert_array_equal(t.numpy(), a)
    assert ak.tensor(np.array([2**31 - 1], np.uint32), device=dev).numpy()[0] == 2**31 - 1


@pytest.mark.parametrize(
    "values, bad",
    [
        (np.array([0, 2**31], dtype=np.int64), "2147483648"),
        (np.array([-(2**31) - 1, 5], dtype=np.int64), "-2147483649"),
        ([1, 2**40], str(2**40)),
        (np.array([2**32 - 1], dtype=np.uint32), "4294967295"),
        (np.array([2**63], dtype=np.uint64), str(2**63)),
    ],
)
def test_int_narrowing_out_of_range_raises(cpu, values, bad):
    gc.collect()
    before = cpu.memory()["allocated_bytes"]
    with pytest.raises(ak.DTypeError, match=bad) as info:
        ak.tensor(values, device=cpu)
    assert isinstance(info.value, ak.AccelkitError)
    assert "int32" in str(info.value)
    gc.collect()
    assert cpu.memory()["allocated_bytes"] == before  # nothing half-made


@pytest.mark.parametrize("dtype", ["complex64", "U4", object, "datetime64[s]", "bfloat17", 3])
def test_unsupported_dtypes_raise(cpu, dtype):
    with pytest.raises(ak.DTypeError):
        ak.tensor(np.zeros(3), dtype=dtype, device=cpu)


@pytest.mark.parametrize("dtype", ["complex64", "U4", "datetime64[s]"])
def test_unsupported_array_dtypes_raise(cpu, dtype):
    with pytest.raises(ak.DTypeError):
        ak.tensor(np.zeros(3, dtype=dtype), device=cpu)


def test_non_numeric_and_ragged_data_raise(cpu):
    with pytest.raises(ak.AccelkitError):
        ak.tensor(["a", "b"], device=cpu)
    with pytest.raises(ak.AccelkitError):
        ak.tensor([[1.0, 2.0], [3.0]], device=cpu)


def test_zeros_ones_full_empty(dev):
    for shape_args, shape in [
        ((2, 3), (2, 3)),
        (((2, 3),), (2, 3)),
        ((5,), (5,)),
        ((), ()),
        ((0, 4), (0, 4)),
    ]:
        z = ak.zeros(*shape_args, device=dev)
        o = ak.ones(*shape_args, device=dev)
        assert z.shape == o.shape == shape
        assert z.dtype is o.dtype is ak.float32
        np.testing.assert_array_equal(z.numpy(), np.zeros(shape, np.float32))
        np.testing.assert_array_equal(o.numpy(), np.ones(shape, np.float32))
        assert ak.empty(*shape_args, device=dev).shape == shape
    f = ak.full((3, 129), -7.25, device=dev)
    np.testing.assert_array_equal(f.numpy(), np.full((3, 129), -7.25, np.float32))
    fi = ak.full(5, 3, dtype="int32", device=dev)
    assert fi.dtype is ak.int32 and fi.shape == (5,)
    np.testing.assert_array_equal(fi.numpy(), np.full(5, 3, np.int32))
    zi = ak.zeros(4, dtype=ak.int32, device=dev)
    np.testing.assert_array_equal(zi.numpy(), np.zeros(4, np.int32))
    if dev.supports_f16:
        h = ak.ones(7, dtype="float16", device=dev)
        assert h.dtype is ak.float16
        np.testing.assert_array_equal(h.numpy(), np.ones(7, np.float16))
    with pytest.raises(ak.ShapeError, match="-1"):
        ak.zeros(2, -1, device=dev)


def test_arange(dev):
    for args in [(5,), (2, 11), (10, -3, -3), (0,)]:
        t = ak.arange(*args, device=dev)
        assert t.dtype is ak.int32
        np.testing.assert_array_equal(t.numpy(), np.arange(*args))
    t = ak.arange(0.0, 1.0, 0.125, device=dev)
    assert t.dtype is ak.float32
    np.testing.assert_array_equal(t.numpy(), np.arange(0.0, 1.0, 0.125, dtype=np.float32))
    t = ak.arange(6, dtype="float32", device=dev)
    assert t.dtype is ak.float32
    np.testing.assert_array_equal(t.numpy(), np.arange(6, dtype=np.float32))


def test_numpy_returns_an_independent_copy(dev):
    a, t = arange_nd((3, 4), dev)
    out = t.numpy()
    out[:] = -1
    np.testing.assert_array_equal(t.numpy(), a)
    assert np.asarray(t).shape == (3, 4)
    assert t.tolist() == a.tolist()


def test_to_moves_between_devices(dev, cpu):
    a = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    c = ak.tensor(a, device=cpu)
    assert c.to(cpu) is c  # nothing changes -> itself
    assert c.to() is c
    d = c.to(dev)
    assert d.device is dev
    np.testing.assert_array_equal(d.numpy(), a)
    back = d.to("cpu")
    assert back.device is cpu
    np.testing.assert_array_equal(back.numpy(), a)
    # a strided view moves as its values
    v = d.T[::2]
    np.testing.assert_array_equal(v.to(cpu).numpy(), a.T[::2])
    # dtype change
    i = d.to(dtype="int32")
    assert i.dtype is ak.int32
    np.testing.assert_array_equal(i.numpy(), a.astype(np.int32))
    # ak.tensor of a tensor copies it to the asked device
    np.testing.assert_array_equal(ak.tensor(d, device=cpu).numpy(), a)


def test_len_iter_item(dev):
    a, t = arange_nd((3, 2), dev)
    assert len(t) == 3
    assert [r.numpy().tolist() for r in t] == a.tolist()
    assert t[2, 1].item() == 5.0
    with pytest.raises(ak.ShapeError, match=r"\(3, 2\)"):
        t.item()
    with pytest.raises(ak.ShapeError):
        len(ak.tensor(1.0, device=dev))
    with pytest.raises(ak.ShapeError):
        bool(t)


# ============================================================================ views never copy

INDICES = [
    (1,),
    (-1,),
    (slice(None, None, 2),),
    (slice(None, None, -1),),
    (slice(1, 3), slice(None, None, -2), slice(5, 0, -2)),
    (Ellipsis, 3),
    (None, 1, Ellipsis, None),
    (slice(None), None, slice(None), 2),
    (slice(2, 2),),
    (slice(None, None, -3), -1),
    (slice(-2, None), slice(None), slice(None, None, 7)),
    (Ellipsis,),
    (),
    (slice(10, -10, -1),),
    (0, 0, 0),
    (Ellipsis, slice(None, None, -1), None),
    (slice(None, 1), slice(4, None, -4), slice(-1, None, -5)),
]


def assert_index_is_a_view_with_numpy_values(a: np.ndarray, t: ak.Tensor, index) -> None:
    """``t[index]`` allocates nothing, shares ``t``'s storage and holds ``a[index]``."""
    with no_allocation(t.device):
        v = t[index]
        assert v.storage is t.storage
    expected = a[index]
    assert v.shape == expected.shape
    np.testing.assert_array_equal(v.numpy(), expected)


@pytest.mark.parametrize("index", INDICES, ids=[repr(i) for i in INDICES])
def test_basic_indexing_is_a_view_with_numpy_values(dev, index):
    assert_index_is_a_view_with_numpy_values(*arange_nd((4, 5, 6), dev), index)


def test_index_errors(cpu):
    _, t = arange_nd((4, 5), cpu)
    with pytest.raises(ak.ShapeError, match=r"index 4 .*size 4"):
        t[4]
    with pytest.raises(ak.ShapeError, match=r"-6"):
        t[:, -6]
    with pytest.raises(ak.ShapeError, match=r"too many indices"):
        t[0, 0, 0]
    with pytest.raises(ak.ShapeError, match="ellipsis"):
        t[..., 0, ...]
    with pytest.raises(ak.ShapeError, match="step"):
        t[::0]
    with pytest.raises(ak.ShapeError):
        t[np.array([0, 1])]
    with pytest.raises(ak.ShapeError):
        t["a"]


def test_reshape_of_contiguous_data_is_a_view(dev):
    a, t = arange_nd((4, 6, 5), dev)
    for shape in [(120,), (-1,), (24, 5), (4, -1), (2, 2, 6, 5), (1, 120, 1), (5, 4, 3, 2), (4, 6, 5)]:
        with no_allocation(dev):
            v = t.reshape(shape)
            assert v.storage is t.storage
        np.testing.assert_array_equal(v.numpy(), a.reshape(shape))
    with no_allocation(dev):
        v = t.reshape(4, 30)  # varargs form
        w = t.view(-1, 5)
        f = t.flatten()
        f1 = t.flatten(1)
        s = t[1:3].reshape(-1)  # a contiguous slice with an offset
        n = t[:, 2:4].reshape(4, 2, 5)  # non-contiguous, yet viewable (numpy's rule)
    np.testing.assert_array_equal(v.numpy(), a.reshape(4, 30))
    np.testing.assert_array_equal(w.numpy(), a.reshape(-1, 5))
    np.testing.assert_array_equal(f.numpy(), a.reshape(-1))
    np.testing.assert_array_equal(f1.numpy(), a.reshape(4, 30))
    np.testing.assert_array_equal(s.numpy(), a[1:3].reshape(-1))
    np.testing.assert_array_equal(n.numpy(), a[:, 2:4].reshape(4, 2, 5))
    z = ak.zeros(0, 3, device=dev)
    assert z.reshape(3, 0).shape == (3, 0)
    assert z.reshape(-1).shape == (0,)


def test_reshape_of_a_non_contiguous_view_copies_and_is_right(dev):
    a, t = arange_nd((6, 8), dev)
    view = t.T  # (8, 6), strides (1, 8)
    before, nbuf = live_bytes(dev)
    r = view.reshape(48)
    assert r.storage is not t.storage
    assert r.is_contiguous
    after, nbuf_after = live_bytes(dev)
    assert after - before == r.storage.device_bytes and nbuf_after == nbuf + 1
    np.testing.assert_array_equal(r.numpy(), a.T.reshape(48))
    for src, np_src in [(t[::2], a[::2]), (t[:, ::-1], a[:, ::-1]), (t.T[1:5], a.T[1:5])]:
        np.testing.assert_array_equal(src.reshape(-1).numpy(), np_src.reshape(-1))
        np.testing.assert_array_equal(src.reshape(2, -1).numpy(), np_src.reshape(2, -1))


def test_view_never_copies_and_raises_where_reshape_would_copy(dev):
    a, t = arange_nd((6, 8), dev)
    cases = [
        (t, a, (4, 12)),
        (t[1:5], a[1:5], (-1,)),
        (t[:, 2:6], a[:, 2:6], (3, 2, 4)),  # non-contiguous, yet viewable
        (t.T, a.T, (8, 1, 6)),  # a size-1 dim added to a transpose
    ]
    with no_allocation(dev):
        views = [src.view(*shape) for src, _, shape in cases]
    for v, (_, np_src, shape) in zip(views, cases):
        assert v.storage is t.storage
        np.testing.assert_array_equal(v.numpy(), np_src.reshape(shape))
    with no_allocation(dev):
        for src, shape in [(t.T, (48,)), (t[:, :4], (24,)), (t.T, (2, 24))]:
            with pytest.raises(ak.ShapeError, match=r"without a copy.*reshape"):
                src.view(*shape)
    with pytest.raises(ak.ShapeError, match=r"view.*\(6, 8\).*\(5, 5\)"):
        t.view(5, 5)
    r = t.T.reshape(48)  # reshape may copy where view may not
    assert r.storage is not t.storage
    np.testing.assert_array_equal(r.numpy(), a.T.reshape(48))


def test_reshape_errors_name_both_shapes(cpu):
    _, t = arange_nd((4, 6), cpu)
    with pytest.raises(ak.ShapeError, match=r"\(4, 6\).*\(5, 5\)"):
        t.reshape(5, 5)
    with pytest.raises(ak.ShapeError, match=r"\(4, 6\).*\(7, -1\)"):
        t.reshape(7, -1)
    with pytest.raises(ak.ShapeError, match="-1"):
        t.reshape(-1, -1)
    with pytest.raises(ak.ShapeError):
        t.reshape(-2, -12)


def test_permute_transpose_T_mT_are_views(dev):
    a, t = arange_nd((2, 3, 4, 5), dev)
    with no_allocation(dev):
        views = {
            "permute": (t.permute(2, 0, 3, 1), a.transpose(2, 0, 3, 1)),
            "permute_tuple": (t.permute((3, 2, 1, 0)), a.transpose(3, 2, 1, 0)),
            "permute_neg": (t.permute(-1, 0, 1, 2), a.transpose(3, 0, 1, 2)),
            "transpose": (t.transpose(0, 2), a.swapaxes(0, 2)),
            "transpose_default": (t.transpose(), a.swapaxes(-2, -1)),
            "swapaxes": (t.swapaxes(1, -1), a.swapaxes(1, -1)),
            "T": (t.T, a.T),
            "mT": (t.mT, np.swapaxes(a, -1, -2)),
            "T_of_slice": (t[:, 1, ::-2].T, a[:, 1, ::-2].T),
            "double": (t.T.T, a),
        }
        for v, _ in views.values():
            assert v.storage is t.storage
    for name, (v, expected) in views.items():
        assert v.shape == expected.shape, name
        np.testing.assert_array_equal(v.numpy(), expected, err_msg=name)
    with pytest.raises(ak.ShapeError, match=r"\(2, 3, 4, 5\)"):
        t.permute(0, 1, 2)
    with pytest.raises(ak.ShapeError):
        t.permute(0, 0, 1, 2)
    with pytest.raises(ak.ShapeError, match="mT"):
        _ = ak.tensor([1.0, 2.0], device=dev).mT
    one = ak.tensor([1.0, 2.0, 3.0], device=dev)
    assert one.T.shape == (3,)


def test_expand_unsqueeze_squeeze_are_views(dev):
    a, t = arange_nd((3, 1, 4), dev)
    with no_allocation(dev):
        e = t.expand(2, 3, 5, 4)
        e2 = t.expand(-1, 6, -1)
        b = t.broadcast_to((3, 2, 4))
        u0, u_last, u_neg = t.unsqueeze(0), t.unsqueeze(3), t.unsqueeze(-2)
        s_all, s1 = t.squeeze(), t.squeeze(1)
        s_neg = t.squeeze(-2)
        for v in (e, e2, b, u0, u_last, u_neg, s_all, s1, s_neg):
            assert v.storage is t.storage
    np.testing.assert_array_equal(e.numpy(), np.broadcast_to(a, (2, 3, 5, 4)))
    np.testing.assert_array_equal(e2.numpy(), np.broadcast_to(a, (3, 6, 4)))
    np.testing.assert_array_equal(b.numpy(), np.broadcast_to(a, (3, 2, 4)))
    np.testing.assert_array_equal(u0.numpy(), a[None])
    np.testing.assert_array_equal(u_last.numpy(), a[..., None])
    np.testing.assert_array_equal(u_neg.numpy(), np.expand_dims(a, -2))
    np.testing.assert_array_equal(s_all.numpy(), a.squeeze())
    np.testing.assert_array_equal(s1.numpy(), a.squeeze(1))
    np.testing.assert_array_equal(s_neg.numpy(), a.squeeze(-2))
    # unsqueeze then a view on top of a non-contiguous view keeps working
    np.testing.assert_array_equal(t.T.unsqueeze(1).numpy(), np.expand_dims(a.T, 1))
    np.testing.assert_array_equal(e[1, :, ::2].T.numpy(), np.broadcast_to(a, (2, 3, 5, 4))[1, :, ::2].T)
    with pytest.raises(ak.ShapeError, match=r"\(3, 1, 4\).*\(3, 2, 5\)"):
        t.expand(3, 2, 5)
    with pytest.raises(ak.ShapeError):
        t.expand(4)
    with pytest.raises(ak.ShapeError, match="size 3"):
        t.squeeze(0)
    with pytest.raises(ak.ShapeError):
        t.unsqueeze(5)


def test_contiguous_copies_only_when_needed(dev):
    a, t = arange_nd((5, 7), dev)
    with no_allocation(dev):
        assert t.contiguous() is t
        row_block = t[1:4]
        assert row_block.is_contiguous and row_block.contiguous() is row_block
        single = t[2]
        assert single.contiguous() is single
        col = t[:, 3:4]  # (5, 1), stride 7: not contiguous
        assert not col.is_contiguous
        unit = t[2:3, 1:2]  # (1, 1): size-1 dims may have any stride
        assert unit.is_contiguous and unit.contiguous() is unit
    for view, expected in [(t.T, a.T), (t[:, ::2], a[:, ::2]), (t[::-1], a[::-1]), (col, a[:, 3:4])]:
        assert not view.is_contiguous
        before, nbuf = live_bytes(dev)
        c = view.contiguous()
        after, nbuf_after = live_bytes(dev)
        assert c.storage is not t.storage and c.is_contiguous
        assert c.strides == tuple(int(np.prod(c.shape[i + 1 :])) for i in range(c.ndim))
        assert after - before == c.storage.device_bytes and nbuf_after == nbuf + 1
        np.testing.assert_array_equal(c.numpy(), expected)
        # the copy is independent of the original
        c[...] = -1.0
        np.testing.assert_array_equal(t.numpy(), a)
        del c
    clone = t.clone()
    assert clone.storage is not t.storage
    np.testing.assert_array_equal(clone.numpy(), a)


def test_views_of_views_share_one_storage(dev):
    a, t = arange_nd((6, 6, 6), dev)
    with no_allocation(dev):
        v = t[1:, ::-1].permute(2, 0, 1)[::2, None, ..., 1:].expand(2, 3, 4, 5, 5)
        assert v.storage is t.storage
    expected = np.broadcast_to(a[1:, ::-1].transpose(2, 0, 1)[::2, None, ..., 1:], (2, 3, 4, 5, 5))
    np.testing.assert_array_equal(v.numpy(), expected)


# ============================================================================ writes into views


def test_setitem_scalars_tensors_arrays(dev):
    a, t = arange_nd((5, 6), dev)
    a = a.copy()
    t[1:3, ::2] = 5.0
    a[1:3, ::2] = 5.0
    t[:, 0] = ak.tensor(np.arange(10, 15, dtype=np.float32), device=dev)
    a[:, 0] = np.arange(10, 15)
    t.T[1] = np.full(5, -3.0, np.float32)  # column 1 through a transposed view
    a.T[1] = -3.0
    t[::-1, 4] = np.arange(5, dtype=np.float32)
    a[::-1, 4] = np.arange(5)
    t[4] = ak.tensor(np.arange(6, dtype=np.float32)[None], device=dev)[0]
    a[4] = np.arange(6)
    t[0:2, 2:4] = ak.tensor([[100.0, 200.0]], device=dev)  # broadcast (1, 2) -> (2, 2)
    a[0:2, 2:4] = [[100.0, 200.0]]
    t[-1, -1] = 9
    a[-1, -1] = 9
    t[...] = t  # self-assignment is a no-op
    np.testing.assert_array_equal(t.numpy(), a)
    t[2:2] = 1.0  # empty selection
    np.testing.assert_array_equal(t.numpy(), a)


def test_setitem_through_a_view_object_writes_the_base(dev):
    a, t = arange_nd((4, 4), dev)
    a = a.copy()
    v = t[1:, ::-2]
    v[0] = 42.0
    a[1:, ::-2][0] = 42.0
    v.T[1, 2] = -1.0
    a[1:, ::-2].T[1, 2] = -1.0
    np.testing.assert_array_equal(t.numpy(), a)
    np.testing.assert_array_equal(v.numpy(), a[1:, ::-2])


def test_setitem_overlapping_source_matches_numpy(dev):
    """``t[1:] = t[:-1]``: numpy reads the whole source before writing."""
    a, t = arange_nd((10,), dev)
    a = a.copy()
    t[1:] = t[:-1]
    a[1:] = a[:-1]
    np.testing.assert_array_equal(t.numpy(), a)
    b, u = arange_nd((6, 6), dev)
    b = b.copy()
    u[...] = u.T
    b[...] = b.T.copy()
    np.testing.assert_array_equal(u.numpy(), b)


def test_setitem_converts_dtype(dev):
    t = ak.zeros(4, dtype="int32", device=dev)
    t[1:3] = ak.tensor([2.7, -3.9], device=dev)
    np.testing.assert_array_equal(t.numpy(), [0, 2, -3, 0])  # truncation toward zero, as numpy
    f = ak.zeros(3, device=dev)
    f[:] = ak.tensor([1, 2, 3], device=dev)
    np.testing.assert_array_equal(f.numpy(), [1.0, 2.0, 3.0])


def test_setitem_shape_mismatch_names_both_shapes(cpu):
    t = ak.zeros(4, 5, device=cpu)
    with pytest.raises(ak.ShapeError, match=r"\(3,\).*\(4,\)|\(4,\).*\(3,\)"):
        t[:, 0] = ak.tensor([1.0, 2.0, 3.0], device=cpu)
    with pytest.raises(ak.ShapeError, match=r"\(2, 4\)"):
        t[:2, :4] = ak.zeros(3, 2, 4, device=cpu)  # more dims than the destination


# ============================================================================ storage lifetime


def test_storage_freed_when_the_last_view_goes(dev):
    base_bytes, base_buffers = live_bytes(dev)
    t = ak.tensor(np.ones((64, 33), np.float32), device=dev)
    held = t.storage.device_bytes
    assert held >= t.nbytes == 64 * 33 * 4
    views = [t[::2], t.T, t.reshape(-1), t[None, 3:5].expand(4, 2, 33), t[-1]]
    del t
    assert live_bytes(dev) == (base_bytes + held, base_buffers + 1)
    first = views.pop(0)
    views.clear()
    assert live_bytes(dev) == (base_bytes + held, base_buffers + 1)
    np.testing.assert_array_equal(first.numpy(), np.ones((32, 33), np.float32))
    del first
    assert live_bytes(dev) == (base_bytes, base_buffers)


def test_storage_in_a_reference_cycle_is_freed_by_gc(dev, run_isolated):
    """A tensor kept alive only by a reference cycle is freed by gc, and its buffer is reusable afterwards.

    (Run in a fresh process: gc finalises everything in a cycle, the device buffer object included,
    so a pool that takes that buffer back would hand out a dead one to every later test.)
    """
    run_isolated(
        """
        class Holder:
            pass

        gc.collect()
        base = dev.memory()["allocated_bytes"]
        for _ in range(3):
            h = Holder()
            h.self = h
            h.t = ak.zeros(100, device=dev)[::3]
            del h
            gc.collect()
            assert dev.memory()["allocated_bytes"] == base, dev.memory()
            # the same size again: whatever buffer comes back must work
            u = ak.tensor(np.arange(100, dtype=np.float32), device=dev)
            np.testing.assert_array_equal((u + 1).numpy(), np.arange(100) + 1)
            del u
        """,
        dev.spec,
    )


def test_temporaries_are_freed(dev):
    base = live_bytes(dev)
    a, t = arange_nd((7, 9), dev)
    expected = (a.T[::2] * 2.0 + 1.0).sum()
    got = ((t.T[::2] * 2.0 + 1.0).contiguous().reshape(-1)).numpy().sum()
    assert got == expected
    del t
    assert live_bytes(dev) == base


# ============================================================================ repr


def test_repr_one_liner(dev):
    t = ak.tensor(np.arange(12, dtype=np.float32).reshape(3, 4), device=dev)
    r = repr(t)
    assert "\n" not in r
    for piece in ("[3, 4]", "float32", dev.spec, "48 B", "x∈[0, 11]", "μ=5.5", "σ=3.452"):
        assert piece in r, (piece, r)
    assert "NaN" not in r and "Inf" not in r
    big = ak.zeros(1024, 256, device=dev)
    r = repr(big)
    assert "1.0 MiB" in r and "\n" not in r and "all zeros" in r
    wide = ak.tensor(np.array([1e-8, -123456.7, 3, 4, 5, 6, 7, 8.5]), device=dev)
    assert "\n" not in repr(wide)


def test_repr_flags_nan_and_inf(dev):
    t = ak.tensor([np.nan, np.inf, -np.inf, 1.0, 3.0, np.nan], device=dev)
    r = repr(t)
    assert "NaN!2" in r and "Inf!2" in r, r
    assert "x∈[1, 3]" in r, r  # range and moments over the finite values
    assert "\n" not in r


def test_repr_int_empty_view_f16(dev):
    r = repr(ak.tensor([3, -1, 7], device=dev))
    assert "int32" in r and "x∈[-1, 7]" in r and "12 B" in r and "μ" not in r
    r = repr(ak.zeros(0, 3, device=dev))
    assert "[0, 3]" in r and "empty" in r and "0 B" in r
    r = repr(ak.tensor(np.arange(6.0).reshape(2, 3), device=dev).T)
    assert "[3, 2]" in r and "view" in r
    assert "[]" in repr(ak.tensor(1.5, device=dev))
    if dev.supports_f16:
        r = repr(ak.ones(4, dtype="float16", device=dev))
        assert "float16" in r and "8 B" in r


# ============================================================================ property-based


@st.composite
def array_and_index(draw, max_dims=4):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=6))
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return shape, index


def test_hypothesis_basic_indexing(dev, n_examples):
    @settings(max_examples=n_examples(dev, cpu=60, webgpu=20))
    @given(array_and_index())
    def check(case):
        shape, index = case
        a = np.arange(math.prod(shape), dtype=np.float32).reshape(shape) - 7.0
        assert_index_is_a_view_with_numpy_values(a, ak.tensor(a, device=dev), index)

    check()


@st.composite
def shape_and_reshape(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    n = math.prod(shape)
    # factor n into a random new shape
    new, rest = [], n
    while rest > 1 and len(new) < 4:
        divisors = [d for d in range(2, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        new.append(d)
        rest //= d
    if rest > 1:
        new[-1] *= rest
    new = draw(st.permutations(new)) if new else [1]
    if draw(st.booleans()):
        new = list(new) + [1]
    if draw(st.booleans()):
        new = list(new)
        new[draw(st.integers(0, len(new) - 1))] = -1
    perm = draw(st.permutations(range(len(shape))))
    return shape, tuple(new), tuple(perm)


def test_hypothesis_reshape_and_permute(dev, n_examples):
    @settings(max_examples=n_examples(dev, cpu=50, webgpu=15))
    @given(shape_and_reshape())
    def check(case):
        shape, new_shape, perm = case
        a = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
        t = ak.tensor(a, device=dev)
        with no_allocation(dev):
            r = t.reshape(new_shape)
            p = t.permute(*perm)
            assert r.storage is t.storage and p.storage is t.storage
        np.testing.assert_array_equal(r.numpy(), a.reshape(new_shape))
        np.testing.assert_array_equal(p.numpy(), a.transpose(perm))
        # reshape of the permuted view: numpy decides whether it copies; values must agree either way
        np.testing.assert_array_equal(p.reshape(-1).numpy(), a.transpose(perm).reshape(-1))

    check()


def test_hypothesis_setitem(dev, n_examples):
    @settings(max_examples=n_examples(dev, cpu=50, webgpu=12))
    @given(array_and_index(max_dims=3), st.booleans())
    def check(case, scalar):
        shape, index = case
        a = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
        t = ak.tensor(a, device=dev)
        target_shape = a[index].shape
        value = (
            np.float32(-2.5)
            if scalar
            else (np.arange(math.prod(target_shape), dtype=np.float32) * 3).reshape(target_shape)
        )
        t[index] = value if scalar else ak.tensor(value, device=dev)
        a = a.copy()
        a[index] = value
        np.testing.assert_array_equal(t.numpy(), a)

    check()

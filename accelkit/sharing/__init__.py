"""Sharing device memory between models: named shared tensors (views, no copies) and weight dedup.

Named tensors: a producer publishes, consumers acquire views; every handle counts, and the tensor
is dropped when the last one is released (handles are context managers)::

    with ak.sharing.publish("text/hidden", out.last_hidden_state, owner="bert"):
        with ak.sharing.acquire("text/hidden", consumer="classifier") as h:
            logits = bert.classifier(h.tensor[:, 0])

Weight dedup: loading weights identical (same sha256, dtype, shape) to ones a live model on the
same device holds reuses that storage, so a second load of a checkpoint, or two fine-tunes with
frozen embeddings in common, hold those bytes once; ``no_dedup()`` turns it off for a block.

``report()`` shows both: what is shared, by whom, and the bytes saved.
"""

from __future__ import annotations

from .dedup import dedup_enabled, dedup_entries, no_dedup, set_dedup
from .registry import Registry, SharedTensor, SharingError
from .report import SharingReport

#: the process-wide registry the module-level functions use
registry = Registry()


def publish(name: str, tensor, owner: str | None = None, *, replace: bool = False) -> SharedTensor:
    """Publish ``tensor`` as ``name``; returns the producer's handle (see :meth:`Registry.publish`)."""
    return registry.publish(name, tensor, owner, replace=replace)


def acquire(name: str, consumer: str | None = None, *, timeout: float | None = None) -> SharedTensor:
    """A consumer handle on ``name`` whose ``.tensor`` is a view (see :meth:`Registry.acquire`)."""
    return registry.acquire(name, consumer, timeout=timeout)


def get_or_publish(
    name: str, make, *, owner: str | None = None, consumer: str | None = None, timeout: float | None = None
) -> SharedTensor:
    """Acquire ``name``, running ``make()`` once to publish it if nobody has (see :meth:`Registry.get_or_publish`)."""
    return registry.get_or_publish(name, make, owner=owner, consumer=consumer, timeout=timeout)


def release(handle: SharedTensor | str) -> None:
    """Release a handle from ``publish`` or ``acquire`` (the same as ``handle.release()``), or, given
    a name, the producer's hold on it (consumers keep theirs)."""
    registry.release(handle)


def names() -> list[str]:
    """The names published now."""
    return registry.names()


def report(*, dedup: bool = True) -> SharingReport:
    """What is shared now, by whom, and the bytes saved (text and HTML)."""
    return registry.report(dedup=dedup)


__all__ = [
    "Registry",
    "SharedTensor",
    "SharingError",
    "SharingReport",
    "acquire",
    "dedup_enabled",
    "dedup_entries",
    "get_or_publish",
    "names",
    "no_dedup",
    "publish",
    "registry",
    "release",
    "report",
    "set_dedup",
]

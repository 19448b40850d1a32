"""The pool's futures: done-callbacks run on a callback thread, and failures keep no frame's locals.

A ``concurrent.futures.Future`` runs its done-callbacks in the thread that sets its result. For a
pool that is the worker (or, on Dask, the thread that collects results), so a callback that waits
for another request of the same pool (``fut.result()`` inside the callback) would wait for the very
thread it blocks: a deadlock. ``PoolFuture`` hands its callbacks to a ``CallbackThread`` instead,
which runs them in order, so a callback may wait for anything.

A stored exception's traceback references the frames it passed through, and with them their local
variables: a model's activations on the device, the model itself. ``scrub`` drops those locals
(file and line stay, so the traceback still prints) and leaves out the frames of the pool's own
threads that are still running.
"""

from __future__ import annotations

import queue
import threading
import traceback
from concurrent.futures import Future


class CallbackThread:
    """One daemon thread that runs posted callables in order (started on first use)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.pending = 0
        self.idle = threading.Condition(self.lock)

    def post(self, fn) -> None:
        with self.lock:
            self.pending += 1
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self.thread.start()
        self.queue.put(fn)

    def _loop(self) -> None:
        while True:
            fn = self.queue.get()
            try:
                fn()
            finally:
                with self.lock:
                    self.pending -= 1
                    if not self.pending:
                        self.idle.notify_all()
            del fn

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every posted callable ran (at once when called from the callback thread itself)."""
        if threading.current_thread() is self.thread:
            return self.pending <= 1
        with self.lock:
            return self.idle.wait_for(lambda: not self.pending, timeout)


class PoolFuture(Future):
    """A Future whose done-callbacks run on the pool's callback thread, never on the thread that
    finished it (callbacks added after it finished still run at once in the caller's thread)."""

    def __init__(self, callbacks: CallbackThread) -> None:
        super().__init__()
        self._callback_thread = callbacks

    def _invoke_callbacks(self) -> None:  # concurrent.futures calls this after set_result/exception/cancel
        if self._done_callbacks:
            self._callback_thread.post(super()._invoke_callbacks)


def scrub(exc: BaseException, _seen: set[int] | None = None) -> BaseException:
    """Let ``exc`` (and its cause/context chain) keep no frame's local variables: finished frames
    are cleared, frames still running (the worker's own loop) are left out of the traceback."""
    seen = set() if _seen is None else _seen
    if id(exc) in seen:
        return exc
    seen.add(id(exc))
    tb = exc.__traceback__
    while tb is not None and _running(tb.tb_frame):
        tb = tb.tb_next
    exc.__traceback__ = tb
    traceback.clear_frames(tb)
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            scrub(linked, seen)
    return exc


def _running(frame) -> bool:
    try:
        frame.clear()
    except RuntimeError:  # "cannot clear an executing frame" (or a suspended one)
        return True
    return False


__all__ = ["CallbackThread", "PoolFuture", "scrub"]

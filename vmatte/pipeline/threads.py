"""The only module that knows about threads.

Decode and encode run in worker threads (PyAV releases the GIL while it codes); the main thread alone owns the
model/GPU. Queues are bounded, so RAM stays flat however long the clip. An exception in a worker is carried to
the main thread and re-raised there; ``close()`` always joins, so no thread is ever left running; a shared
cancel event stops everything.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1  # how often blocked queue operations look at the cancel event


class Cancelled(Exception):
    """Raised inside workers/consumers when the run's cancel event is set."""


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, item: Any, cancel: threading.Event) -> None:
    while True:
        if cancel.is_set():
            raise Cancelled()
        try:
            q.put(item, timeout=_POLL_S)
            return
        except queue.Full:
            continue


class Prefetch(Generic[T]):
    """Run ``source`` (an iterable) in a thread, ``depth`` items ahead of the consumer.

    Iterate over the Prefetch in the main thread; an exception raised by the source is re-raised there.
    Use as a context manager (or call ``close()``) so the thread is joined even when the consumer stops early.
    """

    def __init__(
        self, source: Iterable[T], depth: int, cancel: threading.Event | None = None, name: str = "decode"
    ):
        self._source = source
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._cancel = cancel or threading.Event()
        self._stop = threading.Event()  # consumer-side early stop (not a user cancel)
        self._thread = threading.Thread(target=self._work, name=f"vmatte-{name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        it = None
        try:
            it = iter(self._source)
            for item in it:
                if self._stop.is_set():
                    return
                _put(self._q, item, self._stop_or_cancel)
            _put(self._q, _DONE, self._stop_or_cancel)
        except Cancelled:
            return
        except BaseException as exc:  # carried to the consumer
            try:
                _put(self._q, _Failure(exc), self._stop_or_cancel)
            except Cancelled:
                return
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()  # closes generators → their files/containers
                except Exception:
                    pass

    @property
    def _stop_or_cancel(self) -> threading.Event:
        # one event the worker can poll: set when either the consumer stops or the user cancels
        if self._cancel.is_set():
            self._stop.set()
        return self._stop

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                item = self._q.get(timeout=_POLL_S)
            except queue.Empty:
                if self._cancel.is_set():
                    self._stop.set()
                    raise Cancelled() from None
                if not self._thread.is_alive() and self._q.empty():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        self._stop.set()
        # drain so a blocked put wakes up
        while self._thread.is_alive():
            try:
                self._q.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=_POLL_S)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Sink(Generic[T]):
    """Feed items to ``consume(item)`` in a worker thread through a bounded queue.

    ``put(item)`` blocks when the worker is ``depth`` items behind (back-pressure) and re-raises the worker's
    exception if it failed. ``close()`` waits until everything was consumed, then joins and re-raises.
    ``abort()`` drops what is queued and joins.
    """

    def __init__(
        self,
        consume: Callable[[T], None],
        depth: int,
        cancel: threading.Event | None = None,
        name: str = "encode",
    ):
        self._consume = consume
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._cancel = cancel or threading.Event()
        self._abort = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=f"vmatte-{name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            try:
                item = self._q.get(timeout=_POLL_S)
            except queue.Empty:
                if self._abort.is_set():
                    return
                continue
            if item is _DONE or self._abort.is_set():
                return
            try:
                self._consume(item)
            except BaseException as exc:
                self._error = exc
                self._abort.set()
                return

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        self._raise_if_failed()
        while True:
            if self._cancel.is_set():
                raise Cancelled()
            if self._error is not None or not self._thread.is_alive():
                self._raise_if_failed()
                raise RuntimeError("encode thread stopped unexpectedly")
            try:
                self._q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait for the queue to drain, join, and re-raise any worker error."""
        if self._thread.is_alive():
            while True:
                if self._error is not None or not self._thread.is_alive():
                    break
                try:
                    self._q.put(_DONE, timeout=_POLL_S)
                    break
                except queue.Full:
                    if self._cancel.is_set():
                        self.abort()
                        raise Cancelled() from None
            self._thread.join()
        self._raise_if_failed()

    def abort(self) -> None:
        self._abort.set()
        while self._thread.is_alive():
            try:
                self._q.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=_POLL_S)


def run_in_thread(fn: Callable[[], T], name: str = "worker") -> Callable[..., T]:
    """Start ``fn`` in a (daemon) thread now; return ``join(timeout=None)``, which waits for it and returns its
    result or re-raises its error; with a timeout in seconds it raises TimeoutError if ``fn`` is still running
    then (the thread is left to finish on its own: for calls that cannot be interrupted, like DNS lookups)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=work, name=f"vmatte-{name}", daemon=True)
    t.start()

    def join(timeout: float | None = None) -> T:
        t.join(timeout)
        if t.is_alive():
            raise TimeoutError(f"{t.name} still running after {timeout} s")
        if "error" in box:
            raise box["error"]
        return box["value"]

    return join


class Worker:
    """One long-lived helper thread that runs submitted calls in order, for work handed off once per frame.

    ``submit(fn)`` returns a function that waits for ``fn``'s result (or re-raises its error), like
    :func:`run_in_thread`. Why not a thread per call: a new thread per frame pair costs a thread start each time
    and, measured, leaves 0.8-2.2 KB behind in OpenCV's per-thread storage for every thread that ran OpenCV
    code (DIS at 160x90 and 640x360), so a long clip would grow without bound. The thread starts on the first
    submit and ends at ``close()`` (idempotent; a later submit starts a new one).
    """

    def __init__(self, name: str = "worker") -> None:
        self.name = name
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[[], T]) -> Callable[[], T]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"vmatte-{self.name}")
        return self._pool.submit(fn).result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class AnyEvent:
    """Read-only view that is set when any of ``events`` is set (for a worker that must stop on a user cancel
    or when the main thread gives up on its result)."""

    def __init__(self, *events: threading.Event | None) -> None:
        self._events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


# The cap in force (0 = none) and torch's pool size before vmatte capped it; torch usually loads *inside* the
# capped block (the engine is built after validation), so the engine loader calls cap_torch() once it has torch.
_cap: dict[str, int | None] = {"n": 0, "torch_before": None}


def cap_torch() -> None:
    """Apply the cap of the enclosing :func:`cpu_thread_limit` block to torch, if torch is loaded now and was not
    capped yet. Engines call this right after importing torch; outside a capped block it does nothing."""
    torch = sys.modules.get("torch")
    n = _cap["n"] or 0
    if n <= 0 or torch is None or _cap["torch_before"] is not None:
        return
    _cap["torch_before"] = torch.get_num_threads()
    torch.set_num_threads(n)


@contextlib.contextmanager
def cpu_thread_limit(n: int) -> Iterator[dict[str, int]]:
    """Cap the numeric libraries' own thread pools at ``n`` threads while the block runs, then restore them.

    n = 0 leaves every pool as it is (the libraries default to all cores). The pools capped are OpenCV's
    (flow, resizes, morphology), torch's intra-op pool on CPU (now if loaded, else when the engine loads it:
    :func:`cap_torch`) and BLAS/OpenMP (numpy, scipy, through threadpoolctl). Why: vmatte already runs decode,
    propagation, matting, smoothing and encode in parallel threads, so a farm task given N cores that also lets
    every library start one thread per core of the *machine* oversubscribes it, and two tasks on one node slow
    each other down. Yields what was set. The caps are process-wide: do not run two differently capped runs in
    one process at once.
    """
    if n <= 0:
        yield {}
        return
    import cv2
    from threadpoolctl import threadpool_limits

    before_cv = cv2.getNumThreads()
    cv2.setNumThreads(n)
    _cap["n"], _cap["torch_before"] = n, None
    cap_torch()  # never imports torch: capped here only if already loaded
    try:
        with threadpool_limits(limits=n):
            yield {"opencv": n, "torch": n, "blas": n}
    finally:
        cv2.setNumThreads(before_cv)
        torch, before_torch = sys.modules.get("torch"), _cap["torch_before"]
        if torch is not None and before_torch is not None:
            torch.set_num_threads(before_torch)
        _cap["n"], _cap["torch_before"] = 0, None

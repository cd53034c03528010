"""The only module that knows about threads.

Decode and encode run in worker threads (PyAV releases the GIL while it codes); the main thread alone owns the
model/GPU. Queues are bounded, so RAM stays flat however long the clip. An exception in a worker is carried to
the main thread and re-raised there; ``close()`` always joins, so no thread is ever left running; a shared
cancel event stops everything.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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

    With ``prepare``, each item becomes ``consume(prepare(item))``: ``prepare`` runs on ``workers`` threads
    side by side (``workers`` = 0: in the consuming thread), ``consume`` still in put order in one thread.
    The consuming thread hands queued items to the workers only while fewer than ``workers`` + 1 are prepared
    or being prepared, so memory stays bounded: ``depth`` raw items queued plus ``workers`` + 1 prepared ones
    (a prepared frame is larger than a queued one: foreground colour, encoder pixels).
    """

    def __init__(
        self,
        consume: Callable[[Any], None],
        depth: int,
        cancel: threading.Event | None = None,
        name: str = "encode",
        prepare: Callable[[T], Any] | None = None,
        workers: int = 0,
    ):
        self._prepare = prepare
        self._workers = workers
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix=f"vmatte-{name}-prep")
            if prepare is not None and workers > 0
            else None
        )
        if prepare is not None and self._pool is None:
            consume = _then(prepare, consume)
        self._consume = consume
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._cancel = cancel or threading.Event()
        self._abort = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=f"vmatte-{name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        window: deque[Future] = deque()  # items handed to the workers, in put order
        try:
            while True:
                try:
                    item = self._q.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._abort.is_set():
                        return
                    while window and window[0].done():  # the producer is slow: write what is ready
                        self._consume(window.popleft().result())
                    continue
                if self._abort.is_set():
                    return
                if item is _DONE:
                    while window:
                        self._consume(window.popleft().result())
                    return
                if self._pool is None:
                    self._consume(item)
                    continue
                window.append(self._pool.submit(self._prepare, item))  # type: ignore[arg-type]
                while len(window) > self._workers:
                    self._consume(window.popleft().result())
        except BaseException as exc:
            self._error = exc
            self._abort.set()
        finally:
            for job in window:
                job.cancel()

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
        self._stop_pool()
        self._raise_if_failed()

    def abort(self) -> None:
        self._abort.set()
        while self._thread.is_alive():
            try:
                self._q.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=_POLL_S)
        self._stop_pool()

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _then(first: Callable[[T], Any], second: Callable[[Any], None]) -> Callable[[T], None]:
    return lambda item: second(first(item))


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


# ---------------------------------------------------------------------------------------------------------
# Thread policy: how many threads each numeric library's own pool may start, decided here and nowhere else.

OPENCV_MAX = 4  # OpenCV's pool: its pthreads workers busy-wait between jobs (see ThreadPlan)
TORCH_GPU_MAX = 4  # torch's CPU pool when the model runs on a GPU: it only feeds the device
ENCODE_WORKERS_MAX = 4  # decontamination + pixel conversion side by side (frames in flight: workers + queue)


@dataclass(frozen=True)
class ThreadPlan:
    """Pool sizes for one run on ``cores`` cores (``--cpu-threads``, else the cores this process may use).

    Why not every pool at ``cores``: vmatte runs ~5 busy threads of its own (decode, propagation + its flow
    helper, the model loop with smoothing, encode), and each may call into OpenCV; OpenCV's pthreads pool
    keeps its idle workers spinning for a while after every parallel region, so a pool as wide as a 16-core
    machine burns CPU on each small resize or blur (measured with ``scripts/bench_budget.py --variants
    plan,opencv=16``, 1080p default RGBA output, two interleaved rounds on a 2-core host: 1.67 vs 1.51 CPU s
    per frame, all of it in native threads; on 16 real cores there is more to spin on). torch's CPU pool
    runs the model when the engine is on the CPU (then it gets every core), but only input packing when the
    model runs on a GPU. FFmpeg's encoder threads are set per writer (``pipeline.encode_threads``).

    opencv, torch_cpu, torch_gpu, blas: pool sizes; encode_workers: threads of the encode stage that
    decontaminate and convert frames side by side (0: all of it in the encode thread).
    """

    cores: int
    opencv: int
    torch_cpu: int
    torch_gpu: int
    blas: int
    encode_workers: int

    def torch_for(self, device: str) -> int:
        """torch intra-op threads for an engine on ``device`` ("cpu", "cuda", "cuda:1", "mps" ...)."""
        return self.torch_cpu if str(device).split(":")[0] == "cpu" else self.torch_gpu


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity: a container's or taskset's limit), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan_threads(cpu_threads: int = 0, cores: int | None = None) -> ThreadPlan:
    """The :class:`ThreadPlan` for ``cpu_threads`` (0: all of ``cores``, default :func:`usable_cores`)."""
    n = cpu_threads if cpu_threads > 0 else (cores or usable_cores())
    small = min(n, max(2, min(OPENCV_MAX, n // 2)))  # 1 core → 1; 2-3 → 2 (DIS flow's two directions)
    return ThreadPlan(
        cores=n,
        opencv=small,
        torch_cpu=n,
        torch_gpu=min(n, TORCH_GPU_MAX),
        blas=small,
        # below 4 cores the stage's own thread is enough: workers would only queue behind the others
        encode_workers=0 if n < 4 else min(ENCODE_WORKERS_MAX, n // 3),
    )


# The plan in force (None = none) and torch's pool size before vmatte set it; torch usually loads *inside* the
# block (the engine is built after validation), so the engine loader calls cap_torch() once it has torch.
_cap: dict[str, Any] = {"plan": None, "torch_before": None}


def current_plan() -> ThreadPlan:
    """The plan of the enclosing :func:`cpu_thread_limit` block, else the plan for this machine."""
    return _cap["plan"] or plan_threads(0)


def cap_torch(device: str = "cpu") -> None:
    """Apply the enclosing :func:`cpu_thread_limit` block's plan to torch's intra-op pool for an engine on
    ``device``, if torch is loaded now (the size before the block is restored at its end). Engines call this
    right after loading, the runner for an engine passed in; outside a block it does nothing."""
    torch = sys.modules.get("torch")
    plan = _cap["plan"]
    if plan is None or torch is None:
        return
    if _cap["torch_before"] is None:
        _cap["torch_before"] = torch.get_num_threads()
    if torch.get_num_threads() != plan.torch_for(device):
        torch.set_num_threads(plan.torch_for(device))


@contextlib.contextmanager
def cpu_thread_limit(n: int, cores: int | None = None) -> Iterator[dict[str, int]]:
    """Size the numeric libraries' own thread pools per :func:`plan_threads` (``n`` = ``--cpu-threads``, 0 =
    the machine's cores) while the block runs, then restore them.

    The pools set are OpenCV's (flow, resizes, morphology), torch's intra-op pool (now if loaded, else when the
    engine loads it: :func:`cap_torch`; sized for the engine's device) and BLAS/OpenMP (numpy, scipy, through
    threadpoolctl). Why: vmatte already runs decode, propagation, matting, smoothing and encode in parallel
    threads, so a farm task given N cores that also lets every library start one thread per core of the
    *machine* oversubscribes it, and two tasks on one node slow each other down. Yields what was set. The
    settings are process-wide: do not run two differently capped runs in one process at once.
    """
    import cv2
    from threadpoolctl import threadpool_limits

    plan = plan_threads(n, cores)
    before_cv = cv2.getNumThreads()
    cv2.setNumThreads(plan.opencv)
    _cap["plan"], _cap["torch_before"] = plan, None
    cap_torch()  # never imports torch: set here (for the CPU) only if already loaded
    try:
        with threadpool_limits(limits=plan.blas):
            yield {"opencv": plan.opencv, "torch": plan.torch_cpu, "blas": plan.blas}
    finally:
        cv2.setNumThreads(before_cv)
        torch, before_torch = sys.modules.get("torch"), _cap["torch_before"]
        if torch is not None and before_torch is not None:
            torch.set_num_threads(before_torch)
        _cap["plan"], _cap["torch_before"] = None, None

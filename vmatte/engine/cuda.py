"""The only module that touches CUDA: device and precision choice, streams, events and pinned host memory.

:class:`DeviceRunner` moves a batch through three stages on three CUDA streams so that, with two batches in
flight (``BatchingEngine.max_in_flight = 2``), the upload of batch k+1 and the download of batch k-1 overlap the
compute of batch k::

    h2d stream      [up k+1]            [up k+2]
    compute stream  [  compute k      ][  compute k+1    ]
    d2h stream                [down k-1]          [down k]

Each stage waits on the previous stage's event, never on the host. Host buffers are page-locked (pinned) and
recycled through a small pool keyed by shape, so uploads/downloads are true async DMA and no pinned memory is
allocated per frame. On the CPU the very same code runs with no-op streams and wall-clock events, so the
bookkeeping (pool recycling, ordering, timing) is exercised by CI without a GPU.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vmatte.errors import DeviceError

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class _NullStream:
    """Stands in for ``torch.cuda.Stream`` on the CPU: work is synchronous, so ordering is already implied."""

    def wait_event(self, event: Any) -> None:
        pass

    def synchronize(self) -> None:
        pass


class _WallEvent:
    """Stands in for ``torch.cuda.Event(enable_timing=True)`` on the CPU: records host time at ``record()``."""

    def __init__(self) -> None:
        self.t: float | None = None

    def record(self, stream: Any = None) -> None:
        self.t = time.perf_counter()

    def query(self) -> bool:
        return self.t is not None

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: _WallEvent) -> float:
        """Milliseconds from this event to ``end`` (same unit as CUDA events)."""
        return 1000.0 * ((end.t or 0.0) - (self.t or 0.0))


@dataclass
class Ticket:
    """One submitted batch. ``result`` is filled by :meth:`DeviceRunner.wait`."""

    out_host: torch.Tensor  # pinned (B, ...) float32 receiving the result
    done: Any  # event: download finished
    compute_start: Any
    compute_end: Any
    n: int
    meta: dict = field(default_factory=dict)


class DeviceRunner:
    """Upload → compute → download with overlap on CUDA; the same logic, synchronously, on the CPU.

    Usage::

        buf = runner.host_buffer((B, H, W, 4), torch.uint8)   # pinned; fill buf.numpy()
        t = runner.submit(buf, fn)        # fn: device tensor (B, H, W, 4) uint8 -> device tensor (B, h, w) float
        ...                               # submit more (they queue on the streams)
        alphas = runner.wait(t)           # (B, h, w) float32 numpy, owned by the caller

    ``compute_s`` sums device time spent inside ``fn`` (CUDA events, so it is GPU-busy time, not host time).
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        if self.is_cuda:
            self.h2d: Any = torch.cuda.Stream(self.device)
            self.compute: Any = torch.cuda.Stream(self.device)
            self.d2h: Any = torch.cuda.Stream(self.device)
        else:
            self.h2d = self.compute = self.d2h = _NullStream()
        self._free: dict[tuple, list[torch.Tensor]] = {}
        self._busy: list[tuple[torch.Tensor, Any]] = []  # (buffer, event after which it may be reused)
        self.pinned_bytes = 0
        self.compute_s = 0.0
        self.batches = 0

    # -- streams and events ---------------------------------------------------------------------------------
    def _event(self, timing: bool = False) -> Any:
        return torch.cuda.Event(enable_timing=timing) if self.is_cuda else _WallEvent()

    def _on(self, stream: Any):
        return torch.cuda.stream(stream) if self.is_cuda else contextlib.nullcontext()

    # -- pinned host buffers ----------------------------------------------------------------------------------
    def host_buffer(self, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        """A host tensor of ``shape``/``dtype`` (page-locked on CUDA), recycled once its last transfer finished."""
        still_busy = []
        for buf, ev in self._busy:
            if ev.query():
                self._free.setdefault((tuple(buf.shape), buf.dtype), []).append(buf)
            else:
                still_busy.append((buf, ev))
        self._busy = still_busy
        key = (tuple(shape), dtype)
        if self._free.get(key):
            return self._free[key].pop()
        buf = torch.empty(shape, dtype=dtype, pin_memory=self.is_cuda)
        self.pinned_bytes += buf.numel() * buf.element_size() if self.is_cuda else 0
        return buf

    def _release_after(self, buf: torch.Tensor, event: Any) -> None:
        self._busy.append((buf, event))

    def trim(self) -> None:
        """Drop pooled host buffers (e.g. when the frame size changes between clips)."""
        self._free.clear()
        self.pinned_bytes = sum(b.numel() * b.element_size() for b, _ in self._busy) if self.is_cuda else 0

    # -- the pipeline -----------------------------------------------------------------------------------------
    def submit(self, host_in: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], **meta) -> Ticket:
        """Queue upload of ``host_in``, ``fn`` on the compute stream, and the download of its result.

        Exceptions raised by ``fn`` while queueing (e.g. ``torch.OutOfMemoryError``) propagate to the caller
        with nothing left queued that refers to the failed batch's output.
        """
        uploaded = self._event()
        with self._on(self.h2d):
            dev_in = host_in.to(self.device, non_blocking=True)
            uploaded.record(self.h2d)
        self._release_after(host_in, uploaded)

        self.compute.wait_event(uploaded)
        start, end = self._event(timing=True), self._event(timing=True)
        with self._on(self.compute):
            if self.is_cuda:
                # dev_in was allocated on the h2d stream: tell the caching allocator it is used on this one too
                dev_in.record_stream(self.compute)
            start.record(self.compute)
            out = fn(dev_in)
            end.record(self.compute)
        del dev_in

        self.d2h.wait_event(end)
        out_host = self.host_buffer(tuple(out.shape), torch.float32)
        done = self._event()
        with self._on(self.d2h):
            if self.is_cuda:
                out.record_stream(self.d2h)
            out_host.copy_(out, non_blocking=True)
            done.record(self.d2h)
        self.batches += 1
        return Ticket(out_host, done, start, end, int(out.shape[0]), dict(meta))

    def wait(self, ticket: Ticket) -> np.ndarray:
        """Block until ``ticket``'s result is on the host; return it as an owned float32 numpy array."""
        ticket.done.synchronize()
        self.compute_s += ticket.compute_start.elapsed_time(ticket.compute_end) / 1000.0
        result = ticket.out_host.numpy().copy()
        self._release_after(ticket.out_host, ticket.done)
        return result

    # -- memory -------------------------------------------------------------------------------------------------
    def after_oom(self) -> None:
        """Return cached blocks to the driver after an out-of-memory error so a smaller retry can succeed."""
        if self.is_cuda:
            self.compute.synchronize()
            torch.cuda.empty_cache()

    def free_bytes(self) -> int | None:
        """Free device memory in bytes (None on the CPU, where the OS decides)."""
        if not self.is_cuda:
            return None
        free, _total = torch.cuda.mem_get_info(self.device)
        return int(free)

    def synchronize(self) -> None:
        if self.is_cuda:
            torch.cuda.synchronize(self.device)


# -- device, precision, allocation failures -------------------------------------------------------------
@contextlib.contextmanager
def exact_fp32(active: bool):
    """Disable TF32 (on by default for cuDNN convolutions) while active: "fp32" means fp32 (parity <= 1e-4)."""
    if not active:
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def is_oom(exc: BaseException) -> bool:
    """True for an allocation failure: torch's CUDA OOM, or the RuntimeError the CPU allocator raises."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def resolve_device(name: str) -> torch.device:
    """ "auto" | "cpu" | "cuda" | "cuda:N" → a usable torch.device; raises DeviceError naming the fix."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device '{name}'", hint="use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device '{name}' requested but CUDA is not available (torch {torch.__version__})",
                hint="use --device cpu, or install a CUDA build of torch on a machine with a GPU",
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{name}' does not exist: {torch.cuda.device_count()} GPU(s) visible")
    elif dev.type != "cpu":
        raise DeviceError(f"device type '{dev.type}' is not supported", hint="use auto, cpu, cuda or cuda:N")
    return dev


def post_device(option: str, engine_device: torch.device | str) -> str | None:
    """The torch device of the temporal smoother's per-point work for ``[pipeline] post_device`` = ``option``:
    the engine's device when the option is "auto" and that device is CUDA, else None (numpy/OpenCV on the
    CPU: on a CPU engine the numpy path is the faster one)."""
    dev = torch.device(engine_device)
    return str(dev) if option == "auto" and dev.type == "cuda" else None


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """ "auto" | "fp32" | "fp16" | "bf16" → autocast dtype; auto = bf16 (else fp16) on CUDA, fp32 on the CPU."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return _DTYPES[precision]


def cap_process_memory(device: torch.device, budget_bytes: int) -> None:
    """Make the CUDA caching allocator refuse allocations beyond ``budget_bytes`` on ``device`` (raises OOM,
    which the engine's back-off and tiling then handle), so a run provably stays inside a memory budget."""
    if device.type != "cuda" or budget_bytes <= 0:
        return
    index = _index(device)
    total = torch.cuda.get_device_properties(index).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, budget_bytes / total), index)


def uncap_process_memory(device: torch.device) -> None:
    """Undo :func:`cap_process_memory` (the cap is process-wide; an engine that set it lifts it on close)."""
    if device.type == "cuda":
        torch.cuda.set_per_process_memory_fraction(1.0, _index(device))


def _index(device: torch.device) -> int:
    """The CUDA ordinal of ``device``: torch's memory-fraction API refuses a bare ``cuda`` (no index)."""
    return device.index if device.index is not None else torch.cuda.current_device()


def describe_devices() -> dict[str, Any]:
    """torch / CUDA state for ``vmatte info``."""
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_bf16_autocast": True,
    }
    if torch.cuda.is_available():
        gpus = []
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            free, total = torch.cuda.mem_get_info(i)
            gpus.append(
                {
                    "index": i,
                    "name": p.name,
                    "capability": f"{p.major}.{p.minor}",
                    "memory_total_gb": round(total / 2**30, 2),
                    "memory_free_gb": round(free / 2**30, 2),
                    "bf16": bool(torch.cuda.is_bf16_supported()),
                }
            )
        info["gpus"] = gpus
    return info

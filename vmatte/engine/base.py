"""The engine protocol: frames with a trimap in, frames with alpha out, in PyAV's encoder idiom.

    out = engine.push(frame)   # may return [] (buffering a batch) or several frames (a batch finished)
    out = engine.flush()       # at end of clip: everything still buffered or in flight

Frames come out in the order they went in. After ``flush()`` the engine holds no per-clip state, so one loaded
engine serves many clips (the Python API reuses it). ``close()`` frees the model.

:class:`BatchingEngine` does the bookkeeping (batching, frames with no unknown pixels skip the model, NaN
checks); engines implement ``_launch`` (start a batch, maybe asynchronously) and ``_collect`` (wait for it).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vmatte.errors import NumericsError
from vmatte.frame import TRIMAP_FG, TRIMAP_UNKNOWN, Frame


@runtime_checkable
class Engine(Protocol):
    """What the runner needs from a matting engine (:class:`BatchingEngine` provides the defaults)."""

    name: str
    batch_size: int  # frames per forward pass: the runner sizes its queues from it
    load_warnings: tuple[str, ...]  # said when it loaded; repeated in the report of every run reusing it
    library_notes: Any  # a LibraryNotes of its libraries' console chatter, or None

    def plan(self, width: int, height: int) -> int: ...  # fix batch_size for this frame size; returns it

    def push(self, frame: Frame) -> list[Frame]: ...

    def flush(self) -> list[Frame]: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def margin_after(self, keyframe: Frame) -> float | None: ...  # the band margin its matte chooses


def alpha_from_trimap(trimap: np.ndarray) -> np.ndarray:
    """(H, W) uint8 trimap → (H, W) float32 alpha with unknown treated as 0.5 (for frames with nothing to solve)."""
    alpha = (trimap == TRIMAP_FG).astype(np.float32)
    alpha[trimap == TRIMAP_UNKNOWN] = 0.5
    return alpha


def clamp_to_trimap(alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Force alpha to 0/1 where the trimap is definite: the model only decides the unknown band."""
    out = alpha.astype(np.float32, copy=True)
    np.clip(out, 0.0, 1.0, out=out)
    out[trimap == 0] = 0.0
    out[trimap == TRIMAP_FG] = 1.0
    return out


class BatchingEngine:
    """Base for engines that process frames in batches, possibly with one batch in flight.

    Subclasses implement:
        _launch(frames) -> handle       start work on ``frames`` (all have unknown pixels); may be async.
        _collect(handle) -> list[np.ndarray]   wait; return (H, W) float32 alphas in [0, 1], one per frame.
    and set ``batch_size`` (>= 1) and ``max_in_flight`` (1 = synchronous, 2 = overlap launch k+1 / collect k).
    """

    name = "base"
    batch_size: int = 1
    max_in_flight: int = 1
    # widen the band where the matte is cut off by it and matte again, up to this many times per frame
    # (vmatte.engine.band; [engine] grow_band sets it at load; 0 = the band as propagated)
    grow_steps: int = 0
    # matte this much more around the band on every frame, as a fraction of the frame's short side
    # (vmatte.engine.band.MARGIN; [engine] band_margin sets it at load; 0 = the band as propagated)
    band_margin: float = 0.0
    # ... and up to this much after a keyframe whose matte has a soft edge (margin_after; [engine] band_margin
    # "auto" sets it at load; 0 = band_margin on every frame)
    soft_margin: float = 0.0
    load_warnings: tuple[str, ...] = ()
    library_notes: Any = None

    def __init__(self) -> None:
        self._pending: list[Frame] = []  # waiting to fill a batch
        # launched batches, oldest first: (handle, frames). Frames with nothing to solve ride along as
        # (None, [frame]) entries so output order equals input order.
        self._inflight: deque[tuple[Any, list[Frame]]] = deque()
        self.frames_matted = 0
        self.frames_trivial = 0
        self.frames_regrown = 0  # frame re-mattes on a widened band (grow_steps)

    # -- engine protocol ----------------------------------------------------------------------------------
    def push(self, frame: Frame) -> list[Frame]:
        if frame.trimap is None:
            raise ValueError(f"frame {frame.index} reached the engine without a trimap")
        if not np.any(frame.trimap == TRIMAP_UNKNOWN):
            # nothing to solve: keep order by queueing behind any pending batch
            self._launch_pending()
            self._inflight.append((None, [frame]))
        else:
            self._pending.append(self._pad(frame))
            if len(self._pending) >= max(1, self.batch_size):
                self._launch_pending()
        return self._drain(keep=self.max_in_flight - 1)

    def flush(self) -> list[Frame]:
        self._launch_pending()
        return self._drain(keep=0)

    def close(self) -> None:
        self._pending.clear()
        self._inflight.clear()

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "batch_size": self.batch_size,
            "grow_band": self.grow_steps,
            "band_margin": self.band_margin,
            "soft_margin": self.soft_margin,
            "frames_regrown": self.frames_regrown,
        }

    def plan(self, width: int, height: int) -> int:
        return self.batch_size

    def margin_after(self, keyframe: Frame) -> float | None:
        """The band margin (fraction of the short side) for the frames after ``keyframe``, from how soft the
        edge of its matte is (vmatte.engine.band.softness, soft_margin), or None: the engine's own
        ``band_margin``. Only with a ``soft_margin`` wider than ``band_margin``, and only where the keyframe has
        a drawn mask or alpha to find the edge by (a drawn trimap has none)."""
        if self.soft_margin <= self.band_margin or keyframe.alpha is None or keyframe.prior is None:
            return None
        from vmatte.engine import band

        share = band.softness(keyframe.alpha, keyframe.prior)
        return band.soft_margin(share, self.band_margin, self.soft_margin)

    # -- for subclasses -----------------------------------------------------------------------------------
    def _launch(self, frames: list[Frame]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _collect(self, handle: Any) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- internals ----------------------------------------------------------------------------------------
    def _launch_pending(self) -> None:
        if self._pending:
            frames, self._pending = self._pending, []
            self._inflight.append((self._launch(frames), frames))

    def _drain(self, keep: int) -> list[Frame]:
        out: list[Frame] = []
        # count only real launched batches against ``keep``; trivial frames never wait on their own
        while self._inflight:
            real = sum(1 for h, _ in self._inflight if h is not None)
            handle, frames = self._inflight[0]
            if handle is not None and real <= keep:
                break
            self._inflight.popleft()
            if handle is None:
                f = frames[0]
                out.append(f.replace(alpha=alpha_from_trimap(f.trimap)))
                self.frames_trivial += 1
                continue
            alphas = self._collect(handle)
            self._check_finite(frames, alphas)
            if self.grow_steps:
                frames, alphas = self._grow(frames, alphas)
            for f, a in zip(frames, alphas):
                out.append(f.replace(alpha=clamp_to_trimap(a, f.trimap)))
            self.frames_matted += len(frames)
        return out

    def _check_finite(self, frames: list[Frame], alphas: list[np.ndarray]) -> None:
        bad = [f.index for f, a in zip(frames, alphas) if not np.isfinite(a).all()]
        if bad:
            raise NumericsError(
                f"{self.name} engine produced NaN/Inf alpha on frame(s) {bad[:10]}",
                hint="try --precision fp32; nothing was written for these frames",
            )

    def _pad(self, f: Frame) -> Frame:
        """``f`` with its band widened by its ``band_margin`` (else the engine's; vmatte.engine.band.pad); the
        classic engine pulls the added pixels towards the propagation's probability (at a binary keyframe, the
        drawn mask). Trimaps that came without one (the service's, a drawn trimap) and other keyframes (a soft
        alpha, or one whose kind nobody told) keep their band: used as given. A binary keyframe is padded like
        its neighbours, so its soft edge does not pop at the keyframe; the runner then holds its matte to the
        mask (propagate.trimap.hold_mask), on the same ``keyframe_kind``."""
        margin = self.band_margin if f.band_margin is None else f.band_margin
        if not margin or f.prior is None:
            return f
        if f.keyframe and f.keyframe_kind != "binary":
            return f
        from vmatte.engine import band

        h, w = f.trimap.shape
        # a part wide at the base margin stays wide at a soft keyframe's wider one (band._reach)
        base = band.margin_px(self.band_margin, w, h) or None
        wider = band.pad(f.trimap, band.margin_px(margin, w, h), base)
        return f if wider is None else f.replace(trimap=wider)

    def _grow(self, frames: list[Frame], alphas: list[np.ndarray]) -> tuple[list[Frame], list[np.ndarray]]:
        """Widen each frame's band where its matte is cut off (vmatte.engine.band) and matte those frames
        again, up to ``grow_steps`` times; frames come back with the band they were matted on. Keyframes keep
        theirs: the user drew it (a trimap keyframe is used as given; a binary one is held to its mask)."""
        from vmatte.engine import band

        frames, alphas = list(frames), list(alphas)
        for _ in range(self.grow_steps):
            redo = []
            for i, (f, a) in enumerate(zip(frames, alphas)):
                if f.keyframe:
                    continue
                h, w = f.trimap.shape
                wider = band.widen(f.trimap, a, band.step_px(w, h))
                if wider is not None:
                    frames[i] = f.replace(trimap=wider)
                    redo.append(i)
            if not redo:
                break
            again = [frames[i] for i in redo]
            new = self._collect(self._launch(again))
            self._check_finite(again, new)
            for i, a in zip(redo, new):
                alphas[i] = a
            self.frames_regrown += len(redo)
        return frames, alphas


class FakeEngine(BatchingEngine):
    """A weights-free engine for tests and load benchmarks: alpha = blurred trimap (deterministic, fast).

    ``fail_on`` makes it raise on a given frame index (tests of error paths); ``nan_on`` makes it emit NaN.
    """

    name = "fake"

    def __init__(self, batch_size: int = 4, *, fail_on: int | None = None, nan_on: int | None = None) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.fail_on = fail_on
        self.nan_on = nan_on

    def _launch(self, frames: list[Frame]) -> Any:
        import cv2

        out = []
        for f in frames:
            if self.fail_on is not None and f.index == self.fail_on:
                raise RuntimeError(f"FakeEngine: injected failure on frame {f.index}")
            a = cv2.GaussianBlur(f.trimap.astype(np.float32) / 255.0, (0, 0), 2.0)
            if self.nan_on is not None and f.index == self.nan_on:
                a[0, 0] = np.nan
            out.append(a)
        return out

    def _collect(self, handle: Any) -> list[np.ndarray]:
        return handle

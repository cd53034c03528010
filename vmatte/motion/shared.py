"""One motion estimate per frame pair, shared by the stages of the main pass.

On the main pass three consumers want the same thing: alpha feedback (the propagator's :meth:`push` warps the
latest matte from frame s to frame t, so it needs flow t→s and s→t), and the smoother (flow t→t-1 and t-1→t
for every frame). When the latest matte is that of the previous frame (s = t - 1: an engine batch of 1, or the
first frame of each batch) the two are the same pair at the same working resolution and preset, and the
smoother reuses the pair instead of running DIS twice more. Grey frames at the working resolution are shared
the same way (push, observe and the smoother each converted the full frame).

The store is per run and bounded: a few grey frames and a few adjacent pairs, least recently used first out,
so memory does not grow with clip length (at 640x360: 8 greys ≈ 1.8 MB, 4 pairs ≈ 15 MB). A miss only
recomputes. The propagation pre-pass does not feed it: it runs over the whole range before the first frame
is matted, so sharing its flows would mean keeping them for the whole clip.

It travels on the frame: the propagator attaches a :class:`FrameMotion` (this frame's scene-cut decision and
the run's store) to every frame it pushes, so the runner wires nothing and a smoother fed frames without one
computes its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from vmatte.motion.config import FlowConfig
from vmatte.motion.flow import FlowPair, to_gray, work_shape


class MotionStore:
    """Working-resolution grey frames and DIS flows of frame pairs for one run, computed once, bounded.

    cfg: the run's :class:`~vmatte.motion.config.FlowConfig` (a consumer shares only under an equal one).
    grays / pairs: how many grey frames / adjacent frame pairs are kept (least recently used first out).
    Thread-safe (one lock; the stages of the main pass run on one thread, so it is never contended there).
    """

    def __init__(self, cfg: FlowConfig, grays: int = 8, pairs: int = 4) -> None:
        self.cfg = cfg
        self._max_grays, self._max_pairs = grays, pairs
        self._grays: OrderedDict[int, np.ndarray] = OrderedDict()
        self._pairs: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._flow: FlowPair | None = None
        self._lock = threading.Lock()
        self.dis_calls = 0  # DIS runs made by the store
        self.reused = 0  # flows handed out that an earlier request had computed

    def shape(self, width: int, height: int) -> tuple[int, int]:
        """(ww, wh) working resolution of a width x height frame."""
        return work_shape(width, height, self.cfg.work_size)

    def flow_pair(self, width: int, height: int) -> FlowPair:
        """The store's :class:`FlowPair` for working size (width, height) (for warps and consistency maps)."""
        with self._lock:
            return self._pair_for(width, height)

    def _pair_for(self, width: int, height: int) -> FlowPair:
        if self._flow is None or self._flow.size != (width, height):
            if self._flow is not None:
                self._flow.close()
            self._flow = FlowPair(self.cfg.preset, width, height)
        return self._flow

    def gray(self, frame) -> np.ndarray:
        """(wh, ww) uint8 luma of ``frame`` (a :class:`~vmatte.frame.Frame`) at the working resolution; the
        caller must not modify it."""
        key = frame.index
        shape = self.shape(frame.width, frame.height)
        with self._lock:
            g = self._grays.get(key)
            if g is not None and (g.shape[1], g.shape[0]) == shape:
                self._grays.move_to_end(key)
                return g
        g = to_gray(frame.rgb_u8(), shape)
        with self._lock:
            self._grays[key] = g
            while len(self._grays) > self._max_grays:
                self._grays.popitem(last=False)
        return g

    def flows(self, ia: int, ga: np.ndarray, ib: int, gb: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Frames ia, ib (grey ``ga``, ``gb`` at the working resolution) → (flow a→b on a, flow b→a on b,
        reused). Pairs of adjacent frames (|ia - ib| = 1) are kept; others (feedback from an older matte) are
        never asked for twice and are not."""
        with self._lock:
            hit = self._pairs.get((ia, ib))
            if hit is not None:
                self._pairs.move_to_end((ia, ib))
                self.reused += 2
                return hit[0], hit[1], True
            hit = self._pairs.get((ib, ia))
            if hit is not None:
                self._pairs.move_to_end((ib, ia))
                self.reused += 2
                return hit[1], hit[0], True
            pair = self._pair_for(ga.shape[1], ga.shape[0])
            # DIS under the lock: a second caller for the same pair waits for it instead of computing it again
            ab, ba = pair.flows(ga, gb)
            self.dis_calls += 2
            if abs(ia - ib) == 1:
                self._pairs[(ia, ib)] = (ab, ba)
                while len(self._pairs) > self._max_pairs:
                    self._pairs.popitem(last=False)
            return ab, ba, False

    def close(self) -> None:
        """End the flow helper thread (a later request starts it again); cached data stays."""
        with self._lock:
            if self._flow is not None:
                self._flow.close()


@dataclass(frozen=True, eq=False)
class FrameMotion:
    """What the chain knows about one frame's motion, carried on ``Frame.motion``.

    index: the frame's clip number.
    cut: True when the frame starts a new shot (a scene cut before it), False when it does not, None when no
        one decided (the consumer then decides itself). Decided once, by the propagation pre-pass.
    store: the run's :class:`MotionStore` (grey frames and flows to share).
    """

    index: int
    cut: bool | None
    store: MotionStore

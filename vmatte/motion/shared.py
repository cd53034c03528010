"""One motion estimate per frame pair, shared by the stages of the main pass.

On the main pass three consumers want the same thing: alpha feedback (the propagator's :meth:`push` warps the
latest matte from frame s to frame t, so it needs flow t→s and s→t), and the smoother (flow t→t-1 and t-1→t
for every frame). DIS runs only on adjacent frames, once per pair: when the latest matte is older than the
previous frame (an engine batch of N: lags 1..N), feedback composes the adjacent pairs from s to t
(:meth:`MotionStore.flows_between`), and the smoother takes the same pairs from the store. Measured on 9 DAVIS
clips at 640 px, lags 2-4 (``scripts/bench_flow_cost.py --compose``): on the subject the composed flow warps
with lower error than one direct DIS pair (lag 2: 15.2 vs 16.9 grey levels; lag 4: 21.6 vs 24.0) and passes
the forward-backward check on more of it (0.76 vs 0.66; 0.71 vs 0.52), for ~8 ms instead of a ~48 ms pair.
Grey frames at the working resolution are shared the same way (push, observe and the smoother each converted
the full frame).

The store is per run and bounded: a few grey frames and adjacent pairs (enough for the longest feedback lag),
least recently used first out, so memory does not grow with clip length (at 640x360: a grey ≈ 0.23 MB, a pair
≈ 3.7 MB). A miss only recomputes.

The propagation pre-pass computes every adjacent pair of its range before the first frame is matted; it hands
them to the store's archive (:meth:`MotionStore.keep`: in RAM up to 64 MB, then in an anonymous temporary file
up to ``ARCHIVE_DISK_BYTES``), and the main pass takes each pair from there instead of running DIS again (two
DIS flows per frame: ~0.04 CPU s of the ~0.3 around the model at 1080p, issue 15). The flows are kept as
computed (float32): DIS is deterministic, so a pair the archive had no room for, computed again here, is the
same pair, and the disk's room never changes a result.

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

# disk the archive of pre-pass flows may use (3.7 MB a frame pair at 640x360: ~290 pairs past the 17 in RAM);
# pairs past it are computed again by the main pass, with the same result
ARCHIVE_DISK_BYTES = 1 << 30


class MotionStore:
    """Working-resolution grey frames and DIS flows of frame pairs for one run, computed once, bounded.

    cfg: the run's :class:`~vmatte.motion.config.FlowConfig` (a consumer shares only under an equal one).
    grays / pairs: how many grey frames / adjacent frame pairs are kept (least recently used first out).
    archive: where :meth:`keep` puts the pre-pass's adjacent pairs (an object with ``put(key, *arrays) ->
        bool``, ``pop(key)``, ``__contains__`` and ``clear()``, such as
        :class:`~vmatte.propagate.store.Scratch`); None: nothing is kept from the pre-pass.
    Thread-safe (one lock; the stages of the main pass run on one thread, so it is never contended there).
    """

    def __init__(self, cfg: FlowConfig, grays: int = 8, pairs: int = 4, archive=None) -> None:
        self.cfg = cfg
        self._archive = archive
        self._max_grays, self._max_pairs = grays, pairs
        self._grays: OrderedDict[int, np.ndarray] = OrderedDict()
        self._pairs: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._flow: FlowPair | None = None
        self._lock = threading.Lock()
        self.dis_calls = 0  # DIS runs made by the store
        self.reused = 0  # flows handed out that an earlier request (or the pre-pass) had computed
        self.archived = 0  # flows the pre-pass kept (two per adjacent pair)

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

    def keep(self, ia: int, ab: np.ndarray, ba: np.ndarray) -> None:
        """The pre-pass's flows of frames ia → ia + 1 (``ab`` on ia, ``ba`` on ia + 1, float32 (h, w, 2)),
        archived for the main pass; silently not kept when there is no archive or no room left."""
        if self._archive is None:
            return
        with self._lock:
            if self._archive.put(ia, ab, ba):
                self.archived += 2

    def flows(self, ia: int, ga: np.ndarray, ib: int, gb: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Frames ia, ib (grey ``ga``, ``gb`` at the working resolution) → (flow a→b on a, flow b→a on b,
        reused), float32 (wh, ww, 2) px. Pairs of adjacent frames (|ia - ib| = 1) come
        from the pre-pass's archive when it has them, and are kept; others (feedback from an older matte) are
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
            lo = min(ia, ib)
            if abs(ia - ib) == 1 and self._archive is not None and lo in self._archive:
                fwd, back = self._archive.pop(lo)  # lo → lo + 1 and back
                ab, ba = (fwd, back) if ia == lo else (back, fwd)
                reused = True
                self.reused += 2
            else:
                pair = self._pair_for(ga.shape[1], ga.shape[0])
                # DIS under the lock: a second caller for the same pair waits for it instead of computing it again
                ab, ba = pair.flows(ga, gb)
                reused = False
                self.dis_calls += 2
            if abs(ia - ib) == 1:
                self._pairs[(ia, ib)] = (ab, ba)
                while len(self._pairs) > self._max_pairs:
                    self._pairs.popitem(last=False)
            return ab, ba, reused

    def flows_between(
        self, ia: int, ga: np.ndarray, ib: int, gb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames ia, ib (grey ``ga``, ``gb``) → (flow a→b on a, flow b→a on b), float32 (wh, ww, 2) px.

        Adjacent frames: :meth:`flows`. Farther apart: the adjacent pairs between them, each computed once and
        kept, composed (a→b(x) = a→j(x) + j→b(x + a→j(x)), bilinear), when the store holds the grey frames in
        between; otherwise one direct DIS pair."""
        if abs(ia - ib) <= 1:
            return self.flows(ia, ga, ib, gb)[:2]
        step = 1 if ib > ia else -1
        idx = list(range(ia, ib + step, step))
        with self._lock:
            inner = [self._grays.get(j) for j in idx[1:-1]]
        if any(g is None or g.shape != ga.shape for g in inner):
            return self.flows(ia, ga, ib, gb)[:2]
        gs = [ga, *inner, gb]
        links = [self.flows(idx[i], gs[i], idx[i + 1], gs[i + 1])[:2] for i in range(len(idx) - 1)]
        warp = self.flow_pair(ga.shape[1], ga.shape[0]).warp
        ab = links[0][0]
        for forward, _ in links[1:]:
            ab = ab + warp(forward, ab)
        ba = links[-1][1]
        for _, back in reversed(links[:-1]):
            ba = ba + warp(back, ba)
        return ab, ba

    def close(self) -> None:
        """End the flow helper thread (a later request starts it again); cached data stays, the archive goes."""
        with self._lock:
            if self._flow is not None:
                self._flow.close()
            if self._archive is not None:
                self._archive.clear()


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

"""CPU cost of one DIS flow at the working size vmatte uses for 1080p, and what computing motion once saves.

Two consecutive real frames (DAVIS 480p, upscaled to 1920x1080 with bicubic so the texture is the clip's) go
through vmatte's own path: ``to_gray`` at ``work_shape(1920, 1080, FlowConfig().work_size)`` and DIS with
``FlowConfig().preset``. Timed: one forward + one backward ``create_dis(...).calc`` in this thread, and
``FlowPair.flows`` (the backward direction in the helper thread, as propagation runs it). CPU seconds are
``time.process_time`` (all threads of this process); wall seconds are ``perf_counter``.

The saving per frame is ``(calls_before - calls_after) x CPU per call``: computing motion once took DIS
calls per frame (batch 1) from 5.33 to 3.67 (propagation pass, alpha feedback and smoothing sharing pairs).

    .venv/bin/python scripts/bench_flow_cost.py [--clip parkour] [--frame 10] [--reps 20]
    .venv/bin/python scripts/bench_flow_cost.py --compose [--frames 40]

``--compose``: alpha feedback from an older matte (engine batches) needs flow between frames k apart. It used to
run one direct DIS pair; now it composes the adjacent pairs (``MotionStore.flows_between``). On the first
``--frames`` frames of the 9 DAVIS clips at 640 px (medium), for lags 2-4: grey-level error of frame s warped
onto frame t, over the whole frame and over the GT subject, on all pixels and on those passing the
forward-backward check, and the share passing it; CPU of a DIS pair vs of one composition.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAVIS = Path("/work/shared/data/davis2016-eorvos/DAVIS/JPEGImages/480p")
CALLS_BEFORE, CALLS_AFTER = 5.33, 3.67  # DIS calls per frame, batch 1, before / after one motion estimate


def timed(fn, reps: int) -> tuple[float, float]:
    """(CPU s, wall s) per call of ``fn`` over ``reps`` calls, after one warm-up call."""
    fn()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.process_time() - c0) / reps, (time.perf_counter() - w0) / reps


def compose(frames: int) -> int:
    """The ``--compose`` table (see the module doc)."""
    import cv2
    import numpy as np

    from vmatte.motion.flow import FlowPair, to_gray, work_shape

    ann_root = DAVIS.parents[1] / "Annotations" / "480p"
    clips = sorted(p.name for p in DAVIS.iterdir() if p.is_dir())
    lags = (2, 3, 4)
    rows: dict = {(k, m): [] for k in lags for m in ("direct", "composed")}
    t_pair, t_comp = [], []
    for clip in clips:
        files = sorted((DAVIS / clip).glob("*.jpg"))[:frames]
        masks = sorted((ann_root / clip).glob("*.png"))[:frames]
        rgb = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
        h, w = rgb[0].shape[:2]
        ww, wh = work_shape(w, h, 640)
        g = [to_gray(x, (ww, wh)) for x in rgb]
        fg = [
            cv2.resize(cv2.imread(str(m), 0), (ww, wh), interpolation=cv2.INTER_NEAREST) > 127 for m in masks
        ]
        fp = FlowPair("medium", ww, wh)
        adj = {}
        for t in range(1, len(g)):
            c0 = time.process_time()
            adj[t] = fp.flows(g[t], g[t - 1])  # (t→t-1, t-1→t)
            t_pair.append(time.process_time() - c0)
        for k in lags:
            for t in range(k, len(g), 3):
                s = t - k
                direct = fp.flows(g[t], g[s])
                c0 = time.process_time()
                ts = adj[t][0]
                for j in range(t - 1, s, -1):
                    ts = ts + fp.warp(adj[j][0], ts)
                st = adj[s + 1][1]
                for j in range(s + 1, t):
                    st = st + fp.warp(adj[j + 1][1], st)
                t_comp.append(time.process_time() - c0)
                for name, (a, b) in (("direct", direct), ("composed", (ts, st))):
                    ok = fp.consistency(a, b) > 0.5
                    err = np.abs(fp.warp(g[s].astype(np.float32), a) - g[t].astype(np.float32))
                    f = fg[t] if t < len(fg) else np.zeros_like(ok)
                    rows[(k, name)].append(
                        [err.mean(), err[ok].mean() if ok.any() else np.nan, ok.mean()]
                        + ([err[f].mean(), err[f & ok].mean() if (f & ok).any() else np.nan, ok[f].mean()]
                           if f.any() else [np.nan] * 3)
                    )  # fmt: skip
        fp.close()
    print(f"{len(clips)} DAVIS clips, first {frames} frames, 640 px, medium")
    print(f"CPU: a DIS pair {np.mean(t_pair) * 1000:.1f} ms, one composition {np.mean(t_comp) * 1000:.1f} ms")
    print("lag  flow       | frame: err  err(ok)  ok    | subject: err  err(ok)  ok")
    for (k, name), v in rows.items():
        m = np.nanmean(np.array(v, dtype=np.float64), axis=0)
        print(
            f"{k:>3}  {name:<10} |  {m[0]:6.2f} {m[1]:7.2f} {m[2]:6.3f} |  {m[3]:8.2f} {m[4]:7.2f} {m[5]:6.3f}"
        )
    return 0


def main() -> int:
    import cv2

    from vmatte.motion.config import FlowConfig
    from vmatte.motion.flow import FlowPair, create_dis, to_gray, work_shape

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default="parkour", help="DAVIS 480p clip under " + str(DAVIS))
    p.add_argument("--frame", type=int, default=10, help="first of the two consecutive frames")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--compose", action="store_true", help="composed adjacent flows vs direct DIS (lags 2-4)")
    p.add_argument("--frames", type=int, default=40, help="frames per clip for --compose")
    args = p.parse_args()
    if args.compose:
        return compose(args.frames)
    w, h = (int(v) for v in args.size.split("x"))

    cfg = FlowConfig()
    ww, wh = work_shape(w, h, cfg.work_size)
    grays = []
    for t in (args.frame, args.frame + 1):
        bgr = cv2.imread(str(DAVIS / args.clip / f"{t:05d}.jpg"))
        if bgr is None:
            sys.exit(f"cannot read frame {t} of {args.clip} under {DAVIS}")
        rgb = cv2.cvtColor(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)
        grays.append(to_gray(rgb, (ww, wh)))
    a, b = grays

    dis = create_dis(cfg.preset)
    fwd = timed(lambda: dis.calc(a, b, None), args.reps)
    bwd = timed(lambda: dis.calc(b, a, None), args.reps)
    pair = FlowPair(cfg.preset, ww, wh)
    both = timed(lambda: pair.flows(a, b), args.reps)
    pair.close()

    per_call = (fwd[0] + bwd[0]) / 2
    saved = (CALLS_BEFORE - CALLS_AFTER) * per_call
    print(
        f"{args.clip} frames {args.frame},{args.frame + 1} at {w}x{h}; flow at {ww}x{wh}, preset {cfg.preset}"
    )
    print(f"opencv threads {cv2.getNumThreads()}, reps {args.reps}")
    print(f"DIS forward:          {fwd[0] * 1000:7.1f} ms CPU  {fwd[1] * 1000:7.1f} ms wall")
    print(f"DIS backward:         {bwd[0] * 1000:7.1f} ms CPU  {bwd[1] * 1000:7.1f} ms wall")
    print(f"FlowPair.flows (both): {both[0] * 1000:6.1f} ms CPU  {both[1] * 1000:7.1f} ms wall")
    print(f"CPU per DIS call:     {per_call * 1000:7.1f} ms")
    print(
        f"saved per 1080p frame by computing motion once: ({CALLS_BEFORE} - {CALLS_AFTER}) x {per_call * 1000:.1f} ms"
        f" = {saved * 1000:.1f} ms CPU ({saved:.3f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

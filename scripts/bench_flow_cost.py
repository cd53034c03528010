"""CPU cost of one DIS flow at the working size vmatte uses for 1080p, and what computing motion once saves.

Two consecutive real frames (DAVIS 480p, upscaled to 1920x1080 with bicubic so the texture is the clip's) go
through vmatte's own path: ``to_gray`` at ``work_shape(1920, 1080, FlowConfig().work_size)`` and DIS with
``FlowConfig().preset``. Timed: one forward + one backward ``create_dis(...).calc`` in this thread, and
``FlowPair.flows`` (the backward direction in the helper thread, as propagation runs it). CPU seconds are
``time.process_time`` (all threads of this process); wall seconds are ``perf_counter``.

The saving per frame is ``(calls_before - calls_after) x CPU per call``: computing motion once took DIS
calls per frame (batch 1) from 5.33 to 3.67 (propagation pass, alpha feedback and smoothing sharing pairs).

    .venv/bin/python scripts/bench_flow_cost.py [--clip parkour] [--frame 10] [--reps 20]
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


def main() -> int:
    import cv2

    from vmatte.motion.config import FlowConfig
    from vmatte.motion.flow import FlowPair, create_dis, to_gray, work_shape

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default="parkour", help="DAVIS 480p clip under " + str(DAVIS))
    p.add_argument("--frame", type=int, default=10, help="first of the two consecutive frames")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--size", default="1920x1080")
    args = p.parse_args()
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

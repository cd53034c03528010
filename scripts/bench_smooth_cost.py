"""Cost of the temporal smoother per frame at 1080p, by step, with flows shared (no DIS in the figure).

A synthetic clip (no shared data needed): a textured ellipse with a soft, noisy edge moving over a textured,
panning background; the unknown band is a ring of ``band_px`` px on each side of the edge, so its share of
the frame is set by ``--band-px`` (4 → ~2 %, 40 → ~16 % at 1920x1080). Every frame carries the run's
:class:`~vmatte.motion.shared.MotionStore` with the pair (t-1, t) already in it, as on the main pass where
alpha feedback computed it, so the figures are the smoother's own work.

Reports CPU seconds (process_time: all threads of this process) and wall seconds per frame, and with
``--profile`` where the CPU goes (cProfile cumulative time of the smoother's steps).

``--torch DEVICE`` (e.g. ``cpu``, ``cuda``) also runs the torch path (vmatte.temporal.torch_path) on that
device, interleaved with the numpy path, and prints both with the max |diff| of their alphas. On ``cpu`` the
figure is only the torch path's overhead / a parity check; the point of the path is CUDA, where the CPU
figure is what is left on the host (band points, uploads, the CPU side of kernel launches).

    .venv/bin/python scripts/bench_smooth_cost.py [--size 1920x1080] [--frames 16] [--band-px 4 12 40] [--profile]
    .venv/bin/python scripts/bench_smooth_cost.py --torch cpu --band-px 4 12 [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_clip(width: int, height: int, frames: int, band_px: int, seed: int = 0) -> list:
    """Frames (index, rgb uint8, trimap, noisy alpha float32) with a ``band_px`` unknown ring; each carries
    a :class:`FrameMotion` of one shared :class:`MotionStore` (default [flow])."""
    import cv2

    from vmatte.frame import Frame
    from vmatte.motion.config import FlowConfig
    from vmatte.motion.shared import FrameMotion, MotionStore

    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.random((height + 64, width + 256, 3), np.float32), (0, 0), 3.0)
    tex = cv2.normalize(tex, None, 0.0, 1.0, cv2.NORM_MINMAX)
    ftex = cv2.GaussianBlur(rng.random((height, width, 3), np.float32), (0, 0), 2.0) * 0.6 + 0.3
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    store = MotionStore(FlowConfig())
    out = []
    for t in range(frames):
        cx, cy = width / 2 + 3.1 * t, height / 2 + 8.0 * np.sin(t / 5.0)
        rx, ry = 0.18 * width, 0.21 * height
        # signed distance (px, approx.) to the ellipse edge, with a wavy outline (hair-like lobes)
        ang = np.arctan2(yy - cy, xx - cx)
        r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        d = (1.0 - r) * min(rx, ry) + 6.0 * np.sin(9 * ang + 0.1 * t)
        gt = np.clip(0.5 + d / 6.0, 0.0, 1.0).astype(np.float32)
        tri = np.full((height, width), 128, np.uint8)
        tri[d < -band_px] = 0
        tri[d > band_px] = 255
        bg = tex[32 : 32 + height, 2 * t : 2 * t + width]
        rgb = gt[..., None] * ftex + (1.0 - gt[..., None]) * bg
        rgb = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
        a = gt.copy()
        band = tri == 128
        a[band] = np.clip(a[band] + rng.normal(0.0, 0.05, int(band.sum())).astype(np.float32), 0, 1)
        frame = Frame(index=t, pts=t, time_base=Fraction(1, 24), rgb=rgb, trimap=tri, alpha=a)
        out.append(frame.replace(motion=FrameMotion(index=t, cut=False, store=store)))
    return out


def prime(store, frames: list, t: int) -> None:
    """Put the pair (t-1, t) and frame t's grey into the store, as alpha feedback would have."""
    f = frames[t]
    g = store.gray(f)
    if t > 0:
        store.flows(t, g, t - 1, store.gray(frames[t - 1]))


def run(frames: list, smoother_factory, warm: int = 2) -> tuple[float, float, list]:
    """Push/flush ``frames`` through a new smoother; (cpu s, wall s) per frame after ``warm`` pushes (store
    priming excluded), and the output alphas."""
    sm = smoother_factory()
    store = frames[0].motion.store
    cpu = wall = 0.0
    outs = []
    for t, f in enumerate(frames):
        prime(store, frames, t)
        c0, w0 = time.process_time(), time.perf_counter()
        outs.extend(sm.push(f))
        if t >= warm:
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
    c0, w0 = time.process_time(), time.perf_counter()
    outs.extend(sm.flush())
    cpu += time.process_time() - c0
    wall += time.perf_counter() - w0
    n = len(frames) - warm
    return cpu / n, wall / n, [f.alpha for f in outs]


def ab_rows(frames: list, frac: float, band_px: int, rounds: int) -> None:
    """Interleaved A/B: TemporalSmoother with crop_to_band False (A) and True (B), ``rounds`` times each,
    alternating; prints mean CPU and wall s/frame, B/A, and whether the alphas are bit-identical."""
    from vmatte.temporal.smooth import TemporalSmoother

    class FullFrame(TemporalSmoother):
        crop_to_band = False

    res: dict[str, list] = {"A": [], "B": []}
    same = True
    for _ in range(rounds):
        a = run(frames, FullFrame)
        b = run(frames, TemporalSmoother)
        res["A"].append(a[:2])
        res["B"].append(b[:2])
        same &= all(np.array_equal(x, y) for x, y in zip(a[2], b[2]))
    (ca, wa), (cb, wb) = (np.mean(res[k], axis=0) for k in "AB")
    print(
        f"| {band_px:3d} | {100 * frac:4.1f} % | {ca:.3f} | {cb:.3f} | {cb / ca:.2f} | {wa:.3f} | {wb:.3f} "
        f"| {'yes' if same else 'NO'} |"
    )


def torch_rows(args, w: int, h: int) -> int:
    """numpy vs torch path on ``args.torch``, ``args.rounds`` interleaved rounds each: CPU and wall s/frame,
    the torch path's ratio to numpy, max |diff| of the alphas (torch_path.PARITY_TOLERANCE away from the
    snap-to-0/1 step)."""
    import json

    from vmatte.temporal.smooth import TemporalSmoother

    dev = args.torch

    def on_device():
        sm = TemporalSmoother(device=dev)
        if dev.startswith("cuda"):  # a stats-free timing: wait for the kernels at each push
            import torch

            push = sm.push

            def synced(frame):
                out = push(frame)
                torch.cuda.synchronize()
                return out

            sm.push = synced
        return sm

    rows = []
    print(
        f"| band px | band share | numpy CPU s/frame | torch ({dev}) CPU s/frame | ratio | numpy wall | torch wall "
        "| max abs diff |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for band_px in args.band_px:
        frames = synthetic_clip(w, h, args.frames, band_px)
        frac = float(np.mean([(f.trimap == 128).mean() for f in frames]))
        run(frames[:4], on_device)  # warm-up: torch's first kernels, lazy imports
        res: dict[str, list] = {"numpy": [], "torch": []}
        diff = 0.0
        for _ in range(args.rounds):
            a = run(frames, TemporalSmoother)
            b = run(frames, on_device)
            res["numpy"].append(a[:2])
            res["torch"].append(b[:2])
            diff = max(diff, max(float(np.abs(x - y).max()) for x, y in zip(a[2], b[2])))
        (cn, wn), (ct, wt) = (np.mean(res[k], axis=0) for k in ("numpy", "torch"))
        print(
            f"| {band_px:3d} | {100 * frac:4.1f} % | {cn:.3f} | {ct:.3f} | {ct / cn:.2f} | {wn:.3f} | {wt:.3f} "
            f"| {diff:.2g} |"
        )
        rows.append(
            {
                "size": f"{w}x{h}",
                "band_px": band_px,
                "band_share": frac,
                "device": dev,
                "numpy_cpu_s": cn,
                "torch_cpu_s": ct,
                "numpy_wall_s": wn,
                "torch_wall_s": wt,
                "max_abs_diff": diff,
            }
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--band-px", type=int, nargs="+", default=[4, 12, 40])
    ap.add_argument("--profile", action="store_true", help="print where the CPU goes (cProfile)")
    ap.add_argument(
        "--ab",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="interleave full-frame (A) and band-only (B) steps",
    )
    ap.add_argument("--torch", metavar="DEVICE", default="", help="also time the torch path on DEVICE")
    ap.add_argument("--rounds", type=int, default=2, help="with --torch: interleaved rounds of each path")
    ap.add_argument("--json", default="", help="with --torch: write the rows here")
    args = ap.parse_args(argv)

    from vmatte.temporal.smooth import TemporalSmoother

    w, h = (int(v) for v in args.size.split("x"))
    if args.torch:
        return torch_rows(args, w, h)
    if args.ab:
        print(
            "| band px | band share | CPU s/frame A (full) | B (band) | B/A | wall A | wall B | identical |"
        )
        print("|---|---|---|---|---|---|---|---|")
    for band_px in args.band_px:
        frames = synthetic_clip(w, h, args.frames, band_px)
        frac = float(np.mean([(f.trimap == 128).mean() for f in frames]))
        if args.ab:
            ab_rows(frames, frac, band_px, args.ab)
            continue
        if args.profile:
            import cProfile
            import pstats

            pr = cProfile.Profile()
            pr.enable()
            cpu, wall, _ = run(frames, TemporalSmoother)
            pr.disable()
            print(
                f"\nband_px {band_px} ({100 * frac:.1f} % of the frame): {cpu:.3f} CPU s/frame, {wall:.3f} wall"
            )
            pstats.Stats(pr).sort_stats("tottime").print_stats(18)
        else:
            cpu, wall, _ = run(frames, TemporalSmoother)
            print(
                f"band_px {band_px:3d} ({100 * frac:4.1f} % band): {cpu:.3f} CPU s/frame, {wall:.3f} wall s/frame"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Encoder throughput per output preset at 1920x1080: frames/s with all cores, table + JSON.

Frames are a synthetic 1080p scene (textured background, soft fur-like alpha) rendered once and cycled, so
the time measured is the writer's: pixel preparation (RGB→YUV, quantisation, premultiplication), encoding and
muxing, up to the final rename. Decontamination is left out of the per-preset rows (the runner estimates
the foreground once per frame for all outputs) and timed on its own in a separate row.

Usage: python scripts/bench_encoders.py [--frames 20] [--size 1920x1080] [--presets a,b] [--json /tmp/enc.json]
       python scripts/bench_encoders.py --prores-layouts [--rounds 3] [--frames 12]
       python scripts/bench_encoders.py --prores-quant [--clip real.mp4] [--frames 12]
Outputs go to a temporary folder under /tmp and are deleted.

``--prores-layouts`` times the default ProRes 4444 writer three ways, interleaved round by round so machine
load hits all alike: "single" (one encoder thread, conversion in the writer's thread), "old" (frame-threaded
encoder + PyAV's default threaded swscale in the writer's thread: corrupts alpha at some sizes), "serial"
(frame-threaded encoder + single-threaded swscale in the writer's thread) and "new" (frame-threaded encoder,
single-threaded swscale on up to 4 frames side by side: the shipped layout). Reports wall fps, CPU seconds
per frame (getrusage: all threads of this process) and the writer thread's own CPU seconds per frame
(time.thread_time: the serial part, which bounds throughput on a many-core host whatever the load here).

``--prores-quant`` compares the shipped ProRes 4444 writer (prores_ks at a fixed quantiser 1) with prores_ks's
own per-slice quantiser search (what any rate option such as ``quant_mat`` selects), one encoder thread each:
CPU seconds per frame, MB per frame, and whether the decoded frames are identical. ``--clip`` takes real
footage (every 10th frame, scaled to ``--size``; alpha is a synthetic soft disc) instead of the synthetic scene.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmatte.config import build_config, list_presets  # noqa: E402
from vmatte.frame import Frame  # noqa: E402
from vmatte.io.compose import estimate_foreground  # noqa: E402
from vmatte.io.decode import ClipInfo  # noqa: E402
from vmatte.io.encode import open_writer  # noqa: E402
from vmatte.testing import Scene  # noqa: E402

DEFAULT_PRESETS = [
    "prores4444",
    "webm-alpha",
    "qtrle",
    "png-mov",
    "ffv1",
    "png-seq",
    "png16-seq",
    "exr-seq",
    "matte",
    "matte-png",
    "comp-green",
    "comp-black",
]


def make_frames(w: int, h: int, distinct: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    scene = Scene(width=w, height=h, frames=distinct * 4, speed=8.0)
    return [(scene.rgb(t), scene.alpha(t)) for t in range(0, distinct * 4, 4)]


def bench_preset(name: str, pool, n: int, info: ClipInfo, tmp: Path, threads: int) -> list[dict]:
    cfg = build_config(preset=name, overrides={"input": info.path, "output": {"decontaminate": False}})
    rows = []
    for k, out in enumerate(cfg.outputs):
        seq = out.format in ("png", "exr")
        path = tmp / f"{name}-{k}" / ("f.%06d" + ("." + out.format) if seq else "out")
        ext = {
            "prores4444": ".mov",
            "vp9": ".webm",
            "qtrle": ".mov",
            "png-mov": ".mov",
            "ffv1": ".mkv",
            "h264": ".mp4",
        }
        out = dataclasses.replace(out, path=str(path) if seq else str(path) + ext[out.format])
        w = open_writer(out, info, overwrite=True, threads=threads)
        t = time.perf_counter()
        for i in range(n):
            rgb, a = pool[i % len(pool)]
            w.write(Frame(index=i, pts=i, time_base=info.time_base, rgb=rgb, alpha=a))
        w.close()
        dt = time.perf_counter() - t
        size = sum(f.stat().st_size for f in (tmp / f"{name}-{k}").rglob("*") if f.is_file())
        rows.append(
            {
                "preset": name,
                "output": k,
                "format": out.format,
                "content": out.content,
                "frames": n,
                "fps": n / dt,
                "s_per_frame": dt / n,
                "threads": threads,
                "mb_per_frame": size / n / 1e6,
            }
        )
        shutil.rmtree(tmp / f"{name}-{k}", ignore_errors=True)
    return rows


def bench_prores_layouts(pool, n: int, info: ClipInfo, tmp: Path, threads: int, rounds: int) -> dict:
    """{variant: {"fps", "cpu_s_per_frame", "wall_s_per_frame"}} for the ProRes layouts (see module doc)."""
    import resource

    from vmatte.io import swscale
    from vmatte.io.config import OutputConfig
    from vmatte.io.writers.video import VideoWriter

    # (encoder threads, swscale threads, frames converted side by side)
    variants = {
        "single": (1, 1, 0),
        "old": (threads, 0, 0),
        "serial": (threads, 1, 0),
        "new": (threads, 1, 4),
    }
    totals = {k: [0.0, 0.0, 0, 0.0] for k in variants}
    for r in range(rounds):
        for name, (enc_threads, sws_threads, workers) in variants.items():
            swscale.SWS_THREADS = sws_threads
            VideoWriter.max_convert_workers = workers
            path = tmp / f"layout-{name}-{r}.mov"
            cfg = OutputConfig(path=str(path), decontaminate=False)
            w = open_writer(cfg, info, overwrite=True, threads=enc_threads)
            ru0, t0, th0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), time.thread_time()
            for i in range(n):
                rgb, a = pool[i % len(pool)]
                w.write(Frame(index=i, pts=i, time_base=info.time_base, rgb=rgb, alpha=a))
            w.close()
            ru1, t1, th1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), time.thread_time()
            cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            totals[name][0] += t1 - t0
            totals[name][1] += cpu
            totals[name][2] += n
            totals[name][3] += th1 - th0
            path.unlink()
            print(
                f"  round {r} {name}: {n / (t1 - t0):.2f} fps, {cpu / n:.3f} CPU s/frame, "
                f"writer thread {(th1 - th0) / n:.3f} s/frame",
                file=sys.stderr,
            )
    swscale.SWS_THREADS = 1
    VideoWriter.max_convert_workers = 4
    return {
        k: {
            "fps": f / wall,
            "wall_s_per_frame": wall / f,
            "cpu_s_per_frame": cpu / f,
            "writer_thread_cpu_s_per_frame": th / f,
        }
        for k, (wall, cpu, f, th) in totals.items()
    }


def real_frames(clip: Path, w: int, h: int, n: int) -> list:
    """Every 10th frame of ``clip`` as (rgb (h, w, 3) uint8, alpha (h, w) float32 0..1), n at most."""
    import av
    import cv2

    out = []
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    with av.open(str(clip)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 10:
                continue
            rgb = cv2.resize(f.to_ndarray(format="rgb24"), (w, h), interpolation=cv2.INTER_AREA)
            a = np.clip((0.3 * h - np.hypot(xx - w / 2 - 3 * i, yy - h / 2)) / 25.0, 0, 1)
            out.append((np.ascontiguousarray(rgb), a.astype(np.float32)))
            if len(out) == n:
                break
    return out


def bench_prores_quant(pool, n: int, info: ClipInfo, tmp: Path) -> dict:
    """{variant: {"cpu_s_per_frame", "mb_per_frame"}} + {"decoded_identical": bool} (see module doc)."""
    import resource

    import av

    from vmatte.io.config import OutputConfig

    res: dict = {}
    decoded = {}
    for name, options in (
        ("fixed quantiser (shipped)", {}),
        ("prores_ks rate control", {"quant_mat": "auto"}),
    ):
        path = tmp / f"quant-{len(res)}.mov"
        w = open_writer(OutputConfig(path=str(path), decontaminate=False, options=options), info, threads=1)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        for i in range(n):
            rgb, a = pool[i % len(pool)]
            w.write(Frame(index=i, pts=i, time_base=info.time_base, rgb=rgb, alpha=a))
        w.close()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        res[name] = {"cpu_s_per_frame": cpu / n, "mb_per_frame": path.stat().st_size / n / 1e6}
        with av.open(str(path)) as c:
            decoded[name] = [f.to_ndarray(format="rgba64le") for f in c.decode(video=0)]
        path.unlink()
    a, b = decoded.values()
    res["decoded_identical"] = len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prores-layouts", action="store_true", help="time ProRes single/old/new layouts only")
    ap.add_argument("--prores-quant", action="store_true", help="fixed quantiser vs prores_ks rate control")
    ap.add_argument("--clip", type=Path, default=None, help="real footage for --prores-quant")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds for --prores-layouts")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--presets", default=",".join(DEFAULT_PRESETS))
    ap.add_argument("--threads", type=int, default=0, help="encoder threads (0 = all cores)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.size.lower().split("x"))
    threads = args.threads or os.cpu_count() or 1
    known = list_presets()
    names = [p for p in args.presets.split(",") if p]
    for p in names:
        if p not in known:
            ap.error(f"unknown preset {p!r}; known: {', '.join(known)}")
    pool = real_frames(args.clip, w, h, args.frames) if args.clip else make_frames(w, h)
    info = ClipInfo(
        path="/tmp/vmatte-bench-input.mov",
        kind="video",
        width=w,
        height=h,
        frame_count=args.frames,
        time_base=Fraction(1, 24),
        rate=Fraction(24),
    )
    tmp = Path(tempfile.mkdtemp(prefix="vmatte-bench-enc-", dir="/tmp"))
    if args.prores_quant:
        try:
            res = bench_prores_quant(pool, args.frames, info, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(
            f"\nProRes 4444 at {w}x{h}, {args.frames} frames, 1 encoder thread ({args.clip or 'synthetic'})"
        )
        print(f"{'variant':<28} {'CPU s/frame':>12} {'MB/frame':>9}")
        for k, v in res.items():
            if isinstance(v, dict):
                print(f"{k:<28} {v['cpu_s_per_frame']:>12.3f} {v['mb_per_frame']:>9.2f}")
        print(f"decoded frames identical: {res['decoded_identical']}")
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
        return 0
    if args.prores_layouts:
        try:
            res = bench_prores_layouts(pool, args.frames, info, tmp, threads, args.rounds)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(
            f"\nProRes 4444 at {w}x{h}, {args.rounds} x {args.frames} frames per variant, {threads} threads"
        )
        print(f"{'variant':<8} {'fps':>7} {'wall s/frame':>13} {'CPU s/frame':>12} {'writer thread':>14}")
        for k, v in res.items():
            print(
                f"{k:<8} {v['fps']:>7.2f} {v['wall_s_per_frame']:>13.3f} {v['cpu_s_per_frame']:>12.3f}"
                f" {v['writer_thread_cpu_s_per_frame']:>14.3f}"
            )
        print(
            f"new/old fps ratio {res['new']['fps'] / res['old']['fps']:.2f}, new/single {res['new']['fps'] / res['single']['fps']:.2f}"
        )
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
        return 0
    rows: list[dict] = []
    try:
        for name in names:
            rows += bench_preset(name, pool, args.frames, info, tmp, threads)
            r = rows[-1]
            print(f"  {name}: {r['fps']:.2f} fps", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # decontamination (once per frame in a run, shared by all outputs)
    rgb, a = pool[0]
    estimate_foreground(rgb[:8, :8].astype(np.float32) / 255, np.full((8, 8), 0.5, np.float32))  # JIT warm-up
    t = time.perf_counter()
    reps = max(1, min(5, args.frames // 4))
    for _ in range(reps):
        estimate_foreground(rgb.astype(np.float32) / 255, a)
    deco_s = (time.perf_counter() - t) / reps

    print(
        f"\nencoder throughput at {w}x{h}, {args.frames} frames, {threads} threads (cpu_count={os.cpu_count()})"
    )
    print(
        f"{'preset':<18} {'format':<11} {'content':<10} {'fps':>7} {'s/frame':>8} {'threads':>7} {'MB/frame':>9}"
    )
    for r in rows:
        print(
            f"{r['preset']:<18} {r['format']:<11} {r['content']:<10} {r['fps']:>7.2f} {r['s_per_frame']:>8.3f} {r['threads']:>7} {r['mb_per_frame']:>9.2f}"
        )
    print(f"{'decontaminate':<18} {'-':<11} {'-':<10} {1 / deco_s:>7.2f} {deco_s:>8.3f} {'1':>7} {'-':>9}")
    out = {
        "size": [w, h],
        "frames": args.frames,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "rows": rows,
        "decontaminate_s_per_frame": deco_s,
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

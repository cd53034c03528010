#!/usr/bin/env python
"""Soak: does the decode → propagate → (fake) matte → smooth → encode path run with flat memory on a long 1080p clip?

What it does:
1. makes a synthetic 1080p clip of ``--minutes`` with the ffmpeg binary (``testsrc2`` pattern, libx264
   ultrafast: generating it costs seconds, not the hours a rendered scene would) and two keyframe masks, on the
   first and the last frame, so propagation has to carry state across the whole clip (its worst case for memory);
2. runs the real chain through the API (``vmatte.run``) with the weights-free ``FakeEngine`` (batch 4), the
   default smoothing and the chosen output format (default ProRes 4444 RGBA, decontamination off: pymatting's
   foreground estimator is stateless and would only slow the soak down);
3. samples RSS, threads and open file descriptors every ``--every`` frames from the progress callback, prints a
   table and a JSON summary with the RSS slope (MB per 1000 frames, least squares over the second half of the
   matting stage, after warm-up) and the peak RSS.

What the default measures, honestly: 10 s of 1080p24 (240 frames), several minutes on 2 busy cores. The issue's hour is
``--minutes 60`` (86 400 frames; hours on a laptop, run it on a farm node). The default is long enough for the
queues, the propagation scratch buffer and the encoder to reach steady state, so a leak of even 100 KB a frame
shows as a slope of ~100 MB per 1000 frames; flat means the slope is within noise (a few MB per 1000 frames).

    .venv/bin/python scripts/soak.py                      # 10 s of 1080p
    .venv/bin/python scripts/soak.py --minutes 60 --json soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def make_clip(path: Path, seconds: float, width: int, height: int, fps: int) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        sys.exit("soak: needs the ffmpeg binary to make the long clip quickly")
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}:rate={fps}",
            "-t",
            f"{seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )


def make_masks(folder: Path, width: int, height: int, frames: list[int]) -> None:
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for k, t in enumerate(frames):
        m = np.zeros((height, width), np.uint8)
        cv2.ellipse(m, (width // 2 + 40 * k, height // 2), (width // 6, height // 4), 0, 0, 360, 255, -1)
        cv2.imwrite(str(folder / f"{t:06d}.png"), m)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--minutes", type=float, default=10 / 60, help="clip length in minutes (default 0.1667 = 10 s)"
    )
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument(
        "--every", type=int, default=12, help="sample every N frames (default 12 = twice a second of clip)"
    )
    ap.add_argument(
        "--format",
        default="prores4444",
        help="output format (vmatte OutputConfig.format), default prores4444",
    )
    ap.add_argument("--decontaminate", action="store_true", help="also estimate foreground colour (slow)")
    ap.add_argument(
        "--workdir", default=None, help="where the clip and output go (default a temp dir, removed)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--json", default=None, help="also write the JSON summary here")
    args = ap.parse_args(argv)

    import numpy as np
    import psutil

    import vmatte
    from vmatte.engine.base import FakeEngine
    from vmatte.io.config import OutputConfig
    from vmatte.io.formats import format_for

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="vmatte-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    seconds = args.minutes * 60
    n_frames = round(seconds * args.fps)
    clip = work / "long.mp4"
    t0 = time.perf_counter()
    make_clip(clip, seconds, args.width, args.height, args.fps)
    make_masks(work / "keys", args.width, args.height, [0, n_frames - 1])
    gen_s = time.perf_counter() - t0
    ext = format_for(OutputConfig(format=args.format)).ext
    out = work / f"matte{ext}"
    if out.exists():
        out.unlink()

    proc = psutil.Process()
    samples: list[dict] = []
    lock = threading.Lock()
    t_run = time.perf_counter()
    last = {"propagate": -args.every, "matte": -args.every}

    header = f"{'stage':<10}{'frame':>7}{'t (s)':>9}{'RSS (MB)':>10}{'threads':>9}{'fds':>5}"
    print(header, flush=True)

    def sample(stage: str, done: int) -> None:
        with lock:
            s = {
                "stage": stage,
                "frame": done,
                "t_s": round(time.perf_counter() - t_run, 2),
                "rss_mb": round(proc.memory_info().rss / 2**20, 1),
                "threads": proc.num_threads(),
                "fds": len(os.listdir("/proc/self/fd")),
            }
            samples.append(s)
            # printed as it grows, so a soak cut short still shows its curve
            row = f"{s['stage']:<10}{s['frame']:>7}{s['t_s']:>9.1f}{s['rss_mb']:>10.1f}{s['threads']:>9}{s['fds']:>5}"
            print(row, flush=True)

    def on_progress(ev: dict) -> None:
        stage, done = ev.get("stage"), int(ev.get("done", 0))
        if stage in last and (done - last[stage] >= args.every or done == ev.get("total")):
            last[stage] = done
            sample(stage, done)

    sample("start", 0)
    cfg = vmatte.RunConfig(
        input=str(clip),
        masks=str(work / "keys"),
        outputs=(OutputConfig(path=str(out), format=args.format, decontaminate=args.decontaminate),),
        progress="none",
    )
    report = vmatte.run(cfg, engine=FakeEngine(batch_size=4), on_progress=on_progress)
    sample("end", report.frames_written)
    run_s = time.perf_counter() - t_run

    # the matting stage without its first sample (warm-up: queues filling) and its last (threads winding down)
    matte = [s for s in samples if s["stage"] == "matte" and 0 < s["frame"] < report.frames_written][1:]
    slope = (
        float(np.polyfit([s["frame"] for s in matte], [s["rss_mb"] for s in matte], 1)[0] * 1000)
        if len(matte) >= 3
        else float("nan")
    )
    # robust to the +-100 MB the allocator and encoder threads swing: median of the last third minus the first
    third = max(1, len(matte) // 3)
    span = (matte[-1]["frame"] - matte[0]["frame"]) if len(matte) >= 2 else 0
    growth = (
        float(
            np.median([s["rss_mb"] for s in matte[-third:]]) - np.median([s["rss_mb"] for s in matte[:third]])
        )
        if len(matte) >= 3
        else float("nan")
    )
    summary = {
        "clip": {
            "width": args.width,
            "height": args.height,
            "fps": args.fps,
            "frames": n_frames,
            "seconds": seconds,
        },
        "frames_written": report.frames_written,
        "generate_s": round(gen_s, 1),
        "run_s": round(run_s, 1),
        "frames_per_s": round(report.frames_written / run_s, 2) if run_s > 0 else None,
        "rss_start_mb": samples[0]["rss_mb"],
        "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_end_mb": samples[-1]["rss_mb"],
        "rss_matte_min_mb": min((s["rss_mb"] for s in matte), default=None),  # without warm-up and wind-down
        "rss_matte_max_mb": max((s["rss_mb"] for s in matte), default=None),
        "rss_slope_mb_per_1000_frames": round(slope, 2),
        "rss_growth_first_to_last_third_mb": round(growth, 1),
        "frames_between_thirds": span,
        "threads_max": max(s["threads"] for s in samples),
        "fds_max": max(s["fds"] for s in samples),
        "stage_times_s": {k: round(v, 2) for k, v in vars(report.times).items()},
        "output_format": args.format,
        "samples": samples,
    }
    # a leak of 50 KB a frame is 4.3 GB over the hour; below ~1000 frames the swing hides anything smaller
    limit_mb = 0.05 * max(span, 1)
    if span < 1000:
        verdict = f"too short to call flat (only {span} frames between samples): run --minutes 1 or more"
        flat = growth == growth and growth < max(limit_mb, 150)
    else:
        flat = growth == growth and growth < limit_mb
        verdict = "flat" if flat else "NOT flat"
    print(
        f"\n{report.frames_written} frames of {args.width}x{args.height} in {run_s:.0f} s "
        f"({summary['frames_per_s']} frames/s); RSS peak {summary['rss_peak_mb']} MB, matting-stage range "
        f"{summary['rss_matte_min_mb']}-{summary['rss_matte_max_mb']} MB, growth first→last third {growth:.0f} MB, "
        f"least-squares slope {slope:.0f} MB/1000 frames → {verdict}"
    )
    text = json.dumps({k: v for k, v in summary.items()}, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    elif not args.keep:
        out.unlink(missing_ok=True)
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())

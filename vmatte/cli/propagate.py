"""``vmatte propagate CLIP --masks DIR --out DIR``: trimaps and masks for every frame, no model loaded.

Writes ``OUT/trimaps/NNNNNN.png`` (uint8 0/128/255), ``OUT/masks/NNNNNN.png`` (binary propagated masks, 0/255)
and ``OUT/propagate.json`` (per-frame confidence, suggested keyframes, scene cuts, timings), then prints the
frames where a new keyframe mask would help most. Artists use it to check trimaps before a long matting run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def register(subs) -> None:
    p = subs.add_parser(
        "propagate",
        help="propagate keyframe masks to trimaps and masks for every frame (no model; quick check before a run)",
        description="Propagate keyframe masks through CLIP and write trimaps/, masks/ and propagate.json into --out.",
    )
    from vmatte.cli.run import add_common_input_args

    add_common_input_args(p, masks_required=True)
    p.add_argument(
        "--out", metavar="DIR", required=True, help="output folder (trimaps/, masks/, propagate.json)"
    )
    p.add_argument(
        "--band-min",
        type=float,
        default=None,
        metavar="FRAC",
        help="narrowest adaptive band, fraction of the short side",
    )
    p.add_argument(
        "--band-max",
        type=float,
        default=None,
        metavar="FRAC",
        help="widest adaptive band, fraction of the short side",
    )
    p.add_argument(
        "--flow", choices=["ultrafast", "fast", "medium"], default=None, help="DIS optical flow preset"
    )
    p.add_argument(
        "--no-snap", action="store_true", help="do not snap propagated edges to the image (guided filter)"
    )
    p.add_argument(
        "--suggest", type=int, default=None, metavar="N", help="how many keyframe suggestions to report"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the results of an earlier propagate in --out"
    )
    p.set_defaults(func=main)


def _overrides(args: argparse.Namespace) -> dict:
    o = {}
    for flag, key in (
        ("band", "band"),
        ("band_min", "band_min"),
        ("band_max", "band_max"),
        ("suggest", "suggest_keyframes"),
        ("propagator", "propagator"),
        ("propagator_model", "propagator_model"),
    ):
        v = getattr(args, flag)
        if v is not None:
            o[key] = v
    if args.no_snap:
        o["snap"] = False
    return o


def _flow_overrides(args: argparse.Namespace) -> dict:
    """--work-size / --flow → [flow] options."""
    o = {}
    if args.work_size is not None:
        o["work_size"] = args.work_size
    if args.flow is not None:
        o["preset"] = args.flow
    return o


def _write_png(path: Path, img) -> None:
    import cv2

    from vmatte.errors import OutputError
    from vmatte.io.atomic import temp_path

    tmp = temp_path(path)  # same extension: imwrite picks PNG from it
    if not cv2.imwrite(str(tmp), img, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OutputError(
            f"{path}: cannot write", hint="check the --out folder is writable and the disk has space"
        )
    os.replace(tmp, path)  # a killed job never leaves a plausible half-written PNG


# glibc mallopt parameters (malloc.h) and the values this command sets (see _tune_malloc)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 32 << 20


def _tune_malloc() -> None:
    """Fix glibc's mmap threshold at 4 MB and its trim threshold at 32 MB for this command.

    Left dynamic, glibc raises the mmap threshold after the first large free (up to 32 MB). After that,
    frame-sized arrays (the decode and flow threads make them, the main thread frees them) come from
    per-thread heap arenas and fragment there: peak RSS 439 MB on a 2000-frame 1080p clip against 388 MB
    with the mmap threshold fixed at 1 MB (2026-11-24). But fixing it also stops glibc from raising the trim
    threshold, which then stays at 128 kB: each free at the top of the heap handed its pages back to the
    kernel, and the next frame's working-size temporaries (0.9-3.7 MB at 640x360, dozens a frame) were faulted
    in again, 4 kB at a time; at 1 MB the 1.8 MB flow fields were mmap'd and faulted in on every allocation.

    Measured 2026-12-08 (1 MB alone -> these values; 3 interleaved runs at 854x480, keyframes every 10):
    DAVIS parkour 15.2-15.8 -> 10.1-11.3 s wall, 24.2 -> 18.9 CPU s (5.7 -> 0.9 of them in the kernel), dog
    7.8-8.7 -> 6.5-7.3 s; 300 frames of a 1080p synthetic clip 52-53 -> 36 s. Peak RSS on that clip
    (``scripts/bench_propagate_memory.py --every 100``), 100 / 2000 frames: 323 / 371 MB -> 330 / 393 MB
    (trim at 16 MB: 333 / 385 MB, parkour 11.8-12.0 s; at 64 MB: 329 / 408 MB, 10.4-11.1 s). 1080p frames
    (6 MB) are still mmap'd, so they do not fragment the arenas.

    Only this command does it: it loads no model, whose many large tensors would pay a page fault per
    allocation, and the library never touches a host application's allocator. It is a no-op without glibc,
    or when the user set MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ themselves.
    """
    if not sys.platform.startswith("linux") or any(
        k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    ):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):
        pass


def main(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from vmatte.config import build_config, parse_frame_range
    from vmatte.errors import ConfigError, OutputError
    from vmatte.io.decode import open_clip
    from vmatte.io.masks import load_keyframes
    from vmatte.pipeline.prepare import resolve_range
    from vmatte.pipeline.threads import Sink
    from vmatte.propagate import make_propagator

    _tune_malloc()
    t0 = time.perf_counter()
    parse_frame_range(args.frames or "")  # a malformed range fails before the clip is opened
    run_cfg = build_config(config_file=args.config)
    cfg = run_cfg.propagate
    try:
        cfg = replace(cfg, **_overrides(args))
        flow_cfg = replace(run_cfg.flow, **_flow_overrides(args))
    except ValueError as exc:
        raise ConfigError(f"propagation options: {exc}", hint="see vmatte propagate --help") from None
    clip = open_clip(args.input)
    frame_range = (
        resolve_range(args.frames or "", clip.info.frame_count, clip.info.path) if args.frames else None
    )
    keyframes = load_keyframes(args.masks, clip.info)
    for w in keyframes.warnings:
        print(f"vmatte: warning: {w}", file=sys.stderr)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder", hint="pass --out a folder")
    if Path(args.masks).resolve() == out.resolve():
        raise OutputError(f"{out}: is the masks folder", hint="write propagation results to another folder")
    earlier = [n for n in ("propagate.json", "trimaps", "masks") if (out / n).exists()]
    if earlier and not args.overwrite:
        # the same rule as `vmatte run`: results are never replaced silently
        raise OutputError(
            f"{out}: already holds {', '.join(earlier)} from an earlier run",
            hint="pass --overwrite or choose another --out folder",
        )
    prop = make_propagator(
        clip,
        keyframes,
        cfg,
        frame_range=frame_range,
        on_warning=lambda w: print(f"vmatte: warning: {w}", file=sys.stderr),
        probe_timeout_s=run_cfg.engine.hub_probe_timeout_s,
        flow=flow_cfg,
    )
    # folders only once the propagator is settled: missing weights leave nothing behind
    (out / "trimaps").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)

    total = prop.end - prop.start + 1
    last = [0.0]

    def progress(done: int, n: int) -> None:
        now = time.perf_counter()
        if not args.quiet and (now - last[0] > 2.0 or done == n):
            last[0] = now
            print(f"propagate: {done}/{n} frames", file=sys.stderr, flush=True)

    prop.keep_flows = False  # results only: no main pass will ask for the pass's flows
    prop.prepare(on_progress=progress)
    for w in prop.warnings:
        print(f"vmatte: warning: {w}", file=sys.stderr)
    tw = time.perf_counter()
    # PNG encoding releases the GIL: trimaps and masks are written by two threads while this one upsamples
    sinks = [
        Sink(lambda item, sub=sub: _write_png(out / sub / f"{item[0]:06d}.png", item[1]), depth=4, name=sub)
        for sub in ("trimaps", "masks")
    ]
    try:
        for i in range(prop.start, prop.end + 1):
            tri, mask, _conf = prop.result(i)
            sinks[0].put((i, tri))
            sinks[1].put((i, mask))
        for sink in sinks:
            sink.close()
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    wall = time.perf_counter() - t0
    report = prop.summary()
    report["clip"] = str(args.input)
    report["masks"] = str(args.masks)
    report["timings_s"]["write_s"] = round(time.perf_counter() - tw, 3)
    report["timings_s"]["total_s"] = round(wall, 3)
    report["fps"] = round(total / max(wall, 1e-9), 2)
    from vmatte.io.atomic import write_text_atomic

    write_text_atomic(out / "propagate.json", json.dumps(report, indent=1))
    conf = [c for c in report["confidence"] if c is not None]
    print(f"propagate: {total} frames in {wall:.1f} s ({report['fps']:.1f} frames/s) → {out}")
    print(
        f"propagate: mean confidence {report['mean_confidence']}, lowest {min(conf):.3f}"
        if conf
        else "propagate: no frames"
    )
    if report["scene_cuts"]:
        print(
            f"propagate: scene cuts before frames {report['scene_cuts']} (masks are not carried across them)"
        )
    sug = report["suggested_keyframes"]
    if sug:
        print("propagate: a keyframe mask would help most on frames " + ", ".join(str(s) for s in sug))
    return 0

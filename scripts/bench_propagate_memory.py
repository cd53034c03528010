#!/usr/bin/env python
"""Peak memory of ``vmatte propagate`` on a long 1080p clip versus a short one (bounded-memory check).

    .venv/bin/python scripts/bench_propagate_memory.py [--frames 100 2000] [--every 100] [--work /tmp/vm-mem]

Writes a synthetic 1920x1080 H.264 clip (a textured disc moving over a panning textured background; the
true mask is known) of each length plus keyframe masks every ``--every`` frames, runs ``vmatte propagate``
in a child process and reports its peak RSS (ru_maxrss), wall time and frames/s as a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
W, H = 1920, 1080


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 2)


def frame_at(t: int, bg: np.ndarray, fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rgb uint8 (H, W, 3), mask uint8 {0,255}) at frame t: disc on a cycle of 240 frames."""
    x0 = t % 400
    img = np.ascontiguousarray(bg[:, x0 : x0 + W])
    phase = (t % 240) / 240.0
    cx = int(W * (0.25 + 0.5 * abs(2 * phase - 1)))
    cy = int(H * (0.5 + 0.15 * np.sin(2 * np.pi * phase)))
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (cx, cy), 220, 255, -1)
    dx = cx - W // 2
    tex = np.roll(fg, dx, axis=1)
    img[mask > 0] = tex[mask > 0]
    return img, mask


def make_clip(path: Path, masks: Path, frames: int, every: int) -> None:
    import av

    bg = _texture(H, W + 400, 1)
    fg = _texture(H, W, 2)
    masks.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "18"}
        for t in range(frames):
            img, mask = frame_at(t, bg, fg)
            if t % every == 0:
                cv2.imwrite(str(masks / f"{t:06d}.png"), mask)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)


_API_CHILD = """
import json, resource, sys, time
from vmatte.io.decode import open_clip
from vmatte.io.masks import load_keyframes
from vmatte.motion.config import FlowConfig
from vmatte.propagate import Propagator
clip = open_clip(sys.argv[1]); kf = load_keyframes(sys.argv[2], clip.info)
t0 = time.perf_counter()
prop = Propagator(clip, kf, flow=FlowConfig(preset=sys.argv[4]))
prop.prepare()
for i in range(clip.info.frame_count):
    prop.result(i)  # full-res trimap + mask, as the CLI writes them
rep = prop.summary(); rep["fps"] = clip.info.frame_count / (time.perf_counter() - t0)
open(sys.argv[3], "w").write(json.dumps(rep))
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(clip: Path, masks: Path, out: Path, api: bool = False, flow: str = "medium") -> dict:
    """Peak RSS of a child running the CLI (or, with ``api``, Propagator.prepare + result for every frame
    without writing PNGs: the part that holds per-clip state)."""
    if api:
        out.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-c", _API_CHILD, str(clip), str(masks), str(out / "propagate.json"), flow]
    else:
        code = (
            "import resource, sys; from vmatte.cli import main; rc = main(sys.argv[1:]); "
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
        )
        cmd = [sys.executable, "-c", code, "propagate", str(clip), "--masks", str(masks), "--out", str(out)]
        cmd += ["--quiet", "--flow", flow]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    rss = int(next(ln.split()[1] for ln in res.stdout.splitlines() if ln.startswith("MAXRSS")))
    report = json.loads((out / "propagate.json").read_text())
    return {
        "peak_rss_mb": rss / 1024,
        "wall_s": wall,
        "fps": report["fps"],
        "timings_s": report["timings_s"],
        "compact_mb": report["compact_bytes"] / 2**20,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 2000])
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--work", default="/tmp/vm-mem")
    ap.add_argument(
        "--api", action="store_true", help="measure Propagator.prepare + result in-process (no PNG writing)"
    )
    ap.add_argument(
        "--flow", default="medium", help="DIS preset (memory does not depend on it; ultrafast is quicker)"
    )
    args = ap.parse_args()
    work = Path(args.work)
    rows = {}
    for n in args.frames:
        clip, masks = work / f"clip{n}.mp4", work / f"masks{n}"
        if not clip.exists():
            make_clip(clip, masks, n, args.every)
        rows[n] = measure(clip, masks, work / f"out{n}-{'api' if args.api else 'cli'}", args.api, args.flow)
        rows[n]["load_1min"] = os.getloadavg()[0]
        print(
            f"{n:6d} frames 1080p: peak RSS {rows[n]['peak_rss_mb']:.0f} MB, {rows[n]['fps']:.1f} frames/s, load {rows[n]['load_1min']:.1f}",
            flush=True,
        )
    if len(rows) >= 2:
        a, b = rows[min(rows)], rows[max(rows)]
        print(
            f"peak RSS ratio {max(rows)}/{min(rows)} frames: {b['peak_rss_mb'] / a['peak_rss_mb']:.2f} (target <= 1.5)"
        )
    print(
        json.dumps(
            {
                "runs": rows,
                "every": args.every,
                "max_rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

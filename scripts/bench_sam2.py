#!/usr/bin/env python
"""Speed of SAM 2 propagation (``--propagator sam2``) with random weights. Prints a table and JSON.

    .venv/bin/python scripts/bench_sam2.py [--config test|hiera-tiny] [--size 854x480] [--frames 12] [--every 6]
        [--device auto|cpu|cuda] [--engine none|classic|vitmatte-small] [--json out.json]

Random weights: speed does not depend on weight values (quality cannot be measured without real weights). The
clip is a synthetic scene (vmatte.testing.Scene) written as H.264; keyframes every ``--every`` frames.
``--config hiera-tiny`` is facebook/sam2.1-hiera-tiny's shape (1024 px input); ``test`` the tiny 128 px model of
the tests (mechanics only). ``--engine`` adds an end-to-end ``vmatte run`` (propagation + matting + smoothing +
ProRes) with that engine; ``vitmatte-small`` is a random ViTMatte-small. CPU seconds (process time, all threads)
are printed beside wall seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmatte.engine.weights import WeightsSource
from vmatte.io.decode import open_clip
from vmatte.io.masks import load_keyframes
from vmatte.propagate.config import PropagateConfig
from vmatte.propagate.sam2 import Sam2Propagator
from vmatte.propagate.sam2_configs import save_random_sam2
from vmatte.testing import Scene, write_clip, write_masks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=["test", "hiera-tiny"], default="test")
    ap.add_argument("--size", default="854x480")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--every", type=int, default=6)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--engine", choices=["none", "classic", "vitmatte-small"], default="none")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-sam2-") as tmp:
        d = Path(tmp)
        model_dir = save_random_sam2(d / "sam2", args.config)
        sc = Scene(width=w, height=h, frames=args.frames, speed=2.5)
        clip = write_clip(d / "clip.mp4", sc)
        keys = list(range(0, args.frames, args.every))
        masks = write_masks(d / "keys", sc, keys)
        c = open_clip(str(clip))
        kf = load_keyframes(str(masks), c.info)
        cfg = PropagateConfig(
            propagator="sam2", propagator_model=str(model_dir), propagator_device=args.device
        )
        p = Sam2Propagator(c, kf, cfg, source=WeightsSource("dir", str(model_dir), str(model_dir)))
        t0, c0 = time.perf_counter(), time.process_time()
        p.prepare()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        s = p.summary()
        model_s = s["timings_s"]["model_s"]
        rows["propagate"] = {
            "frames": args.frames,
            "keyframes": keys,
            "device": s["device"],
            "input_size": s["input_size"],
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "frames_per_s": round(args.frames / wall, 3),
            "model_calls": s["model_calls"],
            "s_per_model_call": round(model_s / max(1, s["model_calls"]), 4),
            "load_s": s["timings_s"]["load_s"],
            "peak_session_bytes": s["peak_session_bytes"],
            "compact_bytes": s["compact_bytes"],
        }
        if args.engine != "none":
            import vmatte

            engine = {"name": args.engine}
            if args.engine == "vitmatte-small":
                from vmatte.engine.hub_configs import save_random_model

                engine = {"name": "vitmatte", "model": str(save_random_model(d / "vitmatte", "small"))}
            if args.device != "auto":
                engine["device"] = args.device
            config = vmatte.build_config(
                overrides={
                    "input": str(clip),
                    "masks": str(masks),
                    "outputs": [{"path": str(d / "out.mov")}],
                    "engine": engine,
                    "propagate": {"propagator": "sam2", "propagator_model": str(model_dir)},
                    "progress": "none",
                }
            )
            t0, c0 = time.perf_counter(), time.process_time()
            rep = vmatte.run(config)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rows["run"] = {
                "engine": rep.engine.get("engine"),
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "frames_per_s": round(rep.frames_written / wall, 3),
                "propagate_prepare_s": round(rep.times.propagate_prepare, 2),
            }
    rows["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"SAM 2 '{args.config}' (random weights), {args.size}, {args.frames} frames, keyframes {keys}")
    for name, r in rows.items():
        if isinstance(r, dict):
            print(f"  {name:>9}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "keyframes"))
    print(f"  peak RSS {rows['peak_rss_mb']} MB")
    text = json.dumps({"config": args.config, "size": args.size, **rows}, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

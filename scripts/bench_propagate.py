#!/usr/bin/env python
"""Benchmark trimap propagation on DAVIS 2016 (per-frame GT masks) against two baselines. Prints a table and JSON.

    .venv/bin/python scripts/bench_propagate.py [--data ../shared/data/davis2016-eorvos] [--every 10 20 0]
        [--clips breakdance dog] [--set snap=false --set preset=fast] [--tune layer_radius=0.04]
        [--json /tmp/bench.json]

Keyframes: the GT mask on every N-th frame (N = 0: the first frame only); the other frames are scored.
Metrics (per clip: IoU is the mean over scored frames, the others are ratios of sums over scored frames):
- iou: |mask ∩ GT| / |mask ∪ GT|, mask = the propagated binary mask.
- hard: (definite-FG pixels that are GT background + definite-BG pixels that are GT foreground) / GT FG area.
- recall: share of GT boundary pixels (a 2-px band: 3x3 dilation XOR 3x3 erosion of GT) inside the unknown band.
- unk: unknown area / GT FG area.
- worst10: mean IoU over the worst decile of scored frames (at least one frame): fast-motion failures that
  the clip mean averages away (the JSON's frame_iou gives each scored frame's IoU, vmatte only).
- lost_thin / lost_body / extra: where each frame's IoU is lost, as shares of its union (mean over scored
  frames; IoU + the three = 1): GT pixels of parts narrower than THIN_PX (kite and paraglider lines, spokes:
  what a 7-px disk does not fit in, at 480p) outside the mask, other GT pixels outside the mask, and mask
  pixels outside GT. Says whether a clip's loss is its lines or its subject.
- fps: frames per second of the whole method run (decode + flow + blend + full-res output), wall clock.
- conf_iou_spearman (vmatte): Spearman correlation of the per-frame confidence with frame IoU; the mean over
  clips is printed under the table (2026-12-06: every 10 0.303 -> 0.452, every 20 0.352 -> 0.406 when frames
  one direction alone reaches stopped counting as fully agreed, blend.UNVERIFIED_AGREEMENT; 2026-12-07: every 10
  0.490 -> 0.536, every 20 0.450 -> 0.499 when frames that lost their lines lost confidence,
  Propagator._lines_confidence).
Methods: vmatte (Propagator), nearest (nearest keyframe copied), forward (binary mask chained forward with DIS
flow from the previous keyframe, frames before it copy the first keyframe). Baselines use a fixed 8 px band.
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
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmatte.io.decode import open_clip
from vmatte.io.masks import load_keyframes
from vmatte.motion.config import FlowConfig
from vmatte.motion.flow import FlowPair
from vmatte.propagate import PropagateConfig, Propagator
from vmatte.propagate.lines import WIDTH_PX
from vmatte.propagate.trimap import mask_to_trimap
from vmatte.propagate.tuning import Tuning

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-eorvos"
K3 = np.ones((3, 3), np.uint8)
THIN_PX = WIDTH_PX  # at 480p: GT parts this narrow count as thin in lost_thin (what the line search handles)


def score(tri: np.ndarray, mask: np.ndarray, gt: np.ndarray, acc: dict) -> None:
    g = gt > 127
    m = mask > 127
    inter = np.count_nonzero(m & g)
    union = np.count_nonzero(m | g)
    acc["iou"].append(inter / union if union else 1.0)
    k = max(3, round(THIN_PX * min(g.shape) / 480)) | 1
    g8 = g.view(np.uint8)
    thin = g & (
        cv2.morphologyEx(g8, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) == 0
    )
    lost = g & ~m
    u = max(union, 1)
    acc["lost_thin"].append(np.count_nonzero(lost & thin) / u)
    acc["lost_body"].append(np.count_nonzero(lost & ~thin) / u)
    acc["extra"].append(np.count_nonzero(m & ~g) / u)
    acc["fg"] += np.count_nonzero(g)
    acc["hard"] += np.count_nonzero((tri == 255) & ~g) + np.count_nonzero((tri == 0) & g)
    edge = (cv2.dilate(g8, K3) ^ cv2.erode(g8, K3)) > 0
    acc["edge"] += np.count_nonzero(edge)
    acc["edge_in"] += np.count_nonzero(edge & (tri == 128))
    acc["unk"] += np.count_nonzero(tri == 128)


def new_acc() -> dict:
    return {
        "iou": [],
        "lost_thin": [],
        "lost_body": [],
        "extra": [],
        "fg": 0,
        "hard": 0,
        "edge": 0,
        "edge_in": 0,
        "unk": 0,
        "frames": 0,
        "time": 0.0,
    }


def finish(acc: dict) -> dict:
    fg = max(acc["fg"], 1)
    ious = np.sort(np.asarray(acc["iou"], np.float64))
    worst = ious[: max(1, len(ious) // 10)]
    return {
        "iou": float(np.mean(acc["iou"])) if acc["iou"] else float("nan"),
        "worst10": float(worst.mean()) if len(ious) else float("nan"),
        "hard": acc["hard"] / fg,
        **{
            k: float(np.mean(acc[k])) if acc[k] else float("nan") for k in ("lost_thin", "lost_body", "extra")
        },
        "recall": acc["edge_in"] / max(acc["edge"], 1),
        "unk": acc["unk"] / fg,
        "fps": acc["frames"] / max(acc["time"], 1e-9),
        "frames": acc["frames"],
    }


def read_gray(path: str) -> np.ndarray:
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE)


def run_clip(
    data: Path,
    name: str,
    every: int,
    cfg: PropagateConfig,
    tune: Tuning,
    methods: list[str],
    tmp: Path,
    flow_cfg: FlowConfig,
) -> dict:
    frames_dir = data / "DAVIS" / "JPEGImages" / "480p" / name
    ann_dir = data / "DAVIS" / "Annotations" / "480p" / name
    gts = sorted(ann_dir.glob("*.png"))
    n = len(gts)
    kf_idx = [0] if every == 0 else list(range(0, n, every))
    kdir = tmp / f"{name}-{every}"
    if kdir.exists():
        shutil.rmtree(kdir)
    kdir.mkdir(parents=True)
    for k in kf_idx:
        shutil.copy(gts[k], kdir / f"{k:06d}.png")
    clip = open_clip(frames_dir)
    keyframes = load_keyframes(kdir, clip.info)
    kset = set(kf_idx)
    gt_cache = {i: read_gray(str(gts[i])) for i in range(n) if i not in kset}
    band8 = 8.0
    out: dict = {}
    if "vmatte" in methods:
        acc = new_acc()
        t0 = time.perf_counter()
        c0 = time.process_time()
        prop = Propagator(clip, keyframes, cfg, tuning=tune, flow=flow_cfg)
        prop.prepare()
        results = {}
        for i in range(n):
            tri, mask, _ = prop.result(i)
            if i not in kset:
                results[i] = (tri, mask)
        acc["time"] = time.perf_counter() - t0
        cpu = time.process_time() - c0
        acc["frames"] = n
        for i, (tri, mask) in results.items():
            score(tri, mask, gt_cache[i], acc)
        out["vmatte"] = finish(acc)
        # CPU seconds (all threads) per frame: less sensitive than wall time to other users of the machine
        out["vmatte"]["cpu_ms_per_frame"] = 1000 * cpu / n
        out["vmatte"]["mean_confidence"] = prop.summary()["mean_confidence"]
        out["vmatte"]["suggested"] = prop.suggestions()
        out["vmatte"]["scene_cuts"] = len(prop.cuts)
        # does confidence rank frames by quality? (Spearman between confidence and IoU over scored frames)
        ious = acc["iou"]
        # per scored frame, so a worst decile can be traced to its frames (JSON only)
        out["vmatte"]["frame_iou"] = {int(i): round(float(v), 4) for i, v in zip(results, ious)}
        confs = [prop.confidence[i] for i in results]
        if len(ious) > 2:
            ra, rb = np.argsort(np.argsort(confs)), np.argsort(np.argsort(ious))
            out["vmatte"]["conf_iou_spearman"] = float(np.corrcoef(ra, rb)[0, 1])
    if "nearest" in methods:
        acc = new_acc()
        t0 = time.perf_counter()
        kms = {k: read_gray(str(gts[k])) for k in kf_idx}
        res = {}
        for f in clip.frames(0, n - 1):
            i = f.index
            k = min(kf_idx, key=lambda k: (abs(k - i), k))
            m = kms[k]
            if i not in kset:
                res[i] = (mask_to_trimap(m, band8), m)
        acc["time"] = time.perf_counter() - t0
        acc["frames"] = n
        for i, (tri, m) in res.items():
            score(tri, m, gt_cache[i], acc)
        out["nearest"] = finish(acc)
    if "forward" in methods:
        acc = new_acc()
        t0 = time.perf_counter()
        flow = FlowPair(flow_cfg.preset, clip.info.width, clip.info.height)
        prev_gray = None
        m = None
        res = {}
        first = read_gray(str(gts[kf_idx[0]]))
        for f in clip.frames(0, n - 1):
            i = f.index
            gray = cv2.cvtColor(f.rgb, cv2.COLOR_RGB2GRAY)
            if i in kset:
                m = read_gray(str(gts[i]))
            elif m is None:
                res[i] = (mask_to_trimap(first, band8), first)
            else:
                back = flow.dis.calc(gray, prev_gray, None)
                m = (flow.warp(m.astype(np.float32), back) >= 127.5).astype(np.uint8) * 255
                res[i] = (mask_to_trimap(m, band8), m)
            prev_gray = gray
        acc["time"] = time.perf_counter() - t0
        acc["frames"] = n
        for i, (tri, mm) in res.items():
            score(tri, mm, gt_cache[i], acc)
        out["forward"] = finish(acc)
    return out


def install_flow_cache(folder: Path) -> None:
    """Memoise FlowPair's raw DIS calls on disk, keyed by a hash of the two frames and the preset, so that
    ablations of everything downstream of the flow run several times faster. Results are bit-identical."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    orig = FlowPair.__init__

    class Cached:
        def __init__(self, dis, preset: str) -> None:
            self.dis, self.preset = dis, preset

        def calc(self, a, b, _init):
            h = hashlib.sha1(a.tobytes() + b.tobytes() + self.preset.encode()).hexdigest()
            f = folder / f"{h}.npy"
            if f.exists():
                return np.load(f).astype(np.float32)
            flow = self.dis.calc(a, b, None)
            np.save(f, flow.astype(np.float16))
            return flow.astype(np.float16).astype(np.float32)

    def init(self, preset, width, height):
        orig(self, preset, width, height)
        # both DIS instances (FlowPair runs the backward direction on its own instance, in a second thread)
        self.dis = Cached(self.dis, preset)
        self.dis_back = Cached(self.dis_back, preset)

    FlowPair.__init__ = init


def parse_set(items: list[str]) -> dict:
    out = {}
    for it in items:
        k, _, v = it.partition("=")
        if v.lower() in ("true", "false"):
            out[k] = v.lower() == "true"
        else:
            try:
                out[k] = int(v)
            except ValueError:
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument(
        "--every", type=int, nargs="+", default=[10, 20, 0], help="keyframe spacing; 0 = first frame only"
    )
    ap.add_argument("--clips", nargs="*", default=None)
    ap.add_argument("--methods", nargs="+", default=["vmatte", "nearest", "forward"])
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        help="PropagateConfig or FlowConfig override, e.g. snap=false, preset=fast",
    )
    ap.add_argument(
        "--tune",
        action="append",
        default=[],
        help="override a propagator constant (vmatte.propagate.tuning.Tuning), e.g. layer_radius=0.04",
    )
    ap.add_argument("--json", default=None, help="also write the JSON here")
    ap.add_argument(
        "--flow-cache",
        default=None,
        metavar="DIR",
        help="ablations only: reuse DIS flows from DIR (fps then meaningless)",
    )
    args = ap.parse_args()
    if args.flow_cache:
        install_flow_cache(Path(args.flow_cache))
    data = Path(args.data)
    clips = args.clips or sorted(p.name for p in (data / "DAVIS" / "JPEGImages" / "480p").iterdir())
    sets = parse_set(args.set)
    flow_keys = {f.name for f in dataclasses.fields(FlowConfig)}
    flow_cfg = FlowConfig(**{k: v for k, v in sets.items() if k in flow_keys})
    cfg = PropagateConfig(**{k: v for k, v in sets.items() if k not in flow_keys})
    tune = Tuning(**parse_set(args.tune))
    tmp = Path(tempfile.mkdtemp(prefix="vmatte-bench-"))
    report: dict = {
        "config": dataclasses.asdict(cfg),
        "flow": dataclasses.asdict(flow_cfg),
        "tuning": dataclasses.asdict(tune),
        "load_1min": os.getloadavg()[0],
        "runs": {},
    }
    cols = ("iou", "hard", "recall", "unk", "worst10", "fps", "lost_thin", "lost_body", "extra")
    try:
        for every in args.every:
            label = "first-frame" if every == 0 else f"every-{every}"
            per = {}
            for name in clips:
                per[name] = run_clip(data, name, every, cfg, tune, args.methods, tmp, flow_cfg)
                print(
                    f"  {label:12s} {name:20s} "
                    + "  ".join(
                        f"{m}: iou {r['iou']:.3f} hard {r['hard']:.3f} rec {r['recall']:.3f} unk {r['unk']:.2f}"
                        f" w10 {r['worst10']:.3f} lost thin/body/extra {r['lost_thin']:.3f}/{r['lost_body']:.3f}/{r['extra']:.3f}"
                        for m, r in per[name].items()
                    ),
                    flush=True,
                )
            mean = {m: {c: float(np.mean([per[n][m][c] for n in clips])) for c in cols} for m in args.methods}
            if "vmatte" in args.methods:
                tot_frames = sum(per[n]["vmatte"]["frames"] for n in clips)
                tot_cpu = sum(
                    per[n]["vmatte"]["cpu_ms_per_frame"] * per[n]["vmatte"]["frames"] for n in clips
                )
                mean["vmatte"]["cpu_ms_per_frame"] = tot_cpu / tot_frames
                rhos = [
                    per[n]["vmatte"]["conf_iou_spearman"]
                    for n in clips
                    if "conf_iou_spearman" in per[n]["vmatte"]
                ]
                mean["vmatte"]["conf_iou_spearman"] = float(np.mean(rhos)) if rhos else float("nan")
            report["runs"][label] = {"clips": per, "mean": mean}
            print(f"\n{label} (mean over {len(clips)} clips, load avg {os.getloadavg()[0]:.1f})")
            print(
                f"{'method':10s} {'IoU':>6s} {'hard':>6s} {'recall':>7s} {'unk':>6s} {'worst10':>7s} {'fps':>7s}"
                "  IoU lost to: thin / body / extra"
            )
            for m in args.methods:
                r = mean[m]
                print(
                    f"{m:10s} {r['iou']:6.3f} {r['hard']:6.3f} {r['recall']:7.3f} {r['unk']:6.2f} {r['worst10']:7.3f}"
                    f" {r['fps']:7.1f}  {r['lost_thin']:.3f} / {r['lost_body']:.3f} / {r['extra']:.3f}"
                )
            if "vmatte" in args.methods:
                # does the per-frame confidence (and so the keyframe suggestions) rank frames by quality?
                print(
                    f"vmatte confidence vs frame IoU, Spearman, mean of clips: {mean['vmatte']['conf_iou_spearman']:.3f}"
                )
            print(flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_1min_end"] = os.getloadavg()[0]
    text = json.dumps(report, indent=1, default=float)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

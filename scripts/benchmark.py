"""Engine and end-to-end benchmark: prints a table and JSON.

Random-initialised models with the hub configurations (speed and memory do not depend on weight values) on a
synthetic clip with keyframe masks. For each model and frame size:

  (a) naive   the transformers loop: per frame VitMatteImageProcessor → model (fp32) → alpha PNG
  (b) engine  vmatte's engine alone on preloaded frames (rgb + trimap in memory)
  (c) e2e     vmatte.run: clip → ProRes 4444 RGBA (decode, propagate, engine, smooth, encode)
  (d) matte   vmatte.run: clip → alpha matte (ProRes 4444, gray)
  (e) tiling  seam cost: max/mean |tiled - untiled| over the unknown band on one frame (tile = half the long side)

with frames/s, peak device memory, peak host RSS, device busy fraction (CUDA events around compute / wall) and
the ratios (c)/(a), (c)/(b). ``--memory-test`` runs the chain with the FakeEngine on 300 and 3000 frames in
subprocesses and compares their peak RSS (host memory must stay flat with clip length).

    python scripts/benchmark.py --device cuda                      # GPU: small+base, 1080p and 4K (24 GB budget)
    python scripts/benchmark.py --device cpu --size 480x854 --model small --frames 8
    python scripts/benchmark.py --memory-test

Sizes are WxH or HxW: the larger number is taken as the width (landscape).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_budget beside this file


# -- measuring -------------------------------------------------------------------------------------------------
class PeakRSS:
    """Samples this process's resident memory every 10 ms while active; ``peak_mb`` afterwards."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._stop = threading.Event()
        self.peak = 0

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_gpu_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _gpu_peak_mb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' or '480x854' → (width, height) with width >= height."""
    a, b = (int(v) for v in text.lower().split("x"))
    return (max(a, b), min(a, b))


# -- inputs ----------------------------------------------------------------------------------------------------
def make_inputs(work: Path, width: int, height: int, frames: int, key_every: int, subject: float = 0.15):
    """Synthetic clip (H.264), keyframe masks, and preloaded frames (rgb + band trimap) for (a)/(b). The subject
    (a disc) covers ``subject`` of the frame's area."""
    import math

    import cv2

    from vmatte.frame import Frame
    from vmatte.testing import Scene, write_clip, write_masks

    radius = math.sqrt(subject * width * height / math.pi) / min(width, height)
    scene = Scene(width=width, height=height, frames=frames, speed=max(1.0, width / 400), radius=radius)
    clip = write_clip(work / f"clip_{width}x{height}.mp4", scene)
    keys = sorted({*range(0, frames, key_every), frames - 1})
    masks = write_masks(work / f"masks_{width}x{height}", scene, keys)
    band = max(3, round(height / 90)) | 1  # unknown band ~ what propagation gives (a few px either side)
    preloaded = []
    for t in range(frames):
        a = scene.alpha(t)
        tri = np.full(a.shape, 128, np.uint8)
        tri[a <= 0.0] = 0
        tri[a >= 1.0] = 255
        grow = cv2.dilate((tri == 128).astype(np.uint8), np.ones((band, band), np.uint8)) > 0
        tri[grow] = 128
        preloaded.append(Frame(t, t, None, scene.rgb(t), trimap=tri))
    return clip, masks, preloaded


# -- the four measurements ---------------------------------------------------------------------------------------
def bench_naive(model_dir: Path, frames, device: str, out_dir: Path) -> dict:
    """(a) The loop a transformers user writes: processor → model fp32 → numpy → PNG, one frame at a time."""
    import cv2
    import torch
    from transformers import VitMatteForImageMatting

    try:  # the torchvision backend when installed (what VitMatteImageProcessor picks), else the PIL one
        import torchvision  # noqa: F401
        from transformers import VitMatteImageProcessor as Processor
    except ImportError:
        try:
            from transformers.models.vitmatte.image_processing_pil_vitmatte import (
                VitMatteImageProcessorPil as Processor,
            )
        except ImportError:  # transformers releases before the PIL/torchvision split (the device has 5.17)
            from transformers import VitMatteImageProcessor as Processor
    processor = Processor()
    model = VitMatteForImageMatting.from_pretrained(str(model_dir)).to(device).eval()
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(f) -> None:
        px = processor(images=f.rgb, trimaps=f.trimap, return_tensors="pt").pixel_values.to(device)
        with torch.no_grad():
            alpha = model(pixel_values=px).alphas[0, 0, : f.height, : f.width].cpu().numpy()
        cv2.imwrite(str(out_dir / f"{f.index:06d}.png"), np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8))

    try:
        one(frames[0])  # warm-up (cuDNN autotune, allocator)
        _reset_gpu_peak(device)
        with PeakRSS() as rss:
            t, cpu = time.perf_counter(), time.process_time()
            for f in frames:
                one(f)
            _sync(device)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    except torch.OutOfMemoryError as exc:
        return {"fps": None, "error": f"OOM: {str(exc).splitlines()[0][:120]}"}
    finally:
        model = None  # free its memory before the engine loads
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return {
        "fps": len(frames) / wall,
        "s_per_frame": wall / len(frames),
        "cpu_s_per_frame": cpu / len(frames),
        "gpu_peak_mb": _gpu_peak_mb(device),
        "host_peak_mb": rss.peak_mb,
    }


def bench_engine(engine, frames, device: str) -> dict:
    """(b) Engine alone: push/flush preloaded frames (warm-up batch first)."""
    warm = frames[: max(1, engine.batch_size)]
    for f in warm:
        engine.push(f)
    engine.flush()
    _reset_gpu_peak(device)
    busy0 = engine.runner.compute_s if hasattr(engine, "runner") else 0.0
    with PeakRSS() as rss:
        t, cpu = time.perf_counter(), time.process_time()
        n = 0
        for f in frames:
            n += len(engine.push(f))
        n += len(engine.flush())
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    assert n == len(frames)
    busy = (engine.runner.compute_s - busy0) if hasattr(engine, "runner") else None
    return {
        "fps": n / wall,
        "s_per_frame": wall / n,
        "cpu_s_per_frame": cpu / n,  # process CPU time (all threads): robust to a shared machine
        "gpu_peak_mb": _gpu_peak_mb(device),
        "host_peak_mb": rss.peak_mb,
        "busy_fraction": (busy / wall) if busy is not None else None,
        "batch_size": engine.batch_size,
    }


def bench_e2e(engine, clip: Path, masks: Path, out: Path, content: str, device: str) -> dict:
    """(c)/(d) vmatte.run on the clip with the loaded engine, after a 2-frame warm-up run of the same chain
    (numba JIT of the decontamination and the encoder's first-frame setup are per-process, not per-frame costs)."""
    import vmatte
    from vmatte.config import OutputConfig, RunConfig

    cfg = RunConfig(
        input=str(clip),
        masks=str(masks),
        outputs=(OutputConfig(path=str(out), format="prores4444", content=content),),
        engine=vmatte.EngineConfig(name=engine.name),
        overwrite=True,
        progress="none",
    )
    vmatte.run(cfg.replace(frames="0-1"), engine=engine)
    _reset_gpu_peak(device)
    busy0 = engine.runner.compute_s if hasattr(engine, "runner") else 0.0
    with PeakRSS() as rss:
        t, cpu = time.perf_counter(), time.process_time()
        report = vmatte.run(cfg, engine=engine)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    busy = (engine.runner.compute_s - busy0) if hasattr(engine, "runner") else None
    times = {k: round(v, 3) for k, v in vars(report.times).items()}
    return {
        "fps": report.frames_written / wall,
        "s_per_frame": wall / max(1, report.frames_written),
        "cpu_s_per_frame": cpu / max(1, report.frames_written),
        "frames": report.frames_written,
        "gpu_peak_mb": _gpu_peak_mb(device),
        "host_peak_mb": rss.peak_mb,
        "busy_fraction": (busy / wall) if busy is not None else None,
        "stage_times_s": times,
        # CPU outside the engine's push/flush (decode, propagation, smoothing, decontamination, encode). Only on
        # CUDA: on the CPU the model runs in torch's worker threads, which no stage timer can tell apart
        "non_model_cpu_s_per_frame": (cpu - report.cpu.engine) / max(1, report.frames_written)
        if device.startswith("cuda")
        else None,
        "stage_cpu_s_per_frame": {
            k: round(v / max(1, report.frames_written), 4) for k, v in vars(report.cpu).items()
        },
    }


def bench_tiling(engine_factory, frame) -> dict:
    """(e) One frame untiled vs tiled (tile = half the long side, 64 px overlap): the seam/quality cost."""

    def run(engine):
        out = engine.push(frame) + engine.flush()
        engine.close()
        return out[0].alpha

    whole = run(engine_factory(tile=0))
    tile = max(256, (max(frame.height, frame.width) // 2 + 31) // 32 * 32)
    eng = engine_factory(tile=tile)
    tiled = run(eng)
    band = frame.trimap == 128
    d = np.abs(tiled - whole)[band]
    return {
        "tile": tile,
        "overlap": 64,
        "tiles_run": eng.tiles_run,
        "tiles_skipped": eng.tiles_skipped,
        "max_abs_diff": float(d.max()),
        "mean_abs_diff": float(d.mean()),
    }


# -- memory flatness with clip length -----------------------------------------------------------------------------
def memory_child(frames: int, work: Path) -> dict:
    import vmatte
    from vmatte.config import OutputConfig, RunConfig
    from vmatte.engine.base import FakeEngine
    from vmatte.testing import Scene, write_clip, write_masks

    scene = Scene(width=256, height=144, frames=frames, speed=0.05)
    clip = write_clip(work / f"long_{frames}.mp4", scene)
    masks = write_masks(work / f"long_masks_{frames}", scene, sorted({*range(0, frames, 100), frames - 1}))
    cfg = RunConfig(
        input=str(clip),
        masks=str(masks),
        overwrite=True,
        progress="none",
        outputs=(OutputConfig(path=str(work / f"long_{frames}.mov"), format="prores4444"),),
    )
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    report = vmatte.run(cfg, engine=FakeEngine(batch_size=4))
    return {
        "frames": report.frames_written,
        "wall_s": time.perf_counter() - t,
        "rss_before_run_mb": base,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def memory_test(lengths: list[int]) -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix="vmatte-memtest-") as tmp:
        for n in lengths:
            out = subprocess.run(
                [sys.executable, __file__, "--_memory-child", str(n), "--work", tmp],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                results[n] = {
                    "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
                }
            else:
                results[n] = json.loads(out.stdout.strip().splitlines()[-1])
    peaks = [r.get("peak_rss_mb") for r in results.values()]
    ratio = (peaks[-1] / peaks[0]) if all(peaks) else None
    return {
        "engine": "fake (FakeEngine: the real model is too slow on CPU for 3000 frames)",
        "runs": results,
        "peak_ratio_longest_over_shortest": ratio,
        "target": "<= 1.2",
    }


# -- main ----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument(
        "--model",
        default=None,
        help="comma list of hub configs: small, base (default: small on CPU, small,base on CUDA)",
    )
    p.add_argument(
        "--size",
        "--sizes",
        dest="sizes",
        default=None,
        help="comma list of frame sizes (default 854x480 on CPU; 1920x1080,3840x2160 on CUDA)",
    )
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default 8 on CPU, 48 on CUDA)")
    p.add_argument("--frames-4k", type=int, default=16, help="frames per clip at sizes above 2560 px wide")
    p.add_argument("--key-every", type=int, default=24, help="keyframe mask every N frames")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument(
        "--crop-threshold",
        type=float,
        default=None,
        help="engine crop_threshold (default: EngineConfig's; 0 = whole frames)",
    )
    p.add_argument("--subject", type=float, default=0.15, help="subject area as a fraction of the frame")
    p.add_argument("--markdown", default="", help="also write the table as Markdown here")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the engine's model (time reported apart)"
    )
    p.add_argument(
        "--memory-budget-gb",
        type=float,
        default=None,
        help="engine CUDA memory cap (default: 24 for sizes above 2560 px wide, else none)",
    )
    p.add_argument(
        "--skip",
        default="",
        help="comma list of parts to skip: budget, naive, engine, e2e, matte, tiling, classic",
    )
    p.add_argument("--budget-frames", type=int, default=12, help="frames per budget clip (FakeEngine)")
    p.add_argument(
        "--memory-test", action="store_true", help="only: host RSS with clip length (FakeEngine, 300 vs 3000)"
    )
    p.add_argument("--lengths", default="300,3000")
    p.add_argument("--json", default="", help="also write the JSON here")
    p.add_argument("--work", default="", help="folder for clips/outputs (default: a temp folder)")
    p.add_argument("--_memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._memory_child:
        print(json.dumps(memory_child(args._memory_child, Path(args.work))))
        return 0
    if args.memory_test:
        res = memory_test([int(v) for v in args.lengths.split(",")])
        _emit({"memory_test": res}, args.json)
        for n, r in res["runs"].items():
            print(
                f"{n:>6} frames  peak RSS {r.get('peak_rss_mb', float('nan')):8.1f} MB  "
                f"({r.get('wall_s', float('nan')):.1f} s)  {r.get('error', '')}"
            )
        print(f"ratio longest/shortest: {res['peak_ratio_longest_over_shortest']}  (target <= 1.2)")
        return 0

    import torch

    from vmatte.engine.cuda import resolve_device
    from vmatte.engine.hub_configs import save_random_model
    from vmatte.engine.vitmatte import VitMatteEngine
    from vmatte.engine.weights import WeightsSource, load_model

    device = str(resolve_device(args.device))
    cuda = device.startswith("cuda")
    models = (args.model or ("small,base" if cuda else "small")).split(",")
    sizes = [parse_size(s) for s in (args.sizes or ("1920x1080,3840x2160" if cuda else "854x480")).split(",")]
    n_frames = args.frames or (48 if cuda else 8)
    skip = set(filter(None, args.skip.split(",")))
    from vmatte.engine.config import EngineConfig

    crop_threshold = EngineConfig().crop_threshold if args.crop_threshold is None else args.crop_threshold
    dev_name = (
        torch.cuda.get_device_name(torch.device(device))
        if cuda
        else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    )
    result: dict = {"device": dev_name, "torch": torch.__version__, "precision": args.precision, "runs": []}

    tmp_ctx = tempfile.TemporaryDirectory(prefix="vmatte-bench-") if not args.work else None
    work = Path(args.work or tmp_ctx.name)
    work.mkdir(parents=True, exist_ok=True)
    try:
        if "budget" not in skip:
            import bench_budget

            print(f"[budget] FakeEngine, {sizes} ...", file=sys.stderr, flush=True)
            result["budget"] = bench_budget.run_budget(
                sizes, args.budget_frames, max(2, args.budget_frames // 3), work
            )
        for name in models:
            model_dir = save_random_model(work / f"vitmatte-{name}", name, seed=0)
            for w, h in sizes:
                frames_here = args.frames_4k if w > 2560 and not args.frames else n_frames
                budget = (
                    args.memory_budget_gb
                    if args.memory_budget_gb is not None
                    else (24.0 if w > 2560 else 0.0)
                )
                clip, masks, frames = make_inputs(work, w, h, frames_here, args.key_every, args.subject)
                run: dict = {
                    "model": name,
                    "size": f"{w}x{h}",
                    "frames": frames_here,
                    "memory_budget_gb": budget or None,
                }
                print(f"[{name} {w}x{h}] {frames_here} frames on {dev_name} ...", file=sys.stderr, flush=True)

                def make_engine(tile: int = 0, _dir=model_dir, _budget=budget):
                    model = load_model(WeightsSource("dir", str(_dir), str(_dir)))
                    return VitMatteEngine(
                        model,
                        device=device,
                        precision=args.precision,
                        batch_size=args.batch_size,
                        tile=tile,
                        compile=args.compile,
                        memory_budget_gb=_budget,
                        crop_threshold=crop_threshold,
                        source="random",
                    )

                if "naive" not in skip:
                    run["a_naive"] = bench_naive(model_dir, frames, device, work / "naive_out")
                    print(f"  (a) naive  {run['a_naive']}", file=sys.stderr, flush=True)
                engine = make_engine()
                if "engine" not in skip:
                    run["b_engine"] = bench_engine(engine, frames, device)
                    print(f"  (b) engine {run['b_engine']}", file=sys.stderr, flush=True)
                if "e2e" not in skip:
                    run["c_e2e_prores"] = bench_e2e(
                        engine, clip, masks, work / "out_rgba.mov", "rgba", device
                    )
                    print(f"  (c) e2e    {run['c_e2e_prores']}", file=sys.stderr, flush=True)
                if "matte" not in skip:
                    run["d_e2e_matte"] = bench_e2e(
                        engine, clip, masks, work / "out_matte.mov", "alpha", device
                    )
                    print(f"  (d) matte  {run['d_e2e_matte']}", file=sys.stderr, flush=True)
                run["engine"] = engine.describe()
                engine.close()
                del engine
                gc.collect()
                if "tiling" not in skip:
                    run["e_tiling"] = bench_tiling(make_engine, frames[len(frames) // 2])
                if "classic" not in skip and not cuda:
                    from vmatte.engine.classic import ClassicEngine

                    run["classic_engine"] = bench_engine(ClassicEngine(), frames, device)
                fps = {
                    k: run[k]["fps"]
                    for k in ("a_naive", "b_engine", "c_e2e_prores")
                    if k in run and run[k].get("fps")
                }
                if "c_e2e_prores" in fps and "a_naive" in fps:
                    run["ratio_c_over_a"] = fps["c_e2e_prores"] / fps["a_naive"]
                if "c_e2e_prores" in fps and "b_engine" in fps:
                    run["ratio_c_over_b"] = fps["c_e2e_prores"] / fps["b_engine"]
                result["runs"].append(run)
                if cuda:
                    torch.cuda.empty_cache()
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()
    _table(result)
    md = markdown(result)
    if args.markdown:
        Path(args.markdown).write_text(md)
    _emit(result, args.json)
    return 0


def markdown(result: dict) -> str:
    """The run as Markdown: one row per (model, size, part), then the budget table."""
    lines = [
        f"device: {result['device']}, torch {result['torch']}, precision {result['precision']}",
        "",
        "| model | size | part | frames/s | s/frame | CPU s/frame | non-model CPU s/frame | GPU peak MB "
        "| host peak MB | busy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {
        "a_naive": "naive transformers loop",
        "b_engine": "engine alone",
        "c_e2e_prores": "e2e to ProRes 4444",
        "d_e2e_matte": "e2e to alpha matte",
        "classic_engine": "classic engine alone",
    }
    for run in result["runs"]:
        for key, label in labels.items():
            r = run.get(key)
            if not r:
                continue
            if r.get("fps") is None:
                lines.append(
                    f"| {run['model']} | {run['size']} | {label} | {r.get('error', 'failed')} |||||||"
                )
                continue
            lines.append(
                f"| {run['model']} | {run['size']} | {label} | {_fmt(r['fps'], '.3f')} | {_fmt(r['s_per_frame'])} "
                f"| {_fmt(r.get('cpu_s_per_frame'))} | {_fmt(r.get('non_model_cpu_s_per_frame'))} "
                f"| {_fmt(r.get('gpu_peak_mb'), '.0f')} | {_fmt(r.get('host_peak_mb'), '.0f')} "
                f"| {_fmt(r.get('busy_fraction'))} |"
            )
        notes = []
        for k, label in (("ratio_c_over_a", "e2e/naive"), ("ratio_c_over_b", "e2e/engine")):
            if k in run:
                notes.append(f"{label} {run[k]:.2f}")
        if "e_tiling" in run:
            t = run["e_tiling"]
            notes.append(
                f"tiling {t['tile']} px: band max {t['max_abs_diff']:.4f} mean {t['mean_abs_diff']:.5f}"
            )
        eng = run.get("engine", {})
        notes.append(f"frames cropped {eng.get('frames_cropped')}, batch {eng.get('batch_size')}")
        lines.append(f"| {run['model']} | {run['size']} | notes: {'; '.join(notes)} |||||||")
    if "budget" in result:
        import bench_budget

        lines += ["", bench_budget.table(result["budget"])]
    return "\n".join(lines) + "\n"


def _fmt(v, spec=".2f") -> str:
    return "-" if v is None else format(v, spec)


def _table(result: dict) -> None:
    print(f"\ndevice: {result['device']}   torch {result['torch']}   precision {result['precision']}")
    head = f"{'model':6} {'size':10} {'part':22} {'frames/s':>9} {'s/frame':>8} {'CPU s/fr':>8} {'GPU peak MB':>12} {'host peak MB':>13} {'busy':>6}"
    print(head)
    print("-" * len(head))
    labels = {
        "a_naive": "(a) naive transformers",
        "b_engine": "(b) engine alone",
        "c_e2e_prores": "(c) e2e → ProRes 4444",
        "d_e2e_matte": "(d) e2e → alpha matte",
        "classic_engine": "classic engine alone",
    }
    for run in result["runs"]:
        for key, label in labels.items():
            r = run.get(key)
            if not r:
                continue
            if r.get("fps") is None:
                print(f"{run['model']:6} {run['size']:10} {label:22} {r.get('error', 'failed')}")
                continue
            print(
                f"{run['model']:6} {run['size']:10} {label:22} {_fmt(r['fps'], '9.3f')} {_fmt(r['s_per_frame'], '8.2f')} {_fmt(r.get('cpu_s_per_frame'), '8.2f')} "
                f"{_fmt(r.get('gpu_peak_mb'), '12.0f')} {_fmt(r.get('host_peak_mb'), '13.0f')} {_fmt(r.get('busy_fraction'), '6.2f')}"
            )
        extras = []
        if "ratio_c_over_a" in run:
            extras.append(f"(c)/(a) = {run['ratio_c_over_a']:.2f}x")
        if "ratio_c_over_b" in run:
            extras.append(f"(c)/(b) = {run['ratio_c_over_b']:.2f}")
        if "e_tiling" in run:
            t = run["e_tiling"]
            extras.append(
                f"tiling {t['tile']} px: max {t['max_abs_diff']:.4f} mean {t['mean_abs_diff']:.5f} over the band"
            )
        eng = run.get("engine", {})
        extras.append(
            f"batch {eng.get('batch_size')}, {eng.get('precision')}, compile {eng.get('compile_s')} s"
        )
        print(" " * 18 + "; ".join(extras))
    if "budget" in result:
        import bench_budget

        print(bench_budget.table(result["budget"]))


def _emit(result: dict, path: str) -> None:
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if path:
        Path(path).write_text(text)


if __name__ == "__main__":
    sys.exit(main())

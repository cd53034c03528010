"""Non-model CPU budget of the chain: CPU seconds per frame by stage, with the FakeEngine (model cost ~ 0).

For each frame size and output (default ProRes 4444 RGBA with decontamination and smoothing; alpha-only matte)
it runs ``vmatte.run`` on a synthetic clip (after a 2-frame warm-up run: numba JIT and encoder setup are
per-process costs) and reports

- per stage, the CPU seconds that stage's own thread spent (``Report.cpu``: ``time.thread_time`` around each
  stage call, so waiting is not counted): propagation pre-pass, per-frame propagation, engine, smoothing,
  decontamination, writers;
- per thread, CPU seconds read from ``/proc/self/task/*/stat`` every 20 ms: Python threads by name, and
  "native" for threads Python did not start (FFmpeg's frame threads, OpenCV's pool) — where the encoder's
  parallel work shows up;
- the whole process (``time.process_time``, less the sampler's own CPU), the sum of the Python-named threads,
  and the difference: native pool threads (FFmpeg's ProRes encoder frame threads, OpenCV's pthreads pool,
  numba's and OpenMP's pools), which ``--variants`` tells apart by resizing one pool at a time;
- wall seconds.

    python scripts/bench_budget.py                              # 1920x1080 and 3840x2160, default + alpha
    python scripts/bench_budget.py --sizes 1920x1080 --frames 12 --json /tmp/budget.json
    python scripts/bench_budget.py --sizes 1920x1080 --content alpha --variants plan,opencv=16,encode_threads=1

Also called by ``scripts/benchmark.py`` (its "budget" part).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGETS = {  # issue 15, CPU s per frame at 1920x1080
    "rgba": 0.6,
    "rgba_without_writer": 0.25,
    "alpha": 0.3,
}
_SAMPLER = "budget-sampler"


class ThreadCPU:
    """Per-thread CPU seconds of this process, sampled from /proc every ``interval`` s (Linux only).

    ``by_group()`` → {group: seconds}: a Python thread's name (``vmatte-decode`` …), ``MainThread``, or
    ``native`` for threads no Python ``threading.Thread`` object names. A thread that ends between two samples
    loses at most ``interval`` of CPU; the sampler's own thread is left out.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self._last: dict[int, float] = {}
        self._base: dict[int, float] = {}
        self._name: dict[int, str] = {}
        self._comm_of: dict[int, str] = {}  # native threads: kernel name when first seen
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")
        self.available = Path("/proc/self/task").is_dir()

    def _read(self) -> dict[int, float]:
        out = {}
        for d in os.scandir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{d.name}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            out[int(d.name)] = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
        return out

    @staticmethod
    def _comm(tid: int) -> str:
        """The kernel's name of a thread (pthread_setname_np: numba/TBB, OpenMP and FFmpeg pools name theirs or
        keep the process name); '' if it ended."""
        try:
            with open(f"/proc/self/task/{tid}/comm") as fh:
                return fh.read().strip()
        except OSError:
            return ""

    def _sample(self) -> None:
        names = {t.native_id: t.name for t in threading.enumerate()}
        for tid, cpu in self._read().items():
            if tid not in self._name:
                self._base.setdefault(tid, 0.0)
            if self._name.get(tid, "native") == "native":
                # a Python thread shows in /proc before threading lists it: name it once it is listed
                self._name[tid] = names.get(tid, "native")
                if self._name[tid] == "native":
                    self._comm_of.setdefault(tid, self._comm(tid))
            self._last[tid] = cpu

    def __enter__(self) -> ThreadCPU:
        if self.available:
            self._base = self._read()  # CPU before the measured region (threads alive now)
            self._sample()
            self._thread = threading.Thread(target=self._run, name=_SAMPLER, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc) -> None:
        if self.available:
            self._stop.set()
            self._thread.join()
            self._sample()

    def sampler_cpu(self) -> float:
        """CPU seconds the sampler thread itself used (in the process total, not in any group)."""
        return sum(
            max(0.0, cpu - self._base.get(tid, 0.0))
            for tid, cpu in self._last.items()
            if self._name.get(tid) == _SAMPLER
        )

    def by_group(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for tid, cpu in self._last.items():
            name = self._name.get(tid, "native")
            if name == _SAMPLER:
                continue
            group = name.split("_")[0] if name.startswith("vmatte-") else name
            if group.startswith("Thread-") or group.startswith("ThreadPoolExecutor"):
                group = "python-other"
            if group == "native":
                # FFmpeg names its decoder threads (av:h264:df0); its ProRes encoder threads and OpenCV's,
                # numba's and OpenMP's pool threads keep the process name: --variants tells them apart
                comm = self._comm_of.get(tid, "")
                group = "native " + ":".join(comm.split(":")[:2]) if comm.startswith("av:") else "native"
            out[group] = out.get(group, 0.0) + max(0.0, cpu - self._base.get(tid, 0.0))
        return out


def make_clip(work: Path, width: int, height: int, frames: int, key_every: int = 24):
    from vmatte.testing import Scene, write_clip, write_masks

    scene = Scene(width=width, height=height, frames=frames, speed=max(1.0, width / 400))
    clip = write_clip(work / f"budget_{width}x{height}_{frames}.mp4", scene)
    keys = sorted({*range(0, frames, key_every), frames - 1})
    masks = write_masks(work / f"budget_masks_{width}x{height}_{frames}", scene, keys)
    return clip, masks


def parse_variant(text: str) -> dict:
    """'plan' (the thread plan as vmatte sets it) or comma-free 'key=value' pairs joined by '+': a ThreadPlan
    field (opencv=16, encode_workers=0, ...) or encode_threads=N (the FFmpeg encoder's threads)."""
    out: dict = {}
    if text in ("", "plan"):
        return out
    for part in text.split("+"):
        key, value = part.split("=")
        out[key] = int(value)
    return out


@contextlib.contextmanager
def thread_variant(variant: dict):
    """Override fields of vmatte's thread plan for a variant run (pool-size experiments only)."""
    from vmatte.pipeline import threads

    fields = {k: v for k, v in variant.items() if k != "encode_threads"}
    original = threads.plan_threads
    if fields:
        threads.plan_threads = lambda n=0, cores=None: dataclasses.replace(original(n, cores), **fields)
    try:
        yield
    finally:
        threads.plan_threads = original


def measure(
    clip: Path,
    masks: Path,
    out: Path,
    content: str,
    engine=None,
    overrides: dict | None = None,
    variant: str = "plan",
) -> dict:
    """One ``vmatte.run`` (after a 2-frame warm-up) → CPU s per frame by stage and by thread, wall s per frame.
    ``variant``: see :func:`parse_variant`."""
    import vmatte
    from vmatte.config import OutputConfig, PipelineConfig, RunConfig
    from vmatte.engine.base import FakeEngine

    var = parse_variant(variant)
    if "encode_threads" in var:
        overrides = dict(overrides or {})
        overrides["pipeline"] = dataclasses.replace(
            overrides.get("pipeline") or PipelineConfig(), encode_threads=var["encode_threads"]
        )

    engine = engine or FakeEngine(batch_size=4)
    cfg = RunConfig(
        input=str(clip),
        masks=str(masks),
        outputs=(OutputConfig(path=str(out), format="prores4444", content=content),),
        engine=vmatte.EngineConfig(name=engine.name),
        overwrite=True,
        progress="none",
    )
    for key, value in (overrides or {}).items():
        cfg = cfg.replace(**{key: value})
    with thread_variant(var):
        vmatte.run(cfg.replace(frames="0-1"), engine=engine)
        with ThreadCPU() as threads:
            t, c = time.perf_counter(), time.process_time()
            report = vmatte.run(cfg, engine=engine)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
    n = max(1, report.frames_written)
    cpu -= threads.sampler_cpu()  # the measurement's own cost
    stages = {k: v / n for k, v in vars(report.cpu).items() if k != "process"}
    groups = {k: v / n for k, v in sorted(threads.by_group().items())}
    main_stages = stages["propagate"] + stages["engine"] + stages["smooth"]
    named = sum(v for k, v in groups.items() if not k.startswith("native"))
    return {
        "content": content,
        "variant": variant,
        # Python-named threads (vmatte's own, MainThread) vs the whole process: the rest is native pools
        "named_threads_cpu_s_per_frame": named,
        "stage_sum_cpu_s_per_frame": sum(stages.values()),
        "frames": report.frames_written,
        "cpu_s_per_frame": cpu / n,
        "wall_s_per_frame": wall / n,
        "stage_cpu_s_per_frame": stages,
        "thread_cpu_s_per_frame": groups,
        # everything but the writers and the native threads (where FFmpeg's encoder threads run)
        "cpu_without_writer_s_per_frame": cpu / n - stages["write"] - groups.get("native", 0.0),
        "main_thread_other_s_per_frame": max(0.0, groups.get("MainThread", 0.0) - main_stages),
        "stage_wall_s": {k: round(v, 3) for k, v in vars(report.times).items()},
        "smoothing": report.smoothing,
    }


def encoder_alone(clip: Path, out: Path, content: str, frames: int = 8) -> float:
    """CPU s per frame of the output writer alone (ProRes 4444, its Python side and its native encoder threads)
    on the clip's first ``frames`` frames with a soft alpha ramp and foreground = observed colour (no
    decontamination): the part of the budget that belongs to the encoder."""
    from vmatte.config import OutputConfig
    from vmatte.io.decode import open_clip
    from vmatte.io.encode import open_writer

    clip_ = open_clip(str(clip))
    n = min(frames, clip_.info.frame_count)
    decoded = list(clip_.frames(0, n - 1))
    h, w = decoded[0].height, decoded[0].width
    ramp = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))
    ready = [f.replace(alpha=ramp, foreground=f.rgb_float()) for f in decoded]
    writer = open_writer(
        OutputConfig(path=str(out), format="prores4444", content=content),
        clip_.info,
        overwrite=True,
        frame_range=(0, n - 1),
    )
    writer.write(ready[0])  # encoder setup is per clip, not per frame
    c = time.process_time()
    for f in ready[1:]:
        writer.write(f)
    writer.close()
    return (time.process_time() - c) / max(1, n - 1)


def run_budget(
    sizes: list[tuple[int, int]],
    frames: int,
    frames_4k: int,
    work: Path,
    contents=("rgba", "alpha"),
    variants=("plan",),
):
    """Budget runs for every size x content x variant; variants of one size and content run back to back
    (interleaved, so they share the machine's state); the targets are checked on the first variant."""
    from vmatte.pipeline.threads import plan_threads

    result = {
        "engine": "fake",
        "cpus": os.cpu_count(),
        "thread_plan": dataclasses.asdict(plan_threads(0)),
        "runs": [],
    }
    for w, h in sizes:
        n = frames_4k if w > 2560 else frames
        clip, masks = make_clip(work, w, h, n)
        for content in contents:
            enc = encoder_alone(clip, work / f"budget_enc_{content}.mov", content, min(n, 8))
            for variant in variants:
                print(f"[budget {w}x{h} {content} {variant}] {n} frames ...", file=sys.stderr, flush=True)
                r = measure(clip, masks, work / f"budget_out_{content}.mov", content, variant=variant)
                r["size"] = f"{w}x{h}"
                r["encoder_alone_cpu_s_per_frame"] = enc
                r["cpu_without_encoder_s_per_frame"] = r["cpu_s_per_frame"] - enc
                result["runs"].append(r)
    by = {(r["size"], r["content"]): r for r in result["runs"] if r["variant"] == variants[0]}
    checks = {}
    hd = by.get(("1920x1080", "rgba"))
    if hd:
        checks["1080p rgba <= 0.6"] = hd["cpu_s_per_frame"] <= TARGETS["rgba"]
        checks["1080p rgba without the ProRes encoder <= 0.25"] = (
            hd["cpu_without_encoder_s_per_frame"] <= TARGETS["rgba_without_writer"]
        )
    if ("1920x1080", "alpha") in by:
        checks["1080p alpha <= 0.3"] = by[("1920x1080", "alpha")]["cpu_s_per_frame"] <= TARGETS["alpha"]
    uhd = by.get(("3840x2160", "rgba"))
    if hd and uhd:
        ratio = uhd["cpu_s_per_frame"] / hd["cpu_s_per_frame"]
        result["ratio_4k_over_1080p"] = ratio
        checks["4K <= 4x 1080p"] = ratio <= 4.0
    result["targets_met"] = checks
    return result


def table(result: dict) -> str:
    runs = result["runs"]
    if not runs:
        return ""
    stage_keys = list(runs[0]["stage_cpu_s_per_frame"])
    groups = sorted({g for r in runs for g in r["thread_cpu_s_per_frame"]})
    cols = [
        f"{r['size']} {r['content']}" + (f" [{r['variant']}]" if r.get("variant", "plan") != "plan" else "")
        for r in runs
    ]
    title = "non-model CPU s per frame (FakeEngine)"
    if result.get("thread_plan"):
        plan = ", ".join(f"{k}={v}" for k, v in result["thread_plan"].items())
        title += f"; thread plan on {result.get('cpus')} CPUs: {plan}"
    lines = [
        title,
        "| | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]

    def row(label, values):
        lines.append(f"| {label} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in values) + " |")

    row("**whole process (CPU)**", [r["cpu_s_per_frame"] for r in runs])
    row("wall s per frame", [r["wall_s_per_frame"] for r in runs])
    row("sum of stages (stage threads' own CPU)", [r["stage_sum_cpu_s_per_frame"] for r in runs])
    row("named Python threads (sum)", [r["named_threads_cpu_s_per_frame"] for r in runs])
    row(
        "process minus named threads (native pools)",
        [r["cpu_s_per_frame"] - r["named_threads_cpu_s_per_frame"] for r in runs],
    )
    for k in stage_keys:
        row(f"stage: {k}", [r["stage_cpu_s_per_frame"][k] for r in runs])
    for g in groups:
        row(f"thread: {g}", [r["thread_cpu_s_per_frame"].get(g) for r in runs])
    row(
        "ProRes encoder alone (same frames, separate run)", [r["encoder_alone_cpu_s_per_frame"] for r in runs]
    )
    row("**whole process minus encoder alone**", [r["cpu_without_encoder_s_per_frame"] for r in runs])
    for name, ok in result.get("targets_met", {}).items():
        lines.append(f"- target {name}: {'met' if ok else 'NOT met'}")
    if "ratio_4k_over_1080p" in result:
        lines.append(f"- 4K / 1080p CPU per frame: {result['ratio_4k_over_1080p']:.2f}")
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int]:
    a, b = (int(v) for v in text.lower().split("x"))
    return max(a, b), min(a, b)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1920x1080,3840x2160")
    p.add_argument("--frames", type=int, default=16, help="frames per clip at up to 2560 px wide")
    p.add_argument("--frames-4k", type=int, default=6)
    p.add_argument("--content", default="rgba,alpha", help="comma list: rgba (default output), alpha")
    p.add_argument(
        "--variants",
        default="plan",
        help="comma list of thread variants run back to back: plan (as vmatte sets the pools), or fields of "
        "vmatte.pipeline.threads.ThreadPlan / encode_threads joined by '+', e.g. plan,opencv=16,encode_threads=1",
    )
    p.add_argument("--json", default="")
    p.add_argument("--work", default="")
    args = p.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="vmatte-budget-") if not args.work else None
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    try:
        res = run_budget(
            [_size(s) for s in args.sizes.split(",")],
            args.frames,
            args.frames_4k,
            work,
            tuple(args.content.split(",")),
            tuple(args.variants.split(",")),
        )
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(table(res))
    text = json.dumps(res, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

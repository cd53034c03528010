"""The encode stage's worker pool: frames decontaminated and converted side by side, written in order, outputs
identical to the serial stage, a bounded number of frames in flight."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

import vmatte
from vmatte.engine.base import FakeEngine
from vmatte.io.config import OutputConfig
from vmatte.pipeline import threads
from vmatte.pipeline.threads import Sink


def test_sink_with_workers_consumes_in_put_order_with_bounded_frames_in_flight():
    lock = threading.Lock()
    state = {"alive": 0, "peak": 0, "threads": set()}
    consumed: list[int] = []
    depth = 3

    def prepare(i: int) -> int:
        with lock:
            state["alive"] += 1
            state["peak"] = max(state["peak"], state["alive"])
            state["threads"].add(threading.current_thread().name)
        time.sleep(random.Random(i).uniform(0.0, 0.02))  # later items often finish first
        return i * 10

    def consume(v: int) -> None:
        consumed.append(v // 10)
        with lock:
            state["alive"] -= 1

    workers = 4
    sink = Sink(consume, depth=depth, name="t-enc", prepare=prepare, workers=workers)
    for i in range(60):
        sink.put(i)
    deadline = time.monotonic() + 10
    while len(consumed) < 60 and time.monotonic() < deadline:  # a producer that pauses still sees its
        time.sleep(0.01)  # frames written (progress, back-pressure), not held back until the next put
    assert len(consumed) == 60
    sink.close()
    assert consumed == list(range(60))
    assert len(state["threads"]) > 1, "prepare never ran side by side"
    assert state["peak"] <= workers + 1, state["peak"]  # prepared frames in flight, beside the raw queue
    assert not [t for t in threading.enumerate() if t.name.startswith("vmatte-t-enc")]


def test_sink_worker_error_reaches_the_producer_and_joins():
    def prepare(i: int) -> int:
        if i == 5:
            raise ValueError("bad frame 5")
        return i

    sink = Sink(lambda v: None, depth=2, name="t-err", prepare=prepare, workers=2)
    with pytest.raises(ValueError, match="bad frame 5"):
        for i in range(50):
            sink.put(i)
        sink.close()
    sink.abort()
    assert not [t for t in threading.enumerate() if t.name.startswith("vmatte-t-err")]


def _decoded(path: Path, fmt: str) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format=fmt) for f in c.decode(video=0)]


def _run(tmp: Path, clip: Path, masks: Path, workers: int, monkeypatch) -> dict[str, Path]:
    original = threads.plan_threads
    monkeypatch.setattr(
        threads,
        "plan_threads",
        lambda n=0, cores=None: dataclasses.replace(original(n, cores), encode_workers=workers),
    )
    import vmatte.io.compose as compose

    estimate, where = compose.decontaminate, set()

    def spy(frame):
        where.add(threading.current_thread().name.split("_")[0])
        return estimate(frame)

    monkeypatch.setattr(compose, "decontaminate", spy)
    from vmatte.io.writers.video import VideoWriter

    prepare, prepared = VideoWriter.prepare, []

    def prepare_spy(self, frame):
        prepared.append(frame.index)
        return prepare(self, frame)

    monkeypatch.setattr(VideoWriter, "prepare", prepare_spy)
    tmp.mkdir()
    outs = {
        "rgba": tmp / "rgba.mov",  # default: ProRes 4444, decontaminated
        "alpha": tmp / "alpha.mov",
        "png": tmp / "png" / "f_%04d.png",
        "comp": tmp / "comp.mov",
    }
    cfg = vmatte.RunConfig(
        input=str(clip),
        masks=str(masks),
        outputs=(
            OutputConfig(path=str(outs["rgba"])),
            OutputConfig(path=str(outs["alpha"]), content="alpha"),
            OutputConfig(path=str(outs["png"]), format="png", content="rgba"),
            OutputConfig(
                path=str(outs["comp"]), format="prores4444", content="composite", background="green"
            ),
        ),
    )
    report = vmatte.run(cfg, engine=FakeEngine(batch_size=3))
    monkeypatch.setattr(threads, "plan_threads", original)
    monkeypatch.setattr(compose, "estimate_foreground", estimate)
    assert report.frames_written == 12 and report.cpu.decontaminate > 0
    assert where == ({"vmatte-encode-prep"} if workers else {"vmatte-encode"})
    # serial: each video writer converts on its own sws pool, as before; pooled: the stage's workers do
    assert len(prepared) == (3 * 12 if workers else 0)
    monkeypatch.setattr(VideoWriter, "prepare", prepare)
    return outs


def test_parallel_encode_stage_writes_what_the_serial_one_writes(tmp_path, clip_path, masks_dir, monkeypatch):
    serial = _run(tmp_path / "serial", clip_path, masks_dir, 0, monkeypatch)
    pooled = _run(tmp_path / "pooled", clip_path, masks_dir, 3, monkeypatch)
    a, b = _decoded(serial["rgba"], "rgba64le"), _decoded(pooled["rgba"], "rgba64le")
    assert len(a) == len(b) == 12
    soft = [np.mean((x[..., 3] > 0) & (x[..., 3] < 65535)) for x in a]
    assert max(soft) > 0, "no soft band: decontamination was not exercised"
    for x, y in zip(a, b):
        assert np.array_equal(x, y)  # colour and alpha, bit for bit, in the same order
    for key in ("alpha", "comp"):
        for x, y in zip(_decoded(serial[key], "rgb48le"), _decoded(pooled[key], "rgb48le"), strict=True):
            assert np.array_equal(x, y)
    pngs = sorted(serial["png"].parent.iterdir())
    assert len(pngs) == 12
    for p in pngs:
        assert p.read_bytes() == (pooled["png"].parent / p.name).read_bytes()

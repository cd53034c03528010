"""Render-farm behaviour: chunk plans, split runs equal to a single run, manifest checksums, kill and resume.

Clips are tiny (96x64) so the whole file stays well under two minutes on 2 cores. API tests use FakeEngine;
subprocess tests use the classic engine (the CLI cannot take a FakeEngine).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import vmatte
from vmatte.engine.base import FakeEngine
from vmatte.errors import OutputError, UsageError
from vmatte.farm.chunked import run_chunked
from vmatte.farm.manifest import Manifest
from vmatte.farm.plan import plan_job, split_range
from vmatte.io.config import OutputConfig
from vmatte.testing import Scene, write_clip, write_masks

FRAMES = 21
KEYFRAMES = [0, 9, 20]


@pytest.fixture(scope="module")
def farm_scene() -> Scene:
    return Scene(width=96, height=64, frames=FRAMES, speed=1.5)


@pytest.fixture(scope="module")
def farm_clip(tmp_path_factory, farm_scene) -> Path:
    """H.264 with AAC audio: chunked video outputs must keep input timestamps and audio across seams."""
    return write_clip(tmp_path_factory.mktemp("farmclip") / "clip.mp4", farm_scene, audio=True)


@pytest.fixture(scope="module")
def farm_masks(tmp_path_factory, farm_scene) -> Path:
    return write_masks(tmp_path_factory.mktemp("farmmasks") / "keyframes", farm_scene, KEYFRAMES)


def _outputs(folder: Path, *, video: bool = True) -> tuple[OutputConfig, ...]:
    outs = [OutputConfig(path=str(folder / "alpha.%04d.png"), content="alpha", bit_depth=16)]
    if video:
        outs.append(
            OutputConfig(path=str(folder / "rgba.mov"), decontaminate=False)
        )  # intra: packet-copy joins
        outs.append(OutputConfig(path=str(folder / "matte.mp4"), content="alpha"))  # inter: final encode
    return tuple(outs)


def _cfg(clip: Path, masks: Path, outputs, **kw) -> vmatte.RunConfig:
    return vmatte.RunConfig(input=str(clip), masks=str(masks), outputs=outputs, **kw)


def _alphas(folder: Path, n: int = FRAMES) -> np.ndarray:
    """(n, H, W) float32 alpha from the 16-bit PNG sequence."""
    return np.stack(
        [
            cv2.imread(str(folder / f"alpha.{t:04d}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535.0
            for t in range(n)
        ]
    )


def _decode(path: Path, fmt: str):
    """(video pts, frames as arrays, audio packet pts) of a video file."""
    with av.open(str(path)) as c:
        frames = [(f.pts, f.to_ndarray(format=fmt)) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [p.pts for p in c.demux(audio=0) if p.size] if c.streams.audio else []
    return [p for p, _ in frames], [a for _, a in frames], audio


@pytest.fixture(scope="module")
def single_run(tmp_path_factory, farm_clip, farm_masks) -> Path:
    """The reference: one plain run of the whole clip."""
    out = tmp_path_factory.mktemp("single")
    rep = vmatte.run(_cfg(farm_clip, farm_masks, _outputs(out)), engine=FakeEngine())
    assert rep.frames_written == FRAMES
    return out


def test_split_range_is_a_grid_cover():
    assert split_range(0, 20, 7) == [(0, 6), (7, 13), (14, 20)]
    assert split_range(5, 16, 7) == [(5, 6), (7, 13), (14, 16)]  # sub-ranges keep the whole-clip grid
    assert split_range(0, 0, 7) == [(0, 0)]
    with pytest.raises(UsageError):
        split_range(0, 10, 0)


@pytest.mark.parametrize("chunks", [1, 3, 7])
def test_split_run_equals_single_run(tmp_path, farm_clip, farm_masks, single_run, chunks, record_property):
    size = -(-FRAMES // chunks)
    video = chunks == 3  # video assembly (copy + final encode) once; alpha equality for every split
    out = tmp_path / "split"
    rep = run_chunked(_cfg(farm_clip, farm_masks, _outputs(out, video=video)), size, engine=FakeEngine())
    assert rep.status == "ok" and len(rep.chunks) == chunks
    assert all(c["status"] == "done" for c in rep.chunks)
    assert rep.frames_written == FRAMES

    ref, got = _alphas(single_run), _alphas(out)
    diff = float(np.abs(ref - got).max())
    # seams: the frame-to-frame change across each chunk boundary must be the single run's change
    starts = [c["start"] for c in rep.chunks[1:]]
    steps = [float(np.abs((got[b] - got[b - 1]) - (ref[b] - ref[b - 1])).max()) for b in starts]
    seam = max(steps, default=0.0)
    record_property("max_alpha_diff", diff)
    record_property("max_boundary_step_diff", seam)
    print(
        f"\n{chunks} chunk(s): max |alpha - single| = {diff:.6f}, max boundary step difference = {seam:.6f}"
    )
    assert diff <= 1.0 / 65535 + 1e-7  # 16-bit PNG: equal up to the last quantisation step
    assert seam <= 2.0 / 65535 + 1e-7

    if video:
        # intra-only video: segments joined by packet copy, timestamps and audio are the single run's
        pts_r, rgba_r, aud_r = _decode(single_run / "rgba.mov", "rgba64le")
        pts_g, rgba_g, aud_g = _decode(out / "rgba.mov", "rgba64le")
        assert pts_g == pts_r and aud_g == aud_r and len(aud_g) > 0
        a_diff = max(
            np.abs(x[..., 3].astype(np.int64) - y[..., 3].astype(np.int64)).max()
            for x, y in zip(rgba_r, rgba_g)
        )
        assert (
            a_diff <= 65535 * 0.01
        )  # ProRes 4444 alpha: identical frames in, identical packets out in practice
        # inter-frame video: lossless alpha segments + one final encode
        # x264 itself is not repeatable here: the single run's own matte.mp4 came out as one of two different
        # files in 8 runs in one process, from identical frames and settings (threads=1 too), so the final
        # encode is held to the codec's error against the exact alpha, not to the single run's bytes
        pts_r, m_r, _ = _decode(single_run / "matte.mp4", "gray")
        pts_g, m_g, _ = _decode(out / "matte.mp4", "gray")
        assert pts_g == pts_r
        exact = np.round(ref * 255)
        err_r = max(float(np.abs(x - e).mean()) for x, e in zip(m_r, exact))
        err_g = max(float(np.abs(x - e).mean()) for x, e in zip(m_g, exact))
        print(f"matte.mp4 worst frame mean |decoded - alpha| (8-bit): single {err_r:.3f}, split {err_g:.3f}")
        assert err_g < 1.0 and err_g < err_r + 0.25  # measured: 0.60-0.63 for either encode
        assert not list(out.glob(".*vmatte-tmp*"))
        assert (Manifest(out / "alpha.%04d.png", "").segments_dir).is_dir()  # kept: re-assembly needs them


def test_manifest_checksums_decide_what_is_redone(tmp_path, farm_clip, farm_masks):
    out = tmp_path / "job"
    cfg = _cfg(farm_clip, farm_masks, _outputs(out, video=False))
    first = run_chunked(cfg, 7, engine=FakeEngine())
    assert [c["status"] for c in first.chunks] == ["done"] * 3
    frame = out / "alpha.0010.png"
    original = hashlib.sha256(frame.read_bytes()).hexdigest()

    # nothing changed: a re-run verifies every checksum and renders nothing
    again = run_chunked(cfg, 7, engine=FakeEngine())
    assert again.farm.get("note", "").startswith("already complete") and again.frames_written == 0

    # a modified file (same size, other bytes) is caught by its checksum: only its chunk is redone
    data = bytearray(frame.read_bytes())
    data[-20] ^= 0xFF
    frame.write_bytes(bytes(data))
    redo = run_chunked(cfg, 7, engine=FakeEngine())
    assert [c["status"] for c in redo.chunks] == ["skipped", "done", "skipped"]
    assert any("checksum" in w for w in redo.warnings)
    assert hashlib.sha256(frame.read_bytes()).hexdigest() == original

    # files present but no record (a chunk killed before it finished): "the file exists" does not count
    man = Manifest(out / "alpha.%04d.png", "")
    rec = next(p for p in (man.chunks_dir).glob("000014-*.json"))
    rec.unlink()
    (out / ".alpha.0015.vmatte-tmp-99999.png").write_bytes(b"partial")  # a killed writer's temp file
    redo = run_chunked(cfg, 7, engine=FakeEngine())
    assert [c["status"] for c in redo.chunks] == ["skipped", "skipped", "done"]
    assert not list(out.glob(".*vmatte-tmp*"))

    # other settings → other fingerprint: the old render is not this job's, so it is kept unless --overwrite,
    # and with --overwrite nothing of it is reused
    other = cfg.replace(propagate=vmatte.PropagateConfig(band=0.02))
    with pytest.raises(OutputError, match="already exists"):
        run_chunked(other, 7, engine=FakeEngine())
    changed = run_chunked(other.replace(overwrite=True), 7, engine=FakeEngine())
    assert [c["status"] for c in changed.chunks] == ["done"] * 3


def test_damaged_assembled_video_is_rejoined_from_kept_segments(tmp_path, farm_clip, farm_masks):
    """A final video damaged after assembly: the warning names its failed checksum, nothing is rendered
    again, the file is joined again from the kept segments (same bytes), other outputs are left alone."""
    out = tmp_path / "j"
    outs = (
        OutputConfig(path=str(out / "alpha.%04d.png"), content="alpha", bit_depth=16),
        OutputConfig(path=str(out / "rgba.mov"), decontaminate=False),
    )
    cfg = _cfg(farm_clip, farm_masks, outs)
    run_chunked(cfg, 7, engine=FakeEngine())
    final = out / "rgba.mov"
    original = final.read_bytes()
    frame_mtime = (out / "alpha.0003.png").stat().st_mtime_ns
    data = bytearray(original)
    data[len(data) // 2] ^= 0xFF
    final.write_bytes(bytes(data))
    redo = run_chunked(cfg, 7, engine=FakeEngine())
    assert redo.status == "ok" and redo.frames_written == 0
    assert [c["status"] for c in redo.chunks] == ["skipped"] * 3
    assert any("rgba.mov: checksum differs" in w for w in redo.warnings), redo.warnings
    assert not any("missing" in w for w in redo.warnings), redo.warnings
    assert final.read_bytes() == original
    assert (out / "alpha.0003.png").stat().st_mtime_ns == frame_mtime
    # and the manifest now verifies it again
    assert run_chunked(cfg, 7, engine=FakeEngine()).farm.get("note", "").startswith("already complete")


def test_job_report_covers_the_whole_clip(tmp_path, farm_clip, farm_masks):
    """The chunked report carries per-frame confidence and smoothing stats like a single run's, and ranks
    keyframe suggestions over the whole clip from every chunk's record, also when a resumed run renders one
    chunk only; progress numbers chunks by their place in the grid and counts frames with an ETA."""
    out = tmp_path / "r"
    cfg = _cfg(farm_clip, farm_masks, _outputs(out, video=False))
    single = vmatte.run(
        _cfg(farm_clip, farm_masks, _outputs(tmp_path / "s", video=False)), engine=FakeEngine()
    )
    first = run_chunked(cfg, 7, engine=FakeEngine())
    conf = first.propagation["confidence"]
    assert len(conf) == FRAMES and None not in conf
    assert conf == pytest.approx(single.propagation["confidence"], abs=1e-4)
    assert first.suggested_keyframes == single.suggested_keyframes and first.suggested_keyframes
    sm = first.smoothing
    assert sm["chunks"] == 3 and sm["frames"] >= FRAMES and sm["ms_per_frame"] > 0
    assert "mean_neighbour_weight" in sm

    # resume after losing the middle chunk's record: only it is rendered, the report still spans the clip
    Manifest(out / "alpha.%04d.png", "").record_path("000007-000013").unlink()
    events: list[dict] = []
    again = run_chunked(cfg, 7, engine=FakeEngine(), on_progress=events.append)
    assert [c["status"] for c in again.chunks] == ["skipped", "done", "skipped"]
    assert again.suggested_keyframes == first.suggested_keyframes
    assert again.propagation["confidence"] == pytest.approx(conf)
    done = [e for e in events if e["stage"] == "chunks" and "chunk" in e]
    assert [(e["chunk_index"], e["chunks"], e["done"], e["total"]) for e in done] == [(1, 3, 3, 3)]
    assert {e["chunk_index"] for e in events if e["stage"] == "matte"} == {1}
    frames = [e for e in events if e["stage"] == "frames"]
    assert frames[0]["done"] >= 14 and frames[-1]["done"] == frames[-1]["total"] == FRAMES
    assert any(e["eta_s"] is not None and e["fps"] > 0 for e in frames[:-1])


def test_chunked_cli_shows_job_progress_not_per_chunk_counts(tmp_path, farm_clip, farm_masks, capsys):
    from vmatte.cli import main

    out = tmp_path / "c" / "alpha.%04d.png"
    argv = ["run", str(farm_clip), "--masks", str(farm_masks), "-o", str(out), "--alpha-only"]
    assert main([*argv, "--engine", "classic", "--chunk", "7", "--progress", "lines"]) == 0
    err = capsys.readouterr().err
    assert f"vmatte: frames {FRAMES}/{FRAMES} (100%)" in err and "vmatte: chunks 3/3" in err
    assert "vmatte: matte 7/7" not in err  # counts that restart at every chunk stay out of the display


def test_fresh_job_refuses_foreign_files(tmp_path, farm_clip, farm_masks):
    out = tmp_path / "o"
    out.mkdir()
    (out / "alpha.0003.png").write_bytes(b"someone else's frame")
    with pytest.raises(OutputError, match=r"alpha\.0003\.png"):
        run_chunked(_cfg(farm_clip, farm_masks, _outputs(out, video=False)), 7, engine=FakeEngine())
    assert (out / "alpha.0003.png").read_bytes() == b"someone else's frame"


def test_farm_task_renders_its_chunks_then_assemble_command_joins(
    tmp_path, farm_clip, farm_masks, single_run
):
    """The plan's per-chunk commands (--frames S-E) record chunks without assembling; the assemble run finds
    them all verified and only joins."""
    out = tmp_path / "farm"
    cfg = _cfg(farm_clip, farm_masks, (OutputConfig(path=str(out / "rgba.mov"), decontaminate=False),))
    plan = plan_job(cfg, 7)
    for c in plan.chunks:
        rep = run_chunked(cfg.replace(frames=f"{c.start}-{c.end}"), 7, engine=FakeEngine())
        assert [x["status"] for x in rep.chunks] == ["done"] and not (out / "rgba.mov").exists()
    final = run_chunked(cfg, 7, engine=FakeEngine())
    assert [x["status"] for x in final.chunks] == ["skipped"] * 3 and final.frames_written == 0
    pts_r, _, aud_r = _decode(single_run / "rgba.mov", "rgba64le")
    pts_g, _, aud_g = _decode(out / "rgba.mov", "rgba64le")
    assert pts_g == pts_r and aud_g == aud_r


def _probe(path: Path) -> tuple[str, str]:
    """(codec tag, decoded pix_fmt) of a video's first stream."""
    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.codec_tag, next(c.decode(video=0)).format.name


def test_assembled_prores_keeps_its_4444_tag(tmp_path, farm_clip, farm_masks, single_run):
    """Packet-copy assembly of 3 ProRes 4444 segments: the file is tagged 'ap4h' like a single run's, so FFmpeg
    decodes 12-bit 4444 with alpha (the remux used to drop the tag: 'apch' = 422 HQ, decoded 10-bit)."""
    out = tmp_path / "pr"
    cfg = _cfg(farm_clip, farm_masks, (OutputConfig(path=str(out / "rgba.mov"), decontaminate=False),))
    rep = run_chunked(cfg, 7, engine=FakeEngine())
    assert len(rep.chunks) == 3
    assert _probe(single_run / "rgba.mov") == ("ap4h", "yuva444p12le")
    assert _probe(out / "rgba.mov") == ("ap4h", "yuva444p12le")


def test_plan_reports_context_from_propagator_and_commands(tmp_path, farm_clip, farm_masks, capsys):
    from vmatte.cli import main
    from vmatte.io.decode import open_clip
    from vmatte.io.masks import load_keyframes
    from vmatte.propagate import Propagator

    out = tmp_path / "p" / "rgba.mov"
    rc = main(
        [
            "plan",
            str(farm_clip),
            "--masks",
            str(farm_masks),
            "--chunk",
            "8",
            "-o",
            str(out),
            "--engine",
            "classic",
            "--json",
        ]
    )
    assert rc == 0
    plan = json.loads(capsys.readouterr().out)
    chunks = plan["chunks"]
    assert [(c["start"], c["end"]) for c in chunks] == [(0, 7), (8, 15), (16, 20)]
    assert plan["smoothing"]["warmup_frames"] >= 1 and "TemporalSmoother" in plan["smoothing"]["source"]
    clip = open_clip(str(farm_clip))
    kfs = load_keyframes(str(farm_masks), clip.info)
    for c in chunks:
        assert c["context_start"] <= c["start"] - min(c["start"], plan["smoothing"]["warmup_frames"])
        assert c["context_end"] == min(FRAMES - 1, c["end"] + plan["smoothing"]["lookahead_frames"])
        prop = Propagator(clip, kfs, frame_range=(c["context_start"], c["context_end"]))
        assert (c["propagate_start"], c["propagate_end"]) == (prop.lo, prop.hi)
        argv = c["command"]
        assert argv[:3] == ["vmatte", "run", str(farm_clip.absolute())]
        assert argv[-4:] == ["--chunk", "8", "--frames", f"{c['start']}-{c['end']}"]
        assert "--engine" in argv and str(out.absolute()) in argv
    assert "--frames" not in plan["assemble_command"]


def test_engine_reused_across_clips_and_chunks(tmp_path, farm_clip, farm_masks, monkeypatch, farm_scene):
    import vmatte.engine

    def no_load(*a, **k):
        raise AssertionError("a passed-in engine must be reused, not reloaded")

    monkeypatch.setattr(vmatte.engine, "load_engine", no_load)
    other = write_clip(tmp_path / "other.mkv", farm_scene, codec="ffv1", pix_fmt="bgr0")
    engine = FakeEngine(batch_size=3)
    for i, clip in enumerate([farm_clip, other]):
        rep = run_chunked(
            _cfg(clip, farm_masks, _outputs(tmp_path / f"o{i}", video=False)), 10, engine=engine
        )
        assert rep.status == "ok" and rep.times.load_engine == 0.0
        plain = vmatte.run(_cfg(clip, farm_masks, _outputs(tmp_path / f"p{i}", video=False)), engine=engine)
        assert plain.frames_written == FRAMES
        assert np.array_equal(_alphas(tmp_path / f"o{i}"), _alphas(tmp_path / f"p{i}"))
    assert engine.frames_matted + engine.frames_trivial > 4 * FRAMES  # chunks matte their context too


def test_ray_missing_is_a_usage_error(monkeypatch):
    from vmatte.farm import ray_runner

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(UsageError, match=r"vmatte\[ray\]"):
        ray_runner.import_ray()


# -- a real process killed mid-way ------------------------------------------------------------------------
def _start(args, cwd):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "vmatte", *map(str, args)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        env=env,
    )


def _wait_for_chunks(proc, n: int, timeout: float = 120.0) -> None:
    """Read --progress json lines until ``n`` chunks are recorded in this run (then the caller kills it)."""
    t0 = time.monotonic()
    for line in proc.stderr:
        if time.monotonic() - t0 > timeout:
            break
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("stage") == "chunks" and ev.get("chunk") and ev.get("done", 0) >= n:
            return
    pytest.fail("the run ended before it could be killed mid-way")


def _wait_for_event(proc, want, timeout: float = 120.0) -> dict:
    """Read --progress json lines until one satisfies ``want``."""
    t0 = time.monotonic()
    for line in proc.stderr:
        if time.monotonic() - t0 > timeout:
            break
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if want(ev):
            return ev
    pytest.fail("the run ended before the awaited progress event")


def test_kill_and_resume_gives_the_same_output(tmp_path, farm_clip, farm_masks):
    out = tmp_path / "k"
    report = tmp_path / "report.json"
    args = [
        "run",
        farm_clip,
        "--masks",
        farm_masks,
        "--engine",
        "classic",
        "--chunk",
        "7",
        "-o",
        out / "alpha.%04d.png",
        "--alpha-only",
        "--report",
        report,
        "--progress",
        "json",
    ]
    # reference: one plain, uninterrupted run of the whole clip with the same engine
    ref_out = tmp_path / "ref"
    cfg = _cfg(farm_clip, farm_masks, (OutputConfig(path=str(ref_out / "alpha.%04d.png"), content="alpha"),))
    vmatte.run(cfg.replace(engine=vmatte.EngineConfig(name="classic")))
    ref_files = {p.name: p.read_bytes() for p in ref_out.glob("alpha.*.png")}
    assert len(ref_files) == FRAMES

    # 1) SIGTERM inside the second chunk: clean stop, exit 143, report says cancelled, retryable, and names
    # the chunk that was cut short
    proc = _start(args, tmp_path)
    _wait_for_chunks(proc, 1)
    _wait_for_event(proc, lambda ev: ev.get("stage") == "matte" and ev.get("chunk_index") == 1)
    proc.send_signal(signal.SIGTERM)
    proc.stderr.read()
    assert proc.wait(timeout=60) == 143
    rep = json.loads(report.read_text())
    assert rep["status"] == "cancelled" and rep["exit_code"] == 143 and rep["retryable"]
    assert rep["farm"]["interrupted"] == ["000007-000013"] and "000007-000013" in rep["error"]
    assert {"key": "000007-000013", "start": 7, "end": 13, "status": "interrupted"} in rep["chunks"]
    # 2) resume, then SIGKILL (no cleanup at all) after one more chunk
    proc = _start(args, tmp_path)
    _wait_for_chunks(proc, 1)
    proc.kill()
    proc.wait(timeout=60)
    # 3) resume to the end: finished chunks are skipped, the rest redone, output identical to the reference
    done = subprocess.run(
        [sys.executable, "-m", "vmatte", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rep = json.loads(report.read_text())
    statuses = [c["status"] for c in rep["chunks"]]
    assert statuses.count("skipped") >= 2 and "done" in statuses, statuses
    assert {p.name: p.read_bytes() for p in out.glob("alpha.*.png")} == ref_files
    assert not list(out.glob(".*vmatte-tmp*"))


def test_farm_modules_and_help_import_neither_ray_nor_torch():
    code = (
        "import sys, vmatte, vmatte.cli as c; c.build_parser();"
        "import vmatte.farm.plan, vmatte.farm.manifest, vmatte.farm.chunked, vmatte.farm.ray_runner;"
        "bad = [m for m in ('ray', 'torch') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_chunked_job_validates_once(tmp_path, farm_clip, farm_masks, monkeypatch):
    """One prepared run for the whole job: the clip is probed and the masks validated once, not once per chunk
    (chunks render ranges of the prepared object; no ``--frames`` text is parsed back)."""
    import vmatte.io.decode
    import vmatte.io.masks

    calls = {"open_clip": 0, "load_keyframes": 0}

    def counted(name, fn):
        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)

        return wrapper

    monkeypatch.setattr(vmatte.io.decode, "open_clip", counted("open_clip", vmatte.io.decode.open_clip))
    monkeypatch.setattr(
        vmatte.io.masks, "load_keyframes", counted("load_keyframes", vmatte.io.masks.load_keyframes)
    )
    events: list[dict] = []
    rep = run_chunked(
        _cfg(farm_clip, farm_masks, _outputs(tmp_path / "o", video=False)),
        7,
        engine=FakeEngine(),
        on_progress=events.append,
    )
    assert [c["status"] for c in rep.chunks] == ["done"] * 3
    assert calls == {"open_clip": 1, "load_keyframes": 1}
    # the mask-file → frame mapping is said once per job
    assert sum(str(e.get("message", "")).startswith("keyframes:") for e in events) == 1


def test_job_report_write_failure_keeps_the_jobs_own_error(tmp_path, farm_clip, farm_masks, monkeypatch):
    """A full disk under --report must not replace the job's real error (exit code, message) with an OSError;
    after a good job the failed report write is the error (one line, exit 8)."""
    import errno

    from vmatte.errors import DiskFull, NumericsError
    from vmatte.pipeline.report import Report

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Report, "write_json", full)
    cfg = _cfg(farm_clip, farm_masks, _outputs(tmp_path / "o", video=False), report=str(tmp_path / "r.json"))
    with pytest.raises(NumericsError) as info:
        run_chunked(cfg, 7, engine=FakeEngine(nan_on=9))
    assert info.value.report.status == "error" and info.value.report.exit_code == NumericsError.exit_code
    with pytest.raises(DiskFull, match=r"r\.json: no space left"):
        run_chunked(cfg.replace(overwrite=True), 7, engine=FakeEngine())


def test_cancel_during_the_final_encode_leaves_no_output(tmp_path, farm_clip, farm_masks):
    """The final encode of inter-frame outputs runs through the run's stream (decode/encode threads, writer
    rollback): a cancel there raises Interrupted and leaves neither the output nor a temporary."""
    import threading

    from vmatte.errors import Interrupted

    out = tmp_path / "c"
    outs = (OutputConfig(path=str(out / "matte.mp4"), content="alpha"),)
    cancel = threading.Event()

    def on_progress(event: dict) -> None:
        if event.get("stage") == "assemble" and event.get("done") == 0:
            cancel.set()

    with pytest.raises(Interrupted, match="final encode"):
        run_chunked(
            _cfg(farm_clip, farm_masks, outs), 7, engine=FakeEngine(), on_progress=on_progress, cancel=cancel
        )
    assert not (out / "matte.mp4").exists()
    assert not list(out.glob(".*vmatte-tmp*"))


def test_chunks_choose_the_keyframes_band_margins_without_alpha_feedback(tmp_path, farm_clip, farm_masks):
    """The band margin after a keyframe follows how soft its matte is (``Engine.margin_after``), so a chunk
    mattes from the keyframe before it even with alpha feedback off, and joins exactly."""
    from vmatte.config import EngineConfig, PropagateConfig

    def engine(widest: float) -> FakeEngine:
        e = FakeEngine()
        e.band_margin, e.soft_margin = 0.025, widest  # as [engine] band_margin = "auto" sets them
        return e

    def cfg(out: Path) -> vmatte.RunConfig:
        return _cfg(
            farm_clip,
            farm_masks,
            _outputs(out, video=False),
            propagate=PropagateConfig(use_alpha_feedback=False),
            engine=EngineConfig(band_margin="auto"),
        )

    vmatte.run(cfg(tmp_path / "fixed"), engine=engine(0.0))
    vmatte.run(cfg(tmp_path / "single"), engine=engine(0.1))
    run_chunked(cfg(tmp_path / "split"), 7, engine=engine(0.1))
    fixed, single, split = (_alphas(tmp_path / d) for d in ("fixed", "single", "split"))
    assert np.abs(single - fixed).max() > 0.05  # the keyframes chose a wider margin, and it matters
    assert np.abs(split - single).max() <= 1.0 / 65535 + 1e-7

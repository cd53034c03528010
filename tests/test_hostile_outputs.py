"""Output faults: unwritable folders, disk full mid-run, output = input, existing outputs, failing runs with
--overwrite. In every case the input (clip and masks) is byte-identical afterwards, no partial file stands at the
final path, no temporaries are left, and the exit code is the documented one (7 output, 8 disk full, 9 NaN).

Disk full is produced two ways: a real tiny tmpfs (needs root to mount; skipped elsewhere) and a fault-injecting
writer that fails the way the real writers report ENOSPC (runs everywhere).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import hostile as h
import pytest

import vmatte
from vmatte.engine.base import FakeEngine
from vmatte.errors import DiskFull, NumericsError, OutputError
from vmatte.io.config import OutputConfig


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from vmatte.testing import write_masks

    d = tmp_path_factory.mktemp("pristine")
    h.good_mp4(d / "clip.mp4", 16, 96, 64)
    h.write_video(d / "clip.mkv", h.scene(96, 64, 16), "ffv1", "yuv420p")  # .mkv is also an output format
    write_masks(d / "keys", h.scene(96, 64, 16), [0, 10])
    return d


@pytest.fixture
def clip(pristine, tmp_path):
    """A private copy per test: a test that clobbers its input must not break the next one."""
    d = tmp_path / "in"
    shutil.copytree(pristine, d)
    return d / "clip.mp4"


@pytest.fixture
def masks(clip):
    return clip.parent / "keys"


@pytest.fixture
def guard(clip, masks):
    """Hashes of the inputs, checked after the test body."""
    before = {clip: h.sha(clip), masks: h.sha(masks)}
    yield before
    for p, digest in before.items():
        assert h.sha(p) == digest, f"input {p} was modified"


@contextlib.contextmanager
def _mount(path: Path, *opts: str):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(opts), "tmpfs", str(path)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _run(clip, masks, *outs, extra=(), engine=None):
    argv = ["run", clip, "--masks", masks, "--progress", "none", *extra]
    for o in outs:
        argv += ["-o", o]
    return h.run_cli(*argv, engine=engine if engine is not None else {"batch_size": 2})


# ---- unusable paths ---------------------------------------------------------------------------------------


def test_parent_is_a_file(clip, masks, guard, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    out = blocker / "matte.mov"
    res = _run(clip, masks, out)
    h.assert_one_error_line(res, 7, "notes.txt")
    assert blocker.read_text() == "x"


def test_read_only_folder(clip, masks, guard, tmp_path):
    with _mount(tmp_path / "ro", "size=1m", "ro") as ro:
        res = _run(clip, masks, ro / "matte.mov")
        h.assert_one_error_line(res, 7, "ro", "writ")
        assert list(ro.iterdir()) == []


def test_output_is_a_folder(clip, masks, guard, tmp_path):
    (tmp_path / "matte.mov").mkdir()
    res = _run(clip, masks, tmp_path / "matte.mov", extra=["--overwrite"])
    h.assert_one_error_line(res, 7, "matte.mov")
    assert (tmp_path / "matte.mov").is_dir()


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink", "case_dotdot"])
def test_output_equal_to_input(clip, masks, guard, tmp_path, how, monkeypatch):
    clip = clip.with_suffix(
        ".mkv"
    )  # FFV1 .mkv: a valid RGBA output format, so only the identity can refuse it
    guard[clip] = h.sha(clip)
    if how == "same":
        out = clip
    elif how == "relative":
        monkeypatch.chdir(clip.parent)
        out = Path(".") / clip.name
    elif how == "symlink":
        out = tmp_path / "link.mkv"
        out.symlink_to(clip)
    elif how == "hardlink":
        out = tmp_path / "hard.mkv"
        os.link(clip, out)
    else:
        out = clip.parent / ".." / clip.parent.name / clip.name
    res = _run(clip, masks, out, extra=["--overwrite"])
    h.assert_one_error_line(res, 7, "", "input")
    assert h.leftovers(clip.parent) == [] and h.leftovers(tmp_path) == []


def test_output_sequence_into_the_masks_folder(clip, masks, guard):
    """Masks are inputs too: even with --overwrite a sequence written over them is refused."""
    res = _run(clip, masks, masks / "%06d.png", extra=["--overwrite"])
    h.assert_one_error_line(res, (2, 7), "keys")


def test_report_path_equal_to_input(clip, masks, guard, tmp_path):
    """--report pointing at the clip must not replace the clip with JSON."""
    res = _run(clip, masks, tmp_path / "o.mov", extra=["--report", str(clip)])
    h.assert_one_error_line(res, (2, 7), clip.name)
    assert not (tmp_path / "o.mov").exists()


def test_report_path_equal_to_input_with_bad_config(clip, masks, guard, tmp_path):
    """Even when the config is wrong (the report is then written for the farm), never onto the clip."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[engine]\nbatch = 4\n")
    res = _run(clip, masks, tmp_path / "o.mov", extra=["--report", str(clip), "--config", str(cfg)])
    h.assert_one_error_line(res, 2, "bad.toml")


# ---- existing outputs ---------------------------------------------------------------------------------------


def test_existing_output_refused_without_overwrite(clip, masks, guard, tmp_path):
    out = tmp_path / "matte.mov"
    out.write_bytes(b"precious")
    res = _run(clip, masks, out)
    h.assert_one_error_line(res, 7, "matte.mov", "--overwrite")
    assert out.read_bytes() == b"precious"
    assert h.leftovers(tmp_path) == []


def test_existing_output_with_percent_in_name_refused(clip, masks, guard, tmp_path):
    """'%d' in a video file name is not a sequence pattern: the existing file is still protected."""
    out = tmp_path / "take 100%done.mov"
    out.write_bytes(b"precious")
    res = _run(clip, masks, out)
    assert res.code != 0, f"existing {out.name} overwritten without --overwrite: {res}"
    h.assert_one_error_line(res, 7, "", "--overwrite")
    assert out.read_bytes() == b"precious"


def test_overwrite_replaces_on_success(clip, masks, guard, tmp_path):
    out = tmp_path / "matte.mov"
    out.write_bytes(b"old")
    res = _run(clip, masks, out, extra=["--overwrite"])
    assert res.code == 0, str(res)
    assert out.read_bytes() != b"old" and out.stat().st_size > 1000
    assert h.leftovers(tmp_path) == []


def test_failed_overwrite_keeps_the_old_file(clip, masks, guard, tmp_path):
    """--overwrite and a run that dies (NaN at frame 5): the previous output stays as it was."""
    out = tmp_path / "matte.mov"
    out.write_bytes(b"yesterday's good render")
    res = _run(clip, masks, out, extra=["--overwrite"], engine={"batch_size": 2, "nan_on": 5})
    h.assert_one_error_line(res, 9, "", "nan")
    assert "5" in res.errors[0]
    assert out.read_bytes() == b"yesterday's good render"
    assert h.leftovers(tmp_path) == []


# ---- disk full ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size_k", [16, 64])
def test_disk_full_tmpfs(clip, masks, guard, tmp_path, size_k):
    """A real full disk (tmpfs of a few dozen KB): exit 8, retryable, nothing left on the small disk."""
    with _mount(tmp_path / "small", f"size={size_k}k") as small:
        out = small / "matte.mov"
        res = _run(clip, masks, out)
        h.assert_one_error_line(res, 8, "matte.mov", "space")
        h.assert_nothing_left(out)
        assert list(small.iterdir()) == [], f"left on the full disk: {list(small.iterdir())}"


def test_disk_full_tmpfs_with_report_on_it(clip, masks, guard, tmp_path):
    """The report is written to the same full disk: the run still exits 8 with one line (the report's own
    failure must not replace the disk-full error with a traceback)."""
    with _mount(tmp_path / "small", "size=64k") as small:
        ballast = (
            small / "ballast.bin"
        )  # someone else's file filling the disk: even the report cannot be written
        with contextlib.suppress(OSError), open(ballast, "wb") as fh:
            fh.write(b"\0" * (64 * 1024))
        out = small / "matte.mov"
        res = _run(clip, masks, out, extra=["--report", str(small / "report.json")])
        h.assert_one_error_line(res, 8, "matte.mov")
        h.assert_nothing_left(out)
        assert sorted(p.name for p in small.iterdir()) == ["ballast.bin"]


class _FailingWriter:
    """Wraps a real writer; fails like a real writer does on ENOSPC at the ``at``-th write, or in close()."""

    def __init__(self, inner, at: int | None, in_close: bool = False) -> None:
        from vmatte.io.writers.common import oserror

        self.inner, self.at, self.in_close, self.n = inner, at, in_close, 0
        self._err = lambda: oserror(h.disk_full_error(), inner.path)
        self.path = inner.path
        self.notes = getattr(inner, "notes", [])

    def write(self, frame) -> None:
        self.n += 1
        if self.at is not None and self.n == self.at:
            raise self._err()
        self.inner.write(frame)

    def close(self) -> None:
        if self.in_close:
            self.inner.abort()  # the real writers remove their temp before raising from close()
            raise self._err()
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


def _inject(monkeypatch, plan: dict[str, dict]):
    """Make open_writer wrap the writer of each output whose file name is in ``plan`` in a _FailingWriter."""
    import vmatte.io.encode as enc

    real = enc.open_writer

    def open_writer(cfg, info, **kw):
        w = real(cfg, info, **kw)
        spec = plan.get(Path(cfg.path).name)
        return _FailingWriter(w, **spec) if spec else w

    monkeypatch.setattr(enc, "open_writer", open_writer)


@pytest.mark.parametrize("where", ["first_frame", "mid_run", "close"])
def test_disk_full_injected(clip, masks, guard, tmp_path, monkeypatch, where):
    """Two outputs; the second hits ENOSPC. Exit 8, and NEITHER output stands (the run failed as a whole)."""
    a, b = tmp_path / "a.mov", tmp_path / "b.mov"
    spec = {"first_frame": {"at": 1}, "mid_run": {"at": 7}, "close": {"at": None, "in_close": True}}[where]
    _inject(monkeypatch, {"b.mov": spec})
    res = _run(clip, masks, a, b)
    h.assert_one_error_line(res, 8, "b.mov", "space")
    h.assert_nothing_left(a)
    h.assert_nothing_left(b)


def test_disk_full_api_report(clip, masks, guard, tmp_path, monkeypatch):
    """Through the API: DiskFull is retryable, the report says so, and a retry after freeing space succeeds."""
    out = tmp_path / "o.mov"
    report = tmp_path / "r.json"
    _inject(monkeypatch, {"o.mov": {"at": 3}})
    cfg = vmatte.RunConfig(
        input=str(clip), masks=str(masks), outputs=(OutputConfig(path=str(out)),), report=str(report)
    )
    with pytest.raises(DiskFull) as ei:
        vmatte.run(cfg, engine=FakeEngine())
    assert ei.value.retryable and ei.value.exit_code == 8
    rep = json.loads(report.read_text())
    assert rep["exit_code"] == 8 and rep["retryable"] is True and rep["status"] == "error"
    h.assert_nothing_left(out)
    monkeypatch.undo()
    assert vmatte.run(cfg, engine=FakeEngine()).status == "ok"  # the retry finds nothing in its way


@pytest.mark.parametrize("fmt", ["mov", "png"])
def test_failed_run_is_retryable_without_overwrite(clip, masks, guard, tmp_path, fmt):
    """A run that dies mid-way (NaN at frame 9) must not leave anything that makes the farm's retry fail with
    'already exists': the same command, re-run, succeeds (sequences included)."""
    out = tmp_path / ("o.mov" if fmt == "mov" else "seq/o.%04d.png")
    cfg = vmatte.RunConfig(input=str(clip), masks=str(masks), outputs=(OutputConfig(path=str(out)),))
    with pytest.raises(NumericsError):
        vmatte.run(cfg, engine=FakeEngine(nan_on=9))
    assert h.leftovers(tmp_path) == []
    rep = vmatte.run(cfg, engine=FakeEngine())
    assert rep.status == "ok" and rep.frames_written == 16


def test_unwritable_output_does_not_load_model(clip, masks, guard, tmp_path, monkeypatch):
    """Output checks happen before the model loads (fail fast, no GPU time wasted)."""
    import vmatte.engine as eng

    called = []
    monkeypatch.setattr(eng, "load_engine", lambda *a, **k: called.append(1) or FakeEngine(), raising=False)
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError):
        vmatte.run(
            vmatte.RunConfig(
                input=str(clip), masks=str(masks), outputs=(OutputConfig(path=str(tmp_path / "f" / "o.mov")),)
            )
        )
    assert called == []

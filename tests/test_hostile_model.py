"""Model files and device faults, at the level a user or a farm sees them.

Model files: a missing, empty, corrupt or truncated checkpoint, another architecture, a pickle that would run
code, a folder asking for trust_remote_code → exit 5 and one line naming the file, and the code never runs
(a marker file it would create stays absent). Only safetensors and torch.load(weights_only=True) are used.

Device faults: CUDA out-of-memory injected through the engine's fault hook (works on CPU) → the batch backs off and
the run completes with the same matte; OOM at batch size 1 everywhere → exit 6 (retryable), nothing written;
NaN/Inf in the model output → exit 9 naming the frames, nothing written.
"""

from __future__ import annotations

import json
import shutil

import hostile as h
import numpy as np
import pytest

import vmatte
from vmatte.engine.base import FakeEngine
from vmatte.errors import NumericsError, OutOfMemory
from vmatte.io.config import OutputConfig


@pytest.fixture(scope="module")
def clip_and_masks(tmp_path_factory):
    from vmatte.testing import write_masks

    d = tmp_path_factory.mktemp("m")
    clip = h.good_mp4(d / "clip.mp4", 6)
    masks = write_masks(d / "keys", h.scene(frames=6), [0])
    return clip, masks


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _tiny_sd_file(tiny_dir):
    return next(tiny_dir.glob("*.safetensors"))


MODEL_CASES = {
    "missing_pth": lambda d, m, t: d / "nope" / "vitmatte.pth",
    "empty_pth": lambda d, m, t: h.write_bytes(d / "empty.pth", b""),
    "random_bytes_pth": lambda d, m, t: h.write_bytes(d / "rnd.pth", np.random.default_rng(0).bytes(4096)),
    "text_renamed_safetensors": lambda d, m, t: h.write_bytes(d / "notes.safetensors", b"hello\n" * 20),
    "truncated_safetensors": lambda d, m, t: h.truncated(_tiny_sd_file(t), d / "cut.safetensors", 0.5),
    "other_arch_safetensors": lambda d, m, t: h.other_arch_checkpoint(d / "cnn.safetensors"),
    "other_arch_pth": lambda d, m, t: h.other_arch_checkpoint(d / "cnn.pth"),
    "evil_torch_pickle": lambda d, m, t: h.evil_pickle(d / "evil.pth", m),
    "evil_plain_pickle": lambda d, m, t: h.evil_plain_pickle(d / "evil.ckpt", m),
    "other_arch_hf_folder": lambda d, m, t: h.other_arch_hf_dir(d / "bert"),
    "remote_code_folder": lambda d, m, t: h.remote_code_dir(d / "remote", m),
    "evil_bin_in_hf_folder": lambda d, m, t: h.evil_bin_in_hf_dir(t, d / "evilbin", m),
    "folder_without_weights": lambda d, m, t: _strip_weights(t, d / "noweights"),
    "folder_with_broken_config": lambda d, m, t: _broken_config(t, d / "badcfg"),
    "empty_folder": lambda d, m, t: _mkdir(d / "emptydir"),
    "clip_as_checkpoint": lambda d, m, t: (
        shutil.copy(h.good_mp4(d / "c.mp4", 2), d / "c.pth") and d / "c.pth"
    ),
}


def _mkdir(p):
    p.mkdir()
    return p


def _strip_weights(tiny, dst):
    shutil.copytree(tiny, dst)
    for f in list(dst.glob("*.safetensors")) + list(dst.glob("*.bin")):
        f.unlink()
    return dst


def _broken_config(tiny, dst):
    shutil.copytree(tiny, dst)
    (dst / "config.json").write_text("{ this is not json")
    return dst


@pytest.mark.parametrize("name", list(MODEL_CASES))
def test_bad_model_file(name, clip_and_masks, tiny_vitmatte_dir, tmp_path):
    clip, masks = clip_and_masks
    marker = tmp_path / "PWNED"
    model = MODEL_CASES[name](tmp_path, marker, tiny_vitmatte_dir)
    out = tmp_path / "out" / "matte.mov"
    res = h.run_cli(
        *h.run_args(clip, masks, out),
        *h.VITMATTE_CPU,
        "--model",
        model,
        "--progress",
        "none",
    )
    h.assert_one_error_line(res, 5, model.name)
    assert not marker.exists(), f"{name}: loading the model ran code from the file"
    h.assert_nothing_left(out)


def test_good_tiny_model_control(clip_and_masks, tiny_vitmatte_dir, tmp_path):
    """The same command with a valid model folder works (so the refusals above are about the files)."""
    clip, masks = clip_and_masks
    out = tmp_path / "matte.mov"
    res = h.run_cli(
        *h.run_args(clip, masks, out),
        *h.VITMATTE_CPU,
        "--model",
        tiny_vitmatte_dir,
        "--progress",
        "none",
    )
    assert res.code == 0, str(res)
    assert out.exists()


def test_no_trust_remote_code_anywhere():
    """Static guard: no source file passes trust_remote_code=True."""
    import re
    from pathlib import Path

    root = Path(vmatte.__file__).parent
    hits = [str(p) for p in root.rglob("*.py") if re.search(r"trust_remote_code\s*=\s*True", p.read_text())]
    assert hits == []
    loads = [
        (str(p), m.start())
        for p in root.rglob("*.py")
        for text in [p.read_text()]
        for m in re.finditer(r"torch\.load\(", text)
        if "weights_only=True" not in text[m.end() : m.end() + 300]
    ]
    assert loads == [], f"torch.load without weights_only=True: {loads}"


# ---- device faults --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_engine_cfg(tiny_vitmatte_dir):
    return vmatte.EngineConfig(name="vitmatte", model=str(tiny_vitmatte_dir), device="cpu", batch_size=4)


def _run(clip, masks, out, engine, report=None):
    cfg = vmatte.RunConfig(
        input=str(clip),
        masks=str(masks),
        outputs=(OutputConfig(path=str(out)),),
        report=str(report) if report else "",
    )
    return vmatte.run(cfg, engine=engine)


def _alphas(path):
    from vmatte.io.readback import read_alpha_frames

    return [np.asarray(a) for a in read_alpha_frames(str(path))]


def test_oom_backs_off_and_completes(clip_and_masks, tiny_engine_cfg, tmp_path):
    """OOM whenever a batch has more than one frame (injected, CPU): the engine halves the batch and retries;
    the run completes and the matte equals the unfaulted run's."""
    import torch

    clip, masks = clip_and_masks
    ref = tmp_path / "ref.mov"
    _run(clip, masks, ref, vmatte.load_engine(tiny_engine_cfg))

    engine = vmatte.load_engine(tiny_engine_cfg)
    calls = []

    def hook(x):
        calls.append(x.shape[0])
        if x.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")

    engine.fault_hook = hook
    out = tmp_path / "o.mov"
    rep = _run(clip, masks, out, engine)
    assert rep.status == "ok" and rep.frames_written == 6
    assert engine.oom_backoffs >= 1 and engine.batch_size == 1
    assert max(calls) > 1 and calls[-1] == 1
    for a, b in zip(_alphas(out), _alphas(ref)):
        assert np.abs(a.astype(np.float32) - b.astype(np.float32)).max() <= 2 / 255


def test_oom_at_batch_one_is_device_error(clip_and_masks, tiny_engine_cfg, tmp_path):
    """OOM that never goes away (tiles too): exit 6, retryable (another node may have memory), nothing written."""
    import torch

    clip, masks = clip_and_masks
    engine = vmatte.load_engine(tiny_engine_cfg)

    def hook(x):
        raise torch.OutOfMemoryError("CUDA out of memory (injected, always)")

    engine.fault_hook = hook
    out, report = tmp_path / "o.mov", tmp_path / "r.json"
    with pytest.raises(OutOfMemory) as ei:
        _run(clip, masks, out, engine, report)
    assert ei.value.exit_code == 6 and ei.value.retryable
    rep = json.loads(report.read_text())
    assert rep["exit_code"] == 6 and rep["retryable"] is True
    h.assert_nothing_left(out)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_model_output(clip_and_masks, tiny_engine_cfg, tmp_path, bad):
    """NaN/Inf coming out of the real model (input poisoned through the fault hook) is caught with frame numbers."""
    clip, masks = clip_and_masks
    engine = vmatte.load_engine(tiny_engine_cfg)

    def hook(x):
        x[0].fill_(bad)  # the first frame of every batch

    engine.fault_hook = hook
    out = tmp_path / "o.mov"
    with pytest.raises(NumericsError) as ei:
        _run(clip, masks, out, engine)
    assert ei.value.exit_code == 9
    assert "frame" in str(ei.value) and any(ch.isdigit() for ch in str(ei.value))
    h.assert_nothing_left(out)


class _InfEngine(FakeEngine):
    def _launch(self, frames):
        out = super()._launch(frames)
        for f, a in zip(frames, out):
            if f.index in (2, 4):
                a[1, 1] = np.inf
        return out


@pytest.mark.parametrize(
    "engine,frames",
    [(FakeEngine(batch_size=2, nan_on=3), [3]), (_InfEngine(batch_size=1), [2])],
    ids=["nan_frame_3", "inf_frames_2_4"],
)
def test_non_finite_named_and_never_written(clip_and_masks, tmp_path, engine, frames):
    clip, masks = clip_and_masks
    out = tmp_path / "o.mov"
    with pytest.raises(NumericsError) as ei:
        _run(clip, masks, out, engine)
    for n in frames:
        assert str(n) in str(ei.value), str(ei.value)
    h.assert_nothing_left(out)

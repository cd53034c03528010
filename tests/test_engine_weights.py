"""Where weights come from and how they fail: local folder, HF cache, original .pth, bad files, offline hub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vmatte.engine import EngineConfig, load_engine, resolve_weights
from vmatte.engine import weights as W
from vmatte.errors import ModelError
from vmatte.frame import Frame
from vmatte.testing import Scene

HUB_ID = "hustvl/vitmatte-small-composition-1k"


def test_import_engine_does_not_import_torch_or_av():
    code = (
        "import sys, vmatte.engine, vmatte.engine.weights, vmatte.engine.hub_configs;"
        "vmatte.engine.resolve_weights('nowhere/at-all', probe_timeout_s=0);"
        "print('torch' in sys.modules, 'av' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty HF cache and a hub probe that records its calls and says 'unreachable' at once."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    calls: list[float] = []

    def probe(timeout_s: float) -> bool:
        calls.append(timeout_s)
        return False

    monkeypatch.setattr(W, "probe_hub", probe)

    def no_network(*a, **k):
        raise AssertionError("must not touch the hub when the probe failed")

    import huggingface_hub
    import transformers

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    monkeypatch.setattr(transformers.VitMatteForImageMatting, "from_pretrained", no_network)
    return calls


def test_auto_falls_back_to_classic_with_one_warning(offline):
    warnings: list[str] = []
    eng = load_engine(EngineConfig(name="auto", hub_probe_timeout_s=2.5), on_warning=warnings.append)
    assert eng.name == "classic"
    assert len(warnings) == 1
    assert "hf download hustvl/vitmatte-small-composition-1k" in warnings[0]
    assert "EngineConfig(model=DIR)" in warnings[0]  # the API speaks API; the CLI says --model DIR
    assert offline == [2.5]  # probed once, with the configured bound


def test_vitmatte_fails_fast_offline_without_waiting(offline):
    with pytest.raises(ModelError) as err:
        load_engine(
            EngineConfig(name="vitmatte"), on_warning=lambda m: pytest.fail(f"no warning expected: {m}")
        )
    msg = str(err.value)
    assert HUB_ID in msg and "`hf download hustvl/vitmatte-small-composition-1k`" in msg and "\n" not in msg
    assert err.value.exit_code == 5
    assert offline == [3.0]  # the only network wait is the bounded probe (mocked here)


def test_probe_is_bounded_and_respects_offline_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert W.probe_hub(30.0) is False  # returns without trying
    monkeypatch.delenv("HF_HUB_OFFLINE")
    # a blackholed endpoint: the join timeout bounds the wait even where connect() hangs (DNS ignores timeouts)
    import threading
    import time

    release = threading.Event()
    monkeypatch.setenv("HF_ENDPOINT", "https://10.255.255.1:9")
    monkeypatch.setattr(W.socket, "create_connection", lambda *a, **k: release.wait(10))
    t = time.monotonic()
    assert W.probe_hub(0.05) is False
    assert time.monotonic() - t < 5  # the connect would have taken 10 s
    release.set()


def test_hub_cache_is_found_offline(offline, tiny_vitmatte_dir, monkeypatch, tmp_path):
    # lay out the HF cache the way `hf download` leaves it
    repo = Path(os.environ["HF_HUB_CACHE"]) / "models--hustvl--vitmatte-small-composition-1k"
    snap = repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_vitmatte_dir / name, snap / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    src = resolve_weights(HUB_ID)
    assert src is not None and src.kind == "hub-cache" and Path(src.location) == snap
    assert offline == []  # the cache answered: no probe
    # loading must not go through from_pretrained(hub id): it is patched to fail; we load the snapshot folder
    monkeypatch.undo()  # restore from_pretrained (used on the local folder), keep nothing else
    monkeypatch.setenv("HF_HUB_CACHE", str(snap.parents[2]))
    eng = load_engine(EngineConfig(name="auto", device="cpu"))
    assert eng.name == "vitmatte" and "cache" in eng.describe()["weights"]


def _frames(n=2):
    sc = Scene(width=80, height=64, frames=n)
    out = []
    for i in range(n):
        a = sc.alpha(i)
        t = np.full(a.shape, 128, np.uint8)
        t[a <= 0] = 0
        t[a >= 1] = 255
        out.append(Frame(i, i, None, sc.rgb(i), trimap=t))
    return out


def _alphas(model: str):
    eng = load_engine(EngineConfig(name="vitmatte", model=model, device="cpu", precision="fp32"))
    out = []
    for f in _frames():
        out += eng.push(f)
    return [f.alpha for f in out + eng.flush()]


def test_original_checkpoint_is_converted_on_the_fly(tiny_vitmatte_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    hf = load_file(str(tiny_vitmatte_dir / "model.safetensors"))
    orig = W.hf_to_original(hf)
    # it really is original-style naming (what hustvl/ViTMatte's detectron2 checkpoints use)
    assert "backbone.pos_embed" in orig and "backbone.patch_embed.proj.weight" in orig
    assert "backbone.blocks.0.attn.qkv.weight" in orig and "backbone.blocks.0.attn.rel_pos_h" in orig
    assert any(k.startswith("decoder.fusion_blks.") and ".bn." in k for k in orig)
    assert not any("encoder.layer" in k or "attention" in k or "batch_norm" in k for k in orig)
    assert W.original_to_hf(orig).keys() == hf.keys()
    ckpt = tmp_path / "ViTMatte_T_Com.pth"
    torch.save({"model": orig, "iteration": 1000}, ckpt)  # detectron2 wraps the state dict
    for a, b in zip(_alphas(str(ckpt)), _alphas(str(tiny_vitmatte_dir))):
        assert np.array_equal(a, b)


def test_missing_model_path_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_engine(EngineConfig(name="vitmatte", model=str(tmp_path / "nope.pth")))


def test_corrupt_safetensors(tiny_vitmatte_dir, tmp_path):
    d = tmp_path / "corrupt"
    shutil.copytree(tiny_vitmatte_dir, d)
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated download
    with pytest.raises(ModelError, match=r"could not load ViTMatte from .*corrupt"):
        load_engine(EngineConfig(name="vitmatte", model=str(d), device="cpu"))


def test_corrupt_pth(tmp_path):
    p = tmp_path / "bad.pth"
    p.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    with pytest.raises(ModelError, match="unreadable"):
        load_engine(EngineConfig(name="vitmatte", model=str(p), device="cpu"))


def test_wrong_architecture_folder_and_checkpoint(tiny_vitmatte_dir, tmp_path):
    import torch

    d = tmp_path / "bert"
    shutil.copytree(tiny_vitmatte_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "bert"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="'bert' model, not ViTMatte"):
        load_engine(EngineConfig(name="vitmatte", model=str(d)))
    p = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 64)}, p)
    with pytest.raises(ModelError, match="not a ViTMatte checkpoint"):
        load_engine(EngineConfig(name="vitmatte", model=str(p)))
    # right names, wrong shapes: a truncated decoder
    from safetensors.torch import load_file

    sd = load_file(str(tiny_vitmatte_dir / "model.safetensors"))
    sd = {k: v for k, v in sd.items() if "matting_head" not in k}
    p2 = tmp_path / "headless.pth"
    torch.save(sd, p2)
    with pytest.raises(ModelError, match="does not match the ViTMatte architecture"):
        load_engine(EngineConfig(name="vitmatte", model=str(p2)))


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    p = tmp_path / "ViTMatte_S_Com.pth"
    torch.save({"model": {"backbone.pos_embed": torch.zeros(1)}, "payload": _Exploit(str(marker))}, p)
    with pytest.raises(ModelError, match=r"refused to load .* could run code"):
        load_engine(EngineConfig(name="vitmatte", model=str(p)))
    assert not marker.exists()


def test_resolve_weights_kinds(offline, tiny_vitmatte_dir, tmp_path, monkeypatch):
    assert resolve_weights(str(tiny_vitmatte_dir)).kind == "dir"
    ckpt = tmp_path / "x.pth"
    ckpt.write_bytes(b"")
    assert resolve_weights(str(ckpt)).kind == "checkpoint"
    assert resolve_weights(str(tmp_path / "missing-dir" / "model")) is None  # not a hub id: no probe
    assert offline == []
    assert resolve_weights("org/model-not-cached") is None and offline == [3.0]
    monkeypatch.setattr(W, "probe_hub", lambda timeout_s: True)
    src = resolve_weights("org/model-not-cached")
    assert src.kind == "hub" and "download" in src.describe()


def test_device_summary_reports_torch_and_cuda_state():
    from vmatte.engine import device_summary

    d = device_summary()
    assert d["torch"] and isinstance(d["cuda_available"], bool)
    if d["cuda_available"]:
        assert d["gpus"][0]["memory_total_gb"] > 0


def test_download_hint_names_the_installed_cli_and_the_requested_model(offline):
    """Hints name a command the installed huggingface_hub provides, for the model that was asked for."""
    from importlib.metadata import entry_points

    scripts = {e.name for e in entry_points(group="console_scripts") if e.value.startswith("huggingface_hub")}
    assert "hf" in scripts
    assert W.DOWNLOAD_COMMAND.split()[0] in scripts
    warnings: list[str] = []
    load_engine(
        EngineConfig(name="auto", model="acme/vitmatte-custom", hub_probe_timeout_s=0.1),
        on_warning=warnings.append,
    )
    assert "`hf download acme/vitmatte-custom`" in warnings[0]
    # nothing the user reads may name the retired CLI
    root = Path(__file__).resolve().parents[1]
    old = "huggingface" + "-cli"
    for f in [root / "README.md", *root.glob("docs/*.md"), *root.glob("vmatte/**/*.py")]:
        assert old not in f.read_text(encoding="utf-8"), f

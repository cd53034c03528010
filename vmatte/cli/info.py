"""``vmatte info``: versions, codecs, torch/CUDA state, where model weights would come from, external ffmpeg."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata

_PACKAGES = [
    "vmatte",
    "torch",
    "transformers",
    "av",
    "opencv-python-headless",
    "numpy",
    "pymatting",
    "tqdm",
    "ffmpeg-python",
    "imageio-ffmpeg",
    "ray",
]
_ENCODERS = [
    "prores_ks",
    "libvpx-vp9",
    "ffv1",
    "qtrle",
    "png",
    "exr",
    "libx264",
    "libx265",
    "libsvtav1",
    "h264_nvenc",
    "hevc_nvenc",
    "aac",
    "libopus",
]
_DECODERS = [
    "h264",
    "hevc",
    "prores",
    "vp9",
    "libvpx-vp9",
    "av1",
    "ffv1",
    "qtrle",
    "png",
    "exr",
    "dnxhd",
    "mpeg4",
]


def register(subs) -> None:
    p = subs.add_parser("info", help="versions, codecs, GPU state and where model weights would come from")
    p.add_argument("--model", default=None, help="model to resolve (default: the configured default)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=main)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def collect(model: str | None = None) -> dict:
    """Everything ``vmatte info`` shows, as a dict."""
    import av

    from vmatte.engine import device_summary, resolve_weights
    from vmatte.engine.config import DEFAULT_MODEL
    from vmatte.io.encode import ffmpeg_binary

    def has(name: str, mode: str) -> bool:
        try:
            av.codec.Codec(name, mode)
            return True
        except Exception:
            return False

    model = model or DEFAULT_MODEL
    src = resolve_weights(model)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {n: _version(n) for n in _PACKAGES},
        "ffmpeg_libs": {k: ".".join(map(str, v)) for k, v in av.library_versions.items()},
        "encoders": {n: has(n, "w") for n in _ENCODERS},
        "decoders": {n: has(n, "r") for n in _DECODERS},
        "external_ffmpeg": ffmpeg_binary(),
        "device": device_summary(),
        "model": {"requested": model, "resolved": (src.describe() if src is not None else None)},
    }


def main(args: argparse.Namespace) -> int:
    info = collect(args.model)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    w = sys.stdout.write
    w(f"vmatte {info['packages']['vmatte']} on Python {info['python']} ({info['platform']})\n")
    w("packages:\n")
    for name, ver in info["packages"].items():
        w(f"  {name:24s} {ver or 'not installed'}\n")
    w("FFmpeg libraries (PyAV): " + ", ".join(f"{k} {v}" for k, v in info["ffmpeg_libs"].items()) + "\n")
    w(
        "encoders: "
        + ", ".join(f"{n}{'' if ok else ' (missing)'}" for n, ok in info["encoders"].items())
        + "\n"
    )
    w(
        "decoders: "
        + ", ".join(f"{n}{'' if ok else ' (missing)'}" for n, ok in info["decoders"].items())
        + "\n"
    )
    w(
        f'external ffmpeg (for writer = "ffmpeg"): {info["external_ffmpeg"] or "not found (VMATTE_FFMPEG, PATH, imageio-ffmpeg)"}\n'
    )
    dev = info["device"]
    w("device: " + ", ".join(f"{k}={v}" for k, v in dev.items()) + "\n")
    m = info["model"]
    if m["resolved"]:
        w(f"model {m['requested']}: {m['resolved']}\n")
    else:
        w(
            f"model {m['requested']}: weights not found offline (local path, HF cache) → --engine auto uses classic; "
            f"download with `hf download {m['requested']}` or pass --model DIR\n"
        )
    return 0

"""Frame → files. Writers are created per output by :func:`open_writer`; the runner feeds them in a thread.

Every writer works under a temporary name beside the final path and renames on :meth:`Writer.close`, so a
killed job never leaves a plausible file; :meth:`Writer.abort` removes the temporary. Inputs are never opened
for writing. This module never imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from vmatte.errors import DiskFull, OutputError
from vmatte.frame import Frame
from vmatte.io.config import OutputConfig
from vmatte.io.decode import ClipInfo


class Writer(Protocol):
    path: Path

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def temp_path(final: Path) -> Path:
    """Hidden sibling of ``final`` with the same extension (muxers pick the format from it)."""
    return final.with_name(f".{final.stem}.vmatte-tmp-{os.getpid()}{final.suffix}")


def check_output_path(final: Path, info: ClipInfo, *, overwrite: bool) -> None:
    """Refuse outputs that would clobber the input or an existing file, or that cannot be written."""
    final = final.resolve()
    try:
        same = Path(info.path).exists() and final.exists() and os.path.samefile(final, info.path)
    except OSError:
        same = False
    if same or final == Path(info.path).resolve():
        raise OutputError(f"{final}: output path is the input clip", hint="choose another -o path; inputs are never overwritten")
    if final.exists() and not overwrite:
        raise OutputError(f"{final}: already exists", hint="pass --overwrite or choose another -o path")
    parent = final.parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{parent}: cannot create output folder ({exc.strerror})") from None
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{parent}: output folder is not writable", hint="choose a writable -o path")


def _oserror(exc: OSError, path: Path) -> Exception:
    import errno

    if exc.errno == errno.ENOSPC:
        return DiskFull(f"{path}: no space left on device", hint="free space or write elsewhere; nothing partial was kept")
    return OutputError(f"{path}: write failed ({exc.strerror or exc})")


def to_rgba16(frame: Frame, cfg: OutputConfig) -> np.ndarray:
    """(H, W, 4) uint16 RGBA (straight or premultiplied per ``cfg``) from the frame's colour and alpha."""
    a = frame.alpha if frame.alpha is not None else np.ones(frame.rgb.shape[:2], np.float32)
    col = frame.foreground if frame.foreground is not None else frame.rgb_float()
    if cfg.premultiplied:
        col = col * a[..., None]
    out = np.empty((*a.shape, 4), np.uint16)
    out[..., :3] = np.clip(col * 65535.0 + 0.5, 0, 65535)
    out[..., 3] = np.clip(a * 65535.0 + 0.5, 0, 65535)
    return out


class ProResWriter:
    """RGBA ProRes 4444 (.mov, prores_ks profile 4444, yuva444p10le), straight alpha by default."""

    def __init__(self, final: Path, info: ClipInfo, cfg: OutputConfig, threads: int = 0) -> None:
        import av

        self.path = final
        self.cfg = cfg
        self.info = info
        self._tmp = temp_path(final)
        try:
            self._out = av.open(str(self._tmp), "w")
        except OSError as exc:
            raise _oserror(exc, final) from None
        s = self._out.add_stream("prores_ks", rate=info.rate)
        s.width, s.height = info.width, info.height
        s.pix_fmt = "yuva444p10le"
        s.time_base = info.time_base
        s.codec_context.time_base = info.time_base
        s.options = {"profile": "4444", "vendor": "apl0", **cfg.options}
        s.thread_type = "FRAME"
        s.thread_count = threads or os.cpu_count() or 1
        self._stream = s

    def write(self, frame: Frame) -> None:
        import av

        rgba = to_rgba16(frame, self.cfg)
        vf = av.VideoFrame.from_ndarray(rgba, format="rgba64le")
        vf.pts = frame.pts
        vf.time_base = frame.time_base
        try:
            for packet in self._stream.encode(vf):
                self._out.mux(packet)
        except OSError as exc:
            raise _oserror(exc, self.path) from None

    def close(self) -> None:
        try:
            for packet in self._stream.encode():
                self._out.mux(packet)
            self._out.close()
        except OSError as exc:
            self.abort()
            raise _oserror(exc, self.path) from None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._out.close()
        except Exception:
            pass
        try:
            self._tmp.unlink()
        except FileNotFoundError:
            pass


def default_output_path(info: ClipInfo, cfg: OutputConfig) -> Path:
    src = Path(info.path)
    stem = src.stem if info.kind == "video" else src.name.rstrip("/") or "frames"
    suffix = {"rgba": "matte-rgba", "alpha": "matte", "composite": "comp"}[cfg.content]
    return src.with_name(f"{stem}.{suffix}.mov")


def open_writer(cfg: OutputConfig, info: ClipInfo, *, overwrite: bool = False, threads: int = 0) -> Writer:
    """Create the writer for one output (checks the path first; nothing is created until this succeeds)."""
    final = Path(cfg.path) if cfg.path else default_output_path(info, cfg)
    check_output_path(final, info, overwrite=overwrite)
    return ProResWriter(final, info, cfg, threads=threads)

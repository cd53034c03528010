"""Image-sequence writers: PNG (8/16 bit) and OpenEXR (half/float), one file per frame.

File number = ``cfg.start_number + frame.index`` (clip frame index), so chunks of one shot rendered on different
farm nodes land side by side in one folder. Each frame is written to a hidden temp name beside its final one
(``.NAME.vmatte-tmp-PID.EXT``) and all of them are renamed into place by ``close``: while the run is going, and
after it failed or was cancelled, no frame stands under a final name. ``abort`` removes the temporaries, any
frames already renamed, and the output folders this writer created if they are left empty, so a retry of the
same command starts clean. A path without ``%0Nd`` is a single image (one-frame runs).

PNG: straight alpha is the PNG standard; a premultiplied PNG (non-standard, on request) is marked in a tEXt
chunk ``vmatte:alpha``. Colour is the source's encoding (display-referred, usually sRGB/Rec.709).

EXR: written by FFmpeg's exr encoder (PyAV; ZIP compression, half or float). Colour is converted to LINEAR
light with the sRGB EOTF (the exact inverse of what decode.py applies when it reads an EXR), as compositors
expect scene-linear EXR. RGBA EXRs are ALWAYS premultiplied (in linear light), whatever ``premultiplied``
says: OpenEXR defines its colour as associated with alpha and Nuke, Fusion, After Effects and Blender read it
so, and one convention for ``-o x.%04d.exr`` and ``--pipeline exr-seq`` alike leaves nothing to guess. The
alpha convention and transfer are written as header attributes ``vmatte/alpha`` and ``vmatte/transfer``; EXR
readers that know no such attribute ignore it. Alpha-only EXRs hold one channel ``Y`` (the matte, no transfer
applied).
"""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from vmatte.errors import OutputError
from vmatte.frame import Frame
from vmatte.io.config import OutputConfig
from vmatte.io.decode import ClipInfo
from vmatte.io.formats import FormatSpec, output_depth
from vmatte.io.writers.common import (
    PixelSource,
    alpha_note,
    ensure_folder,
    keep_folders,
    oserror,
    overwrite_hint,
    remove_empty_folders,
    remove_quietly,
    srgb_to_linear,
    temp_path,
)


def frame_file(pattern: Path, number: int) -> Path:
    """``pattern`` (a path whose name holds one printf ``%0Nd``) with ``number`` filled in; a name without one
    is a single-image output (a one-frame run) and is returned as is."""
    if "%" not in pattern.name:
        return pattern
    return pattern.with_name(pattern.name % number)


def png_with_text(png: bytes, items: dict[str, str]) -> bytes:
    """Insert tEXt chunks (Latin-1 key/value) right after IHDR of an encoded PNG."""
    # IHDR is always the first chunk: 8-byte signature + 4 len + 4 type + 13 data + 4 crc
    cut = 8 + 4 + 4 + 13 + 4
    chunks = b""
    for key, value in items.items():
        data = key.encode("latin-1") + b"\0" + value.encode("latin-1")
        chunks += (
            struct.pack(">I", len(data))
            + b"tEXt"
            + data
            + struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF)
        )
    return png[:cut] + chunks + png[cut:]


def png_text(png: bytes) -> dict[str, str]:
    """tEXt chunks of an encoded PNG as a dict (for read-back and tests)."""
    out: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"tEXt":
            key, _, value = png[pos + 8 : pos + 8 + n].partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        if kind == b"IDAT":
            break
        pos += 12 + n
    return out


_EXR_LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256}


def _exr_header_end(data: bytes) -> tuple[int, dict[str, tuple[str, bytes]]]:
    """Offset of the header's terminating NUL and the attributes (name → (type, raw value))."""
    if data[:4] != b"\x76\x2f\x31\x01":
        raise ValueError("not an OpenEXR file")
    pos = 8
    attrs: dict[str, tuple[str, bytes]] = {}
    while data[pos] != 0:
        name_end = data.index(b"\0", pos)
        type_end = data.index(b"\0", name_end + 1)
        (size,) = struct.unpack("<i", data[type_end + 1 : type_end + 5])
        value = data[type_end + 5 : type_end + 5 + size]
        attrs[data[pos:name_end].decode()] = (data[name_end + 1 : type_end].decode(), value)
        pos = type_end + 5 + size
    return pos, attrs


def exr_add_attributes(data: bytes, items: dict[str, str]) -> bytes:
    """Add string attributes to a single-part scanline EXR; shifts the chunk offset table to match."""
    end, attrs = _exr_header_end(data)
    comp = attrs["compression"][1][0]
    _xmin, ymin, _xmax, ymax = struct.unpack("<4i", attrs["dataWindow"][1])
    chunks = -(-(ymax - ymin + 1) // _EXR_LINES_PER_CHUNK[comp])
    extra = b""
    for key, value in items.items():
        v = value.encode()
        extra += key.encode() + b"\0string\0" + struct.pack("<i", len(v)) + v
    table_at = end + 1
    offsets = np.frombuffer(data, "<u8", count=chunks, offset=table_at) + np.uint64(len(extra))
    return (
        data[:end]
        + extra
        + data[end:table_at]
        + offsets.astype("<u8").tobytes()
        + data[table_at + 8 * chunks :]
    )


def exr_attributes(data: bytes) -> dict[str, str]:
    """String attributes of an EXR header (for read-back and tests)."""
    _, attrs = _exr_header_end(data)
    return {k: v.decode("utf-8", "replace") for k, (t, v) in attrs.items() if t == "string"}


class SequenceWriter:
    """PNG or EXR frames at ``pattern`` (a path with one ``%0Nd``)."""

    def __init__(
        self,
        pattern: Path,
        info: ClipInfo,
        cfg: OutputConfig,
        spec: FormatSpec,
        *,
        overwrite: bool = False,
        frame_range: tuple[int, int] | None = None,
    ) -> None:
        if spec.name == "exr" and cfg.content == "rgba":
            cfg = dataclasses.replace(cfg, premultiplied=True)  # the EXR convention (module docstring)
        self.path = pattern
        self.info = info
        self.cfg = cfg
        self.spec = spec
        self.notes: list[str] = []
        self.depth = output_depth(cfg, spec, info.bit_depth)
        start, end = frame_range if frame_range is not None else (0, max(0, info.frame_count - 1))
        if not overwrite:
            # only this run's own frame numbers count: another chunk's files beside them are expected
            for index in range(start, end + 1):
                f = frame_file(pattern, cfg.start_number + index)
                if f.exists():
                    raise OutputError(
                        f"{f}: already exists (frame {index} of this run)",
                        hint=overwrite_hint(),
                    )
        # EXR premultiplies in linear light, so its pixels are rendered straight and multiplied in _encode_exr
        pix_cfg = dataclasses.replace(cfg, premultiplied=False) if spec.name == "exr" else cfg
        self._pixels = PixelSource(pix_cfg, info.start_time_s)
        self._tmp: Path | None = None
        self._pending: list[tuple[Path, Path]] = []  # (temp, final) of frames written, renamed by close()
        self.written: list[Path] = []  # final names in place (after close)
        self.created_dirs: list[Path] = []
        if spec.name == "exr":
            import av

            self._av = av

    def _encode_png(self, q: np.ndarray) -> bytes:
        import cv2

        if q.ndim == 3:
            q = q[..., [2, 1, 0, 3]] if q.shape[2] == 4 else q[..., ::-1]  # OpenCV writes BGR(A)
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(q))
        if not ok:
            raise OutputError(f"{self.path}: PNG encoding failed")
        text = {"Software": "vmatte"}
        if self.cfg.content == "rgba":
            text["vmatte:alpha"] = alpha_note(self.cfg)
        return png_with_text(buf.tobytes(), text)

    def _encode_exr(self, img: np.ndarray) -> bytes:
        av = self._av
        if img.ndim == 3:
            img = img.copy()
            col = img[..., :3]
            if self.cfg.content == "rgba":  # always premultiplied, in linear light
                img[..., :3] = srgb_to_linear(col) * img[..., 3:4]
            else:
                img[..., :3] = srgb_to_linear(col)
            if img.shape[2] == 3:
                img = np.concatenate([img, np.ones((*img.shape[:2], 1), np.float32)], axis=2)
            fmt = "gbrapf32le"
        else:
            fmt = "grayf32le"
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img, dtype=np.float32), format=fmt)
        cc = av.CodecContext.create("exr", "w")
        cc.width, cc.height = self.info.width, self.info.height
        cc.pix_fmt = fmt
        cc.time_base = 1
        cc.options = {
            "compression": "zip16",
            "format": "float" if self.depth == 32 else "half",
            **self.cfg.options,
        }
        data = b"".join(bytes(p) for p in [*cc.encode(vf), *cc.encode(None)])
        attrs = {"vmatte/transfer": "linear (sRGB EOTF applied)" if img.ndim == 3 else "none (matte)"}
        if self.cfg.content == "rgba":
            attrs["vmatte/alpha"] = alpha_note(self.cfg)
        elif self.cfg.content == "composite":
            attrs["vmatte/alpha"] = "opaque composite"
        return exr_add_attributes(data, attrs)

    def _check_size(self, frame: Frame) -> None:
        if (frame.height, frame.width) != (self.info.height, self.info.width):
            raise OutputError(
                f"{self.path}: frame {frame.index} is {frame.width}x{frame.height}, expected {self.info.width}x{self.info.height}"
            )

    def prepare(self, frame: Frame) -> bytes | None:
        """The frame's encoded file (bytes) for :meth:`write`; may run on any thread, several frames at once.
        None when this output must render in frame order (a composite over a clip or image background)."""
        if not self._pixels.thread_safe:
            return None
        self._check_size(frame)
        return self._encode(frame)

    def _encode(self, frame: Frame) -> bytes:
        if self.spec.name == "exr":
            return self._encode_exr(self._pixels.render(frame))
        return self._encode_png(self._pixels.render_int(frame, self.depth))

    def write(self, frame: Frame, prepared: bytes | None = None) -> None:
        """Write ``frame``'s file under a temp name (renamed at :meth:`close`); ``prepared``: :meth:`prepare`'s
        result for it, if any."""
        self._check_size(frame)
        data = self._encode(frame) if prepared is None else prepared
        final = frame_file(self.path, self.cfg.start_number + frame.index)
        if not self._pending:
            self.created_dirs += ensure_folder(final.parent)
        self._tmp = temp_path(final)
        try:
            with open(self._tmp, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            remove_quietly(self._tmp)
            self._tmp = None
            raise oserror(exc, final) from None
        self._pending.append((self._tmp, final))
        self._tmp = None

    def close(self) -> None:
        """Rename every frame into place (the sequence appears only now, complete)."""
        self._pixels.close()
        for tmp, final in self._pending:
            try:
                os.replace(tmp, final)
            except OSError as exc:
                self.abort()
                raise oserror(exc, final) from None
            self.written.append(final)
        self._pending = []
        keep_folders(self.created_dirs)

    def abort(self) -> None:
        """Remove the temporaries, every frame file this writer put in place, and the folders it created when
        left empty: a failed run leaves nothing, so re-running the same command (a farm retry) does not stop
        on 'already exists'."""
        remove_quietly(self._tmp)
        self._tmp = None
        for tmp, _ in self._pending:
            remove_quietly(tmp)
        self._pending = []
        for f in self.written:
            remove_quietly(f)
        self.written = []
        self._pixels.close()
        remove_empty_folders(self.created_dirs)

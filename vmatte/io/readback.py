"""Read alpha (and RGBA) back from what vmatte writes — or any matte a user has: the evaluator's reader.

Handles RGBA videos (ProRes 4444, VP9 with alpha, FFV1, QuickTime Animation, PNG-in-MOV), gray matte videos
(alpha is the luma, range-expanded), and image sequences (PNG 8/16 bit, EXR, TIFF…: the alpha channel of RGBA
images, else the gray value). VP9 alpha is decoded with libvpx (``av.codec.CodecContext.create("libvpx-vp9",
"r")`` fed demuxed packets, skipping the empty flush packet): FFmpeg's native vp9 decoder drops the alpha plane.

Never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vmatte.errors import InputError
from vmatte.io import swscale as sws


def _is_sequence(path: str) -> list[str] | None:
    from vmatte.io.decode import IMAGE_EXTS, _sequence_files

    files = _sequence_files(path)
    if files is None and Path(path).suffix.lower() in IMAGE_EXTS and Path(path).is_file():
        return [path]
    return files


def iter_video_frames(path: str) -> Iterator:
    """Decoded av.VideoFrame objects of a video's first video stream, VP9 alpha via libvpx."""
    import av

    from vmatte.io.decode import is_vp9_alpha

    try:
        container = av.open(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable video ({exc})", hint="check the path") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path}: has no video stream")
        vs = container.streams.video[0]
        if is_vp9_alpha(vs):
            codec = av.codec.CodecContext.create("libvpx-vp9", "r")
            for packet in container.demux(vs):
                if packet.size == 0:  # the demuxer's empty flush packet would end libvpx early
                    continue
                for f in codec.decode(packet):
                    if f.pts is None:
                        f.pts = packet.pts
                    yield f, vs.time_base
            for f in codec.decode(None):
                yield f, vs.time_base
            return
        vs.thread_type = "AUTO"
        for f in container.decode(vs):
            yield f, vs.time_base


def _frame_alpha(vf) -> np.ndarray | None:
    """(H, W) float32 alpha of an av.VideoFrame with an alpha plane, else None."""
    if not any(c.is_alpha for c in vf.format.components):
        return None
    if _deep(vf):
        return sws.to_ndarray(vf, format="rgba64le")[..., 3].astype(np.float32) / np.float32(65535.0)
    # 8-bit sources through an 8-bit conversion: swscale's 8→16 bit expansion is not exact
    return sws.to_ndarray(vf, format="rgba")[..., 3].astype(np.float32) / np.float32(255.0)


def _deep(vf) -> bool:
    return max(c.bits for c in vf.format.components) > 8


def _frame_rgb(vf) -> np.ndarray:
    """(H, W, 3) float32 colour of an av.VideoFrame, decoded with the frame's own matrix and range."""
    name = vf.format.name
    if name.startswith(("gbrapf", "gbrpf", "grayf")):
        arr = sws.to_ndarray(vf, format="gbrapf32le")
        return arr[..., :3].astype(np.float32)
    if _deep(vf):
        rgb = sws.to_ndarray(vf, format="rgb48le", src_color_range=vf.color_range or None)
        return rgb.astype(np.float32) / np.float32(65535.0)
    rgb = sws.to_ndarray(vf, format="rgb24", src_color_range=vf.color_range or None)
    return rgb.astype(np.float32) / np.float32(255.0)


def frame_rgba(vf) -> np.ndarray:
    """(H, W, 4) float32 RGBA of an av.VideoFrame; alpha 1 where the frame has none."""
    rgb = _frame_rgb(vf)
    a = _frame_alpha(vf)
    if a is None:
        if vf.format.name.startswith("gbrapf"):
            a = sws.to_ndarray(vf, format="gbrapf32le")[..., 3]
        else:
            a = np.ones(rgb.shape[:2], np.float32)
    return np.concatenate([rgb, a[..., None]], axis=2)


def _read_image_rgba(path: str) -> np.ndarray:
    """(H, W, C) float32 of an image: C = 4 (RGBA), 3 (RGB) or 1 (gray); EXR values as stored (linear)."""
    if path.lower().endswith(".exr"):
        import av

        with av.open(path) as c:
            vf = next(c.decode(video=0))
        if vf.format.name.startswith("gray"):
            return sws.to_ndarray(vf, format="grayf32le")[..., None].astype(np.float32)
        return sws.to_ndarray(vf, format="gbrapf32le").astype(np.float32)
    import cv2

    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: cannot read image", hint="check the file is a valid image")
    scale = 255.0 if img.dtype == np.uint8 else 65535.0 if img.dtype == np.uint16 else 1.0
    img = img.astype(np.float32) / np.float32(scale)
    if img.ndim == 2:
        return img[..., None]
    if img.shape[2] == 4:
        return img[..., [2, 1, 0, 3]]
    return img[..., ::-1].copy()


def _seq_number(path: str, fallback: int) -> int:
    import re

    nums = re.findall(r"\d+", os.path.basename(path))
    return int(nums[-1]) if nums else fallback


def iter_alpha(path_or_pattern: str | os.PathLike) -> Iterator[tuple[int, int, np.ndarray]]:
    """Alpha of every frame of a video, image sequence (printf pattern or folder) or single image.

    Yields ``(index, pts, alpha)``: index = 0-based position in presentation order; pts = the frame's
    timestamp in its stream's time base (videos) or the number in the file name (sequences: with
    ``start_number`` 1001 the first frame has pts 1001); alpha = (H, W) float32 in [0, 1]. RGBA sources give
    their alpha channel; sources without alpha are mattes: the gray value (luma, range-expanded; for RGB
    images the mean of R, G, B).
    Raises InputError (one line) when the path cannot be read.
    """
    path = str(path_or_pattern)
    files = _is_sequence(path)
    if files is not None:
        if not files:
            raise InputError(f"{path}: no image frames found")
        for i, f in enumerate(files):
            img = _read_image_rgba(f)
            alpha = img[..., 3] if img.shape[2] == 4 else img.mean(axis=2)
            yield i, _seq_number(f, i), np.clip(alpha, 0.0, 1.0).astype(np.float32)
        return
    if not Path(path).exists():
        raise InputError(f"{path}: no such file", hint="check the matte path")
    for i, (vf, _tb) in enumerate(iter_video_frames(path)):
        a = _frame_alpha(vf)
        if a is None:
            a = _frame_rgb(vf).mean(axis=2)
        yield i, int(vf.pts if vf.pts is not None else i), np.clip(a, 0.0, 1.0).astype(np.float32)


def read_alpha_frames(path_or_pattern: str | os.PathLike) -> list[np.ndarray]:
    """All alpha frames of :func:`iter_alpha` as a list of (H, W) float32 (small clips and tests)."""
    return [a for _, _, a in iter_alpha(path_or_pattern)]


def iter_rgba(path_or_pattern: str | os.PathLike) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """(index, time_s, rgba) per frame: rgba (H, W, 4) float32 (EXR: linear values as stored; others [0, 1]).

    time_s = pts x time_base for videos, None for sequences. Gray sources come back with R = G = B.
    """
    path = str(path_or_pattern)
    files = _is_sequence(path)
    if files is not None:
        for i, f in enumerate(files):
            img = _read_image_rgba(f)
            if img.shape[2] == 1:
                img = np.concatenate([img, img, img, np.ones_like(img)], axis=2)
            elif img.shape[2] == 3:
                img = np.concatenate([img, np.ones_like(img[..., :1])], axis=2)
            yield i, None, img
        return
    for i, (vf, tb) in enumerate(iter_video_frames(path)):
        t = float(vf.pts * tb) if vf.pts is not None and tb is not None else None
        yield i, t, frame_rgba(vf)


def read_alpha_mode(path: str | os.PathLike) -> str | None:
    """'straight' / 'premultiplied' as recorded by vmatte (container tag, PNG tEXt, EXR header), else None.

    For sequences, give one frame file."""
    p = str(path)
    low = p.lower()
    if low.endswith(".png"):
        from vmatte.io.writers.sequence import png_text

        return png_text(Path(p).read_bytes()).get("vmatte:alpha")
    if low.endswith(".exr"):
        from vmatte.io.writers.sequence import exr_attributes

        return exr_attributes(Path(p).read_bytes()).get("vmatte/alpha")
    import av

    with av.open(p) as c:
        meta = dict(c.metadata)
        meta.update(c.streams.video[0].metadata if c.streams.video else {})
    for k, v in meta.items():
        if k.lower() == "vmatte_alpha":
            return v
    return None

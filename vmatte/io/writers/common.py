"""Pieces every writer shares: temp names, OS-error mapping, and turning a Frame into output pixels.

Pixel pipeline of one output frame (all float32 in [0, 1] until the last step):
colour = decontaminated foreground (if the output asks for it) else the frame's rgb → content:
rgba = colour (premultiplied on request) + alpha; alpha = the matte; composite = colour over the background →
quantised to the writer's integer depth (uint8 or uint16 full scale) or kept float (EXR).
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np

from vmatte.errors import DiskFull, OutputError, say
from vmatte.frame import Frame
from vmatte.io.atomic import temp_path as temp_path  # the one temporary-name rule, for the writers
from vmatte.io.compose import (
    Background,
    composite,
    estimate_foreground,
    needs_foreground,
    parse_color,
    premultiply,
)
from vmatte.io.config import OutputConfig


def overwrite_hint() -> str:
    """What to do about an existing output, in the caller's words (flags on the command line, fields in Python)."""
    return say(
        "pass --overwrite or choose another -o path",
        "pass RunConfig(overwrite=True) or choose another OutputConfig(path=...)",
    )


# Output folders this process created (outermost first): a failed or cancelled run removes them again when it
# leaves them empty, so nothing of it stays behind (cli/run.py's forced-exit cleanup uses this list too).
CREATED_FOLDERS: list[Path] = []


def ensure_folder(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created (outermost first) and records them in
    :data:`CREATED_FOLDERS`. OSError becomes a one-line OutputError."""
    missing: list[Path] = []
    p = Path(folder)
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    missing.reverse()
    made: list[Path] = []
    for d in missing:
        try:
            d.mkdir()
        except FileExistsError:
            continue  # another process (a farm node writing another chunk) made it first: not ours
        except OSError as exc:
            remove_empty_folders(made)
            raise OutputError(f"{d}: cannot create output folder ({exc.strerror or exc})") from None
        made.append(d)
    CREATED_FOLDERS.extend(made)
    return made


def keep_folders(folders: list[Path]) -> None:
    """A writer finished: its folders hold a complete output now and are no longer this run's to remove."""
    for d in folders:
        if d in CREATED_FOLDERS:
            CREATED_FOLDERS.remove(d)


def remove_empty_folders(folders: list[Path] | None = None) -> None:
    """Remove ``folders`` (default: every one in :data:`CREATED_FOLDERS`), innermost first, where empty."""
    todo = list(CREATED_FOLDERS if folders is None else folders)
    for d in sorted(todo, key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()
        except OSError:
            continue  # not empty (outputs of a good run, another chunk's frames) or already gone
        if d in CREATED_FOLDERS:
            CREATED_FOLDERS.remove(d)


def oserror(exc: OSError, path: Path) -> Exception:
    """OSError while writing ``path`` → DiskFull (retryable) or OutputError, one line."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"{path}: no space left on device", hint="free space or write elsewhere; nothing partial was kept"
        )
    return OutputError(f"{path}: write failed ({exc.strerror or exc})")


def alpha_note(cfg: OutputConfig) -> str:
    """'straight' or 'premultiplied' (what RGBA outputs record in their metadata)."""
    return "premultiplied" if cfg.premultiplied else "straight"


def comment_for(cfg: OutputConfig) -> str:
    """Human-readable container comment describing the alpha convention of this output."""
    if cfg.content == "rgba":
        return f"vmatte: RGBA, {alpha_note(cfg)} alpha" + (
            ", decontaminated edges" if cfg.decontaminate else ""
        )
    if cfg.content == "alpha":
        return "vmatte: alpha matte (gray: white = foreground)"
    return f"vmatte: composite over {cfg.background}"


class PixelSource:
    """Renders a frame's output pixels for one output config.

    ``render(frame)`` → float32 in [0, 1]: (H, W, 4) RGBA for content="rgba", (H, W) for "alpha",
    (H, W, 3) for "composite". Frames without alpha are treated as fully opaque.
    ``start_time_s`` is the clip's first frame time, so a background clip starts with the input.
    """

    def __init__(self, cfg: OutputConfig, start_time_s: float = 0.0) -> None:
        self.cfg = cfg
        self.start_time_s = start_time_s
        self.background = Background(cfg.background) if cfg.content == "composite" else None
        # render() may run on several threads at once, except over a clip or image background (read in order,
        # resized once and cached)
        self.thread_safe = self.background is None or parse_color(cfg.background) is not None

    def colour(self, frame: Frame, alpha: np.ndarray) -> np.ndarray:
        if needs_foreground(self.cfg):
            if frame.foreground is not None:
                return frame.foreground
            if frame.alpha is not None:
                # standalone use (the runner normally sets Frame.foreground once for all writers)
                return estimate_foreground(frame.rgb_float(), alpha)
        return frame.rgb_float()

    def render(self, frame: Frame) -> np.ndarray:
        alpha = frame.alpha if frame.alpha is not None else np.ones(frame.rgb.shape[:2], np.float32)
        alpha = np.clip(alpha, 0.0, 1.0)
        content = self.cfg.content
        if content == "alpha":
            return alpha
        col = self.colour(frame, alpha)
        if content == "composite":
            assert self.background is not None
            t = (frame.time_s if frame.time_s is not None else float(frame.index) / 24.0) - self.start_time_s
            bg = self.background.at(t, frame.width, frame.height)
            return np.clip(composite(col, alpha, bg), 0.0, 1.0)
        if self.cfg.premultiplied:
            col = premultiply(col, alpha)
        out = np.empty((*alpha.shape, 4), np.float32)
        out[..., :3] = col
        out[..., 3] = alpha
        return out

    def render_int(self, frame: Frame, depth: int) -> np.ndarray:
        """:meth:`render` quantised to uint8 (depth 8) or uint16 (deeper), same layouts.

        Fast path (straight RGBA, and mattes): the colour is taken from the integer rgb as is (8→16 bit by
        x257, exact: what quantising :meth:`Frame.rgb_float` gives), so only alpha is converted, and a
        decontaminated foreground only inside ``Frame.foreground_boxes`` (the band's tiles); at 1080p this
        saves most of a second per frame over the float path on a loaded 2-core machine (0.01 CPU s on an
        idle one with a decontaminated ~3 % band)."""
        content = self.cfg.content
        if content == "alpha":
            alpha = frame.alpha if frame.alpha is not None else np.ones(frame.rgb.shape[:2], np.float32)
            return quantize(alpha, depth)
        # colour is the frame's own rgb unless a foreground is wanted (and computable: alpha exists)
        own_rgb = not needs_foreground(self.cfg) or frame.alpha is None
        boxes = None if own_rgb or frame.foreground is None else frame.foreground_boxes
        if content == "rgba" and not self.cfg.premultiplied and (own_rgb or boxes is not None):
            h, w = frame.rgb.shape[:2]
            out = np.empty((h, w, 4), np.uint8 if depth <= 8 else np.uint16)
            src = frame.rgb
            if out.dtype == src.dtype:
                out[..., :3] = src
            elif out.dtype == np.uint16:
                np.multiply(src, 257, out=out[..., :3], dtype=np.uint16)
            else:
                out[..., :3] = frame.rgb_u8()
            if frame.alpha is None:
                out[..., 3] = np.iinfo(out.dtype).max
            else:
                out[..., 3] = quantize(frame.alpha, depth)
            for y0, y1, x0, x1 in boxes or ():
                out[y0:y1, x0:x1, :3] = quantize(frame.foreground[y0:y1, x0:x1], depth)
            return out
        return quantize(self.render(frame), depth)

    def close(self) -> None:
        if self.background is not None:
            self.background.close()


def quantize(img: np.ndarray, depth: int) -> np.ndarray:
    """float32 [0, 1] → uint8 (depth 8) or uint16 full scale 0..65535 (any deeper depth), rounded."""
    scale = np.float32(255.0 if depth <= 8 else 65535.0)
    buf = np.clip(img, 0.0, 1.0)  # one temporary, then in place: these are full frames at video rate
    buf *= scale
    buf += np.float32(0.5)
    return buf.astype(np.uint8 if depth <= 8 else np.uint16)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded float → linear light (IEC 61966-2-1 EOTF), float32; the inverse of decode.py's EXR read."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)


def remove_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        pass

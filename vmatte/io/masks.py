"""Keyframe masks: a folder of images, one per keyframe, named by frame number → :class:`Keyframes`.

Everything a user can get wrong is checked here, before any model loads, and reported as one
:class:`~vmatte.errors.MaskError` line that names the file and the fix.

Rules (decided here, documented for users):

- **Frame number** = the LAST group of digits in the file stem: ``000120.png``, ``frame_120.png``,
  ``mask.0120.png`` and ``shot_v2.0120.png`` are all frame 120 (0-based clip frame numbers).
- **Accepted images**: .png .jpg .jpeg .tif .tiff .bmp .webp .exr; 8 or 16 bit (or float EXR); gray, RGB,
  RGBA, palette. An alpha channel that is not fully opaque is the mask; otherwise the colour planes are. A gray
  image (or colour with R = G = B, or a palette of grays) is read by value. A colour-coded mask (palette or RGB
  with real colours, e.g. DAVIS-style label PNGs) is read as binary: palette entry 0 (or pure black for RGB) is
  background, any other colour is foreground.
- **Kind** is detected per file: ``binary`` (values only 0 and full scale), ``trimap`` (0, mid, full scale with
  mid present; mid = 128 at 8 bit, 32768 ± 128 at 16 bit) or ``alpha`` (anything else, a soft matte).
- **Other files** (no image extension: notes, ``.DS_Store``, ``Thumbs.db``) are ignored with a warning;
  hidden files silently. An image file that cannot be decoded is an error (a corrupt export must not be
  skipped silently: it would change the result).
- **All-black masks** are accepted (the object may have left the frame) and warned about; if *every* mask is
  all black there is nothing to matte and that is an error. **All-white masks** are accepted with a warning
  (a full-frame foreground is rare and usually an inverted or unexported mask).
- **Which file became which frame** is summarised in :meth:`Keyframes.mapping` (the run prints it). A number
  glued to a word that is not a frame word (``test-sample1.png``, ``mask_v2.png``, ``take3.png``) is probably
  not a frame number: it is still used, with a warning.
- **Binary masks saved as JPEG/WebP** (lossy: values scattered near 0 and full scale around the edge) are read
  as binary, with a warning, instead of as a soft alpha whose noise would make most of the frame "unknown".
- Errors: missing / empty folder, image without a frame number, two files for one frame, frame number beyond
  the clip, size different from the clip, unreadable file.

Memory: :func:`load_keyframes` decodes each file once to validate and classify it, keeps only small
statistics, and decodes again on :meth:`Keyframes.get` (masks are few; a 4K mask is 8 MB decoded).

This module never imports torch.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vmatte.errors import MaskError
from vmatte.frame import KeyframeKind

log = logging.getLogger(__name__)

MASK_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr")
MaskKind = KeyframeKind  # the one list of kinds lives with the Frame that carries it
_DIGITS = re.compile(r"\d+")
# words a frame number is commonly glued to (frame120.png, f0120.png, key12.png); any other word before the
# number (sample1, v2, take3) makes it look like a name or a version, not a frame
_FRAME_WORDS = {
    "frame",
    "frames",
    "frm",
    "fr",
    "f",
    "keyframe",
    "key",
    "kf",
    "k",
    "mask",
    "m",
    "img",
    "image",
}
_LOSSY = (".jpg", ".jpeg", ".webp")
# a lossy-compressed binary mask: this share of pixels lies within _NEAR levels (8 bit) of 0 or full scale
_NEAR, _NEAR_SHARE = 40, 0.97


@dataclass(frozen=True)
class KeyframeInfo:
    """What validation learnt about one keyframe file (no pixels kept).

    index: 0-based clip frame number. kind: binary / trimap / alpha. fg_fraction: share of pixels with
    mask value >= 0.5 (0 = all black, 1 = all white). bit_depth: 8, 16 or 32 (float). pad: (columns, rows)
    of background added at the right and bottom to reach the clip size (see :func:`codec_padding`).
    """

    index: int
    path: str
    kind: MaskKind
    fg_fraction: float
    bit_depth: int
    pad: tuple[int, int] = (0, 0)


@dataclass
class Keyframes:
    """Validated keyframe masks of one clip. Pixels are decoded on demand by :meth:`get`.

    width, height: the clip size every mask has. warnings: one-line notes for the run report.
    """

    folder: str
    width: int
    height: int
    items: dict[int, KeyframeInfo]
    warnings: list[str] = field(default_factory=list)

    @property
    def indices(self) -> list[int]:
        """Sorted 0-based frame numbers that have a mask."""
        return sorted(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def mapping(self, limit: int = 8) -> str:
        """One line: which file became which frame, e.g. ``keyframes: 000000.png -> 0, 000060.png -> 60``."""
        pairs = [f"{Path(i.path).name} -> {n}" for n, i in sorted(self.items.items())]
        if len(pairs) > limit:  # first ones, the last one, and how many
            pairs = [*pairs[: limit - 1], "...", f"{pairs[-1]} ({len(pairs)} masks)"]
        return "keyframes: " + ", ".join(pairs)

    def __contains__(self, index: int) -> bool:
        return index in self.items

    def kind(self, index: int) -> MaskKind:
        return self.items[index].kind

    def get(self, index: int) -> tuple[MaskKind, np.ndarray]:
        """The mask of keyframe ``index`` as (kind, array), array (H, W) at clip size:

        - ``binary``: uint8 {0, 255};
        - ``trimap``: uint8 {0, 128, 255};
        - ``alpha``: float32 in [0, 1].
        """
        info = self.items[index]
        arr = _as_kind(_read_mask_value(info.path), info.kind)
        dx, dy = info.pad
        if dx or dy:  # the clip's codec padding: background (0 in every kind)
            arr = np.pad(arr, ((0, dy), (0, dx)))
        return info.kind, arr

    def probability(self, index: int) -> np.ndarray:
        """(H, W) float32 in [0, 1]: the keyframe as a foreground probability (trimap unknown = 0.5)."""
        kind, arr = self.get(index)
        if kind == "alpha":
            return arr
        return arr.astype(np.float32) * np.float32(1.0 / 255.0)


def frame_number(name: str) -> int | None:
    """Frame number carried by a file name: the last digit group of the stem (None when there is none)."""
    stem = Path(name).name
    for ext in MASK_EXTS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    else:
        stem = Path(name).stem
    groups = _DIGITS.findall(stem)
    return int(groups[-1]) if groups else None


def number_doubt(name: str) -> str | None:
    """Why the frame number read from ``name`` is probably not one (a version, a sample number), or None."""
    stem = Path(name).name
    low = stem.lower()
    for ext in MASK_EXTS:
        if low.endswith(ext):
            stem = stem[: -len(ext)]
            break
    m = list(re.finditer(r"([A-Za-z]*)(\d+)", stem))
    if not m:
        return None
    word = m[-1].group(1).lower()
    if not word or word in _FRAME_WORDS:
        return None
    if word == "v" or word.endswith("_v") or word in ("ver", "version", "rev", "take", "tk"):
        return f"'{word}{m[-1].group(2)}' looks like a version number"
    return f"the number is part of the word '{word}{m[-1].group(2)}'"


def _png_header(path: str) -> dict | None:
    """Parse the chunks of a PNG up to IDAT: size, bit depth, colour type, palette (RGB triples). None if not PNG."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            out: dict = {}
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return out or None
                length, ctype = struct.unpack(">I4s", head)
                if ctype == b"IDAT" or length > 1 << 24:
                    return out
                data = f.read(length)
                f.read(4)  # crc
                if ctype == b"IHDR" and len(data) >= 10:
                    out["width"], out["height"], out["bit_depth"], out["color_type"] = struct.unpack(
                        ">IIBB", data[:10]
                    )
                elif ctype == b"PLTE":
                    out["palette"] = np.frombuffer(data, np.uint8).reshape(-1, 3)
    except OSError:
        return None


def _read_mask_value(path: str) -> np.ndarray:
    """Decode a mask file → (H, W) value plane: uint8, uint16 or float32 (EXR). Raises MaskError naming the file.

    Colour-coded masks (palette with real colours, RGB with R != G != B) come back as uint8 {0, 255}.
    """
    import cv2

    if path.lower().endswith(".exr"):
        os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    try:
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise MaskError(f"{path}: cannot read this mask image", hint="re-export it as PNG (8 or 16 bit)")
    if img.dtype not in (np.uint8, np.uint16, np.float32, np.float16):
        raise MaskError(
            f"{path}: unsupported pixel type {img.dtype}", hint="re-export the mask as 8 or 16 bit PNG"
        )
    if img.dtype == np.float16:
        img = img.astype(np.float32)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return img
    full = 1.0 if img.dtype == np.float32 else float(np.iinfo(img.dtype).max)
    if img.shape[2] == 4:
        a = img[:, :, 3]
        # a fully opaque alpha carries nothing: the mask is in the colour planes then
        if a.min() < full:
            return np.ascontiguousarray(a)
        img = img[:, :, :3]
    b, g, r = img[:, :, 0], img[:, :, 1], img[:, :, 2]
    if np.array_equal(b, g) and np.array_equal(g, r):
        return np.ascontiguousarray(g)
    # real colours: a label image. Background is palette entry 0 (or black), everything else foreground.
    bg = np.zeros(3, img.dtype)
    head = _png_header(path) if path.lower().endswith(".png") else None
    if head and head.get("color_type") == 3 and head.get("palette") is not None and len(head["palette"]):
        bg = head["palette"][0][::-1].astype(img.dtype)  # RGB → BGR
    fg = np.any(img != bg, axis=2)
    return np.where(fg, 255, 0).astype(np.uint8)


def near_binary_share(value: np.ndarray) -> float:
    """Share of pixels within ``_NEAR``/255 of 0 or full scale (1.0 for a clean binary mask)."""
    if value.dtype == np.float32:
        v = np.clip(np.nan_to_num(value), 0, 1)
        near = _NEAR / 255.0
        return float(np.mean((v <= near) | (v >= 1 - near)))
    full = int(np.iinfo(value.dtype).max)
    near = _NEAR * (full // 255)
    return float(np.mean((value <= near) | (value >= full - near)))


def _classify(value: np.ndarray) -> tuple[MaskKind, float]:
    """(kind, foreground fraction) of a value plane (uint8 / uint16 / float32)."""
    if value.dtype == np.float32:
        v = np.clip(np.nan_to_num(value), 0, 1)
        fg = float(np.mean(v >= 0.5))
        if np.all((v == 0) | (v == 1)):
            return "binary", fg
        return "alpha", fg
    full = int(np.iinfo(value.dtype).max)
    if value.dtype == np.uint8:
        counts = np.bincount(value.ravel(), minlength=256)
        present = np.flatnonzero(counts)
        mids = {127, 128}
    else:
        present = np.unique(value)
        mids = set(range(32768 - 128, 32768 + 129))
    fg = float(np.mean(value >= (full + 1) // 2))
    others = [int(p) for p in present if p not in (0, full)]
    if not others:
        return "binary", fg
    if all(p in mids for p in others) and len(others) <= 2:
        return "trimap", fg
    return "alpha", fg


def _as_kind(value: np.ndarray, kind: MaskKind) -> np.ndarray:
    """Convert a value plane to the array :meth:`Keyframes.get` promises for ``kind``."""
    if value.dtype == np.float32:
        a = np.clip(np.nan_to_num(value), 0, 1).astype(np.float32)
    else:
        a = value.astype(np.float32) * np.float32(1.0 / np.iinfo(value.dtype).max)
    if kind == "alpha":
        return a
    if kind == "binary":
        return np.where(a >= 0.5, 255, 0).astype(np.uint8)
    out = np.full(a.shape, 128, np.uint8)
    out[a < 0.25] = 0
    out[a > 0.75] = 255
    return out


def _size_hint(w: int, h: int, info) -> str:
    """The fix for a mask of the wrong size. Phone clips are stored landscape with a display rotation: a mask
    drawn on the picture as displayed is the stored size turned 90 degrees."""
    rotation = int(getattr(info, "rotation", 0) or 0) % 360
    if (w, h) == (info.height, info.width) and rotation in (90, 270):
        return (
            f"the clip is stored {info.width}x{info.height} and displayed rotated {rotation} degrees; "
            "export masks in the stored orientation (rotate them back) at clip resolution"
        )
    return "export masks at clip resolution"


# coded frame sizes are multiples of 8 or 16 (H.264 macroblocks); a stream that does not signal the crop
# back to the picture size decodes with up to 15 extra rows / columns at the bottom / right
_ALIGN, _MAX_PAD = 8, 15


def codec_padding(w: int, h: int, info) -> tuple[int, int] | None:
    """(columns, rows) a ``w`` x ``h`` mask lacks at the right and bottom of the clip when the clip's frames
    are the picture plus the codec's alignment padding (e.g. a 1920x1080 picture stored as 1920x1088 without
    crop information: MatAnyone's own test-sample2.mp4). None when the sizes differ in any other way."""
    dx, dy = int(info.width) - w, int(info.height) - h
    if (dx, dy) == (0, 0) or not (0 <= dx <= _MAX_PAD and 0 <= dy <= _MAX_PAD):
        return None
    if (dx and info.width % _ALIGN) or (dy and info.height % _ALIGN):
        return None
    return dx, dy


def load_keyframes(folder: str | os.PathLike, info) -> Keyframes:
    """Validate and classify the keyframe masks in ``folder`` for a clip described by ``info`` (a ClipInfo:
    ``width``, ``height``, ``frame_count`` are used). Raises :class:`MaskError` (one line) on the first
    problem; collects warnings (ignored files, all-black / all-white masks) in ``Keyframes.warnings``.
    """
    folder = str(folder)
    p = Path(folder)
    if not p.exists():
        raise MaskError(
            f"{folder}: keyframe mask folder not found",
            hint="pass --masks a folder of mask images named by frame number",
        )
    if not p.is_dir():
        raise MaskError(
            f"{folder}: is a file, not a folder", hint="pass --masks the folder that holds the mask images"
        )
    warnings: list[str] = []
    by_frame: dict[int, str] = {}
    for entry in sorted(p.iterdir(), key=lambda e: e.name):
        name = entry.name
        if name.startswith(".") or entry.is_dir():
            continue
        if not name.lower().endswith(MASK_EXTS):
            warnings.append(f"{entry}: not an image ({Path(name).suffix or 'no extension'}), ignored")
            continue
        n = frame_number(name)
        if n is None:
            raise MaskError(
                f"{entry}: file name has no frame number",
                hint="name masks by clip frame, e.g. 000120.png or shot.0120.png (the last number is the frame)",
            )
        if n in by_frame:
            raise MaskError(
                f"{entry} and {Path(by_frame[n]).name} are both masks for frame {n}",
                hint="keep one mask per frame",
            )
        by_frame[n] = str(entry)
        doubt = number_doubt(name)
        if doubt:
            warnings.append(
                f"{entry}: read as keyframe {n}, but {doubt}: name masks by clip frame (e.g. {n:06d}.png)"
            )
    if not by_frame:
        raise MaskError(
            f"{folder}: no mask images found",
            hint=f"put one mask per keyframe named by frame number ({', '.join(MASK_EXTS)})",
        )
    count = int(info.frame_count)
    for n, path in sorted(by_frame.items()):
        if n >= count:
            raise MaskError(
                f"{path} is for frame {n} but the clip has {count} frames (0-{count - 1})",
                hint="frame numbers are 0-based clip frames: rename or remove the mask",
            )
    items: dict[int, KeyframeInfo] = {}
    for n, path in sorted(by_frame.items()):
        head = _png_header(path) if path.lower().endswith(".png") else None
        if (
            head
            and "width" in head
            and (head["width"], head["height"]) != (info.width, info.height)
            and codec_padding(head["width"], head["height"], info) is None
        ):
            # cheap check from the header before decoding anything
            raise MaskError(
                f"{path} is {head['width']}x{head['height']} but the clip is {info.width}x{info.height}",
                hint=_size_hint(head["width"], head["height"], info),
            )
        value = _read_mask_value(path)
        h, w = value.shape[:2]
        pad = (0, 0)
        if (w, h) != (info.width, info.height):
            found = codec_padding(w, h, info)
            if found is None:
                raise MaskError(
                    f"{path} is {w}x{h} but the clip is {info.width}x{info.height}",
                    hint=_size_hint(w, h, info),
                )
            pad = found
            extra = [
                f"{n} {what}"
                for n, what in ((pad[1], "rows at the bottom"), (pad[0], "columns at the right"))
                if n
            ]
            warnings.append(
                f"{path} is {w}x{h} and the clip {info.width}x{info.height}: the clip's extra {' and '.join(extra)} "
                "read as codec padding, the mask as background there"
            )
        kind, fg = _classify(value)
        if (
            kind == "alpha"
            and path.lower().endswith(_LOSSY)
            and (share := near_binary_share(value)) >= _NEAR_SHARE
        ):
            # compression noise around a hard edge, not a soft matte: read as soft alpha, the noise would make
            # most of the keyframe's trimap "unknown" (measured: 91.6 % against 4.0 % from the PNG)
            kind = "binary"
            warnings.append(
                f"{path}: a binary mask saved as {Path(path).suffix[1:].upper()} ({100 * share:.1f} % of pixels "
                "near black or white, the rest compression noise): read as binary; save masks as PNG"
            )
        depth = 32 if value.dtype == np.float32 else 8 * value.dtype.itemsize
        items[n] = KeyframeInfo(index=n, path=path, kind=kind, fg_fraction=fg, bit_depth=depth, pad=pad)
        if fg == 0.0 and kind != "trimap":
            warnings.append(f"{path}: mask is all black (object absent on frame {n})")
        elif fg == 1.0:
            warnings.append(f"{path}: mask is all white (whole frame foreground): check it is not inverted")
    if all(i.fg_fraction == 0.0 and i.kind != "trimap" for i in items.values()):
        raise MaskError(
            f"{folder}: every mask is all black, so there is no object to matte",
            hint="draw the object in white (255) on black (0)",
        )
    for w_ in warnings:
        log.warning(w_)
    return Keyframes(
        folder=folder, width=int(info.width), height=int(info.height), items=items, warnings=warnings
    )

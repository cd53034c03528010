"""Where propagation keeps its per-frame state: the compact result store and the per-segment scratch.

- :class:`ResultStore`: per prepared frame, the foreground probability and the unknown map at working
  resolution, each 8 bit and PNG-compressed (a few kB a frame), plus a confidence; :meth:`ResultStore.full`
  rebuilds the full-resolution trimap, mask and probability from them.
- :class:`Scratch`: arrays of the frames waiting for the next keyframe (the backward chain needs them), in RAM
  up to a budget, then in an anonymous temporary file.

numpy + OpenCV only.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from vmatte.frame import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN

assert (TRIMAP_BG, TRIMAP_FG) == (0, 255)  # ResultStore.full builds the trimap from a 0/255 mask

_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def pack(a: np.ndarray) -> bytes:
    """(H, W) uint8 → PNG bytes (fast compression: these are re-read once)."""
    ok, buf = cv2.imencode(".png", a, _PNG)
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 2-D arrays
        raise RuntimeError("PNG encode failed")
    return buf.tobytes()


def unpack(b: bytes) -> np.ndarray:
    """PNG bytes → (H, W) uint8."""
    return cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED)


def to_u8(p: np.ndarray) -> np.ndarray:
    """Probability (H, W) float in [0, 1] → uint8 0..255, rounded."""
    return np.clip(p * 255 + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Compact:
    """One frame's result: PNG bytes of the probability (uint8 0..255) and of the unknown map (uint8 {0, 255}),
    both (wh, ww) at working resolution."""

    prob: bytes
    unknown: bytes

    @property
    def nbytes(self) -> int:
        return len(self.prob) + len(self.unknown)


class ResultStore:
    """Frame number → :class:`Compact` result, and frame number → confidence in [0, 1] (``confidence``, a plain
    dict the report reads). Iterating yields the stored frame numbers.

    work: (ww, wh) working size in px; full: (width, height) of the clip in px."""

    def __init__(self, work: tuple[int, int], full: tuple[int, int]) -> None:
        self.work, self.full_size = work, full
        self.frames: dict[int, Compact] = {}
        self.confidence: dict[int, float] = {}

    def put(self, t: int, p_u8: np.ndarray, unknown: np.ndarray, confidence: float) -> None:
        """Store frame t: probability (wh, ww) uint8 0..255, unknown (wh, ww) bool, confidence (rounded to 4
        decimals here)."""
        self.frames[t] = Compact(pack(p_u8), pack(unknown.astype(np.uint8) * 255))
        self.confidence[t] = round(confidence, 4)

    def __contains__(self, t: object) -> bool:
        return t in self.frames

    def __iter__(self) -> Iterator[int]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def nbytes(self) -> int:
        """Bytes of all compact results (the report's ``compact_bytes``)."""
        return sum(c.nbytes for c in self.frames.values())

    def work_result(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(probability (wh, ww) uint8 0..255, unknown (wh, ww) bool) of a stored frame."""
        c = self.frames[t]
        return unpack(c.prob), unpack(c.unknown) > 0

    def full(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(trimap (H, W) uint8 {0, 128, 255}, mask (H, W) uint8 {0, 255}, probability (H, W) uint8 0..255) at
        the clip's size: probability and unknown map upsampled bilinearly, the mask at probability 0.5, unknown
        wherever any upsampled unknown value is above 0 (the band never narrows by the upsampling)."""
        c = self.frames[t]
        p, unk = unpack(c.prob), unpack(c.unknown)  # unknown stored as uint8 {0, 255}
        if self.full_size != self.work:
            p = cv2.resize(p, self.full_size, interpolation=cv2.INTER_LINEAR)
            unk = cv2.resize(unk, self.full_size, interpolation=cv2.INTER_LINEAR)
        # uint8 {0, 255} = {TRIMAP_BG, TRIMAP_FG} where p >= 128, without bool / int64 full-frame temporaries
        mask = cv2.compare(p, 128, cv2.CMP_GE)
        tri = mask.copy()
        tri[unk > 0] = TRIMAP_UNKNOWN
        return tri, mask, p


class Scratch:
    """Per-segment arrays (frames waiting for the next keyframe): in RAM up to ``budget`` bytes, then in an
    anonymous temporary file, so a long gap between keyframes costs disk, not memory. A frame holds about
    1.9 MB at a 640x360 working size (probability, reliability, grey, flow, consistency, colour bins): the
    default 64 MB keeps ~35 frames in RAM; the rest goes through the page cache (~1 ms per frame)."""

    def __init__(self, budget: int = 64 << 20, disk_limit: int | None = None) -> None:
        self.budget = budget
        self.disk_limit = disk_limit  # bytes the file may reach (None: no limit)
        self.ram: dict[int, tuple[np.ndarray, ...]] = {}
        self.disk: dict[int, list[tuple[int, tuple, str]]] = {}
        self.used = 0
        self.file = None
        self.end = 0

    def __contains__(self, key: int) -> bool:
        return key in self.ram or key in self.disk

    def put(self, key: int, *arrays: np.ndarray) -> bool:
        """Keep ``arrays`` under ``key``; False (nothing kept) when RAM is full and the file would pass
        ``disk_limit``. The file only grows (``pop`` frees RAM, not disk) until :meth:`clear`."""
        size = sum(a.nbytes for a in arrays)
        if self.used + size <= self.budget:
            self.ram[key] = arrays
            self.used += size
            return True
        if self.disk_limit is not None and self.end + size > self.disk_limit:
            return False
        if self.file is None:
            self.file = tempfile.TemporaryFile(prefix="vmatte-prop-")  # noqa: SIM115 - closed in clear()
        metas = []
        for a in arrays:
            a = np.ascontiguousarray(a)
            os.pwrite(self.file.fileno(), a.tobytes(), self.end)
            metas.append((self.end, a.shape, a.dtype.str))
            self.end += a.nbytes
        self.disk[key] = metas
        return True

    def pop(self, key: int) -> tuple[np.ndarray, ...]:
        if key in self.ram:
            arrays = self.ram.pop(key)
            self.used -= sum(a.nbytes for a in arrays)
            return arrays
        out = []
        for off, shape, dt in self.disk.pop(key):
            n = int(np.prod(shape)) * np.dtype(dt).itemsize
            out.append(np.frombuffer(os.pread(self.file.fileno(), n, off), dt).reshape(shape))
        return tuple(out)

    def clear(self) -> None:
        self.ram.clear()
        self.disk.clear()
        self.used = 0
        if self.file is not None:
            self.file.close()
            self.file = None
            self.end = 0

"""The one type that flows through the chain: decode → propagate → matte → smooth → encode.

Every stage takes a :class:`Frame` and returns ``dataclasses.replace(frame, ...)`` with the fields it adds.
Timestamps (``pts`` in ``time_base`` units) travel untouched from decoder to encoder: they are never rebuilt
from a rounded frame rate, which is what keeps variable-frame-rate clips and audio in sync.

Numpy only: torch tensors live inside the engine and never leave it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, get_args

import numpy as np

TRIMAP_BG = 0
TRIMAP_UNKNOWN = 128
TRIMAP_FG = 255

# what the user drew for a keyframe: a binary mask, a trimap, or a soft alpha matte (vmatte.io.masks)
KeyframeKind = Literal["binary", "trimap", "alpha"]


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One video frame and what the chain has learnt about it.

    Attributes:
        index: 0-based frame number in the clip (decode order after reordering = presentation order).
        pts: presentation timestamp in ``time_base`` units, as demuxed (None only for image sequences
            without timing; the decoder then synthesises ``index`` with the sequence's time base).
        time_base: seconds per pts tick.
        rgb: (H, W, 3) uint8 (8-bit sources) or uint16 full-scale 0..65535 (sources with more than 8 bits,
            so 10/12-bit footage stays deep into deep outputs). Use :meth:`rgb_u8` / :meth:`rgb_float`.
        trimap: (H, W) uint8 with values in {0, 128, 255} (background, unknown, foreground), or None.
        alpha: (H, W) float32 in [0, 1], straight (not premultiplied), or None.
        foreground: (H, W, 3) float32 in [0, 1], decontaminated foreground colour, or None (then ``rgb``).
        keyframe: True when the user drew a mask for this frame.
        keyframe_kind: at a keyframe, what the user drew: "binary" (a mask: the matte is held to it and its
            band gets the engine's margin like every other frame's), "trimap" or "alpha" (used as given); None
            on other frames and on keyframes whose kind nobody told (a frame from outside the propagator).
        confidence: propagation confidence in [0, 1] for this frame's trimap (1 at keyframes), or None.
        motion: a :class:`~vmatte.motion.shared.FrameMotion` (this frame's scene-cut decision and the run's
            shared flow store, attached by propagation so that smoothing reuses both), or None.
        foreground_boxes: (y0, y1, x0, x1) boxes outside which ``foreground`` equals :meth:`rgb_float` (what
            decontamination on the soft band's tiles guarantees), so writers convert only those boxes; None
            when it may differ anywhere.
        prior: (H, W) uint8 0..255, the foreground probability the trimap was cut from (255 = surely
            foreground; at a keyframe the drawn mask or alpha), or None (a drawn trimap, a trimap from outside).
            The classic engine leans on it inside the unknown band where colour does not decide
            (vmatte.engine.classic); ViTMatte reads the trimap only.
        band_margin: how much the engine widens this frame's band before matting it, as a fraction of the
            frame's short side, when the run chose it from the matte of the keyframe before this frame (how
            soft that edge was, ``Engine.margin_after``); None = the engine's own (``[engine] band_margin``).
    """

    index: int
    pts: int | None
    time_base: Fraction | None
    rgb: np.ndarray
    trimap: np.ndarray | None = None
    alpha: np.ndarray | None = None
    foreground: np.ndarray | None = None
    keyframe: bool = False
    keyframe_kind: KeyframeKind | None = None
    confidence: float | None = None
    motion: object | None = None
    foreground_boxes: tuple[tuple[int, int, int, int], ...] | None = None
    prior: np.ndarray | None = None
    band_margin: float | None = None

    def __post_init__(self) -> None:
        rgb = self.rgb
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(
                f"Frame {self.index}: rgb must be (H, W, 3), got {getattr(rgb, 'shape', type(rgb))}"
            )
        if rgb.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"Frame {self.index}: rgb must be uint8 or uint16, got {rgb.dtype}")
        hw = rgb.shape[:2]
        if self.keyframe_kind is not None and (
            not self.keyframe or self.keyframe_kind not in get_args(KeyframeKind)
        ):
            raise ValueError(
                f"Frame {self.index}: keyframe_kind must be one of {get_args(KeyframeKind)} on a keyframe, "
                f"got {self.keyframe_kind!r} (keyframe={self.keyframe})"
            )
        if self.trimap is not None:
            t = self.trimap
            if t.shape != hw or t.dtype != np.uint8:
                raise ValueError(f"Frame {self.index}: trimap must be {hw} uint8, got {t.shape} {t.dtype}")
        if self.prior is not None:
            q = self.prior
            if q.shape != hw or q.dtype != np.uint8:
                raise ValueError(f"Frame {self.index}: prior must be {hw} uint8, got {q.shape} {q.dtype}")
        if self.alpha is not None:
            a = self.alpha
            if a.shape != hw or a.dtype != np.float32:
                raise ValueError(f"Frame {self.index}: alpha must be {hw} float32, got {a.shape} {a.dtype}")
        if self.foreground is not None:
            f = self.foreground
            if f.shape != (*hw, 3) or f.dtype != np.float32:
                raise ValueError(
                    f"Frame {self.index}: foreground must be {(*hw, 3)} float32, got {f.shape} {f.dtype}"
                )

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def bit_depth(self) -> int:
        """8 for uint8 rgb, 16 for uint16 rgb (the container's real depth is in ClipInfo.bit_depth)."""
        return 8 if self.rgb.dtype == np.uint8 else 16

    @property
    def time_s(self) -> float | None:
        """Presentation time in seconds, or None when the frame has no timing."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    def rgb_u8(self) -> np.ndarray:
        """(H, W, 3) uint8 view/copy of rgb (rounded from 16 bit when needed)."""
        if self.rgb.dtype == np.uint8:
            return self.rgb
        return ((self.rgb.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)

    def rgb_float(self) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1]."""
        scale = 255.0 if self.rgb.dtype == np.uint8 else 65535.0
        return self.rgb.astype(np.float32) * np.float32(1.0 / scale)

    def replace(self, **changes) -> Frame:
        """``dataclasses.replace`` with validation (stages use this to add trimap/alpha/foreground)."""
        return dataclasses.replace(self, **changes)

"""The ViTMatte engine: transformers' ``VitMatteForImageMatting`` behind the batching push/flush protocol.

Per batch (frames of one size, all with unknown pixels):

    host: pack rgb (H, W, 3) uint8 + trimap (H, W) uint8 → pinned (B, H, W, 4) uint8   [DeviceRunner.host_buffer]
    h2d stream: upload 4 bytes/px (not 16 bytes/px of float32)
    compute stream: preprocess on the device (the numbers of VitMatteImageProcessor: rgb/255, (x-0.5)/0.5; trimap/255
        as channel 4, not normalised; zero-pad bottom/right to a multiple of 32) → model under autocast → sigmoid
        alphas (B, 1, Hp, Wp) → crop to (B, H, W) float32
    d2h stream: download into a pinned buffer; the host copies it out and clamps to the trimap (base class)

Frames too large for the memory budget are matted in overlapping tiles (feathered blend); tiles with no unknown
pixels skip the model. Out-of-memory halves the batch and retries the same frames (none lost); at batch size 1 it
switches to tiles, halving the tile size down to 256 px before giving up with :class:`~vmatte.errors.OutOfMemory`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vmatte.engine.base import BatchingEngine
from vmatte.engine.crops import common_boxes, crop_box, paste
from vmatte.engine.cuda import (
    DeviceRunner,
    Ticket,
    cap_process_memory,
    exact_fp32,
    is_oom,
    resolve_device,
    resolve_precision,
    uncap_process_memory,
)
from vmatte.engine.tiling import TiledFrame, blend_tiles, tile_starts
from vmatte.errors import OutOfMemory
from vmatte.frame import TRIMAP_UNKNOWN, Frame

SIZE_DIVISOR = 32  # VitMatteImageProcessor.size_divisor: ViT patch 16 x decoder's stride-2 stages
MIN_TILE = 256
TILE_OVERLAP = 64  # px shared by neighbouring tiles, feathered (was the option engine.tile_overlap)
CROP_MARGIN = 64  # px of context around the unknown band in a crop (was engine.crop_margin; bench_crops.py)
MAX_AUTO_BATCH = 16


# -- preprocessing -------------------------------------------------------------------------------------------
def padded_size(h: int, w: int, divisor: int = SIZE_DIVISOR) -> tuple[int, int]:
    return h + (-h) % divisor, w + (-w) % divisor


def preprocess(packed: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """(B, H, W, 4) uint8 [rgb, trimap] → (B, 4, Hp, Wp) float32 model input, Hp/Wp padded up to multiples of 32.

    Same numbers as ``VitMatteImageProcessor``: rgb rescaled by 1/255 then normalised with mean = std = 0.5 (→ [-1, 1]);
    trimap rescaled by 1/255 (→ {0, 0.502, 1}) and not normalised; zero padding on the bottom/right (after
    normalisation, as the processor does).
    """
    _, h, w, _ = packed.shape
    x = packed.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0)
    x = torch.cat([(x[:, :3] - 0.5) / 0.5, x[:, 3:]], dim=1)
    hp, wp = padded_size(h, w)
    if (hp, wp) != (h, w):
        x = F.pad(x, (0, wp - w, 0, hp - h))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# -- the engine ----------------------------------------------------------------------------------------------
def _fp32_forward(module: torch.nn.Module) -> None:
    """Run ``module`` in fp32 even inside a bf16/fp16 autocast region (inputs are cast up).

    Used for the full-resolution end of the decoder (last fusion block + matting head): alpha is very sensitive to
    them (a 1/255 input change moves alpha by ~0.01 on random hub-shaped models). With them in bf16 the max error vs
    fp32 is ~0.04; in fp32 it is 5e-4 (tiny) to 1e-2 (small), for ~100 GFLOP per 1080p frame.
    """
    if getattr(module, "_vmatte_fp32", False):
        return
    inner = module.forward

    def forward(*args, **kwargs):
        dev = next((t.device.type for t in args if torch.is_tensor(t)), "cpu")
        if not torch.is_autocast_enabled(dev):
            return inner(*args, **kwargs)
        with torch.autocast(dev, enabled=False):
            return inner(*(t.float() if torch.is_tensor(t) else t for t in args), **kwargs)

    module.forward = forward
    module._vmatte_fp32 = True


class VitMatteEngine(BatchingEngine):
    """ViTMatte on CPU or CUDA. Construct with a loaded fp32 ``VitMatteForImageMatting`` (see ``load_engine``).

    Args:
        model: eval-mode ``VitMatteForImageMatting`` (moved to ``device`` here).
        device: "auto", "cpu", "cuda", "cuda:N".
        precision: "auto" | "fp32" | "fp16" | "bf16": autocast dtype (weights stay fp32, so fp32 is always exact).
        batch_size: frames per forward; 0 = from free device memory and frame size (1 on CPU).
        tile: 0 = tile only frames that do not fit the memory budget (never on CPU); N = tile frames whose long side
            exceeds N px into N-px tiles.
        tile_overlap: px shared by neighbouring tiles (feathered); :data:`TILE_OVERLAP` in runs (not a config
            option: tests and benches set it here).
        compile: ``torch.compile`` the model; first-call time per shape is reported as ``compile_s``.
        attention: "sdpa" (relative position terms folded into SDPA, see ``attention.py``), "eager"
            (transformers' own), "auto" = sdpa on CUDA, eager on CPU (measured ~1.4x slower there); "auto" in
            runs (same result either way, so not a config option).
        channels_last: NHWC convolutions; None = on for CUDA.
        memory_budget_gb: cap this process's CUDA memory (0 = 90 % of what is free at load time).
        crop_threshold: matte a frame on a crop around its unknown band (plus ``crop_margin`` px of context)
            when that crop covers at most this fraction of the frame; 0 = always whole frames (see ``crops.py``).
        crop_margin: context px around the band in a crop; :data:`CROP_MARGIN` in runs.
        source: a description of where the weights came from (for ``describe``).
    """

    name = "vitmatte"

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        device: str = "auto",
        precision: str = "auto",
        batch_size: int = 0,
        tile: int = 0,
        tile_overlap: int = TILE_OVERLAP,
        compile: bool = False,
        attention: str = "auto",
        channels_last: bool | None = None,
        memory_budget_gb: float = 0.0,
        crop_threshold: float = 0.0,
        crop_margin: int = CROP_MARGIN,
        source: str = "",
    ) -> None:
        super().__init__()
        self.crop_threshold = float(crop_threshold)
        self.crop_margin = int(crop_margin)
        self.frames_cropped = 0
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.runner = DeviceRunner(self.device)
        # on CUDA two batches are in flight so copies of one overlap the compute of the other
        self.max_in_flight = 2 if self.runner.is_cuda else 1
        self.requested_batch_size = batch_size
        self.batch_size = batch_size or 1
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.source = source
        if attention not in ("auto", "sdpa", "eager"):
            raise ValueError(f"attention must be auto, sdpa or eager, got {attention!r}")
        self.fused_attention = attention == "sdpa" or (attention == "auto" and self.runner.is_cuda)
        self.channels_last = self.runner.is_cuda if channels_last is None else channels_last
        self.compile = compile
        self.compile_s = 0.0
        self.oom_backoffs = 0
        self.tiles_run = 0
        self.tiles_skipped = 0
        # called with the model input (B, 4, Hp, Wp) before each forward: tests inject faults (e.g. OOM) here
        self.fault_hook: Callable[[torch.Tensor], None] | None = None
        self._seen_shapes: set[tuple[int, ...]] = set()
        self._auto_tile: dict[tuple[int, int], int] = {}  # frame size → tile size forced by OOM / budget
        self._sized_for: tuple[int, int] | None = None

        self.model = model.eval().to(self.device)
        if self.fused_attention:
            from vmatte.engine.attention import use_fused_attention

            use_fused_attention(self.model)
        if self.dtype != torch.float32:
            _fp32_forward(self.model.decoder.fusion_blocks[-1])
            _fp32_forward(self.model.decoder.matting_head)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        # weights were copied on the default stream; the compute stream must not start before they have landed
        self.runner.synchronize()
        self._forward_model: Callable[..., Any] = self.model
        if compile:
            self._forward_model = torch.compile(self.model, dynamic=False)

        free = self.runner.free_bytes()
        self._capped = memory_budget_gb > 0 and self.runner.is_cuda
        if memory_budget_gb > 0:
            self.budget_bytes = int(memory_budget_gb * 2**30)
            cap_process_memory(self.device, self.budget_bytes)
        else:
            self.budget_bytes = int(0.9 * free) if free is not None else 0

    # -- sizing ---------------------------------------------------------------------------------------------
    def bytes_per_frame(self, h: int, w: int) -> int:
        """Rough peak activation bytes for one (h, w) frame (padded): decoder maps dominate; unfused global
        attention adds heads x N^2 scores three times over (scores, biased scores, probabilities)."""
        hp, wp = padded_size(h, w)
        act = 4 if self.dtype == torch.float32 else 2
        cfg = self.model.config
        hidden = cfg.hidden_size
        heads = cfg.backbone_config.num_attention_heads
        n = (hp // 16) * (wp // 16)
        decoder = 400 * hp * wp * act
        backbone = 24 * hidden * n * act
        attention = 0 if self.fused_attention else 3 * heads * n * n * 4
        return int(decoder + backbone + attention + hp * wp * 24)  # + input, padded copy, output

    def _plan_size(self, h: int, w: int) -> None:
        """Pick batch size (and a tile size when one frame would not fit) for frames of (h, w)."""
        if self._sized_for == (h, w):
            return
        self._sized_for = (h, w)
        if self.requested_batch_size:
            self.batch_size = self.requested_batch_size
            return
        if not self.runner.is_cuda:
            self.batch_size = 1  # CPU: batching adds memory, not throughput
            return
        budget = self.budget_bytes - sum(p.numel() * p.element_size() for p in self.model.parameters())
        per = self.bytes_per_frame(h, w)
        if per > budget and self.tile == 0 and (h, w) not in self._auto_tile:
            tile = 2048
            while tile > MIN_TILE and self.bytes_per_frame(min(h, tile), min(w, tile)) > budget:
                tile //= 2
            self._auto_tile[(h, w)] = tile
        tile = self._tile_for(h, w)
        if tile:
            per = self.bytes_per_frame(min(h, tile), min(w, tile))
        self.batch_size = int(max(1, min(MAX_AUTO_BATCH, budget // max(per, 1))))

    def plan(self, width: int, height: int) -> int:
        """Decide batch size (and tiling) for a clip of ``width`` x ``height`` px before its first frame; returns
        the batch size. Optional for callers (the first push does it anyway) but lets the runner size its queues."""
        self._plan_size(height, width)
        return self.batch_size

    def _tile_for(self, h: int, w: int) -> int:
        """Tile size for frames of (h, w), or 0 to run them whole."""
        forced = self._auto_tile.get((h, w), 0)
        if forced:
            return forced
        if self.tile and max(h, w) > self.tile:
            return self.tile
        return 0

    # -- one forward ----------------------------------------------------------------------------------------
    def _infer(self, packed: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 4) uint8 on the device → (B, H, W) float32 alphas on the device (runs on the compute stream)."""
        _, h, w, _ = packed.shape
        x = preprocess(packed, self.channels_last)
        if self.fault_hook is not None:
            self.fault_hook(x)
        first = self.compile and tuple(x.shape) not in self._seen_shapes
        t0 = time.perf_counter()
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, self.dtype, enabled=self.dtype != torch.float32),
            exact_fp32(self.dtype == torch.float32 and self.device.type == "cuda"),
        ):
            alphas = self._forward_model(pixel_values=x).alphas
        if first:
            self._seen_shapes.add(tuple(x.shape))
            self.runner.synchronize()
            self.compile_s += time.perf_counter() - t0
        return alphas[:, 0, :h, :w].float().contiguous()  # contiguous: one async DMA on the download

    def _submit(self, items: list[tuple[np.ndarray, np.ndarray]], **meta) -> list[Ticket]:
        """Run (rgb u8 (h, w, 3), trimap u8 (h, w)) items of one size in chunks of ``batch_size``, halving the
        batch on out-of-memory and retrying the same items. Raises ``_TooLarge`` when even one item fails."""
        tickets: list[Ticket] = []
        i = 0
        h, w = items[0][1].shape
        while i < len(items):
            b = max(1, min(self.batch_size, len(items) - i))
            buf = self.runner.host_buffer((b, h, w, 4), torch.uint8)
            arr = buf.numpy()
            for j, (rgb, tri) in enumerate(items[i : i + b]):
                arr[j, :, :, :3] = rgb
                arr[j, :, :, 3] = tri
            oom = False
            try:
                tickets.append(self.runner.submit(buf, self._infer, first=i, **meta))
            except Exception as exc:
                if not is_oom(exc):
                    raise
                oom = True
            if oom:
                # outside the except block: the traceback (and the tensors its frames hold) is gone, so the
                # allocator can really return that memory before the retry
                self.runner.after_oom()
                self.oom_backoffs += 1
                if b == 1:
                    raise _TooLarge()
                self.batch_size = max(1, b // 2)
                continue
            i += b
        return tickets

    # -- BatchingEngine hooks -----------------------------------------------------------------------------------
    def _launch(self, frames: list[Frame]) -> Any:
        parts: list[tuple[str, Any]] = []
        # frames of one batch share a size (one clip); group defensively if a caller mixes sizes
        groups: dict[tuple[int, int], list[Frame]] = {}
        for f in frames:
            groups.setdefault((f.height, f.width), []).append(f)
        order = {id(f): k for k, f in enumerate(frames)}  # output position of each frame
        for (h, w), group in groups.items():
            self._plan_size(h, w)
            if not self._tile_for(h, w):
                boxes = [crop_box(f.trimap, self.crop_margin, self.crop_threshold) for f in group]
                cropped = [(f, b) for f, b in zip(group, boxes) if b is not None]
                group = [f for f, b in zip(group, boxes) if b is None]
                if cropped:
                    # one common crop size per batch, so the crops stack into one forward
                    common = common_boxes([b for _, b in cropped], h, w)
                    items = [
                        (f.rgb_u8()[y0:y1, x0:x1], f.trimap[y0:y1, x0:x1])
                        for (f, _), (y0, y1, x0, x1) in zip(cropped, common)
                    ]
                    frames_c = [f for f, _ in cropped]
                    parts.append(("crop", (frames_c, common, self._submit(items))))
                    self.frames_cropped += len(frames_c)
                if not group:
                    continue
                try:
                    items = [(f.rgb_u8(), f.trimap) for f in group]
                    parts.append(("whole", (group, self._submit(items))))
                    continue
                except _TooLarge:
                    self._auto_tile[(h, w)] = self._shrink_tile(h, w)
            for f in group:
                parts.append(("tiled", self._launch_tiled(f)))
        return parts, order, len(frames)

    def _collect(self, handle: Any) -> list[np.ndarray]:
        parts, order, n = handle
        out: list[np.ndarray | None] = [None] * n
        for kind, payload in parts:
            if kind == "whole":
                group, tickets = payload
                alphas = [a for t in tickets for a in self.runner.wait(t)]
                for f, a in zip(group, alphas):
                    out[order[id(f)]] = a
            elif kind == "crop":
                group, boxes, tickets = payload
                alphas = [a for t in tickets for a in self.runner.wait(t)]
                for f, box, a in zip(group, boxes, alphas):
                    out[order[id(f)]] = paste(a, box, f.trimap)
            else:
                out[order[id(payload.frame)]] = blend_tiles(
                    payload, [a for t in payload.tickets for a in self.runner.wait(t)]
                )
        return out  # type: ignore[return-value]

    # -- tiles ----------------------------------------------------------------------------------------------------
    def _shrink_tile(self, h: int, w: int) -> int:
        current = self._tile_for(h, w) or max(h, w)
        # the largest power of two <= half the current size, capped at 2048, floored at MIN_TILE
        tile = max(MIN_TILE, min(2048, 1 << (max(current // 2, 1).bit_length() - 1)))
        if current <= MIN_TILE:
            raise OutOfMemory(
                f"out of {self.device} memory matting a {w}x{h} frame even in {MIN_TILE} px tiles at batch size 1",
                hint="free GPU memory (other processes?), lower --memory-budget pressure, or use --device cpu",
            )
        return tile

    def _launch_tiled(self, frame: Frame) -> TiledFrame:
        h, w = frame.height, frame.width
        while True:
            tile = self._tile_for(h, w)
            th, tw = min(h, tile), min(w, tile)
            rgb, tri = frame.rgb_u8(), frame.trimap
            boxes, items = [], []
            for y0 in tile_starts(h, th, self.tile_overlap):
                for x0 in tile_starts(w, tw, self.tile_overlap):
                    t = tri[y0 : y0 + th, x0 : x0 + tw]
                    if not (t == TRIMAP_UNKNOWN).any():
                        self.tiles_skipped += 1  # fully known: the trimap already is the answer here
                        continue
                    boxes.append((y0, x0, th, tw))
                    items.append((rgb[y0 : y0 + th, x0 : x0 + tw], t))
            try:
                tickets = self._submit(items, frame=frame.index)
            except _TooLarge:
                self._auto_tile[(h, w)] = self._shrink_tile(h, w)
                continue
            self.tiles_run += len(items)
            return TiledFrame(frame, boxes, tickets, tile, self.tile_overlap)

    # -- protocol extras ----------------------------------------------------------------------------------------
    def close(self) -> None:
        super().close()
        self.runner.trim()
        self.model = None  # type: ignore[assignment]
        self._forward_model = None  # type: ignore[assignment]
        if self.runner.is_cuda:
            torch.cuda.empty_cache()
        if self._capped:
            uncap_process_memory(self.device)
            self._capped = False

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            {
                "weights": self.source,
                "params_m": round(self.n_params / 1e6, 2),
                "device": str(self.device),
                "precision": {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[
                    self.dtype
                ],
                "attention": "sdpa" if self.fused_attention else "eager",
                "channels_last": self.channels_last,
                "compile": self.compile,
                "compile_s": round(self.compile_s, 3),
                "tile": self.tile,
                "auto_tiles": {f"{w}x{h}": t for (h, w), t in self._auto_tile.items()},
                "tiles_run": self.tiles_run,
                "tiles_skipped": self.tiles_skipped,
                "oom_backoffs": self.oom_backoffs,
                "frames_matted": self.frames_matted,
                "frames_trivial": self.frames_trivial,
                "frames_cropped": self.frames_cropped,
                "crop_threshold": self.crop_threshold,
                "device_compute_s": round(self.runner.compute_s, 3),
                "pinned_mb": round(self.runner.pinned_bytes / 2**20, 1),
            }
        )
        return d


class _TooLarge(Exception):
    """Internal: one item does not fit at batch size 1 (the caller switches to / shrinks tiles)."""

"""Learned propagation: SAM 2 video (transformers ``Sam2VideoModel``) tracks the subject between keyframes, both ways.

How it works (:meth:`Sam2Propagator.prepare`, one pass over the frames ``lo..hi`` the flow propagator reads):

1. A worker thread decodes frames and resizes them to the model's square input (``config.image_size``, 1024 for
   the released checkpoints) with the SAM 2 image processor's numbers (bilinear with antialias on uint8, then
   rescale 1/255 and ImageNet mean/std), in plain torch: transformers' processor needs torchvision, and the
   registry's torchvision wheels are CUDA builds that do not load beside the CPU torch that CI installs.
2. Keyframes cut the clip into segments. For the segment between keyframes A and B two streamed sessions
   (``video=None``: frames are added one at a time, with their clip index) each hold the masks of A and B as
   conditioning frames. Each mask is run through the model right after it is added: transformers silently
   ignores a mask added before the previous one was run. The forward session tracks A+1..B-1 in clip order, the
   backward one B-1..A+1 with ``reverse=True`` (there is no both-ways mode). Before the first keyframe only the
   backward pass exists; after the last one only the forward pass, streamed with nothing held back.
3. Blend: per pixel, each direction's probability (sigmoid of its mask logits, taken at the working resolution)
   is weighted by its temporal weight (the nearer keyframe counts more, linearly) times its certainty
   ``|2p - 1|`` plus a floor, so where one direction is unsure the other decides. The blend is guided-filtered
   with the frame (edge snapping, as with flow: SAM 2's masks are 1/4 of its input size).
4. The trimap band: unknown where the blend or either direction is soft (uncertain logits), within ``band_min``
   of the mask boundary widening to ``band_max`` where the two directions disagree (with one direction: with
   distance from its keyframe), and near the boundary wherever the two directions are not both sure of one label.
   Per-frame confidence is agreement x the model's object-presence score near the boundary. Keyframes stay exact;
   keyframe suggestions, alpha feedback and full-size results are the flow propagator's own (this class
   subclasses it and fills the same compact per-frame results).
5. Memory: a session keeps only what the model reads (conditioning frames, the last
   ``max(num_maskmem, max_object_pointers_in_encoder)`` tracked frames' memories, one frame's pixels and
   features); frames waiting for the next keyframe wait as uint8 model-size pixels in a scratch that spills to a
   temporary file; results are 8-bit PNGs at the working resolution. Nothing grows with the clip's length.

Farm chunks: a frame's result depends only on its segment (the frames and masks from the keyframe before it to
the keyframe after it), which is the range ``lo..hi`` a chunk's propagator decodes, so chunks equal a whole run
(bit for bit on the same kind of device and thread count: float results of another GPU model may differ slightly).
Cost: frames between keyframes go through the model twice (once per direction), each keyframe once per session.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from vmatte.engine.weights import WeightsSource, resolve_weights
from vmatte.errors import DeviceError, Interrupted, ModelError
from vmatte.motion.config import FlowConfig
from vmatte.pipeline.threads import AnyEvent, Cancelled, Prefetch
from vmatte.propagate.config import PropagateConfig
from vmatte.propagate.propagator import Propagator
from vmatte.propagate.sam2_weights import get_sam2_hint, load_sam2, sam2_unavailable
from vmatte.propagate.store import Scratch, to_u8
from vmatte.propagate.trimap import guided_filter, signed_distance, trimap_to_probability

_DECAY = 0.98  # confidence kept per frame of distance from the only keyframe (as the flow chains decay)
_CERT_FLOOR = 0.05  # a direction's weight where it is unsure (certainty 0) is not quite zero
_IMAGENET_MEAN = (0.485, 0.456, 0.406)  # transformers' IMAGENET_DEFAULT_MEAN / _STD (the SAM 2 processor's)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def make_propagator(
    clip,
    keyframes,
    cfg: PropagateConfig | None = None,
    frame_range: tuple[int, int] | None = None,
    cancel=None,
    max_corrupt: int = 10,
    *,
    on_warning: Callable[[str], None] | None = None,
    probe_timeout_s: float = 3.0,
    flow: FlowConfig | None = None,
) -> Propagator:
    """The propagator ``cfg.propagator`` asks for (same arguments as :class:`Propagator`).

    "sam2" resolves ``cfg.propagator_model`` now (local folder, HF cache, then a bounded hub probe; nothing is
    loaded) and raises :class:`ModelError` (exit 5) naming it when absent; "auto" then falls back to flow with one
    warning through ``on_warning``."""
    cfg = cfg or PropagateConfig()
    if cfg.propagator == "flow":
        return Propagator(clip, keyframes, cfg, frame_range, cancel, max_corrupt, flow=flow)
    model = cfg.propagator_model
    source = resolve_weights(model, probe_timeout_s=probe_timeout_s)
    reason = None
    if source is None:
        reason = sam2_unavailable(model)
    elif source.kind == "checkpoint":
        reason = f"SAM 2 weights '{model}' is a single file: SAM 2 needs a save_pretrained folder or a hub id"
    if reason is not None:
        if cfg.propagator == "sam2":
            raise ModelError(reason, hint=get_sam2_hint(model))
        if on_warning is not None:
            on_warning(
                f"propagator auto: {reason}; using flow propagation (for SAM 2 {get_sam2_hint(model)})"
            )
        return Propagator(clip, keyframes, cfg, frame_range, cancel, max_corrupt, flow=flow)
    return Sam2Propagator(clip, keyframes, cfg, frame_range, cancel, max_corrupt, source=source, flow=flow)


class Sam2Propagator(Propagator):
    """Trimaps from keyframe masks with SAM 2 video tracking. See the module docstring for the method.

    Arguments as :class:`Propagator`, plus ``source`` (resolved weights) and optionally an already loaded
    ``model`` (a ``Sam2VideoModel``; it is moved to the chosen device and dtype)."""

    def __init__(
        self,
        clip,
        keyframes,
        cfg: PropagateConfig | None = None,
        frame_range: tuple[int, int] | None = None,
        cancel=None,
        max_corrupt: int = 10,
        *,
        source: WeightsSource | None = None,
        model=None,
        flow: FlowConfig | None = None,
    ) -> None:
        super().__init__(clip, keyframes, cfg, frame_range, cancel, max_corrupt, flow=flow)
        if source is None and model is None:
            raise ValueError("Sam2Propagator needs weights: a source or a model")
        self.source = source
        self._model = model
        self.device = ""
        self.input_size = 0
        self.model_calls = 0
        self.peak_session_frames = 0  # most tracked-frame memories a session held (flat in clip length)
        self.peak_session_bytes = 0  # most tensor bytes a session's outputs and frames held
        self.timings.update({"load_s": 0.0, "model_s": 0.0})

    # ---- model and tensors ---------------------------------------------------------------------------------
    def _load(self):
        import torch

        t0 = time.perf_counter()
        model = self._model if self._model is not None else load_sam2(self.source)
        want = self.cfg.propagator_device
        if want.startswith("cuda") and not torch.cuda.is_available():
            raise DeviceError(
                f"propagate.propagator_device is {want} but CUDA is not available",
                hint="use propagator_device auto or cpu",
            )
        device = torch.device(
            "cuda" if want == "auto" and torch.cuda.is_available() else want.replace("auto", "cpu")
        )
        # bf16 on CUDA as SAM 2 is published; fp32 on CPU (bf16 matmuls there are slow and gain nothing)
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        model.to(device=device, dtype=dtype)
        self.device, self.dtype = str(device), dtype
        size = model.config.image_size
        self.input_size = int(size[0] if isinstance(size, (list, tuple)) else size)
        mean = torch.tensor(_IMAGENET_MEAN, device=device).view(3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=device).view(3, 1, 1)
        self._norm = (mean, std)
        self.timings["load_s"] += time.perf_counter() - t0
        return model

    def _pixels(self, frame) -> np.ndarray:
        """Full-res frame → (3, S, S) uint8 at the model's input size: the processor's bilinear + antialias resize
        on uint8 (runs in the decode thread; channels-last input takes torch's fast uint8 path)."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(frame.rgb_u8())).permute(2, 0, 1)[None]
        s = self.input_size
        y = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return y[0].contiguous().numpy()

    def _normalize(self, px: np.ndarray):
        """(3, S, S) uint8 → (3, S, S) normalised tensor on the device (rescale 1/255, ImageNet mean/std)."""
        import torch

        mean, std = self._norm
        x = torch.from_numpy(px).to(mean.device, non_blocking=True).float().div_(255.0)
        return ((x - mean) / std).to(self.dtype)

    def _kf_mask(self, index: int):
        """Keyframe → (1, 1, S, S) binary float mask, resized as the processor does (antialiased, >= 0.5)."""
        import torch
        import torch.nn.functional as F

        kind, arr = self.keyframes.get(index)
        if kind == "trimap":
            p = trimap_to_probability(arr)
        elif kind == "binary":
            p = arr.astype(np.float32) / 255.0
        else:
            p = arr.astype(np.float32)
        m = torch.from_numpy((p >= 0.5).astype(np.float32))[None, None]
        s = self.input_size
        m = F.interpolate(m, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return (m >= 0.5).float()

    def _session(self, model, keys: list[tuple[int, np.ndarray]]):
        """A streamed session conditioned on keyframes ``keys`` [(index, pixels)], in that order: each mask is run
        through the model before the next is added (a mask added before the previous one ran is ignored)."""
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        dev = self.device
        session = Sam2VideoInferenceSession(
            video=None,
            video_height=self.height,
            video_width=self.width,
            inference_device=dev,
            inference_state_device=dev,
            video_storage_device=dev,
            dtype=self.dtype,
        )
        obj = session.obj_id_to_idx(1)
        for k, px in keys:
            # what Sam2VideoProcessor.add_inputs_to_inference_session(input_masks=...) does, minus torchvision
            session.add_mask_inputs(obj, k, self._kf_mask(k))
            session.remove_point_inputs(obj, k)
            session.obj_with_new_inputs = [1]
            self._call(model, session, k, px, reverse=False)
        return session

    def _call(self, model, session, t: int, px: np.ndarray, reverse: bool):
        t0 = time.perf_counter()
        out = model(inference_session=session, frame_idx=t, frame=self._normalize(px), reverse=reverse)
        self.model_calls += 1
        self._prune(model, session, t)
        self.timings["model_s"] += time.perf_counter() - t0
        return out

    def _prune(self, model, session, t: int) -> None:
        """Drop what the model will not read again, so a session's memory is flat in the clip's length: tracked
        frames older than the memory / object-pointer window, every frame's pixels (its features are cached by
        the session and its memory is encoded), and full-size mask logits (read only within the same call)."""
        keep = max(int(model.num_maskmem), int(model.config.max_object_pointers_in_encoder))
        outs = session.output_dict_per_obj[0]
        non_cond = outs["non_cond_frame_outputs"]
        for k in [k for k in non_cond if abs(k - t) >= keep]:
            del non_cond[k]
        tracked = session.frames_tracked_per_obj[0]
        for k in [k for k in tracked if abs(k - t) >= keep]:
            del tracked[k]
        for store in outs.values():
            if t in store:
                store[t].pop("high_res_masks", None)
        session.processed_frames.pop(t, None)
        self.peak_session_frames = max(self.peak_session_frames, len(non_cond))
        held = _tensor_bytes(outs) + _tensor_bytes(session.processed_frames)
        self.peak_session_bytes = max(self.peak_session_bytes, held)

    def _track(self, model, session, t: int, px: np.ndarray, reverse: bool) -> tuple[np.ndarray, float]:
        """Track frame t → (probability uint8 (wh, ww), object presence in [0, 1])."""
        import torch
        import torch.nn.functional as F

        out = self._call(model, session, t, px, reverse)
        logits = out.pred_masks[
            :1
        ].float()  # (1, 1, S/4, S/4); -1024 where the model says the object is absent
        p = torch.sigmoid(
            F.interpolate(logits, size=(self.wh, self.ww), mode="bilinear", align_corners=False)
        )
        p_u8 = (p[0, 0] * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()
        presence = float(torch.sigmoid(out.object_score_logits.float()).flatten()[0])
        return p_u8, presence

    # ---- the pass ------------------------------------------------------------------------------------------
    def prepare(self, on_progress: Callable[[int, int], None] | None = None) -> None:
        """Track frames ``lo..hi`` both ways between keyframes; keep compact results for ``start..end``.
        on_progress(done, total) is called as frames are finished."""
        if self.prepared:
            return
        import torch

        t0 = time.perf_counter()
        model = self._load()
        self.corrupt = []
        scratch = Scratch()
        total = self.hi - self.lo + 1
        done = [0]

        def progress() -> None:
            done[0] += 1
            if on_progress is not None:
                on_progress(done[0], total)

        def decoded():
            # worker thread: decode, the resize to the model's input and the working-resolution grey
            for frame in self.clip.frames(
                self.lo, self.hi, max_corrupt=self.max_corrupt, corrupt=self.corrupt
            ):
                yield frame.index, self._pixels(frame), self._gray(frame)

        stop = AnyEvent(self.cancel)
        try:
            with (
                torch.inference_mode(),
                Prefetch(decoded(), depth=4, cancel=stop, name="propagate-decode") as frames,
            ):
                self._pass(model, frames, scratch, progress)
        except Cancelled:
            raise Interrupted("propagation cancelled") from None
        finally:
            scratch.clear()
            if self._model is None:  # loaded here: free it (and its GPU memory) for the matting engine
                del model
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
        self._finish_prepare(t0)

    def _pass(self, model, frames, scratch: Scratch, progress) -> None:
        kset = set(self.kf_in)
        last_kf = max(self.kf_in) if self.kf_in else None
        prev: tuple[int, np.ndarray] | None = None  # (index, pixels) of the last keyframe seen
        forward = None  # streamed session after the last keyframe
        pending: list[int] = []
        for t, px, gray in frames:
            self._check_cancel()
            if t in kset:
                if pending:
                    self._segment(model, pending, prev, (t, px), scratch, progress)
                    pending = []
                    scratch.clear()
                if self.start <= t <= self.end:
                    self._store_keyframe(t, self._kf_prob(t))
                prev = (t, px)
                if t == last_kf and t < self.hi:
                    forward = self._session(model, [prev])
                progress()
            elif forward is None:
                scratch.put(t, px, gray)  # waits for the next keyframe
                pending.append(t)
            else:
                p, pres = self._track(model, forward, t, px, reverse=False)
                if self.start <= t <= self.end:
                    self._finalize_sam(t, gray, (p, pres, t - prev[0]), None)
                progress()

    def _segment(self, model, pending: list[int], a, b, scratch: Scratch, progress) -> None:
        """Frames ``pending`` between keyframes a and b ((index, pixels); a is None before the first keyframe):
        the forward pass stores its result beside each frame, the backward pass blends and finalizes."""
        if a is not None:
            session = self._session(model, [a, b])
            for t in pending:
                self._check_cancel()
                px, gray = scratch.pop(t)
                p, pres = self._track(model, session, t, px, reverse=False)
                scratch.put(t, px, gray, p, np.array([pres], np.float32))
            del session
        session = self._session(model, [b] if a is None else [b, a])
        for t in reversed(pending):
            self._check_cancel()
            px, gray, *fwd = scratch.pop(t)
            p, pres = self._track(model, session, t, px, reverse=True)
            if self.start <= t <= self.end:
                f = (fwd[0], float(fwd[1][0]), t - a[0]) if a is not None else None
                self._finalize_sam(t, gray, f, (p, pres, b[0] - t))
            progress()

    def _finalize_sam(self, t: int, gray: np.ndarray, fwd, bwd) -> None:
        """Blend the directions of frame t and store (probability, unknown) compactly. ``fwd`` / ``bwd``:
        (probability uint8 (wh, ww), presence 0..1, frames from its keyframe) or None."""
        blended, conf = blend_directions(fwd, bwd)
        p, pf, pb, u = blended
        if self.cfg.snap:
            rad = max(1, round(self.tune.snap_radius * min(self.ww, self.wh)))
            p = np.clip(guided_filter(gray.astype(np.float32) / 255.0, p, rad, 1e-3), 0.0, 1.0)
        unknown, near = sam_unknown(p, pf, pb, u, self.r_min, self.r_max, self.tune.sure)
        agree = 1.0 - (np.abs(pf - pb) if pf is not None and pb is not None else np.zeros_like(p))
        score = agree[near].mean() if near.any() else 1.0
        self.results.put(t, to_u8(p), unknown, float(score * conf))

    def summary(self) -> dict:
        out = super().summary()
        out.update(
            {
                "propagator": "sam2",
                "propagator_model": self.cfg.propagator_model,
                "propagator_source": self.source.describe() if self.source is not None else "model passed in",
                "device": self.device,
                "input_size": self.input_size,
                "model_calls": self.model_calls,
                "peak_session_frames": self.peak_session_frames,
                "peak_session_bytes": self.peak_session_bytes,
            }
        )
        return out


def _tensor_bytes(obj) -> int:
    """Bytes of the tensors in nested dicts / lists (the session's stored outputs and frames)."""
    if hasattr(obj, "element_size") and hasattr(obj, "nelement"):
        return int(obj.element_size() * obj.nelement())
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def blend_directions(fwd, bwd):
    """Per-pixel blend of the forward and backward passes of one frame.

    fwd / bwd: (probability uint8 (h, w), presence 0..1, distance in frames from that pass's keyframe) or None
    (at least one given). Returns ((p, pf, pb, u), presence): p the blended probability (h, w) float32, pf / pb
    each direction's float32 probability or None, u (h, w) float32 in [0, 1] how much the band should widen
    (the directions' disagreement, or with one direction 1 - _DECAY**distance), and the weighted presence (for
    one direction times _DECAY**distance). Weights: temporal (the nearer keyframe linearly more: a frame next to
    B follows B) x (certainty |2p - 1| + a floor)."""
    if fwd is None and bwd is None:
        raise ValueError("blend_directions needs at least one direction")
    pf = fwd[0].astype(np.float32) / 255.0 if fwd is not None else None
    pb = bwd[0].astype(np.float32) / 255.0 if bwd is not None else None
    if pf is None or pb is None:
        p, (_, pres, dist) = (pf, fwd) if pb is None else (pb, bwd)
        decay = _DECAY ** float(dist)
        return (p, pf, pb, np.full_like(p, 1.0 - decay)), pres * decay
    df, db = float(fwd[2]), float(bwd[2])
    tw_f, tw_b = db / (df + db), df / (df + db)  # forward pass from A weighs (B - t) / (B - A)
    wf = tw_f * (_CERT_FLOOR + np.abs(2.0 * pf - 1.0))
    wb = tw_b * (_CERT_FLOOR + np.abs(2.0 * pb - 1.0))
    p = (wf * pf + wb * pb) / (wf + wb)
    return (p.astype(np.float32), pf, pb, np.abs(pf - pb)), tw_f * fwd[1] + tw_b * bwd[1]


def sam_unknown(p, pf, pb, u, r_min: float, r_max: float, sure: float) -> tuple[np.ndarray, np.ndarray]:
    """(unknown, near) bool maps (h, w) of a frame from its blended probability ``p``, the directions' ``pf`` /
    ``pb`` (either may be None) and the band widening ``u``: unknown within r_min .. r_max px of the boundary of
    p >= 0.5 (per pixel by u, spread so a disagreement next to the boundary widens it there), wherever any
    probability is soft (between 1 - sure and sure: the model's uncertain logits), and near the boundary
    (within r_max) where the directions are not both sure of the pixel's label. ``near`` is that zone."""
    mask = p >= 0.5
    d = np.abs(signed_distance(mask))
    k = max(3, int(2 * r_min) | 1)
    u = cv2.dilate(u.astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    unknown = d <= r_min + (r_max - r_min) * u
    lo, hi = 1.0 - sure, sure
    for q in (p, pf, pb):
        if q is not None:
            unknown |= (q > lo) & (q < hi)
    near = d <= r_max
    dirs = [q for q in (pf, pb) if q is not None]
    fg_ok = np.logical_and.reduce([q >= hi for q in dirs])
    bg_ok = np.logical_and.reduce([q <= lo for q in dirs])
    unknown |= near & ~np.where(mask, fg_ok, bg_ok)
    return unknown, near

"""Score a predicted matte clip against ground truth, frame by frame, from files (any tool's output).

``evaluate(pred, gt, trimaps=None)`` streams the clips (videos, image folders, printf patterns: whatever
:func:`vmatte.io.readback.iter_alpha` reads), so memory holds two frames of each, and returns a JSON-able
dict: ``per_frame`` (one dict per scored frame) and ``clip`` (means over frames).

Frames are matched by **frame number**, not by position: the number in an image file's name, or for a video
round(pts · time_base · frame rate) (vmatte keeps the input's timestamps, so a ``--frames 20-39`` chunk carries
numbers 20-39). So a chunk can be scored against the whole clip's ground-truth folder; frames present on one
side only are counted (``pred_only`` / ``gt_only``) and skipped, and nothing in common is an error.
``offset`` is added to the prediction's numbers (e.g. -1001 for a sequence written with ``start_number``
1001 against a 0-based ground truth). Trimaps are matched the same way.

Units are those of :mod:`vmatte.evaluate.metrics` (SAD/1000, MSE×1000, Grad/1000, Conn/1000, dtSSD×100,
MESSDdt×1000, J and F as fractions). Whole-frame metrics have plain names; with trimaps, ``*_unknown``
variants are computed over the trimap's unknown region (trimap value in [64, 191] of 255, so JPEG-compressed
trimaps still work), with the prediction forced to the trimap's known values first (mmagic protocol). dtSSD and
MESSDdt need the previous frame (frame number − 1) in both clips, so the first scored frame has None; their
clip value is the sum over frames divided by the number of scored frames N (as RVM and TCVOM do: the first
frame counts as 0). J (mask IoU) and F (boundary F, DAVIS tolerance) are given on frames whose ground truth
is binary (every value 0 or 1), with ``J&F`` = (J + F) / 2 over the clip.

No torch import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np

from vmatte.errors import InputError

UNITS = {
    "SAD": "sum abs(p-g) / 1000 (DIM)",
    "MSE": "mean (p-g)^2 x 1000 (DIM)",
    "Grad": "sum (norm(grad p) - norm(grad g))^2 / 1000, sigma 1.4, min-max normalised (DIM)",
    "Conn": "sum abs(phi(p) - phi(g)) / 1000, thresholds k/10 (DIM MATLAB)",
    "dtSSD": "sqrt(mean over pixels of (dp/dt - dg/dt)^2) x 100; clip: sum / N frames (RVM)",
    "MESSDdt": "mean over pixels of abs(e_t^2 - warp(e_{t-1})^2) x 1000, e = p-g, flow from GT alpha (DIS); "
    "per-pixel mean, not TCVOM's per-frame sum",
    "J": "mask IoU of alpha >= 0.5, binary GT only (DAVIS db_eval_iou)",
    "F": "boundary F, tolerance ceil(0.008 x diagonal) px, binary GT only (DAVIS db_eval_boundary)",
    "J&F": "(J + F) / 2 (DAVIS)",
}
SPATIAL = ("SAD", "MSE", "Grad", "Conn")
TEMPORAL = ("dtSSD", "MESSDdt")
SEGMENTATION = ("J", "F")


def _numbered(path: str, offset: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, (H, W) float32 alpha) per frame, numbers strictly increasing (else InputError)."""
    from vmatte.io.readback import _is_sequence, iter_alpha

    to_number = int if _is_sequence(path) is not None else None
    last = None
    for _i, pts, alpha in iter_alpha(path):
        if to_number is None:  # a video (iter_alpha has checked it exists)
            to_number = _frame_numberer(path)
        n = to_number(pts) + offset
        if last is not None and n <= last:
            raise InputError(
                f"{path}: frame number {n} comes after {last}",
                hint="each frame needs its own increasing number (file name digits, or video timestamps)",
            )
        last = n
        yield n, alpha


def _frame_numberer(path: str) -> Callable[[int], int]:
    """pts (stream ticks) → frame number round(pts · time_base · rate) for a video's first video stream."""
    from fractions import Fraction

    import av

    try:
        with av.open(path) as c:
            vs = c.streams.video[0]
            tb = vs.time_base
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    except Exception as exc:
        raise InputError(f"{path}: not a readable video ({exc})", hint="check the path") from None
    if not tb or not rate:
        return int
    scale = Fraction(tb) * Fraction(rate)
    return lambda pts: round(pts * scale)


def _trimap_numbered(path: str) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, (H, W) float32 trimap value in [0, 1]): the colour (not the alpha) of RGBA trimaps."""
    from vmatte.io.readback import _is_sequence, _seq_number, iter_rgba

    files = _is_sequence(path)
    rate = None
    for i, t, rgba in iter_rgba(path):
        if files is not None:
            n = _seq_number(files[i], i)
        elif t is None:
            n = i
        else:
            if rate is None:
                import av

                with av.open(path) as c:
                    vs = c.streams.video[0]
                    rate = float(vs.average_rate or vs.guessed_rate or vs.base_rate or 1)
            n = round(t * rate)
        yield n, rgba[..., :3].mean(axis=2)


class _Side:
    """A numbered stream with the numbers seen (for messages): count, first, last, unmatched."""

    def __init__(self, it: Iterator[tuple[int, np.ndarray]]):
        self.it, self.count, self.first, self.last, self.unmatched = it, 0, None, None, []

    def next(self) -> tuple[int, np.ndarray] | None:
        item = next(self.it, None)
        if item is not None:
            self.count += 1
            self.first = item[0] if self.first is None else self.first
            self.last = item[0]
        return item

    def span(self) -> str:
        return f"{self.first}-{self.last}" if self.count else "none"


def _matched(p_side: _Side, g_side: _Side) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Merge-join two numbered streams: (frame number, pred alpha, gt alpha) for numbers on both sides;
    numbers on one side only are kept in that side's ``unmatched``."""
    p, g = p_side.next(), g_side.next()
    while p is not None or g is not None:
        if g is None or (p is not None and p[0] < g[0]):
            p_side.unmatched.append(p[0])
            p = p_side.next()
        elif p is None or g[0] < p[0]:
            g_side.unmatched.append(g[0])
            g = g_side.next()
        else:
            yield p[0], p[1], g[1]
            p, g = p_side.next(), g_side.next()


def evaluate(
    pred: str | os.PathLike,
    gt: str | os.PathLike,
    trimaps: str | os.PathLike | None = None,
    *,
    offset: int = 0,
    messddt: bool = True,
    on_frame: Callable[[int], None] | None = None,
) -> dict:
    """Per-frame and per-clip errors of ``pred`` against ``gt``, frames matched by number (module docstring).

    Raises InputError (one line, naming the file) when no frame number is in both, a trimap is missing for a
    scored frame, sizes differ, or a file cannot be read. ``on_frame(k)`` is called after the k-th scored
    frame."""
    from vmatte.evaluate import metrics as M

    pred, gt = str(pred), str(gt)
    tri_path = str(trimaps) if trimaps else None
    p_side, g_side = _Side(_numbered(pred, offset)), _Side(_numbered(gt))
    t_side = _Side(_trimap_numbered(tri_path)) if tri_path else None
    t_item = None
    per_frame: list[dict] = []
    prev: tuple[int, np.ndarray, np.ndarray, np.ndarray | None] | None = None
    shape = None
    for n, p, g in _matched(p_side, g_side):
        if p.shape != g.shape:
            raise InputError(
                f"{pred} frame {n} is {p.shape[1]}x{p.shape[0]} but {gt} frame {n} is {g.shape[1]}x{g.shape[0]}",
                hint="score mattes at the ground truth's resolution",
            )
        shape = g.shape
        region = bg = fg = None
        if t_side is not None:
            while t_item is None or t_item[0] < n:
                t_item = t_side.next()
                if t_item is None:
                    break
            if t_item is None or t_item[0] != n:
                raise InputError(
                    f"{tri_path} has no trimap for frame {n} (trimap frames {t_side.span()})",
                    hint="give one trimap per scored frame, numbered like the ground truth",
                )
            t = t_item[1]
            if t.shape != g.shape:
                raise InputError(
                    f"{tri_path} frame {n} is {t.shape[1]}x{t.shape[0]} but {gt} is {g.shape[1]}x{g.shape[0]}",
                    hint="trimaps must match the ground truth's size",
                )
            bg, fg = t < 64 / 255, t > 191 / 255
            region = ~(bg | fg)
        row: dict = {"frame": n}
        row["SAD"] = M.sad(p, g)
        row["MSE"] = M.mse(p, g)
        row["Grad"] = M.grad(p, g)
        row["Conn"] = M.conn(p, g)
        if region is not None:
            # mmagic protocol: the known pixels take the trimap's values before scoring the unknown band
            pk = M.force_known(p, bg, fg)
            row["unknown_px"] = int(region.sum())
            row["SAD_unknown"] = M.sad(pk, g, region)
            row["MSE_unknown"] = M.mse(pk, g, region)
            row["Grad_unknown"] = M.grad(pk, g, region)
            row["Conn_unknown"] = M.conn(pk, g, region)
        if prev is None or prev[0] != n - 1:
            for k in TEMPORAL:
                row[k] = None
                if region is not None:
                    row[f"{k}_unknown"] = None
        else:
            _, pp, pg, pr = prev
            row["dtSSD"] = M.dtssd(p, pp, g, pg)
            flow = M.alpha_flow(g, pg) if messddt else None
            row["MESSDdt"] = M.messddt(p, pp, g, pg, flow=flow) if messddt else None
            if region is not None:
                both = region | pr
                row["dtSSD_unknown"] = M.dtssd(p, pp, g, pg, both)
                row["MESSDdt_unknown"] = M.messddt(p, pp, g, pg, both, flow=flow) if messddt else None
        if bool(((g == 0.0) | (g == 1.0)).all()):
            row["J"] = M.jaccard(p, g)
            row["F"] = M.boundary_f(p, g)
        else:
            row["J"] = row["F"] = None
        per_frame.append(row)
        prev = (n, p, g, region)
        if on_frame is not None:
            on_frame(len(per_frame))
    if not per_frame:
        if not g_side.count:
            raise InputError(f"{gt}: no frames", hint="check the ground-truth path")
        if not p_side.count:
            raise InputError(f"{pred}: no frames", hint="check the prediction path")
        raise InputError(
            f"no frame number is in both {pred} (frames {p_side.span()}) and {gt} (frames {g_side.span()})",
            hint="frames are matched by the number in the file name (video: timestamp x frame rate); "
            "pass --offset N to shift the prediction's numbers",
        )
    clip = summarise(per_frame)
    return {
        "pred": pred,
        "gt": gt,
        "trimaps": tri_path,
        "offset": offset,
        "frames": len(per_frame),
        "frame_range": [per_frame[0]["frame"], per_frame[-1]["frame"]],
        "pred_only": p_side.unmatched,
        "gt_only": len(g_side.unmatched),
        "size": [int(x) for x in reversed(shape)],  # [width, height]
        "units": UNITS,
        "clip": clip,
        "per_frame": per_frame,
    }


def summarise(per_frame: list[dict]) -> dict:
    """Clip values: the mean of every metric over the frames where it is defined (None when defined nowhere),
    except dtSSD and MESSDdt, whose sum is divided by the number of scored frames N (RVM and TCVOM count
    the first frame, which has no predecessor, as 0). ``J&F`` = (J + F) / 2."""
    keys = [k for k in per_frame[0] if k not in ("frame", "unknown_px")]
    out: dict = {}
    for k in keys:
        vals = [r[k] for r in per_frame if r.get(k) is not None]
        if not vals:
            out[k] = None
        elif k.split("_")[0] in TEMPORAL:
            out[k] = float(np.sum(vals) / len(per_frame))
        else:
            out[k] = float(np.mean(vals))
    if out.get("J") is not None and out.get("F") is not None:
        out["J&F"] = (out["J"] + out["F"]) / 2
    return out


def format_table(result: dict, per_frame: bool = False) -> str:
    """Markdown table of the clip values (and optionally every frame)."""
    has_region = result["trimaps"] is not None
    clip = result["clip"]
    names = SPATIAL + TEMPORAL + tuple(k for k in (*SEGMENTATION, "J&F") if clip.get(k) is not None)
    lo, hi = result["frame_range"]
    lines = [
        f"pred: {result['pred']}" + (f"   (frame numbers {result['offset']:+d})" if result["offset"] else ""),
        f"gt:   {result['gt']}" + (f"   trimaps: {result['trimaps']}" if has_region else ""),
        f"{result['frames']} frames scored (frame numbers {lo}-{hi}), {result['size'][0]}x{result['size'][1]}",
    ]
    if result["pred_only"]:
        extra = result["pred_only"]
        lines.append(
            f"note: {len(extra)} prediction frame(s) have no ground truth and were skipped "
            f"(first: {extra[0]})"
        )
    lines += [
        "",
        "| metric  | whole frame | unknown region | unit |"
        if has_region
        else "| metric  | whole frame | unit |",
        "|---------|-------------|----------------|------|"
        if has_region
        else "|---------|-------------|------|",
    ]

    def fmt(v):
        return f"{v:.4f}" if v is not None else "-"

    for k in names:
        if has_region:
            lines.append(
                f"| {k:<7} | {fmt(clip.get(k)):>11} | {fmt(clip.get(k + '_unknown')):>14} | {UNITS[k]} |"
            )
        else:
            lines.append(f"| {k:<7} | {fmt(clip.get(k)):>11} | {UNITS[k]} |")
    if per_frame:
        base = [k for k in names if k != "J&F"]
        cols = base + ([f"{k}_unknown" for k in base if k not in SEGMENTATION] if has_region else [])
        lines += ["", "| frame | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
        for r in result["per_frame"]:
            lines.append(f"| {r['frame']} | " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def plot_png(
    result: dict, path: str | os.PathLike, keys: tuple[str, ...] = ("dtSSD", "MESSDdt", "SAD", "MSE", "Grad")
) -> str:
    """Draw error over time (one panel per metric, whole frame and unknown region) to a PNG with OpenCV.

    OpenCV is already a dependency; this keeps plotting free of matplotlib. Returns the path written.
    """
    import cv2

    panels = [k for k in keys if any(r.get(k) is not None for r in result["per_frame"])]
    width, ph, ml, mr, mt, mb = 960, 170, 70, 20, 28, 22
    img = np.full((ph * len(panels) + 10, width, 3), 255, np.uint8)
    lo, hi = result["frame_range"]
    font = cv2.FONT_HERSHEY_SIMPLEX
    for pi, k in enumerate(panels):
        y0 = pi * ph + 10
        x_left, x_right, y_top, y_bot = ml, width - mr, y0 + mt, y0 + ph - mb
        series = [(k, (40, 40, 200))]
        if result["trimaps"] is not None:
            series.append((f"{k}_unknown", (200, 120, 30)))
        vals = [r.get(s) for s, _ in series for r in result["per_frame"] if r.get(s) is not None]
        vmax = max(vals) if vals else 1.0
        vmax = vmax if vmax > 0 else 1.0
        cv2.rectangle(img, (x_left, y_top), (x_right, y_bot), (180, 180, 180), 1)
        cv2.putText(
            img, f"{k}  ({UNITS[k].split(',')[0]})", (x_left, y0 + 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )
        cv2.putText(img, f"{vmax:.3g}", (4, y_top + 10), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, "0", (4, y_bot), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"frame {hi}", (x_right - 80, y_bot + 16), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for li, (s, colour) in enumerate(series):
            pts = []
            for r in result["per_frame"]:
                v = r.get(s)
                if v is None:
                    continue
                x = x_left + (x_right - x_left) * ((r["frame"] - lo) / max(hi - lo, 1))
                y = y_bot - (y_bot - y_top) * (v / vmax)
                pts.append((round(x), round(y)))
            if len(pts) > 1:
                cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 1, cv2.LINE_AA)
            elif pts:
                cv2.circle(img, pts[0], 2, colour, -1)
            label = "whole frame" if li == 0 else "unknown region"
            cv2.putText(img, label, (x_right - 260 + 130 * li, y0 + 18), font, 0.4, colour, 1, cv2.LINE_AA)
    path = str(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, img):
        from vmatte.errors import OutputError

        raise OutputError(f"{path}: cannot write the plot", hint="check the folder exists and is writable")
    return path

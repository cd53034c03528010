"""Score a predicted matte clip against ground truth, frame by frame, from files (any tool's output).

``evaluate(pred, gt, trimaps=None)`` streams both clips (videos, image folders, printf patterns: whatever
:func:`vmatte.io.readback.iter_alpha` reads), so memory holds two frames of each, and returns a JSON-able
dict: ``per_frame`` (one dict per frame) and ``clip`` (means over frames). Units are those of
:mod:`vmatte.evaluate.metrics` (SAD/1000, MSE×1000, Grad/1000, Conn/1000, dtSSD×100, MESSDdt×1000).
Whole-frame metrics have plain names; with trimaps, ``*_unknown`` variants are computed over the trimap's
unknown region (trimap value in [64, 191] of 255, so JPEG-compressed trimaps still work). dtSSD and MESSDdt
start at frame 1 (they compare with the previous frame); clip means average frames 1..N-1 for them.

No torch import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np

from vmatte.errors import InputError

UNITS = {
    "SAD": "sum abs(p-g) / 1000",
    "MSE": "mean (p-g)^2 x 1000",
    "Grad": "sum (norm(grad p) - norm(grad g))^2 / 1000, sigma 1.4, min-max normalised (DIM)",
    "Conn": "sum abs(phi(p) - phi(g)) / 1000, step 0.1 (DIM)",
    "dtSSD": "sqrt(mean over pixels of (dp/dt - dg/dt)^2) x 100 (RVM / VideoMatte240K)",
    "MESSDdt": "mean over pixels of abs(e_t^2 - warp(e_{t-1})^2) x 1000, e = p-g, flow from GT alpha (DIS)",
}
SPATIAL = ("SAD", "MSE", "Grad", "Conn")
TEMPORAL = ("dtSSD", "MESSDdt")


def _frames(path: str) -> Iterator[np.ndarray]:
    """(H, W) float32 alpha per frame (alpha channel of RGBA sources, else the gray value)."""
    from vmatte.io.readback import iter_alpha

    for _i, _pts, alpha in iter_alpha(path):
        yield alpha


def _trimap_frames(path: str) -> Iterator[np.ndarray]:
    """(H, W) float32 trimap value in [0, 1] per frame: the colour (not the alpha) of RGBA trimap images."""
    from vmatte.io.readback import iter_rgba

    for _i, _t, rgba in iter_rgba(path):
        yield rgba[..., :3].mean(axis=2)


def evaluate(
    pred: str | os.PathLike,
    gt: str | os.PathLike,
    trimaps: str | os.PathLike | None = None,
    *,
    messddt: bool = True,
    on_frame: Callable[[int], None] | None = None,
) -> dict:
    """Per-frame and per-clip errors of ``pred`` against ``gt``. Raises InputError naming the file when frame
    counts or sizes differ or a file cannot be read."""
    from vmatte.evaluate import metrics as M

    pred, gt = str(pred), str(gt)
    tri_path = str(trimaps) if trimaps else None
    it_p = _frames(pred)
    it_g = _frames(gt)
    it_t = _trimap_frames(tri_path) if tri_path else None
    per_frame: list[dict] = []
    prev: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    i = 0
    while True:
        p = next(it_p, None)
        g = next(it_g, None)
        t = next(it_t, None) if it_t is not None else None
        if p is None or g is None:
            if p is not None or g is not None:
                longer, shorter = (pred, gt) if p is not None else (gt, pred)
                raise InputError(
                    f"{longer} has more frames than {shorter} ({shorter} ends after {i})",
                    hint="prediction and ground truth must have the same frame count",
                )
            if it_t is not None and t is not None:
                raise InputError(
                    f"{tri_path} has more frames than {gt} ({i})", hint="give one trimap per frame"
                )
            break
        if p.shape != g.shape:
            raise InputError(
                f"{pred} frame {i} is {p.shape[1]}x{p.shape[0]} but {gt} frame {i} is {g.shape[1]}x{g.shape[0]}",
                hint="score mattes at the ground truth's resolution",
            )
        region = None
        if it_t is not None:
            if t is None:
                raise InputError(
                    f"{tri_path} has fewer frames than {gt} (ends after {i})",
                    hint="give one trimap per frame",
                )
            if t.shape != g.shape:
                raise InputError(
                    f"{tri_path} frame {i} is {t.shape[1]}x{t.shape[0]} but {gt} is {g.shape[1]}x{g.shape[0]}",
                    hint="trimaps must match the ground truth's size",
                )
            region = (t >= 64 / 255) & (t <= 191 / 255)
        row: dict = {"frame": i}
        row["SAD"] = M.sad(p, g)
        row["MSE"] = M.mse(p, g)
        row["Grad"] = M.grad(p, g)
        row["Conn"] = M.conn(p, g)
        if region is not None:
            row["unknown_px"] = int(region.sum())
            row["SAD_unknown"] = M.sad(p, g, region)
            row["MSE_unknown"] = M.mse(p, g, region)
            row["Grad_unknown"] = M.grad(p, g, region)
            row["Conn_unknown"] = M.conn(p, g, region)
        if prev is None:
            for k in TEMPORAL:
                row[k] = None
                if region is not None:
                    row[f"{k}_unknown"] = None
        else:
            pp, pg, pr = prev
            row["dtSSD"] = M.dtssd(p, pp, g, pg)
            flow = M.alpha_flow(g, pg) if messddt else None
            row["MESSDdt"] = M.messddt(p, pp, g, pg, flow=flow) if messddt else None
            if region is not None:
                both = region | pr
                row["dtSSD_unknown"] = M.dtssd(p, pp, g, pg, both)
                row["MESSDdt_unknown"] = M.messddt(p, pp, g, pg, both, flow=flow) if messddt else None
        per_frame.append(row)
        prev = (p, g, region)
        i += 1
        if on_frame is not None:
            on_frame(i)
    if not per_frame:
        raise InputError(f"{gt}: no frames", hint="check the ground-truth path")
    return {
        "pred": pred,
        "gt": gt,
        "trimaps": tri_path,
        "frames": len(per_frame),
        "size": [int(g_shape) for g_shape in reversed(prev[1].shape)],  # [width, height]
        "units": UNITS,
        "clip": summarise(per_frame),
        "per_frame": per_frame,
    }


def summarise(per_frame: list[dict]) -> dict:
    """Mean of every metric over the frames where it is defined (None when defined nowhere)."""
    keys = [k for k in per_frame[0] if k not in ("frame", "unknown_px")]
    out = {}
    for k in keys:
        vals = [r[k] for r in per_frame if r.get(k) is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def format_table(result: dict, per_frame: bool = False) -> str:
    """Markdown table of the clip means (and optionally every frame)."""
    has_region = result["trimaps"] is not None
    names = SPATIAL + TEMPORAL
    lines = [
        f"pred: {result['pred']}",
        f"gt:   {result['gt']}" + (f"   trimaps: {result['trimaps']}" if has_region else ""),
        f"{result['frames']} frames, {result['size'][0]}x{result['size'][1]}",
        "",
        "| metric  | whole frame | unknown region | unit |"
        if has_region
        else "| metric  | whole frame | unit |",
        "|---------|-------------|----------------|------|"
        if has_region
        else "|---------|-------------|------|",
    ]
    clip = result["clip"]

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
        cols = list(names) + ([f"{k}_unknown" for k in names] if has_region else [])
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
    n = result["frames"]
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
        cv2.putText(img, f"frame {n - 1}", (x_right - 80, y_bot + 16), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for li, (s, colour) in enumerate(series):
            pts = []
            for r in result["per_frame"]:
                v = r.get(s)
                if v is None:
                    continue
                x = x_left + (x_right - x_left) * (r["frame"] / max(n - 1, 1))
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

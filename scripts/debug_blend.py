#!/usr/bin/env python
"""Why does a frame's trimap look the way it does? Show what the propagation blended on it.

For each requested frame (not a keyframe) one image of two rows, at the propagator's working resolution:

    grey frame | ground truth (--gt, else blank) | blended probability p | unknown band (white)
    forward p  | forward reliability           | backward p            | backward reliability

A direction that does not reach the frame (before the first / after the last keyframe) is black. Reliability
is the chain's product of flow consistencies (see ``vmatte.propagate.chain``): black where the flow failed,
which is where colour and the graph cut take over. Frames are stacked top to bottom, each labelled.

    .venv/bin/python scripts/debug_blend.py CLIP --masks KEYS/ --frames 21,22 --out /tmp/blend.png \\
        [--gt DAVIS/Annotations/480p/breakdance] [--tune layer_trust=false]

CLIP and KEYS as for ``vmatte run``; --gt: a folder of masks or alphas named by frame number (00021.png or
000021.png). A developer's tool: it runs the propagation pass only (no engine) and writes one PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_propagate import parse_set  # noqa: E402  (the benchmark's --tune syntax)

from vmatte.io.decode import open_clip  # noqa: E402
from vmatte.io.masks import load_keyframes  # noqa: E402
from vmatte.propagate import Propagator  # noqa: E402
from vmatte.propagate.tuning import Tuning  # noqa: E402


def _u8(a: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """[0, 1] float (or None: absent) → uint8 grey of ``shape``."""
    if a is None:
        return np.zeros(shape, np.uint8)
    return np.clip(np.asarray(a, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    cv2.rectangle(out, (0, 0), (8 + 7 * len(text), 16), (0, 0, 0), -1)
    cv2.putText(out, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1, cv2.LINE_AA)
    return out


def _gt(folder: Path | None, t: int, size: tuple[int, int]) -> np.ndarray | None:
    """The frame's GT (float [0, 1]) at ``size`` (w, h), or None."""
    if folder is None:
        return None
    for name in (f"{t:05d}.png", f"{t:06d}.png"):
        f = folder / name
        if f.is_file():
            g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            g = (g > 0).astype(np.float32) if g.max() <= 1 else g.astype(np.float32) / 255.0
            return cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    return None


def panels(t: int, gray, fwd, bwd, blended, gt) -> np.ndarray:
    """One frame's 2x4 panel image (uint8 BGR) from a blend hook's arguments (see chain.BlendHook)."""
    shape = gray.shape
    row1 = [
        _label(gray, f"frame {t}"),
        _label(_u8(gt, shape), "ground truth" if gt is not None else "no --gt"),
        _label(_u8(blended.p, shape), f"p (conf {blended.confidence:.2f})"),
        _label(_u8(blended.unknown, shape), "unknown"),
    ]
    row2 = [
        _label(_u8(None if fwd is None else fwd.p, shape), "forward p"),
        _label(_u8(None if fwd is None else fwd.r, shape), "forward reliability"),
        _label(_u8(None if bwd is None else bwd.p, shape), "backward p"),
        _label(_u8(None if bwd is None else bwd.r, shape), "backward reliability"),
    ]
    return np.vstack([np.hstack(row1), np.hstack(row2)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip")
    ap.add_argument("--masks", required=True, help="keyframe masks folder")
    ap.add_argument("--frames", required=True, help="comma-separated frame numbers (not keyframes)")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--gt", default=None, help="folder of GT masks / alphas named by frame number")
    ap.add_argument("--tune", action="append", default=[], help="propagate Tuning KEY=VALUE (repeatable)")
    args = ap.parse_args(argv)
    want = {int(x) for x in args.frames.split(",") if x.strip()}
    clip = open_clip(args.clip)
    keyframes = load_keyframes(args.masks, clip.info)
    asked_keys = sorted(want & set(keyframes.indices))
    if asked_keys:
        print(f"debug_blend: frames {asked_keys} are keyframes (used as drawn, nothing blended); left out")
    tune = Tuning(**parse_set(args.tune)) if args.tune else Tuning()
    prop = Propagator(clip, keyframes, tuning=tune)
    prop.keep_flows = False  # the pass only: nothing is pushed
    gt_dir = Path(args.gt) if args.gt else None
    shown: dict[int, np.ndarray] = {}

    def on_blend(t, gray, fwd, bwd, blended) -> None:
        if t in want:
            shown[t] = panels(t, gray, fwd, bwd, blended, _gt(gt_dir, t, gray.shape[::-1]))

    prop.on_blend = on_blend
    prop.prepare()
    prop.close()
    if not shown:
        print(f"debug_blend: none of frames {sorted(want)} was blended (outside the clip, or keyframes)")
        return 2
    missing = sorted(want - set(shown) - set(asked_keys))
    if missing:
        print(f"debug_blend: frames {missing} are outside the clip; left out")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack([shown[t] for t in sorted(shown)]))
    print(
        f"debug_blend: wrote {out} (frames {sorted(shown)}, working size {shown[min(shown)].shape[1] // 4}px wide)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

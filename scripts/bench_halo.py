"""Edge halo (background fringe) of composites with and without foreground decontamination.

Protocol. A fair test needs the TRUE composite of the foreground over a NEW background, so the observed frame
is built from parts that are known exactly, always with the ground-truth alpha a (the matte itself is not
under test here, only what the writers do with colour at soft edges):

- mmagic-testdata (alphamatting.com GT05): the true foreground colour F (fg/GT05.jpg) and GT alpha are given.
  Observed I = a F + (1 - a) B_old with B_old = the dataset's own background (bg/GT26r.jpg), computed here
  in float (not the JPEG 'merged' file, whose compression noise would blur the comparison).
- foamliu-dim-composition1k (10 Composition-1k crops): only the composite and GT alpha are given, the true F
  is not. We therefore take the given composite as the foreground colour field F (real texture and real
  hair structure; that its band colours hold some old background does not matter, because truth is defined
  from it) and film it on a chroma-green screen with mild noise: I = a F + (1 - a) B_green.

For each new background B_new (black, white, and a real image: the mmagic background, flipped and
resized), the truth is C* = a F + (1 - a) B_new. Two ways to composite the observed frame:
- naive: C = a I + (1 - a) B_new (the observed colour carries B_old into the edge: the fringe);
- decontaminated: C = a F_hat + (1 - a) B_new with F_hat = vmatte.io.compose.estimate_foreground(I, a).
Error = mean |C - C*| over the unknown band (0 < a < 1), in 8-bit levels (0..255), averaged over the three
new backgrounds; also the 99th percentile. Lower is better; 0 = no halo.

Usage: python scripts/bench_halo.py [--data /work/shared/data] [--json /tmp/halo.json]
Skips cleanly (exit 0, message) when the data folder is absent. Reads data by path; copies nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmatte.io.compose import estimate_foreground  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("VMATTE_SHARED", ROOT.parent / "shared")) / "data"


def _read(path: Path, gray: bool = False) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    img = img.astype(np.float32) / 255.0
    return img if gray else img[..., ::-1].copy()


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def samples(data: Path):
    """Yield (name, F, alpha, B_old) float32 arrays."""
    mm = data / "mmagic-testdata" / "tests" / "data" / "matting_dataset"
    if (mm / "fg" / "GT05.jpg").exists():
        fg = _read(mm / "fg" / "GT05.jpg")
        a = _read(mm / "alpha" / "GT05.jpg", gray=True)
        bg = _read(mm / "bg" / "GT26r.jpg")
        h, w = a.shape
        yield "mmagic/GT05", fg, a, _resize(bg, w, h)
    fl = data / "foamliu-dim-composition1k" / "images"
    rng = np.random.default_rng(0)
    for i in range(100):
        img, alpha = fl / f"{i}_image.png", fl / f"{i}_alpha.png"
        if not img.exists():
            continue
        f = _read(img)
        a = _read(alpha, gray=True)
        green = np.empty_like(f)
        green[:] = (0.0, 177 / 255, 64 / 255)
        green = np.clip(green + rng.normal(0, 0.01, green.shape).astype(np.float32), 0, 1)
        yield f"foamliu/{i}", f, a, green


def new_backgrounds(data: Path, w: int, h: int) -> dict[str, np.ndarray]:
    out = {"black": np.zeros((h, w, 3), np.float32), "white": np.ones((h, w, 3), np.float32)}
    bg = data / "mmagic-testdata" / "tests" / "data" / "matting_dataset" / "bg" / "GT26r.jpg"
    if bg.exists():
        out["image"] = _resize(_read(bg)[::-1, ::-1].copy(), w, h)
    return out


def evaluate(name, fg, a, b_old, data: Path) -> dict:
    a3 = a[..., None]
    observed = np.clip(a3 * fg + (1 - a3) * b_old, 0, 1).astype(np.float32)
    t = time.perf_counter()
    f_hat = estimate_foreground(observed, a)
    dt = time.perf_counter() - t
    band = (a > 0.0) & (a < 1.0)
    res = {
        "name": name,
        "size": [int(a.shape[1]), int(a.shape[0])],
        "band_px": int(band.sum()),
        "estimate_s": round(dt, 4),
        "per_bg": {},
    }
    for bg_name, b_new in new_backgrounds(data, a.shape[1], a.shape[0]).items():
        truth = a3 * fg + (1 - a3) * b_new
        naive = a3 * observed + (1 - a3) * b_new
        deco = a3 * f_hat + (1 - a3) * b_new
        e_n = np.abs(naive - truth)[band].mean(axis=-1) * 255
        e_d = np.abs(deco - truth)[band].mean(axis=-1) * 255
        res["per_bg"][bg_name] = {
            "naive_mae": float(e_n.mean()),
            "deco_mae": float(e_d.mean()),
            "naive_p99": float(np.percentile(e_n, 99)),
            "deco_p99": float(np.percentile(e_d, 99)),
        }
    for k in ("naive_mae", "deco_mae", "naive_p99", "deco_p99"):
        res[k] = float(np.mean([v[k] for v in res["per_bg"].values()]))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, default=None, help="also write the JSON here (e.g. /tmp/halo.json)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"bench_halo: data folder {args.data} not found; skipping (set VMATTE_SHARED or --data)")
        return 0
    # pymatting compiles its kernels on first use: warm up so the timing column is the steady state
    estimate_foreground(np.zeros((8, 8, 3), np.float32), np.full((8, 8), 0.5, np.float32))
    rows = [evaluate(*s, data=args.data) for s in samples(args.data)]
    if not rows:
        print(f"bench_halo: no samples under {args.data}; skipping")
        return 0
    print(
        f"{'sample':<14} {'size':>9} {'band px':>8} {'naive MAE':>10} {'deco MAE':>9} {'naive p99':>10} {'deco p99':>9} {'F est s':>8}"
    )
    for r in rows:
        print(
            f"{r['name']:<14} {r['size'][0]:>4}x{r['size'][1]:<4} {r['band_px']:>8} {r['naive_mae']:>10.2f} {r['deco_mae']:>9.2f} "
            f"{r['naive_p99']:>10.2f} {r['deco_p99']:>9.2f} {r['estimate_s']:>8.3f}"
        )
    summary = {
        k: float(np.mean([r[k] for r in rows])) for k in ("naive_mae", "deco_mae", "naive_p99", "deco_p99")
    }
    print(
        f"{'mean':<14} {'':>9} {'':>8} {summary['naive_mae']:>10.2f} {summary['deco_mae']:>9.2f} {summary['naive_p99']:>10.2f} {summary['deco_p99']:>9.2f}"
    )
    print("(errors in 8-bit levels over the unknown band, mean of new backgrounds black/white/image)")
    out = {"unit": "8-bit levels, unknown band", "samples": rows, "mean": summary}
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

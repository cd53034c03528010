"""What matting on crops around the unknown band costs in agreement with whole frames (issue 15).

ViTMatte with random weights in a hub configuration (default: small) on (1) the real GT-alpha images of
../shared/data (mmagic GT05, foamliu Composition-1k crops; trimap = GT soft pixels dilated by 10 px) and (2) the
synthetic scene at 854x480 with the subject on ~15 % of the frame. For each crop margin: the share of the frame
the model saw, and mean / 99th percentile / max |alpha_crop - alpha_whole| over the unknown band. Random weights
make the model's answer depend on context at least as much as trained ones would; the figure bounds how far crops
move alpha, it is not a quality score. The classic engine needs no such measurement: it already solves each band
piece in its own box (vmatte/engine/classic.py) and crops are exact for it by the closed form's locality.

    python scripts/bench_crops.py [--data ../shared/data] [--model small] [--margins 32,64,96] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = Path(os.environ.get("VMATTE_SHARED", ROOT.parent / "shared")) / "data"


def real_samples(data: Path):
    """(name, rgb uint8 (H, W, 3), trimap uint8) from the GT-alpha images."""
    import cv2

    def trimap(a: np.ndarray) -> np.ndarray:
        t = np.where(a >= 255, 255, 0).astype(np.uint8)
        soft = (a > 0) & (a < 255)
        t[cv2.dilate(soft.astype(np.uint8), np.ones((21, 21), np.uint8)) > 0] = 128
        return t

    mm = data / "mmagic-testdata" / "tests" / "data" / "matting_dataset"
    pairs = [("mmagic/GT05", mm / "merged" / "GT05.jpg", mm / "alpha" / "GT05.jpg")]
    fl = data / "foamliu-dim-composition1k" / "images"
    pairs += [(f"foamliu/{i}", fl / f"{i}_image.png", fl / f"{i}_alpha.png") for i in range(10)]
    for name, img, alpha in pairs:
        if img.exists() and alpha.exists():
            rgb = cv2.imread(str(img))[..., ::-1].copy()
            a = cv2.imread(str(alpha), cv2.IMREAD_GRAYSCALE)
            yield name, rgb, trimap(a)


def scene_samples(n: int = 3):
    import math

    import cv2

    from vmatte.testing import Scene

    w, h = 854, 480
    sc = Scene(width=w, height=h, frames=n, radius=math.sqrt(0.15 * w * h / math.pi) / h, speed=2.0)
    for i in range(n):
        a = sc.alpha(i)
        t = np.full(a.shape, 128, np.uint8)
        t[a <= 0] = 0
        t[a >= 1] = 255
        t[cv2.dilate((t == 128).astype(np.uint8), np.ones((11, 11), np.uint8)) > 0] = 128
        yield f"scene854x480/{i}", (np.clip(sc.rgb(i), 0, 1) * 255).astype(np.uint8), t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default="small")
    ap.add_argument("--margins", default="32,64,96")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)

    from vmatte.engine.crops import crop_box
    from vmatte.engine.hub_configs import save_random_model
    from vmatte.engine.vitmatte import VitMatteEngine
    from vmatte.engine.weights import WeightsSource, load_model
    from vmatte.frame import Frame

    samples = list(scene_samples())
    if args.data.is_dir():
        samples += list(real_samples(args.data))
    else:
        print(f"bench_crops: {args.data} not found; synthetic scene only", file=sys.stderr)
    margins = [int(m) for m in args.margins.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        d = save_random_model(Path(tmp) / "m", args.model, seed=0)

        def engine(thr: float, margin: int) -> VitMatteEngine:
            return VitMatteEngine(
                load_model(WeightsSource("dir", str(d), str(d))),
                device="cpu",
                precision="fp32",
                crop_threshold=thr,
                crop_margin=margin,
            )

        whole_eng = engine(0.0, 0)
        crop_engs = {m: engine(1.0, m) for m in margins}
        rows = []
        for name, rgb, tri in samples:
            f = Frame(0, 0, None, rgb, trimap=tri)
            whole = (whole_eng.push(f) + whole_eng.flush())[0].alpha
            band = tri == 128
            row = {"name": name, "size": f"{rgb.shape[1]}x{rgb.shape[0]}", "band_frac": float(band.mean())}
            for m, eng in crop_engs.items():
                box = crop_box(tri, m, 1.0)
                share = 1.0 if box is None else (box[1] - box[0]) * (box[3] - box[2]) / band.size
                a = (eng.push(f) + eng.flush())[0].alpha
                diff = np.abs(a - whole)[band]
                row[f"m{m}"] = {
                    "area_share": round(share, 3),
                    "mean": float(diff.mean()),
                    "p99": float(np.percentile(diff, 99)),
                    "max": float(diff.max()),
                }
            rows.append(row)
            print(
                f"{name:<18} {row['size']:>8} band {row['band_frac']:.3f}  "
                + "  ".join(
                    f"m{m}: area {row[f'm{m}']['area_share']:.2f} mean {row[f'm{m}']['mean']:.4f} "
                    f"p99 {row[f'm{m}']['p99']:.4f}"
                    for m in margins
                ),
                flush=True,
            )
    summary = {
        f"m{m}": {
            k: float(np.mean([r[f"m{m}"][k] for r in rows if r[f"m{m}"]["area_share"] < 1.0] or [0.0]))
            for k in ("area_share", "mean", "p99", "max")
        }
        for m in margins
    }
    print("mean over samples that were cropped:", json.dumps(summary))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"model": args.model, "rows": rows, "summary": summary}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate the bundled example: examples/clip.mp4 (3 s, 480x270, 24 fps, H.264 + AAC) and keyframe masks.

The clip is procedural (vmatte.testing.Scene: a fur-edged blob moving over a panning texture), so it carries no
third-party footage and its true alpha is known. Masks are binary, drawn on frames 0 and 60 only: every other
frame's trimap must come from propagation.

    python scripts/make_example.py [--out examples]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from vmatte.testing import Scene, write_clip, write_masks

SCENE = Scene(width=480, height=270, frames=72, speed=3.0, radius=0.24, fur=0.2, seed=3)
KEYFRAMES = [0, 60]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "examples"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_clip(out / "clip.mp4", SCENE, rate=24, audio=True, options={"crf": "18", "preset": "veryslow"})
    kf = out / "keyframes"
    if kf.exists():
        shutil.rmtree(kf)
    write_masks(kf, SCENE, KEYFRAMES)
    print(
        f"wrote {out / 'clip.mp4'} ({SCENE.frames} frames, {SCENE.width}x{SCENE.height}) and masks for frames {KEYFRAMES}"
    )


if __name__ == "__main__":
    main()

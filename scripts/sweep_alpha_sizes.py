"""Which frame sizes get wrong alpha from an alpha writer: a hard matte through the real writer, decoded back.

Each size: ``--frames`` frames of random colour with alpha 0 outside a centred block and 1 inside, written by
vmatte's writer for ``--format`` with ``--threads`` encoder threads, decoded, and the stored alpha plane compared
exactly (0 / the format's maximum). ``--sws-threads 0`` restores PyAV's default threaded swscale (the layout
before the fix) to show what it broke; the default 1 is what vmatte ships. Prints the failing sizes per height.

Usage: python scripts/sweep_alpha_sizes.py [--format prores4444] [--heights 16,17] [--widths 2:2001:1]
       [--frames 4] [--threads 2] [--sws-threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_io_alpha_sizes import _check, _write  # noqa: E402

from vmatte.io import swscale  # noqa: E402
from vmatte.io.config import OutputConfig  # noqa: E402

_EXT = {"prores4444": ".mov", "qtrle": ".mov", "png-mov": ".mov", "ffv1": ".mkv"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", default="prores4444", choices=sorted(_EXT))
    ap.add_argument("--heights", default="16,17")
    ap.add_argument("--widths", default="2:2001:1", help="start:stop:step (stop exclusive)")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="encoder threads (and conversion workers)")
    ap.add_argument("--sws-threads", type=int, default=1, help="0 = PyAV's default (auto, the old layout)")
    args = ap.parse_args(argv)
    a, b, c = (int(x) for x in args.widths.split(":"))
    widths = range(a, b, c)
    swscale.SWS_THREADS = args.sws_threads
    t0 = time.perf_counter()
    bad_total = 0
    with tempfile.TemporaryDirectory(prefix="vmatte-sweep-") as tmp:
        for h in (int(x) for x in args.heights.split(",")):
            bad = []
            for w in widths:
                path = Path(tmp) / f"w{w}{_EXT[args.format]}"
                cfg = OutputConfig(path=str(path), format=args.format, decontaminate=False)
                fg = _write(cfg, w, h, args.threads, args.frames)
                try:
                    _check(path, fg, args.frames)
                except AssertionError:
                    bad.append(w)
                path.unlink()
            bad_total += len(bad)
            print(
                f"{args.format} h={h} sws_threads={args.sws_threads}: {len(bad)}/{len(widths)} widths fail {bad}"
            )
    print(f"{time.perf_counter() - t0:.0f} s")
    return 1 if bad_total else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``vmatte eval PRED GT``: score any matte clip against ground truth (reads files only; independent of run).

PRED and GT are matte videos (RGBA: the alpha channel; otherwise the gray value), image folders or printf
patterns. Frames are matched by frame number (the number in a file name; for videos timestamp x frame rate),
so a --frames 20-39 chunk can be scored against the whole clip's ground truth. Prints a table of clip values
(SAD, MSE, Grad, Conn per the DIM code; dtSSD per RVM; MESSDdt; J and F per the DAVIS toolkit when the ground
truth is binary; units and references in the table), optionally JSON (per clip and per frame, numbered with
clip frame numbers) and a PNG plot of error over time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def register(subs) -> None:
    p = subs.add_parser(
        "eval",
        help="score a matte clip against ground truth: SAD, MSE, Grad, Conn, dtSSD, MESSDdt",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pred", metavar="PRED", help="predicted matte: video, image folder or printf pattern")
    p.add_argument("gt", metavar="GT", help="ground-truth matte: video, image folder or printf pattern")
    p.add_argument(
        "--trimaps",
        metavar="PATH",
        default=None,
        help="trimaps (one per frame): also score the unknown region",
    )
    p.add_argument(
        "--json",
        metavar="FILE",
        default=None,
        help="write per-clip and per-frame results as JSON ('-' = stdout)",
    )
    p.add_argument(
        "--offset",
        type=int,
        default=0,
        metavar="N",
        help="add N to the prediction's frame numbers before matching (e.g. -1001 for a sequence that starts at "
        "1001 against 0-based ground truth)",
    )
    p.add_argument("--plot", metavar="FILE.png", default=None, help="write a PNG of error over time")
    p.add_argument("--per-frame", action="store_true", help="also print every frame's errors")
    p.add_argument(
        "--no-messddt", action="store_true", help="skip MESSDdt (it computes optical flow per frame)"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from vmatte.errors import OutputError, UsageError
    from vmatte.evaluate.score import evaluate, format_table, plot_png

    if args.plot and not args.plot.lower().endswith(".png"):
        raise UsageError(f"--plot {args.plot}: must end in .png")
    for out in (args.json, args.plot):
        if (
            out
            and out != "-"
            and os.path.abspath(out) in {os.path.abspath(args.pred), os.path.abspath(args.gt)}
        ):
            raise UsageError(f"{out}: output would overwrite an input")
    result = evaluate(args.pred, args.gt, args.trimaps, offset=args.offset, messddt=not args.no_messddt)
    if args.json != "-":
        print(format_table(result, per_frame=args.per_frame))
    if args.json:
        text = json.dumps(result, indent=2)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            try:
                os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
                with open(args.json, "w", encoding="utf-8") as fh:
                    fh.write(text + "\n")
            except OSError as exc:
                raise OutputError(f"{args.json}: cannot write ({exc.strerror})") from None
            print(f"JSON: {args.json}")
    if args.plot:
        print(f"plot: {plot_png(result, args.plot)}")
    return 0

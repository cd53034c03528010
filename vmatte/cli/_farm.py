"""``vmatte run ... --chunk N`` / ``--ray [ADDRESS]``: the render-farm paths of ``run`` (see docs/farm.md).

Same contract as a plain run: SIGINT/SIGTERM cancel cleanly (exit 130/143, the report says so), errors are
one line with the exit code of :mod:`vmatte.errors`, ``--report`` and ``--progress json`` work the same.
"""

from __future__ import annotations

import argparse

from vmatte.errors import Interrupted, UsageError


def main_farm(args: argparse.Namespace, config, progress=None) -> int:
    from vmatte.cli.run import SignalCancel, print_suggestions, signalled
    from vmatte.pipeline.progress import Progress

    chunk = args.chunk
    if chunk is not None and chunk < 1:
        raise UsageError(f"--chunk {chunk}: must be at least 1 frame")
    progress = progress or Progress(config.progress)
    with SignalCancel() as sig:
        try:
            if args.ray is not None:
                from vmatte.farm.ray_runner import run_ray

                address = None if args.ray == "local" else args.ray
                report = run_ray(
                    config,
                    chunk,
                    address=address or "local",
                    num_cpus=args.workers,
                    resume=args.resume,
                    on_progress=progress,
                    cancel=sig.event,
                )
            else:
                from vmatte.farm.chunked import run_chunked

                report = run_chunked(
                    config, chunk, resume=args.resume, on_progress=progress, cancel=sig.event
                )
        except Interrupted as exc:
            raise signalled(exc, sig.signum, config) from None
        finally:
            progress.close()
    for w in report.warnings:
        progress.warning(w)  # once each: the chunks' runs may have said them already
    done = sum(1 for c in report.chunks if c.get("status") == "done")
    skipped = sum(1 for c in report.chunks if c.get("status") == "skipped")
    where = (
        "assembled " + ", ".join(report.outputs)
        if report.farm.get("assembled")
        else (
            "chunks recorded in "
            + str(report.farm.get("manifest", "?"))
            + " (run without --frames to assemble)"
        )
    )
    if report.farm.get("note"):
        where = report.farm["note"]
    progress.info(
        f"{done} chunk(s) rendered, {skipped} already done; {report.frames_written} frames in "
        f"{report.times.total:.1f} s; {where}"
    )
    print_suggestions(report.suggested_keyframes, progress)
    progress.end("ok", 0, outputs=report.outputs, warnings=report.warnings, frames=report.frames_written)
    return 0

"""``vmatte run ... --chunk N`` / ``--ray [ADDRESS]``: the render-farm paths of ``run`` (see docs/farm.md).

Same contract as a plain run: SIGINT/SIGTERM cancel cleanly (exit 130/143, the report says so), errors are
one line with the exit code of :mod:`vmatte.errors`, ``--report`` and ``--progress json`` work the same.
"""

from __future__ import annotations

import argparse

from vmatte.errors import UsageError


def main_farm(args: argparse.Namespace, config, display=None) -> int:
    from vmatte.cli._session import interruptible, print_suggestions
    from vmatte.pipeline.progress import Progress

    chunk = args.chunk
    if chunk is not None and chunk < 1:
        raise UsageError(f"--chunk {chunk}: must be at least 1 frame")
    display = display or Progress(config.progress)

    def on_progress(event: dict) -> None:
        # a person watching sees the job (frames with ETA, chunks); the chunks' own stage events, whose counts
        # restart at every chunk, go to --progress json only. Warnings and notes always pass (said once each).
        if (
            display.mode != "json"
            and event.get("chunk")
            and event.get("stage") not in ("chunks",)
            and event.get("event") not in ("warning", "info")
        ):
            return
        display(event)

    with interruptible(config, display) as cancel:
        if args.ray is not None:
            from vmatte.farm.ray_runner import run_ray

            address = None if args.ray == "local" else args.ray
            report = run_ray(
                config,
                chunk,
                address=address or "local",
                num_cpus=args.workers,
                resume=args.resume,
                on_progress=on_progress,
                cancel=cancel,
            )
        else:
            from vmatte.farm.chunked import run_chunked

            report = run_chunked(config, chunk, resume=args.resume, on_progress=on_progress, cancel=cancel)
    for w in report.warnings:
        display.warning(w)  # once each: the chunks' runs may have said them already
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
    display.info(
        f"{done} chunk(s) rendered, {skipped} already done; {report.frames_written} frames in "
        f"{report.times.total:.1f} s; {where}"
    )
    print_suggestions(report.suggested_keyframes, display)
    display.end("ok", 0, outputs=report.outputs, warnings=report.warnings, frames=report.frames_written)
    return 0

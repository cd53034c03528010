"""``vmatte plan CLIP --masks DIR --chunk N [-o OUT ...] [--json]``: the chunk list a farm submits.

Prints each chunk's frames, the context it must also process (propagation from the keyframe before to the
keyframe after; smoothing warm-up and look-ahead; with alpha feedback, matting from the keyframe before) and
the exact ``vmatte run ... --chunk N --frames S-E`` command for it, plus the final assemble command.
"""

from __future__ import annotations

import argparse
import json
import sys

from vmatte.errors import UsageError

# flags of `plan` that are not passed on to the generated `run` commands
_PLAN_ONLY = {"chunk", "json", "frames", "func", "command", "ray", "workers", "resume", "report", "progress"}
# run flags whose values are paths: made absolute, since farm nodes run in other working directories
_PATH_FLAGS = {"input", "masks", "output", "config", "model", "composite"}


def register(subs) -> None:
    from vmatte.cli.run import add_common_input_args, add_run_args

    p = subs.add_parser(
        "plan",
        help="split a clip into farm chunks: frames, overlaps and the command line for each",
        description="Plan CLIP as chunks of N frames for a render farm; prints the command for every chunk.",
    )
    add_common_input_args(p)
    add_run_args(p)
    p.add_argument("--chunk", type=int, required=True, metavar="N", help="frames per chunk")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=main)


def _run_parser() -> argparse.ArgumentParser:
    from vmatte.cli.run import add_common_input_args, add_run_args

    p = argparse.ArgumentParser(add_help=False)
    add_common_input_args(p)
    add_run_args(p)
    return p


def run_argv(args: argparse.Namespace) -> list[str]:
    """The ``vmatte run`` argv equivalent to the run flags in ``args`` (non-default ones only, paths absolute)."""
    from vmatte.farm.plan import absolute_path

    argv = ["vmatte", "run"]
    positional: list[str] = []
    for action in _run_parser()._actions:
        dest = action.dest
        if dest in _PLAN_ONLY or dest == "help":
            continue
        value = getattr(args, dest, None)
        if value is None or value is False or value == action.default:
            continue
        fix = absolute_path if dest in _PATH_FLAGS else (lambda v: v)
        if not action.option_strings:
            positional.append(str(fix(value)))
            continue
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:  # store_true
            argv.append(flag)
        elif isinstance(value, list):
            for v in value:
                argv += [flag, str(fix(v))]
        else:
            if dest == "composite" and not any(c in str(value) for c in "/\\."):
                fix = lambda v: v  # noqa: E731 - a colour, not a path
            argv += [flag, str(fix(value))]
    return argv[:2] + positional + argv[2:]


def main(args: argparse.Namespace) -> int:
    from vmatte.cli.run import build_run_config
    from vmatte.farm.plan import plan_job

    if args.chunk < 1:
        raise UsageError(f"--chunk {args.chunk}: must be at least 1 frame")
    config = build_run_config(args)
    plan = plan_job(config, args.chunk, command=run_argv(args))
    if args.json:
        json.dump(plan.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(plan.to_text())
    return 0

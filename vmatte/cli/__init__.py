"""``vmatte`` command line. Subcommands live one per module in this package (``run.py``, ``propagate.py`` …);
each exposes ``register(subparsers)`` that adds its parser and sets ``func=main(args) -> int``.

Rules: importing a subcommand module must not import torch or av (``vmatte --help`` stays fast); a
:class:`~vmatte.errors.VmatteError` becomes one line on stderr and its exit code; anything else is a bug and
keeps its traceback (exit 1).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from vmatte import __version__
from vmatte.cli._usage import ArgError, Parser, explain_extras, first_positional, recover, subparser
from vmatte.errors import EXIT_CODES, VmatteError, cli_voice

# order in --help; modules not listed here are appended alphabetically
_ORDER = ["run", "propagate", "plan", "eval", "info", "pipelines"]


def _subcommand_modules() -> list[str]:
    found = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return [n for n in _ORDER if n in found] + sorted(n for n in found if n not in _ORDER)


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    parser = Parser(
        prog="vmatte",
        description="Alpha mattes for video from a few keyframe masks: decode → propagate → matte → smooth → encode.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vmatte {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _subcommand_modules():
        importlib.import_module(f"{__name__}.{name}").register(subs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            sub = subparser(parser, getattr(args, "command", None)) or parser
            raise ArgError(explain_extras(sub, args, extras), prog=sub.prog)
    except ArgError as exc:
        # one line, not the whole usage block; the report a farm monitor waits for is still written
        if recover(argv, "--progress") == "json":
            import json
            import time

            end = {"t": round(time.time(), 3), "event": "end", "status": "error", "exit_code": exc.exit_code}
            print(json.dumps({**end, "outputs": [], "warnings": [], "error": exc.message}), file=sys.stderr)
        else:
            print(f"vmatte: error: {exc.message}", file=sys.stderr)
        report = recover(argv, "--report")
        if report and argv and argv[0] in ("run", "plan"):
            from vmatte.cli._usage import write_error_report

            write_error_report(
                report,
                input=first_positional(argv),
                masks=recover(argv, "--masks") or "",
                outputs=[v for i, v in enumerate(argv[1:]) if argv[i] in ("-o", "--output")],
                message=exc.message,
                exit_code=exc.exit_code,
                retryable=False,
            )
        return exc.exit_code
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with cli_voice():  # hints name flags, not config fields
            return int(args.func(args) or 0)
    except VmatteError as exc:
        if not getattr(exc, "said", False):  # --progress json: already the end event
            print(f"vmatte: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vmatte: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed early (`vmatte propagate ... | head -1`): the files are complete, only the text
        # summary was cut short. Point stdout at /dev/null so the flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

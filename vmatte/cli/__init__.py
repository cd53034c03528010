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
from vmatte.errors import EXIT_CODES, VmatteError

# order in --help; modules not listed here are appended alphabetically
_ORDER = ["run", "propagate", "plan", "eval", "info", "pipelines"]


def _subcommand_modules() -> list[str]:
    found = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return [n for n in _ORDER if n in found] + sorted(n for n in found if n not in _ORDER)


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except VmatteError as exc:
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

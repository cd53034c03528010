"""Command-line mistakes as one line each: a typo'd flag gets its nearest real flag, a stray folder gets
"did you mean --masks DIR", and ``--report FILE`` is still written when it can be read from argv.

argparse's own ``error()`` prints the whole usage block and exits; :class:`Parser` raises :class:`ArgError`
instead so ``vmatte.cli.main`` can word the line, write the report and return exit 2.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path


class ArgError(Exception):
    """A bad command line: ``message`` is the one line to print (without the ``vmatte: error:`` prefix)."""

    exit_code = 2

    def __init__(self, message: str, prog: str = "vmatte") -> None:
        super().__init__(message)
        self.message = message
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors raise ArgError (subparsers inherit the class)."""

    def error(self, message: str):  # type: ignore[override]
        raise ArgError(f"{message} (see {self.prog} --help)", prog=self.prog)


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({s for a in parser._actions for s in a.option_strings if s.startswith("--")})


def subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser | None:
    """The parser of subcommand ``command`` (None when there is none)."""
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction) and command in a.choices:
            return a.choices[command]
    return None


# flags of earlier versions whose options became built-in constants (vmatte.engine.vitmatte): say so instead of
# suggesting a look-alike flag (--tile-overlap is not --tile)
REMOVED_FLAGS = {
    "--tile-overlap": "tiles overlap by a built-in 64 px (vmatte.engine.vitmatte.TILE_OVERLAP)",
    "--attention": "the attention kernel follows the device (fused SDPA on CUDA, eager on CPU, same result)",
}


def explain_extras(sub: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]) -> str:
    """One line about the first argument ``sub`` did not recognise, with the most likely intended flag."""
    first = extras[0]
    flags = option_strings(sub)
    if first.startswith("-"):
        name = first.split("=", 1)[0]
        if name in REMOVED_FLAGS and sub.prog.split()[-1] in ("run", "plan"):  # the commands that had them
            return f"{name} is no longer an option: {REMOVED_FLAGS[name]}; drop it"
        close = difflib.get_close_matches(name, flags, n=1, cutoff=0.75)
        if not close and not name.startswith("--"):  # -masks, -frames
            close = difflib.get_close_matches("-" + name, flags, n=1, cutoff=0.75)
        guess = f": did you mean {close[0]}?" if close else ""
        return f"unknown option {name}{guess} (see {sub.prog} --help)"
    # a stray positional: most often the mask folder without --masks
    if "--masks" in flags and getattr(args, "masks", None) is None and Path(first).is_dir():
        return f"unexpected argument {first!r}: did you mean --masks {first}? (see {sub.prog} --help)"
    return f"unexpected argument {first!r}: {sub.prog} takes one CLIP (see {sub.prog} --help)"


def recover(argv: list[str], flag: str) -> str | None:
    """The value of ``flag`` in a command line argparse refused (``--report FILE`` or ``--report=FILE``)."""
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def first_positional(argv: list[str]) -> str:
    """The CLIP of ``vmatte run CLIP ...`` when it can be guessed (for the report of a refused command line)."""
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    return rest[0] if rest and not rest[0].startswith("-") else ""


def write_error_report(
    report: str, *, input: str, masks: str, outputs: list[str], message: str, exit_code: int, retryable: bool
) -> None:
    """Best effort ``--report`` for a run that never started (bad command line or config): never where it
    would clobber an input or an output, and a failure to write it is not the error to report."""
    from vmatte.pipeline.prepare import report_path_problem
    from vmatte.pipeline.report import Report

    if report_path_problem(report, input or "", masks or "", list(outputs)) is not None:
        return
    rep = Report(input=input or "", status="error", exit_code=exit_code, error=message, retryable=retryable)
    rep.save(report, failing=True)

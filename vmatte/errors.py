"""The error tree. Every failure vmatte reports on purpose is a :class:`VmatteError` subclass.

Each class carries an exit code (what the CLI returns) and a ``retryable`` flag, so a render farm can retry a
lost GPU or a full disk on another node but not a bad clip. Messages are one line: what failed, where, what to do.

| exit | class            | retry | meaning                                                     |
|------|------------------|-------|-------------------------------------------------------------|
| 0    |                  |       | success                                                     |
| 1    | (uncaught)       | maybe | a bug in vmatte: please report it with the traceback        |
| 2    | UsageError       | no    | bad command line or config file                             |
| 3    | InputError       | no    | the clip cannot be read (missing, not video, corrupt)       |
| 4    | MaskError        | no    | keyframe masks are missing, unreadable or inconsistent      |
| 5    | ModelError       | no    | model weights cannot be found or loaded                     |
| 6    | DeviceError      | yes   | GPU missing, out of memory after back-off, driver fault     |
| 7    | OutputError      | no    | output path unusable (exists, same as input, not writable)  |
| 8    | TransientError   | yes   | disk full, I/O hiccup, lost worker: try again               |
| 9    | NumericsError    | yes   | NaN/Inf in model output (frames named)                      |
| 130  | Interrupted      | yes   | SIGINT (Ctrl-C)                                             |
| 143  | Interrupted      | yes   | SIGTERM (scheduler kill)                                    |
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# Who reads the messages: the command line (flags) or Python code (config fields). The library speaks API;
# ``vmatte.cli.main`` switches to flags for the duration of a command.
_VOICE = {"cli": False}


@contextlib.contextmanager
def cli_voice() -> Iterator[None]:
    """Within this block :func:`say` returns the command-line wording (used by ``vmatte.cli.main``)."""
    old = _VOICE["cli"]
    _VOICE["cli"] = True
    try:
        yield
    finally:
        _VOICE["cli"] = old


def say(cli: str, api: str) -> str:
    """The CLI or the API wording of a hint, e.g. ``say("pass --overwrite", "pass RunConfig(overwrite=True)")``."""
    return cli if _VOICE["cli"] else api


class VmatteError(Exception):
    """Base of every error vmatte raises on purpose. ``str(err)`` is the one-line message for users."""

    exit_code: int = 1
    retryable: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}: {hint}")


class UsageError(VmatteError):
    exit_code = 2


class ConfigError(UsageError):
    """A config file or preset has an unknown key or a bad value."""


class InputError(VmatteError):
    exit_code = 3


class MaskError(VmatteError):
    exit_code = 4


class ModelError(VmatteError):
    exit_code = 5


class DeviceError(VmatteError):
    exit_code = 6
    retryable = True


class OutOfMemory(DeviceError):
    """The device ran out of memory even at batch size 1."""


class OutputError(VmatteError):
    exit_code = 7


class TransientError(VmatteError):
    exit_code = 8
    retryable = True


class DiskFull(TransientError):
    """No space left while writing an output; nothing partial was left at the final path."""


class NumericsError(VmatteError):
    exit_code = 9
    retryable = True


class Interrupted(VmatteError):
    """The run was cancelled (SIGINT → 130, SIGTERM → 143, API cancel → 130)."""

    exit_code = 130
    retryable = True

    def __init__(self, message: str = "interrupted", *, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = signum
        if signum == 15:
            self.exit_code = 143


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (bug): report it with the traceback",
    2: "usage or config error: fix the command line or config file (do not retry)",
    3: "input clip unreadable or invalid (do not retry)",
    4: "keyframe masks invalid (do not retry)",
    5: "model weights missing or invalid (do not retry)",
    6: "device error, e.g. GPU lost or out of memory (retry, maybe on another node)",
    7: "output path unusable (do not retry until fixed)",
    8: "transient error, e.g. disk full or lost worker (retry)",
    9: "NaN/Inf in model output (retry; report if it repeats)",
    130: "interrupted by SIGINT or cancelled (retry)",
    143: "terminated by SIGTERM (retry)",
}

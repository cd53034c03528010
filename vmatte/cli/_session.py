"""What ``vmatte run`` does around the work, once for a plain run and for its farm paths (``--chunk``,
``--ray``): SIGINT/SIGTERM cancel cleanly (exit 130/143, the report says so; a stuck run is forced out after
removing this process's temporaries), a failing command's final ``end`` event, the end-of-run keyframe hint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from vmatte.errors import Interrupted, VmatteError
from vmatte.pipeline.threads import run_in_thread


@contextlib.contextmanager
def interruptible(config, display) -> Iterator[threading.Event]:
    """The block's cancel event, set by SIGINT/SIGTERM (see :class:`SignalCancel`). An :class:`Interrupted`
    leaving the block becomes the signal's own error (:func:`signalled`); the progress display is closed
    either way; a forced exit removes this process's temporaries first (:func:`remove_temporaries`)."""
    with SignalCancel(cleanup=lambda: remove_temporaries(config)) as sig:
        try:
            yield sig.event
        except Interrupted as exc:
            display.close()
            raise signalled(exc, sig.signum, config) from None
        finally:
            display.close()


class SignalCancel:
    """SIGINT/SIGTERM set the run's cancel event (the chain stops within ~0.1 s and cleans up).

    The clean stop gets ``grace_s`` seconds; if the main thread is stuck where it cannot look at the event (a
    model still loading, a long forward pass) the process exits anyway, and a second SIGINT/SIGTERM exits at
    once. A forced exit first runs ``cleanup`` (remove this process's temporaries) and prints one
    ``vmatte: error:`` line; its code is the documented one (130 SIGINT, 143 SIGTERM).
    """

    def __init__(self, cleanup=None, grace_s: float = 1.5) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._old: dict = {}
        self._cleanup = cleanup
        self._grace_s = grace_s
        self._lock = threading.RLock()  # re-entrant: a signal handler may run while main holds it
        self._done = False
        self._stopped = threading.Event()

    def _force(self, why: str) -> None:
        with self._lock:
            if self._done:  # the clean stop finished meanwhile: it reports itself
                return
            self._done = True
            if self._cleanup is not None:
                with contextlib.suppress(Exception):
                    self._cleanup()
            code = 143 if self.signum == signal.SIGTERM else 130
            what = "terminated by SIGTERM" if code == 143 else "cancelled (SIGINT, Ctrl-C)"
            try:
                sys.stderr.write(f"vmatte: error: {what}: {why}, exiting now (temporaries removed)\n")
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _watchdog(self) -> None:
        if not self._stopped.wait(self._grace_s):
            self._force(f"the run did not stop within {self._grace_s:g} s of the signal")

    def _handler(self, signum, _frame) -> None:
        if self.event.is_set():
            self._force("second interrupt" if signum == signal.SIGINT else "second SIGTERM")
            return
        self.signum = signum
        self.event.set()
        run_in_thread(self._watchdog, name="stop-watchdog")  # never joined: it ends the process or returns

    def __enter__(self) -> SignalCancel:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._done = True  # from here the normal path reports; a late watchdog does nothing
        self._stopped.set()
        for s, h in self._old.items():
            signal.signal(s, h)


def signalled(exc: Interrupted, signum: int | None, config) -> Interrupted:
    """The error to report for a run stopped by ``signum``: SIGTERM says "terminated" and exits 143, SIGINT
    says "cancelled" and exits 130, so a log tells a scheduler kill from a user's Ctrl-C. The report, if
    asked for, is rewritten with the same code and line."""
    term = signum == signal.SIGTERM
    what = "terminated by SIGTERM" if term else "cancelled (SIGINT, Ctrl-C)"
    detail = exc.message if exc.message not in ("cancelled", "interrupted") else ""
    out = Interrupted(
        f"{what}{f' ({detail})' if detail else ''}: outputs and temporaries removed",
        signum=signal.SIGTERM if term else signal.SIGINT,
    )
    rep = getattr(exc, "report", None)
    out.report = rep  # type: ignore[attr-defined]
    if rep is not None:
        rep.exit_code, rep.error = out.exit_code, str(out)
        if config.report:
            rep.save(config.report, failing=True)  # a full disk must not turn exit 130 into a traceback
    return out


def remove_temporaries(config) -> None:
    """Best effort, for forced exits: delete this process's temporaries (:mod:`vmatte.io.atomic`) beside each
    output, the input and the report."""
    from pathlib import Path

    from vmatte.io.atomic import remove_own_temporaries

    folders = {Path(config.input).parent} if config.input else set()
    for o in config.outputs:
        if o.path:
            p = Path(o.path)
            folders.add(p if p.is_dir() else p.parent)
    for d in list(folders):  # default sequence outputs live in a folder beside the input
        if d.is_dir():
            folders.update(
                c for c in d.iterdir() if c.is_dir() and c.name.endswith((".matte", ".matte-rgba", ".comp"))
            )
    if config.report:
        folders.add(Path(config.report).parent)
    remove_own_temporaries(folders)
    from vmatte.io.writers.common import remove_empty_folders

    remove_empty_folders()  # output folders this process created and left empty


@contextlib.contextmanager
def final_event(progress) -> Iterator[None]:
    """Give a failing command its ``end`` event (status, exit code, warnings, error; json mode) and, in json
    mode, mark the error as said so ``vmatte.cli.main`` prints no plain line after it."""
    try:
        yield
    except VmatteError as exc:
        rep = getattr(exc, "report", None)
        status = "cancelled" if isinstance(exc, Interrupted) else "error"
        progress.end(
            status,
            exc.exit_code,
            warnings=list(getattr(rep, "warnings", []) or []),
            error=str(exc),
            retryable=exc.retryable,
        )
        if progress.json:
            exc.said = True  # type: ignore[attr-defined]
        raise
    except BaseException as exc:  # a bug (traceback follows) or a Ctrl-C outside the run
        code = 130 if isinstance(exc, KeyboardInterrupt) else 1
        progress.end("cancelled" if code == 130 else "error", code, error=f"{type(exc).__name__}: {exc}")
        raise


def print_suggestions(frames: list[int], progress) -> None:
    """The end-of-run hint on where one more keyframe mask would help most (nothing when there is none)."""
    if frames:
        progress.info(f"new keyframe masks would help most on frames {frames}", suggested_keyframes=frames)

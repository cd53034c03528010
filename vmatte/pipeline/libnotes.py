"""What libraries print or warn during a run becomes one counted line each in the report, never repeated blocks.

pymatting prints a six-line ``PERFORMANCE WARNING`` block to stdout each time its incomplete Cholesky
preconditioner needs a larger diagonal shift (up to 9 times in one DAVIS run); torch/transformers issue Python
warnings. :class:`LibraryNotes` counts them by their first line; :func:`capture_prints` takes the prints of the
*calling thread only* (other threads' output passes through untouched); :func:`capture_warnings` records Python
warnings while a run is in progress.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Iterator

# known library messages: what they mean for the user (matched on the start of the message)
_EXPLAIN = {
    "PERFORMANCE WARNING: Thresholded incomplete Cholesky": (
        "pymatting retried its preconditioner with a larger diagonal shift: slower on those frames, "
        "the matte is the same"
    ),
    "Conjugate gradient descent did not converge": (
        "vmatte solved those band pieces again directly (sparse LU): the same matte, slower"
    ),
}


class LibraryNotes:
    """Counts of library messages by (source, first line). Thread-safe."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add_text(self, source: str, text: str) -> None:
        """Printed text → one count per block (blocks are separated by blank lines); a block is keyed by its
        first two lines, e.g. 'PERFORMANCE WARNING: Thresholded incomplete Cholesky decomposition failed …'."""
        for block in text.split("\n\n"):
            lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
            if lines:
                self.add(source, " ".join(lines[:2]))

    def add(self, source: str, message: str) -> None:
        with self._lock:
            self._counts[(source, message)] += 1

    def take(self) -> list[str]:
        """One line per distinct message (with its count and what it means, where known); clears the counts."""
        with self._lock:
            items, self._counts = sorted(self._counts.items(), key=lambda kv: -kv[1]), Counter()
        out = []
        for (source, message), n in items:
            short = message if len(message) <= 140 else message[:139] + "…"
            line = f"{source} said {short!r} {n} time{'s' if n != 1 else ''}"
            why = next((v for k, v in _EXPLAIN.items() if message.startswith(k)), None)
            out.append(f"{line}: {why}" if why else line)
        return out


class _Routed:
    """A stand-in for sys.stdout: writes from a thread that is capturing go to its buffer, all else through."""

    def __init__(self, real) -> None:
        self.real = real
        self.local = threading.local()

    def write(self, s: str) -> int:
        buf = getattr(self.local, "buf", None)
        if buf is not None:
            buf.append(s)
            return len(s)
        return self.real.write(s)

    def flush(self) -> None:
        if getattr(self.local, "buf", None) is None:
            self.real.flush()

    def __getattr__(self, name):
        return getattr(self.real, name)


_install_lock = threading.Lock()


@contextlib.contextmanager
def capture_prints(notes: LibraryNotes, source: str) -> Iterator[None]:
    """Within the block, what *this thread* prints to stdout is counted in ``notes`` instead of shown."""
    with _install_lock:
        if not isinstance(sys.stdout, _Routed):
            sys.stdout = _Routed(sys.stdout)
        routed = sys.stdout
    routed.local.buf = []
    try:
        yield
    finally:
        text, routed.local.buf = "".join(routed.local.buf), None
        if text.strip():
            notes.add_text(source, text)


@contextlib.contextmanager
def capture_warnings(notes: LibraryNotes) -> Iterator[None]:
    """Count Python warnings raised during the block (main thread only: the warnings filters are global, and
    an application running several runs in threads keeps its own handling)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                path = (w.filename or "python").replace("\\", "/")
                # the package that warned: site-packages/<name>/..., else the file's own name
                source = path.split("site-packages/")[1].split("/")[0] if "site-packages/" in path else path
                source = source.rsplit("/", 1)[-1]
                first = (
                    str(w.message).strip().splitlines()[0] if str(w.message).strip() else w.category.__name__
                )
                notes.add(source.removesuffix(".py"), f"{w.category.__name__}: {first}")

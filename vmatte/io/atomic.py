"""The temporary-name rule, once: everything vmatte writes appears at its final path only when complete.

A file is written as a hidden sibling ``.STEM.vmatte-tmp-PID[-TAG].EXT`` (same folder, so the rename is atomic;
same extension, so muxers and image codecs pick the format from it) and renamed into place. Because the name
says whose it is, a forced exit removes this process's temporaries (:func:`remove_own_temporaries`) and a
retried farm chunk removes those of a killed earlier attempt (:func:`temp_prefix`). Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

MARK = ".vmatte-tmp-"


def temp_path(final: str | os.PathLike, tag: str = "") -> Path:
    """Hidden sibling of ``final`` with the same extension. ``tag`` tells apart temporaries of one final path
    written at once by one process (threads)."""
    final = Path(final)
    return final.with_name(f".{final.stem}{MARK}{os.getpid()}{f'-{tag}' if tag else ''}{final.suffix}")


def temp_prefix(final: str | os.PathLike) -> str:
    """Name prefix of every process's temporaries of ``final`` (to sweep what a killed attempt left)."""
    return f".{Path(final).stem}{MARK}"


def write_text_atomic(path: str | os.PathLike, text: str, *, fsync: bool = False, tag: str = "") -> None:
    """Write ``text`` (UTF-8) under a temp name and rename it to ``path``: readers see the old file or the new
    one, never half of one. The temp file is removed if anything fails. ``fsync``: flush to disk before the
    rename (a record that must survive a crash)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, tag)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def remove_own_temporaries(folders: Iterable[str | os.PathLike]) -> None:
    """Best effort, for forced exits: delete this process's temporaries in ``folders`` (not recursive)."""
    own = re.compile(rf"^\..*{re.escape(MARK)}{os.getpid()}([.-]|$)")  # pid 12 must not match pid 123's
    for d in folders:
        d = Path(d)
        if not d.is_dir():
            continue
        for f in d.glob(f".*{MARK}*"):
            if own.match(f.name):
                with contextlib.suppress(OSError):
                    f.unlink()

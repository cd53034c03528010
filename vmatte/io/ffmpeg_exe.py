"""Which ffmpeg executable vmatte runs (the external writer, test fixtures): one rule, one place.

Order: ``$VMATTE_FFMPEG`` (a studio's own build, e.g. with ``prores_videotoolbox``) > ``ffmpeg`` on PATH >
the static binary inside the ``imageio-ffmpeg`` wheel (a dependency, so a plain ``pip install`` always has
one and no system package is needed). In-process encoding and decoding use PyAV's own FFmpeg libraries and
never need this.
"""

from __future__ import annotations

import os
import shutil

from vmatte.errors import OutputError


def ffmpeg_binary() -> str | None:
    """Path of the ffmpeg executable to run, or None when there is none.

    A set but unusable ``$VMATTE_FFMPEG`` gives None (the user asked for that binary: no silent substitute).
    """
    env = os.environ.get("VMATTE_FFMPEG")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def ffmpeg_source(binary: str) -> str:
    """Where ``binary`` came from, for ``vmatte info``: "VMATTE_FFMPEG", "PATH" or "imageio-ffmpeg"."""
    if os.environ.get("VMATTE_FFMPEG"):
        return "VMATTE_FFMPEG"
    return "PATH" if shutil.which("ffmpeg") == binary else "imageio-ffmpeg"


def require_ffmpeg(what: str) -> str:
    """:func:`ffmpeg_binary` or a one-line OutputError naming ``what`` needed it and how to provide one."""
    binary = ffmpeg_binary()
    if binary is not None:
        return binary
    env = os.environ.get("VMATTE_FFMPEG")
    if env:
        raise OutputError(
            f"{what}: no ffmpeg executable at VMATTE_FFMPEG={env}",
            hint="point VMATTE_FFMPEG at an ffmpeg binary or unset it",
        )
    raise OutputError(
        f"{what}: no ffmpeg executable found (VMATTE_FFMPEG unset, none on PATH, imageio-ffmpeg missing)",
        hint="pip install imageio-ffmpeg, set VMATTE_FFMPEG=/path/to/ffmpeg, or use writer = 'pyav'",
    )

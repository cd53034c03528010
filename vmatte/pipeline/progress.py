"""Progress reporting: a tqdm bar on a terminal, plain periodic lines otherwise, JSON lines for farm monitors.

The runner calls ``on_progress(event: dict)`` with ``{"stage", "done", "total", "fps", "eta_s"}``; the CLI turns
events into one of the displays below. Library code never prints.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


class Progress:
    """Display for progress events. ``mode``: "auto", "bar", "lines", "json", "none"."""

    def __init__(self, mode: str = "auto", stream: TextIO | None = None, interval_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.interval_s = interval_s
        self._bars: dict[str, Any] = {}
        self._last_line = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        if self.mode == "none":
            return
        if self.mode == "json":
            self.stream.write(json.dumps({"t": round(time.time(), 3), **event}) + "\n")
            self.stream.flush()
            return
        stage, done, total = event.get("stage", ""), event.get("done", 0), event.get("total")
        if self.mode == "bar":
            from tqdm import tqdm

            bar = self._bars.get(stage)
            if bar is None:
                bar = self._bars[stage] = tqdm(
                    total=total, desc=stage, unit="frame", file=self.stream, leave=True
                )
            bar.update(done - bar.n)
            if total is not None and done >= total:
                bar.close()
            return
        now = time.monotonic()
        final = total is not None and done >= total
        if final or now - self._last_line >= self.interval_s:
            self._last_line = now
            pct = f" ({100.0 * done / total:.0f}%)" if total else ""
            fps = event.get("fps")
            eta = event.get("eta_s")
            extra = (f", {fps:.2f} frames/s" if fps else "") + (
                f", ETA {eta:.0f} s" if eta is not None and not final else ""
            )
            self.stream.write(f"vmatte: {stage} {done}/{total if total is not None else '?'}{pct}{extra}\n")
            self.stream.flush()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()

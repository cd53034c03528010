"""What a command prints on stderr while it runs: a tqdm bar on a terminal, plain periodic lines otherwise, JSON
lines for farm monitors.

The runner calls ``on_progress(event: dict)`` with progress events ``{"stage", "done", "total", "fps",
"eta_s"}`` and message events ``{"event": "warning" | "info", "message"}`` (the engine fallback, which mask file
became which keyframe, ...) as they happen, so a run that later fails or is cancelled has already said them.
The CLI adds ``wrote ...``, keyframe suggestions and one final ``{"event": "end", "status", "exit_code",
"outputs", "warnings", "error"}``. In ``json`` mode every line is one JSON object; in the other modes messages
are ``vmatte: warning: ...`` / ``vmatte: ...`` lines and the end event prints nothing (the CLI has already said
"wrote ..." or its one error line). A message repeated verbatim (e.g. by every chunk of a farm run) prints once.
Library code never prints.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


class Progress:
    """Display for progress and message events. ``mode``: "auto", "bar", "lines", "json", "none" ("none"
    still prints warnings and the CLI's own lines: it silences progress only)."""

    def __init__(self, mode: str = "auto", stream: TextIO | None = None, interval_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.interval_s = interval_s
        self._bars: dict[str, Any] = {}
        self._last_line = 0.0
        self._said: set[tuple[str, str]] = set()
        self.warnings: list[str] = []  # every warning shown (for the end event)
        self.ended = False

    @property
    def json(self) -> bool:
        return self.mode == "json"

    def _json(self, obj: dict[str, Any]) -> None:
        self.stream.write(json.dumps({"t": round(time.time(), 3), **obj}, default=str) + "\n")
        self.stream.flush()

    def _text(self, line: str) -> None:
        if self._bars:  # keep a live bar intact
            from tqdm import tqdm

            tqdm.write(line, file=self.stream)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind in ("warning", "info"):
            skip = ("event", "message", "stage", "done", "total")  # see report.message_event
            self.message(
                kind, str(event.get("message", "")), **{k: v for k, v in event.items() if k not in skip}
            )
            return
        if kind == "end":
            self.end(**{k: v for k, v in event.items() if k != "event"})
            return
        if self.mode == "none":
            return
        if self.mode == "json":
            self._json({"event": "progress", **event})
            return
        self._show_progress(event)

    def message(self, kind: str, text: str, **extra: Any) -> None:
        """A warning or an info line, shown once per distinct text."""
        if (kind, text) in self._said:
            return
        self._said.add((kind, text))
        if kind == "warning":
            self.warnings.append(text)
        if self.mode == "json":
            self._json({"event": kind, "message": text, **extra})
        else:
            self._text(f"vmatte: warning: {text}" if kind == "warning" else f"vmatte: {text}")

    def warning(self, text: str) -> None:
        self.message("warning", text)

    def info(self, text: str, **extra: Any) -> None:
        self.message("info", text, **extra)

    def end(
        self,
        status: str,
        exit_code: int,
        outputs: list[str] | None = None,
        warnings: list[str] | None = None,
        error: str = "",
        **extra: Any,
    ) -> None:
        """The last event of a command (json mode only; once)."""
        if self.ended:
            return
        self.ended = True
        self.close()
        if self.mode == "json":
            ws = list(dict.fromkeys([*self.warnings, *(warnings or [])]))
            self._json(
                {
                    "event": "end",
                    "status": status,
                    "exit_code": int(exit_code),
                    "outputs": list(outputs or []),
                    "warnings": ws,
                    "error": error,
                    **extra,
                }
            )

    def _show_progress(self, event: dict[str, Any]) -> None:
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
                del self._bars[stage]
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

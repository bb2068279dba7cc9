"""The demo's progress on stderr: a line per change, and a ticking status line while it waits."""

from __future__ import annotations

import time
from typing import IO


class Progress:
    """Progress on stderr: a line per change, and a ticking status line while waiting.

    On a terminal the status line is rewritten in place; elsewhere (CI, a pipe) it is printed
    as a line every ``heartbeat`` seconds, so a log still shows that the demo is alive.

    :param stream: Where to write (stderr).
    :param heartbeat: Seconds between status lines when ``stream`` is not a terminal.
    """

    def __init__(self, stream: IO[str], heartbeat: float = 5.0) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.heartbeat = heartbeat
        self._last_tick = 0.0
        self._ticking = False

    def elapsed(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        """Print one progress line, prefixed with the seconds since the start.

        :param message: The line.
        """
        self._clear()
        self.stream.write(f"[{self.elapsed():6.1f}s] {message}\n")
        self.stream.flush()

    def tick(self, status: str) -> None:
        """Show that the demo is waiting, and on what.

        :param status: What it waits for.
        """
        now = time.monotonic()
        if self.tty:
            self.stream.write(f"\r\033[K  ... {self.elapsed():5.0f}s  {status}")
            self._ticking = True
            self.stream.flush()
        elif now - self._last_tick >= self.heartbeat:
            self._last_tick = now
            self.say(f"... still waiting: {status}")

    def _clear(self) -> None:
        if self._ticking:
            self.stream.write("\r\033[K")
            self._ticking = False

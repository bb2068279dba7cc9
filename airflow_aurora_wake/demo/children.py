"""The demo's child processes: each in its own process group, logged to a file, always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from airflow_aurora_wake.demo.progress import Progress


class DemoTimeout(Exception):
    """A child did not finish before its deadline."""


@dataclass
class Child:
    """A child process in its own process group, output to a log file; :meth:`stop` ends the group.

    :param argv: The command.
    :param env: Its whole environment.
    :param log_path: Where its stdout and stderr go.
    """

    argv: Sequence[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        """End the whole process group (also grandchildren), politely then forcefully."""
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(self.proc.pid):
                break
        if self.proc.poll() is None:
            self.proc.wait()

    def wait(
        self,
        *,
        deadline: float,
        progress: Progress,
        status: Callable[[], str],
        on_poll: Callable[[], None] = lambda: None,
    ) -> int:
        """Wait for the child to exit, polling for progress; return its exit status.

        :param deadline: ``time.monotonic()`` value to give up at.
        :param progress: The progress printer.
        :param status: What is being waited for, for the ticking line.
        :param on_poll: Called every quarter second (progress lines).
        :raises DemoTimeout: Past ``deadline``.
        """
        while True:
            try:
                code = self.proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                code = None
            on_poll()
            if code is not None:
                return code
            if time.monotonic() > deadline:
                raise DemoTimeout
            progress.tick(status())


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True

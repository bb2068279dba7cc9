"""The emulator in a separate process, driven through its CLI and its admin HTTP routes.

The benchmark never runs the emulator in the process it measures: its moto server, proxies and
threads would pollute the CPU, memory and event-loop figures of the waiters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class EmulatorProcess:
    """One ``airflow-aurora-wake emulator`` process and its admin client.

    :param extra_args: more CLI flags (timings, faults).
    :param startup_timeout: seconds to wait for the ready JSON line.
    """

    extra_args: list[str] = field(default_factory=list)
    startup_timeout: float = 60.0
    endpoint_url: str = ""
    region: str = "us-east-1"
    process: subprocess.Popen[str] | None = None
    placeholder: dict[str, Any] = field(default_factory=dict)
    _stderr_tail: list[str] = field(default_factory=list)

    def start(self) -> EmulatorProcess:
        """Start the process and read its ready line."""
        command = [
            sys.executable,
            "-m",
            "airflow_aurora_wake.cli",
            "emulator",
            "--log-level",
            "WARNING",
            # One placeholder cluster (the CLI always makes one); the benchmark adds its own.
            "--cluster",
            "bench-placeholder:serverless-v2:aurora-postgresql,state=available",
            *self.extra_args,
        ]
        env = {k: v for k, v in os.environ.items() if k != "MOTO_ACCOUNT_ID"}
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
        )
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        line = self._read_ready_line()
        ready = json.loads(line)
        self.endpoint_url = ready["endpoint_url"]
        self.region = ready["region"]
        self.placeholder = ready["clusters"][0]
        return self

    def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr_tail.append(line)
            del self._stderr_tail[:-50]

    def _read_ready_line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.startup_timeout)
        if not result or not result[0].strip():
            self.stop()
            raise RuntimeError("the emulator did not start: " + "".join(self._stderr_tail[-10:]))
        return result[0]

    @property
    def pid(self) -> int:
        """The emulator's process id."""
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM the emulator (its own process group) and wait for it."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- admin routes ------------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call an admin route and return its JSON answer.

        :param method: ``GET`` or ``POST``.
        :param path: the route below ``/_emulator``.
        :param body: the JSON body of a ``POST``.
        """
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            f"{self.endpoint_url}/_emulator{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"emulator admin {method} {path}: {exc.code} {exc.read()!r}") from None

    def add_cluster(self, identifier: str, **spec: Any) -> dict[str, Any]:
        """Create an emulated cluster (``ClusterSpec`` fields as keywords); return its endpoint."""
        answer: dict[str, Any] = self.admin("POST", "/clusters", {"identifier": identifier, **spec})
        return answer

    def add_clusters(self, specs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Create many clusters, one admin call each."""
        return [self.add_cluster(**dict(spec)) for spec in specs]

    def state(self) -> dict[str, Any]:
        """``GET /_emulator/state``."""
        answer: dict[str, Any] = self.admin("GET", "/state")
        return answer

    def counters(self) -> dict[str, Any]:
        """``GET /_emulator/counters``."""
        answer: dict[str, Any] = self.admin("GET", "/counters")
        return answer

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge fault settings (``POST /_emulator/faults``)."""
        answer: dict[str, Any] = self.admin("POST", "/faults", faults)
        return answer

    def aws_env(self) -> dict[str, str]:
        """Environment variables that point boto3 clients at this emulator."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def wait_healthy(self, seconds: float = 10.0) -> None:
        """Block until the admin health route answers."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.admin("GET", "/health")
                return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

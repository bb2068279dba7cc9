"""A real Airflow 3 deployment for the end-to-end test: separate processes, each in its own group.

:class:`AirflowDeployment` prepares a throwaway ``AIRFLOW_HOME`` (SQLite metadata database,
LocalExecutor with a parallelism of 1, the API server on a free port with the execution API
URL matching it) and starts ``airflow scheduler``, ``dag-processor``, ``api-server`` and
``triggerer`` as separate processes, each with ``start_new_session=True`` so it and everything
it forks can be signalled as one process group. Separate processes (rather than
``airflow standalone``) let the test kill and restart the triggerer alone.

Every process started here carries a marker environment variable; :meth:`leftovers` finds any
process that still carries it (also one that left its group), so the test can prove that
nothing is left running. Airflow's own records (metadata database, read-only, and task logs)
are read by :class:`~e2e_records.AirflowRecords`, which the deployment inherits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
from e2e_records import AirflowRecords

T = TypeVar("T")

AIRFLOW_BIN = Path(sys.executable).with_name("airflow")
#: The environment variable (and its value) that marks every process of one deployment.
MARKER_VARIABLE = "AURORA_WAKE_E2E_MARKER"
#: How long a process group may take to exit after SIGTERM before it gets SIGKILL.
TERM_GRACE_SECONDS = 20.0
#: Seconds between two looks at Airflow's records while waiting for a state.
POLL_SECONDS = 0.5


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StartedProcess:
    """One Airflow command started by the deployment.

    :param name: Short name (``scheduler``, ``triggerer-1``...), also the log file's name.
    :param popen: The process (the leader of its own process group).
    :param log_path: Where its stdout and stderr go.
    """

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    expected_exit: bool = False

    @property
    def pgid(self) -> int:
        """The process group id (the leader's pid: it was started in a new session)."""
        return self.popen.pid


@dataclass
class AirflowDeployment(AirflowRecords):
    """A throwaway Airflow 3 installation run as separate processes, and its records.

    :param home: The ``AIRFLOW_HOME`` (created if missing); DAG files go to ``home / "dags"``.
    :param extra_env: Connections, variables and AWS settings for every Airflow process.
    :param parallelism: ``[core] parallelism``: executor slots of the scheduler.
    """

    home: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    parallelism: int = 1
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    processes: dict[str, StartedProcess] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags_folder.mkdir(exist_ok=True)
        self.logs_folder.mkdir(exist_ok=True)

    # ------------------------------------------------------------------ layout
    @property
    def dags_folder(self) -> Path:
        """The DAGs folder the dag processor parses."""
        return self.home / "dags"

    @property
    def logs_folder(self) -> Path:
        """Where each process's stdout/stderr is written (task logs are under ``home/logs``)."""
        return self.home / "process-logs"

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of every Airflow process: this deployment's settings only.

        The test process's own ``AIRFLOW_*`` settings (the unit tests' Airflow home) are
        dropped, so nothing leaks from the pytest session into the deployment.

        :param overrides: Extra variables for one process.
        """
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW_", "AIRFLOW__", "AURORA_WAKE_TEST_", "AWS_"))
        }
        execution_api = f"http://127.0.0.1:{self.api_port}/execution/"
        settings = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution_api,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.database_path}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": f"e2e-{self.marker}",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # A killed triggerer is noticed after this many seconds without a heartbeat, and
            # its triggers go to the next triggerer (the default is 30 s).
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "12",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "5",
            MARKER_VARIABLE: self.marker,
        }
        return {**base, **settings, **self.extra_env, **overrides}

    # --------------------------------------------------------------- processes
    def run_cli(self, *args: str, timeout: float = 180.0) -> str:
        """Run one ``airflow`` CLI command to completion; return its stdout.

        It runs in its own process group too, killed whole if it overruns ``timeout``.

        :param args: The command's arguments after ``airflow``.
        :param timeout: Seconds it may take.
        :raises AssertionError: When it fails or overruns, with its output.
        """
        with subprocess.Popen(
            [str(AIRFLOW_BIN), *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ) as popen:
            try:
                out, _ = popen.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(popen.pid, signal.SIGKILL)
                out, _ = popen.communicate()
                raise AssertionError(
                    f"airflow {' '.join(args)} took more than {timeout} s:\n{out.decode(errors='replace')}"
                ) from None
        text = out.decode(errors="replace")
        if popen.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {popen.returncode}:\n{text}")
        return text

    def start(self, name: str, *args: str, **env_overrides: str) -> StartedProcess:
        """Start a long-running ``airflow`` command in a new process group.

        :param name: Short unique name (log file name, key in :attr:`processes`).
        :param args: The command's arguments after ``airflow``.
        :param env_overrides: Extra environment for this process only.
        """
        assert name not in self.processes, f"{name} already started"
        log_path = self.logs_folder / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [str(AIRFLOW_BIN), *args],
                env=self.env(**env_overrides),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started = StartedProcess(name, popen, log_path)
        self.processes[name] = started
        return started

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, timeout: float = 30.0) -> None:
        """Signal a process's whole group and wait (bounded) until every member is gone.

        :param name: The process's name.
        :param sig: The signal (``SIGKILL`` simulates a crash).
        :param timeout: Seconds the group may take to disappear.
        """
        started = self.processes[name]
        _kill_group(started.pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            started.popen.wait(timeout=timeout)
        self._wait_group_gone(started.pgid, timeout)

    def stop_all(self) -> list[str]:
        """Stop every process group: SIGTERM, then SIGKILL after a grace period.

        Safe to call more than once and after a failure. Any process that still carries this
        deployment's marker afterwards (one that left its group) is killed by pid, and
        described in the returned list, which is empty when the groups held everything.
        """
        for started in self.processes.values():
            if _group_alive(started.pgid):
                _kill_group(started.pgid, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_SECONDS
        for started in self.processes.values():
            remaining = max(0.1, deadline - time.monotonic())
            with contextlib.suppress(subprocess.TimeoutExpired):
                started.popen.wait(timeout=remaining)
            if not self._wait_group_gone(started.pgid, max(0.1, deadline - time.monotonic())):
                _kill_group(started.pgid, signal.SIGKILL)
                self._wait_group_gone(started.pgid, 10.0)
            if started.popen.poll() is None:
                started.popen.kill()
                started.popen.wait(timeout=10)
        stragglers = self.leftovers()
        described = []
        for process in stragglers:
            with contextlib.suppress(psutil.Error):
                described.append(f"pid {process.pid}: {' '.join(process.cmdline())}")
                process.kill()
        psutil.wait_procs(stragglers, timeout=10)
        return described

    def leftovers(self) -> list[psutil.Process]:
        """Processes still running that this deployment started (marker in their environment)."""
        found = []
        for process in psutil.process_iter():
            try:
                if process.environ().get(MARKER_VARIABLE) == self.marker and process.status() not in (
                    psutil.STATUS_ZOMBIE,
                    psutil.STATUS_DEAD,
                ):
                    found.append(process)
            except (psutil.Error, OSError):
                continue
        return found

    def group_members(self, name: str) -> list[psutil.Process]:
        """Live members of one started process's group."""
        return _group_members(self.processes[name].pgid)

    def _wait_group_gone(self, pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while _group_alive(pgid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of every process's log, for failure messages."""
        parts = []
        for started in self.processes.values():
            try:
                text = started.log_path.read_text(errors="replace").splitlines()[-lines:]
            except OSError as exc:
                text = [f"<unreadable: {exc}>"]
            state = "running" if started.popen.poll() is None else f"exited {started.popen.returncode}"
            parts.append(f"----- {started.name} ({state}) {started.log_path}\n" + "\n".join(text))
        return "\n".join(parts)

    # ---------------------------------------------------------------- REST API
    def api(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, timeout: float = 30.0
    ) -> Any:
        """Call the API server's REST API (the simple auth manager makes every caller admin).

        :param method: HTTP method.
        :param path: Path under the server, e.g. ``/api/v2/dags``.
        :param body: JSON body.
        :param timeout: Seconds the request may take.
        :raises AssertionError: On an HTTP error, with the server's answer.
        """
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(
                f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')}"
            ) from None

    def api_ready(self) -> bool | None:
        """``True`` once the API server answers its health check, else ``None`` (for :meth:`wait_for`)."""
        try:
            self.api("GET", "/api/v2/monitor/health", timeout=5)
        except (AssertionError, OSError):
            return None
        return True

    def trigger_dag(self, dag_id: str, run_id: str) -> None:
        """Create a manual DAG run through the REST API, as a user would.

        :param dag_id: The DAG.
        :param run_id: The run id to give it.
        """
        self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})

    # ------------------------------------------------------------------ waiting
    def wait_for(
        self,
        what: str,
        check: Callable[[], T | None],
        timeout: float,
        *,
        fail_if: Callable[[], str | None] = lambda: None,
    ) -> T:
        """Poll ``check`` (bounded by ``timeout``) until it returns something other than ``None``.

        Synchronises on Airflow's records, never on a fixed delay; a process that died, or
        ``fail_if`` returning a reason, ends the wait at once.

        :param what: What is awaited, for the failure message.
        :param check: Returns the awaited value, or ``None`` while not there yet.
        :param timeout: Seconds to wait at most.
        :param fail_if: Returns a reason to stop waiting (e.g. the run failed), or ``None``.
        :raises AssertionError: On timeout or failure, with every process's log tail.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value is not None:
                return value
            reason = fail_if() or self._dead_process()
            if reason is None and time.monotonic() >= deadline:
                reason = f"not within {timeout} s"
            if reason is not None:
                raise AssertionError(f"waiting for {what}: {reason}\n{self.log_tails()}")
            time.sleep(POLL_SECONDS)

    def _dead_process(self) -> str | None:
        for started in self.processes.values():
            if started.popen.poll() is not None and not started.expected_exit:
                return f"{started.name} exited with {started.popen.returncode}"
        return None

    def expect_exit(self, name: str) -> None:
        """Mark a process as deliberately stopped, so waits do not treat its exit as a failure.

        :param name: The process's name.
        """
        self.processes[name].expected_exit = True


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() not in (
                psutil.STATUS_ZOMBIE,
                psutil.STATUS_DEAD,
            ):
                members.append(process)
        except (psutil.Error, OSError):
            continue
    return members


def _group_alive(pgid: int) -> bool:
    return bool(_group_members(pgid))


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@contextlib.contextmanager
def deployment(home: Path, extra_env: Mapping[str, str], parallelism: int = 1) -> Iterator[AirflowDeployment]:
    """An :class:`AirflowDeployment` whose processes are always stopped on exit (also on error).

    :param home: The ``AIRFLOW_HOME``.
    :param extra_env: Connections, variables and AWS settings.
    :param parallelism: Executor slots.
    """
    airflow = AirflowDeployment(home=home, extra_env=extra_env, parallelism=parallelism)
    try:
        yield airflow
    finally:
        airflow.stop_all()

"""``airflow-aurora-wake demo``: wake an emulated paused Aurora cluster with a real Airflow DAG run.

What it does, in order:

1. checks what it needs: the emulator (``airflow-aurora-wake[demo]``), the SQL provider of each
   engine, and a real database server per engine (the emulated clusters are proxies in front
   of it). PostgreSQL defaults to ``postgresql://postgres@127.0.0.1:5432/test`` and MySQL to
   ``mysql://root@127.0.0.1:3306/test``; MySQL is included only when that server answers (or
   ``--mysql-dsn`` is given). Nothing usable: a message saying what to give, exit status 2;
2. starts the emulator in this process with a paused Serverless v2 cluster per engine
   (``demo-pg``, ``demo-mysql``);
3. prepares a throwaway Airflow home on SQLite in a temporary folder, with the connections as
   ``AIRFLOW_CONN_*`` and the Variables as ``AIRFLOW_VAR_*`` environment variables of the
   child processes only, runs ``airflow db migrate``, then the runner
   (:mod:`airflow_aurora_wake.demo.runner`), which runs the example DAG with ``dag.test()``
   once per cluster;
4. while it waits, prints a line per change (the emulator's timeline, the task instances'
   states) and a ticking status line on stderr;
5. prints a timeline per cluster on stdout, and where the logs are; stops the emulator and
   every child process group, and removes the temporary folder unless ``--keep`` (a failed run
   keeps it, for its logs).

Exit status: 0 every DAG run succeeded, 1 a run failed or timed out, 2 something it needs is
missing (with what to do), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from airflow_aurora_wake.core.errors import AuroraWakeError, classify_error, safe_error_text
from airflow_aurora_wake.core.probes import DatabaseTarget, probe_database
from airflow_aurora_wake.core.validation import ParsedDsn, parse_dsn
from airflow_aurora_wake.demo.timeline import build_steps, describe_cluster, render_timeline

DAG_ID = "example_aurora_serverless_wake"
#: The example DAG's ETL table (see the DAG's documentation).
TABLE = "aurora_wake_example_sales"
TASK_ORDER = ("wake", "ready", "create_table", "load_rows", "read_back")
#: The example DAG, shipped in the package (a link to ``example_dags/`` in the repository).
DAG_FILE = Path(__file__).resolve().parent / "dags" / f"{DAG_ID}.py"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL_DSN = "mysql://root@127.0.0.1:3306/test"
DEFAULT_RESUME_SECONDS = 15.0
DEFAULT_TIMEOUT = 300.0
PROBE_TIMEOUT = 5.0
MIGRATE_TIMEOUT = 240.0
EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 130
_DSN_FORM = {
    "postgresql": "postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
    "mysql": "mysql://USER:PASSWORD@HOST:PORT/DATABASE",
}


class DemoSetupError(Exception):
    """Something the demo needs is missing; the message says what and how to give it (exit 2)."""


class DemoTimeout(Exception):
    """The DAG runs did not finish within ``--timeout``."""


@dataclass
class EngineSetup:
    """One engine the demo runs: its real server, emulated cluster and Airflow connection.

    :param label: ``postgresql`` or ``mysql``.
    :param dsn: The real server (password never shown).
    :param cluster: The emulated cluster's identifier.
    :param conn_id: The Airflow connection id of the database.
    """

    label: str
    dsn: ParsedDsn
    cluster: str
    conn_id: str
    table_existed: bool = True

    @property
    def engine(self) -> str:
        """The Aurora engine name of the emulated cluster."""
        return "aurora-postgresql" if self.label == "postgresql" else "aurora-mysql"

    @property
    def conn_type(self) -> str:
        """The Airflow connection type."""
        return "postgres" if self.label == "postgresql" else "mysql"

    def shown(self) -> str:
        """The DSN without its password."""
        return show_dsn(self.dsn)


def show_dsn(dsn: ParsedDsn) -> str:
    """``scheme://user@host:port/database``: never the password.

    :param dsn: A parsed DSN.
    """
    return f"{dsn.engine}://{dsn.user or ''}@{dsn.host}:{dsn.port}/{dsn.database or ''}"


# ------------------------------------------------------------------------------ progress
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


# ---------------------------------------------------------------------------- the parser
def _seconds(minimum: float, maximum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{text!r}: give {minimum:g} to {maximum:g} seconds")
        return value

    return parse


def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``demo`` sub-command.

    :param subparsers: The top-level parser's sub-parsers action.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="see it work: an Airflow DAG wakes an emulated paused Aurora cluster, waits, runs an ETL",
        description=(
            "Start the emulator with a paused Aurora Serverless v2 cluster (PostgreSQL, and MySQL "
            "when a server is reachable), run the example DAG example_aurora_serverless_wake "
            "against it in a throwaway Airflow home (SQLite, temporary folder), and print the "
            "timeline: paused, wake requested, resume, ready, ETL done. Needs a real PostgreSQL "
            "or MySQL/MariaDB server for the emulated clusters to sit in front of. Leaves "
            "nothing running, and nothing behind but the temporary folder with --keep."
        ),
    )
    parser.add_argument(
        "--postgres-dsn",
        metavar="DSN",
        help=f"the PostgreSQL server behind the emulated cluster, {_DSN_FORM['postgresql']}; the "
        f"user must be able to create a table (default: {DEFAULT_POSTGRES_DSN})",
    )
    parser.add_argument(
        "--mysql-dsn",
        metavar="DSN",
        help=f"the MySQL/MariaDB server behind a second cluster, {_DSN_FORM['mysql']} (default: "
        f"{DEFAULT_MYSQL_DSN}, used only when it answers)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="leave PostgreSQL out")
    parser.add_argument("--no-mysql", action="store_true", help="leave MySQL out")
    parser.add_argument(
        "--resume-seconds",
        type=_seconds(0.5, 600),
        default=DEFAULT_RESUME_SECONDS,
        help=f"seconds the emulated cluster takes to resume (default: {DEFAULT_RESUME_SECONDS:g}, as on AWS)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds(10, 3600),
        default=DEFAULT_TIMEOUT,
        help=f"give up on the DAG runs after this many seconds (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (Airflow home, logs) instead of removing it",
    )
    parser.set_defaults(handler=run_demo)
    return parser


# ------------------------------------------------------------------- checking the set-up
def _distribution_installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


async def _probe(dsn: ParsedDsn) -> None:
    assert dsn.host is not None and dsn.port is not None and dsn.user is not None
    target = DatabaseTarget(
        engine=dsn.engine,
        host=dsn.host,
        port=dsn.port,
        user=dsn.user,
        database=dsn.database,
        password=dsn.password,
    )
    await probe_database(target, connect_timeout=PROBE_TIMEOUT)


async def _execute(dsn: ParsedDsn, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
    """Run statements on the real server (not through the emulator); return each first row."""
    assert dsn.host is not None and dsn.port is not None
    results: list[Any] = []
    if dsn.engine == "postgresql":
        import asyncpg

        pg = await asyncpg.connect(
            host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password, database=dsn.database,
            timeout=PROBE_TIMEOUT,
        )  # fmt: skip
        try:
            for sql, params in statements:
                results.append(await pg.fetchrow(sql.replace("%s", "$1"), *params))
        finally:
            await pg.close()
        return results
    import aiomysql

    my = await aiomysql.connect(
        host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password or "", db=dsn.database,
        connect_timeout=PROBE_TIMEOUT, autocommit=True,
    )  # fmt: skip
    try:
        async with my.cursor() as cursor:
            for sql, params in statements:
                await cursor.execute(sql, tuple(params))
                results.append(await cursor.fetchone() if cursor.description else None)
    finally:
        my.close()
    return results


def table_exists(dsn: ParsedDsn) -> bool:
    """Whether the example DAG's table already exists in the server's database.

    When that cannot be read, the answer is ``True``: the demo then never drops the table.

    :param dsn: The real server.
    """
    schema = "current_schema()" if dsn.engine == "postgresql" else "DATABASE()"
    try:
        (row,) = asyncio.run(
            _execute(
                dsn,
                [
                    (
                        "SELECT COUNT(*) FROM information_schema.tables "
                        f"WHERE table_schema = {schema} AND table_name = %s",
                        [TABLE],
                    )
                ],
            )
        )
    except Exception:
        return True
    return bool(row[0])


def remove_demo_rows(dsn: ParsedDsn, run_id: str, *, drop_table: bool) -> None:
    """Delete the rows one demo run wrote, and the table when the demo created it.

    :param dsn: The real server.
    :param run_id: The DAG run id the rows are tagged with.
    :param drop_table: Drop the table too (it did not exist before the demo).
    """
    statements: list[tuple[str, Sequence[Any]]] = [(f"DELETE FROM {TABLE} WHERE run_id = %s", [run_id])]
    if drop_table:
        statements.append((f"DROP TABLE IF EXISTS {TABLE}", []))
    asyncio.run(_execute(dsn, statements))


def check_server(dsn: ParsedDsn) -> tuple[bool, str | None]:
    """Log in to a real server once: ``(reachable, problem)``; ``(True, None)`` when it works.

    :param dsn: The server.
    :returns: ``reachable`` is False when nothing answered (refused, timeout, DNS); ``problem``
        says what went wrong, without the password.
    """
    try:
        asyncio.run(_probe(dsn))
    except Exception as exc:
        verdict = classify_error(
            exc, where=dsn.engine, attempt=2, target=show_dsn(dsn), secrets=[dsn.password]
        )
        if verdict.retry:
            return False, f"nothing answers at {dsn.host}:{dsn.port} ({verdict.reason})"
        error = verdict.error
        text = str(error) if error is not None else safe_error_text(exc, [dsn.password])
        return True, text
    return True, None


def _parse(value: str, flag: str, engine: str) -> ParsedDsn:
    try:
        dsn = parse_dsn(value, flag)
    except AuroraWakeError as exc:
        raise DemoSetupError(f"{flag}: {exc}") from None
    if dsn.engine != engine:
        raise DemoSetupError(f"{flag} needs a {engine} DSN: {_DSN_FORM[engine]}")
    if not dsn.database:
        raise DemoSetupError(
            f"{flag} {show_dsn(dsn)} names no database: the demo creates its table in it; "
            f"give {_DSN_FORM[engine]}"
        )
    default_port = 5432 if engine == "postgresql" else 3306
    default_user = "postgres" if engine == "postgresql" else "root"
    return ParsedDsn(
        engine=dsn.engine,
        user=dsn.user or default_user,
        host=dsn.host or "127.0.0.1",
        port=dsn.port or default_port,
        database=dsn.database,
        password=dsn.password,
    )


def _needs_message(problems: Sequence[str]) -> str:
    lines = [
        "The demo needs a real PostgreSQL or MySQL/MariaDB server: each emulated Aurora cluster is "
        "a proxy in front of one, and the example DAG creates a table in it.",
        *(f"  - {problem}" for problem in problems),
        "Give the server with a DSN (the user must log in over TCP and be allowed to create a table):",
        f"  airflow-aurora-wake demo --postgres-dsn {_DSN_FORM['postgresql']}",
        f"  airflow-aurora-wake demo --mysql-dsn {_DSN_FORM['mysql']}",
        "For example, a throwaway PostgreSQL in Docker:",
        "  docker run --rm -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16",
        "  airflow-aurora-wake demo --postgres-dsn postgresql://postgres@127.0.0.1:5432/postgres",
    ]
    return "\n".join(lines)


def select_engines(args: argparse.Namespace, progress: Progress) -> list[EngineSetup]:
    """Decide which engines the demo runs, checking every dependency and server first.

    :param args: The parsed command line.
    :param progress: Where to say what is left out.
    :raises DemoSetupError: With what is missing and how to give it.
    """
    if importlib.util.find_spec("moto") is None:
        raise DemoSetupError(
            "The demo runs the emulator, which needs moto: pip install 'airflow-aurora-wake[demo]'"
        )
    if not _distribution_installed("apache-airflow"):
        raise DemoSetupError("The demo runs Airflow: pip install 'airflow-aurora-wake[demo]'")
    if not DAG_FILE.is_file():
        raise DemoSetupError(f"The example DAG is missing from the installed package ({DAG_FILE}).")
    candidates = []
    if not args.no_postgres:
        candidates.append(
            (
                "postgresql",
                "--postgres-dsn",
                args.postgres_dsn,
                DEFAULT_POSTGRES_DSN,
                "apache-airflow-providers-postgres",
                "pip install 'airflow-aurora-wake[postgres]'",
            )
        )
    if not args.no_mysql:
        candidates.append(
            (
                "mysql",
                "--mysql-dsn",
                args.mysql_dsn,
                DEFAULT_MYSQL_DSN,
                "apache-airflow-providers-mysql",
                "pip install 'airflow-aurora-wake[mysql]' (mysqlclient compiles against the MySQL client "
                "headers: on Debian/Ubuntu apt-get install -y pkg-config libmariadb-dev)",
            )
        )
    if not candidates:
        raise DemoSetupError("--no-postgres and --no-mysql leave nothing to run.")
    selected: list[EngineSetup] = []
    problems: list[str] = []
    fatal: list[str] = []
    for label, flag, given, default, provider, install in candidates:
        explicit = given is not None
        # PostgreSQL is the demo's main engine: missing it is an error unless it was left out;
        # MySQL is an extra, tried only when its server answers, unless its DSN was given.
        required = explicit or label == "postgresql"
        dsn = _parse(given if explicit else default, flag, label)
        name = "PostgreSQL" if label == "postgresql" else "MySQL"
        if not _distribution_installed(provider):
            message = f"{name}: the example DAG's SQL steps need {provider}: {install}"
            if required:
                fatal.append(message)
            else:
                progress.say(f"{name} left out: {provider} is not installed ({install})")
            continue
        reachable, problem = check_server(dsn)
        if problem is None:
            cluster = "demo-pg" if label == "postgresql" else "demo-mysql"
            conn_id = "aurora_pg" if label == "postgresql" else "aurora_mysql"
            selected.append(
                EngineSetup(
                    label=label, dsn=dsn, cluster=cluster, conn_id=conn_id, table_existed=table_exists(dsn)
                )
            )
        elif not reachable and not required:
            progress.say(f"{name} left out: {problem}; give {flag} to include it")
        elif not reachable:
            problems.append(f"{name} ({flag} {show_dsn(dsn)}): {problem}")
        else:
            fatal.append(f"{name} ({flag} {show_dsn(dsn)}) answered but refused: {problem}")
    if fatal:
        raise DemoSetupError("\n".join(fatal))
    if problems:
        raise DemoSetupError(_needs_message(problems))
    if not selected:
        raise DemoSetupError(_needs_message(["no database server was found"]))
    return selected


# ---------------------------------------------------------------------- child processes
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


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def child_environment(
    home: Path, dags: Path, aws_env: dict[str, str], connections: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """The children's environment: this one without any Airflow or AWS setting, plus the demo's.

    The user's own ``AIRFLOW__*`` configuration (a production metadata database, say),
    connections, Variables and AWS credentials or profiles never reach the demo's Airflow.

    :param home: The throwaway ``AIRFLOW_HOME``.
    :param dags: The DAGs folder.
    :param aws_env: The emulator's AWS variables (endpoint, test credentials, region).
    :param connections: Connection id to its JSON form.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "_AIRFLOW", "AWS_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "PYTHONUNBUFFERED": "1",
            **aws_env,
        }
    )
    for conn_id, fields in connections.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(fields)
    return env


# ------------------------------------------------------------------------------ watching
_EVENT_TEXT = {
    "paused": 'paused (RDS still says "available")',
    "ready": "ready: accepts connections",
    "capacity-available": "capacity available",
}


def describe_event(event: Any) -> str | None:
    """A progress line for one emulator timeline event (``None``: not worth a line).

    :param event: A ``TimelineEvent``.
    """
    if event.event == "created":
        return None
    if event.event == "resume-requested":
        detail = event.detail or {}
        expected = detail.get("ready_expected_at")
        when = f", ready in {expected - event.at:.0f} s" if expected else ""
        return f"resume requested (by a {detail.get('cause', '?')}){when}"
    return _EVENT_TEXT.get(event.event, event.event)


def task_states(db_path: Path) -> list[tuple[str, str, str]]:
    """``(run_id, task_id, state)`` of the example DAG's task instances, read-only, or ``[]``.

    :param db_path: The demo's SQLite metadata database.
    """
    if not db_path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.2)
        try:
            rows = db.execute(
                "SELECT run_id, task_id, state FROM task_instance WHERE dag_id = ? AND state IS NOT NULL",
                (DAG_ID,),
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    order = {task_id: index for index, task_id in enumerate(TASK_ORDER)}
    found = [(str(run_id), str(task_id), str(state)) for run_id, task_id, state in rows]
    return sorted(found, key=lambda row: order.get(row[1], len(order)))


@dataclass
class Watch:
    """What the demo saw while the DAG runs ran: one progress line per change.

    :param emu: The running emulator.
    :param engines: The engines, in the order the runner runs them.
    :param db_path: The SQLite metadata database.
    :param progress: Where to print.
    """

    emu: Any
    engines: Sequence[EngineSetup]
    db_path: Path
    progress: Progress
    seen_events: dict[str, int] = field(default_factory=dict)
    states: dict[tuple[str, str], str] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    deferred_at: dict[str, float] = field(default_factory=dict)

    def poll(self) -> None:
        """Print what changed since the last poll."""
        for engine in self.engines:
            events = self.emu.timeline(engine.cluster)
            for event in events[self.seen_events.get(engine.cluster, 0) :]:
                text = describe_event(event)
                if text:
                    self.progress.say(f"{engine.cluster}: {text}")
            self.seen_events[engine.cluster] = len(events)
        for run_id, task_id, state in task_states(self.db_path):
            if run_id not in self.run_ids:
                self.run_ids.append(run_id)
            if self.states.get((run_id, task_id)) == state:
                continue
            self.states[(run_id, task_id)] = state
            index = self.run_ids.index(run_id)
            cluster = self.engines[index].cluster if index < len(self.engines) else run_id
            if state == "deferred":
                self.deferred_at.setdefault(run_id, time.time())
                self.progress.say(f"{cluster}: task {task_id} deferred (waits in the triggerer)")
            elif state not in ("scheduled", "queued", "none"):
                self.progress.say(f"{cluster}: task {task_id} {state}")

    def status(self) -> str:
        """One phrase: what the demo is waiting for now."""
        phases = ", ".join(f"{e.cluster} {self.emu.status(e.cluster)}" for e in self.engines)
        running = [task for (_, task), state in self.states.items() if state in ("running", "deferred")]
        return f"clusters: {phases}" + (f"; task {running[-1]} running" if running else "")


def wait_for(
    child: Child,
    *,
    deadline: float,
    on_poll: Callable[[], None],
    status: Callable[[], str],
    progress: Progress,
) -> int:
    """Wait for a child, polling for progress; raise :class:`DemoTimeout` past ``deadline``.

    :param child: The child process.
    :param deadline: ``time.monotonic()`` value to give up at.
    :param on_poll: Called every quarter second (progress lines).
    :param status: What is being waited for, for the ticking line.
    :param progress: The progress printer.
    """
    while True:
        try:
            code = child.proc.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            code = None
        on_poll()
        if code is not None:
            return code
        if time.monotonic() > deadline:
            raise DemoTimeout
        progress.tick(status())


# ----------------------------------------------------------------------------- the demo
def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo (the ``demo`` sub-command's handler); return the exit status.

    :param args: The parsed command line (see :func:`add_demo_parser`).
    """
    progress = Progress(sys.stderr)
    progress.say("checking what the demo needs (emulator, Airflow, a database server)")
    try:
        engines = select_engines(args, progress)
    except DemoSetupError as exc:
        print(f"airflow-aurora-wake demo: {exc}", file=sys.stderr)
        return EXIT_SETUP
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="airflow-aurora-wake-demo-"))
    keep = bool(args.keep)
    try:
        code = _run(args, engines, workdir, progress)
        keep = keep or code == EXIT_FAILED
        return code
    except KeyboardInterrupt:
        progress.say("interrupted: stopping everything")
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        if keep:
            print(f"The demo's folder (Airflow home, logs) is kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"Removed the demo's folder {workdir} (--keep keeps it).")


def _emulator_logging(log_path: Path) -> Callable[[], None]:
    """Send the emulator's (and its web server's) log lines to a file; return the undo."""
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    undo = []
    for name in ("airflow_aurora_wake", "werkzeug"):
        logger = logging.getLogger(name)
        undo.append((logger, logger.propagate, logger.level))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)

    def restore() -> None:
        for logger, propagate, level in undo:
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)
        handler.close()

    return restore


def _run(args: argparse.Namespace, engines: list[EngineSetup], workdir: Path, progress: Progress) -> int:
    from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings

    home, dags = workdir / "airflow-home", workdir / "dags"
    home.mkdir()
    dags.mkdir()
    dag_file = dags / DAG_FILE.name
    shutil.copyfile(DAG_FILE, dag_file)
    logs = {
        "emulator": workdir / "emulator.log",
        "migrate": workdir / "airflow-db-migrate.log",
        "dags": workdir / "dag-test.log",
    }
    for engine in engines:
        progress.say(f"{engine.label}: {engine.shown()} behind emulated cluster {engine.cluster}")
    restore_logging = _emulator_logging(logs["emulator"])
    children: list[Child] = []
    emu = AuroraEmulator(
        [
            ClusterSpec(
                engine.cluster,
                kind="serverless-v2",
                engine=engine.engine,
                upstream=f"{engine.label}://{engine.dsn.host}:{engine.dsn.port}/{engine.dsn.database}",
                state="paused",
            )
            for engine in engines
        ],
        timings=Timings(resume_seconds=args.resume_seconds),
    )
    try:
        emu.start()
        progress.say(
            f"emulator up at {emu.endpoint_url}; "
            + ", ".join(f"{e.cluster} paused (resumes in {args.resume_seconds:g} s)" for e in engines)
        )
        connections: dict[str, dict[str, Any]] = {
            "aws_default": {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": emu.endpoint_url, "region_name": emu.region},
            }
        }
        for engine in engines:
            endpoint = emu.cluster(engine.cluster)
            fields: dict[str, Any] = {
                "conn_type": engine.conn_type,
                "host": endpoint.host,
                "port": endpoint.port,
                "login": engine.dsn.user,
                "schema": engine.dsn.database,
            }
            if engine.dsn.password:
                fields["password"] = engine.dsn.password
            connections[engine.conn_id] = fields
        env = child_environment(home, dags, emu.aws_env(), connections)

        progress.say(f"preparing a throwaway Airflow home in {workdir} (airflow db migrate)")
        migrate = Child([sys.executable, "-m", "airflow", "db", "migrate"], env, logs["migrate"])
        children.append(migrate)
        code = wait_for(
            migrate,
            deadline=time.monotonic() + MIGRATE_TIMEOUT,
            on_poll=lambda: None,
            status=lambda: "airflow db migrate",
            progress=progress,
        )
        if code != 0:
            progress.say(f"airflow db migrate failed (exit {code}); see {logs['migrate']}")
            return EXIT_FAILED

        results_path = workdir / "results.json"
        spec = {
            "dag_file": str(dag_file),
            "results": str(results_path),
            "runs": [
                {
                    "label": engine.label,
                    "env": {
                        "AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER": engine.cluster,
                        "AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CONN_ID": engine.conn_id,
                    },
                }
                for engine in engines
            ],
        }
        spec_path = workdir / "runs.json"
        spec_path.write_text(json.dumps(spec))
        progress.say(
            f"running DAG {DAG_ID} (dag.test) for "
            + ", ".join(engine.cluster for engine in engines)
            + ": wake >> ready >> create_table >> load_rows >> read_back"
        )
        runner = Child(
            [sys.executable, "-m", "airflow_aurora_wake.demo.runner", str(spec_path)], env, logs["dags"]
        )
        children.append(runner)
        watch = Watch(emu=emu, engines=engines, db_path=home / "airflow.db", progress=progress)
        try:
            code = wait_for(
                runner,
                deadline=time.monotonic() + args.timeout,
                on_poll=watch.poll,
                status=watch.status,
                progress=progress,
            )
        except DemoTimeout:
            progress.say(
                f"the DAG runs did not finish within {args.timeout:g} s (--timeout); see {logs['dags']}"
            )
            return EXIT_FAILED
        records = json.loads(results_path.read_text()) if results_path.exists() else []
        status = _report(emu, engines, records, watch, logs, code, keep=bool(args.keep))
        _remove_rows(engines, records)
        return status
    finally:
        for child in children:
            child.stop()
        emu.shutdown()
        restore_logging()


def _remove_rows(engines: Sequence[EngineSetup], records: list[dict[str, Any]]) -> None:
    """Leave the user's databases as they were: delete the demo's rows (and a table it created)."""
    by_label = {record["label"]: record for record in records}
    for engine in engines:
        record = by_label.get(engine.label)
        drop = not engine.table_existed
        try:
            if record is not None:
                remove_demo_rows(engine.dsn, record["run_id"], drop_table=drop)
            elif drop:
                remove_demo_rows(engine.dsn, "", drop_table=True)
        except Exception as exc:
            print(
                f"Could not remove the demo's rows from {TABLE} on {engine.shown()}: "
                f"{safe_error_text(exc, [engine.dsn.password])}"
            )
            continue
        what = f"the demo's rows from {TABLE}" + (" and the table, which the demo created" if drop else "")
        print(f"Removed {what} on {engine.shown()}.")


def _report(
    emu: Any,
    engines: Sequence[EngineSetup],
    records: list[dict[str, Any]],
    watch: Watch,
    logs: dict[str, Path],
    code: int,
    *,
    keep: bool,
) -> int:
    by_label = {record["label"]: record for record in records}
    ok = code == 0 and len(records) == len(engines)
    print()
    for engine in engines:
        record = by_label.get(engine.label)
        if record is None:
            print(f"{engine.cluster}: the DAG run did not finish; see {logs['dags']}")
            ok = False
            continue
        steps = build_steps(
            emu.timeline(engine.cluster), record, deferred_at=watch.deferred_at.get(record["run_id"])
        )
        title = (
            f"Timeline of {engine.cluster} ({describe_cluster('serverless-v2', engine.engine)}), "
            f"DAG run {record['run_id']}: {record['state']}"
        )
        print("\n".join(render_timeline(title, steps)))
        rows = record.get("xcoms", {}).get("read_back")
        if rows:
            print(f"  rows read back from aurora_wake_example_sales: {rows}")
        ok = ok and record["state"] == "success"
        print()
    if keep or not ok:
        print("Logs:")
        print(f"  Airflow (dag.test of each run): {logs['dags']}")
        print(f"  airflow db migrate:             {logs['migrate']}")
        print(f"  emulator:                       {logs['emulator']}")
    else:
        print("Logs: Airflow's, the migration's and the emulator's go with the folder (--keep keeps them).")
    if ok:
        print("Every DAG run succeeded: the ETL ran on a warm database.")
        return EXIT_OK
    print("A DAG run failed: its task logs are in the Airflow log above.")
    return EXIT_FAILED

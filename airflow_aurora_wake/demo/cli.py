"""``airflow-aurora-wake demo``: wake an emulated paused Aurora cluster with a real Airflow DAG run.

What it does, in order:

1. checks what it needs (:mod:`~airflow_aurora_wake.demo.engines`): the emulator
   (``airflow-aurora-wake[demo]``), the SQL provider of each engine, and a real database server
   per engine (the emulated clusters are proxies in front of it). PostgreSQL defaults to
   ``postgresql://postgres@127.0.0.1:5432/test`` and MySQL to ``mysql://root@127.0.0.1:3306/test``;
   MySQL is included only when that server answers and the MySQL provider is installed (else
   it says it skips the MySQL cluster, and how to include it), or ``--mysql-dsn`` is given. Passwords
   come from ``PGPASSWORD`` / ``MYSQL_PWD`` or ``--password-env VAR``, never from a DSN. Nothing
   usable: a message saying what to give, exit status 2;
2. starts the emulator in this process with a paused Serverless v2 cluster per engine
   (``demo-pg``, ``demo-mysql``) (:mod:`~airflow_aurora_wake.demo.sandbox`);
3. prepares a throwaway Airflow home on SQLite in a temporary folder, with the connections as
   ``AIRFLOW_CONN_*`` and the Variables as ``AIRFLOW_VAR_*`` environment variables of the
   child processes only (:mod:`~airflow_aurora_wake.demo.children`), runs ``airflow db
   migrate``, then the runner (:mod:`~airflow_aurora_wake.demo.runner`), which runs the example
   DAG chosen with ``--dag`` (``example_aurora_serverless_wake`` by default, or
   ``example_aurora_warm_window``) with ``dag.test()`` once per cluster;
4. while it waits, prints a line per change (:mod:`~airflow_aurora_wake.demo.watch`) and a
   ticking status line on stderr (:mod:`~airflow_aurora_wake.demo.progress`);
   after a warm window, waits (within ``--timeout``) for each cluster to pause again after its
   idle time (``--idle-seconds``, 10 s by default there) and reads the hold tags left on it
   (:mod:`~airflow_aurora_wake.demo.window`);
5. prints a timeline per cluster on stdout, and where the logs are
   (:mod:`~airflow_aurora_wake.demo.report`); removes the rows it wrote; stops the emulator and
   every child process group, and removes the temporary folder unless ``--keep`` (a failed run
   keeps it, for its logs).

Exit status: 0 every DAG run succeeded (and, for a warm window, every cluster paused again with
no hold left), 1 a run failed or timed out, or a window left a hold or a cluster awake, 2
something it needs is missing (with what to do), 130 interrupted.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from airflow_aurora_wake.demo.children import Child, DemoTimeout
from airflow_aurora_wake.demo.engines import (
    MYSQL,
    POSTGRES,
    DemoSetupError,
    Selection,
    remove_rows,
    select_engines,
)
from airflow_aurora_wake.demo.example_dag import DEFAULT_DAG, DEMO_DAGS, WINDOW, DemoDag, demo_dag
from airflow_aurora_wake.demo.progress import Progress
from airflow_aurora_wake.demo.report import print_report
from airflow_aurora_wake.demo.sandbox import (
    Folder,
    airflow_connections,
    child_environment,
    log_emulator_to,
    new_emulator,
)
from airflow_aurora_wake.demo.watch import Watch
from airflow_aurora_wake.demo.window import WindowEnd, finish_windows

DEFAULT_RESUME_SECONDS = 15.0
DEFAULT_TIMEOUT = 300.0
MIGRATE_TIMEOUT = 240.0
EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 130

_HELP = "see it work: an Airflow DAG wakes an emulated paused Aurora cluster, waits, runs an ETL"
_DESCRIPTION = (
    "Start the emulator with a paused Aurora Serverless v2 cluster (PostgreSQL, and MySQL "
    "when a server is reachable and its provider installed), run the example DAG "
    "example_aurora_serverless_wake against it in a throwaway Airflow home (SQLite, "
    "temporary folder), and print the timeline: paused, wake requested, resume, the "
    "sensor's check in the worker and its deferral, the trigger's event, ETL done. With "
    "--dag example_aurora_warm_window: the warm window instead (resume by the hold's scaling "
    "change, the floor held during the ETL and restored after it, what the window cost, the "
    "cluster pausing again after its idle time, no hold left). Needs a "
    "real PostgreSQL or MySQL/MariaDB server for the emulated clusters to sit in front of. "
    "Leaves nothing running, and nothing behind but the temporary folder with --keep."
)


@dataclass(frozen=True)
class Seconds:
    """An argparse ``type``: a number of seconds from ``minimum`` to ``maximum``.

    :param minimum: The least accepted.
    :param maximum: The most accepted.
    :param whole: Only whole seconds (the value is then an ``int``).
    """

    minimum: float
    maximum: float
    whole: bool = False

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not self.minimum <= value <= self.maximum or (self.whole and not value.is_integer()):
            whole = "whole " if self.whole else ""
            raise argparse.ArgumentTypeError(
                f"{text!r}: give {self.minimum:g} to {self.maximum:g} {whole}seconds"
            )
        return int(value) if self.whole else value


def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``demo`` sub-command.

    :param subparsers: The top-level parser's sub-parsers action.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser("demo", help=_HELP, description=_DESCRIPTION)
    parser.add_argument(
        "--postgres-dsn",
        metavar="DSN",
        help=f"the PostgreSQL server behind the emulated cluster, {POSTGRES.dsn_form}; the "
        f"user must be able to create a table (default: {POSTGRES.default_dsn})",
    )
    parser.add_argument(
        "--mysql-dsn",
        metavar="DSN",
        help=f"the MySQL/MariaDB server behind a second cluster, {MYSQL.dsn_form} (default: "
        f"{MYSQL.default_dsn}, used only when it answers)",
    )
    parser.add_argument(
        "--password-env",
        metavar="VAR",
        help=f"environment variable holding the password of the server(s) given with {POSTGRES.flag} "
        f"or {MYSQL.flag} (default: {POSTGRES.password_env} for PostgreSQL, {MYSQL.password_env} for "
        "MySQL); never put it in the DSN",
    )
    parser.add_argument(
        "--dag",
        type=demo_dag,
        default=DEFAULT_DAG,
        metavar="DAG_ID",
        help="the example DAG to run: "
        + "; ".join(f"{dag.dag_id} ({dag.summary})" for dag in DEMO_DAGS.values())
        + f" (default: {DEFAULT_DAG.dag_id})",
    )
    parser.add_argument("--no-postgres", action="store_true", help="leave PostgreSQL out")
    parser.add_argument("--no-mysql", action="store_true", help="leave MySQL out")
    parser.add_argument(
        "--resume-seconds",
        type=Seconds(0.5, 600),
        default=DEFAULT_RESUME_SECONDS,
        help=f"seconds the emulated cluster takes to resume (default: {DEFAULT_RESUME_SECONDS:g}, as on AWS)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=Seconds(1, 86400, whole=True),
        metavar="SECONDS",
        help="the emulated clusters' SecondsUntilAutoPause: how long they stay idle before they pause "
        f"again (default: {WINDOW.idle_seconds} with {WINDOW.dag_id}, whose demo waits for that "
        f"pause; {DEFAULT_DAG.idle_seconds}, as on AWS, with {DEFAULT_DAG.dag_id})",
    )
    parser.add_argument(
        "--timeout",
        type=Seconds(10, 3600),
        default=DEFAULT_TIMEOUT,
        help="give up on the DAG runs (and, for a warm window, the wait for the clusters to pause "
        f"again) after this many seconds (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (Airflow home, logs) instead of removing it",
    )
    parser.set_defaults(handler=run_demo)
    return parser


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo (the ``demo`` sub-command's handler); return the exit status.

    :param args: The parsed command line (see :func:`add_demo_parser`).
    """
    progress = Progress(sys.stderr)
    try:
        idle_seconds = check_idle_seconds(args)
    except DemoSetupError as exc:
        print(f"airflow-aurora-wake demo: {exc}", file=sys.stderr)
        return EXIT_SETUP
    progress.say("checking what the demo needs (emulator, Airflow, a database server)")
    try:
        selection = select_engines(args, progress)
    except DemoSetupError as exc:
        print(f"airflow-aurora-wake demo: {exc}", file=sys.stderr)
        return EXIT_SETUP
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="airflow-aurora-wake-demo-"))
    keep = bool(args.keep)
    try:
        code = _run(args, selection, Folder(workdir, args.dag), progress, idle_seconds)
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


def check_idle_seconds(args: argparse.Namespace) -> int:
    """The clusters' idle time before they pause again: ``--idle-seconds``, else the DAG's default.

    :param args: The parsed command line.
    :raises DemoSetupError: For a warm window, an idle time the demo cannot wait for within
        ``--timeout`` (it waits for the clusters to pause again).
    """
    dag: DemoDag = args.dag
    idle = int(args.idle_seconds) if args.idle_seconds is not None else dag.idle_seconds
    if dag.window and idle >= args.timeout:
        raise DemoSetupError(
            f"--idle-seconds {idle}: the {dag.dag_id} demo waits for the clusters to pause again after "
            f"their idle time, within --timeout {args.timeout:g} s; give --idle-seconds well below the "
            f"timeout (default: {dag.idle_seconds}) or a longer --timeout"
        )
    return idle


def _run(
    args: argparse.Namespace, selection: Selection, folder: Folder, progress: Progress, idle_seconds: int
) -> int:
    dag: DemoDag = args.dag
    engines = selection.engines
    folder.prepare()
    for engine in engines:
        progress.say(f"{engine.label}: {engine.shown()} behind emulated cluster {engine.cluster}")
    restore_logging = log_emulator_to(folder.emulator_log)
    children: list[Child] = []
    emu = new_emulator(engines, args.resume_seconds, idle_seconds)
    idle = f", pauses again after {idle_seconds} s idle" if dag.window else ""
    try:
        emu.start()
        progress.say(
            f"emulator up at {emu.endpoint_url}; "
            + ", ".join(f"{e.cluster} paused (resumes in {args.resume_seconds:g} s{idle})" for e in engines)
        )
        env = child_environment(folder, emu.aws_env(), airflow_connections(emu, engines))

        progress.say(f"preparing a throwaway Airflow home in {folder.root} (airflow db migrate)")
        migrate = Child([sys.executable, "-m", "airflow", "db", "migrate"], env, folder.migrate_log)
        children.append(migrate)
        try:
            code = migrate.wait(
                deadline=time.monotonic() + MIGRATE_TIMEOUT,
                progress=progress,
                status=lambda: "airflow db migrate",
            )
        except DemoTimeout:
            code = None
        if code != 0:
            outcome = f"exit {code}" if code is not None else f"not done in {MIGRATE_TIMEOUT:g} s"
            progress.say(f"airflow db migrate failed ({outcome}); see {folder.migrate_log}")
            return EXIT_FAILED

        folder.write_spec(engines)
        progress.say(
            f"running DAG {dag.dag_id} (dag.test) for "
            + ", ".join(engine.cluster for engine in engines)
            + f": {dag.chain()}"
        )
        runner = Child(
            [sys.executable, "-m", "airflow_aurora_wake.demo.runner", str(folder.spec)], env, folder.dags_log
        )
        children.append(runner)
        watch = Watch(emu=emu, engines=engines, db_path=folder.db_path, progress=progress, dag=dag)
        deadline = time.monotonic() + args.timeout
        try:
            code = runner.wait(
                deadline=deadline,
                progress=progress,
                status=watch.status,
                on_poll=watch.poll,
            )
        except DemoTimeout:
            progress.say(
                f"the DAG runs did not finish within {args.timeout:g} s (--timeout); see {folder.dags_log}"
            )
            return EXIT_FAILED
        records = folder.read_results()
        windows: dict[str, WindowEnd] | None = None
        if dag.window:
            succeeded = code == 0 and len(records) == len(engines)
            succeeded = succeeded and all(record["state"] == "success" for record in records)
            windows = finish_windows(
                emu, engines, records, wait=succeeded, deadline=deadline, progress=progress, watch=watch
            )
        ok = print_report(
            emu,
            engines,
            records,
            skipped=selection.skipped,
            folder=folder,
            runner_ok=code == 0,
            keep=bool(args.keep),
            dag=dag,
            windows=windows,
        )
        remove_rows(engines, records)
        return EXIT_OK if ok else EXIT_FAILED
    finally:
        for child in children:
            child.stop()
        emu.shutdown()
        restore_logging()

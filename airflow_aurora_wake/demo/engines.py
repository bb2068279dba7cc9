"""Which engines the demo runs: check the dependencies, parse and try each server, and undo after.

PostgreSQL is the demo's main engine: missing it is an error unless it is left out. MySQL is an
extra, run only when its server answers and its provider is installed (else the demo says it
skips the MySQL cluster, and how to include it), unless its DSN is given. A server's password comes
from the environment, never from a DSN on the command line (it would show in ``ps`` and in the
shell's history): ``PGPASSWORD`` / ``MYSQL_PWD``, or the variable ``--password-env`` names.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_aurora_wake.core.dsn import parse_dsn
from airflow_aurora_wake.core.engines import DEFAULT_PORTS, PASSWORD_ENV, EngineFamily
from airflow_aurora_wake.core.errors import AuroraWakeError, redact_dsn, safe_error_text
from airflow_aurora_wake.core.probes import DatabaseTarget
from airflow_aurora_wake.demo.example_dag import TABLE, DemoDag
from airflow_aurora_wake.demo.progress import Progress
from airflow_aurora_wake.demo.servers import check_server, remove_demo_rows, table_exists


class DemoSetupError(Exception):
    """Something the demo needs is missing; the message says what and how to give it (exit 2)."""


@dataclass(frozen=True)
class DemoEngine:
    """What the demo knows about one engine it can run, before looking at any server.

    :param label: ``postgresql`` or ``mysql``.
    :param name: The engine's name in messages.
    :param flag: The command-line option that gives its server.
    :param dsn_form: The DSN form that option takes.
    :param default_dsn: The server tried when the option is not given.
    :param default_user: The login when the DSN names none.
    :param password_env: The environment variable its clients read the password from.
    :param provider: The Airflow provider the example DAG's SQL steps need.
    :param install: How to install that provider, every step in the order to run them.
    :param cluster: The emulated cluster's identifier.
    :param conn_id: The Airflow connection id of the database.
    :param aurora_engine: The RDS engine name of the emulated cluster.
    :param conn_type: The Airflow connection type.
    """

    label: EngineFamily
    name: str
    flag: str
    dsn_form: str
    default_dsn: str
    default_user: str
    password_env: str
    provider: str
    install: str
    cluster: str
    conn_id: str
    aurora_engine: str
    conn_type: str


POSTGRES = DemoEngine(
    label="postgresql",
    name="PostgreSQL",
    flag="--postgres-dsn",
    dsn_form="postgresql://USER@HOST:PORT/DATABASE",
    default_dsn="postgresql://postgres@127.0.0.1:5432/test",
    default_user="postgres",
    password_env=PASSWORD_ENV["postgresql"],
    provider="apache-airflow-providers-postgres",
    install='pip install "airflow-aurora-wake[postgres]"',
    cluster="demo-pg",
    conn_id="aurora_pg",
    aurora_engine="aurora-postgresql",
    conn_type="postgres",
)
MYSQL = DemoEngine(
    label="mysql",
    name="MySQL",
    flag="--mysql-dsn",
    dsn_form="mysql://USER@HOST:PORT/DATABASE",
    default_dsn="mysql://root@127.0.0.1:3306/test",
    default_user="root",
    password_env=PASSWORD_ENV["mysql"],
    provider="apache-airflow-providers-mysql",
    # The provider needs mysqlclient, which has no Linux wheels: pip builds it, and fails
    # without these headers, so they come first.
    install="apt-get install -y pkg-config libmariadb-dev (on Debian/Ubuntu: the headers mysqlclient "
    'compiles against), then pip install "airflow-aurora-wake[mysql]"',
    cluster="demo-mysql",
    conn_id="aurora_mysql",
    aurora_engine="aurora-mysql",
    conn_type="mysql",
)


@dataclass
class EngineSetup:
    """One engine the demo runs: its real server, emulated cluster and Airflow connection.

    :param kind: What the demo knows about the engine.
    :param server: The real server (its password never shown).
    :param table_existed: The example DAG's table was there before the demo.
    """

    kind: DemoEngine
    server: DatabaseTarget
    table_existed: bool = True

    @property
    def label(self) -> str:
        """``postgresql`` or ``mysql``."""
        return self.kind.label

    @property
    def cluster(self) -> str:
        """The emulated cluster's identifier."""
        return self.kind.cluster

    def shown(self) -> str:
        """The server's DSN without its password."""
        return self.server.describe()


@dataclass(frozen=True)
class Selection:
    """The engines the demo runs, and what it says about the optional ones it skips.

    :param engines: The engines to run, in order.
    :param skipped: One note per engine skipped: why, and how to include it.
    """

    engines: list[EngineSetup]
    skipped: list[str]


def parse_server(value: str, kind: DemoEngine, password: str | None = None) -> DatabaseTarget:
    """The server a DSN names, with the defaults filled in.

    :param value: The DSN, without a password.
    :param kind: The engine it must be.
    :param password: The password (from the environment: see :func:`server_password`).
    :raises DemoSetupError: When it is not a DSN of that engine naming a database, or it holds
        a password.
    """
    try:
        dsn = parse_dsn(value, kind.flag)
    except AuroraWakeError as exc:
        raise DemoSetupError(f"{kind.flag}: {exc}") from None
    if dsn.password is not None:
        raise DemoSetupError(
            f"{kind.flag} {redact_dsn(value)}: do not put the password in the DSN (it shows in ps and "
            f"in the shell's history): put it in the environment, in {kind.password_env} or in a "
            f"variable named with --password-env VAR, and give {kind.dsn_form}"
        )
    if dsn.engine != kind.label:
        raise DemoSetupError(f"{kind.flag} needs a {kind.label} DSN: {kind.dsn_form}")
    server = DatabaseTarget(
        engine=dsn.engine,
        user=dsn.user or kind.default_user,
        host=dsn.host or "127.0.0.1",
        port=dsn.port or DEFAULT_PORTS[dsn.engine],
        database=dsn.database,
        password=password,
    )
    if not server.database:
        raise DemoSetupError(
            f"{kind.flag} {server.describe()} names no database: the demo creates its table in it; "
            f"give {kind.dsn_form}"
        )
    return server


def check_password_env(args: argparse.Namespace) -> None:
    """Refuse a ``--password-env`` that names an unset variable, or no server to apply to.

    :param args: The parsed command line.
    :raises DemoSetupError: Saying what to give instead.
    """
    name = args.password_env
    if name is None:
        return
    if args.postgres_dsn is None and args.mysql_dsn is None:
        raise DemoSetupError(
            f"--password-env {name}: it gives the password of the server named with "
            f"{POSTGRES.flag} or {MYSQL.flag}; give one, or put the password of the default "
            f"server in {POSTGRES.password_env} or {MYSQL.password_env}"
        )
    if name not in os.environ:
        raise DemoSetupError(f"--password-env {name}: that environment variable is not set")


def server_password(kind: DemoEngine, given: str | None, password_env: str | None) -> str | None:
    """The password of an engine's server, from the environment.

    ``--password-env VAR`` applies to the servers named with a DSN option; the others, and
    those without ``--password-env``, use the engine's own variable, as its clients do.

    :param kind: The engine.
    :param given: Its DSN option's value (``None``: the default server).
    :param password_env: ``--password-env``'s value.
    """
    name = password_env if password_env is not None and given is not None else kind.password_env
    return os.environ.get(name) or None


def _distribution_installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _needs_message(problems: Sequence[str]) -> str:
    lines = [
        "The demo needs a real PostgreSQL or MySQL/MariaDB server: each emulated Aurora cluster is "
        "a proxy in front of one, and the example DAG creates a table in it.",
        *(f"  - {problem}" for problem in problems),
        "Give the server with a DSN (the user must log in over TCP and be allowed to create a table),",
        f"and its password in {POSTGRES.password_env} or {MYSQL.password_env} (or a variable named "
        "with --password-env VAR):",
        f"  airflow-aurora-wake demo {POSTGRES.flag} {POSTGRES.dsn_form}",
        f"  airflow-aurora-wake demo {MYSQL.flag} {MYSQL.dsn_form}",
        "For example, a throwaway PostgreSQL in Docker:",
        "  docker run --rm -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16",
        "  airflow-aurora-wake demo --postgres-dsn postgresql://postgres@127.0.0.1:5432/postgres",
    ]
    return "\n".join(lines)


def skip_note(kind: DemoEngine, server: DatabaseTarget, *, installed: bool, problem: str | None) -> str:
    """What the demo says about an optional engine it skips, and how to include it.

    :param kind: The engine.
    :param server: Its default server.
    :param installed: Its SQL provider is installed.
    :param problem: Why its server cannot be used (``None``: it can).
    """
    skipping = f"the {kind.name} cluster {kind.cluster} is skipped"
    if installed:
        return f"{skipping}: {problem}; give {kind.flag} {kind.dsn_form} to include it"
    missing = f"the example DAG's SQL steps need {kind.provider}, which is not installed"
    if problem is None:
        return f"{skipping}: {server.describe()} answers, but {missing}. To include it: {kind.install}"
    return (
        f"{skipping}: {problem}, and {missing}. To include it: {kind.install}, and start that server "
        f"or give {kind.flag} {kind.dsn_form}"
    )


def select_engines(args: argparse.Namespace, progress: Progress) -> Selection:
    """Decide which engines the demo runs, checking every dependency and server first.

    :param args: The parsed command line (``args.dag``: the example DAG to run).
    :param progress: Where to say what is skipped.
    :raises DemoSetupError: With what is missing and how to give it.
    """
    if importlib.util.find_spec("moto") is None:
        raise DemoSetupError(
            'The demo runs the emulator, which needs moto: pip install "airflow-aurora-wake[demo]"'
        )
    if not _distribution_installed("apache-airflow"):
        raise DemoSetupError('The demo runs Airflow: pip install "airflow-aurora-wake[demo]"')
    dag: DemoDag = args.dag
    if not dag.file.is_file():
        raise DemoSetupError(
            f"The example DAG {dag.dag_id} is missing from the installed package ({dag.file})."
        )
    candidates = [
        (kind, given)
        for kind, given, left_out in (
            (POSTGRES, args.postgres_dsn, args.no_postgres),
            (MYSQL, args.mysql_dsn, args.no_mysql),
        )
        if not left_out
    ]
    if not candidates:
        raise DemoSetupError("--no-postgres and --no-mysql leave nothing to run.")
    check_password_env(args)
    # Every DSN is read before any server is tried: a mistake in one is not hidden behind a wait.
    servers = [
        (
            kind,
            given,
            parse_server(
                given if given is not None else kind.default_dsn,
                kind,
                server_password(kind, given, args.password_env),
            ),
        )
        for kind, given in candidates
    ]
    selected: list[EngineSetup] = []
    skipped: list[str] = []
    answered = False
    problems: list[str] = []
    fatal: list[str] = []
    for kind, given, server in servers:
        required = given is not None or kind is POSTGRES
        installed = _distribution_installed(kind.provider)
        if not installed and required:
            fatal.append(
                f"{kind.name}: the example DAG's SQL steps need {kind.provider}, which is not "
                f"installed. To install it: {kind.install}"
            )
            continue
        reachable, problem = check_server(server)
        if not required and (not installed or not reachable):
            # A server that answers but refuses the demo's login is an error (below), not a
            # skip: whoever runs it would not learn why the demo leaves it out.
            answered = answered or reachable
            skipped.append(
                skip_note(kind, server, installed=installed, problem=None if reachable else problem)
            )
        elif problem is None:
            selected.append(EngineSetup(kind, server, table_existed=table_exists(server)))
        elif not reachable:
            problems.append(f"{kind.name} ({kind.flag} {server.describe()}): {problem}")
        else:
            fatal.append(f"{kind.name} ({kind.flag} {server.describe()}) answered but refused: {problem}")
    if not selected and not fatal and not problems:
        # Every engine was skipped: the error says why, once.
        if answered:
            raise DemoSetupError("\n".join(["Nothing left to run:", *(f"  - {note}" for note in skipped)]))
        raise DemoSetupError(_needs_message(skipped))
    for note in skipped:
        progress.say(note)
    if fatal:
        raise DemoSetupError("\n".join(fatal))
    if problems:
        raise DemoSetupError(_needs_message(problems))
    return Selection(selected, skipped)


def remove_rows(engines: Sequence[EngineSetup], records: list[dict[str, Any]]) -> None:
    """Leave the user's databases as they were: delete the demo's rows (and a table it created).

    :param engines: The engines the demo ran.
    :param records: The runner's records, one per finished DAG run.
    """
    by_label = {record["label"]: record for record in records}
    for engine in engines:
        record = by_label.get(engine.label)
        drop = not engine.table_existed
        try:
            if record is not None:
                remove_demo_rows(engine.server, record["run_id"], drop_table=drop)
            elif drop:
                remove_demo_rows(engine.server, "", drop_table=True)
        except Exception as exc:
            print(
                f"Could not remove the demo's rows from {TABLE} on {engine.shown()}: "
                f"{safe_error_text(exc, [engine.server.password])}"
            )
            continue
        what = f"the demo's rows from {TABLE}" + (" and the table, which the demo created" if drop else "")
        print(f"Removed {what} on {engine.shown()}.")

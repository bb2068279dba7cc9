"""The demo's parts that run without a database server: imports, options, DSNs, the children's environment."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_aurora_wake.demo.cli import EXIT_SETUP, Seconds, add_demo_parser, run_demo
from airflow_aurora_wake.demo.engines import (
    MYSQL,
    POSTGRES,
    DemoEngine,
    DemoSetupError,
    check_password_env,
    parse_server,
    server_password,
)
from airflow_aurora_wake.demo.report import print_report
from airflow_aurora_wake.demo.sandbox import Folder, child_environment

HEAVY = ("moto", "airflow", "asyncpg", "aiomysql", "airflow_aurora_wake.emulator.emulator")


def loaded_after(statement: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` a fresh interpreter has imported after running ``statement``."""
    probe = f"import sys; {statement}; print(' '.join(n for n in {names!r} if n in sys.modules))"
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()


def test_importing_the_provider_never_imports_the_demo() -> None:
    assert loaded_after("import airflow_aurora_wake", ("airflow_aurora_wake.demo",)) == []


def test_registering_the_demo_imports_nothing_heavy() -> None:
    statement = (
        "import argparse; from airflow_aurora_wake.demo import add_demo_parser; "
        "add_demo_parser(argparse.ArgumentParser().add_subparsers())"
    )
    assert loaded_after(statement, HEAVY) == []


def test_a_server_dsn_gets_the_defaults_and_keeps_its_password_out_of_sight() -> None:
    server = parse_server("postgresql://@db.example/test", POSTGRES, "s3cret-pw")
    assert (server.user, server.host, server.port) == ("postgres", "db.example", 5432)
    assert server.password == "s3cret-pw"
    assert "s3cret-pw" not in repr(server) and "s3cret-pw" not in server.describe()
    assert parse_server("mysql://me@127.0.0.1/test", MYSQL).port == 3306
    with pytest.raises(DemoSetupError, match="names no database") as missing:
        parse_server("mysql://me@127.0.0.1", MYSQL, "s3cret-pw")
    assert "mysql://me@127.0.0.1:3306/" in str(missing.value)
    assert "s3cret-pw" not in str(missing.value)
    with pytest.raises(DemoSetupError, match="--mysql-dsn needs a mysql DSN"):
        parse_server("postgresql://me@127.0.0.1/test", MYSQL)


@pytest.mark.parametrize(
    ("dsn", "kind"),
    [
        ("postgresql://me:s3cret-pw@db.example/test", POSTGRES),
        ("mysql://me:s3cret@pw@127.0.0.1/test", MYSQL),
        ("postgresql://me:@db.example/test", POSTGRES),
    ],
)
def test_a_password_in_a_dsn_is_refused_with_where_to_put_it(dsn: str, kind: DemoEngine) -> None:
    with pytest.raises(DemoSetupError) as refused:
        parse_server(dsn, kind)
    message = str(refused.value)
    assert "s3cret" not in message and "pw@" not in message
    assert f"{kind.flag} {dsn.split('://')[0]}://***@" in message
    assert "do not put the password in the DSN" in message
    assert kind.password_env in message and "--password-env VAR" in message


def demo_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_demo_parser(parser.add_subparsers())
    return parser.parse_args(["demo", *argv])


def test_passwords_come_from_pgpassword_mysql_pwd_or_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "pg-pw")
    monkeypatch.setenv("MYSQL_PWD", "my-pw")
    monkeypatch.setenv("DEMO_DB_PW", "named-pw")
    # Without --password-env: each engine's own variable, as psql and mysql read it.
    assert server_password(POSTGRES, None, None) == "pg-pw"
    assert server_password(MYSQL, "mysql://me@db/test", None) == "my-pw"
    # --password-env: the servers given with a DSN option; a default server keeps its variable.
    assert server_password(MYSQL, "mysql://me@db/test", "DEMO_DB_PW") == "named-pw"
    assert server_password(POSTGRES, None, "DEMO_DB_PW") == "pg-pw"
    monkeypatch.setenv("PGPASSWORD", "")
    assert server_password(POSTGRES, None, None) is None


def test_password_env_must_be_set_and_apply_to_a_given_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AURORA_WAKE_NO_SUCH_VARIABLE", raising=False)
    with pytest.raises(
        DemoSetupError, match="AURORA_WAKE_NO_SUCH_VARIABLE: that environment variable is not set"
    ):
        check_password_env(
            demo_args("--mysql-dsn", "mysql://me@db/test", "--password-env", "AURORA_WAKE_NO_SUCH_VARIABLE")
        )
    monkeypatch.setenv("DEMO_DB_PW", "named-pw")
    with pytest.raises(DemoSetupError, match="--postgres-dsn or --mysql-dsn; give one, or put"):
        check_password_env(demo_args("--password-env", "DEMO_DB_PW"))
    check_password_env(demo_args("--postgres-dsn", "postgresql://me@db/test", "--password-env", "DEMO_DB_PW"))


def test_the_demo_refuses_a_password_on_its_command_line_before_trying_any_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The MySQL DSN is read before the default PostgreSQL server is tried: no wait, no connection.
    args = demo_args(
        "--postgres-dsn", "postgresql://me@127.0.0.1:1/test", "--mysql-dsn", "mysql://me:hunter2@db/test"
    )

    assert run_demo(args) == EXIT_SETUP

    err = capsys.readouterr().err
    assert "--mysql-dsn mysql://***@db/test: do not put the password in the DSN" in err
    assert "hunter2" not in err and "nothing answers" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [("soon", "'soon' is not a number of seconds"), ("0.1", "'0.1': give 0.5 to 600 seconds")],
)
def test_seconds_name_the_value_and_the_range(text: str, message: str) -> None:
    assert Seconds(0.5, 600)("2.5") == 2.5
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        Seconds(0.5, 600)(text)


def test_the_children_see_none_of_the_users_airflow_or_aws_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://prod/airflow")
    monkeypatch.setenv("AWS_PROFILE", "production")
    folder = Folder(tmp_path)

    env = child_environment(folder, {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, {"aws_default": {}})

    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{folder.db_path}"
    assert "AWS_PROFILE" not in env
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["AIRFLOW_CONN_AWS_DEFAULT"] == "{}"


def test_the_report_repeats_what_was_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = "the MySQL cluster demo-mysql is skipped: nothing answers at 127.0.0.1:3306 (refused)"

    print_report(
        None,  # type: ignore[arg-type]  # no engine ran: the emulator is not asked for a timeline
        [],
        [],
        skipped=[note],
        folder=Folder(tmp_path),
        runner_ok=True,
        keep=False,
    )

    lines = capsys.readouterr().out.splitlines()
    assert "The MySQL cluster demo-mysql is skipped: nothing answers at 127.0.0.1:3306 (refused)" in lines

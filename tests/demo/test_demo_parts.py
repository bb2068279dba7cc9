"""The demo's parts that run without a database server: imports, options, DSNs, the children's environment."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_aurora_wake.demo.cli import Seconds
from airflow_aurora_wake.demo.engines import MYSQL, POSTGRES, DemoSetupError, parse_server
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
    server = parse_server("postgresql://:s3cret-pw@db.example/test", POSTGRES)
    assert (server.user, server.host, server.port) == ("postgres", "db.example", 5432)
    assert server.password == "s3cret-pw"
    assert parse_server("mysql://me@127.0.0.1/test", MYSQL).port == 3306
    with pytest.raises(DemoSetupError, match="names no database") as missing:
        parse_server("mysql://me:s3cret-pw@127.0.0.1", MYSQL)
    assert "mysql://me@127.0.0.1:3306/" in str(missing.value)
    assert "s3cret-pw" not in str(missing.value)
    with pytest.raises(DemoSetupError, match="--mysql-dsn needs a mysql DSN"):
        parse_server("postgresql://me@127.0.0.1/test", MYSQL)


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

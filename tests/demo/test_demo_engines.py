"""Which engines the demo runs when a server answers but its SQL provider is missing.

The provider is made to look missing through the one function the demo asks
(``engines._distribution_installed``); the servers are the real ones on this machine.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from typing import Any

import pytest

from airflow_aurora_wake.demo import engines
from airflow_aurora_wake.demo.cli import EXIT_SETUP, add_demo_parser, run_demo
from airflow_aurora_wake.demo.engines import MYSQL, select_engines
from airflow_aurora_wake.demo.progress import Progress

pytestmark = [pytest.mark.db]

SKIPPED_MYSQL = (
    "the MySQL cluster demo-mysql is skipped: mysql://root@127.0.0.1:3306/test answers, but the "
    "example DAG's SQL steps need apache-airflow-providers-mysql, which is not installed. To include "
    "it: apt-get install -y pkg-config libmariadb-dev (on Debian/Ubuntu: the headers mysqlclient "
    'compiles against), then pip install "airflow-aurora-wake[mysql]"'
)


def demo_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_demo_parser(parser.add_subparsers())
    return parser.parse_args(["demo", *argv])


@pytest.fixture
def default_servers(monkeypatch: pytest.MonkeyPatch, postgres_server: Any, mariadb_server: Any) -> None:
    """The demo's default servers answer (trust login for postgres, root without a password)."""
    for name in ("PGPASSWORD", "MYSQL_PWD"):
        monkeypatch.delenv(name, raising=False)
    assert MYSQL.default_dsn == mariadb_server.dsn


@pytest.fixture
def without_mysql_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: Callable[[str], bool] = engines._distribution_installed
    monkeypatch.setattr(
        engines, "_distribution_installed", lambda name: name != MYSQL.provider and installed(name)
    )


@pytest.mark.usefixtures("default_servers")
def test_with_its_provider_the_answering_mysql_server_is_run() -> None:
    selection = select_engines(demo_args(), Progress(io.StringIO()))

    assert [engine.label for engine in selection.engines] == ["postgresql", "mysql"]
    assert selection.skipped == []


@pytest.mark.usefixtures("default_servers", "without_mysql_provider")
def test_without_its_provider_the_mysql_cluster_is_skipped_with_how_to_include_it() -> None:
    said = io.StringIO()

    selection = select_engines(demo_args(), Progress(said))

    assert [engine.label for engine in selection.engines] == ["postgresql"]
    assert selection.skipped == [SKIPPED_MYSQL]
    assert f"] {SKIPPED_MYSQL}\n" in said.getvalue()


@pytest.mark.usefixtures("default_servers", "without_mysql_provider")
def test_mysql_alone_without_its_provider_says_nothing_is_left_to_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_demo(demo_args("--no-postgres")) == EXIT_SETUP

    err = capsys.readouterr().err
    assert f"airflow-aurora-wake demo: Nothing left to run:\n  - {SKIPPED_MYSQL}\n" in err
    assert "The demo needs a real PostgreSQL" not in err


@pytest.mark.usefixtures("without_mysql_provider")
def test_a_given_mysql_dsn_without_its_provider_is_an_error(mariadb_server: Any) -> None:
    with pytest.raises(engines.DemoSetupError) as refused:
        select_engines(demo_args("--no-postgres", "--mysql-dsn", mariadb_server.dsn), Progress(io.StringIO()))

    assert str(refused.value) == (
        "MySQL: the example DAG's SQL steps need apache-airflow-providers-mysql, which is not installed. "
        "To install it: apt-get install -y pkg-config libmariadb-dev (on Debian/Ubuntu: the headers "
        'mysqlclient compiles against), then pip install "airflow-aurora-wake[mysql]"'
    )

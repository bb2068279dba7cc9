"""Airflow connections for a user's own Airflow, from a running emulator (issue 11)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from emulator_helpers import FAST

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterEndpoint, ClusterSpec, ConnectionDefinition
from airflow_aurora_wake.emulator.connections import (
    RENDERINGS,
    conn_id_for,
    definitions_for,
    render_connections,
)

pytestmark = [pytest.mark.emulator, pytest.mark.db]

#: A password in the upstream DSNs, which must never come out in a definition.
UPSTREAM_PASSWORD = "upstream-pw-never-printed"


def _dsn(server: Any, password: str) -> str:
    scheme = "postgresql" if server.engine == "postgresql" else "mysql"
    return f"{scheme}://{server.user}:{password}@{server.host}:{server.port}/{server.database}"


@pytest.fixture
def two_clusters(aurora_emulator_factory: Any, postgres_server: Any, mariadb_server: Any) -> AuroraEmulator:
    """A PostgreSQL and a MySQL cluster, awake, whose upstream DSNs carry a password."""
    emu: AuroraEmulator = aurora_emulator_factory(
        [
            ClusterSpec("sales-pg", state="available", upstream=_dsn(postgres_server, UPSTREAM_PASSWORD)),
            ClusterSpec(
                "legacy.db",
                kind="serverless-v1",
                engine="aurora-mysql",
                state="available",
                upstream=_dsn(mariadb_server, UPSTREAM_PASSWORD),
            ),
        ],
        timings=FAST,
    )
    return emu


def test_definitions_name_each_clusters_endpoint_engine_user_and_database(
    two_clusters: AuroraEmulator, postgres_server: Any, mariadb_server: Any
) -> None:
    emu = two_clusters
    definitions = {d.conn_id: d for d in emu.connection_definitions()}
    assert list(definitions) == ["aws_default", "sales_pg", "legacy_db"]
    assert definitions["aws_default"] == ConnectionDefinition(
        conn_id="aws_default",
        conn_type="aws",
        login="testing",
        password="testing",
        extra={"endpoint_url": emu.endpoint_url, "region_name": emu.region},
    )
    pg, my = definitions["sales_pg"], definitions["legacy_db"]
    assert (pg.conn_type, pg.host, pg.port, pg.login, pg.schema, pg.password, pg.extra) == (
        "postgres", "127.0.0.1", emu.cluster("sales-pg").port, postgres_server.user,
        postgres_server.database, None, {},
    )  # fmt: skip
    assert (my.conn_type, my.host, my.port, my.login, my.schema, my.password, my.extra) == (
        "mysql", "127.0.0.1", emu.cluster("legacy.db").port, mariadb_server.user,
        mariadb_server.database, None, {},
    )  # fmt: skip

    # The fields alone reach the right server through the emulator (both servers trust these logins).
    with psycopg.connect(
        host=pg.host, port=pg.port, user=pg.login, dbname=pg.schema, connect_timeout=30
    ) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (pg.login, pg.schema)
    with (
        pymysql.connect(
            host=my.host, port=my.port, user=my.login, database=my.schema, connect_timeout=30, read_timeout=30
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("SELECT DATABASE()")
        assert cursor.fetchone() == (my.schema,)
    completed = emu.counters()["connections_completed"]
    assert completed["sales-pg"] == 1 and completed["legacy.db"] == 1


def test_no_database_connection_carries_a_password(two_clusters: AuroraEmulator) -> None:
    definitions = two_clusters.connection_definitions(aws_conn_id="emu_aws")
    assert UPSTREAM_PASSWORD not in repr(definitions)
    for rendering in RENDERINGS:
        text = render_connections(definitions, rendering, ca_file=two_clusters.ca_file)
        assert UPSTREAM_PASSWORD not in text
        lines = [line for line in text.splitlines() if not line.startswith("#") and line]
        assert len(lines) == 3
        aws_line, *database_lines = lines
        assert "emu_aws" in aws_line.lower() and "testing" in aws_line
        for line in database_lines:
            assert "password" not in line.lower()
        assert "carry no password" in text
        assert text.endswith("\n\n")  # the blank line that ends the block


def test_shell_quoting_keeps_awkward_values_intact() -> None:
    endpoint = ClusterEndpoint(
        identifier="odd-one", arn="arn", kind="provisioned", engine="aurora-postgresql",
        host="127.0.0.1", port=5555, region="us-east-1",
    )  # fmt: skip
    # A database and a user that need quoting (a quote, a space, a dollar, a backquote).
    dsn = "postgresql://o%27brien%20%24x@127.0.0.1:5432/it%27s%20%60db%60"
    aws, db = definitions_for("http://127.0.0.1:1", "eu-west-1", [(endpoint, dsn)])
    assert (db.conn_id, db.login, db.schema) == ("odd_one", "o'brien $x", "it's `db`")
    assert shlex.split(db.airflow_cli_command()) == [
        "airflow", "connections", "add", "odd_one", "--conn-type", "postgres", "--conn-host",
        "127.0.0.1", "--conn-port", "5555", "--conn-login", "o'brien $x", "--conn-schema", "it's `db`",
    ]  # fmt: skip
    assert shlex.split(aws.airflow_cli_command())[-2:] == [
        "--conn-extra",
        '{"endpoint_url": "http://127.0.0.1:1", "region_name": "eu-west-1"}',
    ]
    # What a real shell exports is the JSON, unchanged.
    shown = subprocess.run(
        ["sh", "-c", f"{db.env_line()}\nprintenv {db.env_var}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert json.loads(shown) == {
        "conn_type": "postgres", "host": "127.0.0.1", "port": 5555, "login": "o'brien $x",
        "schema": "it's `db`",
    }  # fmt: skip


def test_connection_ids_come_from_identifiers_and_never_clash() -> None:
    assert conn_id_for("demo-pg") == "demo_pg"
    assert conn_id_for("a.b-c_D9") == "a_b_c_D9"

    def endpoint(identifier: str) -> tuple[ClusterEndpoint, str]:
        return (
            ClusterEndpoint(
                identifier, "arn", "serverless-v2", "aurora-postgresql", "127.0.0.1", 1, "us-east-1"
            ),
            "postgresql://postgres@127.0.0.1:5432/test",
        )

    with pytest.raises(ValueError, match=r"cluster 'a\.b' would get connection id 'a_b'.*cluster 'a-b'"):
        definitions_for("http://127.0.0.1:1", "us-east-1", [endpoint("a-b"), endpoint("a.b")])
    with pytest.raises(ValueError, match="'aws_default', which the AWS connection already has"):
        definitions_for("http://127.0.0.1:1", "us-east-1", [endpoint("aws-default")])
    with pytest.raises(ValueError, match="AIRFLOW_CONN_MY-AWS is a valid environment variable name"):
        definitions_for("http://127.0.0.1:1", "us-east-1", [], aws_conn_id="my-aws")
    with pytest.raises(ValueError, match="unknown rendering 'yaml'"):
        render_connections([], "yaml")


def _exported(text: str) -> dict[str, str]:
    """Run the rendered lines in a real shell; return the AIRFLOW_CONN_ variables it exported."""
    names = [
        line.split("=", 1)[0].removeprefix("export ")
        for line in text.splitlines()
        if line.startswith("export ")
    ]
    script = text + "".join(f"printenv {name}\n" for name in names)
    out = subprocess.run(["sh", "-e", "-c", script], capture_output=True, text=True, check=True, timeout=30)
    return dict(zip(names, out.stdout.splitlines(), strict=True))


@pytest.mark.airflow
def test_env_lines_are_connections_airflow_uses_as_they_are(
    two_clusters: AuroraEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.providers.mysql.hooks.mysql import MySqlHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.secrets.environment_variables import EnvironmentVariablesBackend

    emu = two_clusters
    text = render_connections(emu.connection_definitions(), "env", ca_file=emu.ca_file)
    exported = _exported(text)
    assert set(exported) == {"AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_SALES_PG", "AIRFLOW_CONN_LEGACY_DB"}
    # Only the printed connections may lead to the emulator: no AWS_* variables, no other conn.
    for name in list(os.environ):
        if name.startswith(("AWS_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)
    for name, value in exported.items():
        monkeypatch.setenv(name, value)

    # Airflow's own parsing of AIRFLOW_CONN_<ID>.
    pg = EnvironmentVariablesBackend().get_connection("sales_pg")
    assert pg is not None
    assert (pg.conn_type, pg.host, pg.port, pg.login, pg.password, pg.schema) == (
        "postgres", "127.0.0.1", emu.cluster("sales-pg").port, "postgres", None, "test",
    )  # fmt: skip
    aws = EnvironmentVariablesBackend().get_connection("aws_default")
    assert aws is not None
    assert (aws.conn_type, aws.login, aws.password) == ("aws", "testing", "testing")
    assert aws.extra_dejson == {"endpoint_url": emu.endpoint_url, "region_name": emu.region}

    # And the providers' hooks reach the emulator with them, unchanged.
    rds = AwsBaseHook(aws_conn_id="aws_default", client_type="rds").get_conn()
    described = rds.describe_db_clusters()["DBClusters"]
    assert sorted(c["DBClusterIdentifier"] for c in described) == ["legacy.db", "sales-pg"]
    assert PostgresHook(postgres_conn_id="sales_pg").get_first("SELECT current_database()") == ("test",)
    assert MySqlHook(mysql_conn_id="legacy_db").get_first("SELECT DATABASE()") == ("test",)
    completed = emu.counters()["connections_completed"]
    assert completed["sales-pg"] == 1 and completed["legacy.db"] == 1


#: Each recorded ``airflow ...`` command through Airflow's own entry point, in one process:
#: a fresh ``airflow`` process costs about 5 s of imports, three of them would cost 15 s more.
RUN_AIRFLOW_COMMANDS = """
import json, sys
from airflow.__main__ import main
for argv in json.loads(sys.argv[1]):
    sys.argv = ["airflow", *argv]
    main()
"""


@pytest.mark.airflow
def test_airflow_cli_commands_are_accepted_by_airflow_connections_add(
    aurora_emulator_factory: Any, postgres_server: Any, tmp_path: Path
) -> None:
    emu: AuroraEmulator = aurora_emulator_factory([ClusterSpec("demo-pg", upstream=postgres_server.dsn)])
    text = render_connections(emu.connection_definitions(), "airflow-cli", ca_file=emu.ca_file)
    # The printed lines, as a user pastes them, in a real shell; ``airflow`` records the words
    # the shell made of each line, which then run through Airflow's own CLI below.
    record = 'airflow() { "$PYTHON" -c "import json, sys; print(json.dumps(sys.argv[1:]))" "$@"; }\n'
    pasted = subprocess.run(
        ["sh", "-e", "-c", record + text],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    commands = [json.loads(line) for line in pasted.splitlines()]
    assert [argv[:3] for argv in commands] == [
        ["connections", "add", "aws_default"],
        ["connections", "add", "demo_pg"],
    ]

    # A throwaway Airflow of its own: none of the session's settings, connections or AWS variables.
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "AWS_"))}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    exported = tmp_path / "connections.json"
    done = subprocess.run(
        [
            sys.executable, "-c", RUN_AIRFLOW_COMMANDS,
            json.dumps([
                ["db", "migrate"], *commands,
                ["connections", "export", "--file-format", "json", str(exported)],
            ]),
        ],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"Airflow refused the commands: {done.stdout}\n{done.stderr}"
    stored = json.loads(exported.read_text())
    assert stored["aws_default"] | {"extra": json.loads(stored["aws_default"]["extra"])} == {
        "conn_type": "aws", "description": None, "login": "testing", "password": "testing", "host": None,
        "port": None, "schema": None, "extra": {"endpoint_url": emu.endpoint_url, "region_name": emu.region},
    }  # fmt: skip
    assert stored["demo_pg"] == {
        "conn_type": "postgres", "description": None, "login": "postgres", "password": None,
        "host": "127.0.0.1", "port": emu.cluster("demo-pg").port, "schema": "test", "extra": None,
    }  # fmt: skip

"""``airflow-aurora-wake emulator`` as a process, the way a user's pipeline tests run it."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from emulator_helpers import wait_until

from airflow_aurora_wake.cli import build_parser
from airflow_aurora_wake.emulator.cli import parse_cluster

pytestmark = [pytest.mark.emulator, pytest.mark.db]


@contextlib.contextmanager
def running_emulator(*argv: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any], list[str]]]:
    """``airflow-aurora-wake emulator ARGV...`` as a process: it, its JSON line, its stderr lines."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_aurora_wake.cli", "emulator", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    # Drain stderr all along, so a chatty log can never block the process on a full pipe.
    stderr: list[str] = []
    assert process.stderr is not None and process.stdout is not None
    drain = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()
    try:
        line = process.stdout.readline()  # the one JSON line, printed when ready
        assert line, f"the emulator exited early: {''.join(stderr)}"
        yield process, json.loads(line), stderr
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        drain.join(10)


@pytest.fixture
def emulator_process(
    postgres_server: Any,
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any], list[str]]]:
    with running_emulator(
        "--resume-seconds", "1",
        "--cluster", f"sales:serverless-v2:aurora-postgresql,upstream={postgres_server.dsn}",
        "--cluster", "legacy:v1:mysql,state=available",
    ) as running:  # fmt: skip
        yield running


def test_cli_prints_one_json_line_serves_clusters_and_exits_0_on_sigterm(
    emulator_process: tuple[subprocess.Popen[str], dict[str, Any], list[str]],
) -> None:
    process, ready, stderr = emulator_process
    assert ready["endpoint_url"].startswith("http://127.0.0.1:")
    assert ready["region"] == "us-east-1"
    clusters = {c["identifier"]: c for c in ready["clusters"]}
    assert set(clusters) == {"sales", "legacy"}
    sales = clusters["sales"]
    assert sales["kind"] == "serverless-v2" and sales["engine"] == "aurora-postgresql"
    assert clusters["legacy"]["kind"] == "serverless-v1" and clusters["legacy"]["engine"] == "aurora-mysql"

    rds = boto3.client(
        "rds", endpoint_url=ready["endpoint_url"], region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    described = rds.describe_db_clusters(DBClusterIdentifier="sales")["DBClusters"][0]
    assert (described["Endpoint"], described["Port"]) == (sales["host"], sales["port"])
    assert described["DBClusterArn"] == sales["arn"]

    # A psql-style connect with a generous timeout, to the paused cluster, works after the resume,
    # verifying the endpoint's TLS certificate with the CA the JSON line names.
    with psycopg.connect(
        f"host={sales['host']} port={sales['port']} user=postgres dbname=test connect_timeout=30 "
        f"sslmode=verify-full sslrootcert={ready['ca_file']}"
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.pgconn.ssl_in_use

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not os.path.exists(ready["ca_file"])  # the temporary directory went with it
    assert process.stdout is not None and process.stdout.read() == ""  # exactly one line
    wait_until(lambda: "emulator stopped" in "".join(stderr), 10, "the last log line")


def test_cli_stops_cleanly_on_sigint(
    emulator_process: tuple[subprocess.Popen[str], dict[str, Any], list[str]],
) -> None:
    process, _, _ = emulator_process
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


@pytest.mark.parametrize("rendering", ["airflow-cli", "env"])
def test_print_connections_prints_them_right_after_the_json_line(
    rendering: str, postgres_server: Any
) -> None:
    with running_emulator(
        "--print-connections", rendering, "--aws-conn-id", "emu_aws",
        "--cluster", f"sales-pg:v2:pg,upstream={postgres_server.dsn}",
    ) as (process, ready, _):  # fmt: skip
        assert set(ready) == {"endpoint_url", "region", "ca_file", "clusters"}  # the first line, unchanged
        assert process.stdout is not None
        block: list[str] = []
        # A missing blank line must fail the test, not hang it: the kill ends the stream.
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        while (line := process.stdout.readline().rstrip("\n")) != "":  # a blank line ends the block
            block.append(line)
        watchdog.cancel()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    comments = "\n".join(line for line in block if line.startswith("# "))
    assert "The database connections carry no password" in comments
    assert "does not check database passwords" in comments
    assert ready["ca_file"] in comments
    port = ready["clusters"][0]["port"]
    definitions = [line for line in block if not line.startswith("#")]
    if rendering == "env":
        assert [line.split("=", 1)[0] for line in definitions] == [
            "export AIRFLOW_CONN_EMU_AWS",
            "export AIRFLOW_CONN_SALES_PG",
        ]
        aws, pg = (json.loads(shlex.split(line.split("=", 1)[1])[0]) for line in definitions)
        assert aws == {
            "conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": ready["endpoint_url"], "region_name": "us-east-1"},
        }  # fmt: skip
        assert pg == {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": port,
            "login": "postgres",
            "schema": "test",
        }
    else:
        assert [shlex.split(line) for line in definitions] == [
            [
                "airflow", "connections", "add", "emu_aws", "--conn-type", "aws", "--conn-login", "testing",
                "--conn-password", "testing", "--conn-extra",
                json.dumps({"endpoint_url": ready["endpoint_url"], "region_name": "us-east-1"}),
            ],
            [
                "airflow", "connections", "add", "sales_pg", "--conn-type", "postgres", "--conn-host",
                "127.0.0.1", "--conn-port", str(port), "--conn-login", "postgres", "--conn-schema", "test",
            ],
        ]  # fmt: skip


def test_print_connections_refuses_two_connections_with_one_id() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "airflow_aurora_wake.cli", "emulator", "--print-connections", "env",
            "--cluster", "aws-default,state=available",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "would get connection id 'aws_default', which the AWS connection already has" in result.stderr
    assert result.stdout == ""


def test_cluster_flag_syntax() -> None:
    spec = parse_cluster("sales:v1:pg,state=available,data-api=true,min-capacity=2,max-capacity=8,port=0")
    assert spec == {
        "identifier": "sales",
        "kind": "serverless-v1",
        "engine": "aurora-postgresql",
        "state": "available",
        "data_api": True,
        "min_capacity": 2.0,
        "max_capacity": 8.0,
        "port": 0,
    }
    inferred = parse_cluster("x,upstream=mysql://root@127.0.0.1:3306/test")
    assert inferred["engine"] == "aurora-mysql"  # from the upstream when :ENGINE is left out


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--cluster", "x:v7"], ["--cluster", "'x:v7'", "unknown kind", "serverless-v2"]),
        (["--cluster", "x,data-api=maybe"], ["--cluster", "data-api must be true or false"]),
        (["--cluster", "x:provisioned"], ["--cluster", "cannot be paused", "state='available'"]),
        (["--cluster", "x,colour=red"], ["--cluster", "unknown option 'colour'"]),
        (["--resume-seconds", "soon"], ["--resume-seconds", "'soon' is not a number"]),
        (["--throttle-fraction", "2"], ["--throttle-fraction", "'2' is out of range", "from 0 to 1"]),
        (["--after-resume-error", "boom"], ["--after-resume-error", "'boom'", "starting-up"]),
        (["--print-connections", "yaml"], ["--print-connections", "'yaml'", "airflow-cli", "env"]),
        (["--aws-conn-id", "my-aws"], ["--aws-conn-id", "'my-aws'", "letters, digits and '_'"]),
    ],
)
def test_bad_flags_name_the_flag_the_value_and_the_fix(
    argv: list[str], fragments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["emulator", *argv])
    assert exc.value.code == 2
    message = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in message


def test_defaults_to_one_paused_v2_postgresql_cluster() -> None:
    args = build_parser().parse_args(["emulator"])
    assert isinstance(args, argparse.Namespace)
    assert args.cluster is None  # the handler then uses demo-pg
    assert parse_cluster("demo-pg:serverless-v2:aurora-postgresql")["identifier"] == "demo-pg"


def test_without_moto_the_command_says_what_to_install() -> None:
    # Building the parser must not import moto; running the command without it exits 2.
    code = (
        "import sys; sys.modules['moto'] = None; sys.modules['moto.server'] = None\n"
        "from airflow_aurora_wake.cli import main\n"
        "sys.exit(main(['emulator']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "install airflow-aurora-wake[emulator]" in result.stderr
    assert result.stdout == ""

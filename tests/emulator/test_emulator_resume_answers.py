"""Per-cluster resume answers: what a connection or an rds-data call gets while a cluster resumes.

Seen through plain drivers (asyncpg, aiomysql, pymysql, a raw socket, botocore), so these tests
pin the wire behaviour the fault suite (tests/faults/test_resume_answers.py) relies on.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import aiomysql
import asyncpg
import pymysql
import pytest
from botocore.exceptions import ClientError
from emulator_helpers import NO_RETRY, error_of, events, wait_until

from airflow_aurora_wake.cli import build_parser
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults
from airflow_aurora_wake.emulator.cli import parse_cluster

pytestmark = [pytest.mark.emulator, pytest.mark.db]

ENGINE = {"postgresql": "aurora-postgresql", "mysql": "aurora-mysql"}


def spec_for(server: Any, identifier: str = "c", **kwargs: Any) -> ClusterSpec:
    return ClusterSpec(identifier, engine=ENGINE[server.engine], upstream=server.dsn, **kwargs)


async def pg_error(ep: Any, server: Any, ssl: Any) -> BaseException:
    """The error asyncpg gets from a connection attempt."""
    with pytest.raises(Exception) as caught:
        conn = await asyncpg.connect(
            host=ep.host, port=ep.port, user=server.user, database=server.database, ssl=ssl, timeout=5
        )
        await conn.close()
    return caught.value


@pytest.mark.parametrize("ssl", ["require", False], ids=["tls", "plaintext"])
async def test_postgresql_answers_while_resuming(emu: AuroraEmulator, postgres_server: Any, ssl: Any) -> None:
    answers = ("eof", "reset", "starting-up", "pg-hba-refusal", "lost-connection")
    endpoints = {
        answer: emu.add_cluster(spec_for(postgres_server, answer, resume_answer=answer)) for answer in answers
    }
    errors = {answer: await pg_error(ep, postgres_server, ssl) for answer, ep in endpoints.items()}
    assert isinstance(errors["eof"], (ConnectionError, asyncpg.ConnectionDoesNotExistError)), errors
    # How a driver words an RST depends on when it lands (the raw socket test below pins the RST).
    assert isinstance(errors["reset"], (ConnectionError, asyncpg.ConnectionDoesNotExistError)), errors
    assert getattr(errors["starting-up"], "sqlstate", None) == "57P03", errors
    refusal = errors["pg-hba-refusal"]
    assert getattr(refusal, "sqlstate", None) == "28000", errors
    encryption = "SSL encryption" if ssl else "no encryption"
    assert str(refusal) == (
        f'no pg_hba.conf entry for host "127.0.0.1", user "{postgres_server.user}", '
        f'database "{postgres_server.database}", {encryption}'
    )
    assert isinstance(errors["lost-connection"], (ConnectionError, asyncpg.ConnectionDoesNotExistError))
    counters = emu.counters()
    for answer in answers:
        # Each attempt was answered at once, the resume it started goes on, and is not restarted.
        assert counters["resume_answers"][answer] == 1
        assert emu.status(answer) == "resuming"
        assert len(events(emu, answer, "resume-requested")) == 1
    assert counters["connections_reset"]["reset"] == 1
    wait_until(lambda: all(emu.status(answer) == "available" for answer in answers), 10, "the resumes")
    for answer in answers:
        conn = await asyncpg.connect(
            host=endpoints[answer].host,
            port=endpoints[answer].port,
            user=postgres_server.user,
            database=postgres_server.database,
            ssl=ssl,
            timeout=5,
        )
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()


async def test_mysql_answers_while_resuming_are_lost_connections(
    emu: AuroraEmulator, mariadb_server: Any
) -> None:
    answers = ("eof", "reset", "starting-up", "lost-connection")
    for answer in answers:
        ep = emu.add_cluster(spec_for(mariadb_server, answer, resume_answer=answer))
        with pytest.raises(pymysql.err.OperationalError) as sync:
            pymysql.connect(
                host=ep.host, port=ep.port, user=mariadb_server.user, connect_timeout=5, read_timeout=5
            )
        with pytest.raises(pymysql.err.OperationalError) as asynchronous:
            await aiomysql.connect(host=ep.host, port=ep.port, user=mariadb_server.user, connect_timeout=5)
        # 2013 "Lost connection to MySQL server during query", from both drivers; an RST that lands
        # before the TCP connect returns is reported as 2003 instead.
        expected = {2013, 2003} if answer == "reset" else {2013}
        seen = {sync.value.args[0], asynchronous.value.args[0]}
        assert seen <= expected, (answer, sync.value, asynchronous.value)
        assert emu.counters()["resume_answers"][answer] == 2
    wait_until(lambda: emu.status("eof") == "available", 10, "the resume")
    conn = await aiomysql.connect(host=ep.host, port=emu.cluster("eof").port, user=mariadb_server.user)
    conn.close()


def test_an_eof_is_a_clean_close_and_a_reset_is_an_rst(emu: AuroraEmulator, postgres_server: Any) -> None:
    eof = emu.add_cluster(spec_for(postgres_server, "eof", resume_answer="eof"))
    with socket.create_connection((eof.host, eof.port), timeout=5) as sock:
        sock.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # SSLRequest: never answered
        assert sock.recv(1) == b""
    reset = emu.add_cluster(spec_for(postgres_server, "reset", resume_answer="reset"))
    with (
        pytest.raises(ConnectionResetError),
        socket.create_connection((reset.host, reset.port), timeout=5) as sock,
    ):
        sock.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
        sock.recv(1)


async def test_hold_is_the_default_and_answers_change_at_run_time(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    ep = emu.add_cluster(spec_for(postgres_server))
    assert emu.state()["clusters"]["c"]["resume_answer"] == "hold"
    assert emu.state()["clusters"]["c"]["data_api_resume_answer"] == "resuming"
    emu.set_resume_answers("c", "starting-up")
    assert getattr(await pg_error(ep, postgres_server, False), "sqlstate", None) == "57P03"
    emu.set_resume_answers("c", "hold")
    # Held through the rest of the same resume, then connected.
    conn = await asyncpg.connect(
        host=ep.host,
        port=ep.port,
        user=postgres_server.user,
        database=postgres_server.database,
        ssl=False,
        timeout=10,
    )
    await conn.close()
    assert emu.counters()["resume_answers"]["c"] == 1
    assert len(events(emu, "c", "resume-requested")) == 1


def test_the_emulator_wide_reset_fault_wins_and_is_not_counted_as_an_answer(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    emu.set_faults(Faults(reset_during_resume=True))
    ep = emu.add_cluster(spec_for(postgres_server, resume_answer="starting-up"))
    with pytest.raises(ConnectionResetError), socket.create_connection((ep.host, ep.port), timeout=5) as sock:
        sock.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
        sock.recv(1)
    counters = emu.counters()
    assert counters["connections_reset"]["c"] == 1 and counters["resume_answers"]["c"] == 0


DATA_API = {
    "resuming": ("DatabaseResumingException", 400, "resuming after being auto-paused"),
    "communications-link": ("BadRequestException", 400, "Communications link failure"),
    "starting-up": ("DatabaseErrorException", 400, "the database system is starting up"),
    "statement-timeout": ("StatementTimeoutException", 400, "timed out"),
    "unavailable": ("DatabaseUnavailableException", 504, "isn't available"),
    "secrets-timeout": ("SecretsErrorException", 400, "timed out"),
}


@pytest.mark.parametrize("answer", sorted(DATA_API))
def test_data_api_answers_while_resuming(emu: AuroraEmulator, database_server: Any, answer: str) -> None:
    ep = emu.add_cluster(spec_for(database_server, "d", data_api=True, data_api_resume_answer=answer))
    secret = emu.create_secret(database_server.user, "")
    client = emu.boto3_client("rds-data", config=NO_RETRY)

    def execute() -> Any:
        return client.execute_statement(
            resourceArn=ep.arn, secretArn=secret, sql="SELECT 1", database=database_server.database
        )

    for _ in range(2):  # the call that starts the resume, and one during it
        with pytest.raises(ClientError) as caught:
            execute()
        code, status, phrase = DATA_API[answer]
        error = error_of(caught.value)
        assert (error.code, error.status) == (code, status) and phrase in error.message, error
    assert emu.counters()["data_api_resume_answers"]["d"] == 2
    assert len(events(emu, "d", "resume-requested")) == 1
    wait_until(lambda: emu.status("d") == "available", 10, "the resume")
    assert execute()["records"] == [[{"longValue": 1}]]


def test_answers_are_validated_per_engine() -> None:
    with pytest.raises(ValueError, match="resume_answer must be one of hold, eof"):
        ClusterSpec("c", resume_answer="silence")
    with pytest.raises(ValueError, match="'pg-hba-refusal' is a PostgreSQL answer"):
        ClusterSpec("c", engine="aurora-mysql", resume_answer="pg-hba-refusal")
    with pytest.raises(ValueError, match="data_api_resume_answer must be one of resuming"):
        ClusterSpec("c", data_api_resume_answer="DatabaseResumingException")


def test_the_cli_sets_answers_per_cluster_and_for_all(capsys: pytest.CaptureFixture[str]) -> None:
    spec = parse_cluster("a:v2:mysql,resume-answer=lost-connection,data-api-resume-answer=unavailable")
    assert spec["resume_answer"] == "lost-connection" and spec["data_api_resume_answer"] == "unavailable"
    with pytest.raises(Exception, match="PostgreSQL answer"):
        parse_cluster("a:v2:mysql,resume-answer=pg-hba-refusal")
    args = build_parser().parse_args(
        ["emulator", "--resume-answer", "pg-hba-refusal", "--data-api-resume-answer", "communications-link"]
    )
    assert (args.resume_answer, args.data_api_resume_answer) == ("pg-hba-refusal", "communications-link")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", "--resume-answer", "silence"])
    assert "--resume-answer" in capsys.readouterr().err
    # A flag for every cluster that one cluster's engine cannot give: exit 2 with the reason.
    args = build_parser().parse_args(
        ["emulator", "--resume-answer", "pg-hba-refusal", "--cluster", "m:v2:mysql"]
    )
    assert args.handler(args) == 2
    assert "'pg-hba-refusal' is a PostgreSQL answer" in capsys.readouterr().err


def test_the_admin_route_sets_answers(emu: AuroraEmulator) -> None:
    emu.add_cluster(ClusterSpec("a"))

    def post(body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            emu.endpoint_url + "/_emulator/clusters/a/resume-answers",
            data=json.dumps(body).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    state = post({"resume_answer": "pg-hba-refusal", "data_api_resume_answer": "secrets-timeout"})
    assert (state["resume_answer"], state["data_api_resume_answer"]) == ("pg-hba-refusal", "secrets-timeout")
    assert post({"resume_answer": "eof"})["data_api_resume_answer"] == "secrets-timeout"
    for bad in ({"resume_answer": "silence"}, {"colour": "red"}):
        with pytest.raises(urllib.error.HTTPError) as caught:
            post(bad)
        assert caught.value.code == 400

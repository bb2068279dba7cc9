"""rds-data ExecuteStatement through botocore against the real databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import FAST, NO_RETRY, error_of, events, wait_until

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults

pytestmark = [pytest.mark.emulator, pytest.mark.db]

ENGINE = {"postgresql": "aurora-postgresql", "mysql": "aurora-mysql"}


def add(emu: AuroraEmulator, server: Any, **kwargs: Any) -> Any:
    spec = ClusterSpec("d", engine=ENGINE[server.engine], upstream=server.dsn, data_api=True, **kwargs)
    return emu.add_cluster(spec)


def test_data_api_wakes_a_paused_v2_cluster_then_returns_real_rows(
    emu: AuroraEmulator, database_server: Any
) -> None:
    ep = add(emu, database_server)
    secret = emu.create_secret(database_server.user, "")
    client = emu.boto3_client("rds-data", config=NO_RETRY)
    sql = "SELECT 1 AS one, 'x' AS letter, NULL AS nothing, 2.5 AS half"
    with pytest.raises(ClientError) as exc:
        client.execute_statement(
            resourceArn=ep.arn, secretArn=secret, sql=sql, database=database_server.database
        )
    error = error_of(exc.value)
    assert (error.code, error.status) == ("DatabaseResumingException", 400)
    assert emu.timeline("d")[-1].detail["cause"] == "data-api"
    wait_until(lambda: emu.status("d") == "available", 10, "the resume")
    answer = client.execute_statement(
        resourceArn=ep.arn,
        secretArn=secret,
        sql=sql,
        database=database_server.database,
        includeResultMetadata=True,
    )
    record = answer["records"][0]
    assert record[0] == {"longValue": 1}
    assert record[1] == {"stringValue": "x"}
    assert record[2] == {"isNull": True}
    assert record[3] in ({"stringValue": "2.5"}, {"doubleValue": 2.5})  # DECIMAL is a string in the Data API
    assert [column["name"] for column in answer["columnMetadata"]] == ["one", "letter", "nothing", "half"]
    ready = emu.ready_at("d")
    assert ready is not None
    assert ready - events(emu, "d", "resume-requested")[0] == pytest.approx(FAST.resume_seconds, abs=1e-6)
    assert emu.counters()["data_api_calls"] == {"d": 2}


def test_data_api_runs_parameterised_writes_and_counts_updates(
    emu: AuroraEmulator, database_server: Any
) -> None:
    ep = add(emu, database_server, state="available")
    secret = emu.create_secret(database_server.user, "")
    client = emu.boto3_client("rds-data", config=NO_RETRY)

    def run(sql: str, **kwargs: Any) -> Any:
        return client.execute_statement(
            resourceArn=ep.arn, secretArn=secret, sql=sql, database=database_server.database, **kwargs
        )

    table = f"emulator_data_api_{uuid.uuid4().hex[:8]}"
    run(f"CREATE TABLE {table} (id INT, name VARCHAR(20))")
    try:
        inserted = run(
            f"INSERT INTO {table} VALUES (:id, :name), (:id2, :name)",
            parameters=[
                {"name": "id", "value": {"longValue": 1}},
                {"name": "id2", "value": {"longValue": 2}},
                {"name": "name", "value": {"stringValue": "it's"}},
            ],
        )
        assert inserted["numberOfRecordsUpdated"] == 2
        rows = run(
            f"SELECT id, name FROM {table} WHERE id > :low ORDER BY id",
            parameters=[{"name": "low", "value": {"longValue": 0}}],
        )["records"]
        assert rows == [
            [{"longValue": 1}, {"stringValue": "it's"}],
            [{"longValue": 2}, {"stringValue": "it's"}],
        ]
        formatted = run(f"SELECT id FROM {table} ORDER BY id", formatRecordsAs="JSON")
        assert formatted["formattedRecords"] == '[{"id": 1}, {"id": 2}]'
    finally:
        run(f"DROP TABLE {table}")


def test_data_api_sql_errors_are_bad_request(emu: AuroraEmulator, postgres_server: Any) -> None:
    ep = add(emu, postgres_server, state="available")
    secret = emu.create_secret("postgres", "")
    with pytest.raises(ClientError) as exc:
        emu.boto3_client("rds-data", config=NO_RETRY).execute_statement(
            resourceArn=ep.arn, secretArn=secret, sql="SELECT * FROM no_such_table"
        )
    error = error_of(exc.value)
    assert (error.code, error.status) == ("BadRequestException", 400)
    assert "no_such_table" in error.message


def test_http_endpoint_not_enabled(emu: AuroraEmulator, postgres_server: Any) -> None:
    ep = emu.add_cluster(ClusterSpec("off", upstream=postgres_server.dsn))
    secret = emu.create_secret("postgres", "")
    with pytest.raises(ClientError) as exc:
        emu.boto3_client("rds-data", config=NO_RETRY).execute_statement(
            resourceArn=ep.arn, secretArn=secret, sql="SELECT 1"
        )
    assert (error_of(exc.value).code, error_of(exc.value).status) == ("HttpEndpointNotEnabledException", 400)
    assert events(emu, "off", "resume-requested") == []  # no Data API, no wake


@pytest.mark.parametrize("state", ["stopped", "starting"])
def test_data_api_on_a_stopped_or_starting_cluster_is_bad_request(
    emu: AuroraEmulator, postgres_server: Any, state: str
) -> None:
    ep = add(emu, postgres_server, state="stopped")
    if state == "starting":
        emu.set_timings("d", FAST.merged({"start_seconds": 60}))
        emu.boto3_client("rds").start_db_cluster(DBClusterIdentifier="d")
    with pytest.raises(ClientError) as exc:
        emu.boto3_client("rds-data", config=NO_RETRY).execute_statement(
            resourceArn=ep.arn, secretArn=emu.create_secret("postgres", ""), sql="SELECT 1"
        )
    error = error_of(exc.value)
    assert (error.code, error.status) == ("BadRequestException", 400)
    assert state in error.message


def test_data_api_with_an_unknown_secret_is_bad_request(emu: AuroraEmulator, postgres_server: Any) -> None:
    ep = add(emu, postgres_server, state="available")
    with pytest.raises(ClientError) as exc:
        emu.boto3_client("rds-data", config=NO_RETRY).execute_statement(
            resourceArn=ep.arn,
            secretArn=f"arn:aws:secretsmanager:us-east-1:{emu.account_id}:secret:missing-abc123",
            sql="SELECT 1",
        )
    assert error_of(exc.value).code == "BadRequestException"
    assert "secret" in error_of(exc.value).message


def test_data_api_can_be_denied(emu: AuroraEmulator, postgres_server: Any) -> None:
    ep = add(emu, postgres_server)
    emu.set_faults(Faults(deny_actions=frozenset({"rds-data:ExecuteStatement"})))
    with pytest.raises(ClientError) as exc:
        emu.boto3_client("rds-data", config=NO_RETRY).execute_statement(
            resourceArn=ep.arn, secretArn=emu.create_secret("postgres", ""), sql="SELECT 1"
        )
    assert (error_of(exc.value).code, error_of(exc.value).status) == ("AccessDeniedException", 403)
    assert emu.status("d") == "paused"

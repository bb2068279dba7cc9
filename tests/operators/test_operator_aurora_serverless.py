"""AuroraServerlessWakeOperator against the emulator, on PostgreSQL and MariaDB.

Every row of the wake table (core.wake.plan_wake) is sent to a real emulated cluster and the
wake request is counted by the emulator: the operator describes once, sends the one request
that fits, and returns without waiting for readiness.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow_support import CLUSTER, EmulatedCluster, context, set_unanswering_aws_connection

from airflow_aurora_wake.core.errors import (
    ClusterNotFoundError,
    ClusterStateError,
    DatabaseConfigurationError,
    InvalidParameterError,
    TransientError,
)
from airflow_aurora_wake.operators import aurora_serverless as operator_module
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator

ENGINE_PARAMS = pytest.mark.parametrize("engine", ["postgresql", "mysql"])
XCOM_KEYS = {"db_cluster_identifier", "kind", "engine", "status", "action", "detail", "requested_at"}


def wake(cluster: EmulatedCluster, **kwargs: Any) -> AuroraServerlessWakeOperator:
    kwargs.setdefault("db_cluster_identifier", cluster.identifier)
    kwargs.setdefault("aws_conn_id", cluster.aws_conn_id)
    return AuroraServerlessWakeOperator(task_id="wake", **kwargs)


def wake_calls(cluster: EmulatedCluster) -> dict[str, int]:
    calls = dict(cluster.counters()["rds_calls"])
    calls.pop("DescribeDBClusters", None)
    return calls


@ENGINE_PARAMS
def test_paused_v1_gets_one_capacity_request_and_no_wait(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v1", engine=engine, state="paused")
    result = wake(cluster).execute(context())
    assert set(result) == XCOM_KEYS
    assert result["action"] == "modify-capacity"
    assert result["kind"] == "serverless-v1"
    assert wake_calls(cluster) == {"ModifyCurrentDBClusterCapacity": 1}
    # The plan's describe, and the check right before asking (a stale plan must not scale down).
    assert cluster.counters()["rds_calls"]["DescribeDBClusters"] == 2
    # Returned before the cluster was ready: the operator never waits.
    assert cluster.ready_at() is None
    # The minimum valid v1 capacity of the engine (MySQL 1, PostgreSQL 2) was requested.
    assert ("1 ACUs" if engine == "mysql" else "2 ACUs") in result["detail"]


@ENGINE_PARAMS
def test_paused_v1_with_explicit_templated_capacity(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v1", engine=engine, state="paused")
    operator = wake(cluster, capacity="{{ params.acu }}", params={"acu": 4})
    operator.render_template_fields({"params": {"acu": 4}})
    assert operator.capacity == "4"  # templates render to strings
    result = operator.execute(context())
    assert result["action"] == "modify-capacity"
    assert "4 ACUs" in result["detail"]
    assert wake_calls(cluster) == {"ModifyCurrentDBClusterCapacity": 1}


@ENGINE_PARAMS
def test_running_v1_needs_no_wake(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v1", engine=engine, state="available")
    result = wake(cluster).execute(context())
    assert result["action"] == "none"
    assert wake_calls(cluster) == {}


@ENGINE_PARAMS
def test_v2_with_conn_id_is_nudged_by_a_connection_attempt(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v2", engine=engine, state="paused")
    result = wake(cluster, conn_id=cluster.conn_id).execute(context())
    assert result["action"] == "connection-nudge"
    assert wake_calls(cluster) == {}
    assert cluster.counters()["connection_attempts"] >= 1
    timeline = [event.event for event in cluster.emu.timeline(cluster.identifier)]
    assert any("resume" in name for name in timeline), timeline


@ENGINE_PARAMS
def test_v2_with_data_api_secret_is_nudged_through_the_data_api(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v2", engine=engine, state="paused", data_api=True)
    secret_arn = cluster.emu.create_secret("postgres" if engine == "postgresql" else "root", "")
    result = wake(cluster, data_api_secret_arn=secret_arn).execute(context())
    assert result["action"] == "data-api-nudge"
    assert cluster.counters()["data_api_calls"] >= 1
    assert cluster.counters()["connection_attempts"] == 0
    assert wake_calls(cluster) == {}


@ENGINE_PARAMS
def test_v2_without_nudge_is_woken_through_its_writer_log_files(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v2", engine=engine, state="paused")
    result = wake(cluster).execute(context())
    assert result["action"] == "describe-log-files"
    assert "was paused (DBInstanceNotReadyFault)" in result["detail"]
    assert cluster.counters()["connection_attempts"] == 0
    assert wake_calls(cluster) == {"DescribeDBLogFiles": 1}


@ENGINE_PARAMS
def test_available_provisioned_cluster_needs_no_wake(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="provisioned", engine=engine, state="available")
    result = wake(cluster, conn_id=cluster.conn_id).execute(context())
    assert result["action"] == "none"
    assert result["kind"] == "provisioned"
    assert wake_calls(cluster) == {}
    assert cluster.counters()["connection_attempts"] == 0


@ENGINE_PARAMS
@pytest.mark.parametrize("kind", ["serverless-v2", "provisioned"])
def test_stopped_cluster_is_started(emulated: Any, engine: str, kind: str) -> None:
    cluster = emulated(kind=kind, engine=engine, state="stopped")
    result = wake(cluster).execute(context())
    assert result["action"] == "start-db-cluster"
    assert result["status"] == "stopped"
    assert wake_calls(cluster) == {"StartDBCluster": 1}
    assert cluster.ready_at() is None  # returned without waiting for the start


@ENGINE_PARAMS
def test_starting_cluster_is_already_waking(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="provisioned", engine=engine, state="stopped", timings={"start_seconds": 30})
    cluster.emu.boto3_client("rds").start_db_cluster(DBClusterIdentifier=cluster.identifier)
    result = wake(cluster).execute(context())
    assert result["action"] == "already-waking"
    assert result["status"] == "starting"
    assert wake_calls(cluster) == {"StartDBCluster": 1}  # only the one sent above


@ENGINE_PARAMS
def test_stopped_cluster_without_start_if_stopped_fails_at_once(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="provisioned", engine=engine, state="stopped")
    with pytest.raises(ClusterStateError, match=r"'sales' is 'stopped'.*StartDBCluster.*let the wake start"):
        wake(cluster, start_if_stopped=False).execute(context())
    assert wake_calls(cluster) == {}


@ENGINE_PARAMS
def test_non_recoverable_state_fails_at_once(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="provisioned", engine=engine, state="available", timings={"stop_seconds": 30})
    cluster.emu.boto3_client("rds").stop_db_cluster(DBClusterIdentifier=cluster.identifier)
    with pytest.raises(ClusterStateError, match="'stopping'"):
        wake(cluster).execute(context())
    assert wake_calls(cluster) == {"StopDBCluster": 1}


def test_unknown_cluster_names_identifier_and_region(emulated: Any) -> None:
    cluster = emulated()
    with pytest.raises(ClusterNotFoundError) as excinfo:
        wake(cluster, db_cluster_identifier="no-such-cluster").execute(context())
    assert "'no-such-cluster'" in str(excinfo.value)
    assert "us-east-1" in str(excinfo.value)


def test_unknown_conn_id_fails_before_any_aws_call(emulated: Any) -> None:
    cluster = emulated()
    with pytest.raises(InvalidParameterError, match="missing_db_connection"):
        wake(cluster, conn_id="missing_db_connection").execute(context())
    assert cluster.counters()["rds_calls"] == {}


@pytest.mark.parametrize(("engine", "wrong_type"), [("postgresql", "mysql"), ("mysql", "postgres")])
def test_connection_type_must_match_the_engine(
    emulated: Any, monkeypatch: pytest.MonkeyPatch, engine: str, wrong_type: str
) -> None:
    from airflow_support import set_database_connection

    cluster = emulated(engine=engine)
    set_database_connection(monkeypatch, "wrong_type", engine=engine, conn_type=wrong_type, user="x")
    with pytest.raises(DatabaseConfigurationError, match=f"type '{wrong_type}'"):
        wake(cluster, conn_id="wrong_type").execute(context())
    assert cluster.counters()["connection_attempts"] == 0
    assert wake_calls(cluster) == {}


def test_cluster_arn_gives_identifier_and_region(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v1", engine="mysql")
    arn = cluster.emu.cluster(cluster.identifier).arn
    result = wake(cluster, db_cluster_identifier=arn).execute(context())
    assert result["db_cluster_identifier"] == CLUSTER
    assert result["action"] == "modify-capacity"


def test_template_fields_include_the_aws_parameters() -> None:
    assert set(AuroraServerlessWakeOperator.template_fields) == {
        "aws_conn_id",
        "region_name",
        "verify",
        "db_cluster_identifier",
        "capacity",
        "conn_id",
        "data_api_secret_arn",
        "database",
    }


def test_templated_fields_render() -> None:
    operator = AuroraServerlessWakeOperator(
        task_id="wake",
        db_cluster_identifier="{{ params.cluster }}",
        aws_conn_id="{{ params.aws }}",
        region_name="{{ params.region }}",
        conn_id="{{ params.db }}",
        database="{{ params.database }}",
    )
    params = {"cluster": "sales", "aws": "aws_x", "region": "eu-west-1", "db": "db_x", "database": "d"}
    operator.render_template_fields({"params": params})
    assert (
        operator.db_cluster_identifier,
        operator.aws_conn_id,
        operator.region_name,
        operator.conn_id,
        operator.database,
    ) == ("sales", "aws_x", "eu-west-1", "db_x", "d")


def test_identifier_templated_to_none_fails_in_execute_with_a_clear_message() -> None:
    operator = AuroraServerlessWakeOperator(task_id="wake", db_cluster_identifier="{{ params.cluster }}")
    operator.db_cluster_identifier = None  # type: ignore[assignment]  # what a None template renders to
    with pytest.raises(InvalidParameterError) as excinfo:
        operator.execute(context())
    assert excinfo.value.parameter == "db_cluster_identifier"
    assert "DB cluster identifier" in str(excinfo.value)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"timeout_action": "Drop"}, "timeout_action"),
        ({"seconds_before_timeout": 5}, "seconds_before_timeout"),
        ({"capacity": 3}, "capacity"),
        ({"start_if_stopped": "yes"}, "start_if_stopped"),
        ({"db_cluster_identifier": "bad_name!"}, "db_cluster_identifier"),
        ({"region_name": "Mars"}, "region_name"),
        ({"data_api_secret_arn": "sales-login"}, "data_api_secret_arn"),
        ({"database": " sales"}, "database"),
        ({"conn_id": ""}, "conn_id"),
    ],
)
def test_invalid_parameters_fail_at_construction(kwargs: dict[str, Any], parameter: str) -> None:
    kwargs = {"db_cluster_identifier": "sales", **kwargs}
    with pytest.raises(InvalidParameterError) as excinfo:
        AuroraServerlessWakeOperator(task_id="wake", **kwargs)
    assert excinfo.value.parameter == parameter
    assert parameter in str(excinfo.value)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"timeout_action": "Drop"}, "timeout_action"),
        ({"seconds_before_timeout": 5}, "seconds_before_timeout"),
        ({"start_if_stopped": "yes"}, "start_if_stopped"),
    ],
)
def test_untemplated_parameters_fail_at_construction_beside_templates(
    kwargs: dict[str, Any], parameter: str
) -> None:
    templated = {"db_cluster_identifier": "{{ var.value.cluster }}", "capacity": "{{ params.acu }}"}
    with pytest.raises(InvalidParameterError) as excinfo:
        AuroraServerlessWakeOperator(task_id="wake", **{**templated, **kwargs})
    assert excinfo.value.parameter == parameter


def test_templates_are_not_validated_before_rendering() -> None:
    operator = AuroraServerlessWakeOperator(
        task_id="wake", db_cluster_identifier="{{ var.value.cluster }}", capacity="{{ params.acu }}"
    )
    assert operator.capacity == "{{ params.acu }}"


@pytest.mark.parametrize(
    ("field", "value"),
    [("capacity", "three"), ("verify", 3), ("botocore_config", "retries=3"), ("conn_id", " spaced ")],
)
def test_invalid_rendered_values_fail_in_execute(field: str, value: object) -> None:
    operator = AuroraServerlessWakeOperator(task_id="wake", db_cluster_identifier="sales", aws_conn_id=None)
    setattr(operator, field, value)
    with pytest.raises(InvalidParameterError) as excinfo:
        operator.execute(context())
    assert excinfo.value.parameter == field


@pytest.mark.timeout(120)
def test_returns_within_its_budget_when_aws_never_answers(
    black_hole: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AWS endpoint that accepts and never answers fails the task after the budget, not minutes."""
    monkeypatch.setattr(operator_module, "DESCRIBE_RETRY_SECONDS", 1.0)
    set_unanswering_aws_connection(monkeypatch, black_hole)
    operator = AuroraServerlessWakeOperator(
        task_id="wake", db_cluster_identifier="sales", aws_conn_id="aws_black_hole"
    )
    with pytest.raises(TransientError, match="no answer within"):
        operator.execute(context())

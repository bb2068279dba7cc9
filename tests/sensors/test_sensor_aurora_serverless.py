"""AuroraServerlessReadySensor against the emulator, on PostgreSQL and MariaDB.

Deferral (``TaskDeferred`` with the trigger, its kwargs and the absolute deadline), the trigger
run to its event, the resume method, poke mode, every fail-fast case on its first attempt,
``soft_fail`` (only the timeout skips) and the timeout's diagnosis. The sensor is never ready
before the emulator's recorded ready time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from airflow_support import (
    EmulatedCluster,
    context,
    roundtrip_trigger,
    set_database_connection,
    until,
)

from airflow_aurora_wake.compat import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from airflow_aurora_wake.core import errors as core_errors
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    ClusterNotFoundError,
    ClusterStateError,
    DataApiNotEnabledError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
    InvalidParameterError,
)
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor, error_from_event
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

ENGINE_PARAMS = pytest.mark.parametrize("engine", ["postgresql", "mysql"])
READY_KEYS = {"ready_at", "seconds_waited", "attempts", "rds_calls", "kind", "engine", "endpoint"}
TIMEOUT = 60.0


def sensor(cluster: EmulatedCluster, **kwargs: Any) -> AuroraServerlessReadySensor:
    kwargs.setdefault("db_cluster_identifier", cluster.identifier)
    kwargs.setdefault("aws_conn_id", cluster.aws_conn_id)
    kwargs.setdefault("conn_id", cluster.conn_id)
    # Shorter than the emulated resume, so the first check finds the cluster not ready yet.
    kwargs.setdefault("connect_timeout", 0.3)
    kwargs.setdefault("describe_interval", 0.5)
    kwargs.setdefault("timeout", TIMEOUT)
    return AuroraServerlessReadySensor(task_id="ready", **kwargs)


def wake(cluster: EmulatedCluster) -> dict[str, Any]:
    return AuroraServerlessWakeOperator(
        task_id="wake", db_cluster_identifier=cluster.identifier, aws_conn_id=cluster.aws_conn_id
    ).execute(context())


def defer(task: AuroraServerlessReadySensor) -> tuple[TaskDeferred, float, float]:
    before = time.time()
    with pytest.raises(TaskDeferred) as excinfo:
        task.execute(context())
    return excinfo.value, before, time.time()


async def run_trigger(trigger: AuroraServerlessReadyTrigger, seconds: float = 30) -> dict[str, Any]:
    generator = trigger.run()
    event = await asyncio.wait_for(anext(generator), seconds)
    # Exactly one event, then the generator ends.
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(generator), 5)
    return event.payload


def assert_not_ready_before_the_emulator(cluster: EmulatedCluster, result: dict[str, Any]) -> None:
    ready_at = cluster.ready_at()
    assert ready_at is not None, "the sensor said ready but the emulator never made the cluster ready"
    assert result["ready_at"] >= ready_at


#: The wake's resume (or start) lasts until the test ends it: the sensor's check meets it whatever
#: the machine's load, so it defers; the test ends it before running the trigger.
UNTIL_ENDED = {"resume_seconds": 600.0, "v1_capacity_seconds": 600.0, "start_seconds": 600.0}

WAKE_ROWS = pytest.mark.parametrize(
    ("kind", "state"),
    [("serverless-v2", "paused"), ("serverless-v1", "paused"), ("provisioned", "stopped")],
)


@ENGINE_PARAMS
@WAKE_ROWS
async def test_defers_with_the_trigger_and_an_absolute_deadline_then_succeeds(
    emulated: Any, engine: str, kind: str, state: str
) -> None:
    cluster = emulated(kind=kind, engine=engine, state=state, timings=UNTIL_ENDED)
    woke = await asyncio.to_thread(wake, cluster)
    assert (
        woke["action"]
        == {
            "serverless-v2": "describe-log-files",
            "serverless-v1": "modify-capacity",
            "provisioned": "start-db-cluster",
        }[kind]
    )
    task = sensor(cluster)
    deferred, before, after = await asyncio.to_thread(defer, task)

    assert isinstance(deferred.trigger, AuroraServerlessReadyTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=TIMEOUT)
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == "airflow_aurora_wake.triggers.aurora_serverless.AuroraServerlessReadyTrigger"
    deadline = kwargs.pop("deadline")
    assert before + TIMEOUT <= deadline <= after + TIMEOUT
    assert kwargs == {
        "db_cluster_identifier": cluster.identifier,
        "aws_conn_id": cluster.aws_conn_id,
        "region_name": None,
        "verify": None,
        "botocore_config": None,
        "conn_id": cluster.conn_id,
        "probe": "connection",
        "connect_timeout": 0.3,
        "data_api_secret_arn": None,
        "database": None,
        "describe_interval": 0.5,
        "stopped_grace": 60.0,
    }
    cluster.emu.wake(cluster.identifier)
    payload = await run_trigger(deferred.trigger)
    assert payload["status"] == "success", payload
    result = task.execute_complete(context(), payload)
    assert set(result) == READY_KEYS
    assert result["kind"] == kind
    assert result["engine"] == f"aurora-{engine}"
    port = cluster.emu.cluster(cluster.identifier).port
    assert result["endpoint"] == f"127.0.0.1:{port}"
    assert_not_ready_before_the_emulator(cluster, result)


@ENGINE_PARAMS
async def test_trigger_recreated_from_airflow_storage_runs_to_success(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v2", engine=engine, state="paused")
    task = sensor(cluster, botocore_config={"retries": {"max_attempts": 2}}, verify=False)
    deferred, _, _ = await asyncio.to_thread(defer, task)
    recreated = roundtrip_trigger(deferred.trigger)
    assert type(recreated) is AuroraServerlessReadyTrigger
    assert recreated.serialize() == deferred.trigger.serialize()
    payload = await run_trigger(recreated)
    assert payload["status"] == "success", payload
    assert_not_ready_before_the_emulator(cluster, task.execute_complete(context(), payload))


@ENGINE_PARAMS
@pytest.mark.parametrize(("kind", "state"), [("provisioned", "available"), ("serverless-v1", "available")])
def test_warm_cluster_returns_without_deferral(emulated: Any, engine: str, kind: str, state: str) -> None:
    cluster = emulated(kind=kind, engine=engine, state=state)
    result = sensor(cluster).execute(context())
    assert set(result) == READY_KEYS
    assert result["attempts"] == 1
    assert cluster.counters()["rds_calls"] == {"DescribeDBClusters": 1}
    assert_not_ready_before_the_emulator(cluster, result)


@ENGINE_PARAMS
def test_resume_within_connect_timeout_costs_no_deferral(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v2", engine=engine, state="paused")
    # The first check's connection attempt wakes the cluster and is held open until it is ready.
    result = sensor(cluster, connect_timeout=30).execute(context())
    assert set(result) == READY_KEYS
    assert_not_ready_before_the_emulator(cluster, result)


@ENGINE_PARAMS
def test_poke_mode_pokes_until_ready(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v1", engine=engine, state="paused")
    wake(cluster)
    task = sensor(cluster, deferrable=False, mode="poke", poke_interval=0.2)
    result = task.execute(context())
    assert set(result) == READY_KEYS
    assert result["attempts"] >= 2  # the first poke could not be ready: capacity was still 0
    assert_not_ready_before_the_emulator(cluster, result)


def test_poke_mode_fails_fast_on_misconfiguration(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="available")
    task = sensor(cluster, deferrable=False, poke_interval=0.2, db_cluster_identifier="nope")
    with pytest.raises(ClusterNotFoundError):
        task.execute(context())


def test_poke_mode_soft_fail_skips_only_the_timeout(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="stopped")
    task = sensor(cluster, deferrable=False, poke_interval=0.2, timeout=0.5, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        task.execute(context())
    misconfigured = sensor(
        cluster, deferrable=False, poke_interval=0.2, timeout=0.5, soft_fail=True, conn_id="missing"
    )
    with pytest.raises(InvalidParameterError, match="missing"):
        misconfigured.execute(context())


def test_poke_mode_fails_a_stopped_cluster_after_the_grace_not_at_the_timeout(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="stopped")
    task = sensor(cluster, deferrable=False, poke_interval=0.2, stopped_grace=2, timeout=TIMEOUT)
    with pytest.raises(ClusterStateError, match=r"stayed stopped for 2 s"):
        task.execute(context())
    describes = cluster.counters()["rds_calls"]["DescribeDBClusters"]
    assert describes >= 2  # it did wait through the grace, one describe per poke


# --------------------------------------------------------------- fail fast, first attempt
def assert_first_attempt(cluster: EmulatedCluster) -> None:
    counters = cluster.counters()
    assert counters["rds_calls"].get("DescribeDBClusters", 0) <= 1
    # One probe. Without an sslmode asyncpg uses "prefer": it tries TLS (the emulator offers it,
    # as Aurora does) and, as libpq does, tries once more without TLS after a refused login.
    assert counters["connection_attempts"] <= 2


def test_unknown_cluster_fails_at_once(emulated: Any) -> None:
    cluster = emulated()
    with pytest.raises(ClusterNotFoundError, match=r"'no-such-cluster' was not found in us-east-1"):
        sensor(cluster, db_cluster_identifier="no-such-cluster").execute(context())


def test_unknown_conn_id_fails_before_any_aws_call(emulated: Any) -> None:
    cluster = emulated()
    with pytest.raises(InvalidParameterError) as excinfo:
        sensor(cluster, conn_id="no_such_db").execute(context())
    assert excinfo.value.parameter == "conn_id"
    assert "no_such_db" in str(excinfo.value)
    assert cluster.counters()["rds_calls"] == {}


@pytest.mark.parametrize(("engine", "wrong_type"), [("postgresql", "mysql"), ("mysql", "postgres")])
def test_connection_type_engine_mismatch_fails_at_once(
    emulated: Any, monkeypatch: pytest.MonkeyPatch, engine: str, wrong_type: str
) -> None:
    cluster = emulated(engine=engine)
    set_database_connection(monkeypatch, "mismatch", engine=engine, conn_type=wrong_type, user="u")
    with pytest.raises(DatabaseConfigurationError, match="mismatch"):
        sensor(cluster, conn_id="mismatch").execute(context())
    assert cluster.counters()["connection_attempts"] == 0


@ENGINE_PARAMS
def test_wrong_password_fails_on_the_first_attempt(emulated: Any, engine: str, password_login: Any) -> None:
    cluster = emulated(engine=engine, user=password_login.user, password="certainly-not-the-password")
    with pytest.raises(DatabaseAuthenticationError, match="the server answered, so it is awake"):
        sensor(cluster, connect_timeout=30).execute(context())
    assert_first_attempt(cluster)


def test_nonexistent_postgres_role_fails_on_the_first_attempt(emulated: Any) -> None:
    # 28000 "role does not exist" is a refused login from a server that is up; only the
    # "no pg_hba.conf entry" answer of a resuming front end is waited out.
    cluster = emulated(engine="postgresql", state="available", user="no_such_role_aurora_wake")
    with pytest.raises(DatabaseAuthenticationError, match="the server answered, so it is awake") as caught:
        sensor(cluster, connect_timeout=30).execute(context())
    assert "no_such_role_aurora_wake" in str(caught.value)
    assert_first_attempt(cluster)


def test_unknown_database_fails_on_the_first_attempt(emulated: Any) -> None:
    cluster = emulated(engine="mysql", state="available")
    with pytest.raises(DatabaseConfigurationError, match="does not exist"):
        sensor(cluster, database="no_such_database").execute(context())
    assert_first_attempt(cluster)


def test_data_api_off_fails_at_once(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", data_api=False, state="available")
    secret_arn = cluster.emu.create_secret("postgres", "")
    with pytest.raises(DataApiNotEnabledError, match="Data API"):
        sensor(cluster, probe="data-api", conn_id=None, data_api_secret_arn=secret_arn).execute(context())


def test_stopped_cluster_without_wake_fails_at_once_with_no_grace(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="stopped")
    with pytest.raises(ClusterStateError, match=r"stopped.*StartDBCluster, or a wake that starts stopped"):
        sensor(cluster, stopped_grace=0).execute(context())
    assert cluster.counters()["rds_calls"] == {"DescribeDBClusters": 1}


def test_non_recoverable_state_fails_at_once(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="available", timings={"stop_seconds": 30})
    cluster.emu.boto3_client("rds").stop_db_cluster(DBClusterIdentifier=cluster.identifier)
    with pytest.raises(ClusterStateError, match="'stopping'"):
        sensor(cluster).execute(context())


async def test_deleted_cluster_during_the_wait_is_an_error_event(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="stopped", timings={"start_seconds": 30})
    await asyncio.to_thread(wake, cluster)
    deferred, _, _ = await asyncio.to_thread(defer, sensor(cluster))
    task = asyncio.ensure_future(run_trigger(deferred.trigger))
    # Delete only once the trigger has described the cluster (the operator and the check made 2).
    await until(lambda: cluster.counters()["rds_calls"].get("DescribeDBClusters", 0) >= 3)
    cluster.emu.delete(cluster.identifier)
    payload = await asyncio.wait_for(task, 30)
    assert payload["status"] == "error"
    assert payload["error_type"] in ("ClusterDeletedError", "ClusterNotFoundError")


# ------------------------------------------------------------------ timeout and soft_fail
async def test_timeout_event_carries_the_diagnosis(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="stopped")
    task = sensor(cluster, timeout=1.5)
    deferred, _, _ = await asyncio.to_thread(defer, task)
    payload = await run_trigger(deferred.trigger)
    assert payload["status"] == "timeout"
    message = payload["message"]
    assert "'sales'" in message and "not ready after" in message
    assert "'stopped'" in message and "a wake that starts stopped clusters" in message
    with pytest.raises(AirflowSensorTimeout) as excinfo:
        task.execute_complete(context(), payload)
    assert str(excinfo.value) == message


TIMEOUT_EVENT = {"status": "timeout", "message": "DB cluster 'sales' was not ready after 1.0 s"}
ERROR_EVENTS = [
    {"status": "error", "error_type": "DatabaseAuthenticationError", "message": "check the login"},
    {"status": "error", "error_type": "ClusterNotFoundError", "message": "not found in us-east-1"},
    {"status": "error", "error_type": "InvalidParameterError", "message": "invalid conn_id='x': create it"},
    {"status": "error", "error_type": "RuntimeError", "message": "unexpected"},
]


def resume(task: AuroraServerlessReadySensor, event: dict[str, Any]) -> Any:
    """Resume as the task runner does after a deferral (BaseSensorOperator.resume_execution)."""
    return task.resume_execution("execute_complete", {"event": event}, context())


def test_soft_fail_turns_the_timeout_into_a_skip() -> None:
    task = AuroraServerlessReadySensor(
        task_id="ready", db_cluster_identifier="sales", conn_id="db", soft_fail=True
    )
    with pytest.raises(AirflowSkipException):
        resume(task, TIMEOUT_EVENT)


def test_without_soft_fail_the_timeout_fails() -> None:
    task = AuroraServerlessReadySensor(task_id="ready", db_cluster_identifier="sales", conn_id="db")
    with pytest.raises(AirflowSensorTimeout, match="not ready after"):
        resume(task, TIMEOUT_EVENT)


@pytest.mark.parametrize("event", ERROR_EVENTS, ids=[event["error_type"] for event in ERROR_EVENTS])
def test_soft_fail_never_skips_misconfiguration(event: dict[str, Any]) -> None:
    task = AuroraServerlessReadySensor(
        task_id="ready", db_cluster_identifier="sales", conn_id="db", soft_fail=True
    )
    with pytest.raises(AuroraWakeError) as excinfo:
        resume(task, event)
    assert not isinstance(excinfo.value, AirflowSkipException)
    expected = getattr(core_errors, event["error_type"], AuroraWakeError)
    assert type(excinfo.value) is expected
    assert event["message"] in str(excinfo.value)


def test_error_from_event_rebuilds_each_core_error_type() -> None:
    for name in core_errors.__all__:
        cls = getattr(core_errors, name)
        if isinstance(cls, type) and issubclass(cls, AuroraWakeError):
            error = error_from_event(name, "the message")
            assert type(error) is cls
            assert str(error) == "the message"


def test_success_event_returns_the_report_without_status() -> None:
    task = AuroraServerlessReadySensor(task_id="ready", db_cluster_identifier="sales", conn_id="db")
    report = {"ready_at": 1.0, "seconds_waited": 0.5, "attempts": 2, "rds_calls": {}, "kind": "x",
              "engine": "y", "endpoint": "h:1"}  # fmt: skip
    assert resume(task, {"status": "success", **report}) == report


# ------------------------------------------------------------------------------ parameters
def test_template_fields_include_the_aws_parameters() -> None:
    assert set(AuroraServerlessReadySensor.template_fields) == {
        "aws_conn_id",
        "region_name",
        "verify",
        "db_cluster_identifier",
        "conn_id",
        "data_api_secret_arn",
        "database",
    }


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"conn_id": None}, "conn_id"),
        ({"probe": "ping"}, "probe"),
        ({"probe": "data-api", "data_api_secret_arn": "secret"}, "data_api_secret_arn"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"deferrable": "true"}, "deferrable"),
        ({"db_cluster_identifier": "-bad"}, "db_cluster_identifier"),
        (
            {
                "db_cluster_identifier": "arn:aws:rds:eu-west-1:123456789012:cluster:sales",
                "region_name": "us-east-1",
            },
            "region_name",
        ),
        ({"database": " "}, "database"),
        ({"conn_id": " db"}, "conn_id"),
        ({"stopped_grace": -1}, "stopped_grace"),
    ],
)
def test_invalid_parameters_fail_at_construction(kwargs: dict[str, Any], parameter: str) -> None:
    kwargs = {"db_cluster_identifier": "sales", "conn_id": "db", **kwargs}
    with pytest.raises(InvalidParameterError) as excinfo:
        AuroraServerlessReadySensor(task_id="ready", **kwargs)
    assert excinfo.value.parameter == parameter
    assert f"{parameter}=" in str(excinfo.value)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"probe": "ping"}, "probe"),
        ({"stopped_grace": -1}, "stopped_grace"),
        ({"probe": "data-api", "data_api_secret_arn": "login", "conn_id": None}, "data_api_secret_arn"),
    ],
)
def test_untemplated_parameters_fail_at_construction_beside_templates(
    kwargs: dict[str, Any], parameter: str
) -> None:
    templated = {
        "db_cluster_identifier": "{{ var.value.cluster }}",
        "region_name": "{{ var.value.region }}",
        "conn_id": "{{ var.value.db }}",
        "database": "{{ params.database }}",
    }
    with pytest.raises(InvalidParameterError) as excinfo:
        AuroraServerlessReadySensor(task_id="ready", **{**templated, **kwargs})
    assert excinfo.value.parameter == parameter


def test_templated_values_are_checked_after_rendering_only() -> None:
    sensor = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier="{{ var.value.cluster }}",
        conn_id="{{ var.value.db }}",
        probe="data-api",
        data_api_secret_arn="{{ var.value.secret }}",
    )
    assert sensor.data_api_secret_arn == "{{ var.value.secret }}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("db_cluster_identifier", None),
        ("conn_id", ""),
        ("aws_conn_id", 42),
        ("region_name", "us east 1"),
        ("database", " "),
        ("data_api_secret_arn", "not-an-arn"),
    ],
)
def test_rendered_values_are_validated_in_execute(field: str, value: object) -> None:
    task = AuroraServerlessReadySensor(
        task_id="ready", db_cluster_identifier="{{ params.c }}", conn_id="{{ params.d }}", aws_conn_id=None
    )
    task.db_cluster_identifier = "sales"
    task.conn_id = "db"
    setattr(task, field, value)
    with pytest.raises(InvalidParameterError) as excinfo:
        task.execute(context())
    assert excinfo.value.parameter == field

"""AuroraServerlessReadyTrigger in an event loop, as the triggerer runs it, against the emulator.

One event per run; kwargs are identifiers and numbers only and survive Airflow's storage;
waits on one cluster share one loop; cancellation leaves no socket open; state changes are
logged through the trigger's logger.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import psutil
import pytest
from airflow_support import AIRFLOW_2, EmulatedCluster, roundtrip_trigger, until

from airflow_aurora_wake.core.wait import SHARED_WAITS, WaitRequest
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

ENGINE_PARAMS = pytest.mark.parametrize("engine", ["postgresql", "mysql"])


def trigger(
    cluster: EmulatedCluster, *, timeout: float = 30.0, **kwargs: Any
) -> AuroraServerlessReadyTrigger:
    kwargs.setdefault("conn_id", cluster.conn_id)
    kwargs.setdefault("connect_timeout", 0.3)
    kwargs.setdefault("describe_interval", 0.5)
    return AuroraServerlessReadyTrigger(
        db_cluster_identifier=cluster.identifier,
        deadline=time.time() + timeout,
        aws_conn_id=cluster.aws_conn_id,
        **kwargs,
    )


async def first_event(instance: AuroraServerlessReadyTrigger, seconds: float = 30) -> dict[str, Any]:
    generator = instance.run()
    event = await asyncio.wait_for(anext(generator), seconds)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(generator), 5)
    return event.payload


def open_sockets_to(port: int) -> int:
    return sum(
        1
        for connection in psutil.Process().net_connections(kind="tcp")
        if connection.raddr and connection.raddr.port == port and connection.status == psutil.CONN_ESTABLISHED
    )


def test_serialize_holds_identifiers_and_numbers_only() -> None:
    instance = AuroraServerlessReadyTrigger(
        db_cluster_identifier="sales",
        deadline=1_900_000_000.5,
        aws_conn_id="aws_x",
        region_name="eu-west-1",
        verify="/etc/ca.pem",
        botocore_config={"connect_timeout": 5},
        conn_id="db_x",
        probe="data-api",
        connect_timeout=30,
        data_api_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
        database="sales",
    )
    classpath, kwargs = instance.serialize()
    assert classpath == "airflow_aurora_wake.triggers.aurora_serverless.AuroraServerlessReadyTrigger"
    assert kwargs == {
        "db_cluster_identifier": "sales",
        "deadline": 1_900_000_000.5,
        "aws_conn_id": "aws_x",
        "region_name": "eu-west-1",
        "verify": "/etc/ca.pem",
        "botocore_config": {"connect_timeout": 5},
        "conn_id": "db_x",
        "probe": "data-api",
        "connect_timeout": 30.0,
        "data_api_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
        "database": "sales",
        "describe_interval": 10.0,
        "stopped_grace": 60.0,
    }
    # Plain JSON types only (no enums, no objects), and a round trip through Airflow's storage.
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert roundtrip_trigger(instance).serialize() == (classpath, kwargs)


def test_for_request_and_wait_request_map_the_same_settings_both_ways() -> None:
    request = WaitRequest(
        db_cluster_identifier="arn:aws:rds:eu-west-1:123456789012:cluster:sales",
        region_name=None,
        probe="data-api",
        connect_timeout=12.5,
        describe_interval=3.0,
        stopped_grace=0.0,
        data_api_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
        database="sales",
    )
    hook = AuroraServerlessHook(
        aws_conn_id="aws_x", region_name=None, verify=False, botocore_config={"retries": {}}, conn_id=None
    )
    instance = AuroraServerlessReadyTrigger.for_request(request, hook, deadline=1_900_000_000.0)
    _, kwargs = instance.serialize()
    assert (kwargs["aws_conn_id"], kwargs["region_name"], kwargs["verify"], kwargs["botocore_config"]) == (
        "aws_x",
        None,  # the triggerer looks the region up itself, as the sensor did
        False,
        {"retries": {}},
    )
    assert instance.wait_request(request.region_name) == request


def keyed(**settings: Any) -> AuroraServerlessReadyTrigger:
    return AuroraServerlessReadyTrigger(
        db_cluster_identifier="sales", deadline=1_900_000_000.0, aws_conn_id="aws_x", conn_id="db", **settings
    )


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"verify": None}, {"verify": False}),
        ({"verify": True}, {"verify": "/etc/ssl/private-ca.pem"}),
        ({"botocore_config": None}, {"botocore_config": {"retries": {"max_attempts": 1}}}),
        ({"botocore_config": {"connect_timeout": 5}}, {"botocore_config": {"connect_timeout": 60}}),
    ],
)
def test_waits_that_talk_to_aws_differently_never_share_a_poller(
    one: dict[str, Any], other: dict[str, Any]
) -> None:
    # One poller holds one set of AWS clients: different TLS or retry settings need their own.
    assert keyed(**one).share_key != keyed(**other).share_key


def test_equal_aws_settings_share_whatever_the_order_of_the_config() -> None:
    first = keyed(
        verify="/etc/ca.pem", botocore_config={"connect_timeout": 5, "retries": {"mode": "standard"}}
    )
    second = keyed(
        verify="/etc/ca.pem", botocore_config={"retries": {"mode": "standard"}, "connect_timeout": 5}
    )
    assert first.share_key == second.share_key
    assert roundtrip_trigger(first).share_key == first.share_key
    hash(first.share_key)


@ENGINE_PARAMS
@pytest.mark.parametrize("kind", ["serverless-v2", "serverless-v1"])
async def test_paused_cluster_success_event(emulated: Any, engine: str, kind: str) -> None:
    cluster = emulated(kind=kind, engine=engine, state="paused")
    payload = await first_event(trigger(cluster))
    assert payload["status"] == "success", payload
    assert set(payload) == {
        "status", "ready_at", "seconds_waited", "attempts", "rds_calls", "kind", "engine", "endpoint",
    }  # fmt: skip
    assert payload["kind"] == kind
    ready_at = cluster.ready_at()
    assert ready_at is not None and payload["ready_at"] >= ready_at


@ENGINE_PARAMS
async def test_data_api_probe_success_event(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v2", engine=engine, state="paused", data_api=True)
    secret_arn = cluster.emu.create_secret("postgres" if engine == "postgresql" else "root", "")
    payload = await first_event(
        trigger(cluster, conn_id=None, probe="data-api", data_api_secret_arn=secret_arn, database="test")
    )
    assert payload["status"] == "success", payload
    assert cluster.counters()["data_api_calls"] >= 1
    assert cluster.counters()["connection_attempts"] == 0
    ready_at = cluster.ready_at()
    assert ready_at is not None and payload["ready_at"] >= ready_at


@pytest.mark.parametrize(
    ("setup", "error_type", "text"),
    [
        ({"identifier_override": "ghost"}, "ClusterNotFoundError", "'ghost' was not found"),
        ({"conn_id": "undefined_conn"}, "InvalidParameterError", "undefined_conn"),
        ({"state": "stopped", "stopped_grace": 0}, "ClusterStateError", "stopped"),
    ],
)
async def test_error_events(emulated: Any, setup: dict[str, Any], error_type: str, text: str) -> None:
    cluster = emulated(kind="provisioned", state=setup.get("state", "available"))
    kwargs: dict[str, Any] = {}
    if "conn_id" in setup:
        kwargs["conn_id"] = setup["conn_id"]
    if "stopped_grace" in setup:
        kwargs["stopped_grace"] = setup["stopped_grace"]
    instance = trigger(cluster, **kwargs)
    if "identifier_override" in setup:
        instance.db_cluster_identifier = setup["identifier_override"]
    payload = await first_event(instance)
    assert payload["status"] == "error"
    assert payload["error_type"] == error_type
    assert text in payload["message"]


async def test_past_deadline_times_out_with_a_diagnosis(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="stopped")
    payload = await first_event(trigger(cluster, timeout=1.0))
    assert payload["status"] == "timeout"
    assert "DB cluster 'sales' in us-east-1 was not ready after" in payload["message"]


async def test_a_trigger_run_after_its_deadline_names_the_triggerer(emulated: Any) -> None:
    # The core's diagnosis says the wait began late in words for every caller; only the trigger
    # knows the time went while the triggerer was down, and which timeout to raise.
    cluster = emulated(kind="provisioned", state="stopped")
    payload = await first_event(trigger(cluster, timeout=-5.0))
    assert payload["status"] == "timeout"
    message = payload["message"]
    assert "'sales' in us-east-1: the wait began" in message and "after its deadline" in message
    assert "the triggerer was down or overloaded" in message and "the sensor's" in message


async def test_waits_on_one_cluster_share_one_loop(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused", timings={"resume_seconds": 2})
    first, second = trigger(cluster), trigger(cluster, timeout=45)
    assert first.share_key == second.share_key
    tasks = [asyncio.ensure_future(first_event(first)), asyncio.ensure_future(first_event(second))]
    await until(lambda: cluster.counters()["connection_attempts"] >= 1)
    assert SHARED_WAITS.active_pollers() == 1
    one, two = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert one["status"] == two["status"] == "success"
    # One loop: the same attempts, the same RDS calls, the same moment of readiness.
    assert (one["attempts"], one["rds_calls"]) == (two["attempts"], two["rds_calls"])
    assert SHARED_WAITS.active_pollers() == 0


async def test_cancellation_leaves_no_socket_open(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused", timings={"resume_seconds": 60})
    port = cluster.emu.cluster(cluster.identifier).port
    task = asyncio.ensure_future(first_event(trigger(cluster, connect_timeout=30, timeout=60)))
    # The probe's connection is held open by the resuming cluster.
    await until(lambda: open_sockets_to(port) >= 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert SHARED_WAITS.active_pollers() == 0
    # The probe negotiated TLS (the emulator offers it, as Aurora does): its socket closes after
    # the TLS close_notify exchange, a few event-loop turns after the cancellation.
    await until(lambda: open_sockets_to(port) == 0)


async def test_state_changes_are_logged_through_the_trigger_logger(
    emulated: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    cluster = emulated(kind="serverless-v1", state="paused")
    instance = trigger(cluster)
    capsys.readouterr()
    caplog.clear()
    payload = await first_event(instance)
    assert payload["status"] == "success"
    # One line per state change. Airflow 3 loggers are structlog loggers that render to stdout;
    # Airflow 2.11's are standard logging loggers named after the trigger class.
    if AIRFLOW_2:
        lines = [
            rec.getMessage() for rec in caplog.records if rec.name.endswith(".AuroraServerlessReadyTrigger")
        ]
    else:
        lines = [
            line for line in capsys.readouterr().out.splitlines() if "AuroraServerlessReadyTrigger]" in line
        ]
    assert any("probing" in line for line in lines), lines
    assert any("ready after" in line for line in lines), lines
    assert sum("ready after" in line for line in lines) == 1

"""AuroraServerlessReadySensor waiting on the reader endpoint or on every instance (emulator).

Deferred (the trigger carries ``instances``, runs to its event, the resume method returns the
report) and poke mode, on PostgreSQL and MariaDB, with a tier-2 reader that sleeps on its own:
never ready before every endpoint waited on really became connectable.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import reader_clusters
from airflow_support import EmulatedCluster, context, set_database_connection
from reader_clusters import readers_ready_at

from airflow_aurora_wake.compat import TaskDeferred
from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]
with_readers = reader_clusters.with_readers  # the fixture

ENGINE_PARAMS = pytest.mark.parametrize("engine", ["postgresql", "mysql"])
READY_KEYS = {"ready_at", "seconds_waited", "attempts", "rds_calls", "kind", "engine", "endpoint"}
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"


def sensor(cluster: EmulatedCluster, **kwargs: Any) -> AuroraServerlessReadySensor:
    kwargs.setdefault("db_cluster_identifier", cluster.identifier)
    kwargs.setdefault("aws_conn_id", cluster.aws_conn_id)
    kwargs.setdefault("conn_id", cluster.conn_id)
    # Shorter than the emulated resume, so the first check finds the cluster not ready yet.
    kwargs.setdefault("connect_timeout", 0.3)
    kwargs.setdefault("describe_interval", 0.5)
    kwargs.setdefault("timeout", 60)
    return AuroraServerlessReadySensor(task_id="ready", **kwargs)


async def deferred_result(task: AuroraServerlessReadySensor) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check, defer, re-create the trigger from its kwargs, run it, resume: (kwargs, result)."""

    def check() -> TaskDeferred:
        with pytest.raises(TaskDeferred) as excinfo:
            task.execute(context())
        return excinfo.value

    deferred = await asyncio.to_thread(check)
    _, kwargs = deferred.trigger.serialize()
    trigger = AuroraServerlessReadyTrigger(**kwargs)
    event = await asyncio.wait_for(anext(trigger.run()), 30)
    assert event.payload["status"] == "success", event.payload
    return kwargs, task.execute_complete(context(), event.payload)


def assert_ready_after(result: dict[str, Any], *connectable_at: float | None) -> None:
    assert None not in connectable_at, "the sensor said ready before the emulator made it connectable"
    assert result["ready_at"] >= max(at for at in connectable_at if at is not None)


@ENGINE_PARAMS
async def test_deferred_waits_for_a_sleeping_reader_through_the_reader_endpoint(
    with_readers: Any, engine: str
) -> None:
    cluster = with_readers(tiers=(2,), engine=engine)
    kwargs, result = await deferred_result(sensor(cluster, instances="reader"))

    assert kwargs["instances"] == "reader"
    assert_ready_after(result, *readers_ready_at(cluster))
    assert set(result) == READY_KEYS | {"instances", "reached", "note"}
    endpoint = cluster.emu.cluster(cluster.identifier)
    assert result["reached"] == [
        {"endpoint": f"{endpoint.reader_host}:{endpoint.port}", "role": "reader-endpoint", "instance": None}
    ]


@ENGINE_PARAMS
async def test_deferred_waits_for_every_instance(with_readers: Any, engine: str) -> None:
    cluster = with_readers(tiers=(1, 2), engine=engine)
    kwargs, result = await deferred_result(sensor(cluster, instances="all"))

    assert kwargs["instances"] == "all"
    assert_ready_after(result, cluster.ready_at(), *readers_ready_at(cluster))
    assert {item["instance"] for item in result["reached"]} == {
        f"{cluster.identifier}-instance-1",
        *(reader.identifier for reader in cluster.emu.readers(cluster.identifier)),
    }
    assert result["rds_calls"]["DescribeDBInstances"] >= 1


async def test_deferred_on_the_writer_does_not_wait_for_the_sleeping_reader(with_readers: Any) -> None:
    cluster = with_readers(tiers=(2,))
    kwargs, result = await deferred_result(sensor(cluster))

    assert "instances" not in kwargs  # a wait on the writer stores the kwargs it always did
    assert set(result) == READY_KEYS
    assert_ready_after(result, cluster.ready_at())
    (reader,) = cluster.emu.readers(cluster.identifier)
    assert cluster.emu.instance_status(reader.identifier) == "paused"


@ENGINE_PARAMS
def test_poke_mode_waits_for_every_instance(with_readers: Any, engine: str) -> None:
    cluster = with_readers(tiers=(2,), engine=engine)
    task = sensor(
        cluster, instances="all", deferrable=False, mode="poke", poke_interval=0.2, connect_timeout=30
    )
    result = task.execute(context())
    assert_ready_after(result, cluster.ready_at(), *readers_ready_at(cluster))
    assert result["instances"] == "all" and len(result["reached"]) == 2


def test_poke_mode_waits_for_a_reader_still_creating(with_readers: Any) -> None:
    from airflow_aurora_wake.emulator import ReaderSpec

    cluster = with_readers(readers=[ReaderSpec(1, creating_seconds=2)], state="available")
    (reader,) = cluster.emu.readers(cluster.identifier)
    creating_until = cluster.emu.reader_state(reader.identifier)["creating_until"]
    task = sensor(cluster, instances="all", deferrable=False, mode="poke", poke_interval=0.2)
    result = task.execute(context())
    assert_ready_after(result, creating_until)
    assert result["attempts"] >= 2  # the first poke found the reader still creating


@pytest.mark.parametrize("instances", ["reader", "all"])
def test_the_data_api_with_readers_fails_when_the_dag_is_parsed(instances: str) -> None:
    with pytest.raises(InvalidParameterError, match="probe='data-api' reaches only the writer"):
        AuroraServerlessReadySensor(
            task_id="ready",
            db_cluster_identifier="sales",
            probe="data-api",
            data_api_secret_arn=SECRET,
            instances=instances,
        )


def test_an_unknown_choice_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(
        InvalidParameterError, match=r"invalid instances='replica'.*'writer'.*'reader'.*'all'"
    ):
        AuroraServerlessReadySensor(
            task_id="ready", db_cluster_identifier="sales", conn_id="db", instances="replica"
        )


async def test_the_password_stays_out_of_kwargs_xcom_and_logs(
    with_readers: Any, password_login: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = with_readers(tiers=(2,))
    set_database_connection(
        monkeypatch,
        cluster.conn_id,
        engine="postgresql",
        user=password_login.user,
        password=password_login.password,
    )
    caplog.set_level(logging.DEBUG)
    kwargs, result = await deferred_result(sensor(cluster, instances="all"))
    assert result["instances"] == "all"
    for text in (json.dumps(kwargs), json.dumps(result), caplog.text):
        assert password_login.password not in text

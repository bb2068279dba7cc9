"""The readiness trigger waiting on the reader endpoint or on every instance.

Its kwargs carry ``instances`` through Airflow's storage (3.3's serde and 2.11's format), a wait
on the writer keeps the kwargs it always had, waits that differ only in ``instances`` never
share a loop, and a re-created trigger waits for every instance of an emulated cluster.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import reader_clusters
from airflow_support import roundtrip_trigger
from reader_clusters import readers_ready_at

from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

with_readers = reader_clusters.with_readers  # the fixture

KWARGS: dict[str, Any] = {
    "db_cluster_identifier": "sales",
    "deadline": 1_900_000_000.5,
    "aws_conn_id": "aws_x",
    "region_name": "eu-west-1",
    "conn_id": "db_x",
}


@pytest.mark.airflow
@pytest.mark.parametrize("instances", ["reader", "all"])
def test_instances_survive_airflow_storage(instances: str) -> None:
    trigger = AuroraServerlessReadyTrigger(**KWARGS, instances=instances)
    classpath, kwargs = trigger.serialize()
    assert kwargs["instances"] == instances
    recreated = roundtrip_trigger(trigger)
    assert recreated.serialize() == (classpath, kwargs)
    assert recreated.wait_request("eu-west-1").instances == instances
    # Waits that differ only in what must answer never share a describe-and-probe loop.
    assert recreated.share_key != AuroraServerlessReadyTrigger(**KWARGS).share_key


@pytest.mark.airflow
def test_a_wait_on_the_writer_keeps_its_kwargs() -> None:
    _, kwargs = AuroraServerlessReadyTrigger(**KWARGS, instances="writer").serialize()
    assert "instances" not in kwargs
    assert AuroraServerlessReadyTrigger(**kwargs).instances == "writer"


@pytest.mark.airflow
def test_a_trigger_with_the_data_api_and_readers_reports_the_error() -> None:
    trigger = AuroraServerlessReadyTrigger(
        **{**KWARGS, "conn_id": None},
        probe="data-api",
        data_api_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
        instances="reader",
    )
    event = asyncio.run(asyncio.wait_for(anext(trigger.run()), 30)).payload
    assert event["status"] == "error" and event["error_type"] == InvalidParameterError.__name__
    assert "probe='data-api' reaches only the writer" in event["message"]


@pytest.mark.airflow
@pytest.mark.emulator
@pytest.mark.db
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
async def test_a_recreated_trigger_waits_for_every_instance(with_readers: Any, engine: str) -> None:
    cluster = with_readers(tiers=(1, 2), engine=engine)
    trigger = AuroraServerlessReadyTrigger(
        db_cluster_identifier=cluster.identifier,
        deadline=time.time() + 60,
        aws_conn_id=cluster.aws_conn_id,
        conn_id=cluster.conn_id,
        describe_interval=0.5,
        instances="all",
    )
    recreated = await asyncio.to_thread(roundtrip_trigger, trigger)
    event = (await asyncio.wait_for(anext(recreated.run()), 30)).payload
    assert event["status"] == "success", event
    assert event["instances"] == "all" and len(event["reached"]) == 3
    connectable = [cluster.ready_at(), *readers_ready_at(cluster)]
    assert None not in connectable
    assert event["ready_at"] >= max(at for at in connectable if at is not None)

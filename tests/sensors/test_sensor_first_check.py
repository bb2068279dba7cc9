"""The sensor's check before deferring never waits out a resume in a worker slot.

A paused cluster holds a connection attempt open until it has resumed; with the default
``connect_timeout`` (30 s) a first check would sit in the worker for the whole resume. The check
before deferring gets a short connect timeout instead, so the sensor defers while the cluster
is still resuming, and the triggerer does the waiting.
"""

from __future__ import annotations

import asyncio

import pytest
from airflow_support import EmulatedCluster, context, set_database_connection, set_unanswering_aws_connection

from airflow_aurora_wake.compat import TaskDeferred
from airflow_aurora_wake.sensors import aurora_serverless as sensor_module
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

RESUME_SECONDS = 6.0
FIRST_CHECK_SECONDS = 1.0


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
async def test_defers_while_the_cluster_is_still_resuming(
    emulated: object, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensor_module, "FIRST_CHECK_CONNECT_TIMEOUT", FIRST_CHECK_SECONDS)
    cluster: EmulatedCluster = emulated(  # type: ignore[operator]
        engine=engine, timings={"resume_seconds": RESUME_SECONDS}
    )
    task = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=cluster.identifier,
        aws_conn_id=cluster.aws_conn_id,
        conn_id=cluster.conn_id,
        timeout=120,
    )
    assert task.connect_timeout == 30  # the default, longer than the resume

    with pytest.raises(TaskDeferred) as excinfo:
        await asyncio.to_thread(task.execute, context())

    # The first check's own connection attempt started the resume, and the sensor deferred
    # before the resume finished: the wait was not spent in the worker.
    events = [event.event for event in cluster.emu.timeline(cluster.identifier)]
    assert "resume-requested" in events
    assert cluster.ready_at() is None
    assert cluster.emu.status(cluster.identifier) == "resuming"
    # The trigger keeps the user's connect timeout: it is the one that waits on the resume.
    trigger = excinfo.value.trigger
    assert isinstance(trigger, AuroraServerlessReadyTrigger)
    assert trigger.connect_timeout == 30.0


@pytest.mark.timeout(120)
async def test_defers_within_its_budget_when_aws_never_answers(
    black_hole: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AWS endpoint that accepts and never answers must not hold the worker slot."""
    monkeypatch.setattr(sensor_module, "FIRST_CHECK_CONNECT_TIMEOUT", FIRST_CHECK_SECONDS)
    set_unanswering_aws_connection(monkeypatch, black_hole)
    set_database_connection(monkeypatch, "db", engine="postgresql", user="app")
    task = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier="sales",
        aws_conn_id="aws_black_hole",
        conn_id="db",
        timeout=120,
    )
    with pytest.raises(TaskDeferred) as excinfo:
        await asyncio.to_thread(task.execute, context())
    assert isinstance(excinfo.value.trigger, AuroraServerlessReadyTrigger)

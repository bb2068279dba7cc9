"""The wake operator nudges what the sensor will wait on: the reader endpoint or every instance.

A reader in failover tier 2 sleeps on its own: with a connection nudge (``conn_id``), a wake for
``instances="reader"`` or ``"all"`` sends it the same short connection attempt, so it resumes
with the writer; a wake for the writer leaves it asleep, and so does a wake that cannot reach
it (no database connection).
"""

from __future__ import annotations

from typing import Any

import pytest
import reader_clusters
from airflow_support import EmulatedCluster, context

from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]
with_readers = reader_clusters.with_readers  # the fixture


def wake(cluster: EmulatedCluster, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("conn_id", cluster.conn_id)
    operator = AuroraServerlessWakeOperator(
        task_id="wake", db_cluster_identifier=cluster.identifier, aws_conn_id=cluster.aws_conn_id, **kwargs
    )
    result: dict[str, Any] = operator.execute(context())
    return result


def reader_resumes(cluster: EmulatedCluster) -> list[str]:
    (reader,) = cluster.emu.readers(cluster.identifier)
    return [
        e.detail["cause"]
        for e in cluster.emu.instance_timeline(reader.identifier)
        if e.event == "resume-requested"
    ]


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
@pytest.mark.parametrize("instances", ["reader", "all"])
def test_the_wake_nudges_a_sleeping_reader_too(with_readers: Any, engine: str, instances: str) -> None:
    cluster = with_readers(tiers=(2,), engine=engine)
    result = wake(cluster, instances=instances)
    assert result["action"] == "connection-nudge"
    assert reader_resumes(cluster) == ["connection"]
    (reader,) = cluster.emu.readers(cluster.identifier)
    label = "reader endpoint" if instances == "reader" else f"DB instance {reader.identifier}"
    assert label in result["detail"]
    # The writer was nudged as before: the cluster resumed too.
    assert [
        e.detail["cause"] for e in cluster.emu.timeline(cluster.identifier) if e.event == "resume-requested"
    ]


def test_a_wake_for_the_writer_leaves_the_reader_asleep(with_readers: Any) -> None:
    cluster = with_readers(tiers=(2,))
    result = wake(cluster)
    assert result["action"] == "connection-nudge"
    assert reader_resumes(cluster) == []
    assert "reader" not in result["detail"]


def test_without_a_connection_the_readers_are_left_to_the_sensor(with_readers: Any) -> None:
    cluster = with_readers(tiers=(2,))
    result = wake(cluster, conn_id=None, instances="all")
    assert result["action"] != "connection-nudge"
    assert "the readers are woken by the wait's own probes" in result["detail"]
    assert reader_resumes(cluster) == []


def test_an_unknown_choice_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(InvalidParameterError, match="invalid instances='both'"):
        AuroraServerlessWakeOperator(task_id="wake", db_cluster_identifier="sales", instances="both")

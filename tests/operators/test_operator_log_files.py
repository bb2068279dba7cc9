"""AuroraServerlessWakeOperator waking a paused v2 cluster with no database access.

With neither ``conn_id`` nor ``data_api_secret_arn``, the operator describes the writer's log
files (``DescribeDBLogFiles``): the emulator answers ``DBInstanceNotReadyFault`` while the writer
is paused and starts its resume (timeline cause ``log-files``), with no connection attempt.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from airflow_support import EmulatedCluster, context, until

from airflow_aurora_wake.core.errors import AwsPermissionError
from airflow_aurora_wake.emulator import Faults
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator

pytestmark = [pytest.mark.emulator, pytest.mark.db]

ENGINE_PARAMS = pytest.mark.parametrize("engine", ["postgresql", "mysql"])
XCOM_KEYS = {"db_cluster_identifier", "kind", "engine", "status", "action", "detail", "requested_at"}


def wake(cluster: EmulatedCluster) -> dict[str, Any]:
    operator = AuroraServerlessWakeOperator(
        task_id="wake", db_cluster_identifier=cluster.identifier, aws_conn_id=cluster.aws_conn_id
    )
    result: dict[str, Any] = operator.execute(context())
    return result


def causes(cluster: EmulatedCluster) -> list[str]:
    timeline = cluster.emu.timeline(cluster.identifier)
    return [event.detail["cause"] for event in timeline if event.event == "resume-requested"]


@ENGINE_PARAMS
async def test_a_paused_v2_cluster_is_woken_through_its_writer_log_files(emulated: Any, engine: str) -> None:
    cluster = emulated(kind="serverless-v2", engine=engine, state="paused")
    result = await asyncio.to_thread(wake, cluster)  # the operator runs its own event loop
    assert set(result) == XCOM_KEYS
    assert result["action"] == "describe-log-files"
    assert f"writer instance {cluster.identifier}-instance-1" in result["detail"]
    assert "was paused (DBInstanceNotReadyFault)" in result["detail"]
    assert causes(cluster) == ["log-files"]
    # The RDS call alone resumes it: no connection attempt was made, yet it becomes ready.
    await until(lambda: cluster.ready_at() is not None, 30)
    assert cluster.counters()["connection_attempts"] == 0
    assert cluster.counters()["rds_calls"] == {"DescribeDBClusters": 1, "DescribeDBLogFiles": 1}


def test_access_denied_fails_the_task_at_once_naming_the_action(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")
    cluster.emu.set_faults(Faults(deny_actions=frozenset({"rds:DescribeDBLogFiles"})))
    with pytest.raises(AwsPermissionError, match="grant rds:DescribeDBLogFiles") as denied:
        wake(cluster)
    # Not an AirflowException: misconfiguration must never become a skip.
    assert not any(base.__name__ == "AirflowException" for base in type(denied.value).__mro__)
    assert cluster.counters()["rds_calls"]["DescribeDBLogFiles"] == 1
    assert causes(cluster) == []


def test_an_awake_v2_cluster_answers_and_is_not_resumed(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="available")
    result = wake(cluster)
    assert result["action"] == "describe-log-files"
    assert "was not paused" in result["detail"]
    assert causes(cluster) == []


def test_a_provisioned_cluster_gets_no_log_files_call(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="available")
    result = wake(cluster)
    assert result["action"] == "none"
    assert "DescribeDBLogFiles" not in cluster.counters()["rds_calls"]
    assert causes(cluster) == []

"""``example_aurora_stopped_cluster``, run whole with ``dag.test()`` against the emulator.

A stopped provisioned cluster on both engines: the wake starts it, the sensor's first check
sees ``starting`` and defers, the trigger waits until a real connection works, then the SQL
check runs.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow_support import (
    UNTIL_ENDED,
    end_the_resume_once_deferred,
    run_state,
    set_aws_connection,
    task_states_and_xcoms,
)
from example_support import (
    load_example_dag,
    set_cluster_database_connection,
)

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

DAG_ID = "example_aurora_stopped_cluster"


def test_example_dag_structure() -> None:
    dag = load_example_dag(DAG_ID)
    assert dag.dag_id == DAG_ID
    assert [task.task_id for task in dag.topological_sort()] == ["wake", "ready", "check"]
    assert dag.get_task("wake").start_if_stopped is True
    assert dag.get_task("ready").deferrable is True


@pytest.mark.timeout(180)
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_dag_test_starts_waits_deferred_and_queries(
    airflow_db: str,
    emulated: Any,
    monkeypatch: pytest.MonkeyPatch,
    trigger_runs: list[dict[str, Any]],
    engine: str,
) -> None:
    # The start ends only once the sensor deferred: its check in the worker meets "starting".
    cluster = emulated(
        kind="provisioned", engine=engine, state="stopped", timings={"start_seconds": UNTIL_ENDED}
    )
    end_the_resume_once_deferred(monkeypatch, cluster.emu, cluster.identifier)
    conn_id = "aurora_pg" if engine == "postgresql" else "aurora_mysql"
    set_aws_connection(monkeypatch, cluster.emu, conn_id="aws_default")
    set_cluster_database_connection(monkeypatch, conn_id, cluster, engine=engine)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_STOPPED_CLUSTER", cluster.identifier)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_STOPPED_CONN_ID", conn_id)

    run = load_example_dag(DAG_ID).test()

    assert run_state(run) == "success"
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {"wake": "success", "ready": "success", "check": "success"}
    assert xcoms["wake"]["action"] == "start-db-cluster"
    assert xcoms["wake"]["status"] == "stopped"
    # The sensor deferred: its trigger ran for this cluster and connection.
    assert len(trigger_runs) == 1
    assert trigger_runs[0]["db_cluster_identifier"] == cluster.identifier
    assert trigger_runs[0]["conn_id"] == conn_id
    assert xcoms["ready"]["kind"] == "provisioned"
    ready_at = cluster.ready_at()
    assert ready_at is not None and xcoms["ready"]["ready_at"] >= ready_at
    assert xcoms["check"] == [[1]]
    assert cluster.counters()["rds_calls"]["StartDBCluster"] == 1
    assert cluster.describe()["Status"] == "available"

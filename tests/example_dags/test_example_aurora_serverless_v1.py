"""``example_aurora_serverless_v1``, run whole with ``dag.test()`` against the emulator.

A paused legacy Serverless v1 cluster (capacity 0) on both engines: the wake asks for capacity
(``ModifyCurrentDBClusterCapacity``), the sensor waits (deferred) for capacity and a real
connection, then the SQL check runs.
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

DAG_ID = "example_aurora_serverless_v1"


def test_example_dag_structure() -> None:
    dag = load_example_dag(DAG_ID)
    assert dag.dag_id == DAG_ID
    assert [task.task_id for task in dag.topological_sort()] == ["wake", "ready", "check"]
    assert dag.get_task("wake").timeout_action == "RollbackCapacityChange"
    assert dag.get_task("ready").deferrable is True


@pytest.mark.timeout(180)
@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_dag_test_requests_capacity_waits_and_queries(
    airflow_db: str,
    emulated: Any,
    monkeypatch: pytest.MonkeyPatch,
    trigger_runs: list[dict[str, Any]],
    engine: str,
) -> None:
    # Capacity comes only once the sensor deferred: its check in the worker cannot pass.
    cluster = emulated(
        kind="serverless-v1", engine=engine, state="paused", timings={"v1_capacity_seconds": UNTIL_ENDED}
    )
    end_the_resume_once_deferred(monkeypatch, cluster.emu, cluster.identifier)
    conn_id = "aurora_mysql" if engine == "mysql" else "aurora_pg"
    set_aws_connection(monkeypatch, cluster.emu, conn_id="aws_default")
    set_cluster_database_connection(monkeypatch, conn_id, cluster, engine=engine)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_V1_CLUSTER", cluster.identifier)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_V1_CONN_ID", conn_id)

    run = load_example_dag(DAG_ID).test()

    assert run_state(run) == "success"
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {"wake": "success", "ready": "success", "check": "success"}
    assert xcoms["wake"]["kind"] == "serverless-v1"
    assert xcoms["wake"]["action"] == "modify-capacity"
    assert cluster.counters()["rds_calls"]["ModifyCurrentDBClusterCapacity"] == 1
    # Capacity first, connections later: the sensor's first check cannot pass, so it deferred.
    assert len(trigger_runs) == 1
    assert trigger_runs[0]["db_cluster_identifier"] == cluster.identifier
    assert xcoms["ready"]["kind"] == "serverless-v1"
    ready_at = cluster.ready_at()
    assert ready_at is not None and xcoms["ready"]["ready_at"] >= ready_at
    assert cluster.describe()["Capacity"] > 0
    assert xcoms["check"] == [[1]]

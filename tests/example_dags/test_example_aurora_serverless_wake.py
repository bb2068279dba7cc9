"""The example DAG, run whole with ``dag.test()`` against the emulator on both engines.

``dag.test()`` runs the deferred sensor's trigger inline (Airflow 3.3), so this is wake, a real
deferral, the trigger, the resume and the SQL step, in one process. It does not enforce the
deferral timeout: pytest-timeout bounds the test from outside.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from airflow_support import (
    EXAMPLE_DAGS_FOLDER,
    SUPERUSERS,
    set_aws_connection,
    set_database_connection,
)

from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

EXAMPLE = EXAMPLE_DAGS_FOLDER / "example_aurora_serverless_wake.py"


def load_example_dag() -> Any:
    spec = importlib.util.spec_from_file_location("example_aurora_serverless_wake", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def test_example_dag_structure() -> None:
    dag = load_example_dag()
    assert dag.dag_id == "example_aurora_serverless_wake"
    assert [task.task_id for task in dag.topological_sort()] == ["wake", "ready", "query"]
    assert dag.get_task("ready").deferrable is True


@pytest.mark.timeout(180)
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_dag_test_wakes_waits_deferred_and_queries(
    airflow_db: str, emulated: Any, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    # A stopped cluster: the wake starts it, the sensor's first check sees "starting" and defers.
    cluster = emulated(kind="provisioned", engine=engine, state="stopped", timings={"start_seconds": 2})
    conn_id = "aurora_pg" if engine == "postgresql" else "aurora_mysql"
    set_aws_connection(monkeypatch, cluster.emu, conn_id="aws_default")
    set_database_connection(monkeypatch, conn_id, engine=engine, user=SUPERUSERS[engine])
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER", cluster.identifier)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CONN_ID", conn_id)

    trigger_runs: list[dict[str, Any]] = []
    original_run = AuroraServerlessReadyTrigger.run

    async def spy_run(self: AuroraServerlessReadyTrigger) -> Any:
        trigger_runs.append(self.serialize()[1])
        async for event in original_run(self):
            yield event

    monkeypatch.setattr(AuroraServerlessReadyTrigger, "run", spy_run)

    run = load_example_dag().test()

    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {"wake": "success", "ready": "success", "query": "success"}
    assert xcoms["wake"]["action"] == "start-db-cluster"
    # The sensor deferred: its trigger ran (inline) for this cluster and connection.
    assert len(trigger_runs) == 1
    assert trigger_runs[0]["db_cluster_identifier"] == cluster.identifier
    assert trigger_runs[0]["conn_id"] == conn_id
    assert xcoms["ready"]["kind"] == "provisioned"
    ready_at = cluster.ready_at()
    assert ready_at is not None and xcoms["ready"]["ready_at"] >= ready_at
    assert xcoms["query"]["conn_type"] == ("postgres" if engine == "postgresql" else "mysql")
    assert xcoms["query"]["tables"] > 0
    counters = cluster.counters()
    assert counters["rds_calls"]["StartDBCluster"] == 1
    assert counters["connections_completed"] >= 2  # the readiness probe and the SQL step


def task_states_and_xcoms(dag_id: str, run_id: str) -> tuple[dict[str, str], dict[str, Any]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        instances = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        )
        states = {ti.task_id: getattr(ti.state, "value", ti.state) for ti in instances}
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value"
            )
        )
        xcoms = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    return states, xcoms

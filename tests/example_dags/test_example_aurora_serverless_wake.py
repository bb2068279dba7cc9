"""``example_aurora_serverless_wake``, run whole with ``dag.test()`` against the emulator.

A paused Serverless v2 cluster on both engines: the wake nudges it, the sensor waits for a real
connection, then the common SQL provider's operator creates the ETL table, loads 3 rows tagged
with the run id and reads them back. The rows are then checked on the real server behind the
emulated cluster.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow_support import SALES_ROWS, run_state, sales_rows, set_aws_connection, task_states_and_xcoms
from example_support import (
    load_example_dag,
    set_cluster_database_connection,
)

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

DAG_ID = "example_aurora_serverless_wake"


def test_example_dag_structure() -> None:
    dag = load_example_dag(DAG_ID)
    assert dag.dag_id == DAG_ID
    assert [task.task_id for task in dag.topological_sort()] == [
        "wake",
        "ready",
        "create_table",
        "load_rows",
        "read_back",
    ]
    assert dag.get_task("ready").deferrable is True
    assert {type(dag.get_task(t)).__name__ for t in ("create_table", "load_rows", "read_back")} == {
        "SQLExecuteQueryOperator"
    }


@pytest.mark.timeout(180)
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_dag_test_wakes_waits_and_runs_the_etl(
    airflow_db: str,
    emulated: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    engine: str,
) -> None:
    cluster = emulated(kind="serverless-v2", engine=engine, state="paused")
    server = request.getfixturevalue("postgres_server" if engine == "postgresql" else "mariadb_server")
    conn_id = "aurora_pg" if engine == "postgresql" else "aurora_mysql"
    set_aws_connection(monkeypatch, cluster.emu, conn_id="aws_default")
    set_cluster_database_connection(monkeypatch, conn_id, cluster, engine=engine)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER", cluster.identifier)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CONN_ID", conn_id)

    run = load_example_dag(DAG_ID).test()
    try:
        assert run_state(run) == "success"
        states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
        assert states == dict.fromkeys(["wake", "ready", "create_table", "load_rows", "read_back"], "success")
        # The cluster was paused: the wake nudged it with a connection attempt, which resumed it.
        assert xcoms["wake"]["kind"] == "serverless-v2"
        assert xcoms["wake"]["action"] == "connection-nudge"
        events = [event.event for event in cluster.emu.timeline(cluster.identifier)]
        assert events[events.index("paused") :][:3] == ["paused", "resume-requested", "ready"]
        # Ready only once the emulator really made the cluster connectable.
        ready_at = cluster.ready_at()
        assert ready_at is not None and xcoms["ready"]["ready_at"] >= ready_at
        # The ETL: 3 rows of this run read back by the task, and really in the database.
        assert xcoms["read_back"] == SALES_ROWS
        assert sales_rows(server, run.run_id) == SALES_ROWS
    finally:
        sales_rows(server, run.run_id, delete=True)


@pytest.mark.timeout(180)
def test_read_back_fails_when_the_rows_are_not_there(
    airflow_db: str,
    emulated: Any,
    monkeypatch: pytest.MonkeyPatch,
    postgres_server: Any,
) -> None:
    """The read-back step checks the ETL: rows missing (here: loaded nowhere) fail the run."""
    cluster = emulated(kind="serverless-v2", engine="postgresql", state="available")
    set_aws_connection(monkeypatch, cluster.emu, conn_id="aws_default")
    set_cluster_database_connection(monkeypatch, "aurora_pg", cluster, engine="postgresql")
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER", cluster.identifier)
    dag = load_example_dag(DAG_ID)
    # A load step that writes nothing: the SQL stays valid, the rows never arrive.
    dag.get_task("load_rows").sql = ["SELECT 1"]

    run = dag.test()

    assert run_state(run) == "failed"
    states, _ = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states["load_rows"] == "success"
    assert states["read_back"] == "failed"

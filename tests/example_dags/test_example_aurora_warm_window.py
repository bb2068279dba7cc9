"""``example_aurora_warm_window`` and ``example_aurora_sweep_holds``, run with ``dag.test()`` on the emulator.

The warm window around the SQL ETL, on a paused Serverless v2 cluster of both engines: the hold
resumes it through its scaling, the sensor waits for a real connection, each ETL task finds the
cluster at the floor (described from inside the task), and the release gives the cluster back
its own scaling, also when the ETL fails. The sweep DAG removes the holds of runs that died.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow_support import (
    SALES_ROWS,
    plant_hold,
    run_state,
    sales_rows,
    set_aws_connection,
    task_states_and_xcoms,
)
from example_support import load_example_dag, set_cluster_database_connection

from airflow_aurora_wake.core.hold import HOLD_TAG_PREFIX, HoldRequest
from airflow_aurora_wake.emulator import ClusterSpec
from airflow_aurora_wake.operators.aurora_window import window_holder

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

DAG_ID = "example_aurora_warm_window"
SWEEP_DAG_ID = "example_aurora_sweep_holds"
ETL = ["warm.create_table", "warm.load_rows", "warm.read_back"]
#: A paused v2 cluster's own scaling (the emulator's default).
ORIGINAL = {"MinCapacity": 0.0, "MaxCapacity": 4.0, "SecondsUntilAutoPause": 300}
HELD = {"MinCapacity": 4.0, "MaxCapacity": 8.0}


def hold_tags(cluster: Any, identifier: str | None = None) -> list[str]:
    described = cluster.emu.boto3_client("rds").describe_db_clusters(
        DBClusterIdentifier=identifier or cluster.identifier
    )["DBClusters"][0]
    return [t["Key"] for t in described.get("TagList", []) if t["Key"].startswith(HOLD_TAG_PREFIX)]


def scaling(cluster: Any, identifier: str | None = None) -> dict[str, Any]:
    described = cluster.emu.boto3_client("rds").describe_db_clusters(
        DBClusterIdentifier=identifier or cluster.identifier
    )["DBClusters"][0]
    return dict(described["ServerlessV2ScalingConfiguration"])


@pytest.fixture
def seen_by_the_etl(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Describe the cluster at the start of each SQL task; ``cluster`` must be set first."""
    seen: dict[str, Any] = {}
    original = SQLExecuteQueryOperator.execute

    def describe_then_execute(self: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        seen[self.task_id] = scaling(seen["cluster"])
        return original(self, context, *args, **kwargs)

    monkeypatch.setattr(SQLExecuteQueryOperator, "execute", describe_then_execute)
    yield seen


def configure(monkeypatch: pytest.MonkeyPatch, cluster: Any, engine: str) -> None:
    conn_id = "aurora_pg" if engine == "postgresql" else "aurora_mysql"
    set_aws_connection(monkeypatch, cluster.emu, conn_id="aws_default")
    set_cluster_database_connection(monkeypatch, conn_id, cluster, engine=engine)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER", cluster.identifier)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CONN_ID", conn_id)


def test_example_dag_structure() -> None:
    dag = load_example_dag(DAG_ID)
    assert dag.dag_id == DAG_ID
    assert [task.task_id for task in dag.topological_sort()] == [
        "warm.hold",
        "warm.ready",
        "warm.hold_floor",
        *ETL,
        "warm.release",
    ]
    assert [dag.get_task(t).is_setup for t in ("warm.hold", "warm.ready", "warm.hold_floor")] == [True] * 3
    assert dag.get_task("warm.release").is_teardown is True
    assert dag.get_task("warm.ready").deferrable is True
    assert {type(dag.get_task(t)).__name__ for t in ETL} == {"SQLExecuteQueryOperator"}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_the_etl_runs_at_the_floor_and_the_cluster_gets_its_scaling_back(
    airflow_db: str,
    emulated: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    seen_by_the_etl: dict[str, Any],
    engine: str,
) -> None:
    cluster = emulated(kind="serverless-v2", engine=engine, state="paused")
    server = request.getfixturevalue("postgres_server" if engine == "postgresql" else "mariadb_server")
    configure(monkeypatch, cluster, engine)
    seen_by_the_etl["cluster"] = cluster

    run = load_example_dag(DAG_ID).test()
    try:
        assert run_state(run) == "success"
        states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
        assert set(states.values()) == {"success"}
        # Resumed by the hold's scaling change, before any connection.
        events = [event for event in cluster.emu.timeline(cluster.identifier)]
        resume = next(event for event in events if event.event == "resume-requested")
        assert resume.detail["cause"] == "modify-db-cluster"
        # Each ETL task found the cluster held at the floor, its maximum raised for the window.
        assert {task_id: seen_by_the_etl[task_id] for task_id in ETL} == dict.fromkeys(ETL, HELD)
        assert xcoms["warm.read_back"] == SALES_ROWS
        assert sales_rows(server, run.run_id) == SALES_ROWS
        # Afterwards: the cluster's own scaling, no hold left, and what the window cost.
        changes = [event.detail["after"] for event in events if event.event == "scaling-changed"]
        assert [(c["min_capacity"], c["max_capacity"]) for c in changes] == [(4.0, 8.0), (0.0, 4.0)]
        assert scaling(cluster) == ORIGINAL
        assert hold_tags(cluster) == []
        release = xcoms["warm.release"]
        assert release["holder"] == window_holder(DAG_ID, run.run_id, "warm")
        assert (release["released"], release["restored"], release["min_capacity"]) == (True, True, 4.0)
        assert release["acu_hours"] == pytest.approx(4.0 * release["held_seconds"] / 3600, abs=1e-4)
    finally:
        sales_rows(server, run.run_id, delete=True)


@pytest.mark.timeout(240)
def test_a_failed_etl_is_still_released(
    airflow_db: str, emulated: Any, monkeypatch: pytest.MonkeyPatch, postgres_server: Any
) -> None:
    cluster = emulated(kind="serverless-v2", engine="postgresql", state="paused")
    configure(monkeypatch, cluster, "postgresql")
    dag = load_example_dag(DAG_ID)
    dag.get_task("warm.load_rows").sql = ["SELECT * FROM aurora_wake_no_such_table"]

    run = dag.test()

    assert run_state(run) == "failed"
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert (states["warm.load_rows"], states["warm.read_back"]) == ("failed", "upstream_failed")
    assert states["warm.release"] == "success"
    assert (xcoms["warm.release"]["released"], xcoms["warm.release"]["restored"]) == (True, True)
    assert scaling(cluster) == ORIGINAL
    assert hold_tags(cluster) == []


# --------------------------------------------------------------------------- the sweep
def test_sweep_dag_structure() -> None:
    dag = load_example_dag(SWEEP_DAG_ID)
    assert [task.task_id for task in dag.topological_sort()] == ["sweep"]
    assert dag.get_task("sweep").db_cluster_identifiers == "{{ var.value.aurora_wake_sweep_clusters }}"
    assert "@hourly" in str(getattr(dag, "schedule", None) or dag.schedule_interval)


def plant_expired_hold(emu: Any, identifier: str) -> None:
    """A hold whose run died: taken two hours ago for one hour, never released."""
    plant_hold(emu, identifier, HoldRequest("died", min_capacity=2, hold_for=3600), since=time.time() - 7200)


@pytest.mark.timeout(180)
def test_the_sweep_dag_gives_back_the_scaling_that_dead_runs_held(
    airflow_db: str, emulated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")
    cluster.emu.add_cluster(ClusterSpec("orders", state="paused"))
    for name in ("sales", "orders"):
        plant_expired_hold(cluster.emu, name)
        assert scaling(cluster, name)["MinCapacity"] == 2.0
    set_aws_connection(monkeypatch, cluster.emu, conn_id="aws_default")
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_SWEEP_CLUSTERS", "sales, orders")

    run = load_example_dag(SWEEP_DAG_ID).test()

    assert run_state(run) == "success"
    _, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert [(r["db_cluster_identifier"], r["released"], r["restored"]) for r in xcoms["sweep"]] == [
        ("sales", True, True),
        ("orders", True, True),
    ]
    for name in ("sales", "orders"):
        assert scaling(cluster, name) == ORIGINAL
        assert hold_tags(cluster, name) == []

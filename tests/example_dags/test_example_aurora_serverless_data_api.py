"""``example_aurora_serverless_data_api``, run whole with ``dag.test()`` against the emulator.

A paused Serverless v2 cluster with the Data API on, on both engines: the wake's Data API call
starts the resume, the sensor's first Data API probe meets ``DatabaseResumingException`` and
defers, its trigger waits until a Data API ``SELECT 1`` succeeds, then a statement runs
through the Data API. No database connection is defined at all.
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
from example_support import load_example_dag

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

DAG_ID = "example_aurora_serverless_data_api"


def test_example_dag_structure() -> None:
    dag = load_example_dag(DAG_ID)
    assert dag.dag_id == DAG_ID
    assert [task.task_id for task in dag.topological_sort()] == ["wake", "ready", "count_tables"]
    ready = dag.get_task("ready")
    assert ready.deferrable is True
    assert ready.probe == "data-api"
    assert ready.conn_id is None


@pytest.mark.timeout(180)
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_dag_test_waits_through_the_data_api(
    airflow_db: str,
    emulated: Any,
    monkeypatch: pytest.MonkeyPatch,
    trigger_runs: list[dict[str, Any]],
    engine: str,
) -> None:
    # The resume ends only once the sensor deferred: its check in the worker meets the resume.
    cluster = emulated(engine=engine, state="paused", data_api=True, timings={"resume_seconds": UNTIL_ENDED})
    end_the_resume_once_deferred(monkeypatch, cluster.emu, cluster.identifier)
    endpoint = cluster.emu.cluster(cluster.identifier)
    secret_arn = cluster.emu.create_secret("postgres" if engine == "postgresql" else "root", "")
    set_aws_connection(monkeypatch, cluster.emu, conn_id="aws_default")
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_DATA_API_CLUSTER_ARN", endpoint.arn)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_DATA_API_SECRET_ARN", secret_arn)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_DATA_API_DATABASE", "test")

    run = load_example_dag(DAG_ID).test()

    assert run_state(run) == "success"
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {"wake": "success", "ready": "success", "count_tables": "success"}
    assert xcoms["wake"]["action"] == "data-api-nudge"
    resume = next(e for e in cluster.emu.timeline(cluster.identifier) if e.event == "resume-requested")
    assert resume.detail["cause"] == "data-api"
    # The sensor deferred: its trigger probed through the Data API, with no database connection.
    assert len(trigger_runs) == 1
    assert trigger_runs[0]["probe"] == "data-api"
    assert trigger_runs[0]["conn_id"] is None
    assert trigger_runs[0]["data_api_secret_arn"] == secret_arn
    ready_at = cluster.ready_at()
    assert ready_at is not None and xcoms["ready"]["ready_at"] >= ready_at
    assert xcoms["count_tables"]["tables"] > 0
    counters = cluster.counters()
    assert counters["connection_attempts"] == 0
    assert counters["data_api_calls"] >= 3  # the nudge, the probes, the statement

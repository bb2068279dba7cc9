"""``example_aurora_prewake``: its companion wakes the cluster before the run, which then does not wait.

The companion DAG (built by ``aurora_prewake_dag``) runs with ``dag.test()`` for a pipeline run
that starts 25 s ahead, on a paused Serverless v2 cluster of the emulator: with no resume
recorded yet it uses the default lead, wakes the cluster, waits for a real ``SELECT 1`` and
records the resume on the cluster's tag. The pipeline's run that follows finds the cluster warm:
its ready sensor passes without deferring, and the cluster was resumed once in all.
"""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from airflow_support import (
    EXAMPLE_DAGS_FOLDER,
    load_module,
    run_state,
    set_aws_connection,
    task_states_and_xcoms,
)
from example_support import set_cluster_database_connection
from prewake_support import run_prewake

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

DAG_ID = "example_aurora_prewake"


def load_example() -> ModuleType:
    module: ModuleType = load_module(EXAMPLE_DAGS_FOLDER / f"{DAG_ID}.py")
    return module


def test_the_companion_is_built_from_the_pipeline() -> None:
    example = load_example()
    assert example.dag.dag_id == DAG_ID
    assert example.prewake.dag_id == f"{DAG_ID}__aurora_prewake"
    assert example.prewake.timetable.lead == timedelta(minutes=15)
    assert example.prewake.catchup is False
    task = example.prewake.get_task("prewake")
    assert (task.target_dag_id, task.lead_seconds, task.record_resumes) == (DAG_ID, None, True)
    assert [t.task_id for t in example.dag.topological_sort()] == ["ready", "report"]


@pytest.mark.timeout(300)
def test_the_prewoken_run_starts_on_a_warm_cluster_without_deferring(
    airflow_db: str, emulated: Any, monkeypatch: pytest.MonkeyPatch, trigger_runs: list[dict[str, Any]]
) -> None:
    # A resume long enough to count as one (a warm cluster's answer is not recorded).
    cluster = emulated(kind="serverless-v2", state="paused", timings={"resume_seconds": 4.0})
    set_aws_connection(monkeypatch, cluster.emu, conn_id="aws_default")
    set_cluster_database_connection(monkeypatch, "aurora_pg", cluster, engine="postgresql")
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER", cluster.identifier)
    example = load_example()

    prewake_run, _ = run_prewake(example.prewake, example.dag, EXAMPLE_DAGS_FOLDER, starts_in=25)

    assert run_state(prewake_run) == "success"
    _, xcoms = task_states_and_xcoms(prewake_run.dag_id, prewake_run.run_id)
    report = xcoms["prewake"]
    assert report["lead_basis"].startswith("default")
    assert report["lead_seconds"] == 60.0
    assert report["recorded"] is True
    tags = {t["Key"]: t["Value"] for t in cluster.describe()["TagList"]}
    assert tags["aurora-wake:resumes"].startswith("v2-resume:")
    deferrals_before = len(trigger_runs)

    run = example.dag.test()

    assert run_state(run) == "success"
    states, _ = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {"ready": "success", "report": "success"}
    assert len(trigger_runs) == deferrals_before  # the ready sensor did not defer
    resumes = [e for e in cluster.emu.timeline(cluster.identifier) if e.event == "resume-requested"]
    assert len(resumes) == 1

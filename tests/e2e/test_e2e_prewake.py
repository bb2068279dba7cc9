"""The pre-wake under a real Airflow 3 scheduler, on Airflow 3's default (trigger) timetable.

A pipeline with ``schedule="* * * * *"`` (a ``CronTriggerTimetable``: a run's logical date is
its start, so a companion run dated like it would be in the future and never start) on a paused
Serverless v2 cluster of the emulator (resume 8 s), and its companion from
``aurora_prewake_dag`` (lead 25 s, companion runs 40 s ahead): ``dags/e2e_prewake.py``. Checked
from Airflow's records and the emulator's timeline, for the pipeline's first run (its second,
only when the DAGs were parsed after the first one's pre-wake was due):

1. The plugin registered the timetable: the DAG file parsed without an import error, the
   companion is serialized with ``AuroraPreWakeTimetable`` around the pipeline's trigger
   timetable, and the scheduler created its runs, each ``MAX_LEAD`` before a pipeline run, with
   its logical date moved as much (a future one would never start).
2. The first run has its pre-wake (the companion's dates move with its runs, so a run at the
   start date gets a task instance too), which succeeded: it woke the cluster once, at or after
   its wake time and before the run's scheduled start; its XCom's warm time is the run's start
   minus the moment the database answered, and its resume time covers the emulated resume.
3. The pipeline's ready sensor found the cluster awake: when the pre-wake's cluster answered
   before the sensor started, the sensor passed without deferring; its run succeeded.
4. Every process the test started is gone afterwards (also when it fails: fixture finalizer).
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import CLUSTER, E2E_DAGS_FOLDER
from e2e_airflow import AirflowDeployment
from e2e_records import epoch

from airflow_aurora_wake.core.wake_plan import WakeAction
from airflow_aurora_wake.emulator import AuroraEmulator, TimelineEvent

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.db, pytest.mark.airflow]

DAG_FILE = E2E_DAGS_FOLDER / "e2e_prewake.py"
#: The emulated resume: a real Serverless v2 resume is about 15 s; shorter keeps the test short.
RESUME_SECONDS = 8.0
#: From starting Airflow to the DAGs parsed (about 10 s on an idle 2-core machine), with room.
#: Later parsing costs a minute, not a failure: the test then uses the second run.
STARTUP_SECONDS = 30.0
#: Generous bounds for a loaded 2-core machine; the waits end as soon as the state is seen.
START_SECONDS = 240.0
STEP_SECONDS = 240.0
#: The states a task instance or a DAG run ends in.
FINISHED = ("success", "failed", "upstream_failed", "skipped", "removed")
#: The wakes that wake a paused cluster (not "none", not "already waking").
WAKES = {action.value for action in WakeAction} - {WakeAction.NONE.value, WakeAction.ALREADY_WAKING.value}


def load_dag_module() -> ModuleType:
    """The test DAG's module, for its constants (loaded in the test: the file needs Airflow 3)."""
    spec = importlib.util.spec_from_file_location(DAG_FILE.stem, DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def resume_seconds() -> float:
    """The emulated cluster's resume: ``RESUME_SECONDS``. It pauses again only after 300 s idle
    (the default): not within the test, unless the test pauses it."""
    return RESUME_SECONDS


@pytest.fixture
def e2e_dag_files() -> list[Path]:
    """Only the pre-wake's DAG file: the dag processor parses nothing else."""
    return [DAG_FILE]


def events(emulator: AuroraEmulator, name: str) -> list[TimelineEvent]:
    """The cluster's timeline events of one kind, oldest first."""
    return [event for event in emulator.timeline(CLUSTER) if event.event == name]


def scheduled_run(airflow: AirflowDeployment, dag_id: str, run_after: float) -> dict[str, Any] | None:
    """The scheduled run of ``dag_id`` that starts at ``run_after`` (epoch seconds), or ``None``."""
    rows = airflow.query("SELECT * FROM dag_run WHERE dag_id = ? AND run_type = 'scheduled'", dag_id)
    return next((dict(row) for row in rows if epoch(row["run_after"]) == run_after), None)


def serialized_timetable(airflow: AirflowDeployment, dag_id: str) -> dict[str, Any]:
    """The DAG's timetable as the dag processor serialized it for the scheduler."""
    rows = airflow.query(
        "SELECT data FROM serialized_dag WHERE dag_id = ? ORDER BY created_at DESC LIMIT 1", dag_id
    )
    assert rows and rows[0]["data"] is not None, f"no uncompressed serialized DAG {dag_id!r}"
    timetable: dict[str, Any] = json.loads(rows[0]["data"])["dag"]["timetable"]
    return timetable


def at(iso: str) -> float:
    """Epoch seconds of an ISO timestamp with its offset (the pre-wake's XCom)."""
    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.timeout(900)
def test_the_prewake_wakes_the_cluster_before_a_trigger_timetable_run_under_a_real_scheduler(
    airflow: AirflowDeployment, emulator: AuroraEmulator
) -> None:
    dag = load_dag_module()
    lead, max_lead, period = (d.total_seconds() for d in (dag.LEAD, dag.MAX_LEAD, dag.PERIOD))
    assert emulator.status(CLUSTER) == "paused"
    # The pipeline's first run: the first whole minute its pre-wake can be on time for.
    first_run = float(math.ceil((time.time() + STARTUP_SECONDS + max_lead) / period) * period)
    for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
        airflow.start(name, name, **{dag.FIRST_RUN_VARIABLE: str(first_run)})

    def dags_parsed() -> bool | None:
        rows = airflow.query(
            "SELECT dag_id FROM dag WHERE dag_id IN (?, ?) AND is_paused = 0",
            dag.DAG_ID,
            dag.COMPANION_DAG_ID,
        )
        return True if len(rows) == 2 else None

    airflow.wait_for("both DAGs parsed and unpaused", dags_parsed, START_SECONDS)

    # ------------------------------------------------ 1. the plugin registered the timetable
    assert [dict(row) for row in airflow.query("SELECT * FROM import_error")] == []
    pipeline_timetable = serialized_timetable(airflow, dag.DAG_ID)
    assert pipeline_timetable["__type"] == "airflow.timetables.trigger.CronTriggerTimetable"
    companion_timetable = serialized_timetable(airflow, dag.COMPANION_DAG_ID)
    assert companion_timetable["__type"] == "airflow_aurora_wake.timetables.prewake.AuroraPreWakeTimetable"
    assert companion_timetable["__var"]["target"] == pipeline_timetable
    assert companion_timetable["__var"]["lead"] == max_lead

    def finished(dag_id: str, run_after: float) -> dict[str, Any] | None:
        run = scheduled_run(airflow, dag_id, run_after)
        return run if run is not None and run["state"] in FINISHED else None

    # ------------- the first run whose pre-wake the scheduler could start on time: the first
    # one, unless the DAGs were parsed after its companion run was due (a loaded machine)
    versions = "SELECT min(created_at) AS at FROM dag_version WHERE dag_id = ?"
    parsed_at = epoch(airflow.query(versions, dag.COMPANION_DAG_ID)[0]["at"])
    number = next(
        (k for k in range(1, dag.RUNS + 1) if parsed_at <= first_run + (k - 1) * period - max_lead), None
    )
    assert number is not None, f"the DAGs were parsed {parsed_at - first_run:.0f} s after the first run"
    if number > 1:
        airflow.wait_for("the first run to finish", lambda: finished(dag.DAG_ID, first_run), STEP_SECONDS)
        if scheduled_run(airflow, dag.COMPANION_DAG_ID, first_run - max_lead) is not None:
            airflow.wait_for(
                "the first pre-wake to finish",
                lambda: finished(dag.COMPANION_DAG_ID, first_run - max_lead),
                STEP_SECONDS,
            )
        # That pre-wake came late or not at all; the one under test must find the cluster
        # paused, as the first one would have (it pauses by itself only after 300 s idle).
        emulator.pause(CLUSTER)
    run_start = first_run + (number - 1) * period
    run = airflow.wait_for(
        f"pipeline run {number} to finish",
        lambda: finished(dag.DAG_ID, run_start),
        run_start - time.time() + STEP_SECONDS,
    )
    companion = airflow.wait_for(
        "its pre-wake run to finish",
        lambda: finished(dag.COMPANION_DAG_ID, run_start - max_lead),
        STEP_SECONDS,
    )
    prewake_ti = airflow.task_instances(dag.COMPANION_DAG_ID, companion["run_id"]).get("prewake")
    assert prewake_ti is not None, f"the pre-wake run has no task instance: {companion}"
    xcom = airflow.xcom(dag.COMPANION_DAG_ID, companion["run_id"], "prewake")
    window_start = epoch(companion["start_date"])

    # The companion run is the pipeline run moved MAX_LEAD earlier, logical date included; on a
    # trigger timetable the pipeline run's logical date is its start.
    assert epoch(run["logical_date"]) == run_start
    assert (epoch(companion["run_after"]), epoch(companion["logical_date"])) == (run_start - max_lead,) * 2
    assert (epoch(companion["data_interval_start"]), epoch(companion["data_interval_end"])) == (
        run_start - max_lead,
    ) * 2

    # ------------------------------------------------------------ 2. the pre-wake succeeded
    assert companion["state"] == "success"
    assert (prewake_ti["state"], prewake_ti["try_number"]) == ("success", 1)
    assert xcom["target_dag_id"] == dag.DAG_ID
    assert at(xcom["run_start"]) == run_start
    assert (xcom["lead_seconds"], xcom["lead_basis"].split(":")[0]) == (lead, "set")
    assert at(xcom["wake_at"]) == run_start - lead
    assert xcom["wake_action"] in WAKES, xcom
    # The warm time is what the run's start left after the database answered (negative if late).
    assert xcom["warm_seconds"] == pytest.approx(run_start - xcom["ready_at"], abs=1e-3)
    # One resume from the pre-wake's start to the pipeline run's end, requested by the pre-wake:
    # at its wake time or after, and before the run's scheduled start.
    resumes = [event for event in events(emulator, "resume-requested") if event.at >= window_start]
    assert len(resumes) == 1, resumes
    resume = resumes[0]
    assert at(xcom["wake_at"]) <= resume.at < run_start
    ready = next(event for event in events(emulator, "ready") if event.at >= resume.at)
    # The database answered the pre-wake's probe only once the resume had ended, and the wake
    # was requested (pre-wake's clock) before the emulator saw it.
    assert ready.at <= xcom["ready_at"]
    assert xcom["resume_seconds"] >= round(ready.at - resume.at, 3) - 1e-3

    # --------------------------------------------- 3. the pipeline found the cluster awake
    assert run["state"] == "success"
    instances = airflow.task_instances(dag.DAG_ID, run["run_id"])
    assert {task: (row["state"], row["try_number"]) for task, row in instances.items()} == {
        "ready": ("success", 1),
        "select_1": ("success", 1),
    }
    sensor_started = epoch(instances["ready"]["start_date"])
    sensor_log = airflow.task_log(dag.DAG_ID, run["run_id"], "ready", 1) or ""
    trigger_logs = list(
        (airflow.home / "logs" / f"dag_id={dag.DAG_ID}" / f"run_id={run['run_id']}" / "task_id=ready").glob(
            "attempt=*.log.trigger.*"
        )
    )
    if xcom["ready_at"] < sensor_started:
        # The cluster answered before the sensor started, and it stays awake for 300 s idle:
        # the sensor's check before deferring found it ready and it never deferred.
        assert "no deferral needed" in sensor_log, sensor_log[-4000:]
        assert trigger_logs == []
        assert instances["ready"]["next_method"] is None
    else:
        # Only on a machine so loaded that the pre-wake's last hop (its readiness trigger's
        # event, then its resumption) outlasted the lead's margin: the sensor may have found the
        # resume under way and deferred; it still waited for the same resume, not a second one.
        assert airflow.xcom(dag.DAG_ID, run["run_id"], "ready")["ready_at"] >= ready.at
    calls = emulator.counters()["rds_calls_by_cluster"][CLUSTER]
    assert (calls.get("ModifyCurrentDBClusterCapacity", 0), calls.get("StartDBCluster", 0)) == (0, 0)

    # ------------------------------------------------------------ 4. nothing left running
    assert airflow.stop_all() == []
    assert airflow.leftovers() == []
    for name in airflow.processes:
        assert airflow.group_members(name) == [], name

"""The warm window in a real Airflow 3 (scheduler with LocalExecutor, dag processor, API server,
triggerer): the ETL fails, and the release, the window's teardown, gives the cluster back.

One DAG run (``dags/e2e_warm_window_failed_etl.py``) on a paused Serverless v2 PostgreSQL
cluster whose ``MinCapacity`` is 0, checked from Airflow's records and the emulator's:

1. The hold (a setup task) raises the cluster's floor and ceiling: that scaling change alone
   resumes the paused cluster (timeline: ``scaling-changed``, then ``resume-requested`` with the
   cause ``modify-db-cluster``), and its hold tag is on the cluster.
2. While the cluster resumes, the readiness sensor is deferred and its trigger assigned to the
   triggerer; the test then ends the resume (``emulator.wake``: a resume of exactly that length,
   never a fixed sleep), and the trigger's probe reports the cluster ready.
3. Inside the window the ETL sees the held floor and the hold tag; its insert fails (the table
   does not exist, no retry), and the floor stays in force for all of that task's run.
4. The release runs after the failure and succeeds: the cluster's scaling is its own again, no
   hold tag is left, the release's XCom says what the window cost; the DAG run is ``failed``,
   because of the ETL task alone.
5. Every process the test started is gone afterwards (also when it fails: fixture finalizer).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import CLUSTER, E2E_DAGS_FOLDER
from e2e_airflow import AirflowDeployment
from e2e_records import epoch

from airflow_aurora_wake.core.hold import HOLD_TAG_PREFIX
from airflow_aurora_wake.emulator import AuroraEmulator, TimelineEvent
from airflow_aurora_wake.operators.aurora_window import window_holder

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.db, pytest.mark.airflow]

DAG_FILE = E2E_DAGS_FOLDER / "e2e_warm_window_failed_etl.py"
#: Generous bounds for a loaded 2-core machine; the waits end as soon as the state is seen.
START_SECONDS = 240.0
STEP_SECONDS = 240.0
#: The states a task instance ends in.
FINISHED = ("success", "failed", "upstream_failed", "skipped", "removed")


def load_dag_module() -> ModuleType:
    """The test DAG's module, for its constants (DAG id, window id, floor...): one place for them.

    Loaded in the test, not at collection: the file needs Airflow 3.
    """
    spec = importlib.util.spec_from_file_location(DAG_FILE.stem, DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def e2e_dag_files() -> list[Path]:
    """Only the warm window's DAG: the dag processor parses nothing else."""
    return [DAG_FILE]


def describe(emulator: AuroraEmulator) -> dict[str, Any]:
    """The cluster as RDS describes it now."""
    clusters = emulator.boto3_client("rds").describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"]
    return dict(clusters[0])


def hold_tags(described: dict[str, Any]) -> list[str]:
    """The hold tags on a described cluster."""
    return sorted(
        tag["Key"] for tag in described.get("TagList", []) if tag["Key"].startswith(HOLD_TAG_PREFIX)
    )


def events(emulator: AuroraEmulator, name: str) -> list[TimelineEvent]:
    """The cluster's timeline events of one kind, oldest first."""
    return [event for event in emulator.timeline(CLUSTER) if event.event == name]


def held_connections(emulator: AuroraEmulator) -> int:
    """Connection attempts the cluster holds now: arrived, not yet answered, spliced or given up."""
    counters = emulator.state()["clusters"][CLUSTER]["counters"]
    ended = (
        len(counters["connections_completed_at"])
        + counters["connections_abandoned"]
        + counters["connections_reset"]
        + counters["connections_failed_by_fault"]
        + counters["resume_answers"]
    )
    return int(counters["connection_attempts"]) - ended


def scaling_at(changes: list[TimelineEvent], original: dict[str, Any], when: float) -> dict[str, Any]:
    """The v2 scaling in force at ``when`` (epoch seconds): the last change before it, or the original."""
    before = [event.detail["after"] for event in changes if event.at <= when]
    return before[-1] if before else original


@pytest.mark.timeout(900)
def test_the_release_gives_the_cluster_back_after_the_etl_failed_under_a_real_scheduler(
    airflow: AirflowDeployment, emulator: AuroraEmulator
) -> None:
    dag = load_dag_module()
    hold_id, ready_id, hold_floor_id, release_id, observe_id, load_id = (
        f"{dag.WINDOW_ID}.{label}" for label in ("hold", "ready", "hold_floor", "release", "observe", "load")
    )
    run_id = f"e2e-window-{airflow.marker[:12]}"
    holder_tag = HOLD_TAG_PREFIX + window_holder(dag.DAG_ID, run_id, dag.WINDOW_ID)
    before = describe(emulator)
    original = before["ServerlessV2ScalingConfiguration"]
    assert original["MinCapacity"] == 0  # a cluster that may pause, and is paused
    assert emulator.status(CLUSTER) == "paused"
    assert hold_tags(before) == []
    # The timeline's form of the original scaling, to compare with what the changes set.
    original_as_set = {
        "min_capacity": original["MinCapacity"],
        "max_capacity": original["MaxCapacity"],
        "seconds_until_auto_pause": original["SecondsUntilAutoPause"],
    }

    for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
        airflow.start(name, name)

    def dag_parsed() -> bool | None:
        rows = airflow.query("SELECT dag_id FROM dag WHERE dag_id = ? AND is_paused = 0", dag.DAG_ID)
        return True if rows else None

    airflow.wait_for("the DAG parsed and unpaused", dag_parsed, START_SECONDS)
    airflow.wait_for("the API server", airflow.api_ready, START_SECONDS)

    def run_ended_early() -> str | None:
        state = airflow.dag_run_state(dag.DAG_ID, run_id)
        return (
            f"the DAG run ended {state} before the resume ended" if state in ("success", "failed") else None
        )

    # ------------------------- 1 and 2. the hold resumes the cluster; the sensor defers
    airflow.trigger_dag(dag.DAG_ID, run_id)

    def sensor_deferred_with_a_triggerer() -> dict[str, Any] | None:
        ready = airflow.task_instances(dag.DAG_ID, run_id).get(ready_id)
        if ready is None or ready["state"] != "deferred" or ready["trigger_id"] is None:
            return None
        trigger = airflow.trigger(ready["trigger_id"])
        if trigger is None or trigger["triggerer_id"] is None:
            return None
        return {"trigger": trigger, "cluster": emulator.status(CLUSTER), "described": describe(emulator)}

    deferred = airflow.wait_for(
        "the readiness sensor deferred, its trigger assigned to the triggerer",
        sensor_deferred_with_a_triggerer,
        STEP_SECONDS,
        fail_if=run_ended_early,
    )
    # Deferred while the cluster resumes, which the hold's scaling change started.
    assert deferred["cluster"] == "resuming"
    assert airflow.task_instances(dag.DAG_ID, run_id)[hold_id]["state"] == "success"
    hold = airflow.xcom(dag.DAG_ID, run_id, hold_id)
    assert (hold["action"], hold["min_capacity"]) == ("hold", dag.FLOOR)
    assert deferred["described"]["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": dag.FLOOR,
        "MaxCapacity": dag.CEILING,
    }
    assert hold_tags(deferred["described"]) == [holder_tag]
    trigger = deferred["trigger"]
    assert (
        trigger["classpath"] == "airflow_aurora_wake.triggers.aurora_serverless.AuroraServerlessReadyTrigger"
    )
    assert trigger["kwargs"]["db_cluster_identifier"] == CLUSTER
    assert trigger["triggerer_id"] == airflow.triggerer_job_ids()[-1]
    changes = events(emulator, "scaling-changed")
    resumes = events(emulator, "resume-requested")
    assert [event.detail["after"] for event in changes] == [
        {
            "min_capacity": dag.FLOOR,
            "max_capacity": dag.CEILING,
            "seconds_until_auto_pause": original_as_set["seconds_until_auto_pause"],
        }
    ]
    assert [event.detail["cause"] for event in resumes] == ["modify-db-cluster"]
    assert changes[0].at <= resumes[0].at

    def trigger_running() -> bool | None:
        # The triggerer logs this, in the trigger's own log file, as it starts running the trigger.
        text = airflow.task_log(dag.DAG_ID, run_id, ready_id, 1, triggerer_id=trigger["triggerer_id"])
        return True if text is not None and f"(ID {trigger['id']}) starting" in text else None

    airflow.wait_for(
        "the trigger running in the triggerer", trigger_running, STEP_SECONDS, fail_if=run_ended_early
    )

    def probe_held() -> bool | None:
        return True if held_connections(emulator) > 0 else None

    # Its probe waits on the resuming cluster (the sensor's own check in the worker gave up
    # before it deferred): only the test ends the resume.
    airflow.wait_for(
        "the trigger's probe held by the resuming cluster", probe_held, STEP_SECONDS, fail_if=run_ended_early
    )
    assert emulator.status(CLUSTER) == "resuming"
    assert airflow.task_instances(dag.DAG_ID, run_id)[ready_id]["state"] == "deferred"

    # ------------------------------- 3 and 4. the resume ends; the ETL fails; the release runs
    emulator.wake(CLUSTER)

    def run_finished() -> str | None:
        state = airflow.dag_run_state(dag.DAG_ID, run_id)
        return state if state in ("success", "failed") else None

    assert airflow.wait_for("the DAG run to finish", run_finished, STEP_SECONDS) == "failed"

    def release_finished() -> str | None:
        release = airflow.task_instances(dag.DAG_ID, run_id).get(release_id)
        return release["state"] if release is not None and release["state"] in FINISHED else None

    # The run's state waits for its teardown; this only makes the test independent of that rule.
    assert airflow.wait_for("the release to finish", release_finished, STEP_SECONDS) == "success", (
        airflow.log_tails()
    )
    instances = airflow.task_instances(dag.DAG_ID, run_id)
    # The ETL's failure is the run's only failure: the window's tasks and the ETL's first task succeeded.
    assert {task_id: row["state"] for task_id, row in instances.items()} == {
        hold_id: "success",
        ready_id: "success",
        hold_floor_id: "success",
        observe_id: "success",
        load_id: "failed",
        release_id: "success",
    }
    assert {task_id: row["try_number"] for task_id, row in instances.items()} == dict.fromkeys(instances, 1)
    # It failed as the ETL was written to: the database refused the insert.
    load_log = airflow.task_log(dag.DAG_ID, run_id, load_id, 1) or ""
    # (The log is JSON lines: the message's quotes are escaped there.)
    assert re.search(rf'relation \\?"{dag.MISSING_TABLE}\\?" does not exist', load_log), load_log[-4000:]

    # The trigger's probe, in the triggerer, saw the cluster ready once the resume had ended.
    ready_at = emulator.ready_at(CLUSTER)
    assert ready_at is not None and airflow.xcom(dag.DAG_ID, run_id, ready_id)["ready_at"] >= ready_at

    # Inside the window: the held floor and ceiling, the hold's tag.
    assert airflow.xcom(dag.DAG_ID, run_id, observe_id) == {
        "status": "available",
        "scaling": {"MinCapacity": dag.FLOOR, "MaxCapacity": dag.CEILING},
        "hold_tags": [holder_tag],
    }
    # The floor was in force for the whole of the failing task's run, and given back after it.
    changes = events(emulator, "scaling-changed")
    load_started, load_ended = epoch(instances[load_id]["start_date"]), epoch(instances[load_id]["end_date"])
    held = scaling_at(changes, original_as_set, load_started)
    assert (held["min_capacity"], held["max_capacity"]) == (dag.FLOOR, dag.CEILING)
    assert [event for event in changes if load_started <= event.at <= load_ended] == []
    assert changes[-1].detail["after"] == original_as_set
    assert load_ended <= epoch(instances[release_id]["start_date"]) <= changes[-1].at

    # After: the cluster's own scaling, no hold left, and what the window cost.
    after = describe(emulator)
    assert after["ServerlessV2ScalingConfiguration"] == original
    assert hold_tags(after) == []
    release = airflow.xcom(dag.DAG_ID, run_id, release_id)
    assert (release["released"], release["restored"], release["holds"]) == (True, True, 0)
    assert release["min_capacity"] == dag.FLOOR
    assert release["held_seconds"] > 0
    assert release["acu_hours"] > 0
    assert release["acu_hours"] == pytest.approx(dag.FLOOR * release["held_seconds"] / 3600, abs=1e-4)
    # One resume, by the scaling change: no connection, capacity request or start woke it.
    assert [event.detail["cause"] for event in events(emulator, "resume-requested")] == ["modify-db-cluster"]
    calls = emulator.counters()["rds_calls_by_cluster"][CLUSTER]
    assert (calls.get("ModifyCurrentDBClusterCapacity", 0), calls.get("StartDBCluster", 0)) == (0, 0)
    assert calls.get("StopDBCluster", 0) == 0

    # ------------------------------------------------------------ 5. nothing left running
    assert airflow.stop_all() == []
    assert airflow.leftovers() == []
    for name in airflow.processes:
        assert airflow.group_members(name) == [], name

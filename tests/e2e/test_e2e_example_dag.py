"""The example DAG in a real Airflow 3: scheduler (LocalExecutor), dag processor, API server, triggerer.

One DAG run tells the whole story, checked from Airflow's own records (the metadata database)
and the emulator's:

1. The wake task nudges the paused Serverless v2 cluster; the sensor checks once and defers.
2. While the cluster resumes, the sensor's task instance is ``deferred``, its trigger runs in the
   triggerer, and it holds no executor slot: with ``parallelism = 1``, another DAG's task runs
   to success meanwhile. Three more deferred sensors wait on the same cluster with connections
   kept in the metadata database (``airflow connections add``), in ``AIRFLOW_CONN_*``
   variables and in a secrets backend: the triggerer looks each up.
3. The triggerer is killed (SIGKILL of its process group) while the sensor is deferred; a new
   triggerer takes the same trigger over, with the same kwargs (same absolute ``deadline``) and
   the same ``trigger_timeout`` on the task instance.
4. The resume ends (the test ends the emulated resume once it has seen all of the above: a
   resume of exactly that length, never a fixed sleep); the new triggerer's probe succeeds, the
   ETL writes its 3 rows to the real PostgreSQL, the run succeeds, and no second wake request
   was ever sent.
5. Every process the test started is gone afterwards (also when it fails: fixture finalizer).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow_support import SALES_ROWS, sales_rows
from conftest import CLUSTER
from e2e_airflow import AirflowDeployment

from airflow_aurora_wake.emulator import AuroraEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.db, pytest.mark.airflow]

DAG_ID = "example_aurora_serverless_wake"
PROBE_DAG_ID = "e2e_executor_slot_probe"
SOURCES_DAG_ID = "e2e_connection_sources"
#: The sensors of the connection-sources DAG, one per place users keep connections.
SOURCE_SENSORS = ("ready_metadata", "ready_env", "ready_secrets")
#: Generous bounds for a loaded 2-core machine; the waits end as soon as the state is seen.
START_SECONDS = 240.0
STEP_SECONDS = 240.0


def deadline_of(trigger: dict[str, Any]) -> float:
    return float(trigger["kwargs"]["deadline"])


@pytest.mark.timeout(900)
def test_example_dag_defers_survives_a_triggerer_restart_and_loads_rows(
    airflow: AirflowDeployment, emulator: AuroraEmulator, postgres_server: Any
) -> None:
    run_id = f"e2e-{airflow.marker[:12]}"
    for name, args in (
        ("api-server", ("api-server",)),
        ("scheduler", ("scheduler",)),
        ("dag-processor", ("dag-processor",)),
        ("triggerer-1", ("triggerer",)),
    ):
        airflow.start(name, *args)

    def dags_parsed() -> bool | None:
        rows = airflow.query(
            "SELECT dag_id FROM dag WHERE dag_id IN (?, ?, ?) AND is_paused = 0",
            DAG_ID,
            PROBE_DAG_ID,
            SOURCES_DAG_ID,
        )
        return True if len(rows) == 3 else None

    airflow.wait_for("the three DAGs parsed and unpaused", dags_parsed, START_SECONDS)
    airflow.wait_for("the API server", airflow.api_ready, START_SECONDS)

    sources_run_id = f"{run_id}-sources"

    def run_failed() -> str | None:
        for dag_id, dag_run_id in ((DAG_ID, run_id), (SOURCES_DAG_ID, sources_run_id)):
            state = airflow.dag_run_state(dag_id, dag_run_id)
            if state == "failed":
                return f"the DAG run of {dag_id} ended {state}"
        return None

    # ------------------------------------------------ 1. wake, then the sensor defers
    airflow.trigger_dag(DAG_ID, run_id)

    def sensor_deferred_with_a_triggerer() -> dict[str, Any] | None:
        ready = airflow.task_instances(DAG_ID, run_id).get("ready")
        if ready is None or ready["state"] != "deferred" or ready["trigger_id"] is None:
            return None
        trigger = airflow.trigger(ready["trigger_id"])
        if trigger is None or trigger["triggerer_id"] is None:
            return None
        return {"ti": dict(ready), "trigger": trigger, "cluster": emulator.status(CLUSTER)}

    first = airflow.wait_for(
        "the sensor deferred, its trigger assigned to the triggerer",
        sensor_deferred_with_a_triggerer,
        STEP_SECONDS,
        fail_if=run_failed,
    )
    # Deferred while the cluster resumes: the wake task's nudge started the resume.
    assert first["cluster"] == "resuming"
    instances = airflow.task_instances(DAG_ID, run_id)
    assert instances["wake"]["state"] == "success"
    assert airflow.xcom(DAG_ID, run_id, "wake")["action"] == "connection-nudge"
    assert first["ti"]["next_method"] == "execute_complete"
    trigger_id = first["ti"]["trigger_id"]
    trigger_timeout = first["ti"]["trigger_timeout"]
    assert trigger_timeout is not None
    first_trigger = first["trigger"]
    assert first_trigger["classpath"] == (
        "airflow_aurora_wake.triggers.aurora_serverless.AuroraServerlessReadyTrigger"
    )
    assert first_trigger["kwargs"]["db_cluster_identifier"] == CLUSTER
    assert deadline_of(first_trigger) > time.time()
    triggerer_1 = first_trigger["triggerer_id"]
    assert triggerer_1 == airflow.triggerer_job_ids()[-1]

    # ------------------------------------- 2. no executor slot held while deferred
    probe_run_id = f"{run_id}-slot-probe"
    airflow.trigger_dag(PROBE_DAG_ID, probe_run_id)

    def probe_finished() -> str | None:
        state = airflow.dag_run_state(PROBE_DAG_ID, probe_run_id)
        return state if state in ("success", "failed") else None

    assert (
        airflow.wait_for("the slot probe DAG run", probe_finished, STEP_SECONDS, fail_if=run_failed)
        == "success"
    )
    # parallelism is 1: the probe task ran in the only executor slot, so the sensor held none.
    ready = airflow.task_instances(DAG_ID, run_id)["ready"]
    assert (ready["state"], ready["trigger_id"]) == ("deferred", trigger_id)
    assert emulator.status(CLUSTER) == "resuming"

    # ------------ connections kept in each source: their sensors defer too (the slot is free)
    airflow.trigger_dag(SOURCES_DAG_ID, sources_run_id)

    def source_sensors_deferred() -> bool | None:
        instances = airflow.task_instances(SOURCES_DAG_ID, sources_run_id)
        deferred = [
            instances[task_id]["trigger_id"]
            for task_id in SOURCE_SENSORS
            if task_id in instances and instances[task_id]["state"] == "deferred"
        ]
        triggers = [airflow.trigger(trigger_id) for trigger_id in deferred if trigger_id is not None]
        assigned = [trigger for trigger in triggers if trigger and trigger["triggerer_id"] is not None]
        return True if len(assigned) == len(SOURCE_SENSORS) else None

    airflow.wait_for(
        "the connection-sources sensors deferred, their triggers assigned",
        source_sensors_deferred,
        STEP_SECONDS,
        fail_if=run_failed,
    )
    assert emulator.status(CLUSTER) == "resuming"

    # ----------------------------------- 3. kill the triggerer while the sensor is deferred
    airflow.expect_exit("triggerer-1")
    airflow.kill("triggerer-1")
    assert airflow.group_members("triggerer-1") == []
    ready = airflow.task_instances(DAG_ID, run_id)["ready"]
    assert (ready["state"], ready["trigger_id"]) == ("deferred", trigger_id)

    airflow.start("triggerer-2", "triggerer")

    def taken_over() -> dict[str, Any] | None:
        trigger = airflow.trigger(trigger_id)
        if trigger is None or trigger["triggerer_id"] in (None, triggerer_1):
            return None
        return trigger

    second_trigger = airflow.wait_for(
        "the new triggerer to take the trigger over", taken_over, STEP_SECONDS, fail_if=run_failed
    )
    assert second_trigger["triggerer_id"] == airflow.triggerer_job_ids()[-1] != triggerer_1
    assert second_trigger["kwargs"] == first_trigger["kwargs"]
    assert deadline_of(second_trigger) == deadline_of(first_trigger)
    ready = airflow.task_instances(DAG_ID, run_id)["ready"]
    assert (ready["state"], ready["trigger_id"], ready["trigger_timeout"]) == (
        "deferred",
        trigger_id,
        trigger_timeout,
    )
    assert emulator.status(CLUSTER) == "resuming"

    # ---------------------------------------------- 4. the resume ends; the run succeeds
    emulator.wake(CLUSTER)

    def run_finished() -> str | None:
        state = airflow.dag_run_state(DAG_ID, run_id)
        return state if state in ("success", "failed") else None

    def sources_finished() -> str | None:
        state = airflow.dag_run_state(SOURCES_DAG_ID, sources_run_id)
        return state if state in ("success", "failed") else None

    assert airflow.wait_for("the DAG run to finish", run_finished, STEP_SECONDS) == "success", (
        airflow.log_tails()
    )
    instances = airflow.task_instances(DAG_ID, run_id)
    assert {task_id: row["state"] for task_id, row in instances.items()} == dict.fromkeys(
        instances, "success"
    )
    assert {"wake", "ready"} <= set(instances)
    # Each task ran once: the triggerer restart re-ran nothing.
    assert instances["wake"]["try_number"] == 1
    assert instances["ready"]["try_number"] == 1
    report = airflow.xcom(DAG_ID, run_id, "ready")
    ready_at = emulator.ready_at(CLUSTER)
    assert ready_at is not None and report["ready_at"] >= ready_at

    # Connections from the metadata database, environment variables and the secrets backend
    # were looked up in the triggerer: each sensor was deferred until the resume ended.
    assert airflow.wait_for("the connection-sources run", sources_finished, STEP_SECONDS) == "success", (
        airflow.log_tails()
    )
    sources = airflow.task_instances(SOURCES_DAG_ID, sources_run_id)
    for task_id in SOURCE_SENSORS:
        assert (sources[task_id]["state"], sources[task_id]["try_number"]) == ("success", 1), task_id
        assert airflow.xcom(SOURCES_DAG_ID, sources_run_id, task_id)["ready_at"] >= ready_at, task_id

    # The ETL's rows are in the real database, tagged with the run id (then removed).
    assert sales_rows(postgres_server, run_id, delete=True) == SALES_ROWS

    # No second wake request: one resume, requested by the wake task's connection nudge.
    counters = emulator.counters()["rds_calls_by_cluster"][CLUSTER]
    assert counters.get("ModifyCurrentDBClusterCapacity", 0) == 0
    assert counters.get("StartDBCluster", 0) == 0
    resumes = [event for event in emulator.timeline(CLUSTER) if event.event == "resume-requested"]
    assert len(resumes) == 1, resumes
    assert resumes[0].detail.get("cause") == "connection"

    # ------------------------------------------------ 5. nothing left running
    assert airflow.stop_all() == []
    assert airflow.leftovers() == []
    for name in airflow.processes:
        assert airflow.group_members(name) == [], name

"""Two triggerers share twenty deferred waits on two clusters, in a real Airflow 3.

Scheduler (LocalExecutor), dag processor, API server and two ``airflow triggerer`` processes,
against the emulator; checked from Airflow's records and the emulator's counters. Each process
signs its AWS calls with its own access key (its own ``AIRFLOW_CONN_AWS_DEFAULT``), so the
emulator counts the RDS calls of each triggerer apart from the worker's.

1. One wake task per paused Serverless v2 cluster; twenty sensors defer while the clusters
   resume (the emulator holds each resume open until the test ends it). Triggerer A
   (``--capacity 12``) cannot take them all: it takes the twelve of highest priority, six per
   cluster; triggerer B (``--capacity 20``) takes the other eight. Each trigger is assigned to
   exactly one triggerer and runs there only (its trigger log is in that triggerer's file).
2. Each triggerer describes each cluster at most about once per ``describe_interval``, however
   many waits it holds there: over its whole life, at least one and at most
   ``window / describe_interval + 3`` ``DescribeDBClusters`` per cluster, where one poller per
   wait would make several times more.
3. A is killed (SIGKILL of its process group) after an observation window; B takes its triggers
   over once A's heartbeat is older than ``[triggerer] triggerer_health_check_threshold``, with
   the same kwargs (same absolute ``deadline``) and the same ``trigger_timeout``. Twelve more
   waits add no poller to B: its describes after the kill stay within the same bound.
4. The resumes end: every sensor succeeds on its first try, and each cluster was asked to
   resume once (the wake task's nudge), with no capacity request or start.
5. The figures (RDS calls per minute per triggerer and cluster, time to take over) are printed
   for ``docs/benchmarks.md`` (run with ``-s``); every process is gone afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import E2E_DAGS_FOLDER, RESUME_SECONDS
from e2e_airflow import AirflowDeployment, deployment
from e2e_records import epoch

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.db, pytest.mark.airflow]

DAG_FILE = E2E_DAGS_FOLDER / "e2e_two_triggerers.py"
#: Triggerer A's ``--capacity``: fewer than the waits, so B must take some.
CAPACITY_A = 12
#: The access key each process signs its AWS calls with (ids only; the secret is the emulator's).
ACCESS_KEYS = {
    "worker": "AKIDE2EWORKER",
    "triggerer-a": "AKIDE2ETRIGGERERA",
    "triggerer-b": "AKIDE2ETRIGGERERB",
}
#: Executor slots: the sensors' checks before deferring run four at a time.
PARALLELISM = 4
#: How long both triggerers run side by side before A is killed: the window the calls per
#: minute are measured over (an observation period, not a wait for a state).
OBSERVE_SECONDS = 30.0
#: Describes per triggerer and cluster beyond one per describe interval: the poller's first
#: describe, the confirming one, and one for the interval boundaries.
EXTRA_DESCRIBES = 3
#: Generous bounds for a loaded 2-core machine; the waits end as soon as the state is seen.
START_SECONDS = 240.0
STEP_SECONDS = 240.0


def load_dag_module() -> ModuleType:
    """The test DAG's module, for its constants: one place for them (loaded at run time, not at
    collection: the file needs Airflow 3)."""
    spec = importlib.util.spec_from_file_location(DAG_FILE.stem, DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def emulator(postgres_server: Any) -> Iterator[AuroraEmulator]:
    """The DAG's paused Serverless v2 PostgreSQL clusters, in front of the real PostgreSQL."""
    dag = load_dag_module()
    emu = AuroraEmulator(
        [
            ClusterSpec(cluster, kind="serverless-v2", engine="aurora-postgresql", state="paused")
            for cluster in dag.CLUSTERS
        ],
        timings=Timings(resume_seconds=RESUME_SECONDS),
    )
    emu.start()
    try:
        yield emu
    finally:
        emu.shutdown()


def aws_connection(emulator: AuroraEmulator, process: str) -> str:
    """``aws_default`` for one process: the emulator, signed with that process's access key.

    :param process: a key of :data:`ACCESS_KEYS`.
    """
    return json.dumps(
        {
            "conn_type": "aws",
            "login": ACCESS_KEYS[process],
            "password": "testing",
            "extra": {"endpoint_url": emulator.endpoint_url, "region_name": emulator.region},
        }
    )


def process_env(emulator: AuroraEmulator, process: str) -> dict[str, str]:
    """The environment that makes one process sign with its own access key.

    :param process: a key of :data:`ACCESS_KEYS`.
    """
    return {
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(emulator, process),
        "AWS_ACCESS_KEY_ID": ACCESS_KEYS[process],
    }


@pytest.fixture
def airflow(tmp_path: Path, emulator: AuroraEmulator, postgres_server: Any) -> Iterator[AirflowDeployment]:
    """A migrated Airflow home with the DAG; every process signs as the worker unless told otherwise."""
    dag = load_dag_module()
    database = {"conn_type": "postgres", "login": postgres_server.user, "schema": postgres_server.database}
    env = {
        **emulator.aws_env(),
        **process_env(emulator, "worker"),
        f"AIRFLOW_CONN_{dag.CONN_ID.upper()}": json.dumps(database),
    }
    with deployment(tmp_path / "airflow-home", env, parallelism=PARALLELISM) as airflow:
        shutil.copy(DAG_FILE, airflow.dags_folder)
        airflow.run_cli("db", "migrate", timeout=300)
        yield airflow


def sensor_rows(airflow: AirflowDeployment, dag: ModuleType, run_id: str) -> dict[str, dict[str, Any]]:
    """Each sensor's task instance joined with its trigger's row (kwargs still encrypted)."""
    rows = airflow.query(
        "SELECT ti.task_id, ti.state, ti.try_number, ti.trigger_id, ti.trigger_timeout,"
        " t.triggerer_id, t.kwargs FROM task_instance ti LEFT JOIN trigger t ON t.id = ti.trigger_id"
        " WHERE ti.dag_id = ? AND ti.run_id = ? AND ti.task_id LIKE 'ready_%'",
        dag.DAG_ID,
        run_id,
    )
    return {row["task_id"]: dict(row) for row in rows}


def trigger_started_in(
    airflow: AirflowDeployment, dag: ModuleType, run_id: str, row: dict[str, Any], job: int
) -> bool:
    """Whether triggerer ``job`` logged the start of the sensor's trigger (its own log file)."""
    text = airflow.task_log(dag.DAG_ID, run_id, row["task_id"], 1, triggerer_id=job)
    return text is not None and f"(ID {row['trigger_id']}) starting" in text


def describes(emulator: AuroraEmulator, process: str) -> dict[str, int]:
    """``DescribeDBClusters`` calls signed by one process's key, by cluster."""
    by_cluster = emulator.counters()["rds_calls_by_access_key_and_cluster"].get(ACCESS_KEYS[process], {})
    return {cluster: actions.get("DescribeDBClusters", 0) for cluster, actions in by_cluster.items()}


def rds_calls(emulator: AuroraEmulator, process: str) -> dict[str, int]:
    """Every RDS call signed by one process's key, by cluster."""
    by_cluster = emulator.counters()["rds_calls_by_access_key_and_cluster"].get(ACCESS_KEYS[process], {})
    return {cluster: sum(actions.values()) for cluster, actions in by_cluster.items()}


def per_minute(calls: dict[str, int], seconds: float) -> dict[str, float]:
    """Calls per minute by cluster, over ``seconds``."""
    return {cluster: round(count * 60 / seconds, 1) for cluster, count in calls.items()}


@pytest.mark.timeout(900)
def test_two_triggerers_share_the_waits_poll_each_cluster_once_and_take_over(
    airflow: AirflowDeployment, emulator: AuroraEmulator
) -> None:
    dag = load_dag_module()
    sensors = [dag.sensor_id(index) for index in range(dag.WAITS)]
    run_id = f"e2e-two-{airflow.marker[:12]}"
    for name in ("api-server", "scheduler", "dag-processor"):
        airflow.start(name, name)

    def dag_parsed() -> bool | None:
        rows = airflow.query("SELECT dag_id FROM dag WHERE dag_id = ? AND is_paused = 0", dag.DAG_ID)
        return True if rows else None

    airflow.wait_for("the DAG parsed and unpaused", dag_parsed, START_SECONDS)
    airflow.wait_for("the API server", airflow.api_ready, START_SECONDS)

    def run_ended() -> str | None:
        state = airflow.dag_run_state(dag.DAG_ID, run_id)
        return (
            f"the DAG run ended {state} before the resumes ended" if state in ("success", "failed") else None
        )

    # ---------------------------------- 1. the waits defer; two triggerers share them
    airflow.trigger_dag(dag.DAG_ID, run_id)

    def all_deferred() -> dict[str, dict[str, Any]] | None:
        rows = sensor_rows(airflow, dag, run_id)
        deferred = [row for row in rows.values() if row["state"] == "deferred" and row["trigger_id"]]
        return rows if len(deferred) == dag.WAITS else None

    airflow.wait_for("every sensor deferred", all_deferred, STEP_SECONDS, fail_if=run_ended)
    instances = airflow.task_instances(dag.DAG_ID, run_id)
    for cluster in dag.CLUSTERS:
        assert instances[dag.wake_id(cluster)]["state"] == "success"
        assert airflow.xcom(dag.DAG_ID, run_id, dag.wake_id(cluster))["action"] == "connection-nudge"
        assert emulator.status(cluster) == "resuming"

    started_at = {"triggerer-a": time.time()}
    airflow.start(
        "triggerer-a", "triggerer", "--capacity", str(CAPACITY_A), **process_env(emulator, "triggerer-a")
    )

    def held_by(job: int | None, count: int) -> list[str] | None:
        rows = sensor_rows(airflow, dag, run_id)
        held = sorted(task for task, row in rows.items() if job is not None and row["triggerer_id"] == job)
        return held if len(held) == count else None

    def newest_job() -> int | None:
        ids = airflow.triggerer_job_ids()
        return ids[-1] if ids else None

    held_a = airflow.wait_for(
        "triggerer A at its capacity",
        lambda: held_by(newest_job(), CAPACITY_A),
        STEP_SECONDS,
        fail_if=run_ended,
    )
    job_a = airflow.triggerer_job_ids()[0]
    started_at["triggerer-b"] = time.time()
    airflow.start(
        "triggerer-b", "triggerer", "--capacity", str(dag.WAITS), **process_env(emulator, "triggerer-b")
    )
    held_b = airflow.wait_for(
        "triggerer B holding the rest",
        lambda: held_by(newest_job() if newest_job() != job_a else None, dag.WAITS - CAPACITY_A),
        STEP_SECONDS,
        fail_if=run_ended,
    )
    job_b = airflow.triggerer_job_ids()[-1]
    assert job_a != job_b
    # Each wait is assigned to one triggerer; A took the twelve of highest priority, six per cluster.
    assert held_a == sensors[:CAPACITY_A] and held_b == sensors[CAPACITY_A:]
    assert {dag.cluster_of(sensors.index(task)) for task in held_b} == set(dag.CLUSTERS)
    assert held_by(job_a, CAPACITY_A) == held_a  # A never took more than its capacity

    def all_running() -> dict[str, dict[str, Any]] | None:
        rows = sensor_rows(airflow, dag, run_id)
        for row in rows.values():
            job = row["triggerer_id"]
            if job is None or not trigger_started_in(airflow, dag, run_id, row, job):
                return None
        return rows

    before = airflow.wait_for("every trigger running", all_running, STEP_SECONDS, fail_if=run_ended)
    running_at = time.time()
    # ... and runs in that triggerer only.
    for row in before.values():
        other = job_b if row["triggerer_id"] == job_a else job_a
        assert airflow.task_log(dag.DAG_ID, run_id, row["task_id"], 1, triggerer_id=other) is None
    kwargs = {task: airflow.decrypt_trigger_kwargs(row["kwargs"]) for task, row in before.items()}
    assert {task: args["db_cluster_identifier"] for task, args in kwargs.items()} == {
        dag.sensor_id(index): dag.cluster_of(index) for index in range(dag.WAITS)
    }
    assert all(args["deadline"] > time.time() for args in kwargs.values())

    # ----------------------------------------------- 2. both run side by side a while
    airflow.wait_for(
        f"the {OBSERVE_SECONDS:.0f} s observation window, both triggerers up",
        lambda: True if time.time() >= running_at + OBSERVE_SECONDS else None,
        OBSERVE_SECONDS + STEP_SECONDS,
        fail_if=run_ended,
    )
    assert [emulator.status(cluster) for cluster in dag.CLUSTERS] == ["resuming"] * len(dag.CLUSTERS)

    # --------------------------------------------------------------- 3. kill A; B takes over
    airflow.expect_exit("triggerer-a")
    killed_at = time.time()
    airflow.kill("triggerer-a", signal.SIGKILL)
    assert airflow.group_members("triggerer-a") == []
    calls_of_a = describes(emulator, "triggerer-a")
    calls_of_b_at_kill = describes(emulator, "triggerer-b")
    all_calls_of_a = rds_calls(emulator, "triggerer-a")
    heartbeat_a = epoch(
        airflow.query("SELECT latest_heartbeat FROM job WHERE id = ?", job_a)[0]["latest_heartbeat"]
    )

    airflow.wait_for("triggerer B holding every wait", lambda: held_by(job_b, dag.WAITS), STEP_SECONDS)
    taken_over_at = time.time()
    airflow.wait_for(
        "A's triggers running in B",
        lambda: (
            True
            if all(trigger_started_in(airflow, dag, run_id, before[task], job_b) for task in held_a)
            else None
        ),
        STEP_SECONDS,
    )
    running_again_at = time.time()
    threshold = float(airflow.env()["AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD"])
    # Not before Airflow's heartbeat timeout: A's triggers stayed A's until its heartbeat was stale.
    assert taken_over_at >= heartbeat_a + threshold
    after = sensor_rows(airflow, dag, run_id)
    for task, row in after.items():
        assert (row["state"], row["trigger_id"], row["trigger_timeout"]) == (
            "deferred",
            before[task]["trigger_id"],
            before[task]["trigger_timeout"],
        ), task
        assert airflow.decrypt_trigger_kwargs(row["kwargs"]) == kwargs[task], task
    assert [emulator.status(cluster) for cluster in dag.CLUSTERS] == ["resuming"] * len(dag.CLUSTERS)
    calls_of_b_before_wake = describes(emulator, "triggerer-b")
    all_calls_of_b = rds_calls(emulator, "triggerer-b")
    woken_at = time.time()

    # -------------------------------------------- 4. the resumes end; every sensor succeeds
    for cluster in dag.CLUSTERS:
        emulator.wake(cluster)

    def run_finished() -> str | None:
        state = airflow.dag_run_state(dag.DAG_ID, run_id)
        return state if state in ("success", "failed") else None

    assert airflow.wait_for("the DAG run to finish", run_finished, STEP_SECONDS) == "success", (
        airflow.log_tails()
    )
    instances = airflow.task_instances(dag.DAG_ID, run_id)
    assert {task: (row["state"], row["try_number"]) for task, row in instances.items()} == dict.fromkeys(
        instances, ("success", 1)
    )
    assert set(sensors) <= set(instances)
    for index, task in enumerate(sensors):
        ready_at = emulator.ready_at(dag.cluster_of(index))
        assert ready_at is not None and airflow.xcom(dag.DAG_ID, run_id, task)["ready_at"] >= ready_at, task
    # No second wake: one resume per cluster, by the wake task's nudge; nothing asked for more.
    for cluster in dag.CLUSTERS:
        resumes = [event for event in emulator.timeline(cluster) if event.event == "resume-requested"]
        assert [event.detail.get("cause") for event in resumes] == ["connection"], cluster
    totals = emulator.counters()["rds_calls"]
    assert (totals.get("ModifyCurrentDBClusterCapacity", 0), totals.get("StartDBCluster", 0)) == (0, 0)
    # A dead triggerer makes no calls: its key's count stopped at the kill.
    assert describes(emulator, "triggerer-a") == calls_of_a

    # -------------- 2 (checked). RDS calls grow with triggerers x clusters, never with waits
    windows = {"triggerer-a": killed_at, "triggerer-b": woken_at}
    final = {"triggerer-a": calls_of_a, "triggerer-b": calls_of_b_before_wake}
    for name, ended_at in windows.items():
        bound = (ended_at - started_at[name]) / dag.DESCRIBE_INTERVAL + EXTRA_DESCRIBES
        # It polls each cluster it holds waits on, and each about once per interval.
        assert set(final[name]) == set(dag.CLUSTERS), (name, final[name])
        assert all(1 <= count <= bound for count in final[name].values()), (name, final[name], bound)
    # Taking A's twelve waits over added no poller to B: its describes after the kill stay
    # within the same bound, where a poller per wait would have added six per cluster at once.
    bound = (woken_at - killed_at) / dag.DESCRIBE_INTERVAL + EXTRA_DESCRIBES
    added = {
        cluster: calls_of_b_before_wake[cluster] - calls_of_b_at_kill.get(cluster, 0)
        for cluster in dag.CLUSTERS
    }
    assert all(count <= bound for count in added.values()), (added, bound)

    # ------------------------------------------------------------------ 5. the figures
    life = {name: windows[name] - started_at[name] for name in windows}
    everything = {"triggerer-a": all_calls_of_a, "triggerer-b": all_calls_of_b}
    figures = {
        "waits": dag.WAITS,
        "clusters": len(dag.CLUSTERS),
        "describe_interval_s": dag.DESCRIBE_INTERVAL,
        "waits_held": {"triggerer-a": len(held_a), "triggerer-b": f"{len(held_b)}, then {dag.WAITS}"},
        "life_s": {name: round(seconds, 1) for name, seconds in life.items()},
        "rds_calls": everything,
        "rds_calls_per_min": {name: per_minute(everything[name], life[name]) for name in windows},
        "describes_after_takeover": added,
        "heartbeat_threshold_s": threshold,
        "last_heartbeat_to_kill_s": round(killed_at - heartbeat_a, 1),
        "kill_to_takeover_s": round(taken_over_at - killed_at, 1),
        "kill_to_running_again_s": round(running_again_at - killed_at, 1),
        "worker_rds_calls": rds_calls(emulator, "worker"),
    }
    print("two-triggerer figures:", json.dumps(figures, sort_keys=True))

    assert airflow.stop_all() == []
    assert airflow.leftovers() == []
    for name in airflow.processes:
        assert airflow.group_members(name) == [], name

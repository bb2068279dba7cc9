"""The provider's metrics, as a StatsD server receives them from real ``dag.test()`` runs.

Each DAG of tests/dags/metrics_dags.py runs in a child process configured as a user configures
StatsD (``[metrics] statsd_on``, host, port; InfluxDB-style tags on, and an allow list that keeps
Airflow's own metrics out), against the emulator. ``dag.test()`` runs the deferred sensor's
trigger inline, so one run covers the wake operator, the sensor's check before deferring, its
pokes, the trigger, a timeout and a failure in each place that sends metrics.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from airflow_support import AIRFLOW_ENV, SUPERUSERS, TEST_DAGS_FOLDER, task_states_and_xcoms
from statsd_listener import Metric, StatsdListener

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings
from airflow_aurora_wake.utils.metrics import (
    DOTTED_NAME_TAGS,
    ERRORS,
    PROBE_ATTEMPTS,
    TIMEOUTS,
    WAIT_DURATION,
    WAKE_TO_READY,
    WAKES,
)

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

DAGS_FILE = TEST_DAGS_FOLDER / "metrics_dags.py"
PREFIX = "airflow"
#: Longer than the sensor's check before deferring takes on a starting cluster, so ``ready`` defers.
START_SECONDS = 6.0


def _load_dags_module() -> Any:
    spec = importlib.util.spec_from_file_location("metrics_dags", DAGS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: tests/dags/metrics_dags.py: its cluster names and connection ids.
DAGS = _load_dags_module()

_RUN_DAG = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("metrics_dags", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = getattr(module, sys.argv[2]).test()
print("RUN " + json.dumps({"dag_id": run.dag_id, "run_id": run.run_id}))
"""


@dataclass(frozen=True)
class DagRunMetrics:
    """What one ``dag.test()`` run sent, and how its tasks ended.

    :param run_id: The DAG run id.
    :param states: Task id -> final state.
    :param xcoms: Task id -> return value.
    :param metrics: Every metric the StatsD server received.
    """

    run_id: str
    states: dict[str, str]
    xcoms: dict[str, Any]
    metrics: list[Metric]

    def named(self, name: str, **tags: str) -> list[Metric]:
        """The metrics sent under ``name`` (without prefix) whose tags include ``tags``."""
        return [
            metric
            for metric in self.metrics
            if metric.name == f"{PREFIX}.{name}" and tags.items() <= metric.tags.items()
        ]


@pytest.fixture(scope="module")
def emulator(postgres_server: Any) -> Iterator[AuroraEmulator]:
    """The clusters of tests/dags/metrics_dags.py (PostgreSQL behind each)."""
    emu = AuroraEmulator(
        [
            ClusterSpec(DAGS.STARTED, kind="provisioned", state="stopped"),
            ClusterSpec(DAGS.PAUSED, kind="serverless-v2", state="paused"),
            ClusterSpec(DAGS.WARM, kind="provisioned", state="available"),
            ClusterSpec(DAGS.STAYS_STOPPED, kind="provisioned", state="stopped"),
        ],
        timings=Timings(resume_seconds=1.5, start_seconds=START_SECONDS, stop_seconds=1.0),
    )
    emu.start()
    try:
        yield emu
    finally:
        emu.shutdown()


def run_dag(emu: AuroraEmulator, dag_name: str) -> DagRunMetrics:
    """``dag.test()`` of one DAG of metrics_dags.py in a child process that sends to a StatsD server.

    :param emu: The running emulator.
    :param dag_name: ``ready_dag`` or ``failures_dag``.
    """
    aws = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": emu.endpoint_url, "region_name": emu.region},
    }
    database = {"conn_type": "postgres", "login": SUPERUSERS["postgresql"], "schema": "test"}
    with StatsdListener() as listener:
        env = {
            **os.environ,
            **AIRFLOW_ENV,
            **emu.aws_env(),
            f"AIRFLOW_CONN_{DAGS.AWS_CONN_ID.upper()}": json.dumps(aws),
            f"AIRFLOW_CONN_{DAGS.DB_CONN_ID.upper()}": json.dumps(database),
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": PREFIX,
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
            "AIRFLOW__METRICS__METRICS_ALLOW_LIST": "aurora_wake",
        }
        done = subprocess.run(
            [sys.executable, "-c", _RUN_DAG, str(DAGS_FILE), dag_name],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        # The allow list keeps Airflow's own metrics out, but 3.3 matches it anywhere in a name,
        # tags included: only this provider's metrics are looked at.
        metrics = [metric for metric in listener.drain() if metric.name.startswith(f"{PREFIX}.aurora_wake.")]
    run_line = next(line for line in done.stdout.splitlines() if line.startswith("RUN "))
    run = json.loads(run_line[4:])
    states, xcoms = task_states_and_xcoms(run["dag_id"], run["run_id"])
    return DagRunMetrics(run_id=run["run_id"], states=states, xcoms=xcoms, metrics=metrics)


@pytest.fixture(scope="module")
def ready_run(airflow_db: str, emulator: AuroraEmulator) -> DagRunMetrics:
    return run_dag(emulator, "ready_dag")


@pytest.fixture(scope="module")
def failures_run(airflow_db: str, emulator: AuroraEmulator) -> DagRunMetrics:
    return run_dag(emulator, "failures_dag")


def single(metrics: list[Metric]) -> Metric:
    assert len(metrics) == 1, metrics
    return metrics[0]


@pytest.mark.timeout(300)
def test_the_wake_operator_counts_its_request_by_kind_and_action(ready_run: DagRunMetrics) -> None:
    assert ready_run.states["wake"] == "success", ready_run.states
    assert ready_run.xcoms["wake"]["action"] == "start-db-cluster"
    wake = single(ready_run.named(WAKES))
    assert (wake.type, wake.value) == ("c", 1)
    assert wake.tags == {"kind": "provisioned", "action": "start-db-cluster"}
    # Plain StatsD drops tags: the same count under a name that carries them.
    dotted = single(ready_run.named(f"{WAKES}.provisioned.start-db-cluster"))
    assert (dotted.type, dotted.value, dotted.tags) == ("c", 1, {})


@pytest.mark.timeout(300)
def test_a_deferred_wait_is_timed_in_the_trigger_and_from_the_wake(ready_run: DagRunMetrics) -> None:
    assert ready_run.states["ready"] == "success", ready_run.states
    wait = single(ready_run.named(WAIT_DURATION, mode="deferred"))
    assert wait.type == "ms"
    assert wait.tags == {"kind": "provisioned", "probe": "connection", "mode": "deferred"}
    report = ready_run.xcoms["ready"]
    assert wait.value == pytest.approx(report["seconds_waited"] * 1000, abs=1)
    attempts = single(ready_run.named(PROBE_ATTEMPTS, mode="deferred"))
    assert (attempts.type, attempts.value) == ("c", report["attempts"])
    # Wake to ready: from the wake operator's request to the readiness the sensor saw.
    wake_to_ready = single(ready_run.named(WAKE_TO_READY))
    assert wake_to_ready.type == "ms"
    assert wake_to_ready.tags == {"kind": "provisioned", "action": "start-db-cluster"}
    expected = (report["ready_at"] - ready_run.xcoms["wake"]["requested_at"]) * 1000
    assert wake_to_ready.value == pytest.approx(expected, abs=1)
    assert single(ready_run.named(f"{WAKE_TO_READY}.start-db-cluster")).tags == {"kind": "provisioned"}


@pytest.mark.timeout(300)
def test_waits_that_end_in_the_worker_are_timed_by_mode(ready_run: DagRunMetrics) -> None:
    for task_id, kind, mode in [
        ("ready_poke", "serverless-v2", "poke"),
        ("ready_warm", "provisioned", "first-check"),
        ("ready_reschedule", "provisioned", "reschedule"),
    ]:
        assert ready_run.states[task_id] == "success", (task_id, ready_run.states)
        report = ready_run.xcoms[task_id]
        wait = single(ready_run.named(WAIT_DURATION, mode=mode))
        assert wait.tags == {"kind": kind, "probe": "connection", "mode": mode}
        assert wait.value == pytest.approx(report["seconds_waited"] * 1000, abs=1)
        attempts = single(ready_run.named(PROBE_ATTEMPTS, mode=mode))
        assert attempts.value == report["attempts"] >= 1
        assert single(ready_run.named(f"{WAIT_DURATION}.{kind}.{mode}")).tags == {"probe": "connection"}
    # Only the sensor downstream of a wake measures wake-to-ready; no failure was counted.
    assert len(ready_run.named(WAKE_TO_READY)) == 1
    assert not ready_run.named(TIMEOUTS) and not ready_run.named(ERRORS)


@pytest.mark.timeout(300)
def test_timeouts_are_counted_in_the_trigger_and_in_poke_mode(failures_run: DagRunMetrics) -> None:
    assert failures_run.states["timeout_deferred"] == "failed", failures_run.states
    assert failures_run.states["timeout_poke"] == "failed", failures_run.states
    for mode in ("deferred", "poke"):
        timeout = single(failures_run.named(TIMEOUTS, mode=mode))
        assert (timeout.type, timeout.value) == ("c", 1)
        assert timeout.tags == {"probe": "connection", "mode": mode}
        assert single(failures_run.named(f"{TIMEOUTS}.{mode}")).tags == {"probe": "connection"}
    assert len(failures_run.named(TIMEOUTS)) == 2


@pytest.mark.timeout(300)
def test_fail_fast_errors_are_counted_by_class_where_they_happen(failures_run: DagRunMetrics) -> None:
    for task_id in ("wake_ghost", "ready_ghost", "grace_spent_deferred"):
        assert failures_run.states[task_id] == "failed", failures_run.states
    errors = sorted((metric.tags["task"], metric.tags["error_type"]) for metric in failures_run.named(ERRORS))
    # The wake and the check before deferring in the worker, the spent stopped grace in the trigger.
    assert errors == [
        ("ready", "ClusterNotFoundError"),
        ("ready", "ClusterStateError"),
        ("wake", "ClusterNotFoundError"),
    ]
    assert len(failures_run.named(f"{ERRORS}.ClusterNotFoundError")) == 2
    # Nothing ended ready, so nothing was timed.
    assert not failures_run.named(WAIT_DURATION) and not failures_run.named(WAKE_TO_READY)


@pytest.mark.timeout(300)
def test_names_and_tags_stay_bounded(ready_run: DagRunMetrics, failures_run: DagRunMetrics) -> None:
    clusters = (DAGS.STARTED, DAGS.PAUSED, DAGS.WARM, DAGS.STAYS_STOPPED, DAGS.GHOST)
    for run in (ready_run, failures_run):
        assert run.metrics
        for metric in run.metrics:
            # Airflow 2.11 refuses OpenTelemetry names over 63 characters.
            assert len(metric.name) <= 63, metric.line
            bare = metric.name.removeprefix(f"{PREFIX}.")
            name = next(name for name in DOTTED_NAME_TAGS if bare == name or bare.startswith(f"{name}."))
            in_name = DOTTED_NAME_TAGS[name]
            segments = metric.name.removeprefix(f"{PREFIX}.{name}").strip(".")
            # Either the name with every tag, or the dotted name with the tags it does not carry.
            if segments:
                assert len(segments.split(".")) == len(in_name), metric.line
                assert not set(metric.tags) & set(in_name), metric.line
            else:
                assert set(in_name) <= set(metric.tags), metric.line
            assert set(metric.tags) <= {"kind", "action", "probe", "mode", "task", "error_type"}, metric.line
            # No run id and no cluster identifier, in names or tags.
            for value in (run.run_id, *clusters):
                assert value not in metric.line


_SEND_ONE = """
from airflow_aurora_wake.utils.metrics import record_wake
record_wake({"kind": "serverless-v2", "action": "connection-nudge"})
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("legacy_names_on", ["True", "False"])
def test_legacy_names_on_says_whether_dotted_names_are_sent_too(legacy_names_on: str) -> None:
    with StatsdListener() as listener:
        env = {
            **os.environ,
            **AIRFLOW_ENV,
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": PREFIX,
            "AIRFLOW__METRICS__LEGACY_NAMES_ON": legacy_names_on,
        }
        done = subprocess.run(
            [sys.executable, "-c", _SEND_ONE],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        names = sorted(metric.name for metric in listener.drain() if ".aurora_wake." in metric.name)
    # Plain StatsD (no InfluxDB tags): the tagged name arrives bare.
    expected = [f"{PREFIX}.{WAKES}"]
    if legacy_names_on == "True":
        expected.append(f"{PREFIX}.{WAKES}.serverless-v2.connection-nudge")
    assert names == expected

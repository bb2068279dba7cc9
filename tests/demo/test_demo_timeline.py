"""The demo's timeline from the emulator's events and a DAG run's records (pure, no I/O).

The records have the shape the runner reads from Airflow's metadata database after a
``dag.test()`` of the example DAG: task instances with their audit-log state changes and the
trigger row they deferred to, and the tasks' XComs (the sensor's is the trigger's event).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_aurora_wake.demo.timeline import build_steps, render_timeline, sensor_wait
from airflow_aurora_wake.emulator.config import TimelineEvent

T0 = 1_800_000_000.0
TRIGGER = "airflow_aurora_wake.triggers.aurora_serverless.AuroraServerlessReadyTrigger"
# The sensor's check in the worker ends 5.06 s after its start and the trigger fires 9.06 s
# later: each part rounds up (5.1, 9.1) while the true whole (14.12) rounds down, so a whole
# rounded on its own would print 14.1 next to parts that add up to 14.2.
SENSOR_START = T0 + 11.5
DEFERRED = SENSOR_START + 5.06
FIRED = DEFERRED + 9.06
WAIT_LINE = re.compile(
    r"the sensor waited (\d+\.\d) s: (\d+\.\d) s checking in the worker, "
    r"then (\d+\.\d) s deferred in the triggerer \(no worker slot\)"
)


def deferred_sensor() -> dict[str, Any]:
    """The sensor's task instance when it deferred: as Airflow's audit log and trigger row say."""
    return {
        "state": "success",
        "start": SENSOR_START,
        "end": FIRED + 0.3,
        "trigger": {"classpath": TRIGGER, "created": DEFERRED - 0.004},
        "events": [
            ["running", SENSOR_START + 0.01],
            ["deferred", DEFERRED],
            ["running", FIRED + 0.02],
            ["success", FIRED + 0.3],
        ],
    }


def record(**overrides: Any) -> dict[str, Any]:
    tasks = {
        "wake": {"state": "success", "start": T0 + 10, "end": T0 + 11, "trigger": None},
        "ready": deferred_sensor(),
        "read_back": {"state": "success", "start": T0 + 28, "end": T0 + 28.5, "trigger": None},
    }
    xcoms = {
        "wake": {"action": "connection-nudge", "requested_at": T0 + 10.5},
        # The trigger's event: seconds_waited counts from when the trigger began waiting.
        "ready": {"ready_at": FIRED, "seconds_waited": 9.04, "attempts": 2},
        "read_back": [["apples", 3], ["bread", 2], ["coffee", 5]],
    }
    return {
        "tasks": {**tasks, **overrides.get("tasks", {})},
        "xcoms": {**xcoms, **overrides.get("xcoms", {})},
    }


def warm_record() -> dict[str, Any]:
    """A cluster that answered the sensor's first check: no deferral, no trigger row."""
    ready = {
        "state": "success",
        "start": SENSOR_START,
        "end": SENSOR_START + 0.4,
        "trigger": None,
        "events": [["running", SENSOR_START + 0.01], ["success", SENSOR_START + 0.4]],
    }
    report = {"ready_at": SENSOR_START + 0.34, "seconds_waited": 0.3, "attempts": 1}
    return record(tasks={"ready": ready}, xcoms={"ready": report})


EVENTS = [
    TimelineEvent(T0, "created", {}),
    TimelineEvent(T0, "paused", {"by": "initial-state"}),
    TimelineEvent(T0 + 10.6, "resume-requested", {"cause": "connection"}),
    TimelineEvent(T0 + 25.6, "ready", {"by": "resume"}),
]


def whats(steps: Any) -> list[str]:
    return [step.what for step in steps]


def test_steps_tell_the_story_in_time_order() -> None:
    steps = build_steps(EVENTS, record())

    assert [step.what.split(":")[0].split(" (")[0] for step in steps] == [
        "paused",
        "DAG run started",
        "wake requested",
        "resume started",
        "sensor started",
        "sensor deferred after 5.1 s checking in the worker",
        "cluster ready",
        "trigger fired",
        "sensor done",
        "ETL done",
    ]
    assert "resume took 15.0 s" in steps[6].what
    assert "3 rows loaded and read back" in steps[-1].what


def test_the_deferral_is_airflows_deferred_event_and_the_fire_is_the_triggers_event() -> None:
    by_source = {(step.source, step.what.split(":")[0]): step.at for step in build_steps(EVENTS, record())}

    assert by_source[("task ready", "sensor started")] == SENSOR_START
    assert by_source[("task ready", "sensor deferred after 5.1 s checking in the worker")] == DEFERRED
    assert by_source[("triggerer", "trigger fired")] == FIRED
    assert by_source[("task ready", "sensor done")] == FIRED + 0.3


def test_the_sensors_whole_wait_is_its_worker_check_plus_its_deferral() -> None:
    fired = next(step.what for step in build_steps(EVENTS, record()) if step.what.startswith("trigger fired"))

    assert fired.startswith("trigger fired: SELECT 1 succeeded (2 probe attempts in the triggerer); ")
    match = WAIT_LINE.search(fired)
    assert match, fired
    whole, worker, triggerer = (float(number) for number in match.groups())
    assert (worker, triggerer) == (5.1, 9.1)
    assert whole == pytest.approx(worker + triggerer)
    # Not the trigger's own seconds_waited (9.04 s, from when the trigger began waiting).
    assert "9.0 s" not in fired


def test_the_resumed_sensors_finish_is_measured_from_the_event() -> None:
    done = [what for what in whats(build_steps(EVENTS, record())) if what.startswith("sensor done")]

    assert done == ["sensor done: resumed in the worker 0.0 s after the event, finished 0.3 s after it"]


def test_the_deferral_is_named_with_the_trigger_airflow_recorded() -> None:
    deferred = next(what for what in whats(build_steps(EVENTS, record())) if "deferred after" in what)

    assert deferred == (
        "sensor deferred after 5.1 s checking in the worker: worker slot released, "
        "AuroraServerlessReadyTrigger waits in the triggerer"
    )


def test_without_an_audit_event_the_trigger_rows_creation_marks_the_deferral() -> None:
    sensor = {**deferred_sensor(), "events": []}

    wait = sensor_wait(sensor, {"ready_at": FIRED})

    assert wait is not None and wait.deferred
    assert wait.deferred_at == DEFERRED - 0.004
    assert wait.resumed_at is None


def test_a_warm_cluster_is_ready_at_the_first_check_without_deferral() -> None:
    steps = build_steps(EVENTS, warm_record())

    assert (
        "sensor ready at the first check in the worker, no deferral: SELECT 1 succeeded 0.3 s after "
        "the sensor started"
    ) in whats(steps)
    assert not any("deferred" in what.replace("no deferral", "") for what in whats(steps))
    assert not any(what.startswith(("trigger fired", "sensor done")) for what in whats(steps))


def test_no_claim_about_a_deferral_when_airflow_recorded_none_either_way() -> None:
    sensor = {**deferred_sensor(), "trigger": None}
    del sensor["events"]

    steps = build_steps(EVENTS, record(tasks={"ready": sensor}))

    assert (
        "sensor ready: SELECT 1 succeeded 14.1 s after the sensor started (Airflow's records do not "
        "say whether it deferred)"
    ) in whats(steps)
    assert not any("no deferral" in what or "deferred after" in what for what in whats(steps))


def test_a_sensor_that_failed_after_deferring_shows_the_deferral_and_the_failure() -> None:
    sensor = {**deferred_sensor(), "state": "failed", "events": deferred_sensor()["events"][:2]}
    failed = record(tasks={"ready": sensor, "read_back": {"state": "upstream_failed", "end": None}})
    del failed["xcoms"]["ready"]

    steps = whats(build_steps(EVENTS, failed))

    assert any(what.startswith("sensor deferred after 5.1 s") for what in steps)
    assert "task ready failed" in steps
    assert not any(what.startswith(("trigger fired", "sensor done", "ETL done")) for what in steps)


def test_a_failed_task_replaces_the_etl_line() -> None:
    failed = record(tasks={"read_back": {"state": "failed", "start": T0 + 28, "end": T0 + 29}})

    steps = whats(build_steps(EVENTS, failed))

    assert "task read_back failed" in steps
    assert not any(what.startswith("ETL done") for what in steps)


def test_render_shows_seconds_since_start_and_since_previous() -> None:
    lines = render_timeline("title", build_steps(EVENTS, record()))

    assert lines[0] == "title"
    assert lines[2].split()[:2] == ["0.0s", "+0.0s"]
    wake = next(line for line in lines if "wake requested" in line)
    assert wake.split()[:2] == ["10.5s", "+0.5s"]
    deferred = next(line for line in lines if "sensor deferred" in line)
    assert deferred.split()[:2] == ["16.6s", "+5.1s"]

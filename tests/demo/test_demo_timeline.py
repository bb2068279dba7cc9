"""The demo's timeline from the emulator's events and a DAG run's records (pure, no I/O)."""

from __future__ import annotations

from typing import Any

from airflow_aurora_wake.demo.timeline import build_steps, render_timeline
from airflow_aurora_wake.emulator.config import TimelineEvent

T0 = 1_800_000_000.0


def record(**overrides: Any) -> dict[str, Any]:
    tasks = {
        "wake": {"state": "success", "start": T0 + 10, "end": T0 + 11},
        "ready": {"state": "success", "start": T0 + 11.5, "end": T0 + 27},
        "read_back": {"state": "success", "start": T0 + 28, "end": T0 + 28.5},
    }
    xcoms = {
        "wake": {"action": "connection-nudge", "requested_at": T0 + 10.5},
        "ready": {"ready_at": T0 + 26, "seconds_waited": 14.5, "attempts": 2},
        "read_back": [["apples", 3], ["bread", 2], ["coffee", 5]],
    }
    return {
        "tasks": {**tasks, **overrides.get("tasks", {})},
        "xcoms": {**xcoms, **overrides.get("xcoms", {})},
    }


EVENTS = [
    TimelineEvent(T0, "created", {}),
    TimelineEvent(T0, "paused", {"by": "initial-state"}),
    TimelineEvent(T0 + 10.6, "resume-requested", {"cause": "connection"}),
    TimelineEvent(T0 + 25.6, "ready", {"by": "resume"}),
]


def test_steps_tell_the_story_in_time_order() -> None:
    steps = build_steps(EVENTS, record(), deferred_at=T0 + 12)

    assert [step.what.split(":")[0].split(" (")[0] for step in steps] == [
        "paused",
        "DAG run started",
        "wake requested",
        "resume started",
        "sensor deferred",
        "cluster ready",
        "sensor",
        "ETL done",
    ]
    assert "resume took 15.0 s" in steps[5].what
    assert "3 rows loaded and read back" in steps[-1].what


def test_no_deferral_line_when_the_sensor_did_not_defer() -> None:
    assert not any("deferred" in step.what for step in build_steps(EVENTS, record()))


def test_a_failed_task_replaces_the_etl_line() -> None:
    failed = record(tasks={"read_back": {"state": "failed", "start": T0 + 28, "end": T0 + 29}})

    whats = [step.what for step in build_steps(EVENTS, failed)]

    assert "task read_back failed" in whats
    assert not any(what.startswith("ETL done") for what in whats)


def test_render_shows_seconds_since_start_and_since_previous() -> None:
    lines = render_timeline("title", build_steps(EVENTS, record()))

    assert lines[0] == "title"
    assert lines[2].split()[:2] == ["0.0s", "+0.0s"]
    wake = next(line for line in lines if "wake requested" in line)
    assert wake.split()[:2] == ["10.5s", "+0.5s"]

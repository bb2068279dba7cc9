"""The warm window's timeline from the emulator's events and a window DAG run's records (pure, no I/O).

The records have the shape the runner reads from Airflow's metadata database after a
``dag.test()`` of ``example_aurora_warm_window``: the window's task instances (``warm.hold``,
``warm.ready``, ``warm.hold_floor``, the ETL, ``warm.release``) and their XComs; the events are
the emulator's: the hold's scaling change, the resume it asked for, the release's scaling
change, the pause after the idle time.
"""

from __future__ import annotations

from typing import Any

from airflow_aurora_wake.demo.timeline import render_timeline
from airflow_aurora_wake.demo.watch import describe_event
from airflow_aurora_wake.demo.window_timeline import (
    floor_during,
    floor_raised,
    floor_restored,
    paused_after_window,
    scaling_change_text,
    window_steps,
)
from airflow_aurora_wake.emulator.config import TimelineEvent

T0 = 1_800_000_000.0
IDLE = 10
ORIGINAL = {"min_capacity": 0.0, "max_capacity": 4.0, "seconds_until_auto_pause": IDLE}
HELD = {"min_capacity": 4.0, "max_capacity": 8.0, "seconds_until_auto_pause": IDLE}
HOLD_START, RAISED, READY = T0 + 10, T0 + 10.4, T0 + 12.4
ETL_START, ETL_END = T0 + 13.2, T0 + 14.5
RELEASE_START, RESTORED, RELEASE_END = T0 + 14.7, T0 + 15.0, T0 + 15.2
PAUSED_AGAIN, CHECKED = RESTORED + IDLE, RESTORED + IDLE + 0.5
HOLD_TAG = "aurora-wake:hold:example_aurora_warm_window.0123456789abcdef"


def events(*extra: TimelineEvent, cause: str = "modify-db-cluster") -> list[TimelineEvent]:
    """The emulator's timeline of a window on a paused cluster (``extra`` sorted in)."""
    story = [
        TimelineEvent(T0, "created", {}),
        TimelineEvent(T0, "paused", {"by": "initial-state"}),
        TimelineEvent(
            RAISED, "scaling-changed", {"cause": "modify-db-cluster", "before": ORIGINAL, "after": HELD}
        ),
        TimelineEvent(RAISED, "resume-requested", {"cause": cause, "ready_expected_at": READY}),
        TimelineEvent(READY, "ready", {"by": "resume"}),
        TimelineEvent(
            RESTORED, "scaling-changed", {"cause": "modify-db-cluster", "before": HELD, "after": ORIGINAL}
        ),
        TimelineEvent(PAUSED_AGAIN, "auto-paused", {"idle_seconds": IDLE}),
        *extra,
    ]
    return sorted(story, key=lambda event: event.at)


def task(start: float, end: float, state: str = "success") -> dict[str, Any]:
    return {"state": state, "start": start, "end": end, "trigger": None, "events": [["running", start]]}


def record(tasks: dict[str, Any] | None = None, xcoms: dict[str, Any] | None = None) -> dict[str, Any]:
    """A successful window DAG run; ``tasks`` / ``xcoms`` replace single entries."""
    base_tasks = {
        "warm.hold": task(HOLD_START, HOLD_START + 0.6),
        "warm.ready": {**task(T0 + 11, T0 + 12.6), "events": [["running", T0 + 11], ["success", T0 + 12.6]]},
        "warm.hold_floor": task(T0 + 12.7, T0 + 13.0),
        "warm.create_table": task(ETL_START, T0 + 13.6),
        "warm.load_rows": task(T0 + 13.7, T0 + 14.0),
        "warm.read_back": task(T0 + 14.1, ETL_END),
        "warm.release": task(RELEASE_START, RELEASE_END),
    }
    base_xcoms = {
        "warm.hold": {"min_capacity": 4.0, "since": HOLD_START, "until": HOLD_START + 7200, "holds": 1},
        "warm.ready": {"ready_at": T0 + 12.5, "seconds_waited": 1.5, "attempts": 1},
        "warm.hold_floor": {
            "min_capacity": 4.0,
            "since": HOLD_START,
            "until": T0 + 12.7 + 7200,
            "holds": 1,
            "scaling": {"min_capacity": 4.0, "max_capacity": 8.0, "seconds_until_auto_pause": None},
        },
        "warm.read_back": [["apples", 3], ["bread", 2], ["coffee", 5]],
        "warm.release": {
            "released": True,
            "held_seconds": 5.0,
            "min_capacity": 4.0,
            "acu_hours": 0.0056,
            "restored": True,
            "holds": 0,
        },
    }
    return {"tasks": {**base_tasks, **(tasks or {})}, "xcoms": {**base_xcoms, **(xcoms or {})}}


def whats(steps: Any) -> list[str]:
    return [step.what for step in steps]


def test_the_window_tells_its_story_in_time_order() -> None:
    steps = window_steps(events(), record(), holds_left={}, checked_at=CHECKED)

    assert [(step.what.split(":")[0].split(" (")[0], step.source) for step in steps] == [
        ("paused", "emulator"),
        ("DAG run started", "Airflow"),
        ("floor raised by the hold", "emulator"),
        ("resume started by the scaling change", "emulator"),
        ("sensor started", "task warm.ready"),
        ("cluster ready", "emulator"),
        ("sensor ready at the first check in the worker, no deferral", "task warm.ready"),
        ("floor held for the ETL", "task warm.hold_floor"),
        ("ETL done", "SQL tasks"),
        ("floor restored by the release", "emulator"),
        ("window released", "task warm.release"),
        ("paused again after 10 s idle", "emulator"),
        ("no hold left", "RDS tags"),
    ]
    assert [step.at for step in steps][-4:] == [RESTORED, RELEASE_END, PAUSED_AGAIN, CHECKED]


def test_each_line_says_what_the_window_did() -> None:
    said = whats(window_steps(events(), record(), holds_left={}, checked_at=CHECKED))

    assert said[1] == "DAG run started (task warm.hold, a setup task)"
    assert said[2] == (
        "floor raised by the hold: MinCapacity 0 -> 4 ACUs, MaxCapacity 4 -> 8 ACUs (ModifyDBCluster); "
        "the hold tag expires by itself in 120 min"
    )
    assert said[3] == "resume started by the scaling change (ModifyDBCluster), not by a connection"
    assert said[5] == "cluster ready: accepts connections (resume took 2.0 s)"
    assert said[7] == (
        "floor held for the ETL: MinCapacity 4 ACUs, MaxCapacity 8 ACUs (1 live hold(s); hold renewed)"
    )
    assert said[8] == (
        "ETL done: table created, 3 rows loaded and read back, the floor held throughout "
        "(MinCapacity 4 ACUs, no pause)"
    )
    assert said[9] == (
        "floor restored by the release: MinCapacity 4 -> 0 ACUs, MaxCapacity 8 -> 4 ACUs, auto-pause "
        "after 10 s idle (ModifyDBCluster)"
    )
    assert said[10] == (
        "window released (teardown): 5.0 s held at a floor of 4 ACUs, cost 0.0056 ACU-hours; the "
        "cluster's own scaling is back"
    )
    assert said[11] == "paused again after 10 s idle (SecondsUntilAutoPause): the window is over"
    assert said[12] == "no hold left: no aurora-wake:hold: tag on the cluster"


def test_a_resume_by_a_connection_is_not_told_as_the_scaling_change() -> None:
    said = whats(window_steps(events(cause="connection"), record()))

    assert "resume started (by a connection)" in said
    assert not any("by the scaling change" in what for what in said)


def test_a_floor_lowered_during_the_etl_is_told_as_not_held() -> None:
    lowered = {**HELD, "min_capacity": 0.5}
    dropped = TimelineEvent(
        T0 + 13.8, "scaling-changed", {"cause": "modify-db-cluster", "before": HELD, "after": lowered}
    )

    etl = next(what for what in whats(window_steps(events(dropped), record())) if what.startswith("ETL done"))

    assert etl.endswith(", but the floor of 4 ACUs was NOT held throughout (MinCapacity down to 0.5 ACUs)")


def test_a_pause_during_the_etl_is_told_as_not_held() -> None:
    pause = TimelineEvent(T0 + 13.9, "auto-paused", {"idle_seconds": IDLE})

    during = floor_during(events(pause), ETL_START, ETL_END)

    assert during.paused and during.lowest == 4.0 and not during.held(4.0)
    assert floor_during(events(), ETL_START, ETL_END).held(4.0)


def test_the_pause_before_the_window_is_not_the_pause_after_it() -> None:
    before_release = [event for event in events() if event.event != "auto-paused"]

    assert paused_after_window(before_release) is None
    assert not any(what.startswith("paused again") for what in whats(window_steps(before_release, record())))
    again = paused_after_window(events())
    assert again is not None and again.at == PAUSED_AGAIN
    # Not before the floor is restored: a pause while held is no pause after the window.
    early = TimelineEvent(T0 + 13.9, "auto-paused", {"idle_seconds": IDLE})
    assert paused_after_window(sorted([*events()[:-1], early], key=lambda event: event.at)) is None


def test_the_hold_and_release_are_told_apart_by_what_they_changed() -> None:
    raised, restored = floor_raised(events()), floor_restored(events())

    assert raised is not None and raised.at == RAISED
    assert restored is not None and restored.at == RESTORED
    # No raise, so nothing restored either: a lowered maximum alone is neither.
    only_max = TimelineEvent(
        RAISED, "scaling-changed", {"before": ORIGINAL, "after": {**ORIGINAL, "max_capacity": 2}}
    )
    assert floor_raised([only_max]) is None and floor_restored([only_max]) is None


def test_without_task_starts_the_window_is_still_told_from_the_emulator() -> None:
    # Airflow 2.11's dag.test() records no task start: only the audit log's success and the end.
    tasks = {
        task_id: {**task, "start": None, "events": [["success", task["end"]]]}
        for task_id, task in record()["tasks"].items()
    }

    said = whats(window_steps(events(), record(tasks=tasks), holds_left={}, checked_at=CHECKED))

    assert not any(what.startswith(("DAG run started", "sensor started")) for what in said)
    for start in ("floor raised by the hold", "resume started by the scaling change", "floor restored by",
                  "window released", "paused again after 10 s idle", "no hold left"):  # fmt: skip
        assert any(what.startswith(start) for what in said), (start, said)
    etl = next(what for what in said if what.startswith("ETL done"))
    assert etl.endswith("the floor held throughout (MinCapacity 4 ACUs, no pause)")


def test_a_hold_left_behind_is_named_with_its_tag() -> None:
    left = {HOLD_TAG: "min=4 max=8 since=1800000010 until=1800007210 orig=0/4/10 started=0"}

    said = whats(window_steps(events(), record(), holds_left=left, checked_at=CHECKED))

    assert said[-1] == (
        f"hold left behind: {HOLD_TAG} (min=4 max=8 since=1800000010 until=1800007210 orig=0/4/10 started=0)"
    )
    assert not any(what.startswith("no hold left") for what in said)


def test_holds_not_read_make_no_claim() -> None:
    said = whats(window_steps(events(), record()))

    assert not any("hold left" in what for what in said)


def test_a_failed_etl_still_shows_the_release_that_ran_as_teardown() -> None:
    failed = record(tasks={"warm.read_back": task(T0 + 14.1, ETL_END, "failed")})
    del failed["xcoms"]["warm.read_back"]

    said = whats(window_steps(events(), failed, holds_left={}, checked_at=CHECKED))

    assert "task warm.read_back failed" in said
    assert not any(what.startswith("ETL done") for what in said)
    assert any(what.startswith("floor restored by the release") for what in said)
    assert any(what.startswith("window released (teardown)") for what in said)


def test_a_failed_release_says_the_hold_stays_until_it_expires() -> None:
    failed = record(tasks={"warm.release": task(RELEASE_START, RELEASE_END, "failed")})
    del failed["xcoms"]["warm.release"]
    kept = [event for event in events() if event.at < RESTORED]

    said = whats(window_steps(kept, failed))

    assert "task warm.release failed: the hold stays until it expires" in said
    assert not any(what.startswith(("floor restored", "window released", "paused again")) for what in said)


def test_scaling_change_text_names_only_what_changed() -> None:
    only_max = {"before": ORIGINAL, "after": {**ORIGINAL, "max_capacity": 16.0}}

    assert scaling_change_text(only_max) == "MaxCapacity 4 -> 16 ACUs, auto-pause after 10 s idle"
    assert scaling_change_text({"before": ORIGINAL, "after": HELD}) == (
        "MinCapacity 0 -> 4 ACUs, MaxCapacity 4 -> 8 ACUs"
    )


def test_the_live_lines_name_the_scaling_change_its_resume_and_the_pause_again() -> None:
    raised, resume, restored, paused = (
        event for event in events() if event.event in ("scaling-changed", "resume-requested", "auto-paused")
    )

    assert describe_event(raised) == (
        "scaling changed (ModifyDBCluster): MinCapacity 0 -> 4 ACUs, MaxCapacity 4 -> 8 ACUs"
    )
    assert describe_event(resume) == (
        "resume requested by the scaling change (ModifyDBCluster), not by a connection, ready in 2 s"
    )
    assert describe_event(restored) == (
        "scaling changed (ModifyDBCluster): MinCapacity 4 -> 0 ACUs, MaxCapacity 8 -> 4 ACUs, auto-pause "
        "after 10 s idle"
    )
    assert describe_event(paused) == "paused again after 10 s idle (SecondsUntilAutoPause)"
    assert describe_event(TimelineEvent(T0, "resume-requested", {"cause": "connection"})) == (
        "resume requested (by a connection)"
    )


def test_render_measures_the_idle_time_from_the_restored_floor() -> None:
    lines = render_timeline("title", window_steps(events(), record(), holds_left={}, checked_at=CHECKED))

    again = next(line for line in lines if "paused again" in line)
    released = next(line for line in lines if "window released" in line)
    assert released.split()[:2] == ["15.2s", "+0.2s"]
    assert again.split()[:2] == ["25.0s", "+9.8s"]

"""The warm window's story: one timeline per cluster for ``example_aurora_warm_window``.

From the emulator's timeline (``scaling-changed`` with the scaling before and after,
``resume-requested`` with its cause, ``ready``, ``auto-paused``), Airflow's records of the
window's tasks (``warm.hold``, ``warm.ready``, ``warm.hold_floor``, the ETL, ``warm.release``
and their XComs) and the hold tags left on the cluster at the end. It tells: the resume asked
for by the hold's scaling change, the floor held while the ETL ran, the floor restored by the
release and what the window cost, the cluster pausing again after its idle time, and whether a
hold was left behind.

Pure functions over plain data (no Airflow, no emulator import), like
:mod:`~airflow_aurora_wake.demo.timeline`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_aurora_wake.core.hold.ledger import HOLD_TAG_PREFIX
from airflow_aurora_wake.demo.timeline import (
    ETL_TASKS,
    Step,
    etl_steps,
    paused_step,
    resume_steps,
    sensor_steps,
)

#: The example DAG's window: its task group id.
GROUP = "warm"
#: The emulator's events for a pause: the initial state, and the pause after the idle time.
PAUSE_EVENTS = ("paused", "auto-paused")
#: Where the timeline reads the holds left on the cluster.
TAGS_SOURCE = "RDS tags"


def _acus(value: Any) -> str:
    return f"{float(value):g}"


def scaling_change_text(detail: Mapping[str, Any]) -> str:
    """``MinCapacity 0 -> 4 ACUs, MaxCapacity 4 -> 8 ACUs``: what a ``scaling-changed`` event changed.

    :param detail: The event's detail (``before`` and ``after``, each with ``min_capacity``,
        ``max_capacity`` and ``seconds_until_auto_pause``).
    """
    before = detail.get("before") or {}
    after = detail.get("after") or {}
    parts = [
        f"{label} {_acus(before.get(key, 0))} -> {_acus(after.get(key, 0))} ACUs"
        for label, key in (("MinCapacity", "min_capacity"), ("MaxCapacity", "max_capacity"))
        if before.get(key) != after.get(key)
    ]
    idle = after.get("seconds_until_auto_pause")
    if after.get("min_capacity") == 0 and idle is not None:
        parts.append(f"auto-pause after {idle} s idle")
    return ", ".join(parts) if parts else "SecondsUntilAutoPause only"


def scaling_at(events: Sequence[Any], at: float) -> dict[str, Any] | None:
    """The Serverless v2 scaling in force at ``at``, from the ``scaling-changed`` events.

    :param events: The cluster's emulator timeline.
    :param at: Epoch seconds.
    :returns: The scaling (``min_capacity``...), or ``None`` when no event says (none changed it).
    """
    changes = [event for event in events if event.event == "scaling-changed"]
    if not changes:
        return None
    scaling: dict[str, Any] = dict(changes[0].detail.get("before") or {})
    for event in changes:
        if event.at <= at:
            scaling = dict(event.detail.get("after") or {})
    return scaling


@dataclass(frozen=True)
class FloorDuring:
    """What the cluster's floor did over an interval (the ETL).

    :param lowest: The lowest ``MinCapacity`` in force (``None``: no scaling was recorded).
    :param paused: Whether the cluster paused in the interval.
    """

    lowest: float | None
    paused: bool

    def held(self, floor: float) -> bool:
        """Whether ``floor`` ACUs were held throughout, without a pause.

        :param floor: The floor the window asked for.
        """
        return self.lowest is not None and self.lowest >= floor and not self.paused


def floor_during(events: Sequence[Any], start: float, end: float) -> FloorDuring:
    """The lowest ``MinCapacity`` in force from ``start`` to ``end``, and whether the cluster paused.

    :param events: The cluster's emulator timeline.
    :param start: Epoch seconds (the ETL's first task's start).
    :param end: Epoch seconds (its last task's end).
    """
    minimums = [scaling_at(events, start)] + [
        event.detail.get("after")
        for event in events
        if event.event == "scaling-changed" and start < event.at <= end
    ]
    known = [float(scaling["min_capacity"]) for scaling in minimums if scaling and "min_capacity" in scaling]
    paused = any(event.event in PAUSE_EVENTS and start <= event.at <= end for event in events)
    return FloorDuring(lowest=min(known) if known else None, paused=paused)


def _minimum(scaling: Mapping[str, Any] | None) -> float:
    return float((scaling or {}).get("min_capacity") or 0)


def floor_raised(events: Sequence[Any]) -> Any | None:
    """The first ``scaling-changed`` event that raised ``MinCapacity`` (the hold), or ``None``.

    The events are told apart by what they changed, not by the tasks' times: Airflow 2.11's
    ``dag.test()`` records no task start.

    :param events: The cluster's emulator timeline.
    """
    return next(
        (
            event
            for event in events
            if event.event == "scaling-changed"
            and _minimum(event.detail.get("after")) > _minimum(event.detail.get("before"))
        ),
        None,
    )


def floor_restored(events: Sequence[Any]) -> Any | None:
    """The first ``scaling-changed`` event after the hold's that lowered ``MinCapacity`` (the release).

    :param events: The cluster's emulator timeline.
    """
    raised = floor_raised(events)
    if raised is None:
        return None
    return next(
        (
            event
            for event in events
            if event.event == "scaling-changed"
            and event.at >= raised.at
            and _minimum(event.detail.get("after")) < _minimum(event.detail.get("before"))
        ),
        None,
    )


def paused_after_window(events: Sequence[Any]) -> Any | None:
    """The cluster's first pause after the release restored its floor, or ``None``.

    :param events: The cluster's emulator timeline.
    """
    restored = floor_restored(events)
    if restored is None:
        return None
    return next((event for event in events if event.event in PAUSE_EVENTS and event.at >= restored.at), None)


def _began(task: Mapping[str, Any]) -> float | None:
    """A task's start; else its first audit event, else its end (Airflow 2.11's ``dag.test()``
    records no start)."""
    if task.get("start") is not None:
        return float(task["start"])
    events = task.get("events") or []
    if events and events[0][1] is not None:
        return float(events[0][1])
    return float(task["end"]) if task.get("end") is not None else None


def _etl_floor(events: Sequence[Any], tasks: Mapping[str, Any], floor: Any) -> str:
    """``, the floor held throughout (...)``: what the floor did while the ETL ran (``ETL done``)."""
    first = _began(tasks.get(f"{GROUP}.{ETL_TASKS[0]}", {}))
    last = tasks.get(f"{GROUP}.{ETL_TASKS[-1]}", {}).get("end")
    if first is None or last is None or floor is None:
        return ""
    during = floor_during(events, first, last)
    if during.held(float(floor)):
        return f", the floor held throughout (MinCapacity {_acus(during.lowest)} ACUs, no pause)"
    fell = f"MinCapacity down to {_acus(during.lowest)} ACUs" if during.lowest is not None else "no scaling"
    return f", but the floor of {_acus(floor)} ACUs was NOT held throughout ({fell}" + (
        ", the cluster paused)" if during.paused else ")"
    )


def window_steps(
    events: Sequence[Any],
    record: dict[str, Any],
    *,
    holds_left: Mapping[str, str] | None = None,
    checked_at: float | None = None,
) -> list[Step]:
    """Put the emulator's events, the window DAG run's records and the holds left on one time line.

    :param events: The cluster's emulator timeline (objects with ``at``, ``event``, ``detail``).
    :param record: The runner's record of the DAG run (``tasks``, ``xcoms``).
    :param holds_left: The cluster's hold tags at the end, key to value (``None``: not read).
    :param checked_at: When they were read (epoch seconds).
    """
    tasks: dict[str, Any] = record.get("tasks", {})
    xcoms: dict[str, Any] = record.get("xcoms", {})
    hold_id, floor_id, release_id = (f"{GROUP}.{task}" for task in ("hold", "hold_floor", "release"))
    steps: list[Step] = []
    paused_line, paused = paused_step(events)
    if paused_line is not None:
        steps.append(paused_line)
    hold_task = tasks.get(hold_id, {})
    if hold_task.get("start") is not None:
        steps.append(Step(hold_task["start"], f"DAG run started (task {hold_id}, a setup task)", "Airflow"))
    hold = xcoms.get(hold_id) or {}
    raised = floor_raised(events)
    if raised is not None:
        expires = ""
        if hold.get("until") is not None and hold.get("since") is not None:
            expires = f"; the hold tag expires by itself in {(hold['until'] - hold['since']) / 60:.0f} min"
        what = f"floor raised by the hold: {scaling_change_text(raised.detail)} (ModifyDBCluster){expires}"
        steps.append(Step(raised.at, what, "emulator"))
    steps.extend(resume_steps(events, paused))
    ready_id = f"{GROUP}.ready"
    steps.extend(sensor_steps(tasks.get(ready_id, {}), xcoms.get(ready_id) or {}, f"task {ready_id}"))
    held = xcoms.get(floor_id) or {}
    floor_task = tasks.get(floor_id, {})
    scaling = held.get("scaling") or {}
    if floor_task.get("state") == "success" and floor_task.get("end") is not None and scaling:
        steps.append(
            Step(
                floor_task["end"],
                f"floor held for the ETL: MinCapacity {_acus(scaling.get('min_capacity'))} ACUs, MaxCapacity "
                f"{_acus(scaling.get('max_capacity'))} ACUs ({held.get('holds')} live hold(s); hold renewed)",
                f"task {floor_id}",
            )
        )
    floor = held.get("min_capacity", hold.get("min_capacity"))
    steps.extend(etl_steps(tasks, xcoms, prefix=f"{GROUP}.", floor=_etl_floor(events, tasks, floor)))
    release_task = tasks.get(release_id, {})
    if release_task:
        restored = floor_restored(events)
        if restored is not None:
            what = f"floor restored by the release: {scaling_change_text(restored.detail)} (ModifyDBCluster)"
            steps.append(Step(restored.at, what, "emulator"))
        steps.extend(_release_steps(release_task, xcoms.get(release_id) or {}, release_id))
        again = paused_after_window(events)
        if again is not None:
            idle = (again.detail or {}).get("idle_seconds")
            after = f" after {idle} s idle (SecondsUntilAutoPause)" if idle is not None else ""
            steps.append(Step(again.at, f"paused again{after}: the window is over", "emulator"))
    if holds_left is not None and checked_at is not None:
        steps.append(_holds_step(holds_left, checked_at))
    # Stable sort: steps at the same instant keep the story's order.
    return sorted(steps, key=lambda step: step.at)


def _release_steps(task: Mapping[str, Any], released: Mapping[str, Any], task_id: str) -> list[Step]:
    """The release's line: what the window cost; or that it did not succeed."""
    if task.get("end") is None:
        return []
    if task.get("state") != "success":
        return [
            Step(
                task["end"], f"task {task_id} {task.get('state')}: the hold stays until it expires", "Airflow"
            )
        ]
    if not released.get("released"):
        return [
            Step(task["end"], "window released: no hold of this run was left to release", f"task {task_id}")
        ]
    restored = (
        "the cluster's own scaling is back"
        if released.get("restored")
        else (f"{released.get('holds')} other live hold(s) keep a floor")
    )
    return [
        Step(
            task["end"],
            f"window released (teardown): {float(released.get('held_seconds', 0)):.1f} s held at a floor of "
            f"{_acus(released.get('min_capacity', 0))} ACUs, cost {released.get('acu_hours')} ACU-hours; "
            f"{restored}",
            f"task {task_id}",
        )
    ]


def _holds_step(holds_left: Mapping[str, str], checked_at: float) -> Step:
    if not holds_left:
        return Step(checked_at, f"no hold left: no {HOLD_TAG_PREFIX} tag on the cluster", TAGS_SOURCE)
    left = ", ".join(f"{key} ({value})" for key, value in sorted(holds_left.items()))
    return Step(checked_at, f"hold left behind: {left}", TAGS_SOURCE)

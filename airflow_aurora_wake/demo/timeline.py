"""The demo's story: one timeline per cluster, from the emulator's timeline and Airflow's records.

Pure functions over plain data (no Airflow, no emulator import), so the wording is tested
without running anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

KIND_NAMES = {
    "serverless-v2": "Aurora Serverless v2",
    "serverless-v1": "Aurora Serverless v1",
    "provisioned": "provisioned Aurora",
}
ENGINE_NAMES = {"aurora-postgresql": "PostgreSQL", "aurora-mysql": "MySQL"}
ETL_TASKS = ("create_table", "load_rows", "read_back")


@dataclass(frozen=True)
class Step:
    """One line of a timeline.

    :param at: Epoch seconds.
    :param what: What happened, one short phrase.
    :param source: Where it was read (``emulator``, ``task wake``...).
    """

    at: float
    what: str
    source: str


def _event(events: Sequence[Any], name: str, after: float | None = None) -> Any | None:
    for event in events:
        if event.event == name and (after is None or event.at >= after):
            return event
    return None


def build_steps(
    events: Sequence[Any], record: dict[str, Any], *, deferred_at: float | None = None
) -> list[Step]:
    """Put the emulator's events and the DAG run's records on one time line.

    :param events: The cluster's emulator timeline (objects with ``at``, ``event``, ``detail``).
    :param record: The runner's record of the DAG run (``tasks``, ``xcoms``).
    :param deferred_at: When the demo saw the sensor's task instance ``deferred``, if it did.
    """
    tasks: dict[str, Any] = record.get("tasks", {})
    xcoms: dict[str, Any] = record.get("xcoms", {})
    steps: list[Step] = []
    paused = _event(events, "paused")
    if paused is not None:
        steps.append(Step(paused.at, 'paused (RDS says "available": status is not readiness)', "emulator"))
    wake_task = tasks.get("wake", {})
    if wake_task.get("start") is not None:
        steps.append(Step(wake_task["start"], "DAG run started (task wake)", "Airflow"))
    wake = xcoms.get("wake") or {}
    if wake.get("requested_at") is not None:
        steps.append(Step(wake["requested_at"], f"wake requested: {wake.get('action')}", "task wake"))
    resume = _event(events, "resume-requested", after=paused.at if paused else None)
    if resume is not None:
        cause = (resume.detail or {}).get("cause", "?")
        steps.append(Step(resume.at, f"resume started (by a {cause})", "emulator"))
    if deferred_at is not None:
        steps.append(
            Step(deferred_at, "sensor deferred: waiting in the triggerer, no worker slot", "task ready")
        )
    ready_event = _event(events, "ready", after=resume.at if resume else None)
    if ready_event is not None:
        took = f" (resume took {ready_event.at - resume.at:.1f} s)" if resume else ""
        steps.append(Step(ready_event.at, f"cluster ready: accepts connections{took}", "emulator"))
    ready = xcoms.get("ready") or {}
    if ready.get("ready_at") is not None:
        steps.append(
            Step(
                ready["ready_at"],
                f"sensor: SELECT 1 succeeded after {ready.get('seconds_waited', 0):.1f} s, "
                f"{ready.get('attempts')} attempt(s)",
                "task ready",
            )
        )
    last_etl = tasks.get(ETL_TASKS[-1], {})
    if last_etl.get("state") == "success" and last_etl.get("end") is not None:
        rows = xcoms.get(ETL_TASKS[-1]) or []
        steps.append(
            Step(
                last_etl["end"],
                f"ETL done: table created, {len(rows)} rows loaded and read back",
                "SQL tasks",
            )
        )
    else:
        for task_id, task in tasks.items():
            if task.get("state") not in ("success", None) and task.get("end") is not None:
                steps.append(Step(task["end"], f"task {task_id} {task['state']}", "Airflow"))
    return sorted(steps, key=lambda step: step.at)


def render_timeline(title: str, steps: Sequence[Step]) -> list[str]:
    """Render steps as aligned lines: seconds since the first step, seconds since the previous.

    :param title: The heading line.
    :param steps: The steps, in time order.
    """
    lines = [title, f"  {'t':>7}  {'+since':>8}  what"]
    if not steps:
        return [*lines, "  (nothing was recorded)"]
    origin = previous = steps[0].at
    for step in steps:
        lines.append(
            f"  {step.at - origin:>6.1f}s  {'+' + format(step.at - previous, '.1f') + 's':>8}  "
            f"{step.what}  [{step.source}]"
        )
        previous = step.at
    return lines


def describe_cluster(kind: str, engine: str) -> str:
    """``Aurora Serverless v2, PostgreSQL`` for a kind and an engine.

    :param kind: ``serverless-v2``, ``serverless-v1`` or ``provisioned``.
    :param engine: ``aurora-postgresql`` or ``aurora-mysql``.
    """
    return f"{KIND_NAMES.get(kind, kind)}, {ENGINE_NAMES.get(engine, engine)}"

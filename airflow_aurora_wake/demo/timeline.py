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


def first_event(events: Sequence[Any], name: str, after: float | None = None) -> Any | None:
    """The first emulator event named ``name``, at or after ``after`` (``None``: none).

    :param events: The cluster's emulator timeline (objects with ``at``, ``event``, ``detail``).
    :param name: The event's name.
    :param after: Epoch seconds; ``None``: from the start.
    """
    for event in events:
        if event.event == name and (after is None or event.at >= after):
            return event
    return None


def resume_text(cause: str, verb: str) -> str:
    """``resume started (by a connection)``: a resume and what asked for it.

    :param cause: The emulator's ``cause`` of the ``resume-requested`` event.
    :param verb: ``started`` (the timeline) or ``requested`` (the live lines).
    """
    if cause == "modify-db-cluster":
        # What a warm window's hold does: the RDS API alone, no credentials, no network path.
        return f"resume {verb} by the scaling change (ModifyDBCluster), not by a connection"
    return f"resume {verb} (by a {cause})"


@dataclass(frozen=True)
class SensorWait:
    """Where the sensor's wait went, from Airflow's records of its task instance and its report.

    :param started: The task instance's start: the sensor began its check in the worker.
    :param ready_at: When ``SELECT 1`` succeeded: the report's ``ready_at``, taken by the
        trigger just before it fired its event, or by the check in the worker.
    :param deferred: Whether it deferred; ``None`` when Airflow's records cannot tell.
    :param deferred_at: When it deferred (Airflow's ``deferred`` audit event, else the trigger's
        creation).
    :param resumed_at: When the worker picked it up again after the event (the first
        ``running`` audit event after the deferral).
    :param finished_at: The task instance's end.
    """

    started: float
    ready_at: float | None
    deferred: bool | None
    deferred_at: float | None = None
    resumed_at: float | None = None
    finished_at: float | None = None

    @property
    def worker_seconds(self) -> float:
        """Seconds of the check in the worker, to 0.1 s: from the start to the deferral (or readiness)."""
        until = self.deferred_at if self.deferred_at is not None else self.ready_at
        return round((until if until is not None else self.started) - self.started, 1)

    @property
    def triggerer_seconds(self) -> float:
        """Seconds deferred in the triggerer, to 0.1 s: from the deferral to the trigger's event."""
        if self.deferred_at is None or self.ready_at is None:
            return 0.0
        return round(self.ready_at - self.deferred_at, 1)

    @property
    def whole_seconds(self) -> float:
        """The whole wait, the sum of its two parts as printed, so the printed line adds up."""
        return round(self.worker_seconds + self.triggerer_seconds, 1)


def _after(events: Sequence[Sequence[Any]], name: str, after: float) -> float | None:
    return next((at for event, at in events if event == name and at is not None and at > after), None)


def sensor_wait(task: dict[str, Any], report: dict[str, Any]) -> SensorWait | None:
    """Read the sensor's wait from its task instance record and its ready report (``None``: no start).

    :param task: The runner's record of the sensor's task instance (``start``, ``end``,
        ``events``: Airflow's audit log, ``trigger``: the trigger row).
    :param report: The sensor's XCom, the ready report (empty when it did not succeed).
    """
    started = task.get("start")
    if started is None:
        return None
    events: list[Sequence[Any]] = task.get("events") or []
    trigger = task.get("trigger")
    deferred_at = next((at for event, at in events if event == "deferred"), None)
    if deferred_at is None and trigger is not None:
        deferred_at = trigger.get("created")
    deferred: bool | None = deferred_at is not None
    if not deferred and not events:
        deferred = None  # no audit log and no trigger: nothing says whether it deferred
    return SensorWait(
        started=started,
        ready_at=report.get("ready_at"),
        deferred=deferred,
        deferred_at=deferred_at,
        resumed_at=_after(events, "running", deferred_at) if deferred_at is not None else None,
        finished_at=task.get("end"),
    )


def _plural(count: Any, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def sensor_steps(task: dict[str, Any], report: dict[str, Any], source: str = "task ready") -> list[Step]:
    """The sensor's lines: its start, its deferral, the trigger's event, its finish.

    The report's own ``seconds_waited`` is not the sensor's wait when it deferred: the trigger
    measures it from when it began waiting in the triggerer. The whole wait is read here from
    the task instance's start instead, and split at the deferral.

    :param task: The runner's record of the sensor's task instance.
    :param report: The sensor's ready report (its XCom), empty when it did not succeed.
    :param source: Where its lines come from: ``task <its task id>``.
    """
    wait = sensor_wait(task, report)
    if wait is None:
        return []
    steps = [Step(wait.started, "sensor started: checks once in the worker", source)]
    if wait.deferred_at is not None:
        trigger = (task.get("trigger") or {}).get("classpath", "its trigger").rsplit(".", 1)[-1]
        steps.append(
            Step(
                wait.deferred_at,
                f"sensor deferred after {wait.worker_seconds:.1f} s checking in the worker: "
                f"worker slot released, {trigger} waits in the triggerer",
                source,
            )
        )
    if wait.ready_at is None:
        return steps
    attempts = report.get("attempts")
    if wait.deferred:
        steps.append(
            Step(
                wait.ready_at,
                f"trigger fired: SELECT 1 succeeded ({_plural(attempts, 'probe attempt')} in the "
                f"triggerer); the sensor waited {wait.whole_seconds:.1f} s: {wait.worker_seconds:.1f} s "
                f"checking in the worker, then {wait.triggerer_seconds:.1f} s deferred in the "
                "triggerer (no worker slot)",
                "triggerer",
            )
        )
        if wait.finished_at is not None:
            resumed = (
                f"resumed in the worker {wait.resumed_at - wait.ready_at:.1f} s after the event, "
                f"finished {wait.finished_at - wait.ready_at:.1f} s after it"
                if wait.resumed_at is not None
                else "resumed in the worker"
            )
            steps.append(Step(wait.finished_at, f"sensor done: {resumed}", source))
    elif wait.deferred is False:
        steps.append(
            Step(
                wait.ready_at,
                "sensor ready at the first check in the worker, no deferral: SELECT 1 succeeded "
                f"{wait.worker_seconds:.1f} s after the sensor started",
                source,
            )
        )
    else:
        steps.append(
            Step(
                wait.ready_at,
                f"sensor ready: SELECT 1 succeeded {wait.ready_at - wait.started:.1f} s after the sensor "
                "started (Airflow's records do not say whether it deferred)",
                source,
            )
        )
    return steps


def paused_step(events: Sequence[Any]) -> tuple[Step | None, Any | None]:
    """The cluster's first pause (its initial state), as a line and as the event.

    :param events: The cluster's emulator timeline (objects with ``at``, ``event``, ``detail``).
    """
    paused = first_event(events, "paused")
    if paused is None:
        return None, None
    return Step(paused.at, 'paused (RDS says "available": status is not readiness)', "emulator"), paused


def resume_steps(events: Sequence[Any], paused: Any | None) -> list[Step]:
    """The resume after the first pause and what asked for it, then the cluster's readiness.

    :param events: The cluster's emulator timeline.
    :param paused: The first pause event (``None``: look from the start).
    """
    steps: list[Step] = []
    resume = first_event(events, "resume-requested", after=paused.at if paused else None)
    if resume is not None:
        cause = (resume.detail or {}).get("cause", "?")
        steps.append(Step(resume.at, resume_text(cause, "started"), "emulator"))
    ready_event = first_event(events, "ready", after=resume.at if resume else None)
    if ready_event is not None:
        took = f" (resume took {ready_event.at - resume.at:.1f} s)" if resume else ""
        steps.append(Step(ready_event.at, f"cluster ready: accepts connections{took}", "emulator"))
    return steps


def etl_steps(
    tasks: dict[str, Any], xcoms: dict[str, Any], *, prefix: str = "", floor: str = ""
) -> list[Step]:
    """``ETL done`` when its last task succeeded, else a line per task that did not succeed.

    :param tasks: The runner's task instance records, by task id.
    :param xcoms: The tasks' return values, by task id.
    :param prefix: The ETL tasks' task group prefix (``warm.``).
    :param floor: What the cluster's floor did during the ETL, appended to ``ETL done``.
    """
    last = prefix + ETL_TASKS[-1]
    last_etl = tasks.get(last, {})
    if last_etl.get("state") == "success" and last_etl.get("end") is not None:
        rows = xcoms.get(last) or []
        what = f"ETL done: table created, {len(rows)} rows loaded and read back{floor}"
        return [Step(last_etl["end"], what, "SQL tasks")]
    return [
        Step(task["end"], f"task {task_id} {task['state']}", "Airflow")
        for task_id, task in tasks.items()
        if task.get("state") not in ("success", None) and task.get("end") is not None
    ]


def build_steps(events: Sequence[Any], record: dict[str, Any]) -> list[Step]:
    """Put the emulator's events and the DAG run's records on one time line (the wake DAG).

    :param events: The cluster's emulator timeline (objects with ``at``, ``event``, ``detail``).
    :param record: The runner's record of the DAG run (``tasks``, ``xcoms``).
    """
    tasks: dict[str, Any] = record.get("tasks", {})
    xcoms: dict[str, Any] = record.get("xcoms", {})
    steps: list[Step] = []
    paused_line, paused = paused_step(events)
    if paused_line is not None:
        steps.append(paused_line)
    wake_task = tasks.get("wake", {})
    if wake_task.get("start") is not None:
        steps.append(Step(wake_task["start"], "DAG run started (task wake)", "Airflow"))
    wake = xcoms.get("wake") or {}
    if wake.get("requested_at") is not None:
        steps.append(Step(wake["requested_at"], f"wake requested: {wake.get('action')}", "task wake"))
    steps.extend(resume_steps(events, paused))
    steps.extend(sensor_steps(tasks.get("ready", {}), xcoms.get("ready") or {}))
    steps.extend(etl_steps(tasks, xcoms))
    # Stable sort: steps at the same instant keep the story's order.
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

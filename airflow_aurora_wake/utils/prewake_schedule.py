"""Whether a pre-wake is due: the target run it is for must happen and not have started.

The rule of :class:`~airflow_aurora_wake.operators.aurora_prewake.AuroraServerlessPreWakeOperator`,
pure, on what the scheduler holds about the target DAG
(:class:`~airflow_aurora_wake.compat.DagScheduleState`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_aurora_wake.compat import DagScheduleState

__all__ = ["epoch_of", "is_scheduled", "iso_of", "skip_reason"]


def is_scheduled(dag_run: Any) -> bool:
    """Whether a DAG run was created by the scheduler (not triggered by hand or a test)."""
    run_type = getattr(dag_run, "run_type", None)
    return str(getattr(run_type, "value", run_type)) == "scheduled"


def skip_reason(
    state: DagScheduleState,
    *,
    scheduled: bool,
    logical_date: datetime | None,
    run_start: float,
    now: float,
    drift: timedelta = timedelta(0),
) -> str | None:
    """Why no pre-wake is due for this run, or ``None`` when it is.

    A paused target creates no run. A scheduled pre-wake is for the target run of its own
    logical date: when the scheduler's next run of the target is a later one (a ``catchup=False``
    gap, a run already created) or there is none (an end date passed), that run will not happen.
    A next run up to ``drift`` later is the same run: a ``timedelta`` schedule without catchup
    counts its runs from "now", which the scheduler reads apart for the target and the pre-wake.
    A manual pre-wake has no target run of its own and is not checked against the schedule. A
    run whose start has passed is a missed pre-wake: its ready sensor waits as without one.

    :param state: The scheduler's view of the target DAG.
    :param scheduled: Whether the pre-wake's own run was created by the scheduler.
    :param logical_date: The logical date of the target run the pre-wake is for.
    :param run_start: When the target run starts, epoch seconds.
    :param now: The time, epoch seconds.
    :param drift: How much later the target's next run may be and still be this one.
    """
    dag_id = state.dag_id
    if state.is_paused:
        return f"DAG {dag_id!r} is paused: no run to pre-wake."
    if scheduled and state.next_dagrun is None:
        return f"DAG {dag_id!r} has no next run (its end date passed?): nothing to pre-wake."
    if (
        scheduled
        and logical_date is not None
        and state.next_dagrun is not None
        and state.next_dagrun > logical_date + drift
    ):
        return (
            f"DAG {dag_id!r} will next run for {state.next_dagrun.isoformat()}, after this one "
            f"({logical_date.isoformat()}): that run will not happen or has begun."
        )
    if now >= run_start:
        return (
            f"Missed: the run of {dag_id!r} started at {iso_of(run_start)}, {now - run_start:.1f} s ago; "
            "its ready sensor waits for the cluster as usual."
        )
    return None


def epoch_of(moment: datetime) -> float:
    """Epoch seconds of an aware datetime."""
    return moment.timestamp()


def iso_of(epoch: float) -> str:
    """An epoch time in ISO 8601, UTC."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()

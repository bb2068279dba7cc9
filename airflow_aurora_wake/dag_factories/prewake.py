"""The companion DAG that wakes a target DAG's Aurora cluster a lead time before each of its runs.

Why a companion DAG with a shifted timetable (rather than a task in the target DAG, or a sensor
that polls the schedule): the scheduler already knows when the target's next run starts, and a
timetable that wraps the target's own (cron, timedelta or any time-based timetable) says the
same thing ``max_lead`` earlier, in the scheduler's database, so it survives restarts of the
scheduler and is shared by every scheduler. The target DAG's runs, run ids and data intervals do
not change; each pre-wake is a run of its own, whose logs, failures and XCom stand apart from
the pipeline's; pausing the companion turns pre-waking off, and pausing the target makes each
pre-wake skip.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow_aurora_wake.compat import DAG
from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.operators.aurora_prewake import AuroraServerlessPreWakeOperator
from airflow_aurora_wake.operators.aurora_window import AuroraServerlessHoldOperator
from airflow_aurora_wake.timetables.prewake import AuroraPreWakeTimetable

__all__ = ["DEFAULT_MAX_LEAD", "aurora_prewake_dag"]

#: How far ahead of the target run a companion run starts when the lead is learned: enough for a
#: stopped cluster's start (several minutes) with margin; the run waits in the triggerer for the
#: learned lead, so the head start costs no worker slot and no capacity.
DEFAULT_MAX_LEAD = timedelta(minutes=15)


def _as_timedelta(value: timedelta | float | None, parameter: str) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        result = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = timedelta(seconds=value)
    else:
        raise InvalidParameterError(parameter, value, "give a timedelta, a number of seconds, or None")
    if result is not None and result <= timedelta(0):
        raise InvalidParameterError(
            parameter, value, "give a positive duration, for example timedelta(minutes=2)"
        )
    return result


def _window_hold(target: DAG, warm_window: str) -> dict[str, Any]:
    """The hold settings of the warm window ``warm_window`` of ``target``, from its hold task."""
    hold_task = target.task_dict.get(f"{warm_window}.hold")
    if not isinstance(hold_task, AuroraServerlessHoldOperator):
        raise InvalidParameterError(
            "warm_window",
            warm_window,
            f"give the group_id of an AuroraServerlessWarmWindow in DAG {target.dag_id!r} "
            "(its hold task is '<group_id>.hold')",
        )
    return {
        "window_id": hold_task.window_id,
        "min_capacity": hold_task.min_capacity,
        "max_capacity": hold_task.max_capacity,
        "start_if_stopped": hold_task.start_if_stopped,
    }


def aurora_prewake_dag(
    target: DAG,
    *,
    db_cluster_identifier: str,
    lead_time: timedelta | float | None = None,
    max_lead_time: timedelta | float | None = None,
    dag_id: str | None = None,
    warm_window: str | None = None,
    **prewake_kwargs: Any,
) -> DAG:
    """Build the DAG that wakes ``db_cluster_identifier`` ahead of each scheduled run of ``target``.

    Assign the result to a module-level name in the target's DAG file::

        with DAG("sales_etl", schedule="0 6 * * *", start_date=...) as sales_etl:
            ready = AuroraServerlessReadySensor(task_id="ready", db_cluster_identifier="sales",
                                                conn_id="aurora_pg")
            ready >> load
        sales_prewake = aurora_prewake_dag(sales_etl, db_cluster_identifier="sales",
                                           conn_id="aurora_pg")

    Its runs start ``max_lead_time`` before each target run (``catchup=False``: never for runs
    whose start has passed) and hold one
    :class:`~airflow_aurora_wake.operators.aurora_prewake.AuroraServerlessPreWakeOperator`,
    task id ``prewake``. Keep the target's ready sensor: it passes at once on a warm cluster.

    :param target: The DAG whose runs to pre-wake; it needs a time-based schedule.
    :param db_cluster_identifier: The cluster the target's tasks use. (templated)
    :param lead_time: How long before each run to wake the cluster; ``None`` (default) learns it
        from the cluster's recent resumes.
    :param max_lead_time: How long before each run the companion run starts; the lead never
        exceeds it. Default: ``lead_time`` when set, else :data:`DEFAULT_MAX_LEAD`.
    :param dag_id: The companion's dag id (default ``<target>__aurora_prewake``).
    :param warm_window: The ``group_id`` of an
        :class:`~airflow_aurora_wake.task_groups.warm_window.AuroraServerlessWarmWindow` in the
        target DAG: the pre-wake then begins that window's hold (its floor, ceiling and
        ``start_if_stopped``) for the coming run, instead of a plain wake.
    :param prewake_kwargs: Further arguments of the pre-wake operator: the AWS parameters,
        ``conn_id`` or ``data_api_secret_arn``, ``start_if_stopped``, ``timeout``...
    """
    if not isinstance(target, DAG):
        raise InvalidParameterError(
            "target", target, "give the target DAG object (the DAG whose runs to pre-wake)"
        )
    lead = _as_timedelta(lead_time, "lead_time")
    max_lead = _as_timedelta(max_lead_time, "max_lead_time") or lead or DEFAULT_MAX_LEAD
    if lead is not None and lead > max_lead:
        raise InvalidParameterError(
            "lead_time",
            lead_time,
            f"must not exceed max_lead_time ({max_lead}): raise max_lead_time or shorten the lead",
        )
    if warm_window is not None:
        prewake_kwargs["hold"] = _window_hold(target, warm_window)
    timetable = AuroraPreWakeTimetable(target.timetable, lead=max_lead)
    start_date = target.start_date or (target.default_args or {}).get("start_date")
    with DAG(
        dag_id or f"{target.dag_id}__aurora_prewake",
        schedule=timetable,
        # Moved with the runs: Airflow creates no task instance for a run whose logical date is
        # before its DAG's start date.
        start_date=None if start_date is None else start_date - max_lead,
        end_date=None if target.end_date is None else target.end_date - max_lead,
        catchup=False,
        tags=[*sorted(target.tags or ()), "aurora-prewake"],
        description=f"Wakes Aurora cluster {db_cluster_identifier} before each run of {target.dag_id}.",
    ) as companion:
        AuroraServerlessPreWakeOperator(
            task_id="prewake",
            target_dag_id=target.dag_id,
            db_cluster_identifier=db_cluster_identifier,
            lead_time=lead,
            **prewake_kwargs,
        )
    return companion

"""The one module of this provider that knows where Airflow 2.11 and 3.x keep things.

Every other module imports Airflow names from here, so a version check never appears
anywhere else. The heavy lifting is done by ``apache-airflow-providers-common-compat``
(``airflow.providers.common.compat.sdk`` resolves each name to ``airflow.sdk`` on Airflow 3
and to the old locations on 2.11); this module only adds the ``AIRFLOW_V_3_0_PLUS`` flag
(copied, as the official providers do, rather than imported from another provider) and the
asynchronous connection look-up used by triggers.

``Stats`` is ``airflow.stats.Stats`` on 2.11 and the Task SDK's
(``airflow.sdk.observability.stats``) on 3.x, not the core's ``airflow.observability.stats``:
Airflow 3 keeps two separate ``Stats`` singletons, and the Task SDK's is the one the task runner
initialises from ``[metrics]``, and which the triggerer initialises too when it imports
``airflow.sdk.serde`` to read trigger kwargs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow import __version__ as _AIRFLOW_VERSION

# common-compat declares these names for type checkers too (airflow.sdk's), so one import serves
# both the running version and mypy.
from airflow.providers.common.compat.sdk import (
    DAG,
    AirflowException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    Connection,
    Context,
    PokeReturnValue,
    Stats,
    TaskDeferred,
    TaskGroup,
    Variable,
    conf,
    task,
)

# Triggers have not moved to the Task SDK: the same import works on 2.11 and 3.x.
from airflow.triggers.base import BaseTrigger, TriggerEvent
from packaging.version import Version

try:  # Airflow 3 moved the time triggers into the standard provider.
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
except ImportError:  # pragma: no cover - Airflow 2.11
    from airflow.triggers.temporal import DateTimeTrigger  # type: ignore[no-redef]


def _airflow_version_tuple() -> tuple[int, int, int]:
    version = Version(_AIRFLOW_VERSION)
    return version.major, version.minor, version.micro


AIRFLOW_V_3_0_PLUS: bool = _airflow_version_tuple() >= (3, 0, 0)
"""``True`` on Airflow 3.0 and later (Task SDK), ``False`` on 2.11."""


def first_reschedule_date(context: Context) -> datetime | None:
    """When a sensor in ``mode="reschedule"`` first ran in this try, or ``None`` before any reschedule.

    Airflow 3 asks the task runner (``ti.get_first_reschedule_date``); Airflow 2.11 has no such
    method on the task instance and reads the ``task_reschedule`` table, as its own
    ``BaseSensorOperator.execute`` does (``airflow.sensors.base._orig_start_date``).

    :param context: The task context of the running sensor.
    """
    ti = context.get("ti")
    if ti is None:
        return None
    if AIRFLOW_V_3_0_PLUS:
        first: datetime | None = ti.get_first_reschedule_date(context)
        return first
    from airflow.sensors.base import _orig_start_date

    task = context.get("task")
    retries = int(getattr(task, "retries", 0) or 0)
    first_try_number = int(ti.max_tries or 0) - retries + 1
    started: datetime | None = _orig_start_date(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        map_index=ti.map_index,
        try_number=first_try_number,
    )
    return started


async def get_async_connection(conn_id: str) -> Connection:
    """Look up an Airflow connection without blocking the event loop (triggers, ``asyncio.run``).

    Airflow 3.1+ has ``BaseHook.aget_connection``; before 3.3.2 its secret masking could
    deadlock, and on 2.11 it does not exist. The common-compat provider picks the safe path
    for the running version (a worker thread where needed).

    On Airflow 3, a connection the asynchronous look-up does not find is looked up once more
    through the synchronous one, in a worker thread. The asynchronous look-up asks the
    supervisor over an asynchronous channel that the in-process supervisor of ``dag.test()``
    and ``airflow dags test`` does not have (3.3.2), and it reads any failure of a source as
    "not found": connections stored in the metadata database then seem not to exist. The
    synchronous look-up reaches every source through the channel that does exist, and from a
    worker thread it cannot deadlock the loop.

    :param conn_id: The Airflow connection id to look up.
    :raises AirflowNotFoundException: When no source has a connection of that id.
    """
    from airflow.providers.common.compat.connection import get_async_connection as _get

    try:
        return await _get(conn_id)
    except AirflowNotFoundException:
        if not AIRFLOW_V_3_0_PLUS:
            raise  # 2.11's look-up already was the synchronous one
    from asgiref.sync import sync_to_async

    connection: Connection = await sync_to_async(BaseHook.get_connection)(conn_id)
    return connection


@dataclass(frozen=True)
class DagScheduleState:
    """What the scheduler holds about a DAG: whether it is paused and its next run.

    :param dag_id: The DAG id asked for.
    :param is_paused: Whether the DAG is paused (the scheduler creates no run for it).
    :param next_dagrun: The logical date of the next run the scheduler will create, or ``None``
        when it will create none (an end date passed, no time-based schedule).
    """

    dag_id: str
    is_paused: bool
    next_dagrun: datetime | None


def dag_schedule_state(context: Context, dag_id: str) -> DagScheduleState | None:
    """Return the scheduler's view of another DAG, or ``None`` when the DAG is not known.

    Airflow 3 tasks have no metadata database access: the task runner asks the API server
    (``ti.get_dag``). Airflow 2.11 reads the ``dag`` table, as its own sensors do.

    :param context: The running task's context.
    :param dag_id: The DAG to look up.
    """
    if AIRFLOW_V_3_0_PLUS:
        try:
            dag = context["ti"].get_dag(dag_id)
        except Exception:  # the API server answers 404 for an unknown DAG; the runner raises it
            return None
        return DagScheduleState(dag_id, bool(dag.is_paused), dag.next_dagrun)
    from airflow.models.dag import DagModel

    model = DagModel.get_dagmodel(dag_id)
    if model is None:
        return None
    return DagScheduleState(dag_id, bool(model.is_paused), model.next_dagrun)


def scheduled_run_id(logical_date: datetime | None, run_after: datetime) -> str:
    """The run id the scheduler gives the scheduled run of a DAG that starts at ``run_after``.

    Airflow 3 names a scheduled run after its ``run_after``; 2.11 after its logical date.

    :param logical_date: The run's logical date (Airflow 2.11).
    :param run_after: When the run starts (Airflow 3).
    """
    moment = run_after if AIRFLOW_V_3_0_PLUS or logical_date is None else logical_date
    return f"scheduled__{moment.isoformat()}"


async def get_async_extra_dejson(conn: Connection) -> dict[str, Any]:
    """Return a connection's extra as a dict without blocking the event loop.

    :param conn: A connection returned by :func:`get_async_connection`.
    """
    from airflow.providers.common.compat.connection import get_async_extra_dejson as _get

    return await _get(conn)


__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "DAG",
    "AirflowException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Connection",
    "Context",
    "DagScheduleState",
    "DateTimeTrigger",
    "PokeReturnValue",
    "Stats",
    "TaskDeferred",
    "TaskGroup",
    "TriggerEvent",
    "Variable",
    "conf",
    "dag_schedule_state",
    "first_reschedule_date",
    "get_async_connection",
    "get_async_extra_dejson",
    "scheduled_run_id",
    "task",
]

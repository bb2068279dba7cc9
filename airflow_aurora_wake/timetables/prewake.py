"""The pre-wake timetable: the runs of a target DAG's schedule, each started a lead time earlier.

A companion DAG scheduled by :class:`AuroraPreWakeTimetable` wakes a cluster before each
scheduled run of the DAG that uses it, so that run finds the cluster awake. Each companion run is
its target run moved ``lead`` earlier: ``run_after`` and the data interval alike. The logical
date moves too, because Airflow starts no task of a run whose logical date is still in the
future: on a trigger timetable (Airflow 3's default for cron and timedelta schedules) the
target's logical date is its start, which a companion run always precedes.

Airflow deserializes a timetable outside ``airflow.timetables`` only when a plugin registers
it: :mod:`airflow_aurora_wake.plugins` does, through the ``airflow.plugins`` entry point.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowTimetableInvalid
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from airflow.timetables.simple import ContinuousTimetable, NullTimetable, OnceTimetable

if TYPE_CHECKING:
    from airflow.sdk.bases.timetable import BaseTimetable
    from pendulum import DateTime

#: What the target DAG's ``schedule`` must be; every refusal ends with it.
SCHEDULE_FIX = "a time-based schedule: cron, timedelta or a timetable with next runs"


def _encode_timetable(timetable: Timetable | BaseTimetable) -> dict[str, Any]:
    """Airflow's own encoding of a timetable (its import path and its ``serialize()``)."""
    try:
        from airflow.serialization.encoders import encode_timetable
    except ImportError:  # Airflow 2.11
        from airflow.serialization.serialized_objects import encode_timetable
    encoded: dict[str, Any] = encode_timetable(timetable)
    return encoded


def _decode_timetable(data: dict[str, Any]) -> Timetable:
    """The core timetable :func:`_encode_timetable` encoded (a plugin must register custom ones)."""
    try:
        from airflow.serialization.decoders import decode_timetable
    except ImportError:  # Airflow 2.11
        from airflow.serialization.serialized_objects import decode_timetable
    decoded: Timetable = decode_timetable(data)
    return decoded


def _asset_timetable_types() -> tuple[type[Timetable], type[Timetable]]:
    """The asset-triggered and the asset-or-time timetable classes (2.11 calls assets datasets)."""
    try:
        from airflow.timetables.assets import AssetOrTimeSchedule
        from airflow.timetables.simple import AssetTriggeredTimetable
    except ImportError:  # Airflow 2.11
        from airflow.timetables.datasets import (  # type: ignore[no-redef]
            DatasetOrTimeSchedule as AssetOrTimeSchedule,
        )
        from airflow.timetables.simple import (  # type: ignore[attr-defined,no-redef]
            DatasetTriggeredTimetable as AssetTriggeredTimetable,
        )
    return AssetTriggeredTimetable, AssetOrTimeSchedule


def _utcnow() -> DateTime:
    """Now, as the core timetables read it (a pendulum ``DateTime`` in UTC)."""
    from airflow.providers.common.compat.sdk import timezone

    now: DateTime = timezone.coerce_datetime(timezone.utcnow())
    return now


def _as_core_timetable(target: object) -> Timetable:
    """The scheduling (core) counterpart of a DAG's timetable.

    On Airflow 3 ``dag.timetable`` is a Task SDK timetable, which only describes the schedule;
    Airflow's own encoding and decoding turn it into the core class that computes runs.
    """
    if isinstance(target, Timetable):
        return target
    try:
        from airflow.sdk.bases.timetable import BaseTimetable
    except ImportError:  # Airflow 2.11 has no Task SDK: only core timetables exist
        BaseTimetable = None  # type: ignore[assignment,misc]
    if BaseTimetable is None or not isinstance(target, BaseTimetable):
        raise AirflowTimetableInvalid(
            f"AuroraPreWakeTimetable needs target=<the target DAG's timetable> (dag.timetable), "
            f"got target={target!r} ({type(target).__name__}); pass the DAG's timetable, whose "
            f"schedule must be {SCHEDULE_FIX}"
        )
    try:
        return _decode_timetable(_encode_timetable(target))
    except Exception as exc:  # Airflow raises several types here, none of which names our parameter
        raise AirflowTimetableInvalid(
            f"AuroraPreWakeTimetable cannot compute the runs of target={target!r} "
            f"({type(target).__name__}): Airflow could not convert it to a scheduling timetable "
            f"({exc}); the target DAG's schedule must be {SCHEDULE_FIX}"
        ) from exc


def _schedule_refusal(target: Timetable) -> str | None:
    """Why the target's runs cannot be foreseen, or ``None`` when they can."""
    asset_triggered, _ = _asset_timetable_types()
    if isinstance(target, NullTimetable) or not target.can_be_scheduled:
        value = "None" if type(target) is NullTimetable else repr(target.summary)
        reason = "it never starts a run by itself"
    elif isinstance(target, OnceTimetable):
        value, reason = "'@once'", "its only run starts at the start date, with nothing to run ahead of"
    elif isinstance(target, ContinuousTimetable):
        value, reason = (
            "'@continuous'",
            "each run starts when the previous one ends, a time no one knows ahead",
        )
    elif isinstance(target, asset_triggered):
        value, reason = (
            f"{target.summary!r}",
            "its runs start when assets are updated, a time no one knows ahead",
        )
    elif getattr(target, "partitioned", False):
        value, reason = f"{target.summary!r}", "a partitioned schedule's runs are computed per partition"
    else:
        return None
    return (
        f"AuroraPreWakeTimetable cannot start runs ahead of the target DAG's schedule={value} "
        f"({type(target).__name__}): {reason}. Give the target DAG's `schedule` {SCHEDULE_FIX}"
    )


def _lead_refusal(lead: object) -> str | None:
    if isinstance(lead, timedelta) and lead > timedelta(0):
        return None
    return (
        f"AuroraPreWakeTimetable needs lead=<a positive datetime.timedelta> (how long before each "
        f"run of the target DAG the companion run starts), got lead={lead!r}; pass e.g. "
        f"lead=timedelta(minutes=5)"
    )


def _moved(interval: DataInterval, by: timedelta) -> DataInterval:
    """``interval`` with both ends moved by ``by``."""
    return DataInterval(interval.start + by, interval.end + by)


def _moved_restriction(restriction: TimeRestriction, by: timedelta) -> TimeRestriction:
    """The companion DAG's start and end dates as the target's: ``by`` later."""
    return restriction._replace(
        earliest=None if restriction.earliest is None else restriction.earliest + by,
        latest=None if restriction.latest is None else restriction.latest + by,
    )


def _format_lead(lead: timedelta) -> str:
    """``5m``, ``1m30s``, ``2h``: the lead as the summary shows it."""
    seconds = lead.total_seconds()
    if seconds != int(seconds):
        return f"{seconds:g}s"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if value)


class AuroraPreWakeTimetable(Timetable):
    """The runs of a target DAG's schedule, each one ``lead`` earlier.

    A run of the companion DAG is the target run it prepares moved ``lead`` earlier: its
    ``run_after``, data interval and logical date. A target run whose start
    has passed is never prepared, whatever ``catchup`` says: a wake after the run started is
    useless. Give the companion DAG the target DAG's ``start_date`` and ``end_date`` moved
    ``lead`` earlier too: they are the target's once moved back.

    :param target: The target DAG's timetable, as the DAG has it (``dag.timetable``; on
        Airflow 3 a Task SDK timetable, converted here to the core one that computes runs).
    :param lead: How long before each target run the companion run starts (positive).
    :raises AirflowTimetableInvalid: When ``lead`` is not a positive ``timedelta``, or the
        target's schedule has no foreseeable runs (``None``, ``@once``, ``@continuous``,
        assets).
    """

    periodic = True
    can_be_scheduled = True

    def __init__(self, target: Timetable | BaseTimetable, lead: timedelta) -> None:
        if (lead_refusal := _lead_refusal(lead)) is not None:
            raise AirflowTimetableInvalid(lead_refusal)
        core = _as_core_timetable(target)
        _, asset_or_time = _asset_timetable_types()
        if isinstance(core, asset_or_time):
            # Only the time-based half of "assets or time" can be foreseen; the companion
            # prepares those runs and carries no asset condition of its own.
            core = core.timetable  # type: ignore[attr-defined]
        if (schedule_refusal := _schedule_refusal(core)) is not None:
            raise AirflowTimetableInvalid(schedule_refusal)
        self.target: Timetable = core
        self.lead: timedelta = lead
        self.run_ordering = core.run_ordering
        self.active_runs_limit = core.active_runs_limit
        self.description = f"{_format_lead(lead)} before each run of: {core.description or core.summary}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AuroraPreWakeTimetable):
            return NotImplemented
        return self.target == other.target and self.lead == other.lead

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.lead))

    def __repr__(self) -> str:
        return f"AuroraPreWakeTimetable(target={self.target!r}, lead={self.lead!r})"

    @property
    def summary(self) -> str:
        """The target's summary and the lead, e.g. ``*/5 * * * *, 5m earlier``."""
        return f"{self.target.summary}, {_format_lead(self.lead)} earlier"

    def target_run_after(self, run_after: datetime) -> datetime:
        """The target run's moment for a companion run's: its start, or its logical date.

        :param run_after: The companion run's ``run_after`` (or logical date, or data interval end).
        """
        return run_after + self.lead

    def validate(self) -> None:
        """Check the lead and the target's schedule again, then the target itself (its cron...).

        :raises AirflowTimetableInvalid: With the parameter, the value and the fix.
        """
        refusal = _lead_refusal(self.lead) or _schedule_refusal(self.target)
        if refusal is not None:
            raise AirflowTimetableInvalid(refusal)
        self.target.validate()

    def serialize(self) -> dict[str, Any]:
        """The target in Airflow's own timetable encoding, and the lead in seconds."""
        return {"target": _encode_timetable(self.target), "lead": self.lead.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> AuroraPreWakeTimetable:
        """Re-create the timetable :meth:`serialize` described.

        :param data: What :meth:`serialize` returned.
        """
        return cls(_decode_timetable(data["target"]), timedelta(seconds=data["lead"]))

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """The data interval of the target's manual run ``lead`` later, moved ``lead`` earlier.

        :param run_after: When the manual run was triggered.
        """
        interval = self.target.infer_manual_data_interval(run_after=run_after + self.lead)
        return _moved(interval, -self.lead)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        """The next target run that starts in the future, moved ``lead`` earlier.

        The ``run_after`` may already be past when the lead window has begun: the scheduler then
        creates the companion run at once, still before the target run starts.

        :param last_automated_data_interval: The data interval of the companion DAG's last
            scheduled run: its target run's, ``lead`` earlier.
        :param restriction: The companion DAG's start date, end date (the target's, ``lead``
            earlier) and catchup.
        :return: ``None`` when the target has no future run (its end date passed, for example).
        """
        now = _utcnow()
        # The companion's dates are the target's moved lead earlier (a task instance is created
        # only for a run whose logical date is on or after its DAG's start date).
        restriction = _moved_restriction(restriction, self.lead)
        last = (
            None if last_automated_data_interval is None else _moved(last_automated_data_interval, self.lead)
        )
        info = self.target.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is not None and info.run_after <= now:
            info = self._first_run_after(now, info, restriction)
        if info is None:
            return None
        data_interval = None if info.data_interval is None else _moved(info.data_interval, -self.lead)
        return info._replace(run_after=info.run_after - self.lead, data_interval=data_interval)

    def _first_run_after(
        self, now: DateTime, passed: DagRunInfo, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        """The first target run that starts after ``now``, in at most three more answers.

        The target's own ``catchup=False`` rule skips to its latest run due by now; the one
        after that starts in the future. A target that ignores ``catchup`` is asked once more
        from ``now`` itself, and when even that answer has passed no run is prepared.

        :param now: The time the question is asked.
        :param passed: The target's answer, which starts at or before ``now``.
        :param restriction: The companion DAG's restriction.
        """
        info: DagRunInfo | None = passed
        steps = [restriction._replace(catchup=True)]
        if restriction.catchup:
            steps.insert(0, restriction._replace(catchup=False))
        for step in steps:
            if info is None or info.data_interval is None:
                break
            info = self.target.next_dagrun_info(
                last_automated_data_interval=info.data_interval, restriction=step
            )
            if info is None or info.run_after > now:
                return info
        earliest = now if restriction.earliest is None else max(now, restriction.earliest)
        info = self.target.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(earliest=earliest, latest=restriction.latest, catchup=True),
        )
        if info is None or info.run_after > now:
            return info
        return None

"""The pre-wake timetable: the target's runs shifted earlier, never a past one, and its registration.

Most tests ask for runs in the year 2999, so the clock of the machine does not matter. The
catch-up tests ask from the year 2000 and bracket the call with the clock: the answer must
start after the time before the call, and the target run before it at or before the time after
the call, whatever the load of the machine.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pendulum
import pytest
from airflow.exceptions import AirflowTimetableInvalid
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from airflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
from airflow.timetables.simple import ContinuousTimetable, NullTimetable, OnceTimetable
from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable
from airflow_support import AIRFLOW_2

from airflow_aurora_wake.compat import DAG
from airflow_aurora_wake.plugins import AuroraWakePlugin
from airflow_aurora_wake.timetables import AuroraPreWakeTimetable
from airflow_aurora_wake.timetables.prewake import SCHEDULE_FIX

LEAD = timedelta(minutes=5)
START = pendulum.datetime(2999, 1, 1, 0, 2, tz="UTC")
PAST = pendulum.datetime(2000, 1, 1, tz="UTC")


def utc(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz="UTC")


#: Each target, the period between its runs, and the start of its first run from START.
TARGETS: dict[str, tuple[Callable[[], Timetable], timedelta, pendulum.DateTime]] = {
    "cron-trigger */5": (
        lambda: CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
        timedelta(minutes=5),
        utc(2999, 1, 1, 0, 5),
    ),
    "cron-interval */5": (
        lambda: CronDataIntervalTimetable("*/5 * * * *", timezone="UTC"),
        timedelta(minutes=5),
        utc(2999, 1, 1, 0, 10),
    ),
    "cron-trigger @daily": (
        lambda: CronTriggerTimetable("@daily", timezone="UTC"),
        timedelta(days=1),
        utc(2999, 1, 2),
    ),
    "cron-interval @daily": (
        lambda: CronDataIntervalTimetable("@daily", timezone="UTC"),
        timedelta(days=1),
        utc(2999, 1, 3),
    ),
    "delta-trigger 1h": (
        lambda: DeltaTriggerTimetable(timedelta(hours=1)),
        timedelta(hours=1),
        utc(2999, 1, 1, 0, 2),
    ),
    "delta-interval 1h": (
        lambda: DeltaDataIntervalTimetable(timedelta(hours=1)),
        timedelta(hours=1),
        utc(2999, 1, 1, 1, 2),
    ),
}


def moved(interval: DataInterval | None, by: timedelta) -> DataInterval:
    assert interval is not None
    return DataInterval(interval.start + by, interval.end + by)


def companions(restriction: TimeRestriction) -> TimeRestriction:
    """The restriction of a companion DAG whose target has ``restriction``: its dates ``LEAD`` earlier."""
    return restriction._replace(
        earliest=None if restriction.earliest is None else restriction.earliest - LEAD,
        latest=None if restriction.latest is None else restriction.latest - LEAD,
    )


def runs(timetable: Timetable, restriction: TimeRestriction, count: int) -> list[DagRunInfo | None]:
    """``count`` successive answers, each fed the previous one's data interval, as the scheduler does."""
    answers: list[DagRunInfo | None] = []
    last: DataInterval | None = None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        answers.append(info)
        if info is None:
            break
        last = info.data_interval
    return answers


def dag_timetable(schedule: Any) -> Any:
    """The timetable a DAG has for ``schedule`` (a Task SDK one on Airflow 3)."""
    # "@continuous" allows one active run only, and Airflow checks it against the default.
    max_active_runs = 1 if schedule == "@continuous" else 16
    return DAG("target", schedule=schedule, start_date=START, max_active_runs=max_active_runs).timetable


@pytest.mark.parametrize("catchup", [True, False])
@pytest.mark.parametrize("name", TARGETS)
def test_runs_are_the_targets_shifted_by_the_lead(name: str, catchup: bool) -> None:
    make, _, first_start = TARGETS[name]
    restriction = TimeRestriction(earliest=START, latest=None, catchup=catchup)
    expected = runs(make(), restriction, 4)
    actual = runs(AuroraPreWakeTimetable(make(), LEAD), companions(restriction), 4)

    assert expected[0] is not None and expected[0].run_after == first_start
    assert len(actual) == len(expected) == 4
    for mine, theirs in zip(actual, expected, strict=True):
        assert mine is not None and theirs is not None
        assert mine.run_after == theirs.run_after - LEAD
        assert mine.data_interval == moved(theirs.data_interval, -LEAD)
        # Never a logical date after the run's start: Airflow would not start its task.
        assert mine.logical_date == theirs.logical_date - LEAD
        assert mine.logical_date <= mine.run_after


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "@daily", timedelta(hours=1)])
def test_a_dags_own_timetable_is_converted_to_one_that_schedules(schedule: Any) -> None:
    as_the_dag_has_it = dag_timetable(schedule)
    prewake = AuroraPreWakeTimetable(as_the_dag_has_it, LEAD)

    assert type(prewake.target).__module__.startswith("airflow.timetables.")
    restriction = TimeRestriction(earliest=START, latest=None, catchup=True)
    expected = runs(prewake.target, restriction, 3)
    for mine, theirs in zip(runs(prewake, companions(restriction), 3), expected, strict=True):
        assert mine is not None and theirs is not None
        assert (mine.run_after, mine.data_interval) == (
            theirs.run_after - LEAD,
            moved(theirs.data_interval, -LEAD),
        )
        assert prewake.target_run_after(mine.run_after) == theirs.run_after


def test_no_run_once_the_end_date_has_passed() -> None:
    restriction = TimeRestriction(earliest=START, latest=utc(2999, 1, 1, 0, 12), catchup=True)
    prewake = AuroraPreWakeTimetable(CronTriggerTimetable("*/5 * * * *", timezone="UTC"), LEAD)

    answers = runs(prewake, companions(restriction), 5)

    assert [info.run_after if info else None for info in answers] == [
        utc(2999, 1, 1, 0, 0),
        utc(2999, 1, 1, 0, 5),
        None,
    ]


def test_no_run_when_the_end_date_passed_before_now() -> None:
    restriction = TimeRestriction(earliest=PAST, latest=utc(2000, 6, 1), catchup=True)
    prewake = AuroraPreWakeTimetable(CronTriggerTimetable("@daily", timezone="UTC"), LEAD)

    assert prewake.next_dagrun_info(last_automated_data_interval=None, restriction=restriction) is None


@pytest.mark.parametrize("catchup", [True, False])
@pytest.mark.parametrize("from_a_past_run", [True, False])
@pytest.mark.parametrize("name", TARGETS)
def test_catch_up_gives_the_first_target_run_that_starts_after_now(
    name: str, from_a_past_run: bool, catchup: bool
) -> None:
    make, period, _ = TARGETS[name]
    target = make()
    restriction = TimeRestriction(earliest=PAST, latest=None, catchup=catchup)
    last = None
    if from_a_past_run:
        last = target.next_dagrun_info(
            last_automated_data_interval=None, restriction=restriction._replace(catchup=True)
        )
        assert last is not None and last.run_after < utc(2000, 1, 3)
    prewake = AuroraPreWakeTimetable(target, LEAD)

    before = pendulum.now("UTC")
    info = prewake.next_dagrun_info(
        last_automated_data_interval=moved(last.data_interval, -LEAD) if last else None,
        restriction=restriction,
    )
    after = pendulum.now("UTC")

    assert info is not None
    target_start = prewake.target_run_after(info.run_after)
    assert target_start > before
    assert target_start - period <= after
    assert info.data_interval is not None and info.data_interval.end + LEAD == target_start


class ScriptedTarget(Timetable):
    """A target that gives the same answer whatever it is asked, and counts the questions."""

    def __init__(self, answer: DagRunInfo | None) -> None:
        self.answer = answer
        self.questions = 0

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        self.questions += 1
        return self.answer


@pytest.mark.parametrize(("catchup", "questions"), [(True, 4), (False, 3)])
def test_a_target_that_only_answers_the_past_gets_no_run_in_bounded_questions(
    catchup: bool, questions: int
) -> None:
    target = ScriptedTarget(DagRunInfo.exact(utc(2000, 1, 1)))
    prewake = AuroraPreWakeTimetable(target, LEAD)

    restriction = TimeRestriction(earliest=PAST, latest=None, catchup=catchup)
    assert prewake.next_dagrun_info(last_automated_data_interval=None, restriction=restriction) is None
    assert target.questions == questions


def test_a_target_run_inside_the_lead_is_prepared_at_once() -> None:
    """The lead window has begun but the target run has not: the companion run is due now."""
    target_start = pendulum.now("UTC") + timedelta(days=1)
    target = ScriptedTarget(DagRunInfo.exact(target_start))
    prewake = AuroraPreWakeTimetable(target, timedelta(days=2))

    info = prewake.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(PAST, None, catchup=False)
    )

    assert info is not None
    assert info.run_after == target_start - timedelta(days=2)
    assert info.data_interval == DataInterval.exact(target_start - timedelta(days=2))
    assert target.questions == 1


def test_summary_description_and_manual_runs_come_from_the_target() -> None:
    target = CronDataIntervalTimetable("*/5 * * * *", timezone="UTC")
    prewake = AuroraPreWakeTimetable(target, timedelta(minutes=1, seconds=30))

    assert prewake.summary == "*/5 * * * *, 1m30s earlier"
    assert prewake.description == f"1m30s before each run of: {target.description}"
    assert AuroraPreWakeTimetable(target, timedelta(hours=2)).summary == "*/5 * * * *, 2h earlier"
    assert prewake.periodic and prewake.can_be_scheduled
    assert prewake.run_ordering == target.run_ordering
    at = utc(2999, 1, 1, 0, 7)
    assert prewake.infer_manual_data_interval(run_after=at) == moved(
        target.infer_manual_data_interval(run_after=at + prewake.lead), -prewake.lead
    )


def test_the_time_half_of_assets_or_time_is_the_target() -> None:
    from airflow.providers.common.compat.assets import Asset

    cron = CronTriggerTimetable("*/5 * * * *", timezone="UTC")
    if AIRFLOW_2:
        from airflow.timetables.datasets import DatasetOrTimeSchedule

        schedule: Any = DatasetOrTimeSchedule(timetable=cron, datasets=[Asset("s3://bucket/key")])
    else:
        from airflow.sdk import AssetOrTimeSchedule
        from airflow.sdk import CronTriggerTimetable as SdkCron

        schedule = AssetOrTimeSchedule(
            timetable=SdkCron("*/5 * * * *", timezone="UTC"), assets=[Asset("s3://bucket/key")]
        )

    prewake = AuroraPreWakeTimetable(dag_timetable(schedule), LEAD)

    assert prewake.target == cron
    # The companion is time-based only: no asset update starts one of its runs.
    assert not (prewake.dataset_condition if AIRFLOW_2 else prewake.asset_condition)  # type: ignore[attr-defined]


def _refused(target: Any) -> str:
    with pytest.raises(AirflowTimetableInvalid) as raised:
        AuroraPreWakeTimetable(target, LEAD)
    return str(raised.value)


@pytest.mark.parametrize(
    ("schedule", "value"),
    [(None, "schedule=None"), ("@once", "schedule='@once'"), ("@continuous", "schedule='@continuous'")],
)
def test_a_schedule_without_foreseeable_runs_is_refused(schedule: Any, value: str) -> None:
    message = _refused(dag_timetable(schedule))

    assert value in message
    assert "target DAG's `schedule`" in message
    assert message.endswith(SCHEDULE_FIX)


def test_an_asset_triggered_schedule_is_refused() -> None:
    from airflow.providers.common.compat.assets import Asset

    message = _refused(dag_timetable([Asset("s3://bucket/key")]))

    assert "assets are updated" in message
    assert message.endswith(SCHEDULE_FIX)


@pytest.mark.skipif(AIRFLOW_2, reason="partitioned timetables are new in Airflow 3")
def test_a_partitioned_schedule_is_refused() -> None:
    from airflow.timetables.trigger import CronPartitionTimetable

    message = _refused(CronPartitionTimetable("@daily", timezone="UTC"))

    assert "schedule='0 0 * * *' (CronPartitionTimetable)" in message
    assert "per partition" in message
    assert message.endswith(SCHEDULE_FIX)


@pytest.mark.parametrize("target", [NullTimetable(), OnceTimetable(), ContinuousTimetable()])
def test_validate_refuses_what_the_constructor_refuses(target: Timetable) -> None:
    prewake = AuroraPreWakeTimetable(CronTriggerTimetable("@daily", timezone="UTC"), LEAD)
    prewake.target = target

    with pytest.raises(AirflowTimetableInvalid, match="target DAG's `schedule`"):
        prewake.validate()


def test_validate_checks_the_target_itself() -> None:
    prewake = AuroraPreWakeTimetable(CronTriggerTimetable("99 * * * *", timezone="UTC"), LEAD)

    with pytest.raises(AirflowTimetableInvalid, match="out of range"):
        prewake.validate()
    AuroraPreWakeTimetable(CronTriggerTimetable("@daily", timezone="UTC"), LEAD).validate()


@pytest.mark.parametrize("lead", [timedelta(0), timedelta(minutes=-5), 300, "5m", None])
def test_a_lead_that_is_not_a_positive_timedelta_is_refused(lead: Any) -> None:
    with pytest.raises(AirflowTimetableInvalid) as raised:
        AuroraPreWakeTimetable(CronTriggerTimetable("@daily", timezone="UTC"), lead)

    message = str(raised.value)
    assert f"lead={lead!r}" in message
    assert "positive datetime.timedelta" in message
    assert "lead=timedelta(minutes=5)" in message


def test_validate_refuses_a_lead_changed_after_construction() -> None:
    prewake = AuroraPreWakeTimetable(CronTriggerTimetable("@daily", timezone="UTC"), LEAD)
    prewake.lead = timedelta(0)

    with pytest.raises(AirflowTimetableInvalid, match=r"lead=datetime.timedelta\(0\)"):
        prewake.validate()


def test_a_target_that_is_not_a_timetable_is_refused() -> None:
    message = _refused("@daily")

    assert "target='@daily' (str)" in message
    assert "dag.timetable" in message
    assert message.endswith(SCHEDULE_FIX)


def test_serialize_round_trip() -> None:
    prewake = AuroraPreWakeTimetable(CronDataIntervalTimetable("@daily", timezone="UTC"), LEAD)

    data = json.loads(json.dumps(prewake.serialize()))

    assert data["lead"] == 300
    assert data["target"]["__type"] == "airflow.timetables.interval.CronDataIntervalTimetable"
    assert AuroraPreWakeTimetable.deserialize(data) == prewake


def _dag_serialization() -> Any:
    if AIRFLOW_2:
        from airflow.serialization.serialized_objects import SerializedDAG

        return SerializedDAG
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "@daily", timedelta(hours=1)])
def test_a_companion_dag_round_trips_through_airflows_dag_serialization(schedule: Any) -> None:
    prewake = AuroraPreWakeTimetable(dag_timetable(schedule), LEAD)
    companion = DAG("companion", schedule=prewake, start_date=START)
    serialization = _dag_serialization()

    stored = json.loads(json.dumps(serialization.to_dict(companion)))
    restored = serialization.from_dict(stored).timetable

    assert (
        stored["dag"]["timetable"]["__type"]
        == "airflow_aurora_wake.timetables.prewake.AuroraPreWakeTimetable"
    )
    assert isinstance(restored, AuroraPreWakeTimetable)
    assert restored == prewake
    restriction = TimeRestriction(earliest=START, latest=None, catchup=True)
    assert runs(restored, restriction, 4) == runs(prewake, restriction, 4)


def test_the_plugin_is_registered_through_its_entry_point() -> None:
    from airflow import plugins_manager

    (entry_point,) = [
        ep for ep in importlib.metadata.entry_points(group="airflow.plugins") if ep.name == "aurora_wake"
    ]
    assert entry_point.load() is AuroraWakePlugin
    assert AuroraWakePlugin.name == "aurora_wake"
    assert AuroraWakePlugin.timetables == [AuroraPreWakeTimetable]

    path = "airflow_aurora_wake.timetables.prewake.AuroraPreWakeTimetable"
    if AIRFLOW_2:
        plugins_manager.initialize_timetables_plugins()
        registered = plugins_manager.timetable_classes or {}
    else:
        registered = plugins_manager.get_timetables_plugins()
    assert registered[path] is AuroraPreWakeTimetable


class Unregistered(AuroraPreWakeTimetable):
    """The same timetable under an import path no plugin names."""


def test_an_unregistered_timetable_cannot_be_stored_or_read_back() -> None:
    from airflow_aurora_wake.timetables.prewake import _decode_timetable, _encode_timetable

    unregistered = Unregistered(CronTriggerTimetable("@daily", timezone="UTC"), LEAD)

    with pytest.raises(ValueError, match="is not registered"):
        _encode_timetable(unregistered)
    with pytest.raises(ValueError, match="is not registered"):
        _decode_timetable({"__type": f"{__name__}.Unregistered", "__var": unregistered.serialize()})

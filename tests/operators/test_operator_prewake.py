"""The pre-wake run whole with ``dag.test()`` on the emulator: skip, wait for the lead, wake, ready.

Each run is real Airflow (the time trigger and the readiness trigger run inline in
``dag.test()``, the target DAG's state comes from Airflow's metadata database) against an
emulated cluster in front of the real PostgreSQL. The run's scheduled start is chosen a few
seconds ahead; the emulator's timeline says when the wake reached the cluster.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow_support import TEST_DAGS_FOLDER, load_module, run_state, task_states_and_xcoms
from prewake_support import run_prewake

from airflow_aurora_wake.compat import DagScheduleState
from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.utils.prewake_schedule import skip_reason

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

DAG_FILE = TEST_DAGS_FOLDER / "prewake_dags.py"
RESUMES_TAG = "aurora-wake:resumes"


def run_companion(
    dag_id: str, *, starts_in: float, paused: bool = False, target_dag_id: str = "prewake_target"
) -> tuple[Any, float]:
    return run_prewake(
        load(dag_id), load(target_dag_id), TEST_DAGS_FOLDER, starts_in=starts_in, target_paused=paused
    )


def load(dag_id: str) -> Any:
    return getattr(load_module(DAG_FILE), dag_id)


def resumes(cluster: Any) -> list[float]:
    """When each resume of the cluster was requested (epoch seconds)."""
    return [e.at for e in cluster.emu.timeline(cluster.identifier) if e.event == "resume-requested"]


def tag_value(cluster: Any) -> str | None:
    return {t["Key"]: t["Value"] for t in cluster.describe().get("TagList", [])}.get(RESUMES_TAG)


@pytest.mark.timeout(240)
def test_a_paused_cluster_is_woken_a_lead_before_the_run_and_the_warm_time_is_reported(
    airflow_db: str, emulated: Any
) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")

    run, run_start = run_companion("prewake_fixed", starts_in=25)

    assert run_state(run) == "success"
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {"prewake": "success"}
    report = xcoms["prewake"]
    assert report["target_dag_id"] == "prewake_target"
    assert report["lead_seconds"] == 2.0
    assert report["lead_basis"].startswith("set")
    assert report["run_start"] == datetime.fromtimestamp(run_start, tz=timezone.utc).isoformat()
    # Woken once, not before the lead (the time trigger fires at its moment or later).
    wake_at = run_start - 2.0
    assert len(resumes(cluster)) == 1
    assert resumes(cluster)[0] >= wake_at - 0.001
    # The warm time is the scheduled start minus readiness, whatever the machine's load made it.
    assert report["warm_seconds"] == pytest.approx(run_start - report["ready_at"], abs=0.01)
    assert report["resume_seconds"] > 0
    assert report["recorded"] is False  # a set lead records nothing unless asked
    assert tag_value(cluster) is None


@pytest.mark.timeout(240)
def test_a_resume_is_recorded_on_the_cluster_tag_when_asked(airflow_db: str, emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused", timings={"resume_seconds": 4.0})

    run, _ = run_companion("prewake_recorded", starts_in=25)

    assert run_state(run) == "success"
    _, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert xcoms["prewake"]["recorded"] is True
    value = tag_value(cluster)
    assert value is not None
    kind, seconds = value.split(":")
    assert kind == "v2-resume"
    assert float(seconds) == pytest.approx(xcoms["prewake"]["resume_seconds"], abs=0.1)


@pytest.mark.timeout(240)
def test_the_lead_is_learned_from_the_recorded_resumes(airflow_db: str, emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused", timings={"resume_seconds": 4.0})
    arn = cluster.describe()["DBClusterArn"]
    cluster.emu.boto3_client("rds").add_tags_to_resource(
        ResourceName=arn, Tags=[{"Key": RESUMES_TAG, "Value": "v2-resume:1.0 v2-resume:2.0 v2-resume:3.0"}]
    )

    run, _ = run_companion("prewake_learned", starts_in=40)

    assert run_state(run) == "success"
    _, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    report = xcoms["prewake"]
    assert report["lead_basis"].startswith("learned")
    # The 90th percentile of 1, 2 and 3 s is 3 s; the margin is at least 10 s.
    assert report["lead_seconds"] == 13.0
    assert report["recorded"] is True
    entries = (tag_value(cluster) or "").split()
    assert entries[:3] == ["v2-resume:1.0", "v2-resume:2.0", "v2-resume:3.0"]
    assert len(entries) == 4 and entries[3].startswith("v2-resume:")


@pytest.mark.timeout(240)
def test_a_warm_cluster_is_not_recorded_as_a_resume(airflow_db: str, emulated: Any) -> None:
    from airflow_aurora_wake.operators.aurora_prewake import MIN_RESUME_SECONDS

    cluster = emulated(kind="serverless-v2", state="available")

    run, _ = run_companion("prewake_recorded", starts_in=25)

    assert run_state(run) == "success"
    _, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    report = xcoms["prewake"]
    assert resumes(cluster) == []
    # A warm cluster answers at once; only a load that slows the answer past the threshold
    # could make it count, and then it is recorded as what it measured.
    assert report["recorded"] is (report["resume_seconds"] >= MIN_RESUME_SECONDS)
    assert (tag_value(cluster) is None) is (not report["recorded"])


@pytest.mark.timeout(240)
def test_a_cluster_that_does_not_sleep_needs_no_prewake(airflow_db: str, emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="available")

    run, _ = run_companion("prewake_fixed", starts_in=30)

    assert run_state(run) == "success"
    _, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert xcoms["prewake"]["wake_action"] == "none"
    assert resumes(cluster) == []


@pytest.mark.timeout(240)
def test_a_missed_prewake_skips_and_wakes_nothing(airflow_db: str, emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")

    run, _ = run_companion("prewake_fixed", starts_in=-5)

    states, _ = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {"prewake": "skipped"}
    assert resumes(cluster) == []
    assert cluster.counters()["connection_attempts"] == 0


@pytest.mark.timeout(240)
def test_a_paused_target_dag_is_not_prewoken(airflow_db: str, emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")

    run, _ = run_companion("prewake_fixed", starts_in=20, paused=True)

    states, _ = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {"prewake": "skipped"}
    assert resumes(cluster) == []
    assert cluster.counters()["rds_calls"] == {}


@pytest.mark.timeout(240)
def test_the_prewake_begins_the_target_runs_warm_window(airflow_db: str, emulated: Any) -> None:
    from airflow_aurora_wake.core.hold import HOLD_TAG_PREFIX
    from airflow_aurora_wake.operators.aurora_window import window_holder

    cluster = emulated(kind="serverless-v2", state="paused")

    run, run_start = run_companion("prewake_window", starts_in=25, target_dag_id="prewake_window_target")

    assert run_state(run) == "success"
    _, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    report = xcoms["prewake"]
    assert report["wake_action"] == "hold (hold)"
    # The holder is the one the target's scheduled run will compute in its window's tasks: its
    # run id is its start on Airflow 3, its logical date on 2.11 (here the same moment).
    start = datetime.fromtimestamp(run_start, tz=timezone.utc)
    holder = window_holder("prewake_window_target", f"scheduled__{start.isoformat()}", "warm")
    assert report["holder"] == holder
    described = cluster.describe()
    assert [t["Key"] for t in described["TagList"] if t["Key"].startswith(HOLD_TAG_PREFIX)] == [
        HOLD_TAG_PREFIX + holder
    ]
    assert described["ServerlessV2ScalingConfiguration"]["MinCapacity"] == 2.0
    # The window's hold resumed the cluster, through its scaling, once.
    causes = [
        e.detail.get("cause")
        for e in cluster.emu.timeline(cluster.identifier)
        if e.event == "resume-requested"
    ]
    assert causes == ["modify-db-cluster"]


def test_a_warm_window_that_is_not_in_the_target_is_refused() -> None:
    from airflow_aurora_wake.dag_factories.prewake import aurora_prewake_dag

    target = load("prewake_window_target")
    with pytest.raises(InvalidParameterError, match="warm_window"):
        aurora_prewake_dag(
            target, dag_id="bad", db_cluster_identifier="sales", conn_id="db", warm_window="cold"
        )


def test_the_companion_starts_max_lead_before_each_target_run() -> None:
    companion = load("prewake_fixed")
    assert companion.dag_id == "prewake_fixed"
    assert companion.catchup is False
    assert "aurora-prewake" in companion.tags
    assert list(companion.task_dict) == ["prewake"]
    assert companion.timetable.lead == timedelta(seconds=30)


def test_a_lead_longer_than_the_head_start_is_refused_at_parse_time() -> None:
    from airflow_aurora_wake.dag_factories.prewake import aurora_prewake_dag

    target = load("prewake_target")
    with pytest.raises(InvalidParameterError, match=r"lead_time.*max_lead_time"):
        aurora_prewake_dag(
            target,
            dag_id="too_long",
            db_cluster_identifier="sales",
            conn_id="db",
            lead_time=60,
            max_lead_time=30,
        )


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"lead_time": -1}, "lead_time"),
        ({"lead_time": "soon"}, "lead_time"),
        ({"max_lead_time": 0}, "max_lead_time"),
    ],
)
def test_bad_leads_name_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    from airflow_aurora_wake.dag_factories.prewake import aurora_prewake_dag

    target = load("prewake_target")
    with pytest.raises(InvalidParameterError, match=parameter):
        aurora_prewake_dag(target, dag_id="bad", db_cluster_identifier="sales", conn_id="db", **kwargs)


def test_a_prewake_that_would_not_defer_is_refused_at_parse_time() -> None:
    from airflow_aurora_wake.dag_factories.prewake import aurora_prewake_dag

    target = load("prewake_target")
    with pytest.raises(InvalidParameterError, match="deferrable"):
        aurora_prewake_dag(
            target, dag_id="bad", db_cluster_identifier="sales", conn_id="db", deferrable=False
        )


def test_a_target_without_a_time_based_schedule_is_refused() -> None:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_aurora_wake.dag_factories.prewake import aurora_prewake_dag

    with DAG("manual_only", schedule=None) as manual_only:
        pass
    with pytest.raises(Exception, match="schedule"):
        aurora_prewake_dag(manual_only, dag_id="bad", db_cluster_identifier="sales", conn_id="db")


NOW = 1_800_000_000.0
LOGICAL = datetime.fromtimestamp(NOW, tz=timezone.utc)


@pytest.mark.parametrize(
    ("state", "scheduled", "run_start", "reason"),
    [
        (DagScheduleState("t", False, LOGICAL), True, NOW + 60, None),
        (DagScheduleState("t", True, LOGICAL), True, NOW + 60, "'t' is paused"),
        (DagScheduleState("t", True, LOGICAL), False, NOW + 60, "'t' is paused"),
        (DagScheduleState("t", False, None), True, NOW + 60, "has no next run"),
        (DagScheduleState("t", False, LOGICAL + timedelta(minutes=5)), True, NOW + 60, "will next run for"),
        # A timedelta schedule without catchup counts from "now": a run drifted by less than the
        # head start is the same run.
        (DagScheduleState("t", False, LOGICAL + timedelta(seconds=0.5)), True, NOW + 60, None),
        # The scheduler may not have created the target's previous run yet: an earlier next run is fine.
        (DagScheduleState("t", False, LOGICAL - timedelta(minutes=5)), True, NOW + 60, None),
        # A manual pre-wake has no target run of its own: the schedule is not checked.
        (DagScheduleState("t", False, None), False, NOW + 60, None),
        (DagScheduleState("t", False, LOGICAL + timedelta(minutes=5)), False, NOW + 60, None),
        (DagScheduleState("t", False, LOGICAL), True, NOW, "Missed"),
        (DagScheduleState("t", False, LOGICAL), False, NOW - 5, "Missed"),
    ],
)
def test_a_prewake_is_due_only_for_a_run_that_will_happen(
    state: DagScheduleState, scheduled: bool, run_start: float, reason: str | None
) -> None:
    got = skip_reason(
        state,
        scheduled=scheduled,
        logical_date=LOGICAL,
        run_start=run_start,
        now=NOW,
        drift=timedelta(seconds=30),
    )
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got


@pytest.mark.parametrize(
    ("dag_run", "context", "expected"),
    [
        # Airflow 3: the run's run_after is the target run's start, the head start earlier.
        ({"run_after": LOGICAL, "run_type": "scheduled"}, {}, LOGICAL + timedelta(seconds=30)),
        # Airflow 2.11, a scheduled run: its data interval is the target run's, moved as much.
        ({"run_type": "scheduled"}, {"data_interval_end": LOGICAL}, LOGICAL + timedelta(seconds=30)),
        # Airflow 2.11, a manual run: as if the target started the head start after it.
        ({"run_type": "manual"}, {"logical_date": LOGICAL}, LOGICAL + timedelta(seconds=30)),
    ],
)
def test_the_run_start_is_the_target_runs_on_either_airflow(
    dag_run: dict[str, Any], context: dict[str, Any], expected: datetime
) -> None:
    from types import SimpleNamespace

    companion = load("prewake_fixed")
    task = companion.get_task("prewake")
    full_context = {"dag": companion, "dag_run": SimpleNamespace(**dag_run), **context}
    assert task._run_start(full_context, companion.timetable) == expected.timestamp()

"""The warm window run whole with ``dag.test()`` on the emulator: hold, ready, body, release.

Each run is real Airflow (setup and teardown tasks, a deferred readiness sensor whose trigger
``dag.test()`` runs inline) against an emulated cluster in front of the real PostgreSQL. The
body's first task describes the cluster while the window holds it; the emulator's counters and
timeline say what RDS was asked, and the cluster's describe after the run what is left.
"""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow_support import run_state, task_states_and_xcoms
from window_support import load_window_dag, run_window_dag

from airflow_aurora_wake.core.hold import HOLD_TAG_PREFIX
from airflow_aurora_wake.operators.aurora_window import window_holder

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

#: The paused v2 cluster's own scaling, which every window must give back.
ORIGINAL = {"MinCapacity": 0.0, "MaxCapacity": 4.0, "SecondsUntilAutoPause": 300}
WINDOW_TASKS = ("warm.hold", "warm.ready", "warm.hold_floor", "warm.release")


def hold_tags(cluster: Any) -> list[str]:
    return sorted(
        t["Key"] for t in cluster.describe().get("TagList", []) if t["Key"].startswith(HOLD_TAG_PREFIX)
    )


def scaling_changes(cluster: Any) -> list[float]:
    """The ``MinCapacity`` each ``ModifyDBCluster`` set, in order."""
    return [
        event.detail["after"]["min_capacity"]
        for event in cluster.emu.timeline(cluster.identifier)
        if event.event == "scaling-changed"
    ]


@pytest.mark.timeout(240)
def test_a_window_holds_a_paused_cluster_during_the_body_and_gives_it_back(
    airflow_db: str, emulated: Any
) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")

    run = run_window_dag(load_window_dag("warm_window"))

    assert run_state(run) == "success"
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == dict.fromkeys([*WINDOW_TASKS, "warm.etl", "warm.report"], "success")
    holder = window_holder("warm_window", run.run_id, "warm")
    # During the body: the floor held, the hold's tag on the cluster.
    assert xcoms["warm.etl"] == {
        "status": "available",
        "scaling": {"MinCapacity": 2.0, "MaxCapacity": 4.0},
        "hold_tags": [HOLD_TAG_PREFIX + holder],
    }
    assert xcoms["warm.hold"]["holder"] == xcoms["warm.hold_floor"]["holder"] == holder
    assert xcoms["warm.release"]["holder"] == holder
    # The hold resumed the paused cluster through its scaling: no connection was needed to wake it.
    resumes = [e for e in cluster.emu.timeline(cluster.identifier) if e.event == "resume-requested"]
    assert resumes[0].detail["cause"] == "modify-db-cluster"
    # After: the release gave the scaling back and said what the window cost.
    release = xcoms["warm.release"]
    assert (release["released"], release["restored"], release["holds"]) == (True, True, 0)
    assert release["min_capacity"] == 2.0
    assert release["held_seconds"] >= 0
    assert release["acu_hours"] == pytest.approx(2.0 * release["held_seconds"] / 3600, abs=1e-4)
    assert scaling_changes(cluster) == [2.0, 0.0]
    assert cluster.describe()["ServerlessV2ScalingConfiguration"] == ORIGINAL
    assert hold_tags(cluster) == []


@pytest.mark.timeout(240)
def test_the_release_runs_when_the_body_fails_and_leaves_no_hold(airflow_db: str, emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")

    run = run_window_dag(load_window_dag("warm_window"), run_conf={"fail": True})

    assert run_state(run) == "failed"
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states["warm.etl"] == "failed"
    assert states["warm.report"] == "upstream_failed"
    # The teardown ran all the same, and gave the scaling back.
    assert states["warm.release"] == "success"
    assert (xcoms["warm.release"]["released"], xcoms["warm.release"]["restored"]) == (True, True)
    assert scaling_changes(cluster) == [2.0, 0.0]
    assert cluster.describe()["ServerlessV2ScalingConfiguration"] == ORIGINAL
    assert hold_tags(cluster) == []


@pytest.mark.timeout(240)
def test_a_stopped_cluster_is_started_held_once_available_and_stopped_by_the_release(
    airflow_db: str, emulated: Any
) -> None:
    cluster = emulated(kind="serverless-v2", state="stopped")

    run = run_window_dag(load_window_dag("warm_window_stop"))

    assert run_state(run) == "success"
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert set(states.values()) == {"success"}
    # The first hold started it (its floor waits), the second applied the floor once it was up.
    assert (xcoms["warm.hold"]["action"], xcoms["warm.hold"]["settled"]) == ("start-and-hold", False)
    assert (xcoms["warm.hold_floor"]["action"], xcoms["warm.hold_floor"]["settled"]) == ("hold", True)
    assert xcoms["warm.etl"]["scaling"] == {"MinCapacity": 2.0, "MaxCapacity": 4.0}
    # The window started it, so the release stopped it again.
    assert (xcoms["warm.release"]["stopped"], xcoms["warm.release"]["restored"]) == (True, True)
    calls = cluster.counters()["rds_calls"]
    assert (calls["StartDBCluster"], calls["StopDBCluster"]) == (1, 1)
    events = [event.event for event in cluster.emu.timeline(cluster.identifier)]
    assert events.index("start-requested") < events.index("scaling-changed") < events.index("stop-requested")
    assert hold_tags(cluster) == []


@pytest.mark.timeout(240)
def test_a_provisioned_cluster_has_nothing_to_hold_and_the_window_still_runs(
    airflow_db: str, emulated: Any
) -> None:
    cluster = emulated(kind="provisioned", state="available")

    run = run_window_dag(load_window_dag("warm_window"))

    assert run_state(run) == "success"
    _, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert xcoms["warm.hold"]["action"] == xcoms["warm.hold_floor"]["action"] == "none"
    assert "provisioned" in xcoms["warm.hold"]["detail"]
    assert (xcoms["warm.release"]["released"], xcoms["warm.release"]["acu_hours"]) == (False, 0.0)
    assert set(cluster.counters()["rds_calls"]) == {"DescribeDBClusters"}
    assert hold_tags(cluster) == []


@pytest.mark.timeout(300)
def test_running_the_same_dag_run_again_holds_the_same_hold(airflow_db: str, emulated: Any) -> None:
    """A run whose release did not run leaves its hold; the same run again takes it over and ends it."""
    cluster = emulated(kind="serverless-v2", state="paused")
    when = pendulum.datetime(2024, 6, 1, tz="UTC")

    first = run_window_dag(load_window_dag("warm_window"), when=when, mark_success_pattern=r"warm\.release")
    holder = window_holder("warm_window", first.run_id, "warm")
    _, first_xcoms = task_states_and_xcoms(first.dag_id, first.run_id)
    assert hold_tags(cluster) == [HOLD_TAG_PREFIX + holder]

    again = run_window_dag(load_window_dag("warm_window"), when=when)

    assert again.run_id == first.run_id
    assert run_state(again) == "success"
    _, xcoms = task_states_and_xcoms(again.dag_id, again.run_id)
    # One hold, the first run's: the same holder, the same start, no second tag.
    assert xcoms["warm.hold"]["holder"] == holder
    assert xcoms["warm.hold"]["holds"] == 1
    assert xcoms["warm.hold"]["since"] == first_xcoms["warm.hold"]["since"]
    assert xcoms["warm.etl"]["hold_tags"] == [HOLD_TAG_PREFIX + holder]
    assert (xcoms["warm.release"]["released"], xcoms["warm.release"]["restored"]) == (True, True)
    assert hold_tags(cluster) == []
    assert cluster.describe()["ServerlessV2ScalingConfiguration"] == ORIGINAL


@pytest.mark.timeout(240)
def test_a_floor_above_the_clusters_maximum_fails_the_hold_before_anything_changes(
    airflow_db: str, emulated: Any
) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")
    dag = load_window_dag("warm_window")
    for task_id in ("warm.hold", "warm.hold_floor"):
        dag.get_task(task_id).min_capacity = 8  # the cluster scales to 4 at most; no max_capacity

    run = run_window_dag(dag)

    assert run_state(run) == "failed"
    states, _ = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states["warm.hold"] == "failed"
    assert states["warm.etl"] == "upstream_failed"
    # No setup succeeded: nothing to release.
    assert states["warm.release"] in ("skipped", "upstream_failed")
    assert set(cluster.counters()["rds_calls"]) == {"DescribeDBClusters"}
    assert hold_tags(cluster) == []
    assert cluster.describe()["ServerlessV2ScalingConfiguration"] == ORIGINAL

"""The cluster state machine on its own, with explicit times: exact timelines, no waiting."""

from __future__ import annotations

import pytest
from emulator_helpers import FAST

from airflow_aurora_wake.emulator import ClusterSpec, Faults, Timings
from airflow_aurora_wake.emulator.model import ClusterModel, EmulatedStateError, Phase
from airflow_aurora_wake.emulator.scaling import V2Scaling

pytestmark = pytest.mark.emulator

T0 = 1_800_000_000.0


def make(spec: ClusterSpec, timings: Timings = FAST) -> ClusterModel:
    return ClusterModel(
        spec, timings, arn=f"arn:aws:rds:us-east-1:1:cluster:{spec.identifier}", port=1, now=T0
    )


def names(model: ClusterModel) -> list[str]:
    return [event.event for event in model.timeline]


def test_v2_resume_is_ready_exactly_resume_seconds_after_the_request() -> None:
    model = make(ClusterSpec("a"))
    assert model.advance(T0 + 5) is Phase.PAUSED
    assert model.request_resume("connection", T0 + 5)
    assert model.advance(T0 + 5.99) is Phase.RESUMING
    assert model.status() == "available"  # AWS hides resuming behind "available"
    assert model.advance(T0 + 6.0) is Phase.AVAILABLE
    assert model.last_ready_at == T0 + 5 + FAST.resume_seconds
    assert names(model) == ["created", "paused", "resume-requested", "ready"]
    assert model.timeline[2].detail["cause"] == "connection"


def test_a_second_request_during_a_resume_does_not_restart_it() -> None:
    model = make(ClusterSpec("a"))
    assert model.request_resume("connection", T0 + 1)
    assert not model.request_resume("data-api", T0 + 1.5)
    model.advance(T0 + 10)
    assert model.last_ready_at == T0 + 1 + FAST.resume_seconds


def test_v1_capacity_comes_before_connections() -> None:
    model = make(ClusterSpec("v1", kind="serverless-v1", engine="aurora-mysql"))
    assert model.capacity == 0
    pending, current = model.modify_capacity(4, T0 + 1)
    assert (pending, current) == (4, 0)
    model.advance(T0 + 1 + FAST.v1_capacity_seconds - 0.01)
    assert model.capacity == 0
    assert model.advance(T0 + 1 + FAST.v1_capacity_seconds) is Phase.RESUMING
    assert model.capacity == 4
    ready = T0 + 1 + FAST.v1_capacity_seconds + FAST.v1_connect_extra_seconds
    assert model.advance(ready - 0.01) is Phase.RESUMING
    assert model.advance(ready) is Phase.AVAILABLE
    assert names(model)[-3:] == ["resume-requested", "capacity-available", "ready"]
    assert model.timeline[-2].at == T0 + 1 + FAST.v1_capacity_seconds


def test_v1_modify_capacity_while_resuming_is_a_state_error() -> None:
    model = make(ClusterSpec("v1", kind="serverless-v1"))
    model.modify_capacity(4, T0)
    with pytest.raises(EmulatedStateError, match="already scaling"):
        model.modify_capacity(8, T0 + 0.1)


def test_auto_pause_after_idle_counts_from_the_last_close() -> None:
    model = make(ClusterSpec("a", state="available", seconds_until_auto_pause=10))
    model.connection_opened(T0 + 1)
    assert model.advance(T0 + 100) is Phase.AVAILABLE  # an open connection keeps it awake
    model.connection_closed(T0 + 100)
    assert model.advance(T0 + 109.9) is Phase.AVAILABLE
    assert model.advance(T0 + 110) is Phase.PAUSED
    assert model.timeline[-1].event == "auto-paused"
    assert model.timeline[-1].at == T0 + 110


def test_provisioned_and_v2_with_minimum_above_zero_never_pause() -> None:
    provisioned = make(ClusterSpec("p", kind="provisioned", state="available", seconds_until_auto_pause=1))
    v2 = make(ClusterSpec("v", state="available", min_capacity=0.5, seconds_until_auto_pause=1))
    assert provisioned.advance(T0 + 1000) is Phase.AVAILABLE
    assert v2.advance(T0 + 1000) is Phase.AVAILABLE


def test_deep_sleep_resume_takes_the_deep_time() -> None:
    timings = Timings(resume_seconds=1, deep_sleep_after_seconds=100, deep_resume_seconds=7)
    model = make(ClusterSpec("a"), timings)
    model.request_resume("connection", T0 + 150)
    assert model.timeline[-1].detail["deep"] is True
    model.advance(T0 + 200)
    assert model.last_ready_at == T0 + 157


def test_start_and_stop_follow_aws_state_rules() -> None:
    model = make(ClusterSpec("a", state="available"))
    with pytest.raises(EmulatedStateError, match="expected it to be one of stopped"):
        model.start(T0)
    model.stop(T0 + 1)
    assert model.status() == "stopping"
    with pytest.raises(EmulatedStateError, match="expected it to be one of available"):
        model.stop(T0 + 1.1)
    assert model.advance(T0 + 1 + FAST.stop_seconds) is Phase.STOPPED
    model.start(T0 + 10)
    assert model.advance(T0 + 10.5) is Phase.STARTING
    assert model.advance(T0 + 10 + FAST.start_seconds) is Phase.AVAILABLE
    assert names(model)[-4:] == ["stop-requested", "stopped", "start-requested", "available"]


# -- v2 scaling changes (ModifyDBCluster) ------------------------------------------------


def test_a_scaling_change_is_in_the_timeline_with_the_scaling_before_and_after() -> None:
    model = make(ClusterSpec("a", state="available"))
    model.update_v2_scaling(2, 8, None, T0 + 1)
    change = model.timeline[-1]
    assert (change.at, change.event) == (T0 + 1, "scaling-changed")
    assert change.detail == {
        "cause": "modify-db-cluster",
        "before": {"min_capacity": 0.0, "max_capacity": 4.0, "seconds_until_auto_pause": 300},
        "after": {"min_capacity": 2.0, "max_capacity": 8.0, "seconds_until_auto_pause": 300},
    }
    assert "resume-requested" not in names(model)  # it was awake


@pytest.mark.parametrize(
    ("change", "resumes"),
    [
        ((0.5, None, None), True),  # AWS's own example: the minimum from 0 to 0.5
        ((None, 8, None), True),  # the maximum alone changes the range too
        ((None, None, 600), False),  # the idle time is not the range
    ],
)
def test_a_paused_cluster_resumes_when_its_range_changes(
    change: tuple[float | None, float | None, int | None], resumes: bool
) -> None:
    model = make(ClusterSpec("a"))
    model.update_v2_scaling(*change, T0 + 1)
    assert names(model)[2] == "scaling-changed"
    if resumes:
        assert names(model)[3:] == ["resume-requested"]
        assert model.timeline[3].detail["cause"] == "modify-db-cluster"
        assert model.advance(T0 + 1 + FAST.resume_seconds) is Phase.AVAILABLE
    else:
        assert names(model)[3:] == []
        assert model.advance(T0 + 100_000) is Phase.PAUSED


def test_the_same_scaling_again_records_nothing() -> None:
    model = make(ClusterSpec("a"))
    model.update_v2_scaling(0, 4, 300, T0 + 1)
    assert names(model) == ["created", "paused"]
    assert model.advance(T0 + 1) is Phase.PAUSED


def test_a_raised_minimum_keeps_it_awake_and_the_idle_clock_restarts_when_it_returns_to_0() -> None:
    model = make(ClusterSpec("a", state="available", seconds_until_auto_pause=10))
    assert model.next_transition_at() == T0 + 10
    model.update_v2_scaling(2, None, None, T0 + 5)
    assert model.next_transition_at() is None
    assert model.advance(T0 + 100_000) is Phase.AVAILABLE  # idle for a day, held
    model.update_v2_scaling(0, None, None, T0 + 100_000)
    assert model.advance(T0 + 100_009.9) is Phase.AVAILABLE
    assert model.advance(T0 + 100_010) is Phase.PAUSED
    assert names(model)[-3:] == ["scaling-changed", "scaling-changed", "auto-paused"]
    assert (model.timeline[-1].at, model.timeline[-1].detail) == (T0 + 100_010, {"idle_seconds": 10})


def test_a_scaling_change_of_an_idle_cluster_restarts_its_idle_clock() -> None:
    model = make(ClusterSpec("a", state="available", seconds_until_auto_pause=10))
    model.update_v2_scaling(None, 8, None, T0 + 8)
    assert model.next_transition_at() == T0 + 18


def test_an_open_connection_keeps_a_cluster_whose_minimum_returned_to_0_awake() -> None:
    model = make(ClusterSpec("a", state="available", min_capacity=2, seconds_until_auto_pause=10))
    model.connection_opened(T0 + 1)
    model.update_v2_scaling(0, None, None, T0 + 2)
    assert model.next_transition_at() is None
    model.connection_closed(T0 + 50)
    assert model.next_transition_at() == T0 + 60


def test_stop_and_start_keep_a_raised_floor_and_a_stopped_cluster_cannot_be_modified() -> None:
    model = make(ClusterSpec("a", state="available", seconds_until_auto_pause=10))
    model.update_v2_scaling(2, 8, None, T0 + 1)
    model.stop(T0 + 2)
    with pytest.raises(EmulatedStateError, match="stopping"):
        model.check_modifiable(T0 + 2)
    assert model.advance(T0 + 2 + FAST.stop_seconds) is Phase.STOPPED
    with pytest.raises(EmulatedStateError, match="stopped"):
        model.check_modifiable(T0 + 3)
    model.start(T0 + 4)
    with pytest.raises(EmulatedStateError, match="starting"):
        model.check_modifiable(T0 + 4)
    assert model.advance(T0 + 4 + FAST.start_seconds) is Phase.AVAILABLE
    model.check_modifiable(T0 + 4 + FAST.start_seconds)
    assert model.v2_scaling() == V2Scaling(2.0, 8.0, 10)
    assert model.next_transition_at() is None  # the floor still keeps it awake


def test_an_admin_pause_follows_the_live_minimum() -> None:
    model = make(ClusterSpec("a", state="available", min_capacity=0.5))
    with pytest.raises(ValueError, match="cannot be paused"):
        model.force_pause(T0 + 1)
    model.update_v2_scaling(0, None, None, T0 + 2)
    model.force_pause(T0 + 3)
    assert model.advance(T0 + 3) is Phase.PAUSED


def test_other_kinds_ignore_a_v2_scaling() -> None:
    model = make(ClusterSpec("p", kind="provisioned", state="available"))
    model.update_v2_scaling(2, 8, None, T0 + 1)
    assert names(model) == ["created", "available"]


def test_the_after_resume_fault_window_opens_at_ready() -> None:
    model = make(ClusterSpec("a"))
    faults = Faults(after_resume_error="starting-up", after_resume_seconds=2)
    model.request_resume("connection", T0)
    model.advance(T0 + 1)
    assert model.in_fault_window(faults, T0 + 1)
    assert model.in_fault_window(faults, T0 + 2.99)
    assert not model.in_fault_window(faults, T0 + 3)
    assert not model.in_fault_window(Faults(), T0 + 1.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "provisioned", "state": "paused"}, "cannot be paused"),
        ({"state": "paused", "min_capacity": 0.5}, "pauses only with min_capacity 0"),
        ({"kind": "serverless-v1", "engine": "aurora-postgresql", "min_capacity": 1}, "not a valid"),
        ({"kind": "serverless-v1", "state": "stopped"}, "cannot be stopped"),
        ({"kind": "v3"}, "kind must be one of"),
        ({"engine": "aurora-mysql", "upstream": "postgresql://u@h/db"}, "needs a mysql upstream"),
        ({"upstream": "oracle://x"}, "not understood"),
    ],
)
def test_cluster_spec_rejects_impossible_clusters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClusterSpec("bad", **kwargs)  # type: ignore[arg-type]


def test_spec_defaults_follow_the_kind_and_engine() -> None:
    assert ClusterSpec("a").capacity_range == (0, 4)
    assert ClusterSpec("b", kind="serverless-v1", engine="aurora-mysql").capacity_range == (1, 16)
    assert ClusterSpec("c", kind="serverless-v1").capacity_range == (2, 16)
    assert ClusterSpec("d", engine="aurora-mysql").upstream_dsn == "mysql://root@127.0.0.1:3306/test"

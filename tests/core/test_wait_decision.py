"""core.wait.decision: the one decision of every wait, row by row (pure, no I/O)."""

from __future__ import annotations

import pytest
from cluster_snapshots import described_cluster

from airflow_aurora_wake.core.errors import ClusterStateError
from airflow_aurora_wake.core.wait import Next, Observation, decide

cluster = described_cluster


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        (Observation(cluster()), Next.PROBE),
        (Observation(cluster(), database_answered=True), Next.READY),
        (Observation(cluster(v1_capacity=0), database_answered=True), Next.DESCRIBE),
        (Observation(cluster(v1_capacity=2), database_answered=True), Next.READY),
        (Observation(cluster("starting")), Next.PROBE),
        (Observation(cluster("starting"), probe="data-api"), Next.DESCRIBE),
        (Observation(cluster("starting"), database_answered=True), Next.DESCRIBE),
        (Observation(cluster("starting"), answered_while_waking=True), Next.DESCRIBE),
        (Observation(cluster("stopped"), stopped_for=10.0), Next.DESCRIBE),
        (Observation(cluster("stopped"), stopped_for=60.0), Next.FAIL),
        (Observation(cluster("stopped"), stopped_for=0.0, seen_up="available"), Next.FAIL),
        (Observation(cluster("deleting")), Next.FAIL),
        (Observation(cluster("backing-up"), database_answered=True), Next.READY),
    ],
    ids=[
        "available-probe",
        "available-answered-ready",
        "v1-capacity-0-answered-waits-for-rds",
        "v1-capacity-2-answered-ready",
        "starting-connection-probes",
        "starting-data-api-describes",
        "starting-answered-describes",
        "starting-after-answer-describes",
        "stopped-within-grace",
        "stopped-past-grace",
        "stopped-after-seen-up",
        "deleting",
        "backing-up-is-available",
    ],
)
def test_decide(seen: Observation, expected: Next) -> None:
    decision = decide(seen)
    assert decision.next is expected
    assert (decision.error is not None) == (expected is Next.FAIL)
    assert decision.message.startswith("cluster sales is ")


def test_stopped_within_grace_rechecks_when_the_grace_ends() -> None:
    decision = decide(Observation(cluster("stopped"), stopped_grace=60.0, stopped_for=45.0))
    assert decision.recheck_after == pytest.approx(15.0)
    assert "waiting up to 60 s" in decision.message


def test_stopped_after_seen_up_says_it_was_stopped_during_the_wait() -> None:
    decision = decide(Observation(cluster("stopped"), seen_up="starting"))
    assert isinstance(decision.error, ClusterStateError)
    assert "was stopped while waiting" in str(decision.error) and "'starting'" in str(decision.error)


def test_stopped_past_grace_says_to_start_it() -> None:
    decision = decide(Observation(cluster("stopped"), stopped_grace=30.0, stopped_for=30.0))
    assert "stayed stopped for 30 s" in str(decision.error)

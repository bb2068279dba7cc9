"""core.wait.decision.describe_after: when a wait asks RDS again (pure: decisions, no timings).

Describes go where they can tell something: while the decision waits on RDS, after a probe that
failed in a way RDS may explain, and every few intervals during a start; never while a probe held
open by a resuming instance watches the resume itself.
"""

from __future__ import annotations

import pytest
from cluster_snapshots import described_cluster

from airflow_aurora_wake.core.errors import ErrorVerdict
from airflow_aurora_wake.core.wait.decision import (
    HELD_DESCRIBE_SECONDS,
    WAKING_DESCRIBE_STRETCH,
    Observation,
    ProbeEnd,
    decide,
    describe_after,
)
from airflow_aurora_wake.core.wait.round import ProbeRound

INTERVAL = 10.0
FAILED = [ErrorVerdict(retry=True, reason="not ready")]


cluster = described_cluster


def after(seen: Observation, probe_end: ProbeEnd) -> float:
    return describe_after(seen, decide(seen), probe_end, interval=INTERVAL)


def test_a_probe_held_open_on_an_available_cluster_brings_only_the_rare_safety_describe() -> None:
    seen = Observation(cluster())
    assert after(seen, ProbeEnd.HELD) == HELD_DESCRIBE_SECONDS
    assert after(seen, ProbeEnd.NONE) == HELD_DESCRIBE_SECONDS  # the probe right after the first describe
    # ...never sooner than the interval a user asked for.
    assert describe_after(seen, decide(seen), ProbeEnd.HELD, interval=600.0) == 600.0


@pytest.mark.parametrize("status", ["available", "modifying", "backing-up"])
def test_a_probe_that_failed_at_once_brings_a_describe_one_interval_after_the_last(status: str) -> None:
    # Refused, reset, DNS, an answer from the server: the cluster may have been stopped or deleted.
    assert after(Observation(cluster(status)), ProbeEnd.FAILED) == INTERVAL


@pytest.mark.parametrize("probe_end", list(ProbeEnd))
def test_a_start_is_described_every_few_intervals_whatever_the_probe(probe_end: ProbeEnd) -> None:
    assert after(Observation(cluster("starting")), probe_end) == INTERVAL * WAKING_DESCRIBE_STRETCH


@pytest.mark.parametrize(
    "seen",
    [
        Observation(cluster("stopped"), stopped_for=1.0),  # only RDS can show the start
        Observation(cluster("starting"), answered_while_waking=True),  # RDS decides from then on
        Observation(cluster(v1_capacity=0), database_answered=True),  # RDS must agree (v1 capacity)
        Observation(cluster(), probe="data-api"),  # each probe is itself an AWS call
        Observation(cluster(), instances="all"),  # new DB instances show only in describes
    ],
    ids=["stopped", "answered-while-starting", "confirm-lagging", "data-api", "all-instances"],
)
@pytest.mark.parametrize("probe_end", list(ProbeEnd))
def test_waits_that_rds_moves_on_keep_the_regular_rate(seen: Observation, probe_end: ProbeEnd) -> None:
    assert after(seen, probe_end) == INTERVAL


def test_describe_interval_stays_the_smallest_spacing() -> None:
    cases = [
        Observation(cluster(status), probe=probe, instances=instances)
        for status in ("available", "starting", "stopped")
        for probe in ("connection", "data-api")
        for instances in ("writer", "reader", "all")
    ]
    for seen in cases:
        for probe_end in ProbeEnd:
            spacing = after(seen, probe_end)
            assert spacing >= INTERVAL, (seen, probe_end)


def test_how_a_round_ended() -> None:
    refused = ProbeRound.failed(FAILED, [OSError("could not connect")])
    assert refused.end is ProbeEnd.FAILED and not refused.held and not refused.refused
    held = ProbeRound.failed(FAILED, [TimeoutError("connection timed out after 30.0 s")])
    assert held.end is ProbeEnd.HELD and held.held
    # A driver's error wrapping the refusal (aiomysql: 2003 from ConnectionRefusedError).
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except ConnectionRefusedError as exc:
            raise RuntimeError('(2003, "Can\'t connect to MySQL server")') from exc
    except RuntimeError as wrapped:
        assert ProbeRound.failed(FAILED, [wrapped]).refused
    # One endpoint held, another refused: not every attempt watched a resume.
    mixed = ProbeRound.failed(FAILED, [TimeoutError(), ConnectionRefusedError()])
    assert mixed.end is ProbeEnd.FAILED and not mixed.refused
    assert ProbeRound(endpoint="h:5432").end is ProbeEnd.NONE

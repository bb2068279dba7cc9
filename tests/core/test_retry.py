"""RetryPolicy: full jitter within the capped exponential."""

from __future__ import annotations

import random

import pytest

from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.core.retry import PROBE_RETRY, THROTTLE_RETRY, RetryPolicy


def test_caps_grow_exponentially_then_stop_at_the_maximum() -> None:
    policy = RetryPolicy(initial=0.2, maximum=1.0, multiplier=2.0)
    assert [policy.cap(attempt) for attempt in range(1, 6)] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    assert policy.cap(10_000) == 1.0  # no overflow on huge attempt counts


@pytest.mark.parametrize("policy", [PROBE_RETRY, THROTTLE_RETRY, RetryPolicy(0.5, 5.0, 3.0)])
def test_every_delay_lies_within_zero_and_the_cap(policy: RetryPolicy) -> None:
    rng = random.Random(1234)
    for attempt in range(1, 40):
        for _ in range(50):
            delay = policy.delay(attempt, rng)
            assert 0.0 <= delay <= policy.cap(attempt)


def test_jitter_is_full_not_constant() -> None:
    rng = random.Random(7)
    delays = [PROBE_RETRY.delay(8, rng) for _ in range(500)]
    # Uniform over [0, 1]: both halves are used, so waiters spread apart.
    assert min(delays) < 0.25 and max(delays) > 0.75


def test_same_seed_same_delays() -> None:
    first = [THROTTLE_RETRY.delay(n, random.Random(99)) for n in range(1, 10)]
    second = [THROTTLE_RETRY.delay(n, random.Random(99)) for n in range(1, 10)]
    assert first == second


def test_probe_policy_notices_readiness_within_a_second() -> None:
    assert PROBE_RETRY.initial == 0.2 and PROBE_RETRY.maximum == 1.0
    assert THROTTLE_RETRY.initial >= 1.0 and THROTTLE_RETRY.maximum >= 20.0


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"initial": 0}, "initial"),
        ({"initial": 2.0, "maximum": 1.0}, "maximum"),
        ({"multiplier": 0.5}, "multiplier"),
    ],
)
def test_invalid_policies(kwargs: dict[str, float], parameter: str) -> None:
    with pytest.raises(InvalidParameterError, match=parameter):
        RetryPolicy(**kwargs)


def test_only_a_refused_connection_gets_the_short_cadence() -> None:
    from airflow_aurora_wake.core.retry import (
        DATA_API_RETRY,
        REFUSED_PROBE_RETRY,
        WAKING_PROBE_RETRY,
        probe_retry_policy,
    )

    assert probe_retry_policy(probe="connection", refused=True, waking=False) is REFUSED_PROBE_RETRY
    assert probe_retry_policy(probe="connection", refused=True, waking=True) is REFUSED_PROBE_RETRY
    # Failures that cost something keep their backoff: timeouts and answers, Data API calls.
    assert probe_retry_policy(probe="connection", refused=False, waking=False) is PROBE_RETRY
    assert probe_retry_policy(probe="connection", refused=False, waking=True) is WAKING_PROBE_RETRY
    for refused in (True, False):
        assert probe_retry_policy(probe="data-api", refused=refused, waking=False) is DATA_API_RETRY
    assert REFUSED_PROBE_RETRY.cap(1) < PROBE_RETRY.cap(1)


def test_a_floor_keeps_the_short_cadence_from_spinning() -> None:
    from airflow_aurora_wake.core.retry import REFUSED_PROBE_RETRY

    rng = random.Random(5)
    delays = [REFUSED_PROBE_RETRY.delay(attempt, rng) for attempt in range(1, 500)]
    assert min(delays) >= REFUSED_PROBE_RETRY.floor > 0
    assert max(delays) <= REFUSED_PROBE_RETRY.maximum
    assert len(set(delays)) > 1  # jitter: pollers refused together do not retry together
    with pytest.raises(InvalidParameterError, match="floor"):
        RetryPolicy(initial=0.1, maximum=0.1, floor=0.2)

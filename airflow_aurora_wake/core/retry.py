"""Capped exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the capped exponential) spreads many waiters apart,
so a thousand callers that fail together do not retry together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from airflow_aurora_wake.core.errors import InvalidParameterError

__all__ = [
    "AWS_RETRY",
    "DATA_API_RETRY",
    "PROBE_RETRY",
    "REFUSED_PROBE_RETRY",
    "THROTTLE_RETRY",
    "WAKING_PROBE_RETRY",
    "Backoff",
    "RetryPolicy",
    "probe_retry_policy",
]


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before retry number ``attempt``.

    :param initial: the cap of the first delay, in seconds.
    :param maximum: the largest cap, in seconds.
    :param multiplier: how much the cap grows per attempt.
    :param floor: the smallest delay, in seconds: the jitter is drawn between it and the cap, so
        a policy for failures that come back at once can be short without ever spinning.
    """

    initial: float = 0.2
    maximum: float = 1.0
    multiplier: float = 2.0
    floor: float = 0.0

    def __post_init__(self) -> None:
        if not self.initial > 0:
            raise InvalidParameterError("initial", self.initial, "must be a number of seconds > 0")
        if not self.maximum >= self.initial:
            raise InvalidParameterError("maximum", self.maximum, f"must be >= initial ({self.initial})")
        if not self.multiplier >= 1:
            raise InvalidParameterError("multiplier", self.multiplier, "must be >= 1")
        if not 0 <= self.floor <= self.initial:
            raise InvalidParameterError("floor", self.floor, f"must be >= 0 and <= initial ({self.initial})")

    def cap(self, attempt: int) -> float:
        """Return the upper bound of the delay before retry ``attempt`` (1-based).

        :param attempt: 1 for the delay after the first failure.
        """
        exponent = max(0, attempt - 1)
        # Stop multiplying once past the maximum: avoids float overflow on huge attempt counts.
        cap = self.initial
        for _ in range(exponent):
            cap *= self.multiplier
            if cap >= self.maximum:
                return self.maximum
        return min(self.maximum, cap)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return a full-jitter delay: uniform(floor, min(maximum, initial * multiplier**(attempt-1))).

        :param attempt: 1 for the delay after the first failure.
        :param rng: the random source (seed it in tests).
        """
        return rng.uniform(self.floor, self.cap(attempt))


#: Connection probes that failed in a way that cost something (a timeout held a socket for
#: ``connect_timeout``, a server answered): readiness should still be noticed within 1 s.
PROBE_RETRY = RetryPolicy(initial=0.2, maximum=1.0)
#: Connection probes refused at once (an RST back in microseconds, no AWS API budget spent): the
#: end of a start is a refusal turning into an accepted connection, and only this cadence stands
#: between the two. The floor keeps a refusing endpoint from being hammered in a tight loop; the
#: jitter keeps many pollers apart.
REFUSED_PROBE_RETRY = RetryPolicy(initial=0.1, maximum=0.1, floor=0.05)
#: Connection probes that failed otherwise while RDS shows the cluster starting: full jitter up
#: to 0.8 s keeps the end of a start seen within a second.
WAKING_PROBE_RETRY = RetryPolicy(initial=0.5, maximum=0.8)
#: AWS throttling: the account's token bucket is shared with consoles and tools; back off far.
THROTTLE_RETRY = RetryPolicy(initial=1.0, maximum=20.0)
#: Data API probes: each is an AWS call; AWS says "wait a few seconds and try again".
DATA_API_RETRY = RetryPolicy(initial=1.0, maximum=5.0)
#: AWS 5xx and network trouble on the RDS API.
AWS_RETRY = RetryPolicy(initial=0.5, maximum=5.0)


def probe_retry_policy(*, probe: str, refused: bool, waking: bool) -> RetryPolicy:
    """The backoff after a failed probe: the one rule for the probe cadence.

    Only a connection refused at once gets the short cadence; timeouts (each held a socket for
    ``connect_timeout``), Data API calls (each an AWS call; AWS says "wait a few seconds") and
    every other answer keep their backoff. Throttling is not decided here: :class:`Backoff`
    always backs it off on :data:`THROTTLE_RETRY`.

    :param probe: ``connection`` or ``data-api``.
    :param refused: every endpoint the probe tried refused the connection at once.
    :param waking: RDS shows the cluster starting.
    """
    if probe == "data-api":
        return DATA_API_RETRY
    if refused:
        return REFUSED_PROBE_RETRY
    return WAKING_PROBE_RETRY if waking else PROBE_RETRY


class Backoff:
    """The delays of one sequence of retries: throttling and other failures counted apart.

    Throttling backs off on :data:`THROTTLE_RETRY` and never counts as a failure; other
    failures back off on the policy given for each delay.
    """

    def __init__(self) -> None:
        self.failures = 0
        self.throttles = 0

    def delay(self, *, throttled: bool, policy: RetryPolicy, rng: random.Random) -> float:
        """Count one more failure and return how long to wait before the next try.

        :param throttled: whether AWS throttled the call.
        :param policy: the policy for failures that are not throttling.
        :param rng: the random source.
        """
        if throttled:
            self.throttles += 1
            return THROTTLE_RETRY.delay(self.throttles, rng)
        self.failures += 1
        return policy.delay(self.failures, rng)

    def reset(self) -> None:
        """Start over after a success."""
        self.failures = self.throttles = 0

"""The waiters of a poller and when the poller describes for them.

A :class:`Waiter` keeps its own deadline (event-loop time). :func:`next_describe_at` turns the
pure policy (:func:`~airflow_aurora_wake.core.wait.decision.describe_after`) into a time on the
loop's clock, adding the one describe each waiter's diagnosis needs shortly before its deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from airflow_aurora_wake.core.wait.decision import Decision, Observation, ProbeEnd, describe_after
from airflow_aurora_wake.core.wait.request import LogCallback, ReadyReport

__all__ = ["DIAGNOSIS_LEAD", "Waiter", "describe_due_at", "diagnosis_at"]

logger = logging.getLogger(__name__)

#: Seconds before a waiter's deadline at which RDS is described once more, so the timeout's
#: diagnosis says what RDS shows then (a probe held open is cut short for it).
DIAGNOSIS_LEAD = 3.0


class Waiter:
    """One caller of :func:`wait_until_ready` attached to a poller."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float, log: LogCallback) -> None:
        self.future: asyncio.Future[ReadyReport] = loop.create_future()
        self.deadline = deadline  # loop time
        self.joined_at = loop.time()
        self.log = log

    def tell(self, message: str, now: float) -> None:
        try:
            self.log(f"{message} ({now - self.joined_at:.1f} s elapsed)")
        except Exception:  # a broken log callback must not break the wait of everybody else
            logger.exception("log callback failed")


def diagnosis_at(waiters: Iterable[Waiter], last_describe: float | None) -> float | None:
    """When the next waiter's diagnosis needs a describe (loop time).

    :param waiters: the poller's waiters.
    :param last_describe: loop time of the last describe (``None``: none yet).
    :returns: ``None`` when every deadline has a describe within :data:`DIAGNOSIS_LEAD` before it.
    """
    due = (
        waiter.deadline - DIAGNOSIS_LEAD
        for waiter in waiters
        if last_describe is None or waiter.deadline - DIAGNOSIS_LEAD > last_describe
    )
    return min(due, default=None)


def describe_due_at(
    seen: Observation,
    decision: Decision,
    probe_end: ProbeEnd,
    *,
    interval: float,
    last_describe: float,
    waiters: Iterable[Waiter],
) -> float:
    """Loop time of the next describe; never sooner than ``interval`` after the last one.

    :param seen: what the wait saw at its last describe.
    :param decision: the decision on ``seen``.
    :param probe_end: how the latest probe since that describe ended.
    :param interval: ``describe_interval``.
    :param last_describe: loop time of the last describe.
    :param waiters: the poller's waiters (their deadlines).
    """
    at = last_describe + describe_after(seen, decision, probe_end, interval=interval)
    diagnosis = diagnosis_at(waiters, last_describe)
    if diagnosis is not None:
        at = min(at, max(diagnosis, last_describe + interval))
    return at

"""Wait until a cluster is ready: available in RDS *and* a real ``SELECT 1`` ran.

- :mod:`.request`: what a wait is asked for (:class:`WaitRequest`, the validation), what it
  needs (:class:`WaitResources`) and what it reports (:class:`ReadyReport`, :class:`CheckOutcome`);
- :mod:`.decision`: the one pure decision, from what the wait has seen to what to do next, and
  when to describe again (:func:`~.decision.describe_after`);
- :mod:`.probing`: which endpoints a wait probes (the writer, the reader endpoint or every DB
  instance) and one round of probes over them, for the check and the poller alike;
- :mod:`.round`: a round's outcome, and how its failures ended (held open, refused at once);
- :mod:`.timing`: a poller's waiters and the loop time of its next describe;
- :mod:`.check`: one describe and one probe (the sensor's check and pokes);
- :mod:`.poller`: the describe-and-probe loop that serves many waiters;
- :mod:`.shared`: sharing pollers per cluster in one event loop, and :func:`wait_until_ready`.
"""

from __future__ import annotations

from airflow_aurora_wake.core.errors import WaitDiagnosis
from airflow_aurora_wake.core.wait.check import check_ready_once
from airflow_aurora_wake.core.wait.decision import Decision, Next, Observation, decide
from airflow_aurora_wake.core.wait.poller import WAKING_DESCRIBE_STRETCH
from airflow_aurora_wake.core.wait.request import (
    CheckOutcome,
    ReachedEndpoint,
    ReadyReport,
    WaitRequest,
    WaitResources,
)
from airflow_aurora_wake.core.wait.shared import SHARED_WAITS, SharedWaitRegistry, wait_until_ready

__all__ = [
    "SHARED_WAITS",
    "WAKING_DESCRIBE_STRETCH",
    "CheckOutcome",
    "Decision",
    "Next",
    "Observation",
    "ReachedEndpoint",
    "ReadyReport",
    "SharedWaitRegistry",
    "WaitDiagnosis",
    "WaitRequest",
    "WaitResources",
    "check_ready_once",
    "decide",
    "wait_until_ready",
]

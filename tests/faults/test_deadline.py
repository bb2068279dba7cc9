"""The deadline: a cluster that never wakes fails with the timeout's diagnosis, soon after it.

Two clusters that never wake within the timeout (6 s): a resume of 10 minutes, and a cluster
kept stopped with ``stopped_grace`` longer than the timeout. Expected: the trigger's timeout
event arrives at the deadline (not before it, and within a generous 15 s after it), carrying
the diagnosis (what was seen, what was tried, a hint that fits); the sensor fails with
``AirflowSensorTimeout`` carrying it, or is skipped with ``soft_fail``; poke mode behaves the
same; ``wake_and_wait`` raises ``ReadyTimeoutError``. Misconfiguration is never skipped, even
with ``soft_fail``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from faults_support import (
    OUTER_LIMIT,
    first_event,
    ready_sensor,
    resume,
    run_sensor,
    run_wake_and_wait,
    store_trigger,
)
from faults_support import defer as defer_sensor

from airflow_aurora_wake.compat import AirflowSensorTimeout, AirflowSkipException
from airflow_aurora_wake.core.errors import ClusterNotFoundError, ReadyTimeoutError

pytestmark = [pytest.mark.faults, pytest.mark.emulator, pytest.mark.db]

TIMEOUT = 6.0
#: Generous: the deadline must be met "within a few seconds", on a loaded CI machine too.
LATE = 15.0
NEVER = {
    "resume-longer-than-timeout": (
        {"state": "paused", "timings": {"resume_seconds": 600}},
        {},
        "Connections timed out",
    ),
    "kept-stopped": (
        {"state": "stopped"},
        {"stopped_grace": 600},
        "The cluster is stopped: start it before waiting",
    ),
}


@pytest.mark.parametrize("never", sorted(NEVER))
async def test_a_cluster_that_never_wakes_times_out_at_the_deadline(
    emulated: Any, login: Any, secret_guard: Any, never: str
) -> None:
    cluster_kwargs, sensor_kwargs, hint = NEVER[never]
    secret_guard.expect_tokens = never != "kept-stopped"  # a stopped cluster is never probed
    cluster = emulated(kind="serverless-v2", **cluster_kwargs, **login.cluster_kwargs())
    kwargs = {"timeout": TIMEOUT, "connect_timeout": 1.0, **sensor_kwargs}

    async def deferred_run(soft_fail: bool) -> tuple[Any, float, dict[str, Any], BaseException]:
        task = ready_sensor(cluster, soft_fail=soft_fail, **kwargs)
        deferred, _ = await defer_sensor(task, secret_guard)
        assert deferred is not None
        payload = await first_event(store_trigger(deferred.trigger, secret_guard), secret_guard)
        arrived = time.time()
        with pytest.raises((AirflowSensorTimeout, AirflowSkipException)) as outcome:
            resume(task, payload, secret_guard)
        return deferred.trigger, arrived, payload, outcome.value

    async def poke_run() -> BaseException:
        task = ready_sensor(cluster, soft_fail=True, deferrable=False, poke_interval=0.5, **kwargs)
        with pytest.raises(AirflowSkipException) as outcome:
            await run_sensor(task, secret_guard)
        return outcome.value

    async def plain_run() -> tuple[float, float, ReadyTimeoutError]:
        started = time.time()
        with pytest.raises(ReadyTimeoutError) as outcome:
            await run_wake_and_wait(
                cluster, login, secret_guard, timeout=TIMEOUT, wake=False, **sensor_kwargs
            )
        return started, time.time(), outcome.value

    (
        (trigger, arrived, payload, failed),
        (_, _, _, skipped),
        poked,
        (started, raised, plain),
    ) = await asyncio.wait_for(
        asyncio.gather(deferred_run(False), deferred_run(True), poke_run(), plain_run()), OUTER_LIMIT
    )

    # The trigger timed out at its deadline, not before and not long after.
    assert payload["status"] == "timeout", payload
    assert trigger.deadline <= arrived <= trigger.deadline + LATE, (trigger.deadline, arrived)
    message = payload["message"]
    assert f"DB cluster '{cluster.identifier}'" in message and "was not ready after" in message
    assert "probe attempts" in message and "RDS calls" in message and hint in message, message
    # Without soft_fail the task fails with the diagnosis; with it, it is skipped.
    assert isinstance(failed, AirflowSensorTimeout) and str(failed) == message
    assert isinstance(skipped, AirflowSkipException)
    assert isinstance(poked, AirflowSkipException)
    # The plain-Python wait raises at its deadline, with the same kind of diagnosis.
    assert started + TIMEOUT <= raised <= started + TIMEOUT + LATE
    assert hint in str(plain) and plain.diagnosis.identifier == cluster.identifier


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
async def test_misconfiguration_is_never_skipped(
    emulated: Any, login: Any, secret_guard: Any, deferrable: bool
) -> None:
    secret_guard.expect_tokens = False  # it fails on the describe, before any probe
    cluster = emulated(kind="serverless-v2", state="paused", **login.cluster_kwargs())
    task = ready_sensor(
        cluster, db_cluster_identifier="no-such-cluster", soft_fail=True, deferrable=deferrable, timeout=30
    )
    with pytest.raises(ClusterNotFoundError, match="'no-such-cluster' was not found in"):
        await run_sensor(task, secret_guard)

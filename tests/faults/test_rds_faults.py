"""RDS API faults: half of all RDS calls throttled, and bursts of 5xx answers.

Expected: the wake operator, the sensor (its first check, its trigger) and ``wake_and_wait``
all succeed; RDS calls back off, so their number stays bounded (counted by the emulator,
faulted calls included); readiness is never declared before the emulator made the cluster
connectable.

botocore itself retries throttling and 5xx (legacy mode: up to 5 attempts per call, sleeping up
to 1, 2, 4, 8 s between them), which would hide most faults from the product. These scenarios
set ``AWS_MAX_ATTEMPTS=1`` so that every fault reaches the product and only its own back-off
protects the wait: the strictest case. One more run keeps botocore's default retries.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from faults_support import (
    LOGINS,
    add_twin,
    assert_not_ready_early,
    first_event,
    rds_calls,
    ready_sensor,
    resume,
    run_operator,
    run_sensor,
    run_wake_and_wait,
    store_trigger,
    wake_operator,
)
from faults_support import defer as defer_sensor

from airflow_aurora_wake.emulator import Faults

pytestmark = [pytest.mark.faults, pytest.mark.emulator, pytest.mark.db]

#: botocore's legacy retry mode (the default): at most this many HTTP attempts per API call.
BOTOCORE_DEFAULT_ATTEMPTS = 5
DESCRIBE_INTERVAL = 1.0
#: The throttling window: longer than the whole run (a minute in the issue; same behaviour).
THROTTLE_SECONDS = 30.0
V1_TIMINGS = {"v1_capacity_seconds": 4.0, "v1_connect_extra_seconds": 1.0}


def describe_bound(elapsed: float, extra_calls: int, attempts: int) -> int:
    """At most one describe per interval while waiting, plus a few one-off calls, times botocore's attempts.

    ``elapsed`` only loosens the bound on a slow machine (fewer intervals pass on a fast one).
    """
    return attempts * (int(elapsed / DESCRIBE_INTERVAL) + 1 + extra_calls)


@pytest.fixture
def product_retries_only(monkeypatch: pytest.MonkeyPatch) -> int:
    """One HTTP attempt per botocore call: every fault reaches the product's own back-off."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return 1


async def test_half_of_rds_calls_throttled(
    emulated: Any, login: Any, secret_guard: Any, product_retries_only: int
) -> None:
    await throttled_run(emulated, login, secret_guard, attempts=product_retries_only)


async def test_half_of_rds_calls_throttled_with_botocore_default_retries(
    emulated: Any, password_login: Any, secret_guard: Any
) -> None:
    login = LOGINS["postgresql"].with_password(password_login)
    await throttled_run(emulated, login, secret_guard, attempts=BOTOCORE_DEFAULT_ATTEMPTS)


async def throttled_run(emulated: Any, login: Any, secret_guard: Any, *, attempts: int) -> None:
    cluster = emulated(kind="serverless-v1", state="paused", timings=V1_TIMINGS, **login.cluster_kwargs())
    api_cluster = add_twin(cluster, "sales-api", kind="serverless-v1", state="paused", iam_auth=login.iam)
    cluster.emu.set_faults(Faults(throttle_fraction=0.5, throttle_seconds=THROTTLE_SECONDS, seed=7))
    started = time.monotonic()

    async def airflow_run() -> tuple[dict[str, Any], dict[str, Any]]:
        woke = await run_operator(wake_operator(cluster), secret_guard)
        ready = await run_sensor(ready_sensor(cluster, describe_interval=DESCRIBE_INTERVAL), secret_guard)
        return woke, ready

    (woke, ready), report = await asyncio.gather(
        airflow_run(),
        run_wake_and_wait(cluster, login, secret_guard, identifier=api_cluster),
    )
    elapsed = time.monotonic() - started
    counters = cluster.emu.counters()
    cluster.emu.set_faults(Faults())

    # The wait succeeded on both paths, never early.
    assert woke["action"] == "modify-capacity", woke
    assert_not_ready_early(cluster, ready["ready_at"])
    assert_not_ready_early(cluster, report.ready_at, identifier=api_cluster)
    # Throttling really happened, on every kind of call...
    assert counters["rds_faults"].get("Throttling", 0) >= 4, (counters["rds_faults"], counters["rds_calls"])
    # ...and the calls backed off: at most one describe per interval (times botocore's attempts).
    airflow_calls, api_calls = rds_calls(cluster), rds_calls(cluster, api_cluster)
    # Operator: 1 describe; sensor check: 1; trigger: one per interval, plus its confirmation.
    assert airflow_calls["DescribeDBClusters"] <= describe_bound(elapsed, 4, attempts), airflow_calls
    assert api_calls["DescribeDBClusters"] <= describe_bound(elapsed, 3, attempts), api_calls
    # One wake request each, retried only while throttled (the seeded draws never throttle more
    # than 11 calls in a row), never a storm.
    assert 1 <= airflow_calls["ModifyCurrentDBClusterCapacity"] <= attempts * 12
    assert 1 <= api_calls["ModifyCurrentDBClusterCapacity"] <= attempts * 12
    assert len([e for e in cluster.emu.timeline(cluster.identifier) if e.event == "resume-requested"]) == 1


async def test_bursts_of_rds_5xx(
    emulated: Any, login: Any, secret_guard: Any, product_retries_only: int
) -> None:
    """A burst of 5xx answers before each component runs; each must outlast it on its own."""
    cluster = emulated(kind="serverless-v2", state="paused", **login.cluster_kwargs())
    api_cluster = add_twin(cluster, "sales-api", kind="serverless-v2", state="paused", iam_auth=login.iam)
    burst = 3

    def new_burst(status: int) -> None:
        cluster.emu.set_faults(Faults(server_errors=burst, server_error_status=status))

    def faults_seen() -> int:
        return sum(cluster.emu.counters()["rds_faults"].values())

    # The operator's describe outlasts botocore's retries and retries on its own.
    new_burst(500)
    woke = await run_operator(wake_operator(cluster), secret_guard)
    assert woke["action"] == "connection-nudge", woke
    assert faults_seen() == burst

    # The sensor's first check meets a burst: it is not an error, the sensor defers.
    new_burst(503)
    task = ready_sensor(cluster)
    deferred, _ = await defer_sensor(task, secret_guard)
    assert deferred is not None
    # One describe (answered 503), then the deferral: a failed check is "not ready yet".
    assert faults_seen() == burst + 1

    # The trigger meets a burst on its first describes and backs off.
    new_burst(500)
    payload = await first_event(store_trigger(deferred.trigger, secret_guard), secret_guard)
    assert payload["status"] == "success", payload
    assert faults_seen() == 2 * burst + 1
    result = resume(task, payload, secret_guard)
    assert_not_ready_early(cluster, result["ready_at"])

    # wake_and_wait meets one during its wake step and one during its wait.
    new_burst(503)
    report = await run_wake_and_wait(cluster, login, secret_guard, identifier=api_cluster)
    assert faults_seen() == 3 * burst + 1
    assert_not_ready_early(cluster, report.ready_at, identifier=api_cluster)
    # Each failed HTTP attempt was one call: describes stay within the burst plus a few real ones.
    assert rds_calls(cluster, api_cluster)["DescribeDBClusters"] <= burst + 10

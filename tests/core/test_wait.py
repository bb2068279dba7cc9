"""wait_until_ready on a virtual-time loop with scripted RDS answers and scripted probes.

Virtual time makes every timing assertion exact (no real sleeping, no thresholds on real time):
the loop's clock jumps to the next timer whenever nothing is ready.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from core_fakes import (
    EPOCH,
    FakeResources,
    ScriptedProbe,
    ScriptedRds,
    VirtualTimeLoop,
    aws_error,
    data_api_error,
    provisioned_description,
    run_virtual,
    v1_description,
    v2_description,
)

from airflow_aurora_wake.core.errors import (
    LOGIN_REFUSAL_WINDOW,
    NAME_NOT_FOUND_GRACE,
    AuroraWakeError,
    ClusterDeletedError,
    ClusterNotFoundError,
    ClusterStateError,
    DataApiNotEnabledError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
    ReadyTimeoutError,
)
from airflow_aurora_wake.core.wait import (
    WAKING_DESCRIBE_STRETCH,
    ReadyReport,
    SharedWaitRegistry,
    WaitRequest,
    check_ready_once,
    wait_until_ready,
)

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales-login-AbCdEf"
PASSWORD = "s3cr3t-pw"


def request(**changes: Any) -> WaitRequest:
    return WaitRequest("sales", "us-east-1", **changes)


async def wait(
    loop: VirtualTimeLoop,
    resources: FakeResources,
    *,
    timeout: float = 600,
    wait_request: WaitRequest | None = None,
    share_key: Any = None,
    registry: SharedWaitRegistry | None = None,
    log: Callable[[str], None] | None = None,
) -> ReadyReport:
    return await wait_until_ready(
        wait_request or request(),
        resources,
        deadline=loop.wall() + timeout,
        share_key=share_key,
        log=log or (lambda _: None),
        clock=loop.wall,
        rng=random.Random(42),
        registry=registry,
    )


# --- single waiter --------------------------------------------------------------------------


def test_paused_v2_is_ready_when_the_held_connect_completes(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.ready_at = 15.0  # the resume finishes at t=15; the connect is held until then
    rds = ScriptedRds([v2_description(min_capacity=0)])
    resources = FakeResources(rds)
    logs: list[str] = []

    report = run_virtual(lambda loop: wait(loop, resources, log=logs.append))

    assert report.ready_at == EPOCH + 15.0
    assert report.seconds_waited == pytest.approx(15.0)
    assert report.attempts == 1  # one held connect, no retries
    assert report.rds_calls == {"DescribeDBClusters": 1}
    assert report.kind.value == "serverless-v2" and report.engine == "aurora-postgresql"
    assert report.endpoint == "sales.cluster-abc.us-east-1.rds.amazonaws.com:5432"
    assert set(report.as_xcom()) == {
        "ready_at",
        "seconds_waited",
        "attempts",
        "rds_calls",
        "kind",
        "engine",
        "endpoint",
    }
    assert logs[0].startswith("cluster sales is serverless-v2 (aurora-postgresql), status available; probing")
    assert logs[-1] == "ready after 15.0 s"
    assert rds.opened == rds.closed == 1


def test_refused_connects_retry_quickly_and_notice_readiness_within_a_second(
    scripted_probe: ScriptedProbe,
) -> None:
    scripted_probe.ready_at = 95.0
    scripted_probe.refuse = True
    rds = ScriptedRds([v2_description(min_capacity=0)])
    report = run_virtual(lambda loop: wait(loop, FakeResources(rds)))

    assert EPOCH + 95.0 <= report.ready_at <= EPOCH + 96.0
    gaps = [b - a for a, b in zip(scripted_probe.attempts, scripted_probe.attempts[1:], strict=False)]
    assert gaps and max(gaps) <= 1.0  # probe policy caps the backoff at 1 s
    # At most one describe per describe_interval while waiting.
    describe_gaps = [b - a for a, b in zip(rds.describe_times, rds.describe_times[1:], strict=False)]
    assert all(gap >= 10.0 for gap in describe_gaps)
    assert len(rds.describe_times) <= 1 + 96 // 10


def test_throttled_describes_back_off_then_ready(scripted_probe: ScriptedProbe) -> None:
    throttle = aws_error("Throttling", "Rate exceeded")
    rds = ScriptedRds([throttle, throttle, throttle, v2_description(min_capacity=0)])
    logs: list[str] = []
    report = run_virtual(lambda loop: wait(loop, FakeResources(rds), log=logs.append))

    assert len(rds.describe_times) == 4
    assert report.rds_calls == {"DescribeDBClusters": 4}
    assert any("Throttling" in line for line in logs)
    assert sum("Throttling" in line for line in logs) == 1  # one change of state, logged once
    gaps = [b - a for a, b in zip(rds.describe_times, rds.describe_times[1:], strict=False)]
    assert all(0 <= gap <= 20.0 for gap in gaps)


def test_stopped_gets_a_grace_period_then_fails_naming_the_wake_operator(
    scripted_probe: ScriptedProbe,
) -> None:
    rds = ScriptedRds([provisioned_description(status="stopped")])
    failed_at: list[float] = []

    async def main(loop: VirtualTimeLoop) -> None:
        try:
            await wait(loop, FakeResources(rds), wait_request=request(stopped_grace=60))
        finally:
            failed_at.append(loop.time())

    with pytest.raises(ClusterStateError, match="a wake that starts stopped clusters") as caught:
        run_virtual(main)
    assert "StartDBCluster" in str(caught.value) and "'stopped'" in str(caught.value)
    assert failed_at == [60.0]
    assert scripted_probe.attempts == []  # connection attempts do nothing for a stopped cluster


def test_a_start_that_shows_late_is_waited_on(scripted_probe: ScriptedProbe) -> None:
    def describe_at(now: float) -> dict[str, Any]:
        if now < 25:
            return provisioned_description(status="stopped")
        if now < 200:
            return provisioned_description(status="starting")
        return provisioned_description(status="available")

    rds = ScriptedRds(describe_at=describe_at)
    logs: list[str] = []
    report = run_virtual(lambda loop: wait(loop, FakeResources(rds), log=logs.append))
    assert report.ready_at >= EPOCH + 200  # the database answered while starting: RDS must agree
    assert scripted_probe.attempts and min(scripted_probe.attempts) >= 25  # no probe while stopped
    assert len(rds.describe_times) <= 2 + 200 // 10  # probe successes while starting add no describes
    assert [line.split(";")[0] for line in logs[:3]] == [
        "cluster orders is provisioned (aurora-postgresql), status stopped",
        "cluster orders is provisioned (aurora-postgresql), status starting",
        "cluster orders is provisioned (aurora-postgresql), status available",
    ]


def test_the_end_of_a_start_is_seen_by_the_probe_within_a_second(scripted_probe: ScriptedProbe) -> None:
    # Describes every 10 s would see "available" up to 10 s late; refused probes see it at once.
    scripted_probe.ready_at = 203.0
    scripted_probe.refuse = True

    def describe_at(now: float) -> dict[str, Any]:
        return provisioned_description(status="starting" if now < 203 else "available")

    rds = ScriptedRds(describe_at=describe_at)
    logs: list[str] = []
    report = run_virtual(lambda loop: wait(loop, FakeResources(rds), log=logs.append))
    assert EPOCH + 203 <= report.ready_at <= EPOCH + 204
    # While starting: one describe per WAKING_DESCRIBE_STRETCH intervals, plus the confirmation,
    # so the whole wait stays under one describe per describe_interval.
    stretch = WAKING_DESCRIBE_STRETCH * 10
    assert len(rds.describe_times) == 1 + 203 // stretch + 1
    assert (len(rds.describe_times) - 1) / (203 / 10) < 1
    assert sum("status starting" in line for line in logs) == 1  # refused probes are not logged


def test_v1_is_ready_only_once_rds_shows_capacity(scripted_probe: ScriptedProbe) -> None:
    # The DB answers from t=5, but RDS shows capacity > 0 only from t=30: no false ready.
    scripted_probe.ready_at = 5.0
    scripted_probe.refuse = True

    def describe_at(now: float) -> dict[str, Any]:
        return v1_description(capacity=0 if now < 30 else 2)

    rds = ScriptedRds(describe_at=describe_at)
    report = run_virtual(lambda loop: wait(loop, FakeResources(rds, engine="mysql")))
    assert report.ready_at >= EPOCH + 30
    assert len(rds.describe_times) <= 2 * (1 + 40 // 10)  # regular describes plus one confirmation each


def test_v1_probe_success_after_a_stale_describe_is_confirmed(scripted_probe: ScriptedProbe) -> None:
    # Last describe (t=0) showed capacity 0; the probe succeeds at t=12 -> describe again at once.
    scripted_probe.ready_at = 12.0

    def describe_at(now: float) -> dict[str, Any]:
        return v1_description(capacity=0 if now < 11 else 2)

    rds = ScriptedRds(describe_at=describe_at)
    report = run_virtual(lambda loop: wait(loop, FakeResources(rds, engine="mysql")))
    assert report.ready_at == EPOCH + 12.0
    assert rds.describe_times == [0.0, 12.0]


def test_deleted_mid_wait(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.refuse = True
    scripted_probe.ready_at = float("inf")

    def describe_at(now: float) -> Any:
        return v2_description() if now < 25 else aws_error("DBClusterNotFoundFault", "not found", status=404)

    with pytest.raises(ClusterDeletedError, match="deleted while waiting"):
        run_virtual(lambda loop: wait(loop, FakeResources(ScriptedRds(describe_at=describe_at))))


def test_unknown_cluster_fails_at_once(scripted_probe: ScriptedProbe) -> None:
    rds = ScriptedRds([aws_error("DBClusterNotFoundFault", "not found", status=404)])
    with pytest.raises(ClusterNotFoundError, match="'sales' was not found in us-east-1"):
        run_virtual(lambda loop: wait(loop, FakeResources(rds)))
    assert rds.describe_times == [0.0]


@pytest.mark.parametrize("status", ["deleting", "stopping", "failed", "inaccessible-encryption-credentials"])
def test_non_recoverable_state_fails_at_once(scripted_probe: ScriptedProbe, status: str) -> None:
    rds = ScriptedRds([v2_description(status=status)])
    with pytest.raises(ClusterStateError, match=f"'{status}'"):
        run_virtual(lambda loop: wait(loop, FakeResources(rds)))


def test_deadline_raises_a_diagnosis_promptly(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.ready_at = float("inf")  # every connect is held and times out
    rds = ScriptedRds([v2_description(min_capacity=0)])
    resources = FakeResources(rds)
    raised_at: list[float] = []

    async def main(loop: VirtualTimeLoop) -> None:
        try:
            await wait(loop, resources, timeout=100)
        finally:
            raised_at.append(loop.time())

    with pytest.raises(ReadyTimeoutError) as caught:
        run_virtual(main)
    assert raised_at == [100.0]  # at the deadline, not after the probe in flight
    message = str(caught.value)
    for needle in (
        "'sales' in us-east-1 was not ready after 100.0 s",
        "last status 'available'",
        "serverless-v2 aurora-postgresql",
        "connection timed out after",
        "5 probe attempts",
        "DescribeDBClusters",
    ):
        assert needle in message, needle
    # Held attempts at 0, 30 and 60 s; the one at 90 s is cut at 97 s for the describe the
    # diagnosis needs (DIAGNOSIS_LEAD before the deadline), then one more until the deadline.
    assert caught.value.diagnosis.attempts == 5
    # The first describe and the diagnosis's: none while the held attempts watched the resume.
    assert caught.value.diagnosis.rds_calls == {"DescribeDBClusters": 2}
    assert scripted_probe.in_flight == 0  # the last attempt was bounded by the time left
    assert rds.opened == rds.closed == 1
    assert PASSWORD not in message


def test_probe_in_flight_is_bounded_by_the_time_left(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.ready_at = float("inf")
    rds = ScriptedRds([v2_description(min_capacity=0)])
    with pytest.raises(ReadyTimeoutError):
        run_virtual(
            lambda loop: wait(loop, FakeResources(rds), timeout=45, wait_request=request(connect_timeout=30))
        )
    # First attempt at t=0 (30 s); the second starts right after and is cut at 42 s for the
    # diagnosis's describe (DIAGNOSIS_LEAD before the deadline); the last may only use the 3 s left.
    assert scripted_probe.attempts[0] == 0.0
    assert len(scripted_probe.attempts) == 3
    assert scripted_probe.attempts[-1] < 45 and scripted_probe.in_flight == 0


def test_wrong_password_fails_on_the_first_attempt(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.errors = [
        asyncpg.exceptions.InvalidPasswordError('password authentication failed for user "app"')
    ]
    rds = ScriptedRds([v2_description(min_capacity=0)])
    with pytest.raises(DatabaseAuthenticationError, match="so it is awake") as caught:
        run_virtual(lambda loop: wait(loop, FakeResources(rds)))
    assert len(scripted_probe.attempts) == 1 and rds.describe_times == [0.0]
    assert PASSWORD not in str(caught.value)


PG_HBA_REFUSAL = 'no pg_hba.conf entry for host "10.0.0.7", user "app", database "app", SSL encryption'


def test_28000_from_a_resuming_front_end_is_waited_out(scripted_probe: ScriptedProbe) -> None:
    # A v2 cluster at 0 ACU answers 28000 "no pg_hba.conf entry" at once, again and again, until
    # its resume ends (cyrilgdn/terraform-provider-postgresql#540): the wait rides it out.
    scripted_probe.errors = [
        asyncpg.exceptions.InvalidAuthorizationSpecificationError(PG_HBA_REFUSAL) for _ in range(12)
    ]
    rds = ScriptedRds([v2_description(min_capacity=0)])
    report = run_virtual(lambda loop: wait(loop, FakeResources(rds)))
    assert report.attempts == 13


def test_28000_that_outlasts_any_resume_fails_naming_both_causes(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.errors = [
        asyncpg.exceptions.InvalidAuthorizationSpecificationError(PG_HBA_REFUSAL) for _ in range(1000)
    ]
    rds = ScriptedRds([v2_description(min_capacity=0)])
    with pytest.raises(DatabaseAuthenticationError, match="Two causes") as caught:
        run_virtual(lambda loop: wait(loop, FakeResources(rds)))
    message = str(caught.value)
    assert "pg_hba" in message and "resuming" in message
    # Refused for the whole window and no longer: the window is measured, not the attempts.
    refused = [at for at in scripted_probe.attempts]
    assert refused[-1] - refused[0] >= LOGIN_REFUSAL_WINDOW
    assert refused[-2] - refused[0] < LOGIN_REFUSAL_WINDOW


@pytest.mark.parametrize(
    "description",
    [v2_description(min_capacity=0.5), provisioned_description()],
    ids=["v2-that-cannot-pause", "provisioned"],
)
def test_28000_on_a_cluster_that_cannot_pause_fails_at_once(
    scripted_probe: ScriptedProbe, description: dict[str, Any]
) -> None:
    scripted_probe.errors = [asyncpg.exceptions.InvalidAuthorizationSpecificationError(PG_HBA_REFUSAL)]
    with pytest.raises(DatabaseAuthenticationError, match="so it is awake"):
        run_virtual(lambda loop: wait(loop, FakeResources(ScriptedRds([description]))))
    assert len(scripted_probe.attempts) == 1


def test_28000_for_an_unknown_role_fails_at_once(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.errors = [
        asyncpg.exceptions.InvalidAuthorizationSpecificationError('role "app" does not exist')
    ]
    rds = ScriptedRds([v2_description(min_capacity=0)])
    with pytest.raises(DatabaseAuthenticationError, match="so it is awake"):
        run_virtual(lambda loop: wait(loop, FakeResources(rds)))
    assert len(scripted_probe.attempts) == 1


def test_engine_mismatch_fails_before_probing(scripted_probe: ScriptedProbe) -> None:
    rds = ScriptedRds([v2_description(engine="aurora-postgresql")])
    with pytest.raises(
        DatabaseConfigurationError, match="is for mysql but DB cluster 'sales' runs 'aurora-postgresql'"
    ):
        run_virtual(lambda loop: wait(loop, FakeResources(rds, engine="mysql")))
    assert scripted_probe.attempts == []


def test_data_api_probe_retries_resuming_then_ready(scripted_probe: ScriptedProbe) -> None:
    rds = ScriptedRds([v2_description(min_capacity=0)])
    resources = FakeResources(rds)
    resources.rds_data.errors = [data_api_error("DatabaseResumingException", "resuming") for _ in range(3)]
    logs: list[str] = []
    report = run_virtual(
        lambda loop: wait(
            loop,
            resources,
            wait_request=request(probe="data-api", data_api_secret_arn=SECRET),
            log=logs.append,
        )
    )
    assert report.rds_calls == {"DescribeDBClusters": 1, "ExecuteStatement": 4}
    assert report.attempts == 4
    assert scripted_probe.attempts == []  # no database connection with the Data API probe
    assert any("Data API call started the resume" in line for line in logs)
    assert resources.rds_data.calls[0]["resourceArn"] == "arn:aws:rds:us-east-1:123456789012:cluster:sales"


def test_data_api_not_enabled_fails(scripted_probe: ScriptedProbe) -> None:
    resources = FakeResources(ScriptedRds([v2_description()]))
    resources.rds_data.errors = [data_api_error("HttpEndpointNotEnabledException", "not enabled")]
    with pytest.raises(DataApiNotEnabledError):
        run_virtual(
            lambda loop: wait(
                loop, resources, wait_request=request(probe="data-api", data_api_secret_arn=SECRET)
            )
        )


def test_logs_each_state_once_and_never_the_password(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.ready_at = 75.0  # three held connects time out before the resume ends
    logs: list[str] = []
    run_virtual(lambda loop: wait(loop, FakeResources(ScriptedRds([v2_description()])), log=logs.append))
    assert logs == [
        "cluster sales is serverless-v2 (aurora-postgresql), status available; probing (0.0 s elapsed)",
        "connection attempt started the resume; waiting (connection timed out after 30.0 s, attempt 1) "
        "(30.0 s elapsed)",
        "ready after 75.0 s",
    ]
    assert not any(PASSWORD in line for line in logs)


# --- sharing ----------------------------------------------------------------------------------


def test_hundreds_of_waiters_share_one_poller(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.ready_at = 15.0
    rds = ScriptedRds([v2_description(min_capacity=0)])
    registry = SharedWaitRegistry()
    pollers_seen: list[int] = []

    async def main(loop: VirtualTimeLoop) -> list[ReadyReport]:
        resources = FakeResources(rds)
        tasks = [
            asyncio.create_task(wait(loop, resources, share_key="sales", registry=registry))
            for _ in range(250)  # released in batches of 100, one loop turn each
        ]
        await asyncio.sleep(1)
        pollers_seen.append(registry.active_pollers())
        reports = await asyncio.gather(*tasks)
        pollers_seen.append(registry.active_pollers())
        return reports

    reports = run_virtual(main)
    assert len(reports) == 250 and all(report.ready_at == EPOCH + 15.0 for report in reports)
    assert len(rds.describe_times) == 1 and len(scripted_probe.attempts) == 1
    assert scripted_probe.max_in_flight == 1  # no connection storm
    assert pollers_seen == [1, 0]
    assert rds.opened == rds.closed == 1


def test_waiters_keep_their_own_deadlines(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.ready_at = 50.0
    rds = ScriptedRds([v2_description(min_capacity=0)])
    registry = SharedWaitRegistry()
    outcomes: dict[str, tuple[str, float]] = {}
    messages: dict[str, str] = {}

    async def one(loop: VirtualTimeLoop, name: str, timeout: float) -> None:
        try:
            await wait(loop, FakeResources(rds), timeout=timeout, share_key="k", registry=registry)
            outcomes[name] = ("ready", loop.time())
        except ReadyTimeoutError as error:
            outcomes[name] = ("timeout", loop.time())
            messages[name] = str(error)

    async def main(loop: VirtualTimeLoop) -> None:
        await asyncio.gather(one(loop, "short", 10), one(loop, "medium", 20), one(loop, "long", 600))

    run_virtual(main)
    assert outcomes == {"short": ("timeout", 10.0), "medium": ("timeout", 20.0), "long": ("ready", 50.0)}
    # The short waiter left while the shared probe was still held open: its diagnosis says so.
    assert "an attempt was still open after 10.0 s" in messages["short"]
    assert "was not ready after 10.0 s" in messages["short"]
    assert len(rds.describe_times) <= 1 + 50 // 10


def test_a_cancelled_waiter_leaves_the_others_waiting(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.ready_at = 15.0
    registry = SharedWaitRegistry()
    rds = ScriptedRds([v2_description()])

    async def main(loop: VirtualTimeLoop) -> tuple[list[Any], int]:
        tasks = [
            asyncio.create_task(wait(loop, FakeResources(rds), share_key="k", registry=registry))
            for _ in range(3)
        ]
        await asyncio.sleep(5)
        tasks[0].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return results, registry.active_pollers()

    results, pollers = run_virtual(main)
    assert isinstance(results[0], asyncio.CancelledError)
    assert all(isinstance(result, ReadyReport) for result in results[1:])
    assert len(scripted_probe.attempts) == 1 and scripted_probe.cancelled == 0
    assert pollers == 0


def test_the_last_waiter_leaving_stops_the_poller_and_closes_everything(
    scripted_probe: ScriptedProbe,
) -> None:
    scripted_probe.ready_at = float("inf")
    registry = SharedWaitRegistry()
    rds = ScriptedRds([v2_description()])

    async def main(loop: VirtualTimeLoop) -> None:
        tasks = [
            asyncio.create_task(wait(loop, FakeResources(rds), share_key="k", registry=registry))
            for _ in range(2)
        ]
        await asyncio.sleep(5)
        poller_tasks = registry.active_tasks()
        assert len(poller_tasks) == 1
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert poller_tasks[0].done()  # gone before the last waiter returned
        assert registry.active_pollers() == 0

    run_virtual(main)
    assert scripted_probe.cancelled == 1 and scripted_probe.in_flight == 0
    assert rds.opened == rds.closed == 1


def test_a_fatal_error_reaches_every_waiter(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.errors = [asyncpg.exceptions.InvalidPasswordError("password authentication failed")]
    registry = SharedWaitRegistry()
    rds = ScriptedRds([v2_description()])

    async def main(loop: VirtualTimeLoop) -> list[Any]:
        tasks = [wait(loop, FakeResources(rds), share_key="k", registry=registry) for _ in range(10)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = run_virtual(main)
    assert all(isinstance(result, DatabaseAuthenticationError) for result in results)
    assert len(scripted_probe.attempts) == 1


def test_different_keys_or_requests_do_not_share(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.ready_at = 5.0
    registry = SharedWaitRegistry()
    rds = ScriptedRds([v2_description()])

    async def main(loop: VirtualTimeLoop) -> int:
        tasks = [
            asyncio.create_task(wait(loop, FakeResources(rds), share_key="a", registry=registry)),
            asyncio.create_task(wait(loop, FakeResources(rds), share_key="b", registry=registry)),
            asyncio.create_task(
                wait(
                    loop,
                    FakeResources(rds),
                    share_key="a",
                    registry=registry,
                    wait_request=request(connect_timeout=10),
                )
            ),
        ]
        await asyncio.sleep(1)
        count = registry.active_pollers()
        await asyncio.gather(*tasks)
        return count

    assert run_virtual(main) == 3


def test_a_waiter_joining_after_readiness_checks_again(scripted_probe: ScriptedProbe) -> None:
    registry = SharedWaitRegistry()
    rds = ScriptedRds([v2_description()])

    async def main(loop: VirtualTimeLoop) -> None:
        await wait(loop, FakeResources(rds), share_key="k", registry=registry)
        await wait(loop, FakeResources(rds), share_key="k", registry=registry)

    run_virtual(main)
    assert len(rds.describe_times) == 2 and len(scripted_probe.attempts) == 2


# --- poke mode ------------------------------------------------------------------------------


def test_check_ready_once(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.refuse = True
    scripted_probe.ready_at = float("inf")

    async def main(loop: VirtualTimeLoop) -> Any:
        not_ready = await check_ready_once(
            request(connect_timeout=5), FakeResources(ScriptedRds([v2_description()]))
        )
        scripted_probe.ready_at = 0.0
        ready = await check_ready_once(request(), FakeResources(ScriptedRds([v2_description()])))
        return not_ready, ready

    not_ready, ready = run_virtual(main)
    assert not not_ready.ready and not_ready.retry_reason == "connection refused"
    assert ready.ready and ready.rds_calls == {"DescribeDBClusters": 1}


def test_check_ready_once_stopped_past_the_grace_fails(scripted_probe: ScriptedProbe) -> None:
    rds = ScriptedRds([provisioned_description(status="stopped")])

    async def main(loop: VirtualTimeLoop) -> Any:
        first = await check_ready_once(
            request(), FakeResources(rds), waiting_since=loop.wall(), clock=loop.wall
        )
        await asyncio.sleep(61)
        with pytest.raises(ClusterStateError, match="a wake that starts stopped clusters"):
            await check_ready_once(
                request(), FakeResources(rds), waiting_since=loop.wall() - 61, clock=loop.wall
            )
        return first

    assert not run_virtual(main).ready


def test_wait_request_validates_and_accepts_an_arn() -> None:
    arn_request = WaitRequest("arn:aws:rds:eu-west-1:123456789012:cluster:sales", None)
    assert arn_request.db_cluster_identifier == "sales" and arn_request.region_name == "eu-west-1"
    with pytest.raises(ValueError, match="connect_timeout"):
        WaitRequest("sales", None, connect_timeout=0)
    with pytest.raises(ValueError, match="data_api_secret_arn"):
        WaitRequest("sales", None, probe="data-api", data_api_secret_arn="sales-login")


class FailingClientResources(FakeResources):
    """Creating the RDS client fails with ``errors`` in turn, then works."""

    def __init__(self, rds: ScriptedRds, errors: list[Exception]) -> None:
        super().__init__(rds)
        self.errors = errors
        self.creations = 0

    def rds_client(self) -> Any:
        self.creations += 1
        if self.errors:
            raise self.errors.pop(0)
        return super().rds_client()


def test_a_client_that_cannot_be_created_yet_is_retried_until_it_can(scripted_probe: ScriptedProbe) -> None:
    from botocore.exceptions import EndpointConnectionError

    rds = ScriptedRds([v2_description()])
    failures: list[Exception] = [
        EndpointConnectionError(endpoint_url="https://rds.example") for _ in range(3)
    ]
    resources = FailingClientResources(rds, failures)
    logs: list[str] = []

    report = run_virtual(lambda loop: wait(loop, resources, log=logs.append))

    assert resources.creations == 4
    assert report.rds_calls == {"DescribeDBClusters": 1}
    assert any("the AWS client could not be created" in line for line in logs)


def test_a_client_that_cannot_be_configured_fails_at_once(scripted_probe: ScriptedProbe) -> None:
    from botocore.exceptions import NoRegionError

    resources = FailingClientResources(ScriptedRds([v2_description()]), [NoRegionError()])
    with pytest.raises(AuroraWakeError, match="region"):
        run_virtual(lambda loop: wait(loop, resources))
    assert resources.creations == 1


def test_check_ready_once_carries_the_login_refusal_window_between_pokes(
    scripted_probe: ScriptedProbe,
) -> None:
    scripted_probe.errors = [
        asyncpg.exceptions.InvalidAuthorizationSpecificationError(PG_HBA_REFUSAL) for _ in range(3)
    ]
    rds = ScriptedRds([v2_description(min_capacity=0)])

    async def main(loop: VirtualTimeLoop) -> Any:
        first = await check_ready_once(request(), FakeResources(rds), clock=loop.wall)
        assert not first.ready and first.grace_since == {"login-refused": loop.wall()}
        await asyncio.sleep(30)
        second = await check_ready_once(
            request(), FakeResources(rds), clock=loop.wall, grace_since=first.grace_since
        )
        assert not second.ready and second.grace_since == first.grace_since
        await asyncio.sleep(LOGIN_REFUSAL_WINDOW)
        with pytest.raises(DatabaseAuthenticationError, match="Two causes"):
            await check_ready_once(
                request(), FakeResources(rds), clock=loop.wall, grace_since=first.grace_since
            )

    run_virtual(main)


def name_not_found() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_a_host_name_that_does_not_resolve_fails_after_a_short_grace(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.errors = [name_not_found() for _ in range(1000)]
    rds = ScriptedRds([v2_description()])
    with pytest.raises(DatabaseConfigurationError, match="has not resolved for") as caught:
        run_virtual(lambda loop: wait(loop, FakeResources(rds)))
    assert "typo" in str(caught.value)
    tried = scripted_probe.attempts
    assert tried[-1] - tried[0] >= NAME_NOT_FOUND_GRACE
    assert tried[-2] - tried[0] < NAME_NOT_FOUND_GRACE


def test_a_name_that_resolves_within_the_grace_is_ready(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.errors = [name_not_found() for _ in range(5)]
    report = run_virtual(lambda loop: wait(loop, FakeResources(ScriptedRds([v2_description()]))))
    assert report.attempts == 6


def test_a_temporary_resolver_failure_is_retried_past_the_grace(scripted_probe: ScriptedProbe) -> None:
    temporary = [
        socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution") for _ in range(150)
    ]
    scripted_probe.errors = temporary
    report = run_virtual(lambda loop: wait(loop, FakeResources(ScriptedRds([v2_description()]))))
    assert report.attempts == 151
    assert scripted_probe.attempts[-1] - scripted_probe.attempts[0] > NAME_NOT_FOUND_GRACE

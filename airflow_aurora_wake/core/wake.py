"""Send the wake that fits a cluster and return at once (the readiness wait follows).

:func:`wake_cluster` describes the cluster, decides with the pure
:func:`~airflow_aurora_wake.core.wake_plan.plan_wake` (re-exported here with its types) and sends
the plan's one request.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot, StatusCategory
from airflow_aurora_wake.core.errors import (
    InvalidParameterError,
    TransientError,
    aws_error_code,
    raise_if_fatal,
)
from airflow_aurora_wake.core.probes import DataApiTarget, DatabaseTarget, nudge_database, probe_once
from airflow_aurora_wake.core.rds import (
    RdsCalls,
    describe_cluster,
    describe_log_files,
    modify_current_capacity,
    retry_transient,
    start_cluster,
)
from airflow_aurora_wake.core.wake_plan import (
    WakeAction,
    WakeOptions,
    WakePlan,
    choose_v1_capacity,
    plan_wake,
)

__all__ = [
    "DATA_API_NUDGE_TIMEOUT",
    "WakeAction",
    "WakeOptions",
    "WakePlan",
    "WakeResult",
    "choose_v1_capacity",
    "plan_wake",
    "wake_cluster",
]

#: Seconds a Data API nudge may take: it answers DatabaseResumingException at once on a paused
#: cluster, so a longer call means trouble the readiness probe will see.
DATA_API_NUDGE_TIMEOUT = 30.0

T = TypeVar("T")
#: The least time one AWS call of a wake gets, even when its budget is spent.
MIN_CALL_SECONDS = 2.0
#: Runs one AWS call, retrying throttling and 5xx answers until the wake's deadline.
_Retrying = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


@dataclass(frozen=True)
class WakeResult:
    """What the waker did.

    :param db_cluster_identifier: the cluster.
    :param kind: the cluster kind.
    :param engine: the engine.
    :param status: the status seen before the wake.
    :param action: what was done.
    :param detail: a sentence for the task log.
    :param requested_at: epoch seconds when the wake was sent (or found under way).
    :param rds_calls: AWS calls made, per action.
    :param instance_paused: what ``describe-log-files`` proved: True when the writer instance
        answered ``DBInstanceNotReadyFault`` (it was paused, or already resuming), False when it
        answered (not paused, or awake by now); ``None`` for every other action.
    :param snapshot: the cluster as described, with ``seen_paused`` set from that proof, so
        that its ``may_be_paused`` (the input of the 28000 login-refusal grace) knows it.
    """

    db_cluster_identifier: str
    kind: ClusterKind
    engine: str
    status: str
    action: WakeAction
    detail: str
    requested_at: float
    rds_calls: dict[str, int] = field(default_factory=dict)
    instance_paused: bool | None = None
    snapshot: ClusterSnapshot | None = field(default=None, repr=False, compare=False)

    def as_xcom(self) -> dict[str, Any]:
        """Return the JSON-serializable result an operator pushes to XCom."""
        return {
            "db_cluster_identifier": self.db_cluster_identifier,
            "kind": self.kind.value,
            "engine": self.engine,
            "status": self.status,
            "action": self.action.value,
            "detail": self.detail,
            "requested_at": self.requested_at,
        }


async def _send(
    plan: WakePlan,
    with_retries: _Retrying,
    time_left: Callable[[], float],
    *,
    rds_client: Any,
    rds_data_client: Any,
    region_name: str | None,
    calls: RdsCalls,
) -> tuple[WakeAction, str]:
    """Send the plan's one request; return what was done and the sentence for the log.

    Every "already under way" answer is a success, so many callers may wake one cluster at once.
    """
    name = plan.snapshot.identifier
    if plan.action is WakeAction.MODIFY_CAPACITY:
        assert plan.capacity is not None
        capacity = plan.capacity
        # The plan's describe may be stale by now (under load, seconds): another run's request or
        # a connection may have woken the cluster, and a capacity request to an awake, scaled-up
        # cluster would scale it down. Ask only if it is still at capacity 0 right now. One try,
        # not retried: when RDS does not answer it (throttled), the plan's describe stands.
        try:
            current = await describe_cluster(
                rds_client, name, region_name=region_name, calls=calls, timeout=time_left()
            )
        except TransientError:
            current = plan.snapshot
        scaling = current.status.strip().lower() == "scaling-capacity"
        if current.category is not StatusCategory.AVAILABLE or current.capacity != 0 or scaling:
            return WakeAction.ALREADY_WAKING, (
                f"cluster {name} is {current.status} at capacity {current.capacity}: woken meanwhile, "
                "no capacity request sent"
            )
        accepted = await with_retries(
            lambda: modify_current_capacity(
                rds_client,
                name,
                capacity=capacity,
                seconds_before_timeout=plan.options.seconds_before_timeout,
                timeout_action=plan.options.timeout_action,
                region_name=region_name,
                calls=calls,
                timeout=time_left(),
            )
        )
        if not accepted:
            detail = f"cluster {name}: a scaling or resume is already under way (InvalidDBClusterStateFault)"
            return WakeAction.ALREADY_WAKING, detail
    elif plan.action is WakeAction.START:
        accepted = await with_retries(
            lambda: start_cluster(rds_client, name, region_name=region_name, calls=calls, timeout=time_left())
        )
        if not accepted:
            detail = f"cluster {name} is already starting (InvalidDBClusterStateFault from StartDBCluster)"
            return WakeAction.ALREADY_WAKING, detail
    elif plan.action is WakeAction.NUDGE_CONNECTION:
        target = plan.options.nudge_target
        assert target is not None
        outcome = await nudge_database(target, hold_seconds=plan.options.nudge_hold_seconds)
        return plan.action, f"{plan.detail}: {outcome}"
    elif plan.action is WakeAction.NUDGE_DATA_API:
        if rds_data_client is None:
            raise InvalidParameterError(
                "rds_data_client", None, "a Data API nudge needs an rds-data client from the adapter"
            )
        outcome = await _data_api_nudge(plan, rds_data_client, calls, with_retries, time_left)
        return plan.action, f"{plan.detail}: {outcome}"
    return plan.action, plan.detail


async def _data_api_nudge(
    plan: WakePlan,
    rds_data_client: Any,
    calls: RdsCalls,
    with_retries: _Retrying,
    time_left: Callable[[], float],
) -> str:
    snapshot = plan.snapshot
    secret_arn = plan.options.data_api_secret_arn
    assert snapshot.arn is not None and secret_arn is not None

    async def attempt() -> bool:
        try:
            await probe_once(
                snapshot,
                DataApiTarget(secret_arn, plan.options.database),
                timeout=min(DATA_API_NUDGE_TIMEOUT, time_left()),
                rds_data_client=rds_data_client,
                calls=calls,
            )
        except Exception as exc:
            if aws_error_code(exc) == "DatabaseResumingException":
                return False  # the success case of a nudge: the call started a resume
            verdict = raise_if_fatal(exc, where="rds-data", cluster=snapshot.identifier)
            if verdict.throttled:
                raise TransientError(verdict.reason, verdict) from exc
            return False  # "not ready yet": the resume is under way
        return True

    awake = await with_retries(attempt)
    return "the database answered: it is awake" if awake else "the Data API reported a resume under way"


async def _describe_writer_log_files(
    plan: WakePlan,
    with_retries: _Retrying,
    time_left: Callable[[], float],
    *,
    rds_client: Any,
    region_name: str | None,
    calls: RdsCalls,
) -> tuple[bool, str]:
    """``DescribeDBLogFiles`` on the writer: whether it proved the writer paused, and the sentence.

    Throttling and 5xx are retried within the wake's budget like every RDS call of a wake;
    ``AccessDenied`` fails at once naming ``rds:DescribeDBLogFiles``.
    """
    name = plan.snapshot.identifier
    writer = plan.snapshot.writer_instance
    assert writer is not None
    answered = await with_retries(
        lambda: describe_log_files(
            rds_client, name, instance=writer, region_name=region_name, calls=calls, timeout=time_left()
        )
    )
    if answered:
        return False, f"{plan.detail}: the writer answered: it was not paused (or is awake now)"
    return True, f"{plan.detail}: the writer was paused (DBInstanceNotReadyFault): its resume is under way"


async def wake_cluster(
    db_cluster_identifier: str,
    options: WakeOptions,
    *,
    rds_client: Any,
    rds_data_client: Any = None,
    region_name: str | None = None,
    calls: RdsCalls | None = None,
    retry_seconds: float = 60.0,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    nudge_target: Callable[[ClusterSnapshot], Awaitable[DatabaseTarget]] | None = None,
) -> WakeResult:
    """Describe, plan and execute a wake: what the wake operator and :func:`wake_and_wait` run.

    :param db_cluster_identifier: the cluster identifier.
    :param options: how to wake.
    :param rds_client: an aiobotocore RDS client.
    :param rds_data_client: an aiobotocore ``rds-data`` client (for a Data API nudge).
    :param region_name: the region, for messages.
    :param calls: counter for AWS calls.
    :param retry_seconds: the wake's budget: every AWS call is bounded by what is left of it (but
        gets at least :data:`MIN_CALL_SECONDS`), and throttling, 5xx and network failures are
        retried within it. The wake returns within it plus one call's ``MIN_CALL_SECONDS``, plus
        ``options.nudge_hold_seconds`` for a connection nudge.
    :param clock: the wall clock.
    :param rng: random source for backoff jitter.
    :param sleep: the sleep coroutine.
    :param nudge_target: builds the database target of a connection nudge from the described
        cluster (its endpoint fills an empty host); it may raise when the target does not fit
        the cluster's engine. ``None``: ``options.nudge_target`` as given.
    """
    calls = calls if calls is not None else RdsCalls()
    deadline = clock() + retry_seconds

    async def with_retries(operation: Callable[[], Awaitable[T]]) -> T:
        return await retry_transient(operation, deadline=deadline, clock=clock, rng=rng, sleep=sleep)

    def time_left() -> float:
        # Every call is bounded by what is left of retry_seconds, so the wake returns in time even
        # when the endpoint accepts and never answers; but never by less than a call needs, so a
        # budget spent on throttling still lets the next request be answered.
        return max(MIN_CALL_SECONDS, deadline - clock())

    snapshot = await with_retries(
        lambda: describe_cluster(
            rds_client, db_cluster_identifier, region_name=region_name, calls=calls, timeout=time_left()
        )
    )
    if nudge_target is not None:
        options = replace(options, nudge_target=await nudge_target(snapshot))
    plan = plan_wake(snapshot, options)
    requested_at = clock()
    instance_paused: bool | None = None
    action: WakeAction = plan.action
    if plan.action is WakeAction.DESCRIBE_LOG_FILES:
        instance_paused, detail = await _describe_writer_log_files(
            plan, with_retries, time_left, rds_client=rds_client, region_name=region_name, calls=calls
        )
        snapshot = replace(snapshot, seen_paused=instance_paused)
    else:
        action, detail = await _send(
            plan,
            with_retries,
            time_left,
            rds_client=rds_client,
            rds_data_client=rds_data_client,
            region_name=region_name,
            calls=calls,
        )
    return WakeResult(
        db_cluster_identifier=snapshot.identifier,
        kind=snapshot.kind,
        engine=snapshot.engine,
        status=snapshot.status,
        action=action,
        detail=detail,
        requested_at=requested_at,
        rds_calls=calls.as_dict(),
        instance_paused=instance_paused,
        snapshot=snapshot,
    )

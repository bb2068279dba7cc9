"""Decide and send the wake that fits a cluster; return at once (the readiness wait follows).

:func:`plan_wake` is pure (a snapshot and options in, a plan out) so every row of the decision
table is testable without AWS; :func:`wake_cluster` describes, plans and sends the plan's one request.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, TypeVar

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot, StatusCategory
from airflow_aurora_wake.core.engines import V1_CAPACITIES
from airflow_aurora_wake.core.errors import (
    ClusterStateError,
    InvalidParameterError,
    TransientError,
    aws_error_code,
    raise_if_fatal,
)
from airflow_aurora_wake.core.probes import DataApiTarget, DatabaseTarget, nudge_database, probe_once
from airflow_aurora_wake.core.rds import (
    RdsCalls,
    describe_cluster,
    modify_current_capacity,
    retry_transient,
    start_cluster,
)
from airflow_aurora_wake.core.targets import check_engine
from airflow_aurora_wake.core.validation import (
    validate_bool,
    validate_capacity,
    validate_positive_seconds,
    validate_seconds_before_timeout,
    validate_secret_arn,
    validate_timeout_action,
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


class WakeAction(str, Enum):
    """What the waker did (or found already done); values are user-visible in XCom."""

    MODIFY_CAPACITY = "modify-capacity"
    START = "start-db-cluster"
    NUDGE_CONNECTION = "connection-nudge"
    NUDGE_DATA_API = "data-api-nudge"
    NONE = "none"
    #: a wake was already under way (cluster ``starting``, or AWS answered InvalidDBClusterStateFault)
    ALREADY_WAKING = "already-waking"
    #: v2 with auto-pause and no nudge configured: the readiness probe's first attempt wakes it
    PROBE_WILL_WAKE = "probe-will-wake"


@dataclass(frozen=True)
class WakeOptions:
    """How to wake.

    :param capacity: v1 target capacity; ``None`` picks the cluster's minimum valid capacity.
    :param seconds_before_timeout: v1 ``SecondsBeforeTimeout`` (10..600).
    :param timeout_action: v1 ``TimeoutAction``: ``RollbackCapacityChange`` (default; never drops
        connections) or ``ForceApplyCapacityChange``.
    :param start_if_stopped: send ``StartDBCluster`` to a stopped cluster (else fail).
    :param nudge_target: database to nudge a v2 cluster with a connection attempt.
    :param data_api_secret_arn: secret for a Data API ``SELECT 1`` nudge (preferred when given).
    :param database: database for the Data API nudge.
    :param nudge_hold_seconds: how long a connection nudge holds its attempt open.
    """

    capacity: int | None = None
    seconds_before_timeout: int = 300
    timeout_action: str = "RollbackCapacityChange"
    start_if_stopped: bool = True
    nudge_target: DatabaseTarget | None = None
    data_api_secret_arn: str | None = None
    database: str | None = None
    nudge_hold_seconds: float = 3.0

    def __post_init__(self) -> None:
        validate_capacity(self.capacity)
        validate_seconds_before_timeout(self.seconds_before_timeout)
        validate_timeout_action(self.timeout_action)
        validate_bool(self.start_if_stopped, "start_if_stopped")
        validate_secret_arn(self.data_api_secret_arn)
        validate_positive_seconds(self.nudge_hold_seconds, "nudge_hold_seconds")
        if self.nudge_target is not None and not isinstance(self.nudge_target, DatabaseTarget):
            raise InvalidParameterError("nudge_target", self.nudge_target, "must be a DatabaseTarget or None")


@dataclass(frozen=True)
class WakePlan:
    """The one request :func:`wake_cluster` will send.

    :param snapshot: the cluster as described.
    :param action: what to do.
    :param detail: why, in words a user reads in the task log.
    :param options: the options the request is sent with (v1 timeout settings, nudge target,
        Data API secret and database, hold time).
    :param capacity: the v1 capacity chosen for the cluster, for ``modify-capacity``.
    """

    snapshot: ClusterSnapshot
    action: WakeAction
    detail: str
    options: WakeOptions = field(default_factory=WakeOptions, repr=False)
    capacity: int | None = None


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
    """

    db_cluster_identifier: str
    kind: ClusterKind
    engine: str
    status: str
    action: WakeAction
    detail: str
    requested_at: float
    rds_calls: dict[str, int] = field(default_factory=dict)

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


def choose_v1_capacity(snapshot: ClusterSnapshot, requested: int | None) -> int:
    """Pick the v1 capacity to request: ``requested`` if valid, else the minimum valid one.

    :param snapshot: a v1 cluster.
    :param requested: the user's capacity or ``None``.
    :raises InvalidParameterError: the capacity is not valid for the engine or the cluster's range.
    """
    family = snapshot.engine_family or "mysql"
    valid = V1_CAPACITIES[family]
    low = snapshot.min_capacity if snapshot.min_capacity is not None else 0.0
    high = snapshot.max_capacity if snapshot.max_capacity is not None else float("inf")
    in_range = [value for value in valid if low <= value <= high]
    if requested is not None:
        validate_capacity(requested, family)
        if not low <= requested <= high:
            raise InvalidParameterError(
                "capacity",
                requested,
                f"DB cluster {snapshot.identifier!r} scales between {low:g} and {high:g} ACUs; "
                f"choose one of {in_range or list(valid)} or leave capacity unset",
            )
        return requested
    if not in_range:
        raise InvalidParameterError(
            "capacity",
            None,
            f"no valid Aurora {family} capacity {list(valid)} lies within the range {low:g}..{high:g} "
            f"of DB cluster {snapshot.identifier!r}; fix the cluster's scaling configuration",
        )
    return in_range[0]


def plan_wake(snapshot: ClusterSnapshot, options: WakeOptions) -> WakePlan:
    """Decide the wake for a cluster (pure: no I/O).

    :param snapshot: the cluster as just described.
    :param options: how to wake.
    :raises ClusterStateError: stopped without ``start_if_stopped``, or a non-recoverable state.
    :raises InvalidParameterError: a v1 capacity that cannot work.
    :raises DatabaseConfigurationError: a nudge target whose engine does not match the cluster.
    """
    category = snapshot.category
    name = snapshot.identifier
    if category is StatusCategory.STOPPED:
        if not options.start_if_stopped:
            raise ClusterStateError(
                name,
                snapshot.status,
                "this wake was asked not to start it: start it (StartDBCluster), or let the wake "
                "start stopped clusters",
            )
        return WakePlan(snapshot, WakeAction.START, f"cluster {name} is stopped; starting it")
    if category is StatusCategory.WAKING:
        return WakePlan(
            snapshot, WakeAction.ALREADY_WAKING, f"cluster {name} is {snapshot.status}: already waking"
        )
    if category is StatusCategory.FAILED:
        raise ClusterStateError(name, snapshot.status)

    if snapshot.kind is ClusterKind.SERVERLESS_V1:
        if snapshot.capacity is not None and snapshot.capacity > 0:
            return WakePlan(
                snapshot, WakeAction.NONE, f"cluster {name} is running at {snapshot.capacity:g} ACUs"
            )
        capacity = choose_v1_capacity(snapshot, options.capacity)
        return WakePlan(
            snapshot,
            WakeAction.MODIFY_CAPACITY,
            f"cluster {name} is paused (capacity 0); scaling it to {capacity} ACUs",
            options,
            capacity=capacity,
        )
    if snapshot.kind is ClusterKind.SERVERLESS_V2 and snapshot.auto_pause:
        if options.nudge_target is not None:
            target = options.nudge_target
            check_engine(snapshot, target.engine, f"connection {target.describe()}")
        if options.data_api_secret_arn and snapshot.arn:
            return WakePlan(
                snapshot,
                WakeAction.NUDGE_DATA_API,
                f"cluster {name} may be paused (auto-pause); a Data API SELECT 1 starts the resume",
                options,
            )
        if options.nudge_target is not None:
            return WakePlan(
                snapshot,
                WakeAction.NUDGE_CONNECTION,
                f"cluster {name} may be paused (auto-pause); a connection attempt starts the resume",
                options,
            )
        return WakePlan(
            snapshot,
            WakeAction.PROBE_WILL_WAKE,
            f"cluster {name} may be paused (auto-pause); no nudge configured: the readiness probe's "
            "first attempt will wake it",
        )
    return WakePlan(
        snapshot,
        WakeAction.NONE,
        f"cluster {name} is {snapshot.kind.value} and {snapshot.status}: nothing to wake",
    )


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
    )

"""RDS calls over an aiobotocore client, with AWS errors mapped to core errors.

Each function makes exactly one call and records it in an :class:`RdsCalls` counter. A
failure that may pass (throttling, 5xx, network) is raised as :class:`TransientError` carrying
its verdict; the caller decides how to back off (see :func:`retry_transient`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

from airflow_aurora_wake.core.cluster import ClusterSnapshot, classify_cluster
from airflow_aurora_wake.core.errors import (
    ClusterDeletedError,
    ClusterDescriptionError,
    ClusterNotFoundError,
    TransientError,
    aws_error_code,
    raise_if_fatal,
)
from airflow_aurora_wake.core.retry import AWS_RETRY, THROTTLE_RETRY, RetryPolicy

__all__ = [
    "RdsCalls",
    "describe_cluster",
    "modify_current_capacity",
    "retry_transient",
    "start_cluster",
]

T = TypeVar("T")


class RdsCalls:
    """Counts AWS calls per action (``DescribeDBClusters``, ``ExecuteStatement``, ...)."""

    def __init__(self) -> None:
        self.by_action: dict[str, int] = {}

    def record(self, action: str) -> None:
        """Count one call.

        :param action: the API action name.
        """
        self.by_action[action] = self.by_action.get(action, 0) + 1

    @property
    def total(self) -> int:
        """All calls counted."""
        return sum(self.by_action.values())

    def as_dict(self) -> dict[str, int]:
        """A copy of the counts, safe to put in XCom."""
        return dict(self.by_action)

    def __repr__(self) -> str:
        return f"RdsCalls({self.by_action!r})"


def _raise_mapped(
    exc: Exception, *, action: str, identifier: str, region_name: str | None, seen: bool = False
) -> NoReturn:
    """Raise the core error for ``exc`` (fatal) or a :class:`TransientError` (may pass)."""
    if seen and aws_error_code(exc) == "DBClusterNotFoundFault":
        raise ClusterDeletedError(
            f"DB cluster {identifier!r} was deleted while waiting for it (DescribeDBClusters now "
            "answers DBClusterNotFoundFault)"
        ) from None
    verdict = raise_if_fatal(exc, where=f"rds:{action}", cluster=identifier, region=region_name)
    raise TransientError(
        f"rds:{action} for DB cluster {identifier!r} failed: {verdict.reason}", verdict
    ) from exc


async def describe_cluster(
    client: Any,
    identifier: str,
    *,
    region_name: str | None = None,
    calls: RdsCalls | None = None,
    seen: bool = False,
) -> ClusterSnapshot:
    """Describe one cluster.

    :param client: an aiobotocore RDS client.
    :param identifier: the cluster identifier.
    :param region_name: the region, for messages.
    :param calls: counter to record the call in.
    :param seen: True once the cluster was seen: "not found" then means it was deleted.
    :raises ClusterNotFoundError: unknown identifier (or ``ClusterDeletedError`` when ``seen``).
    :raises TransientError: throttling, 5xx or network trouble.
    """
    if calls is not None:
        calls.record("DescribeDBClusters")
    try:
        response = await client.describe_db_clusters(DBClusterIdentifier=identifier)
    except Exception as exc:
        _raise_mapped(
            exc, action="DescribeDBClusters", identifier=identifier, region_name=region_name, seen=seen
        )
    clusters = response.get("DBClusters") if isinstance(response, Mapping) else None
    if not isinstance(clusters, list):
        raise ClusterDescriptionError(
            f"DescribeDBClusters answered without a DBClusters list for {identifier!r}; check that "
            "the endpoint_url points at the RDS API"
        )
    if not clusters:
        if seen:
            raise ClusterDeletedError(f"DB cluster {identifier!r} was deleted while waiting for it")
        raise ClusterNotFoundError(identifier, region_name)
    for item in clusters:
        if (
            isinstance(item, Mapping)
            and str(item.get("DBClusterIdentifier", "")).lower() == identifier.lower()
        ):
            return classify_cluster(item)
    return classify_cluster(clusters[0])


async def modify_current_capacity(
    client: Any,
    identifier: str,
    *,
    capacity: int,
    seconds_before_timeout: int,
    timeout_action: str,
    region_name: str | None = None,
    calls: RdsCalls | None = None,
) -> bool:
    """Ask a Serverless v1 cluster to scale to ``capacity`` (this resumes a paused cluster).

    :param client: an aiobotocore RDS client.
    :param identifier: the cluster identifier.
    :param capacity: the capacity in ACUs.
    :param seconds_before_timeout: ``SecondsBeforeTimeout`` (10..600).
    :param timeout_action: ``RollbackCapacityChange`` or ``ForceApplyCapacityChange``.
    :param region_name: the region, for messages.
    :param calls: counter to record the call in.
    :returns: True when accepted; False on ``InvalidDBClusterStateFault``, which means a scaling
        or resume is already under way (UNCONFIRMED which): a success for a waker.
    """
    if calls is not None:
        calls.record("ModifyCurrentDBClusterCapacity")
    try:
        await client.modify_current_db_cluster_capacity(
            DBClusterIdentifier=identifier,
            Capacity=capacity,
            SecondsBeforeTimeout=seconds_before_timeout,
            TimeoutAction=timeout_action,
        )
    except Exception as exc:
        if aws_error_code(exc) == "InvalidDBClusterStateFault":
            return False
        _raise_mapped(
            exc, action="ModifyCurrentDBClusterCapacity", identifier=identifier, region_name=region_name
        )
    return True


async def start_cluster(
    client: Any, identifier: str, *, region_name: str | None = None, calls: RdsCalls | None = None
) -> bool:
    """Start a stopped cluster.

    :param client: an aiobotocore RDS client.
    :param identifier: the cluster identifier.
    :param region_name: the region, for messages.
    :param calls: counter to record the call in.
    :returns: True when accepted; False on ``InvalidDBClusterStateFault`` (already starting or
        available): a success for a waker.
    """
    if calls is not None:
        calls.record("StartDBCluster")
    try:
        await client.start_db_cluster(DBClusterIdentifier=identifier)
    except Exception as exc:
        if aws_error_code(exc) == "InvalidDBClusterStateFault":
            return False
        _raise_mapped(exc, action="StartDBCluster", identifier=identifier, region_name=region_name)
    return True


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    deadline: float,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    policy: RetryPolicy = AWS_RETRY,
    throttle_policy: RetryPolicy = THROTTLE_RETRY,
) -> T:
    """Run ``operation`` until it succeeds, retrying :class:`TransientError` until ``deadline``.

    Throttling backs off on ``throttle_policy`` and does not advance the failure count.

    :param operation: a zero-argument coroutine function (one AWS call).
    :param deadline: epoch seconds after which the last :class:`TransientError` is raised.
    :param clock: the wall clock.
    :param rng: random source for jitter.
    :param sleep: the sleep coroutine (inject in tests).
    :param policy: backoff for failures other than throttling.
    :param throttle_policy: backoff for throttling.
    """
    rng = rng or random.Random()
    failures = 0
    throttles = 0
    while True:
        try:
            return await operation()
        except TransientError as exc:
            if exc.verdict.throttled:
                throttles += 1
                delay = throttle_policy.delay(throttles, rng)
            else:
                failures += 1
                delay = policy.delay(failures, rng)
            remaining = deadline - clock()
            if remaining <= 0:
                raise
            await sleep(min(delay, remaining))

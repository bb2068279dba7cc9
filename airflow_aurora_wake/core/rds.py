"""RDS calls over an aiobotocore client, with AWS errors mapped to core errors.

Each function makes exactly one call and records it in an :class:`RdsCalls` counter. A
failure that may pass (throttling, 5xx, network, no answer in time) is raised as
:class:`TransientError` carrying its verdict; the caller decides how to back off (see
:func:`retry_transient`). Every call takes the same parameters besides its own:

- ``client``: an aiobotocore RDS client;
- ``identifier``: the cluster identifier;
- ``region_name``: the region, for messages;
- ``calls``: the counter to record the call in;
- ``timeout``: seconds the call may take (``None``: botocore's own timeouts, which can hold a
  call for minutes against an endpoint that never answers).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypedDict, TypeVar, Unpack

from airflow_aurora_wake.core.cluster import ClusterSnapshot, classify_cluster
from airflow_aurora_wake.core.errors import (
    ClusterDeletedError,
    ClusterDescriptionError,
    ClusterNotFoundError,
    TransientError,
    aws_error_code,
    classify_error,
    raise_if_fatal,
)
from airflow_aurora_wake.core.instances import InstanceSnapshot, classify_instances
from airflow_aurora_wake.core.retry import AWS_RETRY, THROTTLE_RETRY, RetryPolicy

__all__ = [
    "AWS_CALL_TIMEOUT",
    "CallOptions",
    "RdsCalls",
    "add_tags",
    "describe_cluster",
    "describe_instances",
    "describe_log_files",
    "modify_current_capacity",
    "modify_v2_scaling",
    "remove_tags",
    "retry_transient",
    "start_cluster",
    "stop_cluster",
]

T = TypeVar("T")

#: The longest one AWS call may take inside a wait (and less when the deadline is nearer): a
#: call cut short is retried like any network failure, so a black-holed endpoint cannot hold a
#: wait, a worker slot or the CLI past its deadline.
AWS_CALL_TIMEOUT = 20.0


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


async def _bounded(call: Awaitable[T], timeout: float | None) -> T:
    """Await one AWS call for at most ``timeout`` seconds.

    botocore's own timeouts (60 s per read, several attempts) can hold a call for minutes
    against an endpoint that accepts and never answers; the caller's deadline decides instead.
    A call cut short is a ``TimeoutError``, which is transient.
    """
    if timeout is None:
        return await call
    try:
        return await asyncio.wait_for(call, timeout=max(timeout, 0.001))
    except asyncio.TimeoutError:
        raise TimeoutError(f"no answer within {timeout:.1f} s") from None


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


class CallOptions(TypedDict, total=False):
    """The keyword parameters every call here takes besides its own (see the module's docstring)."""

    region_name: str | None
    calls: RdsCalls | None
    timeout: float | None


async def describe_cluster(
    client: Any, identifier: str, *, seen: bool = False, **options: Unpack[CallOptions]
) -> ClusterSnapshot:
    """Describe one cluster.

    ``client``, ``identifier``, ``region_name``, ``calls`` and ``timeout``: see the module's docstring.

    :param seen: True once the cluster was seen: "not found" then means it was deleted.
    :raises ClusterNotFoundError: unknown identifier (or ``ClusterDeletedError`` when ``seen``).
    :raises TransientError: throttling, 5xx or network trouble.
    """
    region_name = options.get("region_name")
    calls = options.get("calls")
    if calls is not None:
        calls.record("DescribeDBClusters")
    try:
        request = client.describe_db_clusters(DBClusterIdentifier=identifier)
        response = await _bounded(request, options.get("timeout"))
    except Exception as exc:
        _raise_mapped(
            exc, action="DescribeDBClusters", identifier=identifier, region_name=region_name, seen=seen
        )
    clusters = response.get("DBClusters") if isinstance(response, Mapping) else None
    if not isinstance(clusters, list):
        raise ClusterDescriptionError(
            f"DescribeDBClusters answered without a DBClusters list for {identifier!r}; check that "
            "the RDS endpoint URL points at the RDS API"
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


async def describe_instances(
    client: Any, identifier: str, **options: Unpack[CallOptions]
) -> tuple[InstanceSnapshot, ...]:
    """List the DB instances of one cluster (``DescribeDBInstances`` filtered on ``db-cluster-id``).

    One page is enough: a cluster has at most 16 instances and a page holds 100.
    ``client``, ``identifier``, ``region_name``, ``calls`` and ``timeout``: see the module's docstring.

    :returns: the instances, ordered by identifier (none for a Serverless v1 cluster).
    :raises AwsPermissionError: the caller may not call ``rds:DescribeDBInstances``.
    :raises TransientError: throttling, 5xx or network trouble.
    """
    calls = options.get("calls")
    if calls is not None:
        calls.record("DescribeDBInstances")
    try:
        request = client.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [identifier]}])
        response = await _bounded(request, options.get("timeout"))
    except Exception as exc:
        _raise_mapped(
            exc, action="DescribeDBInstances", identifier=identifier, region_name=options.get("region_name")
        )
    return classify_instances(response)


async def modify_current_capacity(
    client: Any,
    identifier: str,
    *,
    capacity: int,
    seconds_before_timeout: int,
    timeout_action: str,
    **options: Unpack[CallOptions],
) -> bool:
    """Ask a Serverless v1 cluster to scale to ``capacity`` (this resumes a paused cluster).

    ``client``, ``identifier``, ``region_name``, ``calls`` and ``timeout`` are those of every call
    here (see the module's docstring).

    :param capacity: the capacity in ACUs.
    :param seconds_before_timeout: ``SecondsBeforeTimeout`` (10..600).
    :param timeout_action: ``RollbackCapacityChange`` or ``ForceApplyCapacityChange``.
    :returns: True when accepted; False on ``InvalidDBClusterStateFault``, which means a scaling
        or resume is already under way (UNCONFIRMED which): a success for a waker.
    """
    request = client.modify_current_db_cluster_capacity(
        DBClusterIdentifier=identifier,
        Capacity=capacity,
        SecondsBeforeTimeout=seconds_before_timeout,
        TimeoutAction=timeout_action,
    )
    return await _wake_request("ModifyCurrentDBClusterCapacity", request, identifier, options)


async def start_cluster(client: Any, identifier: str, **options: Unpack[CallOptions]) -> bool:
    """Start a stopped cluster (parameters: see the module's docstring).

    :returns: True when accepted; False on ``InvalidDBClusterStateFault`` (already starting or
        available): a success for a waker.
    """
    request = client.start_db_cluster(DBClusterIdentifier=identifier)
    return await _wake_request("StartDBCluster", request, identifier, options)


async def describe_log_files(
    client: Any, identifier: str, *, instance: str, **options: Unpack[CallOptions]
) -> bool:
    """List the log files of one instance of the cluster (``DescribeDBLogFiles``).

    A read-only call that resumes a paused Serverless v2 instance (an AWS-documented waker), and
    the one RDS answer that tells a paused instance apart. ``client``, ``identifier`` (the
    cluster, for messages), ``region_name``, ``calls`` and ``timeout``: see the module's docstring.

    :param instance: the ``DBInstanceIdentifier`` (the cluster's writer).
    :returns: True when the instance answered (it was not paused, or is awake by now); False on
        ``DBInstanceNotReadyFault``: the instance is paused (the call starts its resume) or
        still resuming.
    :raises AwsPermissionError: the caller may not call ``rds:DescribeDBLogFiles``.
    :raises TransientError: throttling, 5xx or network trouble.
    """
    region_name = options.get("region_name")
    calls = options.get("calls")
    if calls is not None:
        calls.record("DescribeDBLogFiles")
    try:
        # No MaxRecords: AWS documents no bounds for it here (other describes refuse under 20),
        # and a list of log file names is small.
        request = client.describe_db_log_files(DBInstanceIdentifier=instance)
        await _bounded(request, options.get("timeout"))
    except Exception as exc:
        where = "rds:DescribeDBLogFiles"
        if classify_error(exc, where=where, cluster=identifier, region=region_name).proves_paused:
            return False
        _raise_mapped(exc, action="DescribeDBLogFiles", identifier=identifier, region_name=region_name)
    return True


async def stop_cluster(client: Any, identifier: str, **options: Unpack[CallOptions]) -> bool:
    """Stop a running cluster (parameters: see the module's docstring).

    :returns: True when accepted; False on ``InvalidDBClusterStateFault`` (not in a state that
        can be stopped: already stopping or stopped, or still starting).
    """
    request = client.stop_db_cluster(DBClusterIdentifier=identifier)
    return await _wake_request("StopDBCluster", request, identifier, options)


async def modify_v2_scaling(
    client: Any,
    identifier: str,
    *,
    min_capacity: float,
    max_capacity: float,
    seconds_until_auto_pause: int | None,
    **options: Unpack[CallOptions],
) -> bool:
    """Set a Serverless v2 cluster's scaling range (``ModifyDBCluster``, applied immediately).

    Raising ``MinCapacity`` above 0 resumes a paused cluster (an AWS-documented waker).

    :param min_capacity: ``MinCapacity`` in ACUs.
    :param max_capacity: ``MaxCapacity`` in ACUs.
    :param seconds_until_auto_pause: ``SecondsUntilAutoPause``, sent only with a minimum of 0.
    :returns: True when accepted; False on ``InvalidDBClusterStateFault`` (the cluster cannot be
        modified now: starting, or another modification under way).
    """
    scaling: dict[str, Any] = {"MinCapacity": min_capacity, "MaxCapacity": max_capacity}
    if min_capacity == 0 and seconds_until_auto_pause is not None:
        scaling["SecondsUntilAutoPause"] = seconds_until_auto_pause
    request = client.modify_db_cluster(
        DBClusterIdentifier=identifier, ServerlessV2ScalingConfiguration=scaling, ApplyImmediately=True
    )
    return await _wake_request("ModifyDBCluster", request, identifier, options)


async def add_tags(
    client: Any, identifier: str, arn: str, tags: Mapping[str, str], **options: Unpack[CallOptions]
) -> None:
    """Add (or overwrite) tags on the cluster ``arn`` (``AddTagsToResource``).

    :param arn: the cluster's ARN.
    :param tags: key to value.
    """
    request = client.add_tags_to_resource(
        ResourceName=arn, Tags=[{"Key": key, "Value": value} for key, value in tags.items()]
    )
    await _write("AddTagsToResource", request, identifier, options)


async def remove_tags(
    client: Any, identifier: str, arn: str, keys: list[str], **options: Unpack[CallOptions]
) -> None:
    """Remove tags from the cluster ``arn`` (``RemoveTagsFromResource``; absent keys are fine).

    :param arn: the cluster's ARN.
    :param keys: the tag keys.
    """
    request = client.remove_tags_from_resource(ResourceName=arn, TagKeys=keys)
    await _write("RemoveTagsFromResource", request, identifier, options)


async def _write(action: str, request: Awaitable[Any], identifier: str, options: CallOptions) -> None:
    calls = options.get("calls")
    if calls is not None:
        calls.record(action)
    try:
        await _bounded(request, options.get("timeout"))
    except Exception as exc:
        _raise_mapped(exc, action=action, identifier=identifier, region_name=options.get("region_name"))


async def _wake_request(action: str, request: Awaitable[Any], identifier: str, options: CallOptions) -> bool:
    """Send one wake request; ``InvalidDBClusterStateFault`` (already under way) is a success."""
    calls = options.get("calls")
    if calls is not None:
        calls.record(action)
    try:
        await _bounded(request, options.get("timeout"))
    except Exception as exc:
        if aws_error_code(exc) == "InvalidDBClusterStateFault":
            return False
        _raise_mapped(exc, action=action, identifier=identifier, region_name=options.get("region_name"))
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

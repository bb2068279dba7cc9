"""The wake nudges what the wait will wait on: the reader endpoint, or every DB instance.

:func:`wake_cluster` nudges a paused Serverless v2 cluster through its writer endpoint. Readers
in failover tiers 2-15 pause on their own, so a wait on the reader endpoint or on every
instance would find them paused: :func:`wake_instances` sends the same short connection attempt
to the reader endpoint, or to each instance endpoint, right after (all at once: the holds
overlap). Only a connection reaches a reader; a Data API call or a log-file listing wakes the
writer alone, and the sensor's own probes then wake the readers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.errors import TransientError
from airflow_aurora_wake.core.instances import InstanceState
from airflow_aurora_wake.core.probes import DatabaseTarget, nudge_database
from airflow_aurora_wake.core.rds import AWS_CALL_TIMEOUT, RdsCalls, describe_instances
from airflow_aurora_wake.core.validation import validate_instances
from airflow_aurora_wake.core.wake import MIN_CALL_SECONDS, WakeAction, WakeOptions, WakeResult, wake_cluster

__all__ = ["EndpointTarget", "wake_instances"]


class EndpointTarget(Protocol):
    """Builds the database target of one endpoint of the cluster (``host=None``: the writer's)."""

    def __call__(
        self, snapshot: ClusterSnapshot, *, host: str | None = None, port: int | None = None
    ) -> Awaitable[DatabaseTarget]: ...


async def wake_instances(
    db_cluster_identifier: str,
    options: WakeOptions,
    instances: str,
    *,
    rds_client: Any,
    rds_data_client: Any = None,
    region_name: str | None = None,
    retry_seconds: float = 60.0,
    nudge_target: EndpointTarget | None = None,
) -> WakeResult:
    """:func:`wake_cluster`, then, after a connection nudge, the same nudge for the readers.

    :param db_cluster_identifier: the cluster identifier.
    :param options: how to wake (``nudge_hold_seconds`` is each reader nudge's hold too).
    :param instances: what the wait that follows waits on: ``writer`` (nothing more is sent),
        ``reader`` (the reader endpoint is nudged) or ``all`` (every DB instance endpoint that
        ``DescribeDBInstances`` lists as serving is nudged).
    :param rds_client: an aiobotocore RDS client.
    :param rds_data_client: an aiobotocore ``rds-data`` client (for a Data API nudge).
    :param region_name: the region, for messages.
    :param retry_seconds: the wake's budget (see :func:`wake_cluster`); ``DescribeDBInstances``
        is bounded by what is left of it (but gets at least ``MIN_CALL_SECONDS``).
    :param nudge_target: builds a connection nudge's target for an endpoint of the cluster.
    :raises InvalidParameterError: an unknown ``instances``.
    :raises AwsPermissionError: ``instances="all"`` without ``rds:DescribeDBInstances``.
    """
    validate_instances(instances)
    deadline = time.time() + retry_seconds
    calls = RdsCalls()
    described: list[ClusterSnapshot] = []

    async def writer_target(snapshot: ClusterSnapshot) -> DatabaseTarget:
        assert nudge_target is not None
        described.append(snapshot)
        return await nudge_target(snapshot)

    result = await wake_cluster(
        db_cluster_identifier,
        options,
        rds_client=rds_client,
        rds_data_client=rds_data_client,
        region_name=region_name,
        calls=calls,
        retry_seconds=retry_seconds,
        nudge_target=writer_target if nudge_target is not None else None,
    )
    if instances == "writer":
        return result
    if result.action is not WakeAction.NUDGE_CONNECTION or not described or nudge_target is None:
        why = (
            f"the readers are woken by the wait's own probes ({result.action.value} reaches the writer only)"
        )
        return dataclasses.replace(result, detail=f"{result.detail}; {why}")
    timeout = min(AWS_CALL_TIMEOUT, max(MIN_CALL_SECONDS, deadline - time.time()))
    readers = await _nudge_readers(
        described[-1], instances, rds_client, nudge_target, options, calls, region_name, timeout
    )
    return dataclasses.replace(result, detail=f"{result.detail}; {readers}", rds_calls=calls.as_dict())


async def _nudge_readers(
    snapshot: ClusterSnapshot,
    instances: str,
    rds_client: Any,
    nudge_target: EndpointTarget,
    options: WakeOptions,
    calls: RdsCalls,
    region_name: str | None,
    timeout: float,
) -> str:
    """Nudge the reader endpoint or every instance endpoint; return what happened, one line."""
    if instances == "reader":
        if not snapshot.reader_endpoint:
            return "no reader endpoint to nudge (DescribeDBClusters shows none)"
        targets = [("reader endpoint", await nudge_target(snapshot, host=snapshot.reader_endpoint))]
    else:
        try:
            members = await describe_instances(
                rds_client, snapshot.identifier, region_name=region_name, calls=calls, timeout=timeout
            )
        except TransientError as exc:
            return (
                f"the DB instances were not nudged ({exc.verdict.reason}): the wait's probes will wake them"
            )
        targets = [
            (
                f"DB instance {member.identifier}",
                await nudge_target(snapshot, host=member.endpoint, port=member.port),
            )
            for member in members
            if member.endpoint and member.state is InstanceState.SERVING
        ]
        if not targets:
            return "no DB instance serves yet to nudge"
    outcomes = await asyncio.gather(
        *(nudge_database(target, hold_seconds=options.nudge_hold_seconds) for _, target in targets)
    )
    return "; ".join(f"{label}: {outcome}" for (label, _), outcome in zip(targets, outcomes, strict=True))

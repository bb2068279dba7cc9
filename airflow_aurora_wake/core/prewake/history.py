"""Record how long a pre-wake's resume took in the cluster's history tag (one RDS call)."""

from __future__ import annotations

import math
import time
from typing import Any

from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.errors import ClusterDescriptionError, InvalidParameterError
from airflow_aurora_wake.core.prewake.lead import HISTORY_TAG, WakeKind, add_to_history
from airflow_aurora_wake.core.rds import AWS_CALL_TIMEOUT, RdsCalls, add_tags, retry_transient

__all__ = ["record_resume"]


def _region(arn: str) -> str | None:
    """The region an ARN names (``arn:aws:rds:<region>:<account>:cluster:<id>``), for messages."""
    parts = arn.split(":")
    return (parts[3] or None) if len(parts) > 3 else None


async def record_resume(
    client: Any,
    snapshot: ClusterSnapshot,
    kind: WakeKind,
    seconds: float,
    *,
    timeout: float,
    calls: RdsCalls | None = None,
) -> str:
    """Add one resume to the history tag (``aurora-wake:resumes``) on the cluster.

    The new value is the history of ``snapshot`` (describe the cluster just before) with this
    resume appended (:func:`~airflow_aurora_wake.core.prewake.lead.add_to_history`), written
    with ``AddTagsToResource``. Two pre-wakes of one cluster that record at the same moment
    both start from the same history, and the last writer wins: one sample is lost, which only
    makes the next estimate use one sample fewer. No lock is worth that.

    Throttling and other failures that may pass are retried until ``timeout``; rewriting the
    same value is harmless.

    :param client: an aiobotocore RDS client.
    :param snapshot: the cluster as just described (its ARN and tags).
    :param kind: the kind of wake that was measured.
    :param seconds: how long the resume took.
    :param timeout: seconds the write may take, retries included.
    :param calls: the counter to record the call in.
    :returns: the value written.
    :raises InvalidParameterError: ``seconds`` or ``timeout`` is not a usable number.
    :raises ClusterDescriptionError: the snapshot has no ARN to tag.
    :raises AwsPermissionError: the caller may not call ``rds:AddTagsToResource``.
    :raises TransientError: the write still failed (throttling, 5xx, network) when ``timeout`` ran out.
    """
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise InvalidParameterError("timeout", timeout, "give the seconds the write may take, a number > 0")
    value = add_to_history(snapshot.tags, kind, seconds)
    arn = snapshot.arn
    if not arn:
        raise ClusterDescriptionError(
            f"DescribeDBClusters gave no DBClusterArn for DB cluster {snapshot.identifier!r}, and the "
            f"resume history is a tag ({HISTORY_TAG}) that needs it; check that the RDS endpoint URL "
            "points at the RDS API"
        )
    deadline = time.monotonic() + timeout

    async def write() -> None:
        left = max(deadline - time.monotonic(), 0.001)
        await add_tags(
            client,
            snapshot.identifier,
            arn,
            {HISTORY_TAG: value},
            region_name=_region(arn),
            calls=calls,
            timeout=min(AWS_CALL_TIMEOUT, left),
        )

    await retry_transient(write, deadline=deadline, clock=time.monotonic)
    return value

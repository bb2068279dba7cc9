"""Read the DB instances of a cluster (``DescribeDBInstances``) into :class:`InstanceSnapshot`.

A wait on every instance (``instances="all"``) lists them with one ``DescribeDBInstances``
filtered on the cluster. Their status says what the cluster's does not: a cluster just created
or restored can say ``available`` while its instances are still ``creating``. A Serverless v2
reader in failover tiers 2-15 pauses on its own, and its status says ``available`` while it is
paused (as the cluster's does), so only a connection to its endpoint tells it is ready.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow_aurora_wake.core.errors import ClusterDescriptionError

__all__ = ["InstanceSnapshot", "InstanceState", "classify_instances", "instance_state"]


class InstanceState(str, Enum):
    """What an instance status means for a wait on it."""

    SERVING = "serving"  # accepts connections (or will, once a paused instance resumes)
    WAITING = "waiting"  # on its way (creating, modifying, rebooting, ...): not ready yet
    FAILED = "failed"  # waiting cannot make it ready


#: Statuses in which AWS keeps an instance serving: maintenance work that does not take it down.
_SERVING = frozenset(
    {
        "available",
        "backing-up",
        "storage-optimization",
        "configuring-enhanced-monitoring",
        "configuring-iam-database-auth",
        "configuring-log-exports",
        "configuring-activity-stream",
    }
)
#: Statuses that need a repair (or a new instance): waiting cannot end them.
_FAILED = frozenset(
    {
        "failed",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-parameters",
        "incompatible-restore",
        "restore-error",
        "inaccessible-encryption-credentials",
    }
)


def instance_state(status: str) -> InstanceState:
    """Map a ``DBInstanceStatus`` to its meaning; any other status (``creating``, ``modifying``,
    ``rebooting``, ``upgrading``, ``deleting``, unknown ones) is "not ready yet".

    An unknown status waits rather than fails: the cluster's own status already fails a wait
    that cannot succeed, and a wait that times out names the instance and its status.

    :param status: the status (case-insensitive).
    """
    normalized = status.strip().lower()
    if normalized in _SERVING:
        return InstanceState.SERVING
    if normalized in _FAILED:
        return InstanceState.FAILED
    return InstanceState.WAITING


@dataclass(frozen=True)
class InstanceSnapshot:
    """What ``DescribeDBInstances`` says about one DB instance of the cluster.

    :param identifier: ``DBInstanceIdentifier``.
    :param status: ``DBInstanceStatus`` in lower case.
    :param endpoint: ``Endpoint.Address`` (``None`` while the instance has none yet).
    :param port: ``Endpoint.Port``.
    :param promotion_tier: ``PromotionTier`` (0-15): readers in tiers 2-15 pause on their own.
    """

    identifier: str
    status: str
    endpoint: str | None
    port: int | None
    promotion_tier: int | None = None

    @property
    def state(self) -> InstanceState:
        """The status's meaning for a wait."""
        return instance_state(self.status)

    def describe(self) -> str:
        """``"<identifier> (<status>)"``, for messages."""
        return f"{self.identifier} ({self.status})"


def _fail(problem: str) -> ClusterDescriptionError:
    return ClusterDescriptionError(
        f"DescribeDBInstances returned an unreadable answer: {problem}; check that the RDS "
        "endpoint URL points at the RDS API"
    )


def _text(item: Mapping[Any, Any], key: str, *, required: bool) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{key} must be a non-empty string, not {type(value).__name__}")
    return value


def _whole(mapping: Mapping[Any, Any], key: str, low: int, high: int) -> int | None:
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(f"{key} must be a whole number, not {value!r}")
    if value != int(value) or not low <= value <= high:
        raise _fail(f"{key} must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def classify_instances(response: Mapping[str, Any]) -> tuple[InstanceSnapshot, ...]:
    """Read a ``DescribeDBInstances`` answer, ordered by identifier.

    :param response: the answer, as botocore returns it.
    :raises ClusterDescriptionError: on a malformed shape (never ``KeyError``/``TypeError``).
    """
    items = response.get("DBInstances") if isinstance(response, Mapping) else None
    if not isinstance(items, list):
        raise _fail("no DBInstances list")
    instances = []
    for item in items:
        if not isinstance(item, Mapping):
            raise _fail(f"an instance of type {type(item).__name__}, not an object")
        identifier = _text(item, "DBInstanceIdentifier", required=True)
        status = _text(item, "DBInstanceStatus", required=True)
        assert identifier is not None and status is not None  # required=True
        endpoint = item.get("Endpoint")
        if endpoint is not None and not isinstance(endpoint, Mapping):
            raise _fail(f"Endpoint of {identifier} must be an object, not {type(endpoint).__name__}")
        instances.append(
            InstanceSnapshot(
                identifier=identifier,
                status=status.strip().lower(),
                endpoint=_text(endpoint, "Address", required=False) if endpoint else None,
                port=_whole(endpoint, "Port", 1, 65535) if endpoint else None,
                promotion_tier=_whole(item, "PromotionTier", 0, 15),
            )
        )
    return tuple(sorted(instances, key=lambda instance: instance.identifier))

"""Read one ``DescribeDBClusters`` item into a :class:`ClusterSnapshot`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from airflow_aurora_wake.core.engines import EngineFamily, engine_family
from airflow_aurora_wake.core.errors import ClusterDescriptionError

__all__ = [
    "ClusterKind",
    "ClusterSnapshot",
    "StatusCategory",
    "classify_cluster",
    "engine_family",
    "status_category",
]


class ClusterKind(str, Enum):
    """The three kinds of cluster a user may point the product at; values are user-visible."""

    SERVERLESS_V1 = "serverless-v1"
    SERVERLESS_V2 = "serverless-v2"
    PROVISIONED = "provisioned"


class StatusCategory(str, Enum):
    """What a cluster status means for a waiter."""

    AVAILABLE = "available"  # the DB accepts connections (or will, once a paused instance resumes)
    WAKING = "waking"  # on its way to available: wait
    STOPPED = "stopped"  # only StartDBCluster helps
    FAILED = "failed"  # waiting cannot succeed


_AVAILABLE_STATUSES = frozenset(
    {
        "available",
        "backing-up",
        "backtracking",
        "modifying",
        "upgrading",
        "maintenance",
        "renaming",
        "resetting-master-credentials",
        "scaling-capacity",
        "storage-optimization",
        "update-iam-db-auth",
        "failing-over",
        "migrating",
        "promoting",
        "configuring-iam-database-auth",
        "configuring-activity-stream",
        "configuring-enhanced-monitoring",
        "configuring-log-exports",
    }
)
_WAKING_STATUSES = frozenset({"starting", "creating", "rebooting", "resuming"})


def status_category(status: str) -> StatusCategory:
    """Map an RDS cluster status to its category; unknown statuses count as FAILED.

    :param status: the ``Status`` field (case-insensitive).
    """
    normalized = status.strip().lower()
    if normalized in _AVAILABLE_STATUSES:
        return StatusCategory.AVAILABLE
    if normalized in _WAKING_STATUSES:
        return StatusCategory.WAKING
    if normalized == "stopped":
        return StatusCategory.STOPPED
    return StatusCategory.FAILED


@dataclass(frozen=True)
class ClusterSnapshot:
    """What one ``DescribeDBClusters`` answer says about a cluster.

    :param identifier: ``DBClusterIdentifier``.
    :param arn: ``DBClusterArn``, if given.
    :param kind: serverless v1, serverless v2 or provisioned.
    :param engine: ``Engine``, for example ``aurora-postgresql``.
    :param status: ``Status`` in lower case.
    :param capacity: v1 ``Capacity`` (0 while paused); ``None`` otherwise.
    :param min_capacity: minimum capacity of the scaling configuration, if any.
    :param max_capacity: maximum capacity of the scaling configuration, if any.
    :param auto_pause: v1 ``ScalingConfigurationInfo.AutoPause``, or v2 ``MinCapacity == 0``.
    :param seconds_until_auto_pause: seconds of idleness before a pause, if shown.
    :param endpoint: the writer endpoint host name.
    :param reader_endpoint: the reader endpoint host name.
    :param port: the cluster port.
    :param http_endpoint_enabled: whether the Data API is enabled.
    :param iam_auth_enabled: whether IAM database authentication is enabled.
    :param tags: the cluster's tags (``TagList``), key to value.
    :param master_user_secret_arn: ``MasterUserSecret.SecretArn``: the Secrets Manager secret
        holding the master login of a cluster created with ``ManageMasterUserPassword``.
    :param writer_instance: the ``DBInstanceIdentifier`` of the ``DBClusterMembers`` entry with
        ``IsClusterWriter`` (``None``: the cluster has no writer instance, or v1).
    :param seen_paused: an RDS answer proved an instance of the cluster paused
        (``DescribeDBLogFiles`` answered ``DBInstanceNotReadyFault``); never set by a describe.
    """

    identifier: str
    arn: str | None
    kind: ClusterKind
    engine: str
    status: str
    capacity: float | None
    min_capacity: float | None
    max_capacity: float | None
    auto_pause: bool
    seconds_until_auto_pause: int | None
    endpoint: str | None
    reader_endpoint: str | None
    port: int | None
    http_endpoint_enabled: bool
    iam_auth_enabled: bool
    tags: Mapping[str, str] = field(default_factory=dict)
    master_user_secret_arn: str | None = None
    writer_instance: str | None = None
    seen_paused: bool = False

    @property
    def category(self) -> StatusCategory:
        """The status's meaning for a waiter."""
        return status_category(self.status)

    @property
    def may_be_paused(self) -> bool:
        """True for a v1 cluster at capacity 0, or a v2 cluster with ``MinCapacity`` 0.

        RDS cannot tell whether a v2 cluster is paused: its status stays ``available``. An
        answer that proved an instance paused (:attr:`seen_paused`) says so whatever the kind.
        """
        if self.seen_paused:
            return True
        if self.kind is ClusterKind.SERVERLESS_V1:
            return self.capacity == 0
        return self.kind is ClusterKind.SERVERLESS_V2 and self.auto_pause

    @property
    def engine_family(self) -> EngineFamily | None:
        """``postgresql`` or ``mysql`` (the wire protocol), ``None`` for other engines."""
        return engine_family(self.engine)

    @property
    def shows_ready(self) -> bool:
        """True when RDS shows the cluster available (and, for v1, with capacity > 0).

        This is necessary, not sufficient: a paused v2 cluster shows ready too.
        """
        if self.category is not StatusCategory.AVAILABLE:
            return False
        if self.kind is ClusterKind.SERVERLESS_V1:
            return self.capacity is not None and self.capacity > 0
        return True


def _fail(identifier: object, field_name: str, problem: str) -> ClusterDescriptionError:
    return ClusterDescriptionError(
        f"DescribeDBClusters returned an unreadable description for DB cluster {identifier!r}: "
        f"{field_name} {problem}; check that the RDS endpoint URL points at the RDS API"
    )


def _string(item: Mapping[Any, Any], key: str, identifier: object, *, required: bool) -> str | None:
    value = item.get(key)
    if value is None:
        if required:
            raise _fail(identifier, key, "is missing")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(identifier, key, f"must be a non-empty string, not {type(value).__name__}")
    return value


def _number(mapping: Mapping[Any, Any], key: str, identifier: object, path: str) -> float | None:
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(identifier, path, f"must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise _fail(identifier, path, f"must be a finite number >= 0, not {value!r}")
    return number


def _integer(mapping: Mapping[Any, Any], key: str, identifier: object, path: str) -> int | None:
    number = _number(mapping, key, identifier, path)
    if number is None:
        return None
    if number != int(number) or number > 2**31:
        raise _fail(identifier, path, f"must be a whole number, not {mapping.get(key)!r}")
    return int(number)


def _typed(
    item: Mapping[Any, Any], key: str, identifier: object, path: str, kind: type, expected: str
) -> Any:
    value = item.get(key)
    if value is not None and not isinstance(value, kind):
        raise _fail(identifier, path, f"must be {expected}, not {type(value).__name__}")
    return value


def _flag(item: Mapping[Any, Any], key: str, identifier: object, path: str) -> bool:
    return bool(_typed(item, key, identifier, path, bool, "true or false"))


def _section(item: Mapping[Any, Any], key: str, identifier: object) -> Mapping[Any, Any] | None:
    section: Mapping[Any, Any] | None = _typed(item, key, identifier, key, Mapping, "an object")
    return section


def classify_cluster(description: Mapping[str, Any]) -> ClusterSnapshot:
    """Read one ``DBClusters[]`` item of a ``DescribeDBClusters`` answer.

    :param description: the item, as botocore returns it.
    :returns: the snapshot.
    :raises ClusterDescriptionError: on a malformed shape (never ``KeyError``/``TypeError``).
    """
    if not isinstance(description, Mapping):
        raise ClusterDescriptionError(
            f"DescribeDBClusters returned a cluster description of type {type(description).__name__}, "
            "not an object; check that the RDS endpoint URL points at the RDS API"
        )
    raw_identifier = description.get("DBClusterIdentifier")
    identifier = _string(description, "DBClusterIdentifier", raw_identifier, required=True)
    assert identifier is not None  # required=True
    engine = _string(description, "Engine", identifier, required=True)
    status = _string(description, "Status", identifier, required=True)
    assert engine is not None and status is not None
    engine_mode = _string(description, "EngineMode", identifier, required=False) or "provisioned"
    v1_scaling = _section(description, "ScalingConfigurationInfo", identifier)
    v2_scaling = _section(description, "ServerlessV2ScalingConfiguration", identifier)
    capacity = _number(description, "Capacity", identifier, "Capacity")

    min_capacity: float | None = None
    max_capacity: float | None = None
    seconds_until_auto_pause: int | None = None
    if engine_mode.lower() == "serverless":
        kind = ClusterKind.SERVERLESS_V1
        auto_pause = False
        if v1_scaling is not None:
            min_capacity = _number(
                v1_scaling, "MinCapacity", identifier, "ScalingConfigurationInfo.MinCapacity"
            )
            max_capacity = _number(
                v1_scaling, "MaxCapacity", identifier, "ScalingConfigurationInfo.MaxCapacity"
            )
            auto_pause = _flag(v1_scaling, "AutoPause", identifier, "ScalingConfigurationInfo.AutoPause")
            seconds_until_auto_pause = _integer(
                v1_scaling,
                "SecondsUntilAutoPause",
                identifier,
                "ScalingConfigurationInfo.SecondsUntilAutoPause",
            )
    elif v2_scaling is not None:
        kind = ClusterKind.SERVERLESS_V2
        min_capacity = _number(
            v2_scaling, "MinCapacity", identifier, "ServerlessV2ScalingConfiguration.MinCapacity"
        )
        max_capacity = _number(
            v2_scaling, "MaxCapacity", identifier, "ServerlessV2ScalingConfiguration.MaxCapacity"
        )
        seconds_until_auto_pause = _integer(
            v2_scaling,
            "SecondsUntilAutoPause",
            identifier,
            "ServerlessV2ScalingConfiguration.SecondsUntilAutoPause",
        )
        auto_pause = min_capacity == 0
        capacity = None  # Capacity is a v1 field; ignore it if a proxy echoes one for v2
    else:
        kind = ClusterKind.PROVISIONED
        auto_pause = False
        capacity = None
    if min_capacity is not None and max_capacity is not None and min_capacity > max_capacity:
        raise _fail(identifier, "MinCapacity", f"({min_capacity:g}) exceeds MaxCapacity ({max_capacity:g})")

    port = _integer(description, "Port", identifier, "Port")
    if port is not None and not 0 < port < 65536:
        raise _fail(identifier, "Port", f"must be 1..65535, not {port}")
    return ClusterSnapshot(
        identifier=identifier,
        arn=_string(description, "DBClusterArn", identifier, required=False),
        kind=kind,
        engine=engine,
        status=status.strip().lower(),
        capacity=capacity,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        auto_pause=auto_pause,
        seconds_until_auto_pause=seconds_until_auto_pause,
        endpoint=_string(description, "Endpoint", identifier, required=False),
        reader_endpoint=_string(description, "ReaderEndpoint", identifier, required=False),
        port=port,
        http_endpoint_enabled=_flag(description, "HttpEndpointEnabled", identifier, "HttpEndpointEnabled"),
        iam_auth_enabled=_flag(
            description, "IAMDatabaseAuthenticationEnabled", identifier, "IAMDatabaseAuthenticationEnabled"
        ),
        tags=_tags(description),
        master_user_secret_arn=_master_user_secret_arn(description, identifier),
        writer_instance=_writer_instance(description),
    )


def _writer_instance(description: Mapping[str, Any]) -> str | None:
    """The writer's ``DBInstanceIdentifier`` from ``DBClusterMembers``, or ``None``.

    Entries of another shape are skipped rather than failing the describe: only the
    ``describe-log-files`` wake needs the writer, and it falls back to the probe without one.
    """
    members = description.get("DBClusterMembers")
    if not isinstance(members, list):
        return None
    for member in members:
        if isinstance(member, Mapping) and member.get("IsClusterWriter") is True:
            name = member.get("DBInstanceIdentifier")
            if isinstance(name, str) and name.strip():
                return name
    return None


def _master_user_secret_arn(description: Mapping[str, Any], identifier: str) -> str | None:
    """``MasterUserSecret.SecretArn``, present only while RDS manages the master password."""
    secret = _section(description, "MasterUserSecret", identifier)
    if secret is None:
        return None
    return _string(secret, "SecretArn", identifier, required=False) or None


def _tags(description: Mapping[str, Any]) -> dict[str, str]:
    """``TagList`` as a dict; entries that are not string pairs are skipped (tags are user data)."""
    tag_list = description.get("TagList")
    if not isinstance(tag_list, list):
        return {}
    return {
        tag["Key"]: tag["Value"]
        for tag in tag_list
        if isinstance(tag, Mapping) and isinstance(tag.get("Key"), str) and isinstance(tag.get("Value"), str)
    }

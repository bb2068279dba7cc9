"""The wake decision table: which one request fits a cluster (pure: a snapshot and options in).

:func:`plan_wake` decides; :func:`~airflow_aurora_wake.core.wake.wake_cluster` describes the
cluster, calls it, and sends the plan's request. Every row of the table is testable without AWS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot, StatusCategory
from airflow_aurora_wake.core.engines import V1_CAPACITIES
from airflow_aurora_wake.core.errors import ClusterStateError, InvalidParameterError
from airflow_aurora_wake.core.probes import DatabaseTarget
from airflow_aurora_wake.core.targets import check_engine
from airflow_aurora_wake.core.validation import (
    validate_bool,
    validate_capacity,
    validate_positive_seconds,
    validate_seconds_before_timeout,
    validate_secret_arn,
    validate_timeout_action,
)

__all__ = ["WakeAction", "WakeOptions", "WakePlan", "choose_v1_capacity", "plan_wake"]


class WakeAction(str, Enum):
    """What the waker did (or found already done); values are user-visible in XCom."""

    MODIFY_CAPACITY = "modify-capacity"
    START = "start-db-cluster"
    NUDGE_CONNECTION = "connection-nudge"
    NUDGE_DATA_API = "data-api-nudge"
    NONE = "none"
    #: a wake was already under way (cluster ``starting``, or AWS answered InvalidDBClusterStateFault)
    ALREADY_WAKING = "already-waking"
    #: v2 with auto-pause, no connection and no Data API secret: DescribeDBLogFiles on the writer
    #: instance, a read-only RDS call that resumes a paused instance and says whether it was paused
    DESCRIBE_LOG_FILES = "describe-log-files"
    #: v2 with auto-pause, no nudge configured and no writer instance known: the readiness
    #: probe's first attempt wakes it
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
    :param probe_follows: the caller probes the database right after the wake (``wake_and_wait``):
        that probe wakes a paused v2 cluster itself, so no ``DescribeDBLogFiles`` is sent (and
        ``rds:DescribeDBLogFiles`` is not needed).
    """

    capacity: int | None = None
    seconds_before_timeout: int = 300
    timeout_action: str = "RollbackCapacityChange"
    start_if_stopped: bool = True
    nudge_target: DatabaseTarget | None = None
    data_api_secret_arn: str | None = None
    database: str | None = None
    nudge_hold_seconds: float = 3.0
    probe_follows: bool = False

    def __post_init__(self) -> None:
        validate_capacity(self.capacity)
        validate_seconds_before_timeout(self.seconds_before_timeout)
        validate_timeout_action(self.timeout_action)
        validate_bool(self.start_if_stopped, "start_if_stopped")
        validate_secret_arn(self.data_api_secret_arn)
        validate_positive_seconds(self.nudge_hold_seconds, "nudge_hold_seconds")
        validate_bool(self.probe_follows, "probe_follows")
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

    A Serverless v2 cluster with auto-pause is nudged by a Data API call when a secret is given,
    else by a connection attempt when a database is given, else by ``DescribeDBLogFiles`` on its
    writer instance; a cluster without a known writer is left to the readiness probe.

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
        if snapshot.writer_instance is not None and not options.probe_follows:
            # Nothing else can nudge: this needs no database access, only rds:DescribeDBLogFiles.
            return WakePlan(
                snapshot,
                WakeAction.DESCRIBE_LOG_FILES,
                f"cluster {name} may be paused (auto-pause); no nudge configured: describing the log "
                f"files of its writer instance {snapshot.writer_instance} (no database access) wakes it",
                options,
            )
        return WakePlan(
            snapshot,
            WakeAction.PROBE_WILL_WAKE,
            f"cluster {name} may be paused (auto-pause); no nudge configured: the readiness probe's "
            "first attempt will wake it",
            options,
        )
    return WakePlan(
        snapshot,
        WakeAction.NONE,
        f"cluster {name} is {snapshot.kind.value} and {snapshot.status}: nothing to wake",
    )

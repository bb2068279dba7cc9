"""What a wait is asked for, what it needs from its caller, and what it reports.

:class:`WaitRequest` is the validation of every wait parameter: the adapters build one as soon
as their values are known (at construction when nothing is templated, again after rendering).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot
from airflow_aurora_wake.core.probes import DataApiTarget, DatabaseTarget, resolve_data_api_target
from airflow_aurora_wake.core.validation import (
    resolve_cluster,
    validate_instances,
    validate_non_negative_seconds,
    validate_optional_name,
    validate_positive_seconds,
    validate_probe_settings,
)

__all__ = ["CheckOutcome", "LogCallback", "ReachedEndpoint", "ReadyReport", "WaitRequest", "WaitResources"]

LogCallback = Callable[[str], None]


@dataclass(frozen=True)
class WaitRequest:
    """Everything a wait needs besides clients and credentials; hashable, safe in trigger kwargs.

    :param db_cluster_identifier: the cluster identifier.
    :param region_name: the region (for messages; the clients carry the real one).
    :param probe: ``connection`` (a real database connection) or ``data-api``.
    :param connect_timeout: seconds one probe attempt may take (AWS advises >= 30 s).
    :param describe_interval: at most one ``DescribeDBClusters`` per this many seconds.
    :param stopped_grace: how long a ``stopped`` cluster is waited on before failing (a start may
        have been requested and not show yet).
    :param data_api_secret_arn: the secret for ``probe="data-api"`` (``None``: the cluster's
        managed master secret).
    :param database: the database for the Data API probe.
    :param instances: what must answer ``SELECT 1``: ``writer`` (the cluster endpoint),
        ``reader`` (the reader endpoint) or ``all`` (every DB instance, each through its own
        endpoint); the Data API reaches only the writer.
    """

    db_cluster_identifier: str
    region_name: str | None
    probe: Literal["connection", "data-api"] = "connection"
    connect_timeout: float = 30.0
    describe_interval: float = 10.0
    stopped_grace: float = 60.0
    data_api_secret_arn: str | None = None
    database: str | None = None
    instances: Literal["writer", "reader", "all"] = "writer"

    def __post_init__(self) -> None:
        # An ARN becomes its plain name, and gives its region when none was given.
        identifier, region = resolve_cluster(self.db_cluster_identifier, self.region_name)
        object.__setattr__(self, "db_cluster_identifier", identifier)
        object.__setattr__(self, "region_name", region)
        validate_probe_settings(self.probe, self.data_api_secret_arn)
        validate_positive_seconds(self.connect_timeout, "connect_timeout")
        validate_positive_seconds(self.describe_interval, "describe_interval")
        validate_non_negative_seconds(self.stopped_grace, "stopped_grace")
        validate_optional_name(self.database, "database")
        validate_instances(self.instances, self.probe)

    def data_api_target(self, snapshot: ClusterSnapshot) -> DataApiTarget | None:
        """The Data API login to probe with, for ``probe="data-api"``; call it after each describe.

        :param snapshot: the cluster as described (its managed secret stands in for a missing
            ``data_api_secret_arn``).
        :raises InvalidParameterError: no secret given and none managed by the cluster.
        """
        if self.probe != "data-api":
            return None
        return resolve_data_api_target(snapshot, self.data_api_secret_arn, self.database)

    def probe_source(self, snapshot: ClusterSnapshot) -> str:
        """The ``where`` that classifies this wait's probe errors: ``rds-data`` or the engine family.

        :param snapshot: the cluster as described.
        """
        return "rds-data" if self.probe == "data-api" else snapshot.engine_family or "postgresql"


class WaitResources(Protocol):
    """What the adapter supplies: clients and the database login (from an Airflow connection, or
    from plain parameters in :mod:`airflow_aurora_wake.core.api`)."""

    def rds_client(self) -> AbstractAsyncContextManager[Any]:
        """Return an async context manager yielding an aiobotocore RDS client."""
        ...

    def rds_data_client(self) -> AbstractAsyncContextManager[Any]:
        """Return an async context manager yielding an aiobotocore ``rds-data`` client."""
        ...

    async def database_target(
        self, snapshot: ClusterSnapshot, *, host: str | None = None, port: int | None = None
    ) -> DatabaseTarget:
        """Return the database to probe; fill host/port from the snapshot when not configured.

        :param snapshot: the cluster as described.
        :param host: connect to this endpoint of the cluster instead, with the same login and
            TLS settings (waits on the reader endpoint or on every instance).
        :param port: that endpoint's port (``None``: the configured one, else the cluster's).
        """
        ...


@dataclass(frozen=True)
class ReachedEndpoint:
    """One endpoint that answered ``SELECT 1`` in the probe round that made a wait ready.

    :param endpoint: ``host:port`` (identifiers only, never a login).
    :param role: ``reader-endpoint`` or ``instance``.
    :param instance: the DB instance identifier, for an instance endpoint.
    """

    endpoint: str | None
    role: str
    instance: str | None = None

    def as_xcom(self) -> dict[str, Any]:
        """Return the JSON-serializable form."""
        return {"endpoint": self.endpoint, "role": self.role, "instance": self.instance}


@dataclass(frozen=True)
class ReadyReport:
    """The cluster is ready: what the sensor pushes to XCom.

    :param db_cluster_identifier: the cluster.
    :param ready_at: epoch seconds when readiness was established.
    :param seconds_waited: seconds this waiter waited.
    :param attempts: probe attempts made by the (possibly shared) loop.
    :param rds_calls: AWS calls made by the loop, per action.
    :param kind: the cluster kind.
    :param engine: the engine.
    :param endpoint: ``host:port`` that answered (or the cluster endpoint for the Data API).
    :param probe: ``connection`` or ``data-api``.
    :param instances: what had to answer: ``writer``, ``reader`` or ``all``.
    :param reached: with ``reader`` or ``all``, each endpoint that answered.
    :param note: what the user should know about the endpoints reached, if anything (a reader
        endpoint that reached the writer).
    """

    db_cluster_identifier: str
    ready_at: float
    seconds_waited: float
    attempts: int
    rds_calls: dict[str, int]
    kind: ClusterKind
    engine: str
    endpoint: str | None
    probe: str = "connection"
    instances: str = "writer"
    reached: tuple[ReachedEndpoint, ...] = ()
    note: str | None = None

    def as_xcom(self) -> dict[str, Any]:
        """Return the JSON-serializable report.

        A wait on the reader endpoint or on every instance adds ``instances``, ``reached`` (each
        endpoint that answered, with its DB instance) and ``note``; a wait on the writer keeps
        the keys it always had.
        """
        report = {
            "ready_at": self.ready_at,
            "seconds_waited": round(self.seconds_waited, 3),
            "attempts": self.attempts,
            "rds_calls": dict(self.rds_calls),
            "kind": self.kind.value,
            "engine": self.engine,
            "endpoint": self.endpoint,
        }
        if self.instances != "writer":
            report["instances"] = self.instances
            report["reached"] = [endpoint.as_xcom() for endpoint in self.reached]
            report["note"] = self.note
        return report


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one :func:`check_ready_once` (poke mode).

    :param ready: True when the cluster is ready.
    :param detail: a sentence for the task log.
    :param snapshot: the cluster as described, if the describe succeeded.
    :param endpoint: ``host:port`` probed, if any.
    :param rds_calls: AWS calls made, per action.
    :param retry_reason: the reason a retryable failure gave, if any.
    :param report: the ready report (what the sensor returns) when ``ready``.
    :param grace_since: per grace window, epoch seconds of the wait's first answer tolerated
        under it (pass it to the next check).
    """

    ready: bool
    detail: str
    snapshot: ClusterSnapshot | None = None
    endpoint: str | None = None
    rds_calls: dict[str, int] = field(default_factory=dict)
    retry_reason: str | None = None
    report: ReadyReport | None = None
    grace_since: dict[str, float] = field(default_factory=dict)

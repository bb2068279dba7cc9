"""Trigger that waits, in the triggerer, until an Aurora cluster accepts a real database connection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from typing import Any

from airflow_aurora_wake.compat import BaseTrigger, TriggerEvent
from airflow_aurora_wake.core.errors import AuroraWakeError, ReadyTimeoutError, safe_error_text
from airflow_aurora_wake.core.wait import WaitRequest, wait_until_ready
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook, aws_settings_key
from airflow_aurora_wake.utils.metrics import record_trigger_event
from airflow_aurora_wake.utils.mixins import AuroraHookMixin, ReadyWaitMixin

#: Why a trigger's wait begins after its deadline, in Airflow's words (the core's diagnosis cannot
#: know that the time went while the triggerer was down or overloaded).
_LATE_TRIGGER = (
    "Here the time went while the triggerer was down or overloaded (a re-created trigger keeps "
    "the sensor's deadline): check the triggerer; the timeout to raise is the sensor's."
)


class AuroraServerlessReadyTrigger(AuroraHookMixin, ReadyWaitMixin, BaseTrigger):
    """
    Wait until an Aurora cluster is awake and its database answers ``SELECT 1``; yield one event.

    The wait is the core's ``wait_until_ready`` loop (describe the cluster, probe the database,
    back off with jitter, classify every error as retry or fail). Waits on the same cluster, with
    the same settings, in one triggerer share a single describe-and-probe loop, each keeping its
    own deadline. The event is one of::

        {"status": "success", **ReadyReport.as_xcom()}
        {"status": "timeout", "message": "<diagnosis>"}
        {"status": "error", "error_type": "<core error class>", "message": "..."}

    Its kwargs are identifiers and numbers only: the database password is looked up from the
    Airflow connection in the triggerer, and never stored with the trigger. The sensor builds it
    with :meth:`for_request`. ``aws_conn_id``, ``region_name`` (``None``: the AWS connection's),
    ``verify`` and ``botocore_config`` are described in
    :class:`~airflow_aurora_wake.utils.mixins.AuroraHookMixin`.

    :param db_cluster_identifier: The DB cluster identifier.
    :param deadline: Absolute deadline, epoch seconds (``time.time() + timeout``), so a trigger
        re-created on another triggerer keeps it.
    :param conn_id: Airflow connection (``postgres``/``mysql``) of the database, for
        ``probe="connection"``.
    :param probe: ``"connection"`` (a real database connection) or ``"data-api"``.
    :param connect_timeout: Seconds each database connection attempt may take.
    :param data_api_secret_arn: Secrets Manager secret ARN for ``probe="data-api"``.
    :param instances: What must answer: ``"writer"``, ``"reader"`` (the reader endpoint) or
        ``"all"`` (every DB instance); see the sensor.
    :param database: Database name (overrides the connection's schema; Data API database).
    :param describe_interval: Seconds between ``DescribeDBClusters`` calls while waiting.
    :param stopped_grace: Seconds a cluster may still show ``stopped`` after a start request
        before the wait fails.
    """

    def __init__(
        self,
        *,
        db_cluster_identifier: str,
        deadline: float,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        conn_id: str | None = None,
        probe: str = "connection",
        connect_timeout: float = 30.0,
        data_api_secret_arn: str | None = None,
        instances: str = "writer",
        database: str | None = None,
        describe_interval: float = 10.0,
        stopped_grace: float = 60.0,
    ) -> None:
        super().__init__()
        self.db_cluster_identifier = db_cluster_identifier
        self.deadline = float(deadline)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.conn_id = conn_id
        self.probe = str(probe)
        self.connect_timeout = float(connect_timeout)
        self.data_api_secret_arn = data_api_secret_arn
        self.instances = str(instances)
        self.database = database
        self.describe_interval = float(describe_interval)
        self.stopped_grace = float(stopped_grace)

    @classmethod
    def for_request(
        cls, request: WaitRequest, hook: AuroraServerlessHook, *, deadline: float
    ) -> AuroraServerlessReadyTrigger:
        """Build the trigger that waits for a validated request with a hook's connections.

        :param request: What to wait for.
        :param hook: The AWS parameters, the region given (not looked up) and the database
            connection; the triggerer looks up the rest itself.
        :param deadline: Absolute deadline, epoch seconds.
        """
        return cls(
            db_cluster_identifier=request.db_cluster_identifier,
            deadline=deadline,
            aws_conn_id=hook.aws_conn_id,
            region_name=hook.region_name,
            verify=hook.verify,
            botocore_config=hook.botocore_config,
            conn_id=hook.conn_id,
            probe=request.probe,
            connect_timeout=request.connect_timeout,
            data_api_secret_arn=request.data_api_secret_arn,
            instances=request.instances,
            database=request.database,
            describe_interval=request.describe_interval,
            stopped_grace=request.stopped_grace,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Serialize the trigger: identifiers, plain strings and numbers only (never a secret).

        ``instances`` is stored only when it is not ``"writer"``: a wait on the writer keeps the
        kwargs it always had.
        """
        kwargs: dict[str, Any] = {
            "db_cluster_identifier": self.db_cluster_identifier,
            "deadline": self.deadline,
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
            "conn_id": self.conn_id,
            "probe": self.probe,
            "connect_timeout": self.connect_timeout,
            "data_api_secret_arn": self.data_api_secret_arn,
            "database": self.database,
            "describe_interval": self.describe_interval,
            "stopped_grace": self.stopped_grace,
        }
        if self.instances != "writer":
            kwargs["instances"] = self.instances
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    @property
    def share_key(self) -> Hashable:
        """Key under which waits in one triggerer share a describe-and-probe loop (and its clients).

        Every setting that changes how the loop talks to AWS is in it, ``verify`` and
        ``botocore_config`` too: a wait must never ride on another's TLS or retry settings.
        """
        return (
            self.db_cluster_identifier,
            *aws_settings_key(self.aws_conn_id, self.region_name, self.verify, self.botocore_config),
            self.conn_id,
            self.probe,
            self.database,
            self.data_api_secret_arn,
            self.instances,
            self.connect_timeout,
        )

    def hook(self) -> AuroraServerlessHook:
        """Return the hook that supplies the core's AWS clients and database target."""
        return self.aurora_hook(region_name=self.region_name, conn_id=self.conn_id, database=self.database)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait until ready or the deadline, then yield exactly one event and return."""
        try:
            hook = self.hook()
            region = self.region_name or await hook.aget_region_name()
            request = self.wait_request(region)
            self.log.info(
                "Waiting for DB cluster %r (region %s) to accept a %s probe, until epoch %.1f.",
                self.db_cluster_identifier,
                region,
                self.probe,
                self.deadline,
            )
            report = await wait_until_ready(
                request, hook, deadline=self.deadline, share_key=self.share_key, log=self.log.info
            )
        except ReadyTimeoutError as exc:
            self.log.info("DB cluster %r not ready by the deadline: %s", self.db_cluster_identifier, exc)
            late = exc.diagnosis.started_late is not None
            message = f"{exc} {_LATE_TRIGGER}" if late else str(exc)
            event: dict[str, Any] = {"status": "timeout", "message": message}
        except AuroraWakeError as exc:
            self.log.error("Wait for DB cluster %r failed: %s", self.db_cluster_identifier, exc)
            event = {"status": "error", "error_type": type(exc).__name__, "message": str(exc)}
        except Exception as exc:
            # Not an error the core knows: report it (without secrets) rather than crash the trigger.
            message = safe_error_text(exc)
            self.log.exception("Wait for DB cluster %r failed unexpectedly.", self.db_cluster_identifier)
            event = {"status": "error", "error_type": type(exc).__name__, "message": message}
        else:
            self.log.info("DB cluster %r is ready.", self.db_cluster_identifier)
            event = {"status": "success", **report.as_xcom()}
        record_trigger_event(event, probe=self.probe)
        yield TriggerEvent(event)

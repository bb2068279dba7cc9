"""Operator that sends the wake request fitting a sleeping Aurora cluster, and returns at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_aurora_wake.compat import BaseOperator, Context
from airflow_aurora_wake.core.validation import resolve_cluster, validate_instances, validate_optional_name
from airflow_aurora_wake.core.wake import WakeOptions, WakeResult
from airflow_aurora_wake.core.wake_readers import wake_instances
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook, run_sync
from airflow_aurora_wake.links.aurora import AuroraClusterLink
from airflow_aurora_wake.utils.metrics import wake_metrics
from airflow_aurora_wake.utils.mixins import AuroraHookMixin
from airflow_aurora_wake.utils.task_parameters import (
    coerce_int,
    reject_none_text,
    task_values,
    validate_conn_id,
)

#: The wake's AWS budget: every call is bounded by what is left of it (but gets at least 2 s),
#: and throttling and network errors are retried within it. The operator returns within it plus
#: one call's 2 s and a connection nudge's 3 s hold, about 35 s at most, whatever the network does.
DESCRIBE_RETRY_SECONDS = 30.0

_CONN_ID_FIX = "give the id of a postgres or mysql Airflow connection to the cluster's database, or None"


#: The parameters :meth:`AuroraServerlessWakeOperator._core_request` turns into core types.
_CORE_PARAMETERS = (
    "db_cluster_identifier",
    "region_name",
    "capacity",
    "seconds_before_timeout",
    "timeout_action",
    "start_if_stopped",
    "conn_id",
    "data_api_secret_arn",
    "database",
    "instances",
)


class WakeRequest(NamedTuple):
    """The operator's validated parameters, in the core's terms.

    :param identifier: The plain cluster identifier (an ARN's name).
    :param region_name: The region given, or an ARN's (``None``: the AWS connection's).
    :param conn_id: The database connection used for a connection nudge, or ``None``.
    :param options: The core's wake options.
    :param instances: What the wait that follows waits on: ``writer``, ``reader`` or ``all``.
    """

    identifier: str
    region_name: str | None
    conn_id: str | None
    options: WakeOptions
    instances: str = "writer"


class AuroraServerlessWakeOperator(AuroraHookMixin, BaseOperator):
    """
    Send the wake request that fits an Aurora cluster and return at once (no waiting).

    One ``DescribeDBClusters`` decides the action: ``ModifyCurrentDBClusterCapacity`` for a
    paused Serverless v1 cluster, ``StartDBCluster`` for a stopped cluster (when
    ``start_if_stopped``), a short connection attempt (``conn_id``) or Data API call
    (``data_api_secret_arn``) for Serverless v2 with auto-pause, and with neither a
    ``DescribeDBLogFiles`` on its writer instance (no database access: grant
    ``rds:DescribeDBLogFiles``), nothing for a cluster that is already up. It returns within
    about 35 s whatever the network does (``DESCRIBE_RETRY_SECONDS``,
    one more call's 2 s and a connection nudge's 3 s hold). Follow it with
    :class:`~airflow_aurora_wake.sensors.aurora_serverless.AuroraServerlessReadySensor`, which
    waits for a real connection.

    Returns (XCom) the wake result: ``db_cluster_identifier``, ``kind``, ``engine``, ``status``,
    ``action``, ``detail``, ``requested_at``.

    The AWS parameters ``aws_conn_id``, ``region_name``, ``verify`` (all templated) and
    ``botocore_config`` are those of every Amazon provider operator; see
    :class:`~airflow_aurora_wake.utils.mixins.AuroraHookMixin`.

    :param db_cluster_identifier: The DB cluster identifier (or ARN). (templated)
    :param capacity: Serverless v1 capacity to request (``None``: the cluster's minimum valid
        capacity). (templated)
    :param seconds_before_timeout: ``SecondsBeforeTimeout`` of the v1 capacity change (10..600).
    :param timeout_action: ``RollbackCapacityChange`` (default: never drops connections) or
        ``ForceApplyCapacityChange``.
    :param start_if_stopped: Start a stopped cluster (``StartDBCluster``); when ``False`` a
        stopped cluster is an error.
    :param conn_id: Airflow connection (``postgres``/``mysql``) used to nudge a Serverless v2
        cluster awake with a short connection attempt. (templated)
    :param data_api_secret_arn: Secrets Manager secret ARN to nudge through the Data API
        instead. (templated)
    :param database: Database name for the nudge; overrides the connection's schema. (templated)
    :param instances: What the readiness sensor downstream waits on: ``"writer"`` (default),
        ``"reader"`` or ``"all"``. With a connection nudge (``conn_id``) the reader endpoint, or
        every instance endpoint from ``DescribeDBInstances``, gets the same short connection
        attempt right after the writer's, so readers that pause on their own (failover tiers
        2-15) resume together with it (one more hold of 3 s, and for ``"all"`` one more call).
    """

    template_fields: Sequence[str] = aws_template_fields(
        "db_cluster_identifier", "capacity", "conn_id", "data_api_secret_arn", "database"
    )
    ui_color = "#f7dc6f"
    operator_extra_links = (AuroraClusterLink(),)
    #: Its return value is a wake result: a readiness sensor downstream times wake-to-ready from it.
    returns_wake_result = True

    def __init__(
        self,
        *,
        db_cluster_identifier: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        capacity: int | None = None,
        seconds_before_timeout: int = 300,
        timeout_action: str = "RollbackCapacityChange",
        start_if_stopped: bool = True,
        conn_id: str | None = None,
        data_api_secret_arn: str | None = None,
        database: str | None = None,
        instances: str = "writer",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.db_cluster_identifier = db_cluster_identifier
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.capacity = capacity
        self.seconds_before_timeout = seconds_before_timeout
        self.timeout_action = timeout_action
        self.start_if_stopped = start_if_stopped
        self.conn_id = conn_id
        self.data_api_secret_arn = data_api_secret_arn
        self.database = database
        self.instances = instances
        # Fail the DAG's parse rather than the run.
        self._core_request(at_parse_time=True)

    def _core_request(self, *, at_parse_time: bool = False) -> WakeRequest:
        """Build the core's wake options and cluster reference from this task's attributes.

        The core's types make the checks (:func:`resolve_cluster` turns an ARN into its name and
        region; :class:`WakeOptions` checks the capacity, the v1 timeout settings and the secret);
        this adds only the connection id's shape.
        """
        values = task_values(self, _CORE_PARAMETERS, at_parse_time=at_parse_time)
        identifier, region = resolve_cluster(values["db_cluster_identifier"], values["region_name"])
        options = WakeOptions(
            capacity=coerce_int(values["capacity"]),
            seconds_before_timeout=values["seconds_before_timeout"],
            timeout_action=values["timeout_action"],
            start_if_stopped=values["start_if_stopped"],
            data_api_secret_arn=values["data_api_secret_arn"],
            database=validate_optional_name(values["database"], "database"),
        )
        conn_id = validate_conn_id(values["conn_id"], "conn_id", required=False, fix=_CONN_ID_FIX)
        return WakeRequest(identifier, region, conn_id, options, validate_instances(values["instances"]))

    @wake_metrics
    def execute(self, context: Context) -> dict[str, Any]:
        """Describe the cluster once, send the fitting wake request, return the result.

        :param context: The task context.
        """
        reject_none_text({name: getattr(self, name) for name in self.template_fields})
        request = self._core_request()
        hook = self.checked_aurora_hook(
            region_name=request.region_name, conn_id=request.conn_id, database=request.options.database
        )
        AuroraClusterLink.persist_cluster(
            context,
            self,
            hook=hook,
            db_cluster_identifier=request.identifier,
            region_name=request.region_name,
        )
        result = run_sync(send_wake(request.identifier, hook, request.options, request.instances))
        xcom = result.as_xcom()
        self.log.info(
            "DB cluster %r (%s, %s, status %s): wake action %s. %s",
            request.identifier,
            xcom.get("kind"),
            xcom.get("engine"),
            xcom.get("status"),
            xcom.get("action"),
            xcom.get("detail"),
        )
        return xcom


async def send_wake(
    identifier: str, hook: AuroraServerlessHook, options: WakeOptions, instances: str = "writer"
) -> WakeResult:
    """Describe once (retrying only throttling and network errors), plan, send the wake.

    The wake operator's and the pre-wake's one way to wake a cluster from a task.

    :param identifier: The validated cluster identifier.
    :param hook: The hook with the AWS and database connections.
    :param options: The validated wake options.
    :param instances: What the wait that follows waits on (the readers are nudged too).
    """
    region = hook.region_name or await hook.aget_region_name()
    async with hook.rds_client() as rds, hook.rds_data_client() as rds_data:
        return await wake_instances(
            identifier,
            options,
            instances,
            rds_client=rds,
            rds_data_client=rds_data,
            region_name=region,
            retry_seconds=DESCRIBE_RETRY_SECONDS,
            # Building the nudge target also checks the connection's type against the engine.
            nudge_target=hook.database_target if hook.conn_id is not None else None,
        )

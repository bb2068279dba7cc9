"""Operator that sends the wake request fitting a sleeping Aurora cluster, and returns at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_aurora_wake.compat import BaseOperator, Context
from airflow_aurora_wake.core.validation import (
    validate_bool,
    validate_capacity,
    validate_optional_name,
    validate_seconds_before_timeout,
    validate_secret_arn,
    validate_timeout_action,
)
from airflow_aurora_wake.core.wake import WakeOptions, WakeResult, wake_cluster
from airflow_aurora_wake.hooks._params import (
    coerce_int,
    is_unrendered,
    reject_none_text,
    resolve_cluster,
    validate_aws_params,
    validate_conn_id,
)
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook, run_sync

#: How long the one DescribeDBClusters may retry throttling and network errors.
DESCRIBE_RETRY_SECONDS = 30.0


class AuroraServerlessWakeOperator(BaseOperator):
    """
    Send the wake request that fits an Aurora cluster and return at once (no waiting).

    One ``DescribeDBClusters`` decides the action: ``ModifyCurrentDBClusterCapacity`` for a
    paused Serverless v1 cluster, ``StartDBCluster`` for a stopped cluster (when
    ``start_if_stopped``), a short connection attempt (``conn_id``) or Data API call
    (``data_api_secret_arn``) for Serverless v2 with auto-pause, nothing for a cluster that is
    already up. Follow it with
    :class:`~airflow_aurora_wake.sensors.aurora_serverless.AuroraServerlessReadySensor`, which
    waits for a real connection.

    Returns (XCom) the wake result: ``db_cluster_identifier``, ``kind``, ``engine``, ``status``,
    ``action``, ``detail``, ``requested_at``.

    :param db_cluster_identifier: The DB cluster identifier (or ARN). (templated)
    :param aws_conn_id: The Airflow connection used for AWS credentials. If this is ``None`` then
        the default boto3 behaviour is used (also when ``aws_default`` does not exist); any other
        id must name an existing ``aws`` connection. (templated)
    :param region_name: AWS region_name. If not specified then the default boto3 behaviour is
        used. (templated)
    :param verify: Whether or not to verify SSL certificates of the AWS API. (templated) See:
        https://boto3.amazonaws.com/v1/documentation/api/latest/reference/core/session.html
    :param botocore_config: Configuration dictionary (key-values) for botocore client. See:
        https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
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
    """

    template_fields: Sequence[str] = (
        "aws_conn_id",
        "capacity",
        "conn_id",
        "data_api_secret_arn",
        "database",
        "db_cluster_identifier",
        "region_name",
        "verify",
    )
    ui_color = "#f7dc6f"

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
        self._validate_static()

    def _validate_static(self) -> None:
        """Checks that templating cannot change: at construction, so a DAG fails to parse."""
        validate_seconds_before_timeout(self.seconds_before_timeout)
        validate_timeout_action(self.timeout_action)
        validate_bool(self.start_if_stopped, "start_if_stopped")
        if not is_unrendered(self.capacity):
            validate_capacity(self.capacity)
        if not is_unrendered(self.db_cluster_identifier) and not is_unrendered(self.region_name):
            resolve_cluster(self.db_cluster_identifier, self.region_name)

    def _validated(self) -> tuple[str, AuroraServerlessHook, WakeOptions]:
        """Validate every (rendered) parameter; return the identifier, the hook and the options."""
        reject_none_text({name: getattr(self, name) for name in self.template_fields})
        self.capacity = coerce_int(self.capacity)
        self._validate_static()
        validate_aws_params(self.aws_conn_id, self.region_name, self.verify, self.botocore_config)
        identifier, region = resolve_cluster(self.db_cluster_identifier, self.region_name)
        conn_id = validate_conn_id(
            self.conn_id,
            "conn_id",
            required=False,
            fix="give the id of a postgres or mysql Airflow connection to the cluster's database, or None",
        )
        secret_arn = validate_secret_arn(self.data_api_secret_arn)
        database = validate_optional_name(self.database, "database")
        hook = AuroraServerlessHook(
            aws_conn_id=self.aws_conn_id,
            region_name=region,
            verify=self.verify,
            botocore_config=self.botocore_config,
            conn_id=conn_id,
            database=database,
        )
        hook.check_database_connection()
        hook.check_aws_connection()
        options = WakeOptions(
            capacity=validate_capacity(self.capacity),
            seconds_before_timeout=self.seconds_before_timeout,
            timeout_action=self.timeout_action,
            start_if_stopped=self.start_if_stopped,
            data_api_secret_arn=secret_arn,
            database=database,
        )
        return identifier, hook, options

    def execute(self, context: Context) -> dict[str, Any]:
        """Describe the cluster once, send the fitting wake request, return the result.

        :param context: The task context.
        """
        identifier, hook, options = self._validated()
        result = run_sync(self._wake(identifier, hook, options))
        xcom = result.as_xcom()
        self.log.info(
            "DB cluster %r (%s, %s, status %s): wake action %s. %s",
            identifier,
            xcom.get("kind"),
            xcom.get("engine"),
            xcom.get("status"),
            xcom.get("action"),
            xcom.get("detail"),
        )
        return xcom

    async def _wake(self, identifier: str, hook: AuroraServerlessHook, options: WakeOptions) -> WakeResult:
        """Describe once (retrying only throttling and network errors), plan, send the wake.

        :param identifier: The validated cluster identifier.
        :param hook: The hook with the AWS and database connections.
        :param options: The validated wake options.
        """
        region = hook.region_name or await hook.aget_region_name()
        async with hook.rds_client() as rds, hook.rds_data_client() as rds_data:
            return await wake_cluster(
                identifier,
                options,
                rds_client=rds,
                rds_data_client=rds_data,
                region_name=region,
                retry_seconds=DESCRIBE_RETRY_SECONDS,
                # Building the nudge target also checks the connection's type against the engine.
                nudge_target=hook.database_target if hook.conn_id is not None else None,
            )

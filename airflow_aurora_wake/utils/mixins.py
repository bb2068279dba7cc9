"""What the operator, the sensor and the trigger share: AWS parameters, hook, wait settings.

:class:`AuroraHookMixin` mirrors the Amazon provider's ``AwsBaseHookMixin``
(``airflow.providers.amazon.aws.utils.mixins``), which is marked internal there, so it is not
subclassed. The classes keep their own explicit ``__init__`` (Airflow reads its signature for
``default_args`` and ``partial``, and the trigger's is its serialized kwargs); the mixins hold
no state, only the documentation and the one mapping from attributes to the hook or the core's
request.
"""

from __future__ import annotations

from typing import Any

from airflow_aurora_wake.core.wait import WaitRequest
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook
from airflow_aurora_wake.utils.task_parameters import task_values, validate_aws_params


class AuroraHookMixin:
    """
    The Amazon provider's four AWS parameters, and the :class:`AuroraServerlessHook` they build.

    :param aws_conn_id: The Airflow connection used for AWS credentials. If this is ``None`` then
        the default boto3 behaviour is used (also when ``aws_default`` does not exist); any other
        id must name an existing ``aws`` connection. (templated)
    :param region_name: AWS region_name. If not specified then the region of a cluster ARN, of the
        AWS connection, or the default boto3 behaviour is used. (templated)
    :param verify: Whether or not to verify SSL certificates of the AWS API, or the path of a CA
        bundle. (templated) See:
        https://boto3.amazonaws.com/v1/documentation/api/latest/reference/core/session.html
    :param botocore_config: Configuration dictionary (key-values) for botocore client. See:
        https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
    """

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict[str, Any] | None

    def aurora_hook(
        self, *, region_name: str | None, conn_id: str | None, database: str | None
    ) -> AuroraServerlessHook:
        """Return the hook for these AWS parameters and a database connection.

        :param region_name: The region to use (a cluster ARN's, or ``region_name``).
        :param conn_id: The database connection, or ``None`` when nothing connects to it.
        :param database: Database name; overrides the connection's schema when set.
        """
        return AuroraServerlessHook(
            aws_conn_id=self.aws_conn_id,
            region_name=region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
            conn_id=conn_id,
            database=database,
        )

    def checked_aurora_hook(
        self, *, region_name: str | None, conn_id: str | None, database: str | None
    ) -> AuroraServerlessHook:
        """Check the AWS parameters and both connections, then return the hook (no AWS call yet).

        An unknown or wrong-type connection fails here, before any AWS call or waiting.

        :param region_name: The region to use (a cluster ARN's, or ``region_name``).
        :param conn_id: The database connection, or ``None`` when nothing connects to it.
        :param database: Database name; overrides the connection's schema when set.
        :raises InvalidParameterError: A bad ``aws_conn_id``, ``verify`` or ``botocore_config``,
            or a connection that does not exist or has the wrong type.
        """
        validate_aws_params(self.aws_conn_id, self.verify, self.botocore_config)
        hook = self.aurora_hook(region_name=region_name, conn_id=conn_id, database=database)
        hook.check_database_connection()
        hook.check_aws_connection()
        return hook


#: The attributes that make a :class:`WaitRequest`, besides the region.
_WAIT_SETTINGS = (
    "db_cluster_identifier",
    "probe",
    "connect_timeout",
    "describe_interval",
    "stopped_grace",
    "data_api_secret_arn",
    "database",
    "instances",
)


class ReadyWaitMixin:
    """The settings of a wait for readiness, shared by the sensor and its trigger.

    :class:`~airflow_aurora_wake.core.wait.WaitRequest` documents and validates each of them.
    """

    db_cluster_identifier: str
    probe: str
    connect_timeout: float
    describe_interval: float
    stopped_grace: float
    data_api_secret_arn: str | None
    database: str | None
    instances: str

    def wait_request(self, region_name: str | None, *, at_parse_time: bool = False) -> WaitRequest:
        """Return the core's request for these settings (its construction validates them).

        :param region_name: The region; a cluster ARN gives its own when this is ``None``.
        :param at_parse_time: Stand in for values a template still renders (see
            :func:`~airflow_aurora_wake.utils.task_parameters.task_values`).
        :raises InvalidParameterError: A setting the core rejects.
        """
        values = task_values(self, _WAIT_SETTINGS, at_parse_time=at_parse_time)
        return WaitRequest(region_name=region_name, **values)

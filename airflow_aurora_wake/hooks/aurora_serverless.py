"""Hook that gives the core everything it needs from Airflow: AWS clients and a database target.

:class:`AuroraServerlessHook` composes the Amazon provider's
:class:`~airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook` (credentials, role
assumption, ``endpoint_url`` and ``region_name`` from the AWS connection's extra, ``verify``,
``botocore_config``) instead of re-implementing any of it, and turns an Airflow ``postgres`` or
``mysql`` connection into the core's :class:`~airflow_aurora_wake.core.probes.DatabaseTarget`.
It implements the core's ``WaitResources`` protocol, so the same object serves the operator,
the sensor (``asyncio.run`` in a worker) and the trigger (the triggerer's event loop): nothing
it does on the event loop blocks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from asgiref.sync import sync_to_async

from airflow_aurora_wake.compat import (
    BaseHook,
    Connection,
    get_async_extra_dejson,
)
from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.engines import EngineFamily
from airflow_aurora_wake.core.errors import (
    DatabaseConfigurationError,
    InvalidParameterError,
)
from airflow_aurora_wake.core.probes import DatabaseTarget
from airflow_aurora_wake.core.targets import LoginSettings, build_target
from airflow_aurora_wake.core.tls import option_bool, ssl_setting_from_options
from airflow_aurora_wake.hooks.connections import (
    DEFAULT_AWS_CONN_ID,
    afind_connection,
    aws_connection_fault,
    connection_not_found,
    find_connection,
)
from airflow_aurora_wake.hooks.shared_clients import SHARED_CLIENTS, SHARED_REGIONS

T = TypeVar("T")

#: The database connection's extra that takes the password (and, without a login, the user)
#: from the cluster's managed master secret: ``{"aurora_managed_password": true}``.
MANAGED_PASSWORD_EXTRA = "aurora_managed_password"

#: Airflow connection types accepted for each database engine family.
CONN_TYPES: dict[EngineFamily, frozenset[str]] = {
    "postgresql": frozenset({"postgres", "postgresql"}),
    "mysql": frozenset({"mysql"}),
}


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run one of the core's coroutines from synchronous operator code (``execute``, ``poke``).

    A fresh event loop per call: the aiobotocore clients and database sockets the coroutine
    opens are closed before it returns.

    :param coro: The coroutine to run to completion.
    """
    return asyncio.run(coro)


def aws_settings_key(
    aws_conn_id: str | None,
    region_name: str | None,
    verify: bool | str | None,
    botocore_config: dict[str, Any] | None,
) -> tuple[str | None, str | None, bool | str | None, str]:
    """A hashable key of every setting that changes how a client talks to AWS.

    What may share an aiobotocore client (:meth:`AuroraServerlessHook._client`) or a poller (the
    trigger's ``share_key``): two waits that differ in TLS verification or retries must not.
    ``botocore_config`` is a dict, so it enters as canonical JSON.

    :param aws_conn_id: The AWS connection id.
    :param region_name: The region given (``None``: the connection's).
    :param verify: ``verify`` as given to the hook.
    :param botocore_config: ``botocore_config`` as given to the hook.
    """
    config = json.dumps(botocore_config, sort_keys=True, default=str)
    return (aws_conn_id, region_name, verify, config)


class AuroraServerlessHook(BaseHook):
    """
    Interact with a sleeping Aurora cluster: async RDS and RDS Data API clients and a database target.

    The AWS side is delegated to the Amazon provider's ``AwsBaseHook`` (one per service), so
    credentials, role assumption and the AWS connection's extra (``region_name``,
    ``endpoint_url``, ``botocore_config``...) behave exactly as in every Amazon operator.

    :param aws_conn_id: The Airflow connection used for AWS credentials. If this is ``None`` or
        empty the default boto3 behaviour is used; an id that does not exist falls back to it
        too, with a warning, as in the Amazon provider.
    :param region_name: AWS region of the cluster. If not specified, the region of the AWS
        connection or the default boto3 behaviour is used.
    :param verify: Whether or not to verify SSL certificates of the AWS API, or the path of a CA
        bundle. See https://boto3.amazonaws.com/v1/documentation/api/latest/reference/core/session.html
    :param botocore_config: Configuration dictionary (key-values) for the botocore clients. See
        https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
    :param conn_id: Airflow connection (``postgres`` or ``mysql`` type) of the database in the
        cluster. An empty host means the cluster's writer endpoint (and port). Extra ``iam: true``
        uses an IAM authentication token instead of the password; ``aurora_managed_password:
        true`` reads the password (and, without a login, the user) from the cluster's managed
        master secret in Secrets Manager; ``sslmode`` (and
        ``sslrootcert``, ``sslcert``, ``sslkey``) for PostgreSQL and ``ssl`` (``true`` to encrypt without
        verifying, or a dict with ``ca``, ``cert``, ``key``, ``check_hostname`` to verify) for MySQL
        set TLS.
    :param database: Database name; overrides the connection's schema when set.
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = DEFAULT_AWS_CONN_ID
    conn_type = "aws"
    hook_name = "Amazon Aurora Serverless"

    def __init__(
        self,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        conn_id: str | None = None,
        database: str | None = None,
    ) -> None:
        super().__init__()
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.conn_id = conn_id
        self.database = database
        self._aws_hooks: dict[tuple[str | None, str], AwsBaseHook] = {}
        self._connection: Connection | None = None
        self._extra: dict[str, Any] | None = None
        self._token_conn_checked: str | None = None

    # ------------------------------------------------------------------ AWS
    def aws_hook(self, client_type: str, aws_conn_id: str | None = None) -> AwsBaseHook:
        """Return the (cached) Amazon provider hook for one AWS service.

        :param client_type: botocore service name, ``rds`` or ``rds-data``.
        :param aws_conn_id: Another AWS connection to use (IAM tokens from a connection's
            ``aws_conn_id`` extra); defaults to this hook's ``aws_conn_id``.
        """
        conn = self.aws_conn_id if aws_conn_id is None else aws_conn_id
        key = (conn, client_type)
        if key not in self._aws_hooks:
            self._aws_hooks[key] = AwsBaseHook(
                aws_conn_id=conn,
                region_name=self.region_name,
                verify=self.verify,
                client_type=client_type,
                config=self.botocore_config,
            )
        return self._aws_hooks[key]

    def _client(self, client_type: str, aws_conn_id: str | None = None) -> Any:
        """Async context manager yielding an aiobotocore client, shared in this event loop.

        Every hook of one event loop (all triggers of a triggerer) with the same AWS connection,
        region, ``verify`` and ``botocore_config`` uses one client per service while any of them
        holds it: creating a client costs about 0.1 s of CPU and 1.4 MB, which per cluster
        would stall the triggerer's loop and grow its memory with the number of clusters.
        """
        conn = self.aws_conn_id if aws_conn_id is None else aws_conn_id
        key = (client_type, *aws_settings_key(conn, self.region_name, self.verify, self.botocore_config))
        hook = self.aws_hook(client_type, aws_conn_id)

        async def create() -> Any:
            # get_async_conn() resolves the AWS connection in a worker thread (a sync look-up).
            return await hook.get_async_conn()

        return SHARED_CLIENTS.client(key, create)

    def rds_client(self) -> Any:
        """Async context manager yielding an aiobotocore ``rds`` client (core ``WaitResources``)."""
        return self._client("rds")

    def rds_data_client(self) -> Any:
        """Async context manager yielding an aiobotocore ``rds-data`` client (core ``WaitResources``)."""
        return self._client("rds-data")

    def get_region_name(self) -> str | None:
        """Return the effective AWS region (parameter, else AWS connection, else boto3 default)."""
        return self.aws_hook("rds").region_name

    async def aget_region_name(self) -> str | None:
        """Return the effective AWS region without blocking the event loop.

        Resolved once per (AWS connection, region given) per event loop and reused for a few
        minutes (:class:`~airflow_aurora_wake.hooks.shared_clients.SharedRegions`): a triggerer
        starting thousands of waits looks it up once, not once per trigger.
        """
        return await SHARED_REGIONS.region(
            (self.aws_conn_id, self.region_name), sync_to_async(self.get_region_name)
        )

    # ------------------------------------------------------------ database
    async def aget_database_connection(self) -> tuple[Connection, dict[str, Any]]:
        """Look up (once) the database connection and its extra, asynchronously.

        :raises InvalidParameterError: When ``conn_id`` is unset or names no connection.
        """
        if self.conn_id is None:
            raise InvalidParameterError(
                "conn_id",
                None,
                "a database connection is needed to reach the database: pass the id of a postgres "
                "or mysql Airflow connection, or use probe='data-api' with data_api_secret_arn",
            )
        if self._connection is None or self._extra is None:
            connection = await afind_connection(self.conn_id, parameter="conn_id")
            if connection is None:
                raise connection_not_found(self.conn_id)
            extra = await get_async_extra_dejson(connection)
            self._connection, self._extra = connection, extra
        return self._connection, self._extra

    def check_database_connection(self) -> None:
        """Fail at once, synchronously, when ``conn_id`` is set but names no database connection.

        :raises InvalidParameterError: When the connection does not exist, or is not a
            ``postgres``/``mysql`` connection.
        """
        if self.conn_id is None:
            return
        connection = find_connection(self.conn_id, parameter="conn_id")
        if connection is None:
            raise connection_not_found(self.conn_id)
        conn_type = (connection.conn_type or "").lower()
        if conn_type not in CONN_TYPES["postgresql"] | CONN_TYPES["mysql"]:
            raise InvalidParameterError(
                "conn_id",
                self.conn_id,
                f"connection {self.conn_id!r} has type {conn_type or None!r}: point conn_id at a "
                "postgres or mysql connection to the cluster's database",
            )

    def check_aws_connection(self) -> None:
        """Fail at once, synchronously, when ``aws_conn_id`` names a missing or non-AWS connection.

        A typo would otherwise act with the default boto3 credentials (and usually end in a
        misleading "cluster not found"); only ``aws_default`` may be missing.

        :raises InvalidParameterError: When the connection does not exist (other than
            ``aws_default``), or is not an ``aws`` connection.
        """
        conn_id = self.aws_conn_id
        if conn_id is None:
            return
        connection = find_connection(conn_id, parameter="aws_conn_id")
        fault = aws_connection_fault(conn_id, connection)
        if fault is None:
            return
        remedy = (
            "or pass aws_conn_id=None to use the default boto3 credentials"
            if connection is None
            else "point aws_conn_id at an Amazon Web Services connection (the database connection "
            "goes in conn_id)"
        )
        raise InvalidParameterError("aws_conn_id", conn_id, f"{fault}: {remedy}")

    async def _token_aws_conn_id(self, extra: dict[str, Any], origin: str) -> str | None:
        """The AWS connection named by a database connection's ``aws_conn_id`` extra, checked.

        Checked once per hook, before any IAM token is signed, with the same rule as
        :meth:`check_aws_connection`, and without blocking the event loop.

        :param extra: The database connection's extra.
        :param origin: The database connection, as messages name it.
        :returns: The id, or ``None`` (no such extra: tokens are signed with ``aws_conn_id``).
        :raises DatabaseConfigurationError: When it is not an id, names no connection (other
            than ``aws_default``) or a connection that is not an ``aws`` one.
        """
        conn_id = extra.get("aws_conn_id")
        if conn_id is None or conn_id == self._token_conn_checked:
            return conn_id
        signer = f"aws_conn_id {self.aws_conn_id!r}" if self.aws_conn_id else "the default boto3 credentials"
        instead = f"remove aws_conn_id from the extra to sign IAM tokens with {signer}"
        if not isinstance(conn_id, str) or not conn_id or conn_id != conn_id.strip():
            raise DatabaseConfigurationError(
                f"{origin} has extra aws_conn_id={conn_id!r}, which is not a connection id: give the "
                f"id of the AWS connection that signs its IAM tokens, or {instead}"
            )
        connection = await afind_connection(conn_id, parameter=f"the aws_conn_id extra of {origin}")
        fault = aws_connection_fault(conn_id, connection)
        if fault is not None:
            remedy = "" if connection is None else ": point it at an Amazon Web Services connection"
            raise DatabaseConfigurationError(
                f"{origin} has extra aws_conn_id={conn_id!r} to sign its IAM tokens, but {fault}"
                f"{remedy}, or {instead}"
            )
        self._token_conn_checked = conn_id
        return conn_id

    async def database_target(
        self, snapshot: ClusterSnapshot, *, host: str | None = None, port: int | None = None
    ) -> DatabaseTarget:
        """Build the core's database target for a cluster (core ``WaitResources``).

        :param snapshot: The cluster as last described; its writer endpoint and port fill an
            empty connection host and port.
        :param host: Another endpoint of the cluster to connect to with this connection's login
            and TLS settings (its reader endpoint, an instance endpoint).
        :param port: That endpoint's port (``None``: the connection's, else the cluster's).
        :raises InvalidParameterError: ``conn_id`` unset or unknown.
        :raises DatabaseConfigurationError: Connection type does not match the cluster's engine,
            no host anywhere, an invalid TLS/IAM extra, an ``aws_conn_id`` extra (with
            ``iam``) that names no AWS connection, or ``aurora_managed_password`` on a cluster
            without a managed master secret.
        """
        connection, extra = await self.aget_database_connection()
        conn_id = str(self.conn_id)
        conn_type = (connection.conn_type or "").lower()
        engine = next((family for family, types in CONN_TYPES.items() if conn_type in types), None)
        origin = f"Connection {conn_id!r} (type {conn_type or None!r})"
        if engine is None:
            raise DatabaseConfigurationError(
                f"{origin} is neither a postgres nor a mysql connection, but DB cluster "
                f"{snapshot.identifier!r} runs {snapshot.engine!r}: point conn_id at a database connection"
            )
        iam = option_bool(extra.get("iam", False), name="iam", origin=origin)
        managed_password = option_bool(
            extra.get(MANAGED_PASSWORD_EXTRA, False), name=MANAGED_PASSWORD_EXTRA, origin=origin
        )
        # Only IAM logins sign with it; without "iam" the extra is the SQL providers' business.
        token_aws_conn_id = await self._token_aws_conn_id(extra, origin) if iam else None

        async def sign_token(host: str, port: int, user: str) -> str:
            async with self._client("rds", token_aws_conn_id) as client:
                token: str = await client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
            return token

        login = LoginSettings(
            engine=engine,
            host=connection.host or None,
            port=connection.port or None,
            user=connection.login or None,
            password=connection.password or None,
            database=self.database or connection.schema or None,
            iam=iam,
            ssl=await ssl_setting_from_options(engine, extra, origin),
            conn_id=conn_id,
            origin=origin,
            managed_password=managed_password,
        )
        return build_target(
            login, snapshot, sign_token=sign_token, read_secret=self.read_secret, host=host, port=port
        )

    async def read_secret(self, secret_arn: str) -> Any:
        """``GetSecretValue`` of a secret over the shared aiobotocore client (never logged).

        :param secret_arn: The secret's ARN.
        """
        async with self._client("secretsmanager") as client:
            return await client.get_secret_value(SecretId=secret_arn)

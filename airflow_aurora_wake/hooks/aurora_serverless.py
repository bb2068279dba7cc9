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
import logging
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from asgiref.sync import sync_to_async

from airflow_aurora_wake.compat import (
    AirflowNotFoundException,
    BaseHook,
    Connection,
    get_async_connection,
    get_async_extra_dejson,
)
from airflow_aurora_wake.core.cluster import ClusterSnapshot, engine_family
from airflow_aurora_wake.core.errors import DatabaseConfigurationError, InvalidParameterError
from airflow_aurora_wake.core.probes import DatabaseTarget

T = TypeVar("T")

EngineFamily = Literal["postgresql", "mysql"]

#: Airflow connection types accepted for each database engine family.
CONN_TYPES: dict[EngineFamily, frozenset[str]] = {
    "postgresql": frozenset({"postgres", "postgresql"}),
    "mysql": frozenset({"mysql"}),
}
DEFAULT_PORTS: dict[EngineFamily, int] = {"postgresql": 5432, "mysql": 3306}
POSTGRES_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TRUE_STRINGS = frozenset({"true", "1", "yes", "on"})
_FALSE_STRINGS = frozenset({"false", "0", "no", "off", ""})


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run one of the core's coroutines from synchronous operator code (``execute``, ``poke``).

    A fresh event loop per call: the aiobotocore clients and database sockets the coroutine
    opens are closed before it returns.

    :param coro: The coroutine to run to completion.
    """
    return asyncio.run(coro)


def _as_bool(value: Any, *, name: str, conn_id: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS | _FALSE_STRINGS:
        return value.strip().lower() in _TRUE_STRINGS
    raise DatabaseConfigurationError(
        f"Connection {conn_id!r}: extra {name!r} must be true or false, got {value!r}. "
        f"Fix the connection's extra, for example {{{name!r}: true}}."
    )


def _connection_not_found(conn_id: str) -> InvalidParameterError:
    return InvalidParameterError(
        "conn_id",
        conn_id,
        "no Airflow connection with this id exists: create it (UI, `airflow connections add`, a "
        f"secrets backend, or an AIRFLOW_CONN_{conn_id.upper()} environment variable, which must "
        "then be set for the worker and for the triggerer)",
    )


class _DropSignatures(logging.Filter):
    """Drop botocore's DEBUG ``Signature:`` lines: for a presigned IAM token, that is the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Signature:"))


def _hide_presigned_signatures() -> None:
    """Keep IAM token signatures out of logs even when botocore logs at DEBUG (idempotent).

    ``botocore.auth`` logs every SigV4 signature at DEBUG, including the one that makes an
    IAM database token; with the canonical request logged next to it, the token could be
    rebuilt from the log. Only those lines are dropped, and only once IAM tokens are in use.
    """
    botocore_auth = logging.getLogger("botocore.auth")
    if not any(isinstance(existing, _DropSignatures) for existing in botocore_auth.filters):
        botocore_auth.addFilter(_DropSignatures())


class _SharedClient:
    """One aiobotocore client and the users holding it (see :class:`SharedClients`)."""

    def __init__(self, task: asyncio.Task[tuple[Any, Any]]) -> None:
        self.task = task
        self.users = 0
        self.closing = False

    def usable(self) -> bool:
        if self.closing:
            return False
        if not self.task.done():
            return True
        return not self.task.cancelled() and self.task.exception() is None


class SharedClients:
    """aiobotocore clients shared per event loop by key; closed when their last user leaves.

    The client is created in a task of its own, so a user cancelled while it is being created
    does not cancel it for the others; the last user to leave closes it (or cancels its
    creation). A creation that failed is not reused: the next user creates a new one.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _SharedClient]] = (
            weakref.WeakKeyDictionary()
        )

    def active(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """How many shared clients are open or opening in ``loop`` (default: the running loop).

        :param loop: The event loop.
        """
        return len(self._by_loop.get(loop or asyncio.get_running_loop(), {}))

    @asynccontextmanager
    async def client(self, key: Hashable, create: Callable[[], Awaitable[Any]]) -> AsyncIterator[Any]:
        """Yield the shared client for ``key``, creating it with ``create()`` when there is none.

        :param key: What makes two clients interchangeable (service, connection, region...).
        :param create: Returns an aiobotocore client context manager (not yet entered).
        """
        loop = asyncio.get_running_loop()
        entries = self._by_loop.setdefault(loop, {})
        entry = entries.get(key)
        if entry is None or not entry.usable():

            async def open_client() -> tuple[Any, Any]:
                creator = await create()
                return creator, await creator.__aenter__()

            entry = _SharedClient(loop.create_task(open_client(), name="aurora-wake-aws-client"))
            entries[key] = entry
        entry.users += 1
        try:
            _, client = await asyncio.shield(entry.task)
            yield client
        finally:
            entry.users -= 1
            if entry.users == 0 and not entry.closing:
                entry.closing = True
                if entries.get(key) is entry:
                    del entries[key]
                await self._close(entry)

    @staticmethod
    async def _close(entry: _SharedClient) -> None:
        task = entry.task
        if not task.done():
            task.cancel()
        await asyncio.wait([task])
        if task.cancelled() or task.exception() is not None:
            return
        creator, _ = task.result()
        await creator.__aexit__(None, None, None)


#: The process-wide pool of shared aiobotocore clients (one per key per event loop).
SHARED_CLIENTS = SharedClients()


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
        uses an IAM authentication token instead of the password; ``sslmode`` (and
        ``sslrootcert``, ``sslcert``, ``sslkey``) for PostgreSQL and ``ssl`` (``true`` to encrypt without
        verifying, or a dict with ``ca``, ``cert``, ``key``, ``check_hostname`` to verify) for MySQL
        set TLS.
    :param database: Database name; overrides the connection's schema when set.
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
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
        key = (
            client_type,
            conn,
            self.region_name,
            self.verify,
            json.dumps(self.botocore_config, sort_keys=True, default=str),
        )
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
        """Return the effective AWS region without blocking the event loop."""
        return await sync_to_async(self.get_region_name)()

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
            try:
                connection = await get_async_connection(self.conn_id)
            except AirflowNotFoundException:
                raise _connection_not_found(self.conn_id) from None
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
        try:
            connection = self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            raise _connection_not_found(self.conn_id) from None
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

        The Amazon provider falls back to the default boto3 credentials, with a warning, when the
        AWS connection does not exist; a typo then acts with other credentials (and usually ends
        in a misleading "cluster not found"). Only the conventional default ``aws_default`` keeps
        that fallback, since many deployments rely on it without defining the connection.

        :raises InvalidParameterError: When the connection does not exist (other than
            ``aws_default``), or is not an ``aws`` connection.
        """
        conn_id = self.aws_conn_id
        if conn_id is None:
            return
        try:
            connection = self.get_connection(conn_id)
        except AirflowNotFoundException:
            if conn_id == self.default_conn_name:
                return
            raise InvalidParameterError(
                "aws_conn_id",
                conn_id,
                "no Airflow connection with this id exists: create an AWS connection with this id "
                f"(or an AIRFLOW_CONN_{conn_id.upper()} environment variable, set for the worker and "
                "the triggerer), or pass aws_conn_id=None to use the default boto3 credentials",
            ) from None
        conn_type = (connection.conn_type or "aws").lower()
        if conn_type != "aws":
            raise InvalidParameterError(
                "aws_conn_id",
                conn_id,
                f"connection {conn_id!r} has type {conn_type!r}, not 'aws': point aws_conn_id at an "
                "Amazon Web Services connection (the database connection goes in conn_id)",
            )

    async def database_target(self, snapshot: ClusterSnapshot) -> DatabaseTarget:
        """Build the core's database target for a cluster (core ``WaitResources``).

        :param snapshot: The cluster as last described; its writer endpoint and port fill an
            empty connection host and port.
        :raises InvalidParameterError: ``conn_id`` unset or unknown.
        :raises DatabaseConfigurationError: Connection type does not match the cluster's engine,
            no host anywhere, or an invalid TLS/IAM extra.
        """
        connection, extra = await self.aget_database_connection()
        conn_id = str(self.conn_id)
        family = engine_family(snapshot.engine)
        if family is None:
            raise DatabaseConfigurationError(
                f"Cluster {snapshot.identifier!r} runs engine {snapshot.engine!r}, which is neither "
                "PostgreSQL nor MySQL compatible: it cannot be probed with a database connection."
            )
        conn_type = (connection.conn_type or "").lower()
        if conn_type not in CONN_TYPES[family]:
            expected = " or ".join(sorted(CONN_TYPES[family]))
            raise DatabaseConfigurationError(
                f"Connection {conn_id!r} has type {conn_type or None!r} but cluster "
                f"{snapshot.identifier!r} runs {snapshot.engine!r}: use a connection of type "
                f"{expected} for this cluster (or point conn_id at one)."
            )
        host = connection.host or snapshot.endpoint
        if not host:
            raise DatabaseConfigurationError(
                f"Connection {conn_id!r} has no host and cluster {snapshot.identifier!r} reports no "
                "writer endpoint: set the connection's host to the cluster endpoint."
            )
        port = connection.port or (snapshot.port if not connection.host else None) or DEFAULT_PORTS[family]
        user = connection.login
        if not user:
            raise DatabaseConfigurationError(
                f"Connection {conn_id!r} has no login: set the database user in the connection."
            )
        database = self.database or connection.schema or None
        ssl_setting = await self._ssl_setting(family, extra, conn_id)

        password: str | None = connection.password or None
        password_provider: Callable[[], Awaitable[str]] | None = None
        if _as_bool(extra.get("iam", False), name="iam", conn_id=conn_id):
            password = None
            token_aws_conn_id = extra.get("aws_conn_id")
            password_provider = self._iam_token_provider(
                host=host, port=int(port), user=user, aws_conn_id=token_aws_conn_id
            )

        return DatabaseTarget(
            engine=family,
            host=host,
            port=int(port),
            user=user,
            database=database,
            password=password,
            password_provider=password_provider,
            ssl=ssl_setting,
            conn_id=conn_id,
        )

    def _iam_token_provider(
        self, *, host: str, port: int, user: str, aws_conn_id: str | None
    ) -> Callable[[], Awaitable[str]]:
        """Return a coroutine function producing a fresh IAM auth token for each connection.

        The token is a local SigV4 signature (no network call); it is returned to the core's
        probe and never logged or kept here.
        """
        _hide_presigned_signatures()

        async def provide_token() -> str:
            async with self._client("rds", aws_conn_id) as client:
                token: str = await client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
            return token

        return provide_token

    async def _ssl_setting(
        self, family: EngineFamily, extra: dict[str, Any], conn_id: str
    ) -> ssl.SSLContext | bool | str | None:
        if family == "postgresql":
            return await self._postgres_ssl(extra, conn_id)
        return await self._mysql_ssl(extra, conn_id)

    @staticmethod
    async def _postgres_ssl(extra: dict[str, Any], conn_id: str) -> ssl.SSLContext | str | None:
        mode = extra.get("sslmode")
        if mode is None:
            return None
        mode = str(mode).lower()
        if mode not in POSTGRES_SSLMODES:
            raise DatabaseConfigurationError(
                f"Connection {conn_id!r}: extra sslmode={mode!r} is not a PostgreSQL sslmode; use one "
                f"of {', '.join(POSTGRES_SSLMODES)}."
            )
        rootcert, cert, key = extra.get("sslrootcert"), extra.get("sslcert"), extra.get("sslkey")
        if mode in ("disable", "allow", "prefer") or not (rootcert or cert):
            # asyncpg understands libpq's sslmode names itself.
            return mode

        def build() -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=rootcert)
            if mode != "verify-full":
                context.check_hostname = False
            if mode == "require" and not rootcert:
                context.verify_mode = ssl.CERT_NONE
            if cert:
                context.load_cert_chain(cert, key)
            return context

        return await _build_context(build, conn_id)

    @staticmethod
    async def _mysql_ssl(extra: dict[str, Any], conn_id: str) -> ssl.SSLContext | bool | None:
        setting = extra.get("ssl")
        if setting is None:
            return None
        if isinstance(setting, str) and setting.strip().startswith("{"):
            try:
                setting = json.loads(setting)
            except ValueError:
                raise DatabaseConfigurationError(
                    f"Connection {conn_id!r}: extra 'ssl' is not valid JSON; use true, false or an "
                    'object such as {"ca": "/path/to/ca.pem"}.'
                ) from None
        if not isinstance(setting, dict):
            # true: encrypt without verifying (the core's meaning); false: no TLS.
            return _as_bool(setting, name="ssl", conn_id=conn_id) or None
        options: dict[str, Any] = setting

        def build() -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=options.get("ca"))
            check_hostname = options.get("check_hostname", True)
            context.check_hostname = _as_bool(check_hostname, name="ssl.check_hostname", conn_id=conn_id)
            if options.get("cert"):
                context.load_cert_chain(options["cert"], options.get("key"))
            return context

        return await _build_context(build, conn_id)


async def _build_context(build: Callable[[], ssl.SSLContext], conn_id: str) -> ssl.SSLContext:
    """Build an SSL context in a worker thread (it reads certificate files)."""
    try:
        return await asyncio.to_thread(build)
    except (OSError, ssl.SSLError) as exc:
        raise DatabaseConfigurationError(
            f"Connection {conn_id!r}: its TLS settings could not be loaded ({type(exc).__name__}: "
            f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}); check the "
            "certificate paths in the connection's extra."
        ) from None

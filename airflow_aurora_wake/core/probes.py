"""Database probes: a real ``SELECT 1`` over asyncpg / aiomysql, or over the Data API.

Everything here is non-blocking: DNS, connect and query all run on the event loop, and every
socket opened is closed on success, failure and cancellation.
"""

from __future__ import annotations

import asyncio
import functools
import ssl as ssl_module
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.engines import (
    SSL_MODES,
    SSL_MODES_REQUIRING_TLS,
    SSL_MODES_VERIFYING,
    EngineFamily,
)
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    ClusterDescriptionError,
    DatabaseConfigurationError,
    InvalidParameterError,
    classify_error,
    is_password_refusal,
)
from airflow_aurora_wake.core.rds import RdsCalls
from airflow_aurora_wake.core.secrets import ManagedLogin

__all__ = [
    "DataApiTarget",
    "DatabaseTarget",
    "SslSetting",
    "nudge_database",
    "probe_data_api",
    "probe_database",
    "probe_once",
    "resolve_data_api_target",
    "tls_required",
]

SslSetting = ssl_module.SSLContext | bool | str | None


@dataclass(frozen=True)
class DatabaseTarget:
    """Where and how to open a real database connection.

    :param engine: ``postgresql`` (asyncpg) or ``mysql`` (aiomysql).
    :param host: host name or address.
    :param port: TCP port.
    :param user: the login.
    :param database: the database to connect to (``None``: the driver's default).
    :param password: the password (never in repr or logs).
    :param password_provider: async callable returning a fresh IAM token; called for every
        connection attempt because tokens last 15 minutes. Takes precedence over ``password``.
    :param ssl: passed through to the driver: an ``SSLContext``, a bool or a libpq sslmode string
        (``disable``, ``prefer``, ``require``, ``verify-ca``, ``verify-full``). aiomysql takes only
        contexts, so for MySQL ``True``/``require`` become a non-verifying context,
        ``verify-ca``/``verify-full`` a verifying one, and ``prefer``/``allow``/``disable`` no TLS.
        When it requires TLS (:func:`tls_required`), a server that does not offer TLS gets no
        password on either engine.
    :param conn_id: the Airflow connection id, for messages only.
    :param managed_login: the cluster's managed master secret, when the password (and, with an
        empty ``user``, the login) is read from it; takes precedence over ``password``.
    """

    engine: EngineFamily
    host: str
    port: int
    user: str
    database: str | None = None
    password: str | None = field(default=None, repr=False)
    password_provider: Callable[[], Awaitable[str]] | None = field(default=None, repr=False, compare=False)
    ssl: SslSetting = None
    conn_id: str | None = None
    managed_login: ManagedLogin | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        """Return ``postgresql://user@host:port/db`` (with the connection id if any), no password."""
        user = self.user
        if not user and self.managed_login is not None:
            user = self.managed_login.username or "(the managed secret's user)"
        text = f"{self.engine}://{user}@{self.host}:{self.port}/{self.database or ''}"
        return f"{self.conn_id!r} ({text})" if self.conn_id else text

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Every secret this target may log in with, to keep out of messages (never show them)."""
        managed = self.managed_login.passwords if self.managed_login is not None else ()
        return (self.password, *managed)

    async def resolve_password(self) -> str | None:
        """Return the password for one attempt: a fresh token from the provider, else ``password``."""
        if self.password_provider is not None:
            return await self.password_provider()
        return self.password

    async def resolve_login(self, *, timeout: float) -> tuple[str, str | None]:
        """Return the user and password for one attempt.

        :param timeout: seconds a read of the managed secret may take.
        :raises DatabaseConfigurationError: no user configured and none in the managed secret.
        """
        if self.managed_login is None:
            return self.user, await self.resolve_password()
        login = await self.managed_login.login(timeout=timeout)
        user = self.user or login.username
        if not user:
            raise DatabaseConfigurationError(
                f"{self.describe()} has no login and the managed master secret "
                f"{self.managed_login.arn} has no username: set the database user on the connection"
            )
        return user, login.password


def tls_required(setting: SslSetting) -> bool:
    """Return whether ``setting`` forbids a connection without TLS.

    An ``SSLContext``, ``True`` and the sslmodes of ``SSL_MODES_REQUIRING_TLS`` do; ``None``,
    ``False`` and the other sslmodes let the driver go on in clear text.

    :param setting: a :class:`DatabaseTarget`'s ``ssl``.
    """
    return isinstance(setting, ssl_module.SSLContext) or setting is True or setting in SSL_MODES_REQUIRING_TLS


_MYSQL_CONTEXTS: dict[bool, ssl_module.SSLContext] = {}


def _mysql_ssl(setting: SslSetting) -> ssl_module.SSLContext | None:
    if isinstance(setting, ssl_module.SSLContext):
        return setting
    if setting is not None and not isinstance(setting, bool) and setting not in SSL_MODES:
        raise InvalidParameterError(
            "ssl", setting, f"must be an SSLContext, a bool or one of {'/'.join(SSL_MODES)}"
        )
    if not tls_required(setting):
        return None
    verify = setting in SSL_MODES_VERIFYING
    # Built once per process: loading the CA store reads files, which should not repeat per probe.
    context = _MYSQL_CONTEXTS.get(verify)
    if context is None:
        context = ssl_module.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl_module.CERT_NONE
        _MYSQL_CONTEXTS[verify] = context
    return context


@functools.cache
def _mysql_connection_class() -> type[Any]:
    """Return aiomysql's ``Connection`` made to check, before it authenticates, what it may send.

    Built on first use so that importing the core never imports aiomysql.
    """
    import aiomysql
    from pymysql.constants import CLIENT

    class CheckedConnection(aiomysql.Connection):  # type: ignore[misc]
        def __init__(self, *, label: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.label = label

        async def _request_authentication(self) -> None:
            # Runs after the server's greeting and before the client's first byte. aiomysql
            # starts TLS only if the greeting offers it and otherwise sends the login anyway,
            # in clear text when the server asks for mysql_clear_password (IAM logins do): a
            # server, or anything in between, that leaves CLIENT_SSL out would receive it.
            if self._ssl_context is not None and not self.server_capabilities & CLIENT.SSL:
                raise DatabaseConfigurationError(
                    f"the MySQL server of {self.label} did not offer TLS, but the connection asks "
                    "for TLS (its ssl setting; IAM logins use TLS by default), so the password or "
                    "token was not sent: check that the host is the cluster endpoint (Aurora always "
                    "offers TLS), or enable TLS on the server"
                )
            plugin = self._client_auth_plugin or self._server_auth_plugin
            sends_password = plugin == "mysql_clear_password" or (
                plugin == "sha256_password" and self._ssl_context is not None
            )
            # Without CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA the first answer has a one-byte
            # length; aiomysql would die in struct.pack on a longer one (an IAM token is).
            if (
                sends_password
                and len(self._password) >= 255
                and not self.server_capabilities & CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA
            ):
                raise DatabaseConfigurationError(
                    f"the MySQL server of {self.label} asks for {plugin} but cannot receive an "
                    "answer longer than 254 bytes (it does not announce "
                    "CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA), and the password or IAM token is "
                    f"{len(self._password)} bytes long, so it was not sent: connect to the cluster "
                    "endpoint directly, not through a proxy that leaves this capability out"
                )
            await super()._request_authentication()

    return CheckedConnection


async def _probe_postgresql(
    target: DatabaseTarget, user: str, password: str | None, connect_timeout: float
) -> None:
    import asyncpg

    connection = await asyncpg.connect(
        host=target.host,
        port=target.port,
        user=user,
        password=password,
        database=target.database,
        ssl=target.ssl,
        timeout=connect_timeout,
        command_timeout=connect_timeout,
    )
    try:
        await connection.fetchval("SELECT 1")
    finally:
        # terminate() closes the socket at once; close() would wait for a polite goodbye.
        connection.terminate()


async def _probe_mysql(
    target: DatabaseTarget, user: str, password: str | None, connect_timeout: float
) -> None:
    # Build the Connection ourselves (as aiomysql.connect does) so that a cancellation in the
    # middle of the handshake can still close its socket.
    connection = _mysql_connection_class()(
        label=target.describe(),
        host=target.host,
        port=target.port,
        user=user,
        password=password or "",
        db=target.database,
        ssl=_mysql_ssl(target.ssl),
        connect_timeout=connect_timeout,
        autocommit=True,
    )
    try:
        await connection._connect()
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT 1")
            await cursor.fetchone()
    finally:
        connection.close()


async def probe_database(target: DatabaseTarget, *, connect_timeout: float) -> None:
    """Open a real connection, run ``SELECT 1`` and close it.

    The whole attempt (DNS, connect, login, query, and reading a managed secret) is bounded by
    ``connect_timeout``; a resuming instance holds the connect open, so this returns right when
    the DB is ready.

    With a managed master secret, a refused password (28P01, 1045) makes the secret be read
    again once: managed rotation can hand out the previous password for a moment. Only a
    changed password is tried (once more); an unchanged one is refused at once as before.

    :param target: where to connect.
    :param connect_timeout: seconds for the whole attempt.
    :raises TimeoutError: when the attempt took longer than ``connect_timeout``.
    :raises Exception: the driver's exception otherwise (classify it with ``classify_error``).
    """
    attempt = _probe_postgresql if target.engine == "postgresql" else _probe_mysql
    loop = asyncio.get_running_loop()
    deadline = loop.time() + connect_timeout

    def left() -> float:
        return max(deadline - loop.time(), 0.001)

    async def connect() -> None:
        user, password = await target.resolve_login(timeout=left())
        try:
            await attempt(target, user, password, left())
        except Exception as exc:
            managed = target.managed_login
            if managed is None or not is_password_refusal(exc) or not await managed.reread(timeout=left()):
                raise
            user, password = await target.resolve_login(timeout=left())
            await attempt(target, user, password, left())

    try:
        await asyncio.wait_for(connect(), timeout=connect_timeout)
    except asyncio.TimeoutError:  # our bound or the driver's own; an alias of TimeoutError from 3.11
        raise TimeoutError(f"connection timed out after {connect_timeout:.1f} s") from None


async def probe_data_api(
    rds_data_client: Any, *, cluster_arn: str, secret_arn: str, database: str | None
) -> None:
    """Run ``SELECT 1`` through the Data API.

    :param rds_data_client: an aiobotocore ``rds-data`` client.
    :param cluster_arn: the cluster ARN.
    :param secret_arn: the Secrets Manager secret with the login.
    :param database: the database, if any.
    :raises botocore.exceptions.ClientError: ``DatabaseResumingException`` while resuming, and others.
    """
    params: dict[str, Any] = {"resourceArn": cluster_arn, "secretArn": secret_arn, "sql": "SELECT 1"}
    if database:
        params["database"] = database
    await rds_data_client.execute_statement(**params)


@dataclass(frozen=True)
class DataApiTarget:
    """What a Data API probe runs ``SELECT 1`` as.

    :param secret_arn: the Secrets Manager secret with the login.
    :param database: the database, if any.
    """

    secret_arn: str
    database: str | None = None


def resolve_data_api_target(
    snapshot: ClusterSnapshot, secret_arn: str | None, database: str | None
) -> DataApiTarget:
    """The Data API login: the secret given, else the cluster's managed master secret.

    Called right after a describe, so a missing secret fails before any waiting.

    :param snapshot: the cluster as described.
    :param secret_arn: ``data_api_secret_arn`` as given (``None``: the cluster's own).
    :param database: the database, if any.
    :raises InvalidParameterError: neither a secret given nor a managed one on the cluster.
    """
    secret = secret_arn or snapshot.master_user_secret_arn
    if secret is None:
        raise InvalidParameterError(
            "data_api_secret_arn",
            None,
            "the data-api probe needs the ARN of a Secrets Manager secret with the login, and DB "
            f"cluster {snapshot.identifier!r} has no managed master secret (no MasterUserSecret in "
            "DescribeDBClusters): give data_api_secret_arn, or let RDS manage the master password "
            "(ManageMasterUserPassword)",
        )
    return DataApiTarget(secret, database)


async def probe_once(
    snapshot: ClusterSnapshot,
    target: DatabaseTarget | DataApiTarget,
    *,
    timeout: float,
    rds_data_client: Any = None,
    calls: RdsCalls | None = None,
) -> str | None:
    """One readiness attempt, ``SELECT 1`` over a real connection or over the Data API.

    Every caller (the wait loop, the sensor's check, the wake operator's Data API nudge) goes
    through here, so both probes are bounded and counted the same way.

    :param snapshot: the cluster as described (its ARN for the Data API).
    :param target: the database to connect to, or the Data API login.
    :param timeout: seconds the whole attempt may take.
    :param rds_data_client: an aiobotocore ``rds-data`` client, for the Data API.
    :param calls: counts the ``ExecuteStatement`` calls.
    :returns: ``host:port`` that answered (the cluster endpoint for the Data API), if known.
    :raises TimeoutError: when the attempt took longer than ``timeout``.
    :raises Exception: the driver's or botocore's exception otherwise (classify it).
    """
    if isinstance(target, DataApiTarget):
        if not snapshot.arn:
            raise ClusterDescriptionError(
                f"DescribeDBClusters gave no DBClusterArn for {snapshot.identifier!r}; the Data API "
                "probe needs it: probe over a database connection instead"
            )
        if rds_data_client is None:
            raise ValueError("a Data API probe needs an rds-data client")
        if calls is not None:
            calls.record("ExecuteStatement")
        try:
            await asyncio.wait_for(
                probe_data_api(
                    rds_data_client,
                    cluster_arn=snapshot.arn,
                    secret_arn=target.secret_arn,
                    database=target.database,
                ),
                timeout=timeout,
            )
        except asyncio.TimeoutError:
            raise TimeoutError(f"Data API call timed out after {timeout:.1f} s") from None
        return f"{snapshot.endpoint}:{snapshot.port}" if snapshot.endpoint else None
    await probe_database(target, connect_timeout=timeout)
    return f"{target.host}:{target.port}"


async def nudge_database(target: DatabaseTarget, *, hold_seconds: float = 3.0) -> str:
    """Start a resume with a connection attempt, without waiting for the resume to finish.

    The attempt is held open for ``hold_seconds`` and then given up. Whether a resume started
    by a connection attempt runs to the end when the client gives up early is UNCONFIRMED; this
    code assumes it does, and nothing depends on it: the readiness probe's own connection
    attempt wakes the cluster too.

    :param target: where to connect (a wrong password still wakes the cluster).
    :param hold_seconds: how long to hold the attempt open.
    :returns: a safe one-line description of what happened.
    """
    try:
        await probe_database(target, connect_timeout=hold_seconds)
    except AuroraWakeError as exc:
        return f"connection attempt to {target.describe()} could not be made: {exc}"
    except Exception as exc:
        # For a nudge any login answer (also 28000) means the server is up and answered.
        verdict = classify_error(exc, where=target.engine, target=target.describe(), secrets=target.secrets)
        if isinstance(exc, TimeoutError):
            return (
                f"connection attempt to {target.describe()} held open {hold_seconds:.1f} s and given up: "
                "a resume is under way (assumed to continue without the client)"
            )
        if verdict.retry:
            return (
                f"connection attempt to {target.describe()} failed ({verdict.reason}); the probe will retry"
            )
        return f"the server answered ({verdict.reason}), so it is awake"
    return f"connected to {target.describe()}: the database is awake"

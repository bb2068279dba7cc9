"""Plain-Python entry points: wake a cluster and wait until a real ``SELECT 1`` runs.

No Airflow here: a script, a Lambda or a notebook can call :func:`wake_and_wait_sync`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack

from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.dsn import parse_dsn
from airflow_aurora_wake.core.engines import SSL_MODES
from airflow_aurora_wake.core.errors import InvalidParameterError, TransientError, raise_if_fatal
from airflow_aurora_wake.core.probes import DatabaseTarget, SslSetting
from airflow_aurora_wake.core.rds import RdsCalls
from airflow_aurora_wake.core.targets import LoginSettings, build_target
from airflow_aurora_wake.core.validation import (
    validate_bool,
    validate_capacity,
    validate_endpoint_url,
    validate_engine,
    validate_optional_name,
    validate_port,
    validate_positive_seconds,
)
from airflow_aurora_wake.core.wait import ReadyReport, WaitRequest, wait_until_ready
from airflow_aurora_wake.core.wake import WakeOptions, wake_cluster

__all__ = [
    "SessionWaitResources",
    "WaitParameters",
    "WaitSettings",
    "build_wait_settings",
    "wake_and_wait",
    "wake_and_wait_sync",
]

logger = logging.getLogger(__name__)


def _default_log(message: str) -> None:
    logger.info("%s", message)


@dataclass(frozen=True)
class WaitSettings:
    """Validated parameters of :func:`wake_and_wait`.

    :param request: the wait request.
    :param login: the database login (``None`` fields come from the cluster).
    :param endpoint_url: the RDS endpoint URL, for emulators and VPC endpoints.
    :param timeout: seconds for wake and wait together.
    :param wake: send the wake that fits the cluster before waiting.
    :param start_if_stopped: start a stopped cluster.
    :param capacity: v1 capacity to request.
    """

    request: WaitRequest
    login: LoginSettings
    endpoint_url: str | None
    timeout: float
    wake: bool
    start_if_stopped: bool
    capacity: int | None


class WaitParameters(TypedDict, total=False):
    """The keyword parameters of :func:`wake_and_wait` (documented there), all optional."""

    region_name: str | None
    endpoint_url: str | None
    dsn: str | None
    engine: str | None
    host: str | None
    port: int | None
    user: str | None
    password: str | None
    database: str | None
    iam: bool
    managed_password: bool
    ssl: SslSetting
    probe: Literal["connection", "data-api"]
    instances: Literal["writer", "reader", "all"]
    data_api_secret_arn: str | None
    timeout: float
    connect_timeout: float
    describe_interval: float
    stopped_grace: float
    wake: bool
    start_if_stopped: bool
    capacity: int | None


#: The defaults of :class:`WaitParameters` that are not ``None``.
_DEFAULTS: dict[str, object] = {
    "iam": False,
    "managed_password": False,
    "probe": "connection",
    "instances": "writer",
    "timeout": 600,
    "connect_timeout": 30,
    "describe_interval": 10,
    "stopped_grace": 60,
    "wake": True,
    "start_if_stopped": True,
}


def build_wait_settings(db_cluster_identifier: object, **parameters: Unpack[WaitParameters]) -> WaitSettings:
    """Validate every parameter of :func:`wake_and_wait` before any I/O.

    :param db_cluster_identifier: the cluster identifier or ARN.
    :param parameters: the keyword parameters of :func:`wake_and_wait`.
    :raises TypeError: for a keyword :func:`wake_and_wait` does not take.
    :raises InvalidParameterError: naming the parameter, the value and the fix.
    """
    unknown = sorted(set(parameters) - set(WaitParameters.__annotations__))
    if unknown:
        raise TypeError(f"wake_and_wait() got unexpected keyword argument(s): {', '.join(unknown)}")
    given: dict[str, Any] = {**_DEFAULTS, **parameters}
    value = given.get
    ssl = value("ssl")
    if ssl is not None and not isinstance(ssl, bool | str) and not _is_ssl_context(ssl):
        raise InvalidParameterError(
            "ssl", ssl, "must be an ssl.SSLContext, a bool, an sslmode string or None"
        )
    if isinstance(ssl, str) and ssl not in SSL_MODES:
        # Otherwise only the driver would say so, after the wake and a describe.
        raise InvalidParameterError(
            "ssl", ssl, f"must be one of {list(SSL_MODES)}, a bool or an ssl.SSLContext"
        )
    password = value("password")
    if password is not None and not isinstance(password, str):
        raise InvalidParameterError("password", "***", "must be a string or None")
    parsed = parse_dsn(value("dsn")) if value("dsn") is not None else None
    engine_family = validate_engine(value("engine"))
    if parsed is not None:
        if engine_family is not None and engine_family != parsed.engine:
            raise InvalidParameterError(
                "engine", value("engine"), f"conflicts with the dsn's scheme ({parsed.engine})"
            )
        engine_family = parsed.engine
    # WaitRequest validates the identifier (an ARN gives its region), the probe and its secret,
    # the timings and the database.
    database = validate_optional_name(value("database"), "database") or (parsed.database if parsed else None)
    request = WaitRequest(
        db_cluster_identifier=db_cluster_identifier,  # type: ignore[arg-type]  # WaitRequest validates it
        region_name=value("region_name"),
        probe=given["probe"],
        connect_timeout=given["connect_timeout"],
        describe_interval=given["describe_interval"],
        stopped_grace=given["stopped_grace"],
        data_api_secret_arn=value("data_api_secret_arn"),
        database=database,
        instances=given["instances"],
    )
    use_iam = validate_bool(value("iam"), "iam")
    managed = validate_bool(value("managed_password"), "managed_password")
    secret = password if password is not None else (parsed.password if parsed else None)
    if use_iam and secret is not None:
        raise InvalidParameterError("password", "***", "give either a password or iam=True, not both")
    if managed and (use_iam or secret is not None):
        raise InvalidParameterError(
            "managed_password", True, "the managed secret is the password: give no password and no iam=True"
        )
    user = validate_optional_name(value("user"), "user") or (parsed.user if parsed else None)
    if request.probe == "connection" and user is None and not managed:
        raise InvalidParameterError(
            "user",
            None,
            "the connection probe needs a database user: give it, or a DSN that names it "
            "(postgresql://USER@HOST/DB)",
        )
    login = LoginSettings(
        engine=engine_family,
        host=validate_optional_name(value("host"), "host") or (parsed.host if parsed else None),
        port=validate_port(value("port")) or (parsed.port if parsed else None),
        user=user,
        password=secret,
        database=database,
        iam=use_iam,
        ssl=ssl,
        managed_password=managed,
    )
    return WaitSettings(
        request=request,
        login=login,
        endpoint_url=validate_endpoint_url(value("endpoint_url")),
        timeout=validate_positive_seconds(value("timeout"), "timeout"),
        wake=validate_bool(value("wake"), "wake"),
        start_if_stopped=validate_bool(value("start_if_stopped"), "start_if_stopped"),
        capacity=validate_capacity(value("capacity")),
    )


def _is_ssl_context(value: object) -> bool:
    import ssl as ssl_module

    return isinstance(value, ssl_module.SSLContext)


class SessionWaitResources:
    """:class:`~airflow_aurora_wake.core.wait.WaitResources` over an aiobotocore session.

    :param settings: validated settings.
    :param session: an aiobotocore session (default: a new one from the environment).
    """

    def __init__(self, settings: WaitSettings, session: Any = None) -> None:
        if session is None:
            from aiobotocore.session import get_session

            session = get_session()
        self._session = session
        self._settings = settings

    def _client(self, service: str) -> AbstractAsyncContextManager[Any]:
        kwargs: dict[str, Any] = {}
        if self._settings.request.region_name:
            kwargs["region_name"] = self._settings.request.region_name
        if self._settings.endpoint_url:
            kwargs["endpoint_url"] = self._settings.endpoint_url
        client: AbstractAsyncContextManager[Any] = self._session.create_client(service, **kwargs)
        return client

    def rds_client(self) -> AbstractAsyncContextManager[Any]:
        """Return an aiobotocore RDS client context."""
        return self._client("rds")

    def rds_data_client(self) -> AbstractAsyncContextManager[Any]:
        """Return an aiobotocore ``rds-data`` client context."""
        return self._client("rds-data")

    async def database_target(
        self, snapshot: ClusterSnapshot, *, host: str | None = None, port: int | None = None
    ) -> DatabaseTarget:
        """Build the target: given fields first, then the cluster's writer endpoint and port.

        :param snapshot: the cluster as described.
        :param host: another endpoint of the cluster (reader endpoint, instance endpoint).
        :param port: that endpoint's port.
        """
        return build_target(
            self._settings.login,
            snapshot,
            sign_token=self._sign_token,
            read_secret=self._read_secret,
            host=host,
            port=port,
        )

    async def _read_secret(self, secret_arn: str) -> Any:
        async with self._client("secretsmanager") as client:
            return await client.get_secret_value(SecretId=secret_arn)

    async def _sign_token(self, host: str, port: int, user: str) -> str:
        async with self.rds_client() as client:
            token: str = await client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
        return token


async def wake_and_wait(
    db_cluster_identifier: str,
    *,
    log: Callable[[str], None] = _default_log,
    share_key: Hashable | None = None,
    session: Any = None,
    **parameters: Unpack[WaitParameters],
) -> ReadyReport:
    """Wake a cluster (if asleep) and wait until a real ``SELECT 1`` runs.

    :param db_cluster_identifier: the cluster identifier or ARN (whose region is used when
        ``region_name`` is not given).
    :param region_name: the AWS region (default: the environment's).
    :param endpoint_url: the RDS endpoint URL (emulators, VPC endpoints).
    :param dsn: ``postgresql://USER@HOST:PORT/DB`` or ``mysql://...``; host and port may be
        left out to use the cluster's writer endpoint.
    :param engine: ``postgresql`` or ``mysql``; default: from the dsn or the cluster.
    :param host: database host (default: the cluster's writer endpoint).
    :param port: database port (default: the cluster's port).
    :param user: database user.
    :param password: database password (never logged).
    :param database: database name.
    :param iam: authenticate with IAM database authentication tokens (needs TLS on Aurora).
    :param managed_password: log in with the cluster's managed master secret
        (``MasterUserSecret``, read from Secrets Manager; its user when none is given).
    :param ssl: TLS setting passed to the driver.
    :param probe: ``connection`` (asyncpg / aiomysql) or ``data-api``.
    :param data_api_secret_arn: the secret for ``probe="data-api"``.
    :param instances: what must answer ``SELECT 1``: ``writer`` (the cluster endpoint, the
        default), ``reader`` (the reader endpoint: on a cluster with no reader that serves, AWS
        routes it to the writer, and the report's ``note`` says so) or ``all`` (every DB instance
        from ``DescribeDBInstances``, each through its own endpoint, all serving). That endpoint
        replaces the host of ``dsn``/``host`` (an instance endpoint its port too); the login,
        the port and the TLS settings stay.
    :param timeout: seconds for wake and wait together.
    :param connect_timeout: seconds per probe attempt (a resuming instance holds the connect).
    :param describe_interval: at most one DescribeDBClusters per this many seconds while waiting.
    :param stopped_grace: seconds a stopped cluster is waited on before failing.
    :param wake: send the wake that fits the cluster first (v1 capacity, StartDBCluster); a paused
        v2 cluster is woken by the probe itself.
    :param start_if_stopped: start a stopped cluster (else fail at once).
    :param capacity: v1 capacity to request (default: the cluster's minimum valid capacity).
    :param log: receives each change of state once; never secrets.
    :param share_key: share one poller with other waits of this key in this event loop.
    :param session: an aiobotocore session (default: a new one).
    :raises InvalidParameterError: before any I/O, on a bad parameter.
    :raises ReadyTimeoutError: at the deadline, with a diagnosis.
    :raises AuroraWakeError: on anything waiting cannot fix.
    """
    started = time.time()
    settings = build_wait_settings(db_cluster_identifier, **parameters)
    deadline = started + settings.timeout
    resources = SessionWaitResources(settings, session)
    request = settings.request
    if settings.wake:
        # No nudge and no DescribeDBLogFiles: the probe that follows wakes a v2 cluster itself,
        # without a wasted hold or another IAM action.
        options = WakeOptions(
            capacity=settings.capacity, start_if_stopped=settings.start_if_stopped, probe_follows=True
        )
        try:
            async with resources.rds_client() as rds:
                result = await wake_cluster(
                    request.db_cluster_identifier,
                    options,
                    rds_client=rds,
                    region_name=request.region_name,
                    calls=RdsCalls(),
                    retry_seconds=max(1.0, min(60.0, deadline - time.time())),
                )
        except TransientError as exc:
            # RDS did not answer in time: the wait goes on (its own probe wakes a v2 cluster)
            # and its deadline decides.
            log(f"wake: not sent ({exc.verdict.reason}); waiting anyway")
        except Exception as exc:
            # Creating the client can fail before any call (no region, no credentials): say what
            # to configure, as the wait loop does, instead of a botocore traceback.
            verdict = raise_if_fatal(
                exc, where="rds", cluster=request.db_cluster_identifier, region=request.region_name
            )
            log(f"wake: not sent ({verdict.reason}); waiting anyway")
        else:
            log(f"wake: {result.action.value}: {result.detail}")
    return await wait_until_ready(request, resources, deadline=deadline, share_key=share_key, log=log)


def wake_and_wait_sync(db_cluster_identifier: str, **kwargs: Any) -> ReadyReport:
    """Run :func:`wake_and_wait` in a new event loop (for scripts and Lambdas).

    :param db_cluster_identifier: the cluster identifier or ARN.
    :param kwargs: the keyword parameters of :func:`wake_and_wait`.
    :raises RuntimeError: when called from a running event loop (use ``await wake_and_wait``).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "wake_and_wait_sync() cannot run inside an event loop: use await wake_and_wait(...)"
        )
    return asyncio.run(wake_and_wait(db_cluster_identifier, **kwargs))

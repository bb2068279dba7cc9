"""Plain-Python entry points: wake a cluster and wait until a real ``SELECT 1`` runs.

No Airflow here: a script, a Lambda or a notebook can call :func:`wake_and_wait_sync`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    ClusterDescriptionError,
    DatabaseConfigurationError,
    InvalidParameterError,
    classify_error,
)
from airflow_aurora_wake.core.probes import DatabaseTarget, SslSetting
from airflow_aurora_wake.core.rds import RdsCalls
from airflow_aurora_wake.core.validation import (
    parse_dsn,
    validate_bool,
    validate_capacity,
    validate_cluster_identifier,
    validate_endpoint_url,
    validate_engine,
    validate_non_negative_seconds,
    validate_optional_name,
    validate_port,
    validate_positive_seconds,
    validate_probe_settings,
    validate_region,
)
from airflow_aurora_wake.core.wait import ReadyReport, WaitRequest, wait_until_ready
from airflow_aurora_wake.core.wake import WakeOptions, wake_cluster

__all__ = [
    "SessionWaitResources",
    "WaitSettings",
    "build_wait_settings",
    "wake_and_wait",
    "wake_and_wait_sync",
]

logger = logging.getLogger(__name__)

_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
#: libpq's sslmode names, which both probes understand.
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: IAM tokens last 15 minutes; renew well before that.
_IAM_TOKEN_REUSE_SECONDS = 600.0


def _default_log(message: str) -> None:
    logger.info("%s", message)


@dataclass(frozen=True)
class WaitSettings:
    """Validated parameters of :func:`wake_and_wait`.

    :param request: the wait request.
    :param engine: the engine family, if given (else inferred from the cluster).
    :param host: the database host, if given (else the cluster's writer endpoint).
    :param port: the database port, if given (else the cluster's port).
    :param user: the login.
    :param password: the password (never in repr).
    :param database: the database.
    :param iam: use IAM database authentication tokens.
    :param ssl: TLS setting passed to the driver.
    :param endpoint_url: the RDS endpoint URL, for emulators and VPC endpoints.
    :param timeout: seconds for wake and wait together.
    :param wake: send the wake that fits the cluster before waiting.
    :param start_if_stopped: start a stopped cluster.
    :param capacity: v1 capacity to request.
    """

    request: WaitRequest
    engine: Literal["postgresql", "mysql"] | None
    host: str | None
    port: int | None
    user: str | None
    password: str | None = field(repr=False)
    database: str | None
    iam: bool
    ssl: SslSetting
    endpoint_url: str | None
    timeout: float
    wake: bool
    start_if_stopped: bool
    capacity: int | None


def build_wait_settings(
    db_cluster_identifier: object,
    *,
    region_name: object = None,
    endpoint_url: object = None,
    dsn: object = None,
    engine: object = None,
    host: object = None,
    port: object = None,
    user: object = None,
    password: object = None,
    database: object = None,
    iam: object = False,
    ssl: object = None,
    probe: object = "connection",
    data_api_secret_arn: object = None,
    timeout: object = 600,
    connect_timeout: object = 30,
    describe_interval: object = 10,
    stopped_grace: object = 60,
    wake: object = True,
    start_if_stopped: object = True,
    capacity: object = None,
) -> WaitSettings:
    """Validate every parameter of :func:`wake_and_wait` before any I/O.

    The parameters are those of :func:`wake_and_wait`.

    :param db_cluster_identifier: the cluster identifier or ARN.
    :raises InvalidParameterError: naming the parameter, the value and the fix.
    """
    reference = validate_cluster_identifier(db_cluster_identifier)
    region = validate_region(region_name) or reference.region_from_arn
    if reference.region_from_arn and region != reference.region_from_arn:
        raise InvalidParameterError(
            "region_name",
            region,
            f"the cluster ARN is in {reference.region_from_arn}: pass region_name="
            f"{reference.region_from_arn!r} or None",
        )
    endpoint = validate_endpoint_url(endpoint_url)
    probe_kind, secret_arn = validate_probe_settings(probe, data_api_secret_arn)
    use_iam = validate_bool(iam, "iam")
    if password is not None and not isinstance(password, str):
        raise InvalidParameterError("password", "***", "must be a string or None")
    if ssl is not None and not isinstance(ssl, bool | str) and not _is_ssl_context(ssl):
        raise InvalidParameterError(
            "ssl", ssl, "must be an ssl.SSLContext, a bool, an sslmode string or None"
        )
    if isinstance(ssl, str) and ssl not in _SSL_MODES:
        # Otherwise only the driver would say so, after the wake and a describe.
        raise InvalidParameterError(
            "ssl", ssl, f"must be one of {list(_SSL_MODES)}, a bool or an ssl.SSLContext"
        )
    parsed = parse_dsn(dsn) if dsn is not None else None
    engine_family = validate_engine(engine)
    if parsed is not None:
        if engine_family is not None and engine_family != parsed.engine:
            raise InvalidParameterError(
                "engine", engine, f"conflicts with the dsn's scheme ({parsed.engine})"
            )
        engine_family = parsed.engine
    host_name = validate_optional_name(host, "host") or (parsed.host if parsed else None)
    port_number = validate_port(port) or (parsed.port if parsed else None)
    user_name = validate_optional_name(user, "user") or (parsed.user if parsed else None)
    database_name = validate_optional_name(database, "database") or (parsed.database if parsed else None)
    secret = password if password is not None else (parsed.password if parsed else None)
    if use_iam and secret is not None:
        raise InvalidParameterError("password", "***", "give either a password or iam=True, not both")
    if probe_kind == "connection" and user_name is None:
        raise InvalidParameterError(
            "user",
            None,
            "probe='connection' needs a database user: pass user= or dsn='postgresql://USER@HOST/DB'",
        )
    total = validate_positive_seconds(timeout, "timeout")
    request = WaitRequest(
        db_cluster_identifier=reference.identifier,
        region_name=region,
        probe=probe_kind,
        connect_timeout=validate_positive_seconds(connect_timeout, "connect_timeout"),
        describe_interval=validate_positive_seconds(describe_interval, "describe_interval"),
        stopped_grace=validate_non_negative_seconds(stopped_grace, "stopped_grace"),
        data_api_secret_arn=secret_arn,
        database=database_name,
    )
    return WaitSettings(
        request=request,
        engine=engine_family,
        host=host_name,
        port=port_number,
        user=user_name,
        password=secret,
        database=database_name,
        iam=use_iam,
        ssl=ssl,  # type: ignore[arg-type]  # checked above
        endpoint_url=endpoint,
        timeout=total,
        wake=validate_bool(wake, "wake"),
        start_if_stopped=validate_bool(start_if_stopped, "start_if_stopped"),
        capacity=validate_capacity(capacity),
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
        self._token: tuple[float, str] | None = None

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

    async def database_target(self, snapshot: ClusterSnapshot) -> DatabaseTarget:
        """Build the target: given fields first, then the cluster's writer endpoint and port.

        :param snapshot: the cluster as described.
        """
        settings = self._settings
        engine = settings.engine or snapshot.engine_family
        if engine is None:
            raise DatabaseConfigurationError(
                f"DB cluster {snapshot.identifier!r} runs engine {snapshot.engine!r}, which this provider "
                "cannot probe: only Aurora PostgreSQL and Aurora MySQL are supported"
            )
        host = settings.host or snapshot.endpoint
        if not host:
            raise ClusterDescriptionError(
                f"DescribeDBClusters gave no Endpoint for {snapshot.identifier!r}: pass host= explicitly"
            )
        port = settings.port or snapshot.port or _DEFAULT_PORTS[engine]
        assert settings.user is not None  # validated for the connection probe
        provider: Callable[[], Awaitable[str]] | None = None
        if settings.iam:
            provider = self._iam_token_provider(host, port, settings.user)
        return DatabaseTarget(
            engine=engine,
            host=host,
            port=port,
            user=settings.user,
            database=settings.database,
            password=settings.password,
            password_provider=provider,
            ssl=settings.ssl,
        )

    def _iam_token_provider(self, host: str, port: int, user: str) -> Callable[[], Awaitable[str]]:
        async def provide() -> str:
            now = time.monotonic()
            if self._token is not None and now - self._token[0] < _IAM_TOKEN_REUSE_SECONDS:
                return self._token[1]
            async with self.rds_client() as client:
                token: str = await client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
            self._token = (now, token)
            return token

        return provide


async def wake_and_wait(
    db_cluster_identifier: str,
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    dsn: str | None = None,
    engine: str | None = None,
    host: str | None = None,
    port: int | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    iam: bool = False,
    ssl: SslSetting = None,
    probe: Literal["connection", "data-api"] = "connection",
    data_api_secret_arn: str | None = None,
    timeout: float = 600,
    connect_timeout: float = 30,
    describe_interval: float = 10,
    stopped_grace: float = 60,
    wake: bool = True,
    start_if_stopped: bool = True,
    capacity: int | None = None,
    log: Callable[[str], None] = _default_log,
    share_key: Hashable | None = None,
    session: Any = None,
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
    :param ssl: TLS setting passed to the driver.
    :param probe: ``connection`` (asyncpg / aiomysql) or ``data-api``.
    :param data_api_secret_arn: the secret for ``probe="data-api"``.
    :param timeout: seconds for wake and wait together.
    :param connect_timeout: seconds per probe attempt (a resuming instance holds the connect).
    :param describe_interval: at most one DescribeDBClusters per this many seconds while waiting.
    :param stopped_grace: seconds a stopped cluster is waited on before failing.
    :param wake: send the wake that fits the cluster first (v1 capacity, StartDBCluster).
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
    settings = build_wait_settings(
        db_cluster_identifier,
        region_name=region_name,
        endpoint_url=endpoint_url,
        dsn=dsn,
        engine=engine,
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        iam=iam,
        ssl=ssl,
        probe=probe,
        data_api_secret_arn=data_api_secret_arn,
        timeout=timeout,
        connect_timeout=connect_timeout,
        describe_interval=describe_interval,
        stopped_grace=stopped_grace,
        wake=wake,
        start_if_stopped=start_if_stopped,
        capacity=capacity,
    )
    deadline = started + settings.timeout
    resources = SessionWaitResources(settings, session)
    request = settings.request
    if settings.wake:
        # No nudge: the probe that follows wakes a v2 cluster itself, without a wasted hold.
        options = WakeOptions(capacity=settings.capacity, start_if_stopped=settings.start_if_stopped)
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
        except AuroraWakeError:
            raise
        except Exception as exc:
            # Creating the client can fail before any call (no region, no credentials): say what
            # to configure, as the wait loop does, instead of a botocore traceback.
            verdict = classify_error(
                exc, where="rds", cluster=request.db_cluster_identifier, region=request.region_name
            )
            if verdict.retry or verdict.error is None:
                raise
            raise verdict.error from None
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

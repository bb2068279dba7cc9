"""The one place where login settings and a described cluster become a :class:`DatabaseTarget`.

The Airflow hook (from an Airflow connection) and the plain-Python API (from parameters) look
their settings up in their own way and then both call :func:`build_target`, so the rules are
the same on every path: which host and port, which errors, how IAM tokens are made, and the
log filter that keeps a token out of botocore's DEBUG lines.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.engines import DEFAULT_PORTS, EngineFamily
from airflow_aurora_wake.core.errors import DatabaseConfigurationError
from airflow_aurora_wake.core.probes import DatabaseTarget, SslSetting, tls_required
from airflow_aurora_wake.core.secrets import ManagedLogin, SecretReader

__all__ = [
    "LoginSettings",
    "TokenSigner",
    "build_target",
    "check_engine",
    "hide_presigned_signatures",
    "iam_tls",
    "iam_token_provider",
    "managed_login",
]

#: ``sign(host, port, user)`` returns an IAM database authentication token (a local SigV4
#: presign, e.g. aiobotocore's ``generate_db_auth_token``).
TokenSigner = Callable[[str, int, str], Awaitable[str]]


@dataclass(frozen=True)
class LoginSettings:
    """What the user configured for the database login; ``None`` fields come from the cluster.

    :param engine: the engine family the settings are for (``None``: the cluster's).
    :param host: the host (``None``: the cluster's writer endpoint).
    :param port: the port (``None``: the cluster's port with its endpoint, else the engine default).
    :param user: the login.
    :param password: the password (never in repr); ignored with ``iam``.
    :param database: the database (``None``: the driver's default).
    :param iam: authenticate with an IAM token made for every connection attempt.
    :param ssl: the TLS setting for the driver (see :class:`DatabaseTarget`).
    :param conn_id: the Airflow connection the settings came from, for messages.
    :param origin: how messages name these settings, e.g. ``connection 'db' (type 'postgres')``.
    :param managed_password: the password is the cluster's managed master secret
        (``MasterUserSecret``), read from Secrets Manager; ``password`` is then ignored, and
        without a ``user`` the secret's ``username`` logs in.
    """

    engine: EngineFamily | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    iam: bool = False
    ssl: SslSetting = None
    conn_id: str | None = None
    origin: str = "the database settings"
    managed_password: bool = False


def build_target(
    settings: LoginSettings,
    snapshot: ClusterSnapshot,
    *,
    sign_token: TokenSigner | None,
    read_secret: SecretReader | None = None,
    host: str | None = None,
    port: int | None = None,
) -> DatabaseTarget:
    """Return where and how to connect to the cluster's database.

    An explicit host without a port means the engine's default port, as every client of that
    host would use; the cluster's own port goes with the cluster's own endpoint.

    :param settings: the login settings.
    :param snapshot: the cluster as described.
    :param sign_token: makes IAM tokens; required when ``settings.iam``.
    :param read_secret: reads a Secrets Manager secret; required when ``settings.managed_password``.
    :param host: connect to this endpoint of the cluster instead (the reader endpoint, an instance
        endpoint), whatever host the settings name: the credentials and TLS settings stay, and an
        IAM token is signed for this host.
    :param port: the port of ``host`` (``None``: the settings' port, else the cluster's).
    :raises DatabaseConfigurationError: the engine cannot be probed or does not match the
        settings, no host or user is known, IAM is asked for with a TLS setting that allows
        clear text, or the managed password of a cluster that has none.
    """
    family = check_engine(snapshot, settings.engine, settings.origin)
    endpoint_host = host
    host = endpoint_host or settings.host or snapshot.endpoint
    if not host:
        raise DatabaseConfigurationError(
            f"{settings.origin} has no host and DB cluster {snapshot.identifier!r} reports no writer "
            "endpoint: set the host to the cluster endpoint"
        )
    # The cluster's port goes with the cluster's endpoints, an explicit host's is the engine's.
    cluster_port = snapshot.port if endpoint_host or not settings.host else None
    port = port or settings.port or cluster_port or DEFAULT_PORTS[family]
    managed = managed_login(settings, snapshot, read_secret) if settings.managed_password else None
    if not settings.user and managed is None:
        raise DatabaseConfigurationError(f"{settings.origin} has no login: set the database user")
    user = settings.user or ""  # empty: the managed secret's user (never with IAM)
    password_provider = None
    if settings.iam:
        if sign_token is None:
            raise DatabaseConfigurationError(
                f"{settings.origin} asks for IAM authentication, which needs AWS"
            )
        password_provider = iam_token_provider(sign_token, host, port, user)
    return DatabaseTarget(
        engine=family,
        host=host,
        port=port,
        user=user,
        database=settings.database,
        password=None if settings.iam or managed is not None else settings.password,
        password_provider=password_provider,
        ssl=iam_tls(settings, family) if settings.iam else settings.ssl,
        conn_id=settings.conn_id,
        managed_login=managed,
    )


def managed_login(
    settings: LoginSettings, snapshot: ClusterSnapshot, read_secret: SecretReader | None
) -> ManagedLogin:
    """Return the cluster's managed master secret as the login of ``settings``.

    :param settings: the login settings (``managed_password`` set).
    :param snapshot: the cluster as described: its ``MasterUserSecret``.
    :param read_secret: reads the secret.
    :raises DatabaseConfigurationError: IAM asked for too, no managed secret on the cluster, or
        nothing to read it with.
    """
    if settings.iam:
        raise DatabaseConfigurationError(
            f"{settings.origin} asks for both IAM authentication and the cluster's managed master "
            "password: keep one of iam and aurora_managed_password in its extra"
        )
    arn = snapshot.master_user_secret_arn
    if arn is None:
        raise DatabaseConfigurationError(
            f"{settings.origin} takes its password from the managed master secret of DB cluster "
            f"{snapshot.identifier!r}, which has none (no MasterUserSecret in DescribeDBClusters): "
            "let RDS manage the master password (ManageMasterUserPassword), or remove "
            "aurora_managed_password from the extra and give the password"
        )
    if read_secret is None:
        raise DatabaseConfigurationError(
            f"{settings.origin} takes its password from the cluster's managed master secret, "
            "which needs AWS (secretsmanager:GetSecretValue)"
        )
    return ManagedLogin(arn, read_secret, cluster=snapshot.identifier)


def iam_tls(settings: LoginSettings, family: EngineFamily) -> SslSetting:
    """Return the TLS setting of an IAM login: TLS by default, never one that allows clear text.

    AWS refuses IAM logins without TLS, and a token sent without it is exposed (MySQL sends it
    as plain text with ``mysql_clear_password``). ``require`` makes asyncpg refuse a server that
    declines TLS; for MySQL ``True`` is a non-verifying context, which the probe never lets go
    without TLS.

    :param settings: the login settings (``iam`` set).
    :param family: the engine family.
    :raises DatabaseConfigurationError: naming the setting and the fix.
    """
    if settings.ssl is None:
        return "require" if family == "postgresql" else True
    if tls_required(settings.ssl):
        return settings.ssl
    fix = "sslmode to require, verify-ca or verify-full" if family == "postgresql" else "ssl to true or a CA"
    raise DatabaseConfigurationError(
        f"{settings.origin} uses IAM authentication with the TLS setting {settings.ssl!r}, which "
        "lets the token travel without TLS, and AWS refuses IAM logins without TLS: remove the "
        f"setting (IAM logins use TLS by default) or set {fix}"
    )


def check_engine(snapshot: ClusterSnapshot, engine: EngineFamily | None, origin: str) -> EngineFamily:
    """Return the cluster's engine family, failing when it cannot be probed or is not ``engine``.

    :param snapshot: the cluster as described.
    :param engine: the family the login is for (``None``: any).
    :param origin: how the message names the login.
    :raises DatabaseConfigurationError: naming both engines.
    """
    family = snapshot.engine_family
    if family is None:
        raise DatabaseConfigurationError(
            f"DB cluster {snapshot.identifier!r} runs engine {snapshot.engine!r}, which this provider "
            "cannot probe: only Aurora PostgreSQL and Aurora MySQL are supported"
        )
    if engine is not None and engine != family:
        raise DatabaseConfigurationError(
            f"{origin} is for {engine} but DB cluster {snapshot.identifier!r} runs "
            f"{snapshot.engine!r}: point it at the cluster's {family} database"
        )
    return family


def iam_token_provider(
    sign_token: TokenSigner, host: str, port: int, user: str
) -> Callable[[], Awaitable[str]]:
    """Return a coroutine function making a fresh IAM token for each connection attempt.

    Fresh rather than cached: signing is local and costs no API call, and a fresh token can
    never be used past its 15 minutes.

    :param sign_token: makes the token.
    :param host: the host the token is signed for.
    :param port: the port.
    :param user: the database user.
    """
    hide_presigned_signatures()

    async def provide_token() -> str:
        return await sign_token(host, port, user)

    return provide_token


class _DropSignatures(logging.Filter):
    """Drop botocore's DEBUG ``Signature:`` lines: for a presigned IAM token, that is the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Signature:"))


def hide_presigned_signatures() -> None:
    """Keep IAM token signatures out of logs even when botocore logs at DEBUG (idempotent).

    ``botocore.auth`` logs every SigV4 signature at DEBUG, including the one that makes an
    IAM database token; with the canonical request logged next to it, the token could be
    rebuilt from the log. Only those lines are dropped, and only once IAM tokens are in use.
    """
    botocore_auth = logging.getLogger("botocore.auth")
    if not any(isinstance(existing, _DropSignatures) for existing in botocore_auth.filters):
        botocore_auth.addFilter(_DropSignatures())

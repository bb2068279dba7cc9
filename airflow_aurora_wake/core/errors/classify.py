"""Decide retry or fail for any exception a wait meets: :func:`classify_error`.

RDS and Data API errors (botocore), database driver errors (asyncpg, PyMySQL/aiomysql) and
network errors each have their table below; :func:`raise_if_fatal` turns a verdict into the
exception to raise.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_aurora_wake.core.errors.exceptions import (
    AuroraWakeError,
    AwsApiError,
    AwsCredentialsError,
    AwsPermissionError,
    ClusterNotFoundError,
    ClusterStateError,
    DataApiNotEnabledError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
    DatabaseProbeError,
    ErrorVerdict,
    InvalidParameterError,
)
from airflow_aurora_wake.core.errors.redaction import redact, safe_error_text

__all__ = ["aws_error_code", "classify_error", "raise_if_fatal"]

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
PERMISSION_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
# Data API errors that mean "the database is not ready yet": the call started or waits on a resume.
DATA_API_RETRY_CODES = frozenset(
    {"DatabaseResumingException", "DatabaseUnavailableException", "ServiceUnavailableError"}
)
# PostgreSQL SQLSTATE classes that mean "not ready yet": 08 connection exception, 53 insufficient
# resources (53300 too many connections), 57P0x shutdown / starting up, 58 system error.
_PG_RETRY_PREFIXES = ("08", "53", "57P", "58")
_PG_RETRY_REASONS = {
    "57P03": "57P03 the database system is starting up",
    "53300": "53300 too many connections",
    "57P01": "57P01 admin shutdown",
    "57P02": "57P02 crash shutdown",
}
# MySQL login refusals: 1045 access denied, 1698 access denied without password, 1130 host not
# allowed. (1044, "access denied to database", is what a non-admin user gets for a database that
# does not exist too: it is reported with the database name, see _classify_mysql.)
_MYSQL_AUTH_CODES = frozenset({1045, 1698, 1130})
# MySQL client and server codes that mean "not ready yet".
_MYSQL_RETRY_CODES = {
    1040: "1040 too many connections",
    1053: "1053 server shutdown in progress",
    1205: "1205 lock wait timeout",
    2002: "2002 cannot connect to the server socket",
    2003: "2003 cannot connect to the server",
    2006: "2006 server has gone away",
    2013: "2013 lost connection during query",
    2055: "2055 lost connection",
}


def _action_name(where: str) -> str:
    """``rds:DescribeDBClusters`` -> ``rds:DescribeDBClusters``; ``rds-data`` -> its action."""
    if where == "rds-data":
        return "rds-data:ExecuteStatement"
    return where


def _target_label(target: str | None) -> str:
    return target or "the database connection"


def classify_error(
    exc: BaseException,
    *,
    where: str,
    attempt: int = 1,
    cluster: str | None = None,
    region: str | None = None,
    target: str | None = None,
    secrets: Iterable[str | None] = (),
) -> ErrorVerdict:
    """Decide whether ``exc`` can still pass (retry) or must fail the wait now.

    :param exc: the exception raised by an RDS call, a Data API call or a database driver.
    :param where: ``rds:<Action>``, ``rds-data``, ``postgresql`` or ``mysql``.
    :param attempt: 1 for the first attempt; ``28000`` is retried once, then fails.
    :param cluster: the cluster identifier, for messages.
    :param region: the region, for messages.
    :param target: a safe description of the database connection (no password), for messages.
    :param secrets: exact secret strings to keep out of the reason text.
    :returns: the verdict; when ``retry`` is False ``error`` is the error to raise (``None``
        means "not an error the core knows: re-raise the original").
    """
    if isinstance(exc, AuroraWakeError):
        return ErrorVerdict(retry=False, reason=safe_error_text(exc, secrets), error=exc)
    if not isinstance(exc, Exception):  # CancelledError, KeyboardInterrupt: never swallowed
        return ErrorVerdict(retry=False, reason=type(exc).__name__)
    code, http_status, message = _aws_error_parts(exc)
    if code is not None:
        return _classify_aws(code, http_status, message, where=where, cluster=cluster, region=region)
    botocore_verdict = _classify_botocore_local(exc)
    if botocore_verdict is not None:
        return botocore_verdict
    driver_verdict = _classify_driver(exc, attempt=attempt, target=target, secrets=secrets)
    if driver_verdict is not None:
        return driver_verdict
    return _classify_network(exc, target=target, secrets=secrets)


def raise_if_fatal(exc: BaseException, **context: Any) -> ErrorVerdict:
    """Classify ``exc`` and raise it as the core's error unless waiting can still succeed.

    Call it in the ``except`` block that caught ``exc``.

    :param exc: the exception caught.
    :param context: the keyword arguments of :func:`classify_error` (``where`` is required).

    :returns: the verdict, whose ``retry`` is True (``throttled`` and ``reason`` say how to back off).
    :raises AuroraWakeError: the verdict's error, without ``exc`` chained to it (its message
        already says what to fix, and ``exc``'s text may hold a secret).
    :raises BaseException: ``exc`` itself when the core does not know it (a programming error,
        a cancellation).
    """
    verdict = classify_error(exc, **context)
    if verdict.retry:
        return verdict
    if verdict.error is None:
        raise exc
    raise verdict.error from None


def _aws_error_parts(exc: BaseException) -> tuple[str | None, int | None, str]:
    """Read code, HTTP status and message from a botocore ``ClientError`` (duck-typed)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None, None, ""
    error = response.get("Error")
    if not isinstance(error, Mapping) or not error.get("Code"):
        return None, None, ""
    metadata = response.get("ResponseMetadata")
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, Mapping) else None
    return (
        str(error.get("Code")),
        status if isinstance(status, int) else None,
        redact(str(error.get("Message") or "")),
    )


def _classify_aws(
    code: str,
    http_status: int | None,
    message: str,
    *,
    where: str,
    cluster: str | None,
    region: str | None,
) -> ErrorVerdict:
    reason = f"{code}: {message}" if message else code
    if code in THROTTLING_CODES:
        return ErrorVerdict(retry=True, reason=code, throttled=True)
    if code == "DBClusterNotFoundFault":
        error: AuroraWakeError = ClusterNotFoundError(cluster or "(unknown)", region)
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code in PERMISSION_CODES:
        return ErrorVerdict(retry=False, reason=code, error=AwsPermissionError(_action_name(where), message))
    if code in CREDENTIAL_CODES:
        error = AwsCredentialsError(
            f"AWS rejected the credentials of the AWS connection ({code}): check the access key, "
            "secret key, session token and their expiry"
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code == "HttpEndpointNotEnabledException" or (
        code == "BadRequestException" and "httpendpoint is not enabled" in message.lower()
    ):
        error = DataApiNotEnabledError(
            f"the Data API is not enabled on DB cluster {cluster!r}: enable the Data API (HTTP "
            "endpoint) on the cluster, or use probe='connection'"
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code in DATA_API_RETRY_CODES:
        return ErrorVerdict(retry=True, reason=f"{code} (the database is resuming)")
    if where == "rds-data":
        return _classify_data_api(code, message, cluster=cluster)
    if code in ("InvalidDBClusterCapacityFault", "InvalidParameterValue", "InvalidParameterCombination"):
        parameter = "capacity" if where == "rds:ModifyCurrentDBClusterCapacity" else where
        error = InvalidParameterError(parameter, message or code, f"AWS rejected the request ({code})")
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code == "InvalidDBClusterStateFault":
        error = ClusterStateError(cluster or "(unknown)", "in a state that refuses " + where, message or None)
        return ErrorVerdict(retry=False, reason=code, error=error)
    if (http_status is not None and http_status >= 500) or code in (
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    ):
        return ErrorVerdict(retry=True, reason=f"AWS {http_status or ''} {code}".replace("  ", " "))
    error = AwsApiError(f"{where} failed for DB cluster {cluster!r}: {reason}")
    return ErrorVerdict(retry=False, reason=code, error=error)


def _classify_data_api(code: str, message: str, *, cluster: str | None) -> ErrorVerdict:
    lowered = message.lower()
    if code == "ForbiddenException":
        error: AuroraWakeError = AwsPermissionError(
            "rds-data:ExecuteStatement / secretsmanager:GetSecretValue", message
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code == "DatabaseNotFoundException" or ("does not exist" in lowered and "database" in lowered):
        error = DatabaseConfigurationError(
            f"the Data API could not find the database of DB cluster {cluster!r} ({message}): "
            "check the database name"
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if "password authentication failed" in lowered or "access denied" in lowered:
        error = DatabaseAuthenticationError(
            f"the database of DB cluster {cluster!r} answered the Data API, so it is awake, but "
            "rejected the login: check the user and password stored in the Data API secret"
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code in ("StatementTimeoutException", "InternalServerErrorException"):
        return ErrorVerdict(retry=True, reason=code)
    error = AwsApiError(
        f"the Data API call for DB cluster {cluster!r} failed: {code}: {message}; check the "
        "secret ARN, the database name and the cluster ARN"
    )
    return ErrorVerdict(retry=False, reason=code, error=error)


def _classify_botocore_local(exc: Exception) -> ErrorVerdict | None:
    """botocore errors raised before or instead of an HTTP answer."""
    try:
        from botocore import exceptions as botocore_exceptions
    except ImportError:  # pragma: no cover - botocore is a dependency
        return None
    error: AuroraWakeError
    if isinstance(exc, botocore_exceptions.NoCredentialsError | botocore_exceptions.PartialCredentialsError):
        error = AwsCredentialsError(
            f"no usable AWS credentials were found ({type(exc).__name__}): configure the AWS "
            "connection (or the environment / instance profile)"
        )
        return ErrorVerdict(retry=False, reason=type(exc).__name__, error=error)
    if isinstance(exc, botocore_exceptions.NoRegionError):
        error = InvalidParameterError(
            "region_name", None, "no AWS region is configured: pass region_name or set AWS_DEFAULT_REGION"
        )
        return ErrorVerdict(retry=False, reason="NoRegionError", error=error)
    if isinstance(
        exc,
        botocore_exceptions.EndpointConnectionError
        | botocore_exceptions.ConnectionClosedError
        | botocore_exceptions.ConnectTimeoutError
        | botocore_exceptions.ReadTimeoutError
        | botocore_exceptions.HTTPClientError,
    ):
        return ErrorVerdict(retry=True, reason=f"AWS endpoint unreachable ({type(exc).__name__})")
    if isinstance(exc, botocore_exceptions.ParamValidationError):
        error = InvalidParameterError("request", safe_error_text(exc), "the RDS request was malformed")
        return ErrorVerdict(retry=False, reason="ParamValidationError", error=error)
    return None


def _classify_driver(
    exc: Exception, *, attempt: int, target: str | None, secrets: Iterable[str | None]
) -> ErrorVerdict | None:
    """asyncpg and PyMySQL/aiomysql errors; ``None`` when ``exc`` is neither."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and type(exc).__module__.startswith("asyncpg"):
        return _classify_postgres(exc, sqlstate, attempt=attempt, target=target, secrets=secrets)
    if type(exc).__module__.startswith("asyncpg"):
        import asyncpg

        if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError):
            return ErrorVerdict(retry=True, reason="connection closed by the server")
        if isinstance(exc, asyncpg.exceptions.ClientConfigurationError):
            error: AuroraWakeError = DatabaseConfigurationError(
                f"the PostgreSQL client settings of {_target_label(target)} are invalid: "
                f"{safe_error_text(exc, secrets)}"
            )
            return ErrorVerdict(retry=False, reason="client configuration", error=error)
        error = DatabaseProbeError(
            f"unexpected PostgreSQL client error for {_target_label(target)}: {safe_error_text(exc, secrets)}"
        )
        return ErrorVerdict(retry=False, reason=type(exc).__name__, error=error)
    try:
        import pymysql
    except ImportError:  # pragma: no cover - aiomysql depends on PyMySQL
        return None
    if isinstance(exc, pymysql.err.MySQLError):
        return _classify_mysql(exc, target=target, secrets=secrets)
    return None


def _classify_postgres(
    exc: Exception, sqlstate: str, *, attempt: int, target: str | None, secrets: Iterable[str | None]
) -> ErrorVerdict:
    label = _target_label(target)
    text = safe_error_text(exc, secrets)
    if sqlstate == "28000" and attempt < 2:
        # One open report shows a spurious "no pg_hba.conf entry" during a v2 resume that went
        # away on retry (UNCONFIRMED): allow exactly one retry before calling it fatal.
        return ErrorVerdict(retry=True, reason="28000 rejected the login (retrying once)")
    if sqlstate in ("28P01", "28000"):
        error: AuroraWakeError = DatabaseAuthenticationError(
            f"the server answered, so it is awake: check the login (user, password or IAM "
            f"token, pg_hba / TLS settings) of connection {label} ({sqlstate}: {text})"
        )
        return ErrorVerdict(retry=False, reason=f"{sqlstate} login rejected", error=error)
    if sqlstate == "3D000":
        error = DatabaseConfigurationError(
            f"the database of connection {label} does not exist ({text}): fix the database name"
        )
        return ErrorVerdict(retry=False, reason="3D000 unknown database", error=error)
    if sqlstate.startswith(_PG_RETRY_PREFIXES):
        return ErrorVerdict(retry=True, reason=_PG_RETRY_REASONS.get(sqlstate, f"{sqlstate} {text}"))
    error = DatabaseProbeError(f"connection {label} failed with SQLSTATE {sqlstate}: {text}")
    return ErrorVerdict(retry=False, reason=f"SQLSTATE {sqlstate}", error=error)


def _classify_mysql(exc: Exception, *, target: str | None, secrets: Iterable[str | None]) -> ErrorVerdict:
    label = _target_label(target)
    text = safe_error_text(exc, secrets)
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code in _MYSQL_AUTH_CODES:
        error: AuroraWakeError = DatabaseAuthenticationError(
            f"the server answered, so it is awake: check the login (user, password or IAM "
            f"token, allowed hosts, database grants) of connection {label} ({code}: {text})"
        )
        return ErrorVerdict(retry=False, reason=f"{code} access denied", error=error)
    if code == 1044:
        # MySQL answers 1044 both for a database that does not exist and for one the user has no
        # grant on (it does not tell a user which databases exist): name both fixes.
        error = DatabaseConfigurationError(
            f"the server answered, so it is awake, but refused the database of connection {label}: "
            f"the database does not exist or the user has no grant on it ({text}): fix the database "
            "name, or grant the user access to it"
        )
        return ErrorVerdict(retry=False, reason="1044 database access denied", error=error)
    if code == 1049:
        error = DatabaseConfigurationError(
            f"the database of connection {label} does not exist ({text}): fix the database name"
        )
        return ErrorVerdict(retry=False, reason="1049 unknown database", error=error)
    if code in _MYSQL_RETRY_CODES:
        cause = exc.__cause__
        detail = f" ({safe_error_text(cause, secrets)})" if cause is not None else ""
        return ErrorVerdict(retry=True, reason=_MYSQL_RETRY_CODES[code] + detail)
    if "lost connection" in text.lower():
        return ErrorVerdict(retry=True, reason="lost connection")
    error = DatabaseProbeError(f"connection {label} failed: {text}")
    return ErrorVerdict(retry=False, reason=f"MySQL error {code}", error=error)


def _classify_network(exc: Exception, *, target: str | None, secrets: Iterable[str | None]) -> ErrorVerdict:
    if isinstance(exc, ssl.SSLCertVerificationError):
        error: AuroraWakeError = DatabaseConfigurationError(
            f"TLS certificate verification failed for {_target_label(target)}: "
            f"{safe_error_text(exc, secrets)}; install the RDS CA bundle or adjust the ssl setting"
        )
        return ErrorVerdict(retry=False, reason="TLS certificate verification failed", error=error)
    if isinstance(exc, socket.gaierror):
        detail = redact(str(exc.strerror or exc), secrets)
        return ErrorVerdict(retry=True, reason=f"DNS name resolution failed ({detail})")
    if isinstance(exc, ConnectionRefusedError):
        return ErrorVerdict(retry=True, reason="connection refused")
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return ErrorVerdict(retry=True, reason="connection reset")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        text = redact(str(exc), secrets) or "connection timed out"
        return ErrorVerdict(retry=True, reason=text)
    if isinstance(exc, OSError):
        return ErrorVerdict(retry=True, reason=f"network error ({safe_error_text(exc, secrets)})")
    return ErrorVerdict(retry=False, reason=type(exc).__name__)


def aws_error_code(exc: BaseException) -> str | None:
    """Return the AWS error code of a botocore ``ClientError`` (``None`` for anything else).

    :param exc: any exception.
    """
    return _aws_error_parts(exc)[0]

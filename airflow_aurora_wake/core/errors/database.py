"""What a database driver's or the network's answer means for a wait (asyncpg, PyMySQL/aiomysql).

Login refusals, TLS failures, unknown databases and host names are misconfiguration; answers a
resuming instance gives are "not ready yet". :mod:`.classify` dispatches here.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable, Mapping
from typing import TypeVar

from airflow_aurora_wake.core.errors.exceptions import (
    AuroraWakeError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
    DatabaseProbeError,
    ErrorVerdict,
)
from airflow_aurora_wake.core.errors.redaction import redact, safe_error_text

__all__ = ["classify_database", "is_password_refusal", "log_files_denied"]

E = TypeVar("E", bound=BaseException)

# getaddrinfo's "this name has no address" answers; others (EAI_AGAIN: the resolver failed) pass.
_NAME_NOT_FOUND = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if code
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
#: The answers of a server that is up and refuses the password itself: PostgreSQL 28P01
#: (invalid_password) and MySQL 1045 (access denied). Other refusals (an unknown role, pg_hba,
#: host not allowed) do not change with the password.
_PG_PASSWORD_REFUSAL = "28P01"
_MYSQL_PASSWORD_REFUSAL = 1045
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


def _target_label(target: str | None) -> str:
    return target or "the database connection"


def classify_database(
    exc: Exception,
    *,
    may_be_paused: bool,
    grace: Mapping[str, tuple[float, float]],
    target: str | None,
    secrets: Iterable[str | None],
) -> ErrorVerdict:
    """The verdict for a database driver's or the network's error.

    :param exc: the exception.
    :param may_be_paused: the cluster may be paused or resuming.
    :param grace: per grace window (``login-refused``, ``name-not-found``): (seconds spent since
        the wait's first answer tolerated under it, the window's length).
    :param target: a safe description of the database connection, for messages.
    :param secrets: exact secret strings to keep out of the reason text.
    """
    name_not_found = _wrapped(exc, socket.gaierror)
    if name_not_found is not None and name_not_found.errno in _NAME_NOT_FOUND:
        return _name_not_found_verdict(name_not_found, grace["name-not-found"], target, secrets)
    refusal = (may_be_paused, *grace["login-refused"])
    driver_verdict = _classify_driver(exc, refusal=refusal, target=target, secrets=secrets)
    if driver_verdict is not None:
        return driver_verdict
    return _classify_network(exc, target=target, secrets=secrets)


def is_password_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is a database server refusing the password (28P01, or MySQL 1045).

    What a rotated managed master password looks like to a client that read the secret a
    moment too early; everything else a login can fail with is not about the password.

    :param exc: the driver's exception.
    """
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and type(exc).__module__.startswith("asyncpg"):
        return sqlstate == _PG_PASSWORD_REFUSAL
    try:
        import pymysql
    except ImportError:  # pragma: no cover - aiomysql depends on PyMySQL
        return False
    return (
        isinstance(exc, pymysql.err.MySQLError) and bool(exc.args) and exc.args[0] == _MYSQL_PASSWORD_REFUSAL
    )


def log_files_denied(error: AuroraWakeError) -> DatabaseAuthenticationError:
    """``error``, the 28000 refusal of a cluster that cannot pause, failed at once, with the clause
    that tells how the wait could have told a resume apart.

    The wait asked ``DescribeDBLogFiles`` on its own (the caller did not ask for it), so its
    denial is not the failure: the refusal is, and the clause names the permission.

    :param error: the refusal's error.
    """
    return DatabaseAuthenticationError(
        f"{error}; granting rds:DescribeDBLogFiles lets the wait tell a resuming instance apart"
    )


def _name_not_found_verdict(
    exc: socket.gaierror, window: tuple[float, float], target: str | None, secrets: Iterable[str | None]
) -> ErrorVerdict:
    spent, grace = window
    detail = redact(str(exc.strerror or exc), secrets)
    if spent < grace:
        return ErrorVerdict(
            retry=True, reason=f"the host name does not resolve ({detail})", grace="name-not-found"
        )
    error = DatabaseConfigurationError(
        f"the host name of {_target_label(target)} has not resolved for {spent:.0f} s ({detail}): "
        "check the database host name for a typo, and that the cluster still exists"
    )
    return ErrorVerdict(retry=False, reason="the host name does not exist", error=error)


def _classify_driver(
    exc: Exception, *, refusal: tuple[bool, float, float], target: str | None, secrets: Iterable[str | None]
) -> ErrorVerdict | None:
    """asyncpg and PyMySQL/aiomysql errors; ``None`` when ``exc`` is neither."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and type(exc).__module__.startswith("asyncpg"):
        return _classify_postgres(exc, sqlstate, refusal=refusal, target=target, secrets=secrets)
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
    exc: Exception,
    sqlstate: str,
    *,
    refusal: tuple[bool, float, float],
    target: str | None,
    secrets: Iterable[str | None],
) -> ErrorVerdict:
    label = _target_label(target)
    text = safe_error_text(exc, secrets)
    may_be_paused, refused_for, window = refusal
    error: AuroraWakeError
    if sqlstate == "28000" and may_be_paused and "pg_hba.conf" in text:
        # The resuming front end's answer names pg_hba.conf; an unknown role (also 28000) does not.
        if refused_for < window:
            return ErrorVerdict(
                retry=True,
                reason="28000 login refused (a resuming cluster's front end answers so too)",
                grace="login-refused",
            )
        error = DatabaseAuthenticationError(
            f"connection {label} was refused with 28000 for {refused_for:.0f} s ({text}). Two causes "
            "give this answer: the connection's user, pg_hba or TLS settings (check the user exists "
            "and the sslmode the server requires), or the front end of a cluster resuming from 0 "
            f"ACUs, which never lasts {window:g} s: check the login settings"
        )
        return ErrorVerdict(retry=False, reason="28000 login refused", error=error)
    if sqlstate in ("28P01", "28000"):
        error = DatabaseAuthenticationError(
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
    error: AuroraWakeError
    certificate_failure = _certificate_failure(exc)
    if certificate_failure is not None:
        # aiomysql wraps a failed TLS handshake as 2003 "Can't connect", which would be retried.
        return _certificate_verdict(certificate_failure, target=target, secrets=secrets)
    if code in _MYSQL_AUTH_CODES:
        error = DatabaseAuthenticationError(
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


def _wrapped(exc: BaseException, kind: type[E]) -> E | None:
    """Return the ``kind`` exception ``exc`` is or wraps (``__cause__``/``__context__``): drivers
    wrap socket and TLS errors in their own (aiomysql's 2003)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """Return the certificate verification error ``exc`` is or wraps."""
    return _wrapped(exc, ssl.SSLCertVerificationError)


def _certificate_verdict(
    exc: ssl.SSLCertVerificationError, *, target: str | None, secrets: Iterable[str | None]
) -> ErrorVerdict:
    error = DatabaseConfigurationError(
        f"TLS certificate verification failed for {_target_label(target)}: "
        f"{safe_error_text(exc, secrets)}; install the RDS CA bundle or adjust the ssl setting"
    )
    return ErrorVerdict(retry=False, reason="TLS certificate verification failed", error=error)


def _classify_network(exc: Exception, *, target: str | None, secrets: Iterable[str | None]) -> ErrorVerdict:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate_verdict(exc, target=target, secrets=secrets)
    if isinstance(exc, ConnectionError) and "rejected SSL upgrade" in str(exc):
        # asyncpg's answer when the server declines TLS and the sslmode requires it: it stopped
        # before the startup message, so nothing was sent, and no retry will change the answer.
        error: AuroraWakeError = DatabaseConfigurationError(
            f"the PostgreSQL server of {_target_label(target)} declined TLS, but the connection's "
            "sslmode requires TLS (IAM logins use sslmode=require by default), so the password or "
            "token was not sent: check that the host is the cluster endpoint (Aurora always offers "
            "TLS), or enable ssl on the server"
        )
        return ErrorVerdict(retry=False, reason="the server declined TLS", error=error)
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

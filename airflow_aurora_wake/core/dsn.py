"""The one DSN parser: ``postgresql://user:password@host:port/db`` or ``mysql://...``.

Used by the plain-Python API, the ``wait`` command, the demo and the emulator's upstream
settings. No part of a DSN's user-info appears in an error message: the value is shown with
everything up to its last ``@`` hidden (:func:`~airflow_aurora_wake.core.errors.redact_dsn`),
since a DSN that fails to parse may have split a password that holds ``@``, ``/`` or ``:``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from airflow_aurora_wake.core.engines import ENGINE_NAMES, EngineFamily
from airflow_aurora_wake.core.errors import InvalidParameterError, redact_dsn

__all__ = ["ParsedDsn", "parse_dsn"]

_FIX = "give postgresql://USER@HOST:PORT/DATABASE or mysql://USER@HOST:PORT/DATABASE"
_AT_AFTER_HOST = (
    "an '@' after the host means the user-info was cut short by a '/', '?' or '#' in it: "
    "percent-encode those characters (and keep the password out of the DSN); "
)


@dataclass(frozen=True)
class ParsedDsn:
    """The parts of a ``postgresql://user@host:port/db`` or ``mysql://...`` DSN.

    :param engine: ``postgresql`` or ``mysql``.
    :param user: the user, if given.
    :param host: the host, if given (``None`` means the cluster's writer endpoint).
    :param port: the port, if given.
    :param database: the database, if given.
    :param password: the password embedded in the DSN, if any (never shown in repr).
    """

    engine: EngineFamily
    user: str | None
    host: str | None
    port: int | None
    database: str | None
    password: str | None = None

    def __repr__(self) -> str:
        secret = "***" if self.password else None
        return (
            f"ParsedDsn(engine={self.engine!r}, user={self.user!r}, host={self.host!r}, "
            f"port={self.port!r}, database={self.database!r}, password={secret!r})"
        )


def parse_dsn(value: object, parameter: str = "dsn") -> ParsedDsn:
    """Parse a database DSN; the password, if present, never appears in an error message.

    :param value: ``postgresql://user@host:port/db`` or ``mysql://user@host:port/db`` (also
        ``postgres://``, ``mariadb://`` and driver suffixes such as ``postgresql+asyncpg://``).
    :param parameter: the parameter name for messages.
    :raises InvalidParameterError: naming the parameter, the DSN without its user-info, and the fix.
    """
    if not isinstance(value, str):
        raise InvalidParameterError(parameter, value, _FIX)
    shown = redact_dsn(value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise InvalidParameterError(parameter, shown, _FIX) from None
    # urlsplit ends the host at the first '/', '?' or '#': a password holding one leaves its
    # tail, and the real host, in the path, query or fragment, to be shown later as a database.
    if "@" in parts.path or "@" in parts.query or "@" in parts.fragment:
        raise InvalidParameterError(parameter, shown, _AT_AFTER_HOST + _FIX)
    scheme = parts.scheme.lower().split("+", 1)[0]
    engine = ENGINE_NAMES.get(scheme)
    if engine is None:
        raise InvalidParameterError(parameter, shown, _FIX)
    database = unquote(parts.path.lstrip("/")) or None
    if database is not None and "/" in database:
        raise InvalidParameterError(parameter, shown, "the database name must not contain '/'; " + _FIX)
    return ParsedDsn(
        engine=engine,
        user=unquote(parts.username) if parts.username else None,
        host=parts.hostname or None,
        port=port,
        database=database,
        password=unquote(parts.password) if parts.password is not None else None,
    )

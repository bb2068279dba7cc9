"""The one DSN parser: ``postgresql://user:password@host:port/db`` or ``mysql://...``.

Used by the plain-Python API, the ``wait`` command and the emulator's upstream settings. A
DSN's password never appears in an error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from airflow_aurora_wake.core.engines import ENGINE_NAMES, EngineFamily
from airflow_aurora_wake.core.errors import InvalidParameterError, redact

__all__ = ["ParsedDsn", "parse_dsn"]

_FIX = "give postgresql://USER@HOST:PORT/DATABASE or mysql://USER@HOST:PORT/DATABASE"


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
    :raises InvalidParameterError: naming the parameter, the DSN without its password, and the fix.
    """
    if not isinstance(value, str):
        raise InvalidParameterError(parameter, value, _FIX)
    shown = redact(value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise InvalidParameterError(parameter, shown, _FIX) from None
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

"""Run an RDS Data API ``ExecuteStatement`` on the real upstream database.

Statements run with asyncpg or aiomysql (the package's own dependencies) on the emulator's
event loop; results are converted to the Data API's ``Field`` shapes
(``{"longValue": 1}``, ``{"stringValue": "x"}``, ``{"isNull": true}``, ...).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_aurora_wake.emulator.config import Upstream


class StatementError(Exception):
    """The database rejected the statement (the Data API answers ``BadRequestException``)."""


@dataclass(frozen=True)
class StatementResult:
    """What ``ExecuteStatement`` returns.

    :param records: rows of Data API fields.
    :param column_metadata: ``columnMetadata`` entries.
    :param number_of_records_updated: ``numberOfRecordsUpdated``.
    """

    records: list[list[dict[str, Any]]]
    column_metadata: list[dict[str, Any]]
    number_of_records_updated: int

    def as_response(self, *, include_metadata: bool, format_json: bool) -> dict[str, Any]:
        """The JSON body of the response.

        :param include_metadata: ``includeResultMetadata`` was true.
        :param format_json: ``formatRecordsAs`` was ``"JSON"``.
        """
        body: dict[str, Any] = {"numberOfRecordsUpdated": self.number_of_records_updated}
        if format_json:
            names = [column["name"] for column in self.column_metadata]
            rows = [
                {name: _plain(field) for name, field in zip(names, record, strict=False)}
                for record in self.records
            ]
            body["formattedRecords"] = json.dumps(rows)
        else:
            body["records"] = self.records
        if include_metadata:
            body["columnMetadata"] = self.column_metadata
        return body


def to_field(value: Any) -> dict[str, Any]:
    """Convert one database value to a Data API ``Field``.

    :param value: a value as returned by asyncpg or aiomysql.
    """
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"blobValue": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime.datetime):
        return {"stringValue": value.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")}
    if isinstance(value, (datetime.date, datetime.time, decimal.Decimal, uuid.UUID)):
        return {"stringValue": str(value)}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": _array(value)}
    return {"stringValue": str(value)}


def _array(values: Sequence[Any]) -> dict[str, Any]:
    if all(isinstance(item, bool) for item in values):
        return {"booleanValues": list(values)}
    if all(isinstance(item, int) and not isinstance(item, bool) for item in values):
        return {"longValues": list(values)}
    if all(isinstance(item, float) for item in values):
        return {"doubleValues": list(values)}
    return {"stringValues": [str(item) for item in values]}


def _plain(field: dict[str, Any]) -> Any:
    if field.get("isNull"):
        return None
    return next(iter(field.values()))


def from_field(value: dict[str, Any]) -> Any:
    """Convert a Data API ``Field`` parameter value to a Python value.

    :param value: for example ``{"longValue": 3}``.
    """
    if value.get("isNull"):
        return None
    for key in ("booleanValue", "longValue", "doubleValue", "stringValue"):
        if key in value:
            return value[key]
    if "blobValue" in value:
        return base64.b64decode(value["blobValue"])
    raise StatementError(f"unsupported parameter value {sorted(value)}")


_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|:([A-Za-z_][A-Za-z0-9_]*)")


def bind_parameters(sql: str, parameters: Sequence[dict[str, Any]], engine: str) -> tuple[str, list[Any]]:
    """Rewrite ``:name`` placeholders for the driver and return the positional values.

    Quoted strings and PostgreSQL ``::`` casts are left alone.

    :param sql: the statement with ``:name`` placeholders.
    :param parameters: the Data API ``parameters`` list.
    :param engine: ``"postgresql"`` (``$1``) or ``"mysql"`` (``%s``).
    """
    if not parameters:
        return sql, []
    by_name = {item["name"]: from_field(item.get("value", {})) for item in parameters}
    values: list[Any] = []
    positions: dict[str, int] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        if name not in by_name:
            raise StatementError(f"no value given for parameter :{name}")
        if engine == "postgresql":
            if name not in positions:
                values.append(by_name[name])
                positions[name] = len(values)
            return f"${positions[name]}"
        values.append(by_name[name])
        return "%s"

    if engine == "mysql":
        # aiomysql formats with %, so literal percent signs must be doubled.
        sql = sql.replace("%", "%%")
    return _TOKEN.sub(replace, sql), values


@dataclass(frozen=True)
class Statement:
    """One ``ExecuteStatement`` request: who runs which SQL.

    :param user: user name from the secret.
    :param password: password from the secret.
    :param database: database from the request (default: the upstream DSN's).
    :param sql: the statement with ``:name`` placeholders.
    :param parameters: Data API parameters.
    """

    user: str
    password: str = field(repr=False)
    database: str | None = None
    sql: str = ""
    parameters: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True)
class _Login:
    """Where and as whom a statement runs."""

    host: str
    port: int
    user: str
    password: str
    database: str | None
    timeout: float


async def execute_statement(
    upstream: Upstream, statement: Statement, timeout: float = 30.0
) -> StatementResult:
    """Run one statement on the upstream server with the secret's credentials.

    :param upstream: where the real server is.
    :param statement: the request.
    :param timeout: connect and statement timeout in seconds.
    :raises StatementError: when the server rejects the connection or the statement.
    """
    database = statement.database or upstream.database
    login = _Login(upstream.host, upstream.port, statement.user, statement.password, database, timeout)
    sql, values = bind_parameters(statement.sql, statement.parameters, upstream.engine)
    run = _execute_pg if upstream.engine == "postgresql" else _execute_mysql
    return await run(login, sql, values)


async def _execute_pg(login: _Login, statement: str, values: list[Any]) -> StatementResult:
    import asyncpg

    timeout = login.timeout
    try:
        conn = await asyncpg.connect(
            host=login.host,
            port=login.port,
            user=login.user,
            password=login.password or None,
            database=login.database,
            timeout=timeout,
            ssl=False,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StatementError(f"cannot connect to the database: {exc}") from exc
    try:
        try:
            prepared = await conn.prepare(statement, timeout=timeout)
            rows = await prepared.fetch(*values, timeout=timeout)
        except asyncpg.PostgresError as exc:
            if values or "cannot insert multiple commands" not in str(exc):
                raise
            # Several statements without parameters: run them as a simple query.
            await conn.execute(statement, timeout=timeout)
            return StatementResult([], [], 0)
        attributes = prepared.get_attributes()
        metadata = [
            {"name": attribute.name, "label": attribute.name, "typeName": attribute.type.name}
            for attribute in attributes
        ]
        records = [[to_field(value) for value in row.values()] for row in rows] if attributes else []
        status = prepared.get_statusmsg() or ""
        updated = 0
        verb = status.split(" ", 1)[0]
        if verb in ("INSERT", "UPDATE", "DELETE", "MERGE") and status.split()[-1].isdigit():
            updated = int(status.split()[-1])
        return StatementResult(records, metadata, updated)
    except asyncpg.PostgresError as exc:
        raise StatementError(f"ERROR: {exc}") from exc
    finally:
        await conn.close(timeout=timeout)


async def _execute_mysql(login: _Login, statement: str, values: list[Any]) -> StatementResult:
    import aiomysql
    import pymysql.err

    try:
        conn = await aiomysql.connect(
            host=login.host,
            port=login.port,
            user=login.user,
            password=login.password or "",
            db=login.database,
            connect_timeout=login.timeout,
            autocommit=True,
        )
    except (OSError, pymysql.err.MySQLError) as exc:
        raise StatementError(f"cannot connect to the database: {exc}") from exc
    try:
        async with conn.cursor() as cursor:
            affected = await cursor.execute(statement, values or None)
            description = cursor.description or ()
            rows = await cursor.fetchall() if description else ()
        metadata = [
            {"name": column[0], "label": column[0], "typeName": str(column[1])} for column in description
        ]
        records = [[to_field(value) for value in row] for row in rows]
        return StatementResult(records, metadata, 0 if description else int(affected or 0))
    except pymysql.err.MySQLError as exc:
        raise StatementError(
            f"Database error code: {exc.args[0] if exc.args else '?'}. Message: {exc}"
        ) from exc
    finally:
        conn.close()

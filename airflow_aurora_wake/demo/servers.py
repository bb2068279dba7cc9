"""SQL on the user's real database servers (not through the emulator): log in, look, clean up.

The drivers (asyncpg, aiomysql) are imported only when a statement runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from airflow_aurora_wake.core.errors import classify_error, safe_error_text
from airflow_aurora_wake.core.probes import DatabaseTarget, probe_database
from airflow_aurora_wake.demo.example_dag import TABLE

PROBE_TIMEOUT = 5.0

Statements = Sequence[tuple[str, Sequence[Any]]]


async def _execute(server: DatabaseTarget, statements: Statements) -> list[Any]:
    """Run statements on the real server; return each one's first row."""
    results: list[Any] = []
    if server.engine == "postgresql":
        import asyncpg

        pg = await asyncpg.connect(
            host=server.host, port=server.port, user=server.user, password=server.password,
            database=server.database, timeout=PROBE_TIMEOUT,
        )  # fmt: skip
        try:
            for sql, params in statements:
                results.append(await pg.fetchrow(sql.replace("%s", "$1"), *params))
        finally:
            await pg.close()
        return results
    import aiomysql

    my = await aiomysql.connect(
        host=server.host, port=server.port, user=server.user, password=server.password or "",
        db=server.database, connect_timeout=PROBE_TIMEOUT, autocommit=True,
    )  # fmt: skip
    try:
        async with my.cursor() as cursor:
            for sql, params in statements:
                await cursor.execute(sql, tuple(params))
                results.append(await cursor.fetchone() if cursor.description else None)
    finally:
        my.close()
    return results


def check_server(server: DatabaseTarget) -> tuple[bool, str | None]:
    """Log in to a real server once: ``(reachable, problem)``; ``(True, None)`` when it works.

    :param server: The server.
    :returns: ``reachable`` is False when nothing answered (refused, timeout, DNS); ``problem``
        says what went wrong, without the password.
    """
    try:
        asyncio.run(probe_database(server, connect_timeout=PROBE_TIMEOUT))
    except Exception as exc:
        verdict = classify_error(
            exc, where=server.engine, target=server.describe(), secrets=[server.password]
        )
        if verdict.retry:
            return False, f"nothing answers at {server.host}:{server.port} ({verdict.reason})"
        error = verdict.error
        text = str(error) if error is not None else safe_error_text(exc, [server.password])
        return True, text
    return True, None


def table_exists(server: DatabaseTarget) -> bool:
    """Whether the example DAG's table already exists in the server's database.

    When that cannot be read, the answer is ``True``: the demo then never drops the table.

    :param server: The real server.
    """
    schema = "current_schema()" if server.engine == "postgresql" else "DATABASE()"
    query = (
        f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {schema} AND table_name = %s"
    )
    try:
        (row,) = asyncio.run(_execute(server, [(query, [TABLE])]))
    except Exception:
        return True
    return bool(row[0])


def remove_demo_rows(server: DatabaseTarget, run_id: str, *, drop_table: bool) -> None:
    """Delete the rows one demo run wrote, and the table when the demo created it.

    :param server: The real server.
    :param run_id: The DAG run id the rows are tagged with.
    :param drop_table: Drop the table too (it did not exist before the demo).
    """
    statements: list[tuple[str, Sequence[Any]]] = [(f"DELETE FROM {TABLE} WHERE run_id = %s", [run_id])]
    if drop_table:
        statements.append((f"DROP TABLE IF EXISTS {TABLE}", []))
    asyncio.run(_execute(server, statements))

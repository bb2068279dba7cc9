"""Probes against the real PostgreSQL and MariaDB, a refused port and a server that never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from airflow_aurora_wake.core.probes import DatabaseTarget, nudge_database, probe_database


@dataclass
class SilentServer:
    """Accepts connections and never answers, like an instance that holds a connect while it resumes.
    Records each connection and when the client closed it."""

    port: int = 0
    accepted: int = 0
    closed_by_client: int = 0
    open_now: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open_now += 1
        self.changed.set()
        try:
            while await reader.read(4096):  # swallow the client's startup packet, answer nothing
                pass
        except ConnectionError:
            pass
        finally:
            self.closed_by_client += 1
            self.open_now -= 1
            self.changed.set()
            writer.close()

    async def until(self, predicate: object) -> None:
        async def wait() -> None:
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), 30)  # generous outer limit; normally immediate


@pytest.fixture
async def silent_server() -> AsyncIterator[SilentServer]:
    silent = SilentServer()
    server = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    silent.port = server.sockets[0].getsockname()[1]
    try:
        yield silent
    finally:
        server.close()
        await server.wait_closed()


def _target(server: object, **changes: object) -> DatabaseTarget:
    values = {
        "engine": server.engine,  # type: ignore[attr-defined]
        "host": server.host,  # type: ignore[attr-defined]
        "port": server.port,  # type: ignore[attr-defined]
        "user": server.user,  # type: ignore[attr-defined]
        "database": server.database,  # type: ignore[attr-defined]
    }
    values.update(changes)
    return DatabaseTarget(**values)  # type: ignore[arg-type]


async def test_select_1_on_the_real_server(database_server: object) -> None:
    await probe_database(_target(database_server), connect_timeout=10)


async def test_password_provider_is_called_for_every_attempt(database_server: object) -> None:
    calls: list[int] = []

    async def provider() -> str:
        calls.append(1)
        return ""  # trust / empty-password login on the test servers

    target = _target(database_server, password_provider=provider)
    await probe_database(target, connect_timeout=10)
    await probe_database(target, connect_timeout=10)
    assert len(calls) == 2


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
async def test_refused_port_raises_at_once(engine: str, unused_tcp_port: int) -> None:
    target = DatabaseTarget(engine=engine, host="127.0.0.1", port=unused_tcp_port, user="u")  # type: ignore[arg-type]
    with pytest.raises(Exception) as caught:
        await asyncio.wait_for(probe_database(target, connect_timeout=20), 15)
    assert not isinstance(caught.value, asyncio.TimeoutError)


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
async def test_a_server_that_never_answers_times_out_and_is_closed(
    engine: str, silent_server: SilentServer
) -> None:
    target = DatabaseTarget(engine=engine, host="127.0.0.1", port=silent_server.port, user="u")  # type: ignore[arg-type]
    with pytest.raises(TimeoutError, match=r"connection timed out after 0\.3 s"):
        await probe_database(target, connect_timeout=0.3)
    await silent_server.until(lambda: silent_server.closed_by_client == silent_server.accepted >= 1)
    assert silent_server.open_now == 0


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
async def test_cancellation_closes_the_socket(engine: str, silent_server: SilentServer) -> None:
    target = DatabaseTarget(engine=engine, host="127.0.0.1", port=silent_server.port, user="u")  # type: ignore[arg-type]
    task = asyncio.create_task(probe_database(target, connect_timeout=60))
    await silent_server.until(lambda: silent_server.accepted >= 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await silent_server.until(lambda: silent_server.open_now == 0)
    assert silent_server.closed_by_client == 1


async def test_nudge_reports_an_awake_database(database_server: object) -> None:
    detail = await nudge_database(_target(database_server), hold_seconds=5)
    assert "the database is awake" in detail


async def test_nudge_on_a_wrong_login_reports_the_server_answered(postgres_server: object) -> None:
    detail = await nudge_database(_target(postgres_server, user="aurora_wake_no_such_role"), hold_seconds=5)
    assert "the server answered" in detail


def test_password_never_in_repr_or_describe() -> None:
    target = DatabaseTarget(
        engine="postgresql",
        host="db",
        port=5432,
        user="app",
        database="sales",
        password="hunter2",
        conn_id="warehouse",
    )
    assert "hunter2" not in repr(target)
    assert target.describe() == "'warehouse' (postgresql://app@db:5432/sales)"

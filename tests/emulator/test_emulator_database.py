"""The database endpoints with real PostgreSQL and MariaDB behind them, through plain drivers."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import asyncpg
import psycopg
import pymysql
import pytest
from emulator_helpers import FAST, events, wait_until

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterEndpoint, ClusterSpec, Faults, Timings

pytestmark = [pytest.mark.emulator, pytest.mark.db]

ENGINE = {"postgresql": "aurora-postgresql", "mysql": "aurora-mysql"}


def connect(ep: ClusterEndpoint, server: Any, timeout: float = 10) -> Any:
    """A plain driver connection (psycopg or pymysql) to an emulated cluster.

    pymysql's ``connect_timeout`` covers only the TCP connect; the wait for the server's
    greeting is bounded by ``read_timeout``, so both are set.
    """
    if server.engine == "postgresql":
        return psycopg.connect(
            host=ep.host, port=ep.port, user=server.user, dbname=server.database, connect_timeout=timeout
        )
    return pymysql.connect(
        host=ep.host,
        port=ep.port,
        user=server.user,
        database=server.database,
        connect_timeout=timeout,
        read_timeout=timeout,
    )


def select_one(conn: Any) -> Any:
    cursor = conn.cursor()
    cursor.execute("SELECT 1")
    return cursor.fetchone()


def spec_for(server: Any, identifier: str = "c", **kwargs: Any) -> ClusterSpec:
    return ClusterSpec(identifier, engine=ENGINE[server.engine], upstream=server.dsn, **kwargs)


def assert_no_connection_before_ready(emu: AuroraEmulator, identifier: str) -> None:
    ready = emu.ready_at(identifier)
    assert ready is not None
    completed = emu.counters()["connections_completed_at"][identifier]
    assert completed, "no connection was spliced"
    assert all(at >= ready for at in completed)


def test_v2_wakes_on_a_connection_attempt_which_completes_after_the_resume(
    emu: AuroraEmulator, database_server: Any
) -> None:
    ep = emu.add_cluster(spec_for(database_server))
    conn = connect(ep, database_server)  # blocks for the resume: the natural synchronisation
    try:
        assert select_one(conn) == (1,)
    finally:
        conn.close()
    requested = events(emu, "c", "resume-requested")
    assert len(requested) == 1
    assert emu.timeline("c")[2].detail["cause"] == "connection"
    assert emu.ready_at("c") == pytest.approx(requested[0] + FAST.resume_seconds, abs=0.25)
    assert_no_connection_before_ready(emu, "c")
    assert emu.counters()["connection_attempts"]["c"] == 1


def test_a_short_connect_timeout_times_out_while_paused(emu: AuroraEmulator, database_server: Any) -> None:
    ep = emu.add_cluster(spec_for(database_server, timings=Timings(resume_seconds=2)))
    error = (
        psycopg.OperationalError if database_server.engine == "postgresql" else pymysql.err.OperationalError
    )
    with pytest.raises(error) as exc:
        connect(ep, database_server, timeout=1)
    assert "timeout" in str(exc.value).lower() or "timed out" in str(exc.value).lower()
    # The attempt started a resume that runs to the end without the client (an assumption:
    # AWS does not document it).
    wait_until(lambda: emu.status("c") == "available", 10, "the resume to finish")
    conn = connect(ep, database_server)
    conn.close()
    assert len(events(emu, "c", "resume-requested")) == 1


def test_a_client_that_gives_up_is_counted_as_abandoned(emu: AuroraEmulator, postgres_server: Any) -> None:
    ep = emu.add_cluster(spec_for(postgres_server))
    with socket.create_connection((ep.host, ep.port), timeout=5):
        wait_until(lambda: emu.status("c") == "resuming", 5, "the resume to start")
    wait_until(lambda: emu.counters()["connections_abandoned"]["c"] == 1, 5, "the abandoned attempt")
    wait_until(lambda: emu.status("c") == "available", 10, "the resume to finish")
    assert emu.counters()["connections_completed"]["c"] == 0


def test_v1_connect_works_only_after_the_extra_connect_time(
    emu: AuroraEmulator, database_server: Any
) -> None:
    ep = emu.add_cluster(spec_for(database_server, kind="serverless-v1"))
    rds = emu.boto3_client("rds")
    conn = connect(ep, database_server)
    try:
        assert select_one(conn) == (1,)
    finally:
        conn.close()
    requested = events(emu, "c", "resume-requested")[0]
    capacity_at = events(emu, "c", "capacity-available")[0]
    ready = emu.ready_at("c")
    assert ready is not None
    assert capacity_at - requested == pytest.approx(FAST.v1_capacity_seconds, abs=1e-6)
    assert ready - capacity_at == pytest.approx(FAST.v1_connect_extra_seconds, abs=1e-6)
    assert_no_connection_before_ready(emu, "c")
    assert rds.describe_db_clusters(DBClusterIdentifier="c")["DBClusters"][0]["Capacity"] == (
        2 if database_server.engine == "postgresql" else 1
    )


def test_stopped_cluster_refuses_connections_and_is_not_woken_by_them(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    ep = emu.add_cluster(spec_for(postgres_server, state="stopped"))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ep.host, ep.port), timeout=2)
    assert emu.status("c") == "stopped"
    emu.wake("c")
    with connect(ep, postgres_server) as conn:
        assert select_one(conn) == (1,)


def test_auto_pause_after_idle_and_the_next_connection_resumes(
    aurora_emulator_factory: Any, postgres_server: Any
) -> None:
    emu = aurora_emulator_factory(timings=FAST)
    ep = emu.add_cluster(spec_for(postgres_server, state="available", seconds_until_auto_pause=1))
    with connect(ep, postgres_server) as conn:
        assert select_one(conn) == (1,)
    closed_at = emu.counters()["connections_completed_at"]["c"][0]
    wait_until(lambda: emu.status("c") == "paused", 10, "auto-pause")
    paused_at = events(emu, "c", "auto-paused")[0]
    # Idle counts from the last close, which came after the splice.
    assert paused_at >= closed_at + 1
    with connect(ep, postgres_server) as conn:
        assert select_one(conn) == (1,)
    assert emu.timeline("c")[-2].event == "resume-requested"


def test_an_open_connection_keeps_a_cluster_awake(aurora_emulator_factory: Any, postgres_server: Any) -> None:
    emu = aurora_emulator_factory(timings=FAST)
    ep = emu.add_cluster(spec_for(postgres_server, state="available", seconds_until_auto_pause=1))
    with connect(ep, postgres_server) as conn:
        opened = emu.counters()["connections_completed_at"]["c"][0]
        # Poll the model until well past the idle time: it must stay available.
        wait_until(lambda: emu.state()["now"] > opened + 1.5, 10, "time to pass")
        assert emu.status("c") == "available"
        assert select_one(conn) == (1,)


def test_deep_sleep_resume_takes_the_deep_time(emu: AuroraEmulator, postgres_server: Any) -> None:
    ep = emu.add_cluster(spec_for(postgres_server, state="available"))
    emu.pause("c", paused_for=FAST.deep_sleep_after_seconds + 1)
    with connect(ep, postgres_server) as conn:
        assert select_one(conn) == (1,)
    requested = emu.timeline("c")[-2]
    assert requested.event == "resume-requested" and requested.detail["deep"] is True
    ready = emu.ready_at("c")
    assert ready is not None
    assert ready - requested.at == pytest.approx(FAST.deep_resume_seconds, abs=1e-6)
    assert_no_connection_before_ready(emu, "c")


def sqlstate_seen_by_asyncpg(ep: ClusterEndpoint, server: Any) -> str:
    """The SQLSTATE of a failed connect, as asyncpg reports it.

    psycopg (libpq) reports a connect-time FATAL only as text, for real servers too, so the
    code itself is checked with asyncpg, which parses the ErrorResponse fields.
    """

    async def attempt() -> str:
        try:
            conn = await asyncpg.connect(
                host=ep.host, port=ep.port, user=server.user, database=server.database, timeout=10
            )
        except asyncpg.PostgresError as exc:
            return str(exc.sqlstate)
        await conn.close()
        return "connected"

    return asyncio.run(attempt())


def test_starting_up_window_answers_57p03_to_postgresql(emu: AuroraEmulator, postgres_server: Any) -> None:
    emu.set_faults(Faults(after_resume_error="starting-up", after_resume_seconds=60))
    ep = emu.add_cluster(spec_for(postgres_server))
    with pytest.raises(psycopg.OperationalError, match="FATAL:  the database system is starting up"):
        connect(ep, postgres_server)
    assert sqlstate_seen_by_asyncpg(ep, postgres_server) == "57P03"
    assert emu.counters()["connections_failed_by_fault"]["c"] == 2
    emu.set_faults(Faults())
    with connect(ep, postgres_server) as conn:
        assert select_one(conn) == (1,)


def test_too_many_connections_window_on_postgresql_is_53300(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    emu.set_faults(Faults(after_resume_error="too-many-connections", after_resume_seconds=60))
    ep = emu.add_cluster(spec_for(postgres_server))
    with pytest.raises(psycopg.OperationalError, match="too many clients"):
        connect(ep, postgres_server)
    assert sqlstate_seen_by_asyncpg(ep, postgres_server) == "53300"


def test_too_many_connections_window_on_mariadb_is_1040(emu: AuroraEmulator, mariadb_server: Any) -> None:
    emu.set_faults(Faults(after_resume_error="too-many-connections", after_resume_seconds=60))
    ep = emu.add_cluster(spec_for(mariadb_server))
    with pytest.raises(pymysql.err.OperationalError) as exc:
        connect(ep, mariadb_server)
    assert exc.value.args[0] == 1040
    assert "Too many connections" in str(exc.value)


def test_the_fault_window_closes_after_its_length(emu: AuroraEmulator, mariadb_server: Any) -> None:
    emu.set_faults(Faults(after_resume_error="too-many-connections", after_resume_seconds=0.5))
    ep = emu.add_cluster(spec_for(mariadb_server))
    with pytest.raises(pymysql.err.OperationalError):
        connect(ep, mariadb_server)
    ready = emu.ready_at("c")
    assert ready is not None
    wait_until(lambda: emu.state()["now"] >= ready + 0.5, 5, "the window to close")
    conn = connect(ep, mariadb_server)
    conn.close()


def test_reset_during_resume_resets_the_connection_but_the_resume_proceeds(
    emu: AuroraEmulator, database_server: Any
) -> None:
    emu.set_faults(Faults(reset_during_resume=True))
    ep = emu.add_cluster(spec_for(database_server))
    error = (
        psycopg.OperationalError if database_server.engine == "postgresql" else pymysql.err.OperationalError
    )
    with pytest.raises(error):
        connect(ep, database_server)
    assert emu.counters()["connections_reset"]["c"] == 1
    wait_until(lambda: emu.status("c") == "available", 10, "the resume to finish")
    conn = connect(ep, database_server)
    conn.close()


def test_a_raw_socket_sees_the_reset_as_connection_reset(emu: AuroraEmulator, postgres_server: Any) -> None:
    emu.set_faults(Faults(reset_during_resume=True))
    ep = emu.add_cluster(spec_for(postgres_server))
    # The RST can arrive before connect() returns (then connect raises) or after it.
    with pytest.raises(ConnectionResetError), socket.create_connection((ep.host, ep.port), timeout=5) as sock:
        sock.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
        sock.recv(1)


def test_pause_cuts_open_sessions_and_the_next_connection_resumes(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    ep = emu.add_cluster(spec_for(postgres_server, state="available"))
    conn = connect(ep, postgres_server)
    emu.pause("c")
    with pytest.raises(psycopg.OperationalError):
        wait_until(lambda: select_one(conn) is None, 5, "the session to be cut")
    conn.close()
    with connect(ep, postgres_server) as again:
        assert select_one(again) == (1,)


def test_instant_stop_and_delete_for_test_setup(emu: AuroraEmulator, postgres_server: Any) -> None:
    ep = emu.add_cluster(spec_for(postgres_server, state="available"))
    rds = emu.boto3_client("rds")
    emu.stop("c")
    assert rds.describe_db_clusters(DBClusterIdentifier="c")["DBClusters"][0]["Status"] == "stopped"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ep.host, ep.port), timeout=2)
    emu.wake("c")
    with connect(ep, postgres_server) as conn:  # the same port listens again
        assert select_one(conn) == (1,)
    emu.delete("c")
    assert rds.describe_db_clusters()["DBClusters"] == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ep.host, ep.port), timeout=2)
    assert [event.event for event in emu.timeline("c")][-1] == "deleted"

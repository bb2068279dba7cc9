"""TLS at the database endpoints: offered like Aurora's, terminated in the proxy.

The local servers have TLS off, so every TLS session seen here ends in the emulator's proxy; the
upstream's own view (``pg_stat_ssl``, ``Ssl_version``) shows the plaintext leg. A handshake
that a context not trusting the emulator's CA refuses proves that the client really spoke TLS.
"""

from __future__ import annotations

import os
import secrets
import socket
import ssl
import struct
from collections.abc import Iterator
from typing import Any

import aiomysql
import asyncpg
import psycopg
import pymysql
import pytest
from emulator_helpers import FAST, events

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterEndpoint, ClusterSpec, Faults, dbtls

pytestmark = [pytest.mark.emulator, pytest.mark.db]

ENGINE = {"postgresql": "aurora-postgresql", "mysql": "aurora-mysql"}


def spec_for(server: Any, identifier: str = "c", **kwargs: Any) -> ClusterSpec:
    return ClusterSpec(identifier, engine=ENGINE[server.engine], upstream=server.dsn, **kwargs)


def verifying(emu: AuroraEmulator) -> ssl.SSLContext:
    """What ``sslmode=verify-full sslrootcert=emu.ca_file`` means: CA and host name checked."""
    return ssl.create_default_context(cafile=emu.ca_file)


def unverified() -> ssl.SSLContext:
    """What ``sslmode=require`` (or the probes' MySQL default) means: encrypted, not verified."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def pg_query(
    ep: ClusterEndpoint,
    server: Any,
    tls: Any,
    sql: str,
    *,
    user: str | None = None,
    password: str | None = None,
) -> Any:
    conn = await asyncpg.connect(
        host=ep.host,
        port=ep.port,
        user=user or server.user,
        password=password,
        database=server.database,
        ssl=tls,
        timeout=10,
    )
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def mysql_query(
    ep: ClusterEndpoint, server: Any, tls: ssl.SSLContext | None, sql: str, **login: Any
) -> Any:
    conn = await aiomysql.connect(
        host=ep.host,
        port=ep.port,
        user=login.pop("user", server.user),
        db=server.database,
        ssl=tls,
        connect_timeout=10,
        **login,
    )
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(sql)
            return (await cursor.fetchone())[-1]
    finally:
        conn.close()


async def query(ep: ClusterEndpoint, server: Any, tls: ssl.SSLContext | None, sql: str) -> Any:
    if server.engine == "postgresql":
        return await pg_query(ep, server, tls or False, sql)
    return await mysql_query(ep, server, tls, sql)


#: What the upstream itself sees of the session's encryption (nothing: the proxy terminated it).
UPSTREAM_TLS = {
    "postgresql": "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    "mysql": "SHOW SESSION STATUS LIKE 'Ssl_version'",
}


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["require", "verify-full"])
async def test_asyncpg_runs_select_1_over_tls(emu: AuroraEmulator, postgres_server: Any, mode: str) -> None:
    ep = emu.add_cluster(spec_for(postgres_server, state="available"))
    tls = "require" if mode == "require" else verifying(emu)
    assert await pg_query(ep, postgres_server, tls, "SELECT 1") == 1
    assert await pg_query(ep, postgres_server, tls, UPSTREAM_TLS["postgresql"]) is False


async def test_postgresql_password_login_over_tls(
    emu: AuroraEmulator, postgres_server: Any, password_login: Any
) -> None:
    ep = emu.add_cluster(spec_for(postgres_server, state="available"))
    user = await pg_query(
        ep,
        postgres_server,
        verifying(emu),
        "SELECT current_user",
        user=password_login.user,
        password=password_login.password,
    )
    assert user == password_login.user


def test_libpq_verify_full_with_the_ca_file_and_plaintext_still_work(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    ep = emu.add_cluster(spec_for(postgres_server, state="available"))
    dsn = f"host={ep.host} port={ep.port} user=postgres dbname=test connect_timeout=10"
    with psycopg.connect(f"{dsn} sslmode=verify-full sslrootcert={emu.ca_file}") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with psycopg.connect(f"{dsn} sslmode=disable") as conn:
        assert not conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 1").fetchone() == (1,)


async def test_a_context_that_does_not_trust_the_emulator_ca_is_refused(
    emu: AuroraEmulator, database_server: Any
) -> None:
    ep = emu.add_cluster(spec_for(database_server, state="available"))
    with pytest.raises(Exception) as failure:
        await query(ep, database_server, ssl.create_default_context(), "SELECT 1")
    chain: BaseException | None = failure.value
    while chain is not None and not isinstance(chain, ssl.SSLCertVerificationError):
        chain = chain.__cause__ or chain.__context__
    assert chain is not None, f"not a certificate error: {failure.value!r}"


def test_gssapi_encryption_is_declined_then_tls_is_accepted(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    ep = emu.add_cluster(spec_for(postgres_server, state="available"))
    with socket.create_connection((ep.host, ep.port), timeout=10) as sock:
        sock.sendall(struct.pack("!II", 8, dbtls.PG_GSSENC_REQUEST))
        assert sock.recv(1) == b"N"
        sock.sendall(struct.pack("!II", 8, dbtls.PG_SSL_REQUEST))
        assert sock.recv(1) == b"S"
        with verifying(emu).wrap_socket(sock, server_hostname=ep.host) as tls:
            startup = struct.pack("!I", 196608) + b"user\0postgres\0database\0test\0\0"
            tls.sendall(struct.pack("!I", len(startup) + 4) + startup)
            assert tls.recv(1) == b"R"  # the upstream's authentication answer, inside TLS


async def test_a_made_up_57p03_reaches_a_tls_client_inside_tls(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    emu.set_faults(Faults(after_resume_error="starting-up", after_resume_seconds=60))
    ep = emu.add_cluster(spec_for(postgres_server))
    with pytest.raises(asyncpg.PostgresError) as failure:
        await pg_query(ep, postgres_server, verifying(emu), "SELECT 1")
    assert failure.value.sqlstate == "57P03"
    # libpq with verify-full would say "server does not support SSL" had the answer been N.
    dsn = f"host={ep.host} port={ep.port} user=postgres dbname=test sslmode=verify-full"
    with pytest.raises(psycopg.OperationalError, match="the database system is starting up"):
        psycopg.connect(f"{dsn} sslrootcert={emu.ca_file} connect_timeout=10")
    assert emu.counters()["connections_failed_by_fault"]["c"] == 2


# -- MySQL ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verify", [False, True], ids=["unverified", "verified"])
async def test_aiomysql_runs_select_1_over_tls(
    emu: AuroraEmulator, mariadb_server: Any, verify: bool
) -> None:
    ep = emu.add_cluster(spec_for(mariadb_server, state="available"))
    tls = verifying(emu) if verify else unverified()
    assert await mysql_query(ep, mariadb_server, tls, "SELECT 1") == 1
    assert await mysql_query(ep, mariadb_server, tls, UPSTREAM_TLS["mysql"]) == ""


@pytest.mark.parametrize("verify", [False, True], ids=["unverified", "verified"])
async def test_mysql_password_login_over_tls(
    emu: AuroraEmulator, mariadb_server: Any, password_login: Any, verify: bool
) -> None:
    ep = emu.add_cluster(spec_for(mariadb_server, state="available"))
    tls = verifying(emu) if verify else unverified()
    user = await mysql_query(
        ep,
        mariadb_server,
        tls,
        "SELECT current_user()",
        user=password_login.user,
        password=password_login.password,
    )
    assert user.startswith(f"{password_login.user}@")


@pytest.fixture
def long_password_user(mariadb_server: Any) -> Iterator[tuple[str, str]]:
    """A MariaDB user whose password is as long as an IAM token (dropped afterwards)."""
    user = f"aurora_wake_tok_{secrets.token_hex(4)}"
    token = "tok-" + secrets.token_urlsafe(300)  # URL-safe: no quote to escape
    hosts = ("%", "localhost")  # 'localhost' too, as .ci/services does, against anonymous users
    root = pymysql.connect(host=mariadb_server.host, port=mariadb_server.port, user="root")
    try:
        with root.cursor() as cursor:
            for host in hosts:
                cursor.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{token}'")
                cursor.execute(f"GRANT ALL ON test.* TO '{user}'@'{host}'")
        yield user, token
    finally:
        with root.cursor() as cursor:
            for host in hosts:
                cursor.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        root.close()


async def test_a_long_clear_text_token_and_an_auth_switch_pass_through_tls(
    emu: AuroraEmulator, mariadb_server: Any, long_password_user: tuple[str, str]
) -> None:
    # The login carries the token in clear (mysql_clear_password, as IAM logins do: >255 bytes,
    # length-encoded); the server switches to mysql_native_password and the client answers.
    # Both packets cross the proxy with translated sequence ids.
    user, token = long_password_user
    assert len(token) > 255
    ep = emu.add_cluster(spec_for(mariadb_server, state="available"))
    login = {"user": user, "password": token, "auth_plugin": "mysql_clear_password"}
    assert (await mysql_query(ep, mariadb_server, unverified(), "SELECT current_user()", **login)).startswith(
        user
    )
    with pytest.raises(pymysql.err.OperationalError) as refused:
        await mysql_query(ep, mariadb_server, unverified(), "SELECT 1", **{**login, "password": token + "x"})
    assert refused.value.args[0] == 1045  # the upstream's ERR, relayed at the right sequence id


def test_plaintext_mysql_clients_are_untouched(emu: AuroraEmulator, mariadb_server: Any) -> None:
    ep = emu.add_cluster(spec_for(mariadb_server, state="available"))
    conn = pymysql.connect(host=ep.host, port=ep.port, user="root", database="test", connect_timeout=10)
    try:
        assert conn.server_capabilities & dbtls.MYSQL_CLIENT_SSL  # offered, not taken
        cursor = conn.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    finally:
        conn.close()


def test_a_client_hello_sent_with_the_ssl_request_is_not_lost(
    emu: AuroraEmulator, mariadb_server: Any
) -> None:
    # Clients send the TLS ClientHello right after the SSL request without waiting; the proxy
    # may read both at once. Send them in one write to make that certain.
    ep = emu.add_cluster(spec_for(mariadb_server, state="available"))
    with socket.create_connection((ep.host, ep.port), timeout=10) as sock:
        header = sock.recv(4, socket.MSG_WAITALL)
        greeting = sock.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)
        assert dbtls.offer_tls(greeting) == greeting  # CLIENT_SSL already set
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = verifying(emu).wrap_bio(incoming, outgoing, server_hostname=ep.host)
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        flags = dbtls.MYSQL_CLIENT_SSL | dbtls.MYSQL_CLIENT_PROTOCOL_41
        request = struct.pack("<IIB23s", flags, 1 << 24, 33, b"")
        sock.sendall(dbtls.mysql_frame(1, request) + outgoing.read())
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    sock.sendall(outgoing.read())
                data = sock.recv(65536)
                assert data, "the proxy closed the connection during the handshake"
                incoming.write(data)
        sock.sendall(outgoing.read())
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


async def test_made_up_1040_reaches_a_tls_client_before_any_tls(
    emu: AuroraEmulator, mariadb_server: Any
) -> None:
    emu.set_faults(Faults(after_resume_error="too-many-connections", after_resume_seconds=60))
    ep = emu.add_cluster(spec_for(mariadb_server))
    with pytest.raises(pymysql.err.OperationalError) as failure:
        await mysql_query(ep, mariadb_server, verifying(emu), "SELECT 1")
    assert failure.value.args[0] == 1040


def test_the_greeting_differs_from_the_upstreams_only_in_client_ssl(mariadb_server: Any) -> None:
    with socket.create_connection((mariadb_server.host, mariadb_server.port), timeout=10) as sock:
        header = sock.recv(4, socket.MSG_WAITALL)
        greeting = sock.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)
    offered = dbtls.offer_tls(greeting)
    assert offered is not None and len(offered) == len(greeting)
    changed = [i for i, (a, b) in enumerate(zip(greeting, offered, strict=True)) if a != b]
    assert len(changed) <= 1 and all(offered[i] ^ greeting[i] == 0x08 for i in changed)  # bit 11
    assert dbtls.offer_tls(b"\xff\x10\x04#08004Too many connections") is None
    login = struct.pack("<I", 0x0000A20F | dbtls.MYSQL_CLIENT_SSL) + b"rest"
    assert dbtls.without_ssl(login) == struct.pack("<I", 0x0000A20F) + b"rest"
    assert not dbtls.is_ssl_request(login)


# -- both engines ---------------------------------------------------------------------------------


async def test_a_paused_cluster_holds_a_tls_client_until_the_resume(
    emu: AuroraEmulator, database_server: Any
) -> None:
    ep = emu.add_cluster(spec_for(database_server))
    assert await query(ep, database_server, verifying(emu), "SELECT 1") == 1
    requested = events(emu, "c", "resume-requested")
    ready = emu.ready_at("c")
    assert len(requested) == 1 and ready is not None
    assert ready == pytest.approx(requested[0] + FAST.resume_seconds, abs=1e-6)
    completed = emu.counters()["connections_completed_at"]["c"]
    assert completed and all(at >= ready for at in completed)


async def test_plaintext_clients_still_work(emu: AuroraEmulator, database_server: Any) -> None:
    ep = emu.add_cluster(spec_for(database_server))
    assert await query(ep, database_server, None, "SELECT 1") == 1
    expected_plain: Any = False if database_server.engine == "postgresql" else ""
    assert await query(ep, database_server, None, UPSTREAM_TLS[database_server.engine]) == expected_plain


def test_the_ca_file_is_a_pem_ca_removed_at_shutdown(aurora_emulator_factory: Any) -> None:
    emu = aurora_emulator_factory()
    path = emu.ca_file
    with open(path) as file:
        assert file.read().startswith("-----BEGIN CERTIFICATE-----")
    ssl.create_default_context(cafile=path)  # loads as a trust anchor
    emu.shutdown()
    with pytest.raises(RuntimeError):
        emu.ca_file  # noqa: B018
    assert not os.path.exists(path)

"""Made-up answers of the database endpoint: what a client gets instead of the upstream.

Two occasions call for one:

* a fault window right after a resume (``Faults.after_resume_error``): 57P03 or 53300 on
  PostgreSQL, ERR 1040 or a dropped connection on MySQL;
* a cluster's resume answer (``ClusterSpec.resume_answer``): what a connection attempt gets
  while the cluster resumes, instead of being held. Users report each of these from real
  clusters: an immediate EOF, a reset, PostgreSQL's 57P03, PostgreSQL's 28000 "no pg_hba.conf
  entry ..., SSL encryption" from the front end of a v2 cluster at 0 ACU
  (cyrilgdn/terraform-provider-postgresql#540), and MySQL's "Lost connection" (2013).

PostgreSQL answers come after the client's startup packet, and inside TLS when the client asked
for it (the proxy has already answered its ``SSLRequest``); MySQL answers come before or in
place of the greeting, so before any TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from airflow_aurora_wake.emulator import dbtls

PG_STARTING_UP = ("57P03", "the database system is starting up")
PG_TOO_MANY = ("53300", "sorry, too many clients already")
PG_HBA_REFUSAL = "28000"
MYSQL_TOO_MANY = (1040, "08004", "Too many connections")
_PG_ENCRYPTION_REQUESTS = tuple(
    struct.pack("!II", 8, code) for code in (dbtls.PG_SSL_REQUEST, dbtls.PG_GSSENC_REQUEST)
)
#: The start of a MySQL greeting (HandshakeV10) whose header announces more than is sent: the
#: client reads a packet that never completes, as when a server dies mid-handshake.
_MYSQL_CUT_GREETING = struct.pack("<I", 78)[:3] + b"\x00" + b"\x0a5.5.5-10.11.6-MariaDB\x00"


def pg_error_response(sqlstate: str, message: str) -> bytes:
    """A PostgreSQL ``ErrorResponse`` message with severity FATAL.

    :param sqlstate: the five-character SQLSTATE.
    :param message: the primary message.
    """
    fields = b"".join(
        code + value.encode() + b"\x00"
        for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\x00"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def mysql_err_packet(code: int, sqlstate: str, message: str, sequence: int = 0) -> bytes:
    """A MySQL ``ERR`` packet (with the SQL state marker).

    :param code: the MySQL error number.
    :param sqlstate: the five-character SQL state.
    :param message: the message.
    :param sequence: the packet sequence id (0 when sent instead of the greeting).
    """
    payload = b"\xff" + struct.pack("<H", code) + b"#" + sqlstate.encode() + message.encode()
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload


def startup_parameters(packet: bytes) -> dict[str, str]:
    """The ``name -> value`` pairs of a PostgreSQL startup packet (empty for anything else).

    :param packet: the whole packet (length, protocol version, pairs).
    """
    pairs = packet[8:].split(b"\x00")
    names, values = pairs[0:-1:2], pairs[1::2]
    return {
        name.decode(errors="replace"): value.decode(errors="replace")
        for name, value in zip(names, values, strict=False)
        if name
    }


def pg_hba_refusal(transport: asyncio.BaseTransport, startup: bytes) -> bytes:
    """PostgreSQL's 28000 for a connection no ``pg_hba.conf`` line matches, worded as the server does.

    :param transport: the client's transport (its address, and whether it is TLS).
    :param startup: the client's startup packet (its user and database).
    """
    parameters = startup_parameters(startup)
    user = parameters.get("user", "")
    database = parameters.get("database") or user
    peer = transport.get_extra_info("peername")
    host = peer[0] if isinstance(peer, tuple) and peer else "127.0.0.1"
    encryption = "SSL encryption" if transport.get_extra_info("ssl_object") is not None else "no encryption"
    message = f'no pg_hba.conf entry for host "{host}", user "{user}", database "{database}", {encryption}'
    return pg_error_response(PG_HBA_REFUSAL, message)


def reset(client: dbtls.BufferedSide) -> None:
    """Close the client's connection with a TCP RST ("connection reset by peer").

    :param client: the client side.
    """
    transport = client.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0: close() sends RST, so the client sees "connection reset".
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def read_startup(client: dbtls.BufferedSide) -> bytes | None:
    """The client's PostgreSQL startup packet, declining encryption requests asked (again) first.

    :param client: the client side, past the proxy's TLS answer.
    :return: the packet, or ``None`` if the client went away or sent nothing in time.
    """
    packet = await dbtls.read_pg_packet(client)
    while packet is not None and packet[:8] in _PG_ENCRYPTION_REQUESTS and client.transport is not None:
        client.transport.write(b"N")
        packet = await dbtls.read_pg_packet(client)
    return packet


async def _first_bytes(client: dbtls.BufferedSide, seconds: float = 10.0) -> None:
    """Wait (bounded) until the client has sent something, or is gone."""
    if client.buffer or client.eof or client.closed.done():
        return
    client.arrived.clear()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(client.arrived.wait(), seconds)


async def send_fault(client: dbtls.BufferedSide, engine: str, kind: str) -> None:
    """Answer a connection in the fault window after a resume (``Faults.after_resume_error``).

    :param client: the client side (past the proxy's TLS answer).
    :param engine: ``"postgresql"`` or ``"mysql"``.
    :param kind: ``"starting-up"`` or ``"too-many-connections"``.
    """
    transport = client.transport
    if transport is None:
        return
    if engine == "postgresql":
        sqlstate, message = PG_STARTING_UP if kind == "starting-up" else PG_TOO_MANY
        if await read_startup(client) is not None:
            transport.write(pg_error_response(sqlstate, message))
        transport.close()
        return
    if kind == "too-many-connections":
        code, state, message = MYSQL_TOO_MANY
        transport.write(mysql_err_packet(code, state, message))
    # MySQL has no "starting up" error before the greeting: the server drops the connection,
    # which clients report as "Lost connection" (2013).
    transport.close()


async def answer_while_resuming(
    client: dbtls.BufferedSide, engine: str, answer: str, tls: asyncio.Future[bool] | None
) -> None:
    """Give a connection that arrived while its cluster resumes the cluster's resume answer.

    :param client: the client side (not spliced).
    :param engine: ``"postgresql"`` or ``"mysql"``.
    :param answer: one of ``config.RESUME_ANSWERS`` but ``"hold"``.
    :param tls: the proxy's answer to a PostgreSQL client's encryption request, still running
        (``None`` for MySQL, or when the endpoint offers no TLS).
    """
    if answer == "reset":
        reset(client)
        return
    transport = client.transport
    if transport is None:
        return
    if answer == "eof" or (engine == "mysql" and answer == "starting-up"):
        # Accepted, then closed with nothing said (also MySQL's nearest to "starting up").
        if tls is not None:
            # Never answer the client's SSLRequest; but wait until its first bytes are read,
            # because closing a socket with unread data sends an RST, not the EOF meant here.
            tls.cancel()
            await _first_bytes(client)
        transport.close()
        return
    if engine == "mysql":
        # lost-connection: the greeting starts and never ends; clients report 2013.
        transport.write(_MYSQL_CUT_GREETING)
        transport.close()
        return
    # PostgreSQL speaks after the startup packet, so a TLS client hears it inside TLS.
    if tls is not None and not await tls:
        return
    transport = client.transport
    startup = await read_startup(client) if transport is not None else None
    if transport is None or startup is None:
        return
    if answer == "starting-up":
        transport.write(pg_error_response(*PG_STARTING_UP))
    elif answer == "pg-hba-refusal":
        transport.write(pg_hba_refusal(transport, startup))
    # lost-connection: the startup packet is read and never answered.
    transport.close()

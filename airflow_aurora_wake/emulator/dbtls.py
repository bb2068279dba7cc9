"""TLS at the emulated database endpoint: the client side is encrypted, the upstream is not.

Aurora always offers TLS, and clients that send a password or an IAM token require it; the local
servers behind the emulator have it off. So the proxy terminates TLS itself, with the emulator's
certificate (:mod:`.certs`), and talks plaintext to the upstream:

* PostgreSQL: the client asks first (``SSLRequest``) and waits. The proxy answers ``S`` and
  upgrades, before it knows whether the cluster is awake (a held client is held inside TLS);
  ``GSSENCRequest`` is declined with ``N``. The startup packet then arrives inside TLS and goes
  to the upstream as it is.
* MySQL: the server speaks first. The proxy sets ``CLIENT_SSL`` in the upstream's greeting,
  accepts the client's SSL request packet, upgrades, and sends the login packet upstream with
  ``CLIENT_SSL`` cleared. The client's side has one packet more (the SSL request), so the
  packet sequence ids are translated until the connection phase ends (OK or ERR); the command
  phase restarts them at 0 on both sides, so the connection is spliced from there.

Clients that do not ask for TLS are untouched. Everything here reads what the proxy's pipes
buffered (:class:`BufferedSide`), never a socket.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import Callable
from typing import Protocol

PG_SSL_REQUEST = 80877103
PG_GSSENC_REQUEST = 80877104
#: MySQL capability flags (``CLIENT_SSL``, ``CLIENT_PROTOCOL_41``).
MYSQL_CLIENT_SSL = 0x0800
MYSQL_CLIENT_PROTOCOL_41 = 0x0200
#: An SSL request packet: capabilities, max packet size, character set, 23 bytes of filler.
MYSQL_SSL_REQUEST_SIZE = 32

#: How long a client may take to send its first bytes (PostgreSQL's ``authentication_timeout``).
FIRST_BYTES_SECONDS = 60.0
#: How long a client may take over its TLS handshake.
HANDSHAKE_SECONDS = 30.0
#: How long the MySQL connection phase (greeting to OK/ERR) may take through the proxy.
MYSQL_LOGIN_SECONDS = 60.0


class BufferedSide(Protocol):
    """What this module needs of one side of a proxied connection (``dbproxy._Pipe``).

    While not spliced, the side buffers what it reads in ``buffer`` and sets ``arrived``.
    """

    transport: asyncio.Transport | None
    buffer: list[bytes]
    eof: bool
    arrived: asyncio.Event
    closed: asyncio.Future[None]

    def connection_lost(self, exc: Exception | None) -> None: ...


async def read_frame(side: BufferedSide, size_of: Callable[[bytes], int | None]) -> bytes | None:
    """Take one whole frame off the head of what ``side`` buffered, waiting for it.

    :param side: the connection side.
    :param size_of: the frame's full size from the bytes so far, or ``None`` while unknown.
    :return: the frame, or ``None`` if the side closed first.
    """
    while True:
        data = b"".join(side.buffer)
        size = size_of(data)
        if size is not None and len(data) >= size:
            side.buffer[:] = [data[size:]] if len(data) > size else []
            return data[:size]
        if side.closed.done() or side.eof:
            return None
        side.arrived.clear()
        await side.arrived.wait()


def _pg_size(data: bytes) -> int | None:
    # A length below 4 is a protocol error: take the four bytes, the reader gives up on them.
    return max(4, struct.unpack("!I", data[:4])[0]) if len(data) >= 4 else None


async def read_pg_packet(side: BufferedSide, timeout: float = 10.0) -> bytes | None:
    """One untyped PostgreSQL packet (length-prefixed, as the startup packet), or ``None``.

    :param side: the client side.
    :param timeout: how long to wait for it.
    """
    try:
        return await asyncio.wait_for(read_frame(side, _pg_size), timeout)
    except asyncio.TimeoutError:
        return None


def _mysql_size(data: bytes) -> int | None:
    return 4 + int.from_bytes(data[:3], "little") if len(data) >= 4 else None


async def read_mysql_packet(side: BufferedSide) -> tuple[int, bytes] | None:
    """One MySQL packet as ``(sequence id, payload)``, or ``None`` if the side closed first.

    :param side: either side.
    """
    frame = await read_frame(side, _mysql_size)
    return None if frame is None else (frame[3], frame[4:])


def mysql_frame(sequence: int, payload: bytes) -> bytes:
    """A MySQL packet: 3-byte length, sequence id, payload.

    :param sequence: the sequence id (taken modulo 256).
    :param payload: the payload (under 16 MiB).
    """
    return struct.pack("<I", len(payload))[:3] + bytes([sequence & 0xFF]) + payload


async def start_client_tls(side: BufferedSide, context: ssl.SSLContext) -> bool:
    """Upgrade the client's side to TLS (server side); its transport becomes the TLS transport.

    A MySQL client sends its TLS ClientHello right after the SSL request without waiting, so
    the proxy may already have read it: those bytes are handed to the TLS protocol before the
    socket is read again.

    :param side: the client side (not spliced).
    :param context: the server's ``ssl.SSLContext``.
    :return: whether the handshake completed; if not, the side is closed.
    """
    # The proxy's pipes are asyncio protocols; the TLS transport delivers to them from now on.
    assert isinstance(side, asyncio.BaseProtocol)
    raw = side.transport
    if raw is None or raw.is_closing() or side.eof:
        return False
    loop = asyncio.get_running_loop()
    early = b"".join(side.buffer)
    side.buffer.clear()
    raw.pause_reading()
    upgrade = asyncio.ensure_future(
        loop.start_tls(raw, side, context, server_side=True, ssl_handshake_timeout=HANDSHAKE_SECONDS)
    )
    try:
        if early:
            # One turn of the loop runs start_tls up to its handshake wait: it has installed its
            # protocol and scheduled, but not yet run, the resume of reading.
            await asyncio.sleep(0)
            tls_protocol = raw.get_protocol()
            if tls_protocol is side:
                raise ConnectionError("start_tls did not take over the transport")
            _feed(tls_protocol, early)
        secure = await upgrade
    except OSError:  # ssl.SSLError, resets, the handshake timeout
        upgrade.cancel()
        raw.abort()
        if not side.closed.done():
            side.connection_lost(None)
        return False
    if secure is None:  # the connection was lost during the handshake
        if not side.closed.done():
            side.connection_lost(None)
        return False
    side.transport = secure
    return True


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Deliver ``data`` to ``protocol`` as its transport would have."""
    if isinstance(protocol, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            size = min(len(buffer), len(view))
            buffer[:size] = view[:size]
            protocol.buffer_updated(size)
            view = view[size:]
    elif isinstance(protocol, asyncio.Protocol):
        protocol.data_received(data)


async def accept_postgresql_tls(client: BufferedSide, context: ssl.SSLContext) -> bool:
    """Answer a PostgreSQL client's encryption requests that precede its startup packet.

    ``SSLRequest``: ``S`` and the upgrade. ``GSSENCRequest``: ``N`` (the client then asks for
    TLS or goes on in clear). Anything else (a startup or cancel packet) stays buffered for the
    upstream or a made-up answer.

    :param client: the client side.
    :param context: the server's ``ssl.SSLContext``.
    :return: whether the client is still there.
    """

    def eight(data: bytes) -> int | None:
        return 8 if len(data) >= 8 else None

    for _ in range(3):
        try:
            head = await asyncio.wait_for(read_frame(client, eight), FIRST_BYTES_SECONDS)
        except asyncio.TimeoutError:
            head = None
        transport = client.transport
        if head is None or transport is None or transport.is_closing():
            return False
        length, code = struct.unpack("!II", head)
        if length != 8 or code not in (PG_SSL_REQUEST, PG_GSSENC_REQUEST):
            client.buffer.insert(0, head)
            return True
        if code == PG_GSSENC_REQUEST:
            transport.write(b"N")
            continue
        if client.buffer:
            # Bytes sent before the answer would be read as if they came inside TLS: the server
            # refuses them (CVE-2021-23214), and so does the proxy.
            transport.close()
            return False
        transport.write(b"S")
        return await start_client_tls(client, context)
    return True


def offer_tls(greeting: bytes) -> bytes | None:
    """The upstream's greeting (HandshakeV10 payload) with ``CLIENT_SSL`` set, or ``None``.

    :param greeting: the payload of the server's first packet.
    :return: ``None`` for anything but a v10 greeting (an ERR packet, for one).
    """
    if not greeting or greeting[0] != 10:
        return None
    version_end = greeting.find(b"\x00", 1)
    # After the version: connection id (4), auth data part 1 (8), filler (1), capabilities (2).
    flags_at = version_end + 1 + 4 + 8 + 1
    if version_end < 0 or len(greeting) < flags_at + 2:
        return None
    flags = struct.unpack_from("<H", greeting, flags_at)[0] | MYSQL_CLIENT_SSL
    return greeting[:flags_at] + struct.pack("<H", flags) + greeting[flags_at + 2 :]


def is_ssl_request(payload: bytes) -> bool:
    """Whether a client's first packet is an SSL request (protocol 4.1), not a full login.

    :param payload: the packet's payload.
    """
    if len(payload) != MYSQL_SSL_REQUEST_SIZE:
        return False
    flags = struct.unpack_from("<I", payload)[0]
    return bool(flags & MYSQL_CLIENT_SSL and flags & MYSQL_CLIENT_PROTOCOL_41)


def without_ssl(login: bytes) -> bytes:
    """A login packet's payload with ``CLIENT_SSL`` cleared (the upstream gets it in clear).

    :param login: the HandshakeResponse41 payload.
    """
    flags = struct.unpack_from("<I", login)[0] & ~MYSQL_CLIENT_SSL
    return struct.pack("<I", flags) + login[4:]


async def mysql_login(
    client: BufferedSide,
    upstream: BufferedSide,
    upstream_transport: asyncio.Transport,
    context: ssl.SSLContext,
) -> bool:
    """Run the MySQL connection phase between a client and the upstream, offering TLS.

    On return the caller splices the two sides; what is still buffered is forwarded as it is.

    :param client: the client side (not spliced).
    :param upstream: the upstream side (not spliced), whose greeting is buffered or coming.
    :param upstream_transport: where to write to the upstream.
    :param context: the server's ``ssl.SSLContext``.
    :return: whether to splice (``False``: the client or the upstream went away, or it timed out).
    """
    try:
        return await asyncio.wait_for(
            _mysql_login(client, upstream, upstream_transport, context), MYSQL_LOGIN_SECONDS
        )
    except asyncio.TimeoutError:
        return False


async def _mysql_login(
    client: BufferedSide,
    upstream: BufferedSide,
    upstream_transport: asyncio.Transport,
    context: ssl.SSLContext,
) -> bool:
    greeting = await read_mysql_packet(upstream)
    if greeting is None:
        return True  # the upstream closed at once: the splice passes that on to the client
    if client.transport is None:
        return False
    sequence, payload = greeting
    offered = offer_tls(payload)
    client.transport.write(mysql_frame(sequence, payload if offered is None else offered))
    if offered is None:
        return True
    first = await read_mysql_packet(client)
    if first is None:
        return False
    sequence, payload = first
    if not is_ssl_request(payload):
        upstream_transport.write(mysql_frame(sequence, payload))
        return True
    if not await start_client_tls(client, context):
        return False
    login = await read_mysql_packet(client)
    if login is None or len(login[1]) < 4:
        return False
    upstream_transport.write(mysql_frame(login[0] - 1, without_ssl(login[1])))
    return await _translate_until_logged_in(client, upstream, upstream_transport)


async def _translate_until_logged_in(
    client: BufferedSide, upstream: BufferedSide, upstream_transport: asyncio.Transport
) -> bool:
    """Relay the rest of the connection phase (auth switch, more data) with shifted sequence ids."""
    client_transport = client.transport
    assert client_transport is not None

    async def from_upstream() -> bool:
        while True:
            packet = await read_mysql_packet(upstream)
            if packet is None:
                return False
            client_transport.write(mysql_frame(packet[0] + 1, packet[1]))
            # OK (0x00) or ERR (0xFF) ends the connection phase; 0x01 (more data) and 0xFE
            # (auth switch) do not.
            if packet[1][:1] in (b"\x00", b"\xff"):
                return True

    async def from_client() -> bool:
        while True:
            packet = await read_mysql_packet(client)
            if packet is None:
                return False
            upstream_transport.write(mysql_frame(packet[0] - 1, packet[1]))

    server_task = asyncio.ensure_future(from_upstream())
    client_task = asyncio.ensure_future(from_client())
    try:
        done, _ = await asyncio.wait({server_task, client_task}, return_when=asyncio.FIRST_COMPLETED)
        return server_task in done and server_task.result()
    finally:
        server_task.cancel()
        client_task.cancel()
        await asyncio.gather(server_task, client_task, return_exceptions=True)

"""Small fake PostgreSQL and MySQL servers for the TLS tests; each records every byte it receives.

Imported as ``tls_servers``. They speak just enough protocol to see what a client sends before,
during and after the TLS upgrade: the MySQL one can log a client in and answer ``SELECT 1``.

Before the upgrade the connection is read with ``loop.sock_recv`` for exact byte counts: a
``StreamReader`` could already hold the client's TLS hello, which a later ``start_tls`` would
never see.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pymysql.constants import CLIENT, FIELD_TYPE, SERVER_STATUS

PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@dataclass(frozen=True)
class Certificates:
    """A test CA and a server certificate it signed, for ``127.0.0.1`` and ``localhost``."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the test CA."""
        return ssl.create_default_context(cafile=str(self.ca))


def make_certificates(directory: Path) -> Certificates:
    """Write a fresh CA and server certificate (EC P-256, one day) into ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def build(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        signer: ec.EllipticCurvePrivateKey,
        *,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aurora-wake test CA")])
    ca_cert = build("aurora-wake test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build("127.0.0.1", key, ca_name, ca_key, ca=False)
    files = Certificates(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


class Wire:
    """One accepted connection: exact reads on the raw socket, then on a TLS stream once upgraded."""

    def __init__(self, sock: socket.socket, received: bytearray) -> None:
        self.sock = sock
        self.received = received
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def read_exact(self, count: int) -> bytes:
        if self.reader is not None:
            data = await self.reader.readexactly(count)
        else:
            loop = asyncio.get_running_loop()
            data = b""
            while len(data) < count:
                chunk = await loop.sock_recv(self.sock, count - len(data))
                if not chunk:
                    raise asyncio.IncompleteReadError(data, count)
                data += chunk
        self.received += data
        return data

    async def read_to_eof(self, limit: float = 10.0) -> None:
        """Record whatever else the client sends until it closes (or ``limit`` seconds pass)."""
        with contextlib.suppress(asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
            async with asyncio.timeout(limit):
                while True:
                    await self.read_exact(1)

    async def send(self, data: bytes) -> None:
        if self.writer is not None:
            self.writer.write(data)
            await self.writer.drain()
        else:
            await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def start_tls(self, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, self.sock, ssl=context)
        self.reader, self.writer = reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:
            self.sock.close()


class RecordingServer:
    """Accepts connections on 127.0.0.1 (port 0) and records every byte they receive.

    Use as ``async with Server(...) as server``; subclasses implement :meth:`serve`.
    """

    def __init__(self) -> None:
        self.received = bytearray()
        self.errors: list[BaseException] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = asyncio.Event()

    async def serve(self, wire: Wire) -> None:
        raise NotImplementedError

    async def finished(self, limit: float = 10.0) -> None:
        """Wait until a connection was served to its end."""
        await asyncio.wait_for(self._finished.wait(), limit)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(self._listener)
            sock.setblocking(False)
            self.connections += 1
            task = asyncio.create_task(self._handle(Wire(sock, self.received)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, wire: Wire) -> None:
        try:
            await self.serve(wire)
        except Exception as exc:  # the client hung up or failed TLS; kept for the test to look at
            self.errors.append(exc)
        finally:
            wire.close()
            self._finished.set()

    async def __aenter__(self) -> Self:
        accept = asyncio.create_task(self._accept())
        self._tasks.add(accept)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._listener.close()


class FakePostgres(RecordingServer):
    """Answers the SSLRequest with ``N`` (no TLS) or ``S`` and TLS; then asks for a clear-text password."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.tls = tls

    async def serve(self, wire: Wire) -> None:
        first = await wire.read_exact(8)
        if first == PG_SSL_REQUEST:
            if self.tls is None:
                await wire.send(b"N")
            else:
                await wire.send(b"S")
                await wire.start_tls(self.tls)
            first = await wire.read_exact(4)
        length = struct.unpack("!i", first[:4])[0]
        await wire.read_exact(length - len(first))  # the rest of the startup message
        await wire.send(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = await wire.read_exact(1)
        length = struct.unpack("!i", await wire.read_exact(4))[0]
        await wire.read_exact(length - 4)  # the password message
        if kind == b"p":
            body = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
            await wire.send(b"E" + struct.pack("!i", len(body) + 4) + body)
        await wire.read_to_eof()


def _packet(sequence: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload


def _lenenc(data: bytes) -> bytes:
    size = len(data)
    prefix = bytes([size]) if size < 251 else b"\xfc" + struct.pack("<H", size)
    return prefix + data


class FakeMySql(RecordingServer):
    """A MySQL server that logs a client in with ``mysql_clear_password`` and answers ``SELECT 1``.

    :param tls: offer TLS with this context (``None``: the greeting leaves ``CLIENT_SSL`` out).
    :param plugin: the plugin the greeting names; with ``mysql_native_password`` the server
        switches the client to ``mysql_clear_password`` afterwards, as Aurora does for IAM users.
    :param lenenc: announce ``CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA`` (every MySQL since 5.6 does).
    :param token: the only password accepted; it must arrive over TLS, as AWS requires.
    """

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None,
        plugin: str = "mysql_clear_password",
        lenenc: bool = True,
        token: str | None = None,
    ) -> None:
        super().__init__()
        self.tls, self.plugin, self.lenenc, self.token = tls, plugin, lenenc, token
        self.passwords: list[bytes] = []
        self.tls_used = False
        self.queries: list[str] = []
        self.capabilities = (
            CLIENT.LONG_PASSWORD
            | CLIENT.LONG_FLAG
            | CLIENT.CONNECT_WITH_DB
            | CLIENT.PROTOCOL_41
            | CLIENT.TRANSACTIONS
            | CLIENT.SECURE_CONNECTION
            | CLIENT.MULTI_RESULTS
            | CLIENT.PLUGIN_AUTH
            | (CLIENT.SSL if tls is not None else 0)
            | (CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA if lenenc else 0)
        )

    async def read_packet(self, wire: Wire) -> tuple[int, bytes]:
        header = await wire.read_exact(4)
        size = int.from_bytes(header[:3], "little")
        return header[3], await wire.read_exact(size)

    def greeting(self) -> bytes:
        salt = b"abcdefghijklmnopqrst"
        status = SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT
        return (
            b"\x0a8.0.32-fake\0"
            + struct.pack("<I", 7)
            + salt[:8]
            + b"\0"
            + struct.pack("<HBHHB", self.capabilities & 0xFFFF, 45, status, self.capabilities >> 16, 21)
            + b"\0" * 10
            + salt[8:]
            + b"\0"
            + self.plugin.encode()
            + b"\0"
        )

    async def serve(self, wire: Wire) -> None:
        await wire.send(_packet(0, self.greeting()))
        sequence, payload = await self.read_packet(wire)
        flags = struct.unpack("<I", payload[:4])[0]
        if len(payload) == 32 and flags & CLIENT.SSL and self.tls is not None:  # the SSLRequest
            await wire.start_tls(self.tls)
            self.tls_used = True
            sequence, payload = await self.read_packet(wire)
        position = 32
        user_end = payload.index(b"\0", position)
        position = user_end + 1
        if self.lenenc:
            size = payload[position]
            if size == 0xFC:
                size, position = struct.unpack("<H", payload[position + 1 : position + 3])[0], position + 3
            else:
                position += 1
        else:
            size, position = payload[position], position + 1
        answer = payload[position : position + size]
        position += size
        if flags & CLIENT.CONNECT_WITH_DB:
            position = payload.index(b"\0", position) + 1
        client_plugin = payload[position : payload.index(b"\0", position)].decode()
        if client_plugin != "mysql_clear_password":
            sequence += 1
            await wire.send(_packet(sequence, b"\xfemysql_clear_password\0"))
            sequence, answer = await self.read_packet(wire)
        password = answer.rstrip(b"\0")
        self.passwords.append(password)
        sequence += 1
        accepted = self.tls_used and (self.token is None or password == self.token.encode())
        if not accepted:
            message = b"Access denied for user (using password: YES)"
            await wire.send(_packet(sequence, b"\xff" + struct.pack("<H", 1045) + b"#28000" + message))
            await wire.read_to_eof()
            return
        await wire.send(_packet(sequence, self.ok()))
        await self.commands(wire)

    def ok(self) -> bytes:
        return b"\x00\x00\x00" + struct.pack("<HH", SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT, 0)

    def eof(self) -> bytes:
        return b"\xfe" + struct.pack("<HH", 0, SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT)

    async def commands(self, wire: Wire) -> None:
        while True:
            _, payload = await self.read_packet(wire)
            if payload[:1] != b"\x03":  # COM_QUIT or anything else: done
                return
            query = payload[1:].decode()
            self.queries.append(query)
            if query.strip().upper() != "SELECT 1":
                await wire.send(_packet(1, self.ok()))
                continue
            column = (
                b"".join(_lenenc(part) for part in (b"def", b"", b"", b"", b"1", b""))
                + b"\x0c"
                + struct.pack("<HIBHB", 63, 1, FIELD_TYPE.LONGLONG, 0x81, 0)
                + b"\0\0"
            )
            replies = [b"\x01", column, self.eof(), _lenenc(b"1"), self.eof()]
            await wire.send(b"".join(_packet(number, reply) for number, reply in enumerate(replies, 1)))


async def mysql_offers_tls(host: str, port: int) -> bool:
    """Whether the MySQL server at ``host:port`` announces ``CLIENT_SSL`` in its greeting."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        header = await reader.readexactly(4)
        greeting = await reader.readexactly(int.from_bytes(header[:3], "little"))
    finally:
        writer.close()
    position = greeting.index(b"\0", 1) + 1 + 4 + 8 + 1
    return bool(struct.unpack("<H", greeting[position : position + 2])[0] & CLIENT.SSL)

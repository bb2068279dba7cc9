"""The database endpoint of one emulated cluster: an asyncio TCP proxy in front of a real server.

While the cluster is paused, an arriving connection starts a resume and is *held*: the client's
bytes are buffered here, the upstream is not opened yet, and (because MySQL's server speaks
first) a MySQL client simply waits for its greeting. When the resume completes, the held
connection is spliced to the upstream. A client whose connect timeout is shorter than the
resume gives up on its own, which is what Aurora's clients see. A cluster can answer otherwise
while it resumes (``ClusterSpec.resume_answer``: EOF, reset, 57P03, 28000, lost connection; see
:mod:`.dbanswers`).

Like Aurora's, the endpoint offers TLS; it terminates it (:mod:`.dbtls`) and talks plaintext to
the upstream. A PostgreSQL client's TLS handshake runs while the cluster resumes.

While the cluster is stopping, stopped, starting or deleted, the listening socket is closed
so connections are refused. A bound, non-listening "placeholder" socket keeps the port
reserved for the cluster in between (Linux allows a listener with ``SO_REUSEADDR`` next to a
bound, non-listening socket that also has it).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any

from airflow_aurora_wake.emulator import dbanswers, dbtls
from airflow_aurora_wake.emulator.config import Faults, Upstream, parse_upstream
from airflow_aurora_wake.emulator.instances import ReaderInstance
from airflow_aurora_wake.emulator.lifecycle import CONNECTABLE_PHASES, LISTENING_PHASES, Phase
from airflow_aurora_wake.emulator.model import ClusterModel

log = logging.getLogger(__name__)


class _Pipe(asyncio.Protocol):
    """One side of a spliced connection: forwards what it reads to its peer transport."""

    def __init__(self, on_lost: Callable[[_Pipe], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: asyncio.Transport | None = None
        self.buffer: list[bytes] = []
        self.eof = False
        loop = asyncio.get_running_loop()
        self.made: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.arrived = asyncio.Event()
        self.on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.made.done():
            self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            self.peer.write(data)
        else:
            self.buffer.append(data)
            self.arrived.set()

    def eof_received(self) -> bool:
        self.eof = True
        self.arrived.set()
        # Neither protocol uses half-closed connections: an EOF ends the session. close()
        # still flushes what was already written to the peer.
        if self.peer is not None and not self.peer.is_closing():
            self.peer.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.arrived.set()
        if self.peer is not None and not self.peer.is_closing():
            self.peer.close()
        self.on_lost(self)

    # Back-pressure: when our transport's write buffer is full, stop reading the peer.
    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and not self.peer.is_closing():
            self.peer.resume_reading()

    def splice(self, peer: asyncio.Transport) -> None:
        """Start forwarding to ``peer``, flushing what was buffered while held.

        :param peer: the other side's transport.
        """
        self.peer = peer
        if self.buffer:
            peer.write(b"".join(self.buffer))
            self.buffer.clear()
        if self.eof or self.closed.done():
            peer.close()


class ClusterProxy:
    """The listening endpoint of one cluster; lives on the emulator's event loop.

    :param model: the cluster's model, or a reader's (its own instance endpoint).
    :param faults: returns the emulator's active faults.
    :param tls: the server side of the TLS the endpoint offers (``None``: it offers none).
    :param address: where to listen (default: the model's host and port).
    """

    def __init__(
        self,
        model: ClusterModel | ReaderInstance,
        faults: Callable[[], Faults],
        tls: ssl.SSLContext | None = None,
        address: tuple[str, int] | None = None,
    ) -> None:
        self.model = model
        self.address = address or (model.host, model.port)
        self._faults = faults
        self._tls = tls
        self.upstream: Upstream = parse_upstream(model.spec.upstream_dsn)
        self._placeholder: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._clients: set[_Pipe] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def is_listening(self) -> bool:
        """Whether the listening socket is open (read from any thread; a plain attribute read)."""
        return self._server is not None

    @staticmethod
    def reserve_port(host: str, port: int | None) -> socket.socket:
        """Bind (without listening) the socket that keeps the cluster's port reserved.

        :param host: the address to bind.
        :param port: the port, or ``None``/0 for an ephemeral one.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port or 0))
        except OSError:
            sock.close()
            raise
        return sock

    def attach_placeholder(self, sock: socket.socket) -> None:
        """Take ownership of the reserved socket.

        :param sock: from :meth:`reserve_port`.
        """
        self._placeholder = sock

    async def reconcile(self) -> None:
        """Make the listener, held connections and timer match the model's state now."""
        if self._closed:
            return
        phase = self.model.advance()
        if phase in LISTENING_PHASES:
            await self._listen()
        else:
            self._unlisten()
            # Stopping/stopped/deleted clusters drop every connection, held or spliced.
            for client in list(self._clients):
                if client.transport is not None:
                    client.transport.abort()
        if phase is Phase.PAUSED:
            # A pause (admin or automatic) ends the sessions that were still open.
            for client in list(self._clients):
                if client.peer is not None and client.transport is not None:
                    client.transport.abort()
        if phase is Phase.DELETED and self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        # Wake every held connection so it re-checks the state.
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None
        self._schedule()

    def reconcile_soon(self) -> None:
        """Schedule :meth:`reconcile` (call this on the event loop)."""
        self._spawn(self.reconcile())

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.model.next_transition_at()
        if due is None:
            return
        loop = asyncio.get_running_loop()
        # Wall-clock deadline, loop timer: never fire before ``due`` (re-checked in reconcile).
        delay = max(0.0, due - time.time()) + 0.001
        self._timer = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.reconcile_soon()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(self.address)
        except OSError:
            sock.close()
            log.exception("%s: cannot listen on %s:%s again", self.model.identifier, *self.address)
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, sock=sock, backlog=128)

    def _accept(self) -> _Pipe:
        pipe = _Pipe(self._client_lost)
        self._clients.add(pipe)
        self._spawn(self._handle(pipe))
        return pipe

    def adopt(self, pipe: _Pipe) -> None:
        """Serve a connection another endpoint accepted (the reader endpoint's pick of a reader).

        :param pipe: the accepted connection.
        """
        pipe.on_lost = self._client_lost
        self._clients.add(pipe)
        self._spawn(self._handle(pipe))

    def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _client_lost(self, pipe: _Pipe) -> None:
        if pipe in self._clients:
            self._clients.discard(pipe)

    async def _wait_change(self, pipe: _Pipe) -> None:
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        await asyncio.wait({self._changed, pipe.closed}, return_when=asyncio.FIRST_COMPLETED)

    async def _handle(self, client: _Pipe) -> None:
        await client.made
        model = self.model
        model.record_attempt()
        if model.advance() is Phase.PAUSED:
            model.request_resume("connection")
        # A PostgreSQL client asks for TLS before anything else and waits for the answer: it
        # gets it while the cluster resumes, and is then held inside TLS.
        tls: asyncio.Future[bool] | None = None
        if self._tls is not None and self.upstream.engine == "postgresql":
            tls = asyncio.ensure_future(dbtls.accept_postgresql_tls(client, self._tls))
        try:
            if not await self._hold(client, tls):
                return
            if tls is not None and (not await tls or client.closed.done()):
                with model.lock:
                    model.counters.connections_abandoned += 1
                return
        finally:
            if tls is not None and not tls.done():
                tls.cancel()
        faults = self._faults()
        if model.in_fault_window(faults):
            with model.lock:
                model.counters.connections_failed_by_fault += 1
            await dbanswers.send_fault(client, self.upstream.engine, faults.after_resume_error or "")
            return
        await self._splice(client)

    async def _hold(self, client: _Pipe, tls: asyncio.Future[bool] | None) -> bool:
        """Hold the client until the cluster is connectable; ``False``: it is gone, or got the
        cluster's resume answer instead."""
        model = self.model
        while True:
            if client.closed.done():
                with model.lock:
                    model.counters.connections_abandoned += 1
                return False
            phase = model.advance()
            if phase in CONNECTABLE_PHASES:
                return True
            if phase is Phase.PAUSED:
                # Paused again while we waited (admin): this attempt wakes it again.
                model.request_resume("connection")
                continue
            if phase is Phase.RESUMING:
                # The emulator-wide fault wins over the cluster's own answer.
                by_fault = self._faults().reset_during_resume
                answer = "reset" if by_fault else model.resume_answer
                if answer == "hold":
                    await self._wait_change(client)
                    continue
                # Counted before the client can see the answer, so an observer never misses it.
                with model.lock:
                    if answer == "reset":
                        model.counters.connections_reset += 1
                    if not by_fault:
                        model.counters.resume_answers += 1
                await dbanswers.answer_while_resuming(client, self.upstream.engine, answer, tls)
                return False
            # Stopping, stopped, starting, deleted: refuse what was accepted in the race.
            dbanswers.reset(client)
            return False

    async def _splice(self, client: _Pipe) -> None:
        model = self.model
        loop = asyncio.get_running_loop()
        upstream_pipe: _Pipe | None = None

        def lost(_: _Pipe) -> None:
            pass

        try:
            transport, upstream_pipe = await loop.create_connection(
                lambda: _Pipe(lost), self.upstream.host, self.upstream.port
            )
        except OSError as exc:
            log.warning(
                "cluster %s: upstream %s:%s unreachable: %s",
                model.identifier,
                self.upstream.host,
                self.upstream.port,
                exc,
            )
            dbanswers.reset(client)
            return
        logged_in = True
        if self._tls is not None and self.upstream.engine == "mysql":
            # The greeting is the upstream's: TLS is offered, and the login relayed, on the way.
            try:
                logged_in = await dbtls.mysql_login(client, upstream_pipe, transport, self._tls)
            except BaseException:
                transport.close()
                raise
        if not logged_in or client.closed.done() or client.transport is None:
            transport.close()
            if client.transport is not None:
                client.transport.close()
            if client.closed.done() or client.eof:
                with model.lock:
                    model.counters.connections_abandoned += 1
            return
        # Both directions: upstream bytes go to the client, buffered client bytes go upstream.
        upstream_pipe.splice(client.transport)
        client.splice(transport)
        model.connection_opened()
        try:
            await client.closed
        finally:
            if not transport.is_closing():
                transport.close()
            model.connection_closed()

    async def aclose(self) -> None:
        """Close the listener, every connection and the placeholder socket."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._unlisten()
        for client in list(self._clients):
            if client.transport is not None:
                client.transport.abort()
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None

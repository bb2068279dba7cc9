"""The readers of an emulated cluster: their endpoints, the reader endpoint, and their methods.

Each reader has its own instance endpoint (a :class:`ClusterProxy` in front of the same real
server, at a port of its own), shown in ``DescribeDBInstances``. The reader endpoint listens at
the cluster's port on :data:`~.instances.READER_HOST` (``ReaderEndpoint`` in
``DescribeDBClusters``) and hands each connection to a reader picked at random among those whose
endpoint listens (a paused one included: the connection resumes it), or to the writer when none
does, as AWS routes the reader endpoint of a cluster without a reader that serves.
"""

from __future__ import annotations

import random
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_aurora_wake.emulator.config import Faults, TimelineEvent
from airflow_aurora_wake.emulator.dbproxy import ClusterProxy, _Pipe
from airflow_aurora_wake.emulator.instances import READER_HOST, ReaderInstance
from airflow_aurora_wake.emulator.model import ClusterModel
from airflow_aurora_wake.emulator.readerconfig import reader_identifiers

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator.backend import EmulatorBackend

__all__ = [
    "READER_HOST",
    "ClusterReaders",
    "InstanceEndpoint",
    "ReaderEndpointProxy",
    "ReaderMethods",
    "build_readers",
]


class ReaderEndpointProxy(ClusterProxy):
    """The reader endpoint of a cluster with readers: each connection goes to a random reader.

    :param cluster: the cluster's model (the endpoint listens while the cluster's would).
    :param faults: returns the emulator's active faults.
    :param tls: the TLS the endpoints offer.
    :param address: where it listens: :data:`READER_HOST` at the cluster's port.
    :param readers: the readers' own endpoints.
    :param writer: the cluster (writer) endpoint, for when no reader listens.
    """

    def __init__(
        self,
        cluster: ClusterModel,
        faults: Callable[[], Faults],
        tls: ssl.SSLContext | None,
        *,
        address: tuple[str, int],
        readers: list[ClusterProxy],
        writer: ClusterProxy,
    ) -> None:
        super().__init__(cluster, faults, tls, address)
        self.readers = readers
        self.writer = writer
        self._rng = random.Random()

    def _accept(self) -> _Pipe:
        pipe = _Pipe(self._client_lost)
        self._spawn(self._route(pipe))
        return pipe

    async def _route(self, pipe: _Pipe) -> None:
        await pipe.made
        listening = [proxy for proxy in self.readers if proxy.model.is_listening()]
        (self._rng.choice(listening) if listening else self.writer).adopt(pipe)


@dataclass
class ClusterReaders:
    """The readers of one cluster and their endpoints.

    :param instances: each reader's model.
    :param proxies: each reader's own endpoint, in the same order.
    :param endpoint: the reader endpoint.
    """

    instances: list[ReaderInstance]
    proxies: list[ClusterProxy]
    endpoint: ReaderEndpointProxy

    def endpoints(self) -> list[ClusterProxy]:
        """Every endpoint: the readers' own, then the reader endpoint."""
        return [*self.proxies, self.endpoint]


def build_readers(
    model: ClusterModel,
    writer: ClusterProxy,
    faults: Callable[[], Faults],
    tls: ssl.SSLContext | None,
    *,
    bind: Callable[[ReaderInstance], None],
    on_change: Callable[[ClusterProxy], None],
) -> ClusterReaders | None:
    """Create the readers of a new cluster (``None`` when its spec has none).

    :param model: the cluster's model.
    :param writer: the cluster (writer) endpoint.
    :param faults: returns the emulator's active faults.
    :param tls: the TLS the endpoints offer.
    :param bind: creates a reader's moto instance.
    :param on_change: schedules a reconcile of an endpoint (a reader's own sleep changed).
    :raises ValueError: readers on an emulator whose host is not 127.0.0.1.
    """
    spec = model.spec
    if not spec.readers:
        return None
    if model.host != "127.0.0.1":
        raise ValueError(
            f"cluster {spec.identifier!r} has readers, whose reader endpoint listens on {READER_HOST}: "
            f"run the emulator on host 127.0.0.1, not {model.host!r}"
        )
    reserved: list[socket.socket] = []
    try:
        instances, proxies = [], []
        for name, reader in zip(reader_identifiers(spec.identifier, spec.readers), spec.readers, strict=True):
            sock = ClusterProxy.reserve_port(model.host, reader.port)
            reserved.append(sock)
            instance = ReaderInstance(model, name, reader, host=model.host, port=sock.getsockname()[1])
            bind(instance)
            proxy = ClusterProxy(instance, faults, tls)
            proxy.attach_placeholder(sock)
            if instance.sleep is not None:
                instance.sleep.on_change = lambda _sleep, proxy=proxy: on_change(proxy)
            instances.append(instance)
            proxies.append(proxy)
        sock = ClusterProxy.reserve_port(READER_HOST, model.port)
        reserved.append(sock)
        endpoint = ReaderEndpointProxy(
            model, faults, tls, address=(READER_HOST, model.port), readers=proxies, writer=writer
        )
        endpoint.attach_placeholder(sock)
    except BaseException:
        for sock in reserved:
            sock.close()
        raise
    model.reader_host = READER_HOST
    return ClusterReaders(instances, proxies, endpoint)


@dataclass(frozen=True)
class InstanceEndpoint:
    """Where a reader DB instance can be reached directly.

    :param identifier: its ``DBInstanceIdentifier``.
    :param cluster: its cluster.
    :param promotion_tier: its failover tier.
    :param pauses_on_its_own: a tier 2-15 reader of a Serverless v2 cluster.
    :param host: host of its instance endpoint.
    :param port: port of its instance endpoint.
    """

    identifier: str
    cluster: str
    promotion_tier: int
    pauses_on_its_own: bool
    host: str
    port: int


class ReaderMethods:
    """``AuroraEmulator``'s methods for readers (see :mod:`.readers` and :mod:`.instances`)."""

    _backend: EmulatorBackend

    def readers(self, identifier: str) -> list[InstanceEndpoint]:
        """The readers of a cluster, in the order of its spec.

        :param identifier: the cluster identifier.
        """
        return [
            InstanceEndpoint(
                reader.identifier,
                reader.cluster.identifier,
                reader.reader.promotion_tier,
                reader.sleep is not None,
                reader.host,
                reader.port,
            )
            for reader in self._backend.readers_of(identifier)
        ]

    def reader_state(self, instance: str) -> dict[str, Any]:
        """A reader's state document (``GET /_emulator/instances/<id>``).

        :param instance: the reader's ``DBInstanceIdentifier``.
        :raises KeyError: for an instance that is no emulated reader.
        """
        return self._backend.get_reader(instance).snapshot()

    def instance_status(self, instance: str) -> str:
        """A reader's internal phase now: ``creating``, ``paused``, ``resuming``, ``available``,
        or the cluster's while it is stopping, stopped, starting or deleted.

        :param instance: the reader's ``DBInstanceIdentifier``.
        """
        return str(self._backend.get_reader(instance).snapshot()["phase"])

    def instance_ready_at(self, instance: str) -> float | None:
        """The last time a reader became connectable (``None``: never yet).

        :param instance: the reader's ``DBInstanceIdentifier``.
        """
        return self._backend.get_reader(instance).ready_at()

    def instance_timeline(self, instance: str) -> list[TimelineEvent]:
        """A tier 2-15 reader's own timeline; a tier 0-1 reader's is the cluster's.

        :param instance: the reader's ``DBInstanceIdentifier``.
        """
        return self._backend.get_reader(instance).timeline_events()

    def pause_instance(self, instance: str, *, paused_for: float = 0.0) -> None:
        """Pause a reader that pauses on its own (tiers 2-15 of a Serverless v2 cluster) at once.

        :param instance: the reader's ``DBInstanceIdentifier``.
        :param paused_for: pretend it was paused this many seconds ago.
        :raises ValueError: for a reader that pauses with the writer (pause the cluster).
        """
        self._own_sleep(instance).force_pause(paused_for=paused_for)
        self._backend.sync_cluster(self._backend.get_reader(instance).cluster.identifier)

    def wake_instance(self, instance: str) -> None:
        """Make a reader that pauses on its own available at once (test setup).

        :param instance: the reader's ``DBInstanceIdentifier``.
        :raises ValueError: for a reader that pauses with the writer (wake the cluster).
        """
        self._own_sleep(instance).force_wake()
        self._backend.sync_cluster(self._backend.get_reader(instance).cluster.identifier)

    def _own_sleep(self, instance: str) -> Any:
        reader = self._backend.get_reader(instance)
        if reader.sleep is None:
            raise ValueError(
                f"reader {instance!r} (tier {reader.reader.promotion_tier}, {reader.cluster.spec.kind}) "
                "pauses and resumes with the writer: pause or wake its cluster instead"
            )
        return reader.sleep

    def _cluster_state(self, model: ClusterModel) -> dict[str, Any]:
        """A cluster's state document, with its readers' when it has any."""
        state = model.snapshot()
        readers = self._backend.readers_of(model.identifier)
        if readers:
            state["reader_host"] = model.reader_host
            state["readers"] = [reader.snapshot() for reader in readers]
        return state

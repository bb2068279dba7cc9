"""The clusters of one emulator behind both endpoints, with its injected faults and call counts.

Each emulated cluster is a model (its state), a database endpoint on the event loop and moto's
objects reporting the model; :class:`EmulatorBackend` creates, finds, syncs and deletes them.
It is what the AWS endpoint talks to (:class:`~airflow_aurora_wake.emulator.awsapp.EndpointBackend`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

from airflow_aurora_wake.emulator import motoglue
from airflow_aurora_wake.emulator.config import ClusterSpec, Faults, Timings, parse_upstream
from airflow_aurora_wake.emulator.counters import CallCounters
from airflow_aurora_wake.emulator.dataapi import Statement, StatementResult, execute_statement
from airflow_aurora_wake.emulator.dbproxy import ClusterProxy
from airflow_aurora_wake.emulator.eventloop import THREAD_TIMEOUT, LoopThread
from airflow_aurora_wake.emulator.faults import FaultInjector
from airflow_aurora_wake.emulator.mastersecrets import MasterSecrets
from airflow_aurora_wake.emulator.model import ClusterModel, Phase
from airflow_aurora_wake.emulator.readerglue import create_reader_instance
from airflow_aurora_wake.emulator.readers import ClusterReaders, ReaderInstance, build_readers

log = logging.getLogger(__name__)


class EmulatorBackend:
    """Clusters, faults and counters of one emulator; thread-safe.

    :param account_id: the emulator's moto account.
    :param region: the default region.
    :param host: the address database endpoints bind to.
    :param timings: default timings of new clusters.
    :param faults: the faults to inject from the start.
    :param loop: the event loop the database endpoints run on.
    """

    def __init__(
        self, *, account_id: str, region: str, host: str, timings: Timings, faults: Faults, loop: LoopThread
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.host = host
        self.default_timings = timings
        self.injector = FaultInjector(faults, account_id)
        self.calls = CallCounters()
        self.master_secrets = MasterSecrets(account_id)
        self._loop = loop
        self._lock = threading.RLock()
        self._models: dict[str, ClusterModel] = {}
        self._proxies: dict[str, ClusterProxy] = {}
        self._readers: dict[str, ClusterReaders] = {}
        #: The TLS the database endpoints offer (the emulator sets it when it starts).
        self.server_tls: ssl.SSLContext | None = None

    # -- finding ----------------------------------------------------------------------------

    def get_cluster(self, identifier: str) -> ClusterModel:
        """The model of a cluster, deleted ones included.

        :param identifier: the cluster identifier (any case).
        :raises KeyError: for an unknown cluster.
        """
        with self._lock:
            model = self._models.get(identifier.lower())
        if model is None:
            raise KeyError(f"no emulated cluster named {identifier!r}")
        return model

    def find_cluster(
        self, identifier: str | None, region: str | None, *, include_deleted: bool = False
    ) -> ClusterModel | None:
        """The model of a cluster, or ``None``.

        :param identifier: the cluster identifier (any case).
        :param region: the region it must be in (``None``: any).
        :param include_deleted: also find deleted clusters.
        """
        if not identifier:
            return None
        with self._lock:
            model = self._models.get(identifier.lower())
        if model is None or (region is not None and model.spec.region != region):
            return None
        if not include_deleted and model.advance() is Phase.DELETED:
            return None
        return model

    def models(self) -> list[ClusterModel]:
        """Every cluster's model, deleted ones included."""
        with self._lock:
            return list(self._models.values())

    # -- creating and deleting --------------------------------------------------------------

    def add_cluster(self, spec: ClusterSpec) -> ClusterModel:
        """Create a cluster: moto cluster, model and database endpoint.

        :param spec: the cluster.
        :raises ValueError: if a live cluster with that identifier exists.
        """
        with self._lock:
            if self.find_cluster(spec.identifier, None) is not None:
                raise ValueError(f"an emulated cluster named {spec.identifier!r} already exists")
            if motoglue.find_cluster(self.account_id, spec.region, spec.identifier) is not None:
                raise ValueError(f"a cluster named {spec.identifier!r} already exists in {spec.region}")
            upstream = parse_upstream(spec.upstream_dsn)
            master = upstream.user or ("postgres" if upstream.engine == "postgresql" else "root")
            model = self._emulate(
                spec,
                f"arn:aws:rds:{spec.region}:{self.account_id}:cluster:{spec.identifier}",
                lambda model: motoglue.create_cluster(self.account_id, model, master),
            )
            if spec.manage_master_user_password:
                self.master_secrets.create(spec.identifier, spec.region, master, upstream.password or "")
        self._activate(model)
        return model

    def adopt_cluster(self, identifier: str, region: str, *, data_api: bool) -> None:
        """Give a cluster created through the API (``CreateDBCluster``) a model and an endpoint.

        :param identifier: the new cluster.
        :param region: its region.
        :param data_api: whether the create call enabled the Data API.
        """
        cluster = motoglue.find_cluster(self.account_id, region, identifier)
        if cluster is None or motoglue.model_of(cluster) is not None:
            return
        spec = motoglue.adoption_spec(cluster, region, data_api=data_api)
        if spec is None:
            return
        if self.find_cluster(identifier, None) is not None:
            log.warning("cluster %s exists in another region of the emulator; not emulated", identifier)
            return

        def attach(model: ClusterModel) -> None:
            motoglue.attach_cluster(cluster, model)
            motoglue.attach_cluster_instances(self.account_id, model)

        self._activate(self._emulate(spec, str(cluster.db_cluster_arn), attach))

    def delete_cluster(self, identifier: str) -> None:
        """Delete a cluster (in moto too): its endpoint refuses, Describe answers 404.

        :param identifier: the cluster identifier.
        """
        model = self.get_cluster(identifier)
        motoglue.delete_cluster(self.account_id, model)
        model.mark_deleted()
        self.sync_cluster(identifier)

    def _emulate(self, spec: ClusterSpec, arn: str, bind: Callable[[ClusterModel], None]) -> ClusterModel:
        """Reserve the port, build the model, let ``bind`` tie moto's objects to it, register it."""
        placeholder = ClusterProxy.reserve_port(self.host, spec.port)
        try:
            port = placeholder.getsockname()[1]
            model = ClusterModel(
                spec, spec.timings or self.default_timings, arn=arn, port=port, host=self.host
            )
            bind(model)
            proxy = ClusterProxy(model, lambda: self.injector.faults, self.server_tls)
            proxy.attach_placeholder(placeholder)
            readers = build_readers(
                model,
                proxy,
                lambda: self.injector.faults,
                self.server_tls,
                bind=lambda reader: create_reader_instance(self.account_id, reader),
                on_change=lambda endpoint: self._loop.call_soon(endpoint.reconcile_soon),
            )
        except BaseException:
            placeholder.close()
            raise
        with self._lock:
            self._models[spec.identifier.lower()] = model
            self._proxies[spec.identifier.lower()] = proxy
            if readers is not None:
                self._readers[spec.identifier.lower()] = readers
        return model

    def _endpoints(self, identifier: str) -> list[ClusterProxy]:
        """A cluster's database endpoints: the cluster's, then its readers' and reader endpoint."""
        with self._lock:
            proxy = self._proxies.get(identifier.lower())
            readers = self._readers.get(identifier.lower())
        endpoints = [proxy] if proxy is not None else []
        return endpoints + (readers.endpoints() if readers is not None else [])

    def readers_of(self, identifier: str) -> list[ReaderInstance]:
        """A cluster's readers (none for most clusters).

        :param identifier: the cluster identifier (any case).
        :raises KeyError: for an unknown cluster.
        """
        model = self.get_cluster(identifier)
        with self._lock:
            readers = self._readers.get(model.identifier.lower())
        return list(readers.instances) if readers is not None else []

    def get_reader(self, instance: str) -> ReaderInstance:
        """A reader's model by its ``DBInstanceIdentifier``.

        :param instance: the identifier (any case).
        :raises KeyError: for an instance that is no emulated reader.
        """
        with self._lock:
            every = [reader for readers in self._readers.values() for reader in readers.instances]
        for reader in every:
            if reader.identifier.lower() == instance.lower():
                return reader
        raise KeyError(f"no emulated reader named {instance!r}")

    def _activate(self, model: ClusterModel) -> None:
        model.on_change = self._on_model_change
        model.on_observe = self._on_model_observe
        for endpoint in self._endpoints(model.identifier):
            self._loop.call(endpoint.reconcile(), THREAD_TIMEOUT)

    # -- side effects -----------------------------------------------------------------------

    def sync_cluster(self, identifier: str) -> None:
        """Apply a cluster's side effects (listener, held connections) before returning, so a
        caller that stops a cluster sees its port refuse at once.

        :param identifier: the cluster identifier.
        """
        for endpoint in self._endpoints(identifier):
            if self._loop.running:
                self._loop.call(endpoint.reconcile(), THREAD_TIMEOUT)

    def _on_model_observe(self, model: ClusterModel) -> None:
        if self._loop.in_loop_thread():
            return
        if any(
            endpoint.is_listening != endpoint.model.is_listening()
            for endpoint in self._endpoints(model.identifier)
        ):
            self.sync_cluster(model.identifier)

    def _on_model_change(self, model: ClusterModel) -> None:
        for endpoint in self._endpoints(model.identifier):
            self._loop.call_soon(endpoint.reconcile_soon)

    async def aclose(self) -> None:
        """Close every database endpoint (on the event loop)."""
        proxies = list(self._proxies.values())
        proxies += [endpoint for readers in self._readers.values() for endpoint in readers.endpoints()]
        self._proxies.clear()
        self._readers.clear()
        await asyncio.gather(*(proxy.aclose() for proxy in proxies), return_exceptions=True)

    # -- Data API and counters --------------------------------------------------------------

    def run_statement(self, model: ClusterModel, statement: Statement) -> StatementResult:
        """Run a Data API statement on the cluster's upstream server.

        :param model: the cluster.
        :param statement: the request.
        :raises StatementError: when the server rejects the connection or the statement.
        """
        upstream = parse_upstream(model.spec.upstream_dsn)
        return self._loop.call(execute_statement(upstream, statement), 60.0)

    def counters(self) -> dict[str, Any]:
        """The document of ``AuroraEmulator.counters()``."""
        clusters = [(model.identifier, model.counter_values()) for model in self.models()]
        return self.calls.as_dict(self.injector.injected(), clusters)

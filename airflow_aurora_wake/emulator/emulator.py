"""``AuroraEmulator``: what a test uses: start and stop, clients, cluster set-up, observing.

The clusters, their faults and counters live in :class:`~.backend.EmulatorBackend`; the AWS
endpoint (:mod:`.awsapp`) and the admin routes (:mod:`.admin`) run in a werkzeug server thread.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from airflow_aurora_wake.emulator import connections, motoglue
from airflow_aurora_wake.emulator.admin import AdminRoutes
from airflow_aurora_wake.emulator.awsapp import AwsEndpointApp
from airflow_aurora_wake.emulator.backend import EmulatorBackend
from airflow_aurora_wake.emulator.certs import EndpointCertificates, create_certificates
from airflow_aurora_wake.emulator.config import ClusterEndpoint, ClusterSpec, Faults, TimelineEvent, Timings
from airflow_aurora_wake.emulator.eventloop import THREAD_TIMEOUT, LoopThread
from airflow_aurora_wake.emulator.mastersecrets import ManagedPasswordMethods
from airflow_aurora_wake.emulator.model import Phase
from airflow_aurora_wake.emulator.readers import ReaderMethods

log = logging.getLogger(__name__)


class AuroraEmulator(ManagedPasswordMethods, ReaderMethods):
    """Emulated AWS endpoint plus one database endpoint per emulated cluster, on 127.0.0.1.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`)::

        with AuroraEmulator([ClusterSpec("sales")], timings=Timings(resume_seconds=2)) as emu:
            rds = emu.boto3_client("rds")

    :param clusters: clusters to create on start.
    :param timings: default timings of every cluster (a spec's own ``timings`` win).
    :param faults: faults to inject from the start.
    :param region: default region of clients (:meth:`aws_env`, :meth:`boto3_client`).
    :param host: address the endpoints bind to.
    :param port: port of the AWS endpoint (0: ephemeral).
    :param account_id: moto account id of this emulator (default: a random one, which keeps
        concurrent emulators in one process apart).
    """

    def __init__(
        self,
        clusters: Iterable[ClusterSpec] = (),
        *,
        timings: Timings | None = None,
        faults: Faults | None = None,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str | None = None,
    ) -> None:
        self._initial = list(clusters)
        self.region = region
        self.host = host
        self._requested_port = port
        # moto's backends are process-global, keyed by account: a private account per emulator.
        # MOTO_ACCOUNT_ID overrides the account moto's server uses for every request, so the
        # emulator must follow it (and then loses isolation, and leaves that account's state).
        forced = os.environ.get("MOTO_ACCOUNT_ID")
        if forced:
            log.warning("MOTO_ACCOUNT_ID is set: emulators in this process share account %s", forced)
        self.account_id = forced or account_id or str(secrets.randbelow(9 * 10**11) + 10**11)
        self._owns_account = not forced
        self._loop = LoopThread()
        self._backend = EmulatorBackend(
            account_id=self.account_id,
            region=region,
            host=host,
            timings=timings or Timings(),
            faults=faults or Faults(),
            loop=self._loop,
        )
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._started = False
        self._tempdir: str | None = None
        self._certificates: EndpointCertificates | None = None

    @property
    def timings(self) -> Timings:
        """Default timings of every cluster (a spec's own ``timings`` win)."""
        return self._backend.default_timings

    @timings.setter
    def timings(self, timings: Timings) -> None:
        self._backend.default_timings = timings

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> AuroraEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()

    def start(self) -> AuroraEmulator:
        """Start the event loop, the AWS endpoint and the initial clusters (idempotent)."""
        if self._started:
            return self
        self._started = True
        try:
            self._tempdir = tempfile.mkdtemp(prefix="aurora-emulator-")
            self._certificates = create_certificates(self._tempdir, hosts=(self.host,))
            self._backend.server_tls = self._certificates.server_context()
            self._loop.start(THREAD_TIMEOUT)
            self._start_server()
            for spec in self._initial:
                self.add_cluster(spec)
        except BaseException:
            self.shutdown()
            raise
        log.info("Aurora emulator listening at %s (account %s)", self.endpoint_url, self.account_id)
        return self

    def stop(self, identifier: str | None = None) -> None:
        """Without an argument: shut the emulator down (:meth:`shutdown`). With one: stop that
        cluster at once (:meth:`stop_cluster`).

        :param identifier: the cluster to stop instantly, or ``None`` to shut down.
        """
        if identifier is None:
            self.shutdown()
        else:
            self.stop_cluster(identifier)

    def shutdown(self) -> None:
        """Tear everything down: AWS endpoint, database endpoints, loop thread, moto state."""
        server, self._server = self._server, None
        if server is not None:
            try:
                server.shutdown()
            finally:
                server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(THREAD_TIMEOUT)
            self._server_thread = None
        if self._loop.running:
            try:
                self._loop.call(self._backend.aclose(), THREAD_TIMEOUT)
            except Exception:
                log.exception("closing the database endpoints failed")
        self._loop.stop(THREAD_TIMEOUT)
        if self._started and self._owns_account:
            try:
                motoglue.forget_account(self.account_id)
            except Exception:
                log.exception("could not reset moto's backends of account %s", self.account_id)
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
            self._certificates = None
        self._started = False

    def _start_server(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietRequestHandler(MotoRequestHandler):
            # Werkzeug logs every request at INFO; polling clients would flood the log.
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass

        inner = DomainDispatcherApplication(create_backend_app)
        app = AwsEndpointApp(self._backend, inner, AdminRoutes(self))
        self._server = make_server(
            self.host, self._requested_port, app, threaded=True, request_handler=QuietRequestHandler
        )
        # A short poll interval makes shutdown() quick (it waits for the next poll).
        self._server_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="aurora-emulator-aws",
            daemon=True,
        )
        self._server_thread.start()

    # -- clients ----------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """URL of the emulated AWS endpoint, for ``endpoint_url=`` or ``AWS_ENDPOINT_URL``."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def ca_file(self) -> str:
        """PEM file of the CA that signed the database endpoints' TLS certificate.

        The endpoints offer TLS like Aurora's; verify them with it, e.g. libpq's
        ``sslmode=verify-full sslrootcert=<ca_file>`` or ``ssl.create_default_context(cafile=...)``.
        The certificate names 127.0.0.1, ``localhost`` and ``::1``. The file lives in the
        emulator's temporary directory until :meth:`shutdown`.
        """
        if self._certificates is None:
            raise RuntimeError("the emulator is not running; call start() or use it as a context manager")
        return self._certificates.ca_file

    def aws_env(self) -> dict[str, str]:
        """Environment variables that point AWS SDKs and the AWS CLI at the emulator."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def boto3_client(self, service: str, region_name: str | None = None, **kwargs: Any) -> Any:
        """A boto3 client pointed at the emulator with test credentials.

        :param service: for example ``"rds"``, ``"rds-data"``, ``"secretsmanager"``.
        :param region_name: default: the emulator's region.
        :param kwargs: passed to ``boto3.client`` (for example ``config=``).
        """
        import boto3

        return boto3.client(
            service,
            region_name=region_name or self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )

    def connection_definitions(
        self, aws_conn_id: str = connections.DEFAULT_AWS_CONN_ID
    ) -> list[connections.ConnectionDefinition]:
        """Airflow connections for this emulator: the AWS endpoint, then each live cluster.

        A cluster's connection id is its identifier with ``_`` for every character that is not
        a letter or digit; its login and schema are the upstream's user and database, and it
        has no password. Render them with :func:`.connections.render_connections`.

        :param aws_conn_id: the AWS connection's id (letters, digits and ``_``).
        :raises ValueError: for another ``aws_conn_id``, or two connections with one id.
        """
        clusters = [
            (ep, self._backend.get_cluster(ep.identifier).spec.upstream_dsn) for ep in self.clusters()
        ]
        return connections.definitions_for(self.endpoint_url, self.region, clusters, aws_conn_id=aws_conn_id)

    # -- clusters ---------------------------------------------------------------------------

    def add_cluster(self, spec: ClusterSpec) -> ClusterEndpoint:
        """Create an emulated cluster (moto cluster, model and database endpoint).

        :param spec: the cluster.
        :raises ValueError: if a live cluster with that identifier exists.
        """
        if not self._loop.running:
            raise RuntimeError("start the emulator before adding clusters")
        model = self._backend.add_cluster(spec)
        log.info(
            "cluster %s (%s, %s) at %s:%s, %s",
            spec.identifier,
            spec.kind,
            spec.engine,
            self.host,
            model.port,
            model.advance().value,
        )
        return self.cluster(spec.identifier)

    def cluster(self, identifier: str) -> ClusterEndpoint:
        """Where a cluster is reachable.

        :param identifier: the cluster identifier.
        """
        model = self._backend.get_cluster(identifier)
        return ClusterEndpoint(
            identifier=model.identifier,
            arn=model.arn,
            kind=model.spec.kind,
            engine=model.spec.engine,
            host=model.host,
            port=model.port,
            region=model.spec.region,
            reader_host=model.reader_host or model.host,
        )

    def clusters(self) -> list[ClusterEndpoint]:
        """Every emulated cluster that is not deleted."""
        names = [m.identifier for m in self._backend.models() if m.advance() is not Phase.DELETED]
        return [self.cluster(name) for name in names]

    def timeline(self, identifier: str) -> list[TimelineEvent]:
        """The cluster's timeline, oldest first (``at`` is ``time.time()`` epoch seconds).

        :param identifier: the cluster identifier.
        """
        return self._backend.get_cluster(identifier).timeline_events()

    def ready_at(self, identifier: str) -> float | None:
        """The last time the cluster became connectable (``None``: never yet).

        :param identifier: the cluster identifier.
        """
        model = self._backend.get_cluster(identifier)
        with model.lock:
            model.advance()
            return model.last_ready_at

    def status(self, identifier: str) -> str:
        """The internal phase now: available, paused, resuming, scaling, stopping, stopped,
        starting or deleted (RDS's ``Status`` hides paused and resuming as available).

        :param identifier: the cluster identifier.
        """
        model = self._backend.get_cluster(identifier)
        model.observe()
        return model.advance().value

    def pause(self, identifier: str, *, paused_for: float = 0.0) -> None:
        """Pause a serverless cluster at once (open sessions are cut).

        :param identifier: the cluster identifier.
        :param paused_for: pretend it was paused this many seconds ago (deep-sleep tests).
        """
        self._backend.get_cluster(identifier).force_pause(paused_for=paused_for)
        self._backend.sync_cluster(identifier)

    def wake(self, identifier: str) -> None:
        """Make a cluster available at once (also a stopped one): test setup, no resume delay.

        :param identifier: the cluster identifier.
        """
        self._backend.get_cluster(identifier).force_wake()
        self._backend.sync_cluster(identifier)

    def stop_cluster(self, identifier: str) -> None:
        """Stop a cluster at once (``StopDBCluster`` takes ``stop_seconds``; this does not).

        :param identifier: the cluster identifier.
        """
        self._backend.get_cluster(identifier).force_stop()
        self._backend.sync_cluster(identifier)

    def delete(self, identifier: str) -> None:
        """Delete a cluster (in moto too): its endpoint refuses, Describe answers 404.

        :param identifier: the cluster identifier.
        """
        self._backend.delete_cluster(identifier)

    def set_timings(self, identifier: str, timings: Timings) -> None:
        """Change a cluster's timings (applies to transitions requested from now on).

        :param identifier: the cluster identifier.
        :param timings: the new timings.
        """
        self._backend.get_cluster(identifier).set_timings(timings)

    def set_resume_answers(
        self, identifier: str, resume_answer: str | None = None, data_api_resume_answer: str | None = None
    ) -> None:
        """Change what a cluster answers while it resumes (``None``: keep that one).

        :param identifier: the cluster identifier.
        :param resume_answer: for connection attempts, see :attr:`ClusterSpec.resume_answer`.
        :param data_api_resume_answer: for rds-data calls, see :attr:`ClusterSpec.data_api_resume_answer`.
        :raises ValueError: for an unknown answer, or one the cluster's engine cannot give.
        """
        self._backend.get_cluster(identifier).set_resume_answers(resume_answer, data_api_resume_answer)

    def timings_of(self, identifier: str) -> Timings:
        """A cluster's timings.

        :param identifier: the cluster identifier.
        """
        return self._backend.get_cluster(identifier).timings

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._backend.injector.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the injected faults (the throttle window and 5xx burst restart now).

        :param faults: the new faults.
        """
        self._backend.injector.set(faults)

    def create_secret(self, username: str, password: str, name: str | None = None) -> str:
        """Store database credentials in the emulated Secrets Manager; return the secret ARN.

        :param username: database user.
        :param password: its password.
        :param name: secret name (default: a unique one).
        """
        name = name or f"aurora-emulator-{uuid.uuid4().hex[:12]}"
        return motoglue.create_secret(
            self.account_id, self.region, name, {"username": username, "password": password}
        )

    # -- observing --------------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        """Counters of RDS calls, connections and Data API calls.

        Keys: ``rds_calls`` (by action), ``rds_calls_by_cluster`` (identifier -> action ->
        count, where the call named a cluster, also by ARN), ``rds_calls_by_access_key`` and
        ``rds_calls_by_access_key_and_cluster``, ``rds_faults`` (injected error code -> count),
        ``connection_attempts``, ``connections_completed``, ``connections_completed_at``
        (identifier -> list of epoch times), ``connections_abandoned``, ``connections_reset``,
        ``connections_failed_by_fault`` and ``data_api_calls`` (identifier -> count).
        """
        return self._backend.counters()

    def state(self) -> dict[str, Any]:
        """Everything observable, as JSON (the same document as ``GET /_emulator/state``)."""
        models = self._backend.models()
        for model in models:
            model.observe()
        return {
            "endpoint_url": self.endpoint_url if self._server is not None else None,
            "region": self.region,
            "account_id": self.account_id,
            "now": time.time(),
            "faults": self.faults.as_dict(),
            "default_timings": dict(self.timings.__dict__),
            "clusters": {model.identifier: self._cluster_state(model) for model in models},
            "counters": self.counters(),
        }

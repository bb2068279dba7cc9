"""``AuroraEmulator``: the AWS endpoint, the database endpoints and their shared state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterable
from types import TracebackType
from typing import Any, TypeVar

from airflow_aurora_wake.emulator import motoglue
from airflow_aurora_wake.emulator.awsapp import AwsEndpointApp, query_error
from airflow_aurora_wake.emulator.config import (
    ClusterEndpoint,
    ClusterSpec,
    Faults,
    TimelineEvent,
    Timings,
    parse_dsn,
)
from airflow_aurora_wake.emulator.dataapi import StatementResult, execute_statement
from airflow_aurora_wake.emulator.dbproxy import ClusterProxy
from airflow_aurora_wake.emulator.model import ClusterModel, Phase

log = logging.getLogger(__name__)
T = TypeVar("T")

_THREAD_TIMEOUT = 10.0


class AuroraEmulator:
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
        self.timings = timings or Timings()
        self._faults = faults or Faults()
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
        self._lock = threading.RLock()
        self._models: dict[str, ClusterModel] = {}
        self._proxies: dict[str, ClusterProxy] = {}
        self._rds_calls: Counter[str] = Counter()
        self._rds_calls_by_cluster: dict[str, Counter[str]] = {}
        self._rds_faults: Counter[str] = Counter()
        self._data_api_calls: Counter[str] = Counter()
        self._rng = random.Random(self._faults.seed)
        self._faults_set_at = time.time()
        self._server_errors_left = self._faults.server_errors
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._started = False

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
            self._start_loop()
            self._start_server()
            for spec in self._initial:
                self.add_cluster(spec)
        except BaseException:
            self.shutdown()
            raise
        log.info("Aurora emulator listening at %s (account %s)", self.endpoint_url, self.account_id)
        return self

    def stop(self, identifier: str | None = None) -> None:
        """Without an argument: shut the emulator down. With one: stop that cluster at once.

        The two meanings share the name because the contract asks for both ``emu.stop()``
        (lifecycle) and ``emu.stop("sales")`` (test setup); :meth:`shutdown` and
        :meth:`stop_cluster` are the unambiguous spellings.

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
            self._server_thread.join(_THREAD_TIMEOUT)
            self._server_thread = None
        loop = self._loop
        if loop is not None and loop.is_running():
            proxies = list(self._proxies.values())

            async def close_all() -> None:
                await asyncio.gather(*(proxy.aclose() for proxy in proxies), return_exceptions=True)

            try:
                asyncio.run_coroutine_threadsafe(close_all(), loop).result(_THREAD_TIMEOUT)
            except Exception:
                log.exception("closing the database endpoints failed")
            loop.call_soon_threadsafe(loop.stop)
        if self._loop_thread is not None:
            self._loop_thread.join(_THREAD_TIMEOUT)
            self._loop_thread = None
        if loop is not None and not loop.is_running() and not loop.is_closed():
            loop.close()
        self._loop = None
        self._proxies.clear()
        if self._started and self._owns_account:
            try:
                motoglue.forget_account(self.account_id)
            except Exception:
                log.exception("could not reset moto's backends of account %s", self.account_id)
        self._started = False

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            # Let cancelled tasks finish their clean-up before the loop closes.
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

        self._loop = loop
        self._loop_thread = threading.Thread(target=run, name="aurora-emulator-loop", daemon=True)
        self._loop_thread.start()
        if not ready.wait(_THREAD_TIMEOUT):
            raise RuntimeError("the emulator's event loop did not start")

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
        app = AwsEndpointApp(self, inner)
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

    # -- clusters ---------------------------------------------------------------------------

    def add_cluster(self, spec: ClusterSpec) -> ClusterEndpoint:
        """Create an emulated cluster (moto cluster, model and database endpoint).

        :param spec: the cluster.
        :raises ValueError: if a live cluster with that identifier exists.
        """
        if self._loop is None:
            raise RuntimeError("start the emulator before adding clusters")
        key = spec.identifier.lower()
        with self._lock:
            existing = self._models.get(key)
            if existing is not None and existing.advance() is not Phase.DELETED:
                raise ValueError(f"an emulated cluster named {spec.identifier!r} already exists")
            if motoglue.find_cluster(self.account_id, spec.region, spec.identifier) is not None:
                raise ValueError(f"a cluster named {spec.identifier!r} already exists in {spec.region}")
            placeholder = ClusterProxy.reserve_port(self.host, spec.port)
            try:
                port = placeholder.getsockname()[1]
                arn = f"arn:aws:rds:{spec.region}:{self.account_id}:cluster:{spec.identifier}"
                model = ClusterModel(spec, spec.timings or self.timings, arn=arn, port=port, host=self.host)
                upstream = parse_dsn(spec.upstream_dsn)
                master = upstream.user or ("postgres" if upstream.engine == "postgresql" else "root")
                motoglue.create_cluster(self.account_id, model, master)
                proxy = ClusterProxy(model, lambda: self._faults)
                proxy.attach_placeholder(placeholder)
            except BaseException:
                placeholder.close()
                raise
            self._models[key] = model
            self._proxies[key] = proxy
        model.on_change = self._on_model_change
        model.on_observe = self._on_model_observe
        self._call(proxy.reconcile())
        log.info(
            "cluster %s (%s, %s) at %s:%s, %s",
            spec.identifier,
            spec.kind,
            spec.engine,
            self.host,
            port,
            model.advance().value,
        )
        return self.cluster(spec.identifier)

    def cluster(self, identifier: str) -> ClusterEndpoint:
        """Where a cluster is reachable.

        :param identifier: the cluster identifier.
        """
        model = self._model(identifier)
        return ClusterEndpoint(
            identifier=model.identifier,
            arn=model.arn,
            kind=model.spec.kind,
            engine=model.spec.engine,
            host=model.host,
            port=model.port,
            region=model.spec.region,
        )

    def clusters(self) -> list[ClusterEndpoint]:
        """Every emulated cluster that is not deleted."""
        with self._lock:
            names = [m.identifier for m in self._models.values() if m.advance() is not Phase.DELETED]
        return [self.cluster(name) for name in names]

    def timeline(self, identifier: str) -> list[TimelineEvent]:
        """The cluster's timeline, oldest first (``at`` is ``time.time()`` epoch seconds).

        :param identifier: the cluster identifier.
        """
        return self._model(identifier).timeline_events()

    def ready_at(self, identifier: str) -> float | None:
        """The last time the cluster became connectable (``None``: never yet).

        :param identifier: the cluster identifier.
        """
        model = self._model(identifier)
        with model.lock:
            model.advance()
            return model.last_ready_at

    def status(self, identifier: str) -> str:
        """The internal phase now: available, paused, resuming, scaling, stopping, stopped,
        starting or deleted (RDS's ``Status`` hides paused and resuming as available).

        :param identifier: the cluster identifier.
        """
        model = self._model(identifier)
        model.observe()
        return model.advance().value

    def pause(self, identifier: str, *, paused_for: float = 0.0) -> None:
        """Pause a serverless cluster at once (open sessions are cut).

        :param identifier: the cluster identifier.
        :param paused_for: pretend it was paused this many seconds ago (deep-sleep tests).
        """
        self._model(identifier).force_pause(paused_for=paused_for)
        self._sync(identifier)

    def wake(self, identifier: str) -> None:
        """Make a cluster available at once (also a stopped one): test setup, no resume delay.

        :param identifier: the cluster identifier.
        """
        self._model(identifier).force_wake()
        self._sync(identifier)

    def stop_cluster(self, identifier: str) -> None:
        """Stop a cluster at once (``StopDBCluster`` takes ``stop_seconds``; this does not).

        :param identifier: the cluster identifier.
        """
        self._model(identifier).force_stop()
        self._sync(identifier)

    def delete(self, identifier: str) -> None:
        """Delete a cluster (in moto too): its endpoint refuses, Describe answers 404.

        :param identifier: the cluster identifier.
        """
        model = self._model(identifier)
        backend = motoglue.rds_backend(self.account_id, model.spec.region)
        for name, instance in list(backend.databases.items()):
            if motoglue.model_of(instance) is model:
                backend.databases.pop(name, None)
        backend.clusters.pop(model.identifier, None)
        model.mark_deleted()
        self._sync(identifier)

    def set_timings(self, identifier: str, timings: Timings) -> None:
        """Change a cluster's timings (applies to transitions requested from now on).

        :param identifier: the cluster identifier.
        :param timings: the new timings.
        """
        self._model(identifier).set_timings(timings)

    def _timings_of(self, identifier: str) -> Timings:
        return self._model(identifier).timings

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the injected faults (the throttle window and 5xx burst restart now).

        :param faults: the new faults.
        """
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self._faults_set_at = time.time()
            self._server_errors_left = faults.server_errors

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
        count, where the call named a ``DBClusterIdentifier``), ``rds_faults`` (injected
        error code -> count), ``connection_attempts``, ``connections_completed``,
        ``connections_completed_at`` (identifier -> list of epoch times),
        ``connections_abandoned``, ``connections_reset``, ``connections_failed_by_fault``
        and ``data_api_calls`` (identifier -> count).
        """
        with self._lock:
            models = list(self._models.values())
            result: dict[str, Any] = {
                "rds_calls": dict(self._rds_calls),
                "rds_calls_by_cluster": {k: dict(v) for k, v in self._rds_calls_by_cluster.items()},
                "rds_faults": dict(self._rds_faults),
                "data_api_calls": dict(self._data_api_calls),
            }
        per_cluster: dict[str, dict[str, Any]] = {
            "connection_attempts": {},
            "connections_completed": {},
            "connections_completed_at": {},
            "connections_abandoned": {},
            "connections_reset": {},
            "connections_failed_by_fault": {},
        }
        for model in models:
            with model.lock:
                name = model.identifier
                per_cluster["connection_attempts"][name] = model.connection_attempts
                per_cluster["connections_completed"][name] = len(model.connections_completed_at)
                per_cluster["connections_completed_at"][name] = list(model.connections_completed_at)
                per_cluster["connections_abandoned"][name] = model.connections_abandoned
                per_cluster["connections_reset"][name] = model.connections_reset
                per_cluster["connections_failed_by_fault"][name] = model.connections_failed_by_fault
        result.update(per_cluster)
        return result

    def state(self) -> dict[str, Any]:
        """Everything observable, as JSON (the same document as ``GET /_emulator/state``)."""
        with self._lock:
            models = list(self._models.values())
        for model in models:
            model.observe()
        return {
            "endpoint_url": self.endpoint_url if self._server is not None else None,
            "region": self.region,
            "account_id": self.account_id,
            "now": time.time(),
            "faults": self._faults.as_dict(),
            "default_timings": dict(self.timings.__dict__),
            "clusters": {model.identifier: model.snapshot() for model in models},
            "counters": self.counters(),
        }

    # -- used by the AWS endpoint -------------------------------------------------------------

    def _model(self, identifier: str) -> ClusterModel:
        with self._lock:
            model = self._models.get(identifier.lower())
        if model is None:
            raise KeyError(f"no emulated cluster named {identifier!r}")
        return model

    def _find_model(
        self, identifier: str | None, region: str | None, *, include_deleted: bool = False
    ) -> ClusterModel | None:
        if not identifier:
            return None
        with self._lock:
            model = self._models.get(identifier.lower())
        if model is None or (region is not None and model.spec.region != region):
            return None
        if not include_deleted and model.advance() is Phase.DELETED:
            return None
        return model

    def _adopt_cluster(self, identifier: str, region: str, *, data_api: bool) -> None:
        """Give a cluster created through the API (CreateDBCluster) a model and an endpoint."""
        cluster = motoglue.find_cluster(self.account_id, region, identifier)
        if cluster is None or motoglue.model_of(cluster) is not None:
            return
        engine = str(cluster.engine)
        if engine not in ("aurora-postgresql", "aurora-mysql"):
            return
        existing = self._find_model(identifier, None)
        if existing is not None:
            log.warning("cluster %s exists in another region of the emulator; not emulated", identifier)
            return
        v2 = getattr(cluster, "serverless_v2_scaling_configuration", None)
        scaling = getattr(cluster, "scaling_configuration", None)
        if cluster.engine_mode == "serverless":
            kind, config = "serverless-v1", scaling
        elif v2:
            kind, config = "serverless-v2", v2
        else:
            kind, config = "provisioned", None

        def pick(name: str, snake: str) -> Any:
            if config is None:
                return None
            value = config.get(name)
            return config.get(snake) if value is None else value

        low, high = pick("MinCapacity", "min_capacity"), pick("MaxCapacity", "max_capacity")
        pause = pick("SecondsUntilAutoPause", "seconds_until_auto_pause")
        base: dict[str, Any] = {
            "identifier": str(cluster.db_cluster_identifier),
            "kind": kind,
            "engine": engine,
            "state": "available",
            "data_api": data_api,
            "iam_auth": bool(getattr(cluster, "iam_auth", False)),
            "region": region,
            "seconds_until_auto_pause": int(pause) if pause is not None else 300,
        }
        try:
            spec = ClusterSpec(
                **base,
                min_capacity=float(low) if low is not None else None,
                max_capacity=float(high) if high is not None else None,
            )
        except ValueError:
            # moto's own defaults (v1 min 1 for PostgreSQL) are not valid Aurora values.
            spec = ClusterSpec(**base)
        placeholder = ClusterProxy.reserve_port(self.host, None)
        model = ClusterModel(
            spec,
            self.timings,
            arn=str(cluster.db_cluster_arn),
            port=placeholder.getsockname()[1],
            host=self.host,
        )
        proxy = ClusterProxy(model, lambda: self._faults)
        proxy.attach_placeholder(placeholder)
        with self._lock:
            self._models[spec.identifier.lower()] = model
            self._proxies[spec.identifier.lower()] = proxy
        motoglue.attach_cluster(cluster, model)
        motoglue.attach_cluster_instances(self.account_id, model)
        model.on_change = self._on_model_change
        model.on_observe = self._on_model_observe
        self._call(proxy.reconcile())

    def _sync(self, identifier: str) -> None:
        """Apply a cluster's side effects (listener, held connections) before returning, so a
        caller that stops a cluster sees its port refuse at once."""
        proxy = self._proxies.get(identifier.lower())
        loop = self._loop
        if proxy is not None and loop is not None and loop.is_running():
            self._call(proxy.reconcile())

    def _on_model_observe(self, model: ClusterModel) -> None:
        proxy = self._proxies.get(model.identifier.lower())
        thread = self._loop_thread
        if proxy is None or thread is None or threading.get_ident() == thread.ident:
            return
        if proxy.is_listening != model.is_listening():
            self._sync(model.identifier)

    def _on_model_change(self, model: ClusterModel) -> None:
        loop = self._loop
        proxy = self._proxies.get(model.identifier.lower())
        if loop is None or proxy is None or loop.is_closed():
            return

        def schedule() -> None:
            proxy._spawn(proxy.reconcile())

        # RuntimeError: the loop is shutting down, nothing left to reconcile.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(schedule)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = _THREAD_TIMEOUT) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the emulator is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def _run_statement(
        self,
        model: ClusterModel,
        *,
        user: str,
        password: str,
        database: str | None,
        sql: str,
        parameters: list[dict[str, Any]],
    ) -> StatementResult:
        upstream = parse_dsn(model.spec.upstream_dsn)
        return self._call(
            execute_statement(
                upstream, user=user, password=password, database=database, sql=sql, parameters=parameters
            ),
            timeout=60.0,
        )

    def _count_rds_call(self, action: str, identifier: str | None) -> None:
        with self._lock:
            self._rds_calls[action] += 1
            if identifier:
                self._rds_calls_by_cluster.setdefault(identifier, Counter())[action] += 1

    def _count_data_api(self, identifier: str) -> None:
        with self._lock:
            self._data_api_calls[identifier] += 1

    def _rds_fault(
        self, action: str, identifier: str | None, region: str
    ) -> tuple[int, dict[str, str], bytes] | None:
        """The injected error for this RDS call, if any (deny, then throttle, then 5xx)."""
        with self._lock:
            faults = self._faults
            if faults.denies("rds", action):
                self._rds_faults["AccessDenied"] += 1
                resource = (
                    f"arn:aws:rds:{region}:{self.account_id}:cluster:{identifier}"
                    if identifier
                    else f"arn:aws:rds:{region}:{self.account_id}:*"
                )
                return query_error(
                    "AccessDenied",
                    f"User: arn:aws:iam::{self.account_id}:user/testing is not authorized to perform: "
                    f"rds:{action} on resource: {resource} because no identity-based policy allows the "
                    f"rds:{action} action",
                    403,
                )
            if faults.throttle_fraction > 0:
                in_window = (
                    faults.throttle_seconds is None
                    or time.time() < self._faults_set_at + faults.throttle_seconds
                )
                if in_window and self._rng.random() < faults.throttle_fraction:
                    self._rds_faults["Throttling"] += 1
                    return query_error("Throttling", "Rate exceeded", 400)
            if self._server_errors_left > 0:
                self._server_errors_left -= 1
                if faults.server_error_status == 503:
                    self._rds_faults["ServiceUnavailable"] += 1
                    return query_error(
                        "ServiceUnavailable",
                        "Service is unavailable. Please try again later.",
                        503,
                        sender=False,
                    )
                self._rds_faults["InternalFailure"] += 1
                return query_error(
                    "InternalFailure",
                    "The request processing has failed because of an unknown error, exception or failure.",
                    500,
                    sender=False,
                )
        return None

"""Wait until a cluster is ready: available in RDS *and* a real ``SELECT 1`` ran.

One describe-and-probe loop (a "poller") serves every waiter with the same share key in one
event loop, so a thousand waits on one cluster make one poller, not a thousand. Each waiter
keeps its own deadline and its own log; the poller stops and closes its clients when its last
waiter leaves (also by cancellation).

Timing uses the event loop's clock (``loop.time()``) for durations and an injectable wall
clock for the absolute deadline, so tests can run on a virtual-time loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import time
import weakref
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot, StatusCategory
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    ClusterDescriptionError,
    ClusterStateError,
    ErrorVerdict,
    ReadyTimeoutError,
    TransientError,
    WaitDiagnosis,
    classify_error,
)
from airflow_aurora_wake.core.probes import (
    DatabaseTarget,
    check_target_engine,
    probe_data_api,
    probe_database,
)
from airflow_aurora_wake.core.rds import RdsCalls, describe_cluster
from airflow_aurora_wake.core.retry import AWS_RETRY, DATA_API_RETRY, PROBE_RETRY, THROTTLE_RETRY, RetryPolicy
from airflow_aurora_wake.core.validation import (
    validate_cluster_identifier,
    validate_deadline,
    validate_non_negative_seconds,
    validate_optional_name,
    validate_positive_seconds,
    validate_probe_settings,
    validate_region,
)

__all__ = [
    "SHARED_WAITS",
    "CheckOutcome",
    "ReadyReport",
    "SharedWaitRegistry",
    "WaitDiagnosis",
    "WaitRequest",
    "WaitResources",
    "check_ready_once",
    "wait_until_ready",
]

logger = logging.getLogger(__name__)
_NUMBERS = re.compile(r"\d+(?:\.\d+)?")
LogCallback = Callable[[str], None]


#: Probe cadence while RDS shows the cluster starting: a refused connection is free of AWS API
#: budget, and full jitter up to 0.8 s keeps the end of a start seen within a second.
_WAKING_PROBE_RETRY = RetryPolicy(initial=0.5, maximum=0.8)

#: While RDS shows a cluster starting and the connection probe watches for the end of the start,
#: describes are this many describe intervals apart.
WAKING_DESCRIBE_STRETCH = 3
#: Waiters released per event-loop turn when a shared wait completes.
_DELIVERY_BATCH = 100


def _default_log(message: str) -> None:
    logger.info("%s", message)


@dataclass(frozen=True)
class WaitRequest:
    """Everything a wait needs besides clients and credentials; hashable, safe in trigger kwargs.

    :param db_cluster_identifier: the cluster identifier.
    :param region_name: the region (for messages; the clients carry the real one).
    :param probe: ``connection`` (a real database connection) or ``data-api``.
    :param connect_timeout: seconds one probe attempt may take (AWS advises >= 30 s).
    :param describe_interval: at most one ``DescribeDBClusters`` per this many seconds.
    :param stopped_grace: how long a ``stopped`` cluster is waited on before failing (a start may
        have been requested and not show yet).
    :param data_api_secret_arn: the secret for ``probe="data-api"``.
    :param database: the database for the Data API probe.
    """

    db_cluster_identifier: str
    region_name: str | None
    probe: Literal["connection", "data-api"] = "connection"
    connect_timeout: float = 30.0
    describe_interval: float = 10.0
    stopped_grace: float = 60.0
    data_api_secret_arn: str | None = None
    database: str | None = None

    def __post_init__(self) -> None:
        reference = validate_cluster_identifier(self.db_cluster_identifier)
        if reference.identifier != self.db_cluster_identifier:
            # An ARN was given: keep the plain name (and its region unless one was given).
            object.__setattr__(self, "db_cluster_identifier", reference.identifier)
            if self.region_name is None:
                object.__setattr__(self, "region_name", reference.region_from_arn)
        validate_region(self.region_name)
        validate_probe_settings(self.probe, self.data_api_secret_arn)
        validate_positive_seconds(self.connect_timeout, "connect_timeout")
        validate_positive_seconds(self.describe_interval, "describe_interval")
        validate_non_negative_seconds(self.stopped_grace, "stopped_grace")
        validate_optional_name(self.database, "database")


class WaitResources(Protocol):
    """What the adapter supplies: clients and the database login (from an Airflow connection, or
    from plain parameters in :mod:`airflow_aurora_wake.core.api`)."""

    def rds_client(self) -> AbstractAsyncContextManager[Any]:
        """Return an async context manager yielding an aiobotocore RDS client."""
        ...

    def rds_data_client(self) -> AbstractAsyncContextManager[Any]:
        """Return an async context manager yielding an aiobotocore ``rds-data`` client."""
        ...

    async def database_target(self, snapshot: ClusterSnapshot) -> DatabaseTarget:
        """Return the database to probe; fill host/port from the snapshot when not configured.

        :param snapshot: the cluster as described.
        """
        ...


@dataclass(frozen=True)
class ReadyReport:
    """The cluster is ready: what the sensor pushes to XCom.

    :param db_cluster_identifier: the cluster.
    :param ready_at: epoch seconds when readiness was established.
    :param seconds_waited: seconds this waiter waited.
    :param attempts: probe attempts made by the (possibly shared) loop.
    :param rds_calls: AWS calls made by the loop, per action.
    :param kind: the cluster kind.
    :param engine: the engine.
    :param endpoint: ``host:port`` that answered (or the cluster endpoint for the Data API).
    :param probe: ``connection`` or ``data-api``.
    """

    db_cluster_identifier: str
    ready_at: float
    seconds_waited: float
    attempts: int
    rds_calls: dict[str, int]
    kind: ClusterKind
    engine: str
    endpoint: str | None
    probe: str = "connection"

    def as_xcom(self) -> dict[str, Any]:
        """Return the JSON-serializable report."""
        return {
            "ready_at": self.ready_at,
            "seconds_waited": round(self.seconds_waited, 3),
            "attempts": self.attempts,
            "rds_calls": dict(self.rds_calls),
            "kind": self.kind.value,
            "engine": self.engine,
            "endpoint": self.endpoint,
        }


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one :func:`check_ready_once` (poke mode).

    :param ready: True when the cluster is ready.
    :param detail: a sentence for the task log.
    :param snapshot: the cluster as described, if the describe succeeded.
    :param endpoint: ``host:port`` probed, if any.
    :param rds_calls: AWS calls made, per action.
    :param retry_reason: the reason a retryable failure gave, if any.
    """

    ready: bool
    detail: str
    snapshot: ClusterSnapshot | None = None
    endpoint: str | None = None
    rds_calls: dict[str, int] = field(default_factory=dict)
    retry_reason: str | None = None


def _stopped_error(identifier: str, grace: float) -> ClusterStateError:
    return ClusterStateError(
        identifier,
        "stopped",
        f"it stayed stopped for {grace:g} s: a stopped cluster needs the wake operator "
        "(AuroraServerlessWakeOperator with start_if_stopped=True) or a StartDBCluster call first",
    )


def _stopped_while_waiting_error(identifier: str, seen_status: str) -> ClusterStateError:
    return ClusterStateError(
        identifier,
        "stopped",
        f"it was stopped while waiting for it (this wait had seen it {seen_status!r}): something "
        "stopped it (StopDBCluster, the console, another tool); start it again (the wake operator "
        "AuroraServerlessWakeOperator with start_if_stopped=True, or StartDBCluster) and re-run the task",
    )


def _describe_snapshot(snapshot: ClusterSnapshot) -> str:
    capacity = "" if snapshot.capacity is None else f", capacity {snapshot.capacity:g}"
    return (
        f"cluster {snapshot.identifier} is {snapshot.kind.value} ({snapshot.engine}), "
        f"status {snapshot.status}{capacity}"
    )


class _Waiter:
    """One caller of :func:`wait_until_ready` attached to a poller."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float, log: LogCallback) -> None:
        self.future: asyncio.Future[ReadyReport] = loop.create_future()
        self.deadline = deadline  # loop time
        self.joined_at = loop.time()
        self.log = log

    def tell(self, message: str, now: float) -> None:
        try:
            self.log(f"{message} ({now - self.joined_at:.1f} s elapsed)")
        except Exception:  # a broken log callback must not break the wait of everybody else
            logger.exception("log callback failed")


class _Poller:
    """The describe-and-probe loop for one cluster; serves one or more waiters."""

    def __init__(
        self,
        request: WaitRequest,
        resources: WaitResources,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        on_finish: Callable[[_Poller], None] | None = None,
    ) -> None:
        self.request = request
        self.resources = resources
        self.clock = clock
        self.rng = rng
        self.loop = asyncio.get_running_loop()
        self.on_finish = on_finish
        # Insertion-ordered set: a thousand waiters leave in O(1) each, not O(n).
        self.waiters: dict[_Waiter, None] = {}
        self.calls = RdsCalls()
        self.attempts = 0
        self.snapshot: ClusterSnapshot | None = None
        self.target: DatabaseTarget | None = None
        self.last_describe_at: float | None = None
        self.last_probe_error: str | None = None
        self.last_rds_error: str | None = None
        self.probe_started_at: float | None = None
        self.state_key: str | None = None
        self.state_message: str | None = None
        self.finished = False
        self.task: asyncio.Task[None] | None = None

    # --- waiters ----------------------------------------------------------------------------

    def start(self) -> None:
        self.task = self.loop.create_task(
            self._run(), name=f"aurora-wait:{self.request.db_cluster_identifier}"
        )

    def add_waiter(self, waiter: _Waiter) -> None:
        self.waiters[waiter] = None
        if self.state_message is not None:
            waiter.tell(self.state_message, self.loop.time())

    def remove_waiter(self, waiter: _Waiter) -> bool:
        """Detach a waiter; return True when it was the last one (the caller stops the poller)."""
        self.waiters.pop(waiter, None)
        if not self.waiters and not self.finished:
            self._finish()
            return True
        return False

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            if self.on_finish is not None:
                self.on_finish(self)

    def _state(self, key: str, message: str) -> None:
        """Tell every waiter about a change of state, once per change."""
        self.state_message = message
        if key == self.state_key:
            return
        self.state_key = key
        now = self.loop.time()
        for waiter in list(self.waiters):
            waiter.tell(message, now)

    def diagnosis(self, waiter: _Waiter) -> WaitDiagnosis:
        """What the loop saw, from the point of view of ``waiter``."""
        now = self.loop.time()
        snapshot = self.snapshot
        probe_error = self.last_probe_error
        if self.probe_started_at is not None:
            in_flight = f"an attempt was still open after {now - self.probe_started_at:.1f} s"
            probe_error = f"{probe_error}; {in_flight}" if probe_error else in_flight
        return WaitDiagnosis(
            identifier=self.request.db_cluster_identifier,
            region=self.request.region_name,
            elapsed=now - waiter.joined_at,
            last_status=snapshot.status if snapshot else None,
            last_capacity=snapshot.capacity if snapshot else None,
            kind=snapshot.kind.value if snapshot else None,
            engine=snapshot.engine if snapshot else None,
            last_probe_error=probe_error,
            last_rds_error=self.last_rds_error,
            attempts=self.attempts,
            rds_calls=self.calls.as_dict(),
            probe=self.request.probe,
        )

    def _latest_deadline(self) -> float:
        return max((waiter.deadline for waiter in self.waiters), default=self.loop.time())

    async def _deliver_ready(self) -> None:
        now = self.loop.time()
        snapshot = self.snapshot
        assert snapshot is not None
        if self.request.probe == "connection" and self.target is not None:
            endpoint: str | None = f"{self.target.host}:{self.target.port}"
        else:
            endpoint = f"{snapshot.endpoint}:{snapshot.port}" if snapshot.endpoint else None
        self._finish()
        ready_at = self.clock()
        calls = self.calls.as_dict()
        waiters = list(self.waiters)
        for start in range(0, len(waiters), _DELIVERY_BATCH):
            if start:
                # Hand the loop back between batches: releasing a thousand waiters (a log line
                # and a task wake-up each) in one go would stall every other trigger.
                await asyncio.sleep(0)
            for waiter in waiters[start : start + _DELIVERY_BATCH]:
                if waiter.future.done():
                    continue
                elapsed = now - waiter.joined_at
                self._tell_ready(waiter, elapsed)
                waiter.future.set_result(
                    ReadyReport(
                        db_cluster_identifier=self.request.db_cluster_identifier,
                        ready_at=ready_at,
                        seconds_waited=elapsed,
                        attempts=self.attempts,
                        rds_calls=dict(calls),
                        kind=snapshot.kind,
                        engine=snapshot.engine,
                        endpoint=endpoint,
                        probe=self.request.probe,
                    )
                )

    @staticmethod
    def _tell_ready(waiter: _Waiter, elapsed: float) -> None:
        try:
            waiter.log(f"ready after {elapsed:.1f} s")
        except Exception:
            logger.exception("log callback failed")

    def _deliver_error(self, error: BaseException) -> None:
        self._finish()
        now = self.loop.time()
        for waiter in self.waiters:
            waiter.tell(f"failed: {error}", now)
            if not waiter.future.done():
                waiter.future.set_exception(error)

    # --- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            async with AsyncExitStack() as stack:
                rds = await stack.enter_async_context(self.resources.rds_client())
                rds_data = None
                if self.request.probe == "data-api":
                    rds_data = await stack.enter_async_context(self.resources.rds_data_client())
                await self._poll(rds, rds_data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            verdict = classify_error(
                exc, where="rds", cluster=self.request.db_cluster_identifier, region=self.request.region_name
            )
            self._deliver_error(verdict.error if verdict.error is not None and not verdict.retry else exc)

    async def _sleep_until(self, when: float) -> None:
        await asyncio.sleep(max(0.0, when - self.loop.time()))

    async def _poll(self, rds: Any, rds_data: Any) -> None:
        request = self.request
        loop = self.loop
        probe_policy = DATA_API_RETRY if request.probe == "data-api" else PROBE_RETRY
        probe_failures = 0
        probe_throttles = 0
        rds_failures = 0
        rds_throttles = 0
        auth_28000_attempts = 0
        stopped_since: float | None = None
        # The last status in which this wait saw the cluster up (available or on its way): a
        # cluster that is stopped after that was stopped during the wait, and no grace applies.
        seen_up: str | None = None
        next_describe_at = loop.time()  # the first check describes
        next_probe_at = loop.time()
        confirming = False
        answered_while_waking = False

        while True:
            if self.finished:
                # The last waiter left. Normally the poller is cancelled then, but Python 3.11's
                # asyncio.wait_for can swallow a cancellation that lands as a probe finishes
                # (bpo-42130): without this the loop would go on describing forever, and the
                # cancelled trigger would never finish cancelling.
                return
            now = loop.time()
            if now >= next_describe_at:
                try:
                    snapshot = await describe_cluster(
                        rds,
                        request.db_cluster_identifier,
                        region_name=request.region_name,
                        calls=self.calls,
                        seen=self.snapshot is not None,
                    )
                except TransientError as exc:
                    self.last_rds_error = exc.verdict.reason
                    delay = self._backoff(exc.verdict, rds_throttles + 1, rds_failures + 1, AWS_RETRY)
                    if exc.verdict.throttled:
                        rds_throttles += 1
                    else:
                        rds_failures += 1
                    # Respect the describe rate except while nothing is known yet or a probe
                    # success waits for its confirmation.
                    floor = 0.0 if (self.snapshot is None or confirming) else request.describe_interval
                    next_describe_at = loop.time() + max(floor, delay)
                    self._state(
                        f"rds:{exc.verdict.reason}", f"RDS answered {exc.verdict.reason}; backing off"
                    )
                    if self.snapshot is None or confirming:
                        await self._sleep_until(next_describe_at)
                        continue
                else:
                    rds_failures = rds_throttles = 0
                    self.last_rds_error = None
                    self.snapshot = snapshot
                    self.last_describe_at = loop.time()
                    next_describe_at = self.last_describe_at + request.describe_interval
                    if (
                        snapshot.category is StatusCategory.WAKING
                        and request.probe == "connection"
                        and not confirming
                        and not answered_while_waking
                    ):
                        # A start lasts minutes and the probe watches for its end (its success
                        # brings a confirming describe), so RDS is only asked now and then whether
                        # the start failed: that keeps a start's wait well under one describe per
                        # describe_interval even with the confirmation.
                        next_describe_at += request.describe_interval * (WAKING_DESCRIBE_STRETCH - 1)
                    if snapshot.category is StatusCategory.FAILED:
                        raise ClusterStateError(snapshot.identifier, snapshot.status)
                    if confirming:
                        confirming = False
                        if snapshot.shows_ready:
                            await self._deliver_ready()
                            return
                        # The database answered but RDS does not show it ready yet (v1 capacity
                        # still 0): wait for the next regular describe before probing again.
                        next_probe_at = next_describe_at
                        if snapshot.category is StatusCategory.WAKING:
                            # The database answers while RDS still shows it starting: the regular
                            # describes now decide (probing on would double the describes).
                            answered_while_waking = True
                        else:
                            self._state(
                                "confirm-lagging",
                                f"{_describe_snapshot(snapshot)}; the database answered, "
                                "waiting for RDS to agree",
                            )

            snapshot_now = self.snapshot
            assert snapshot_now is not None
            now = loop.time()
            category = snapshot_now.category
            if category is StatusCategory.STOPPED:
                if seen_up is not None:
                    raise _stopped_while_waiting_error(snapshot_now.identifier, seen_up)
                if stopped_since is None:
                    stopped_since = now
                if now - stopped_since >= request.stopped_grace:
                    raise _stopped_error(snapshot_now.identifier, request.stopped_grace)
                self._state(
                    "stopped",
                    f"{_describe_snapshot(snapshot_now)}; waiting up to {request.stopped_grace:g} s for a "
                    "requested start to show",
                )
                await self._sleep_until(min(next_describe_at, stopped_since + request.stopped_grace))
                continue
            stopped_since = None
            seen_up = snapshot_now.status
            waking = category is StatusCategory.WAKING
            if waking:
                self._state(
                    f"waking:{snapshot_now.status}", f"{_describe_snapshot(snapshot_now)}; waiting for it"
                )
                if request.probe != "connection" or answered_while_waking:
                    await self._sleep_until(next_describe_at)
                    continue
                # Starting (or rebooting...): the database accepts connections when the cluster
                # becomes available, up to describe_interval before the next describe would show
                # it. A refused connection costs no AWS API budget, so probe on a short cadence and
                # let a probe success trigger the confirming describe: the end of a start is seen
                # within a second, with no more describes. Waiting is logged once, not per probe.

            # Available in RDS (maybe paused): the probe is the readiness signal.
            if now < next_probe_at:
                await self._sleep_until(min(next_probe_at, next_describe_at))
                continue
            if not waking and (
                self.state_key is None or self.state_key.startswith(("stopped", "waking", "rds:"))
            ):
                self._state("probing", f"{_describe_snapshot(snapshot_now)}; probing")
            bound = min(request.connect_timeout, self._latest_deadline() - loop.time())
            if bound <= 0:
                await self._sleep_until(next_describe_at)
                continue
            self.attempts += 1
            self.probe_started_at = loop.time()
            try:
                await self._probe(snapshot_now, rds_data, bound)
            except asyncio.CancelledError:
                raise
            except AuroraWakeError:
                raise
            except Exception as exc:
                is_28000 = getattr(exc, "sqlstate", None) == "28000"
                if is_28000:
                    auth_28000_attempts += 1
                verdict = classify_error(
                    exc,
                    where="rds-data"
                    if request.probe == "data-api"
                    else snapshot_now.engine_family or "postgresql",
                    attempt=auth_28000_attempts if is_28000 else 1,
                    cluster=request.db_cluster_identifier,
                    region=request.region_name,
                    target=self.target.describe() if self.target else None,
                    secrets=[self.target.password] if self.target else (),
                )
                if not verdict.retry:
                    raise verdict.error if verdict.error is not None else exc from None
                self.last_probe_error = verdict.reason
                policy = _WAKING_PROBE_RETRY if waking else probe_policy
                delay = self._backoff(verdict, probe_throttles + 1, probe_failures + 1, policy)
                if verdict.throttled:
                    probe_throttles += 1
                else:
                    probe_failures += 1
                next_probe_at = loop.time() + delay
                if not waking:
                    # Numbers (timeouts, attempt counts) do not make a new state: log each kind once.
                    state_key = "probe:" + _NUMBERS.sub("#", verdict.reason)
                    self._state(state_key, self._probe_failure_message(snapshot_now, verdict))
                continue
            finally:
                self.probe_started_at = None
            if self.snapshot is not None and self.snapshot.shows_ready:
                # The last describe showed the cluster available (v1: with capacity) and a real
                # SELECT 1 just ran: both signals agree.
                await self._deliver_ready()
                return
            # The last describe did not show it ready: describe once more (now, not stale).
            confirming = True
            next_describe_at = loop.time()

    def _backoff(
        self, verdict: ErrorVerdict, throttle_attempt: int, failure_attempt: int, policy: RetryPolicy
    ) -> float:
        if verdict.throttled:
            return THROTTLE_RETRY.delay(throttle_attempt, self.rng)
        return policy.delay(failure_attempt, self.rng)

    def _probe_failure_message(self, snapshot: ClusterSnapshot, verdict: ErrorVerdict) -> str:
        reason = f"{verdict.reason}, attempt {self.attempts}"
        timed_out = "timed out" in verdict.reason or "resuming" in verdict.reason
        if timed_out and snapshot.may_be_paused:
            first = "Data API call" if self.request.probe == "data-api" else "connection attempt"
            return f"{first} started the resume; waiting ({reason})"
        return f"not ready yet; retrying ({reason})"

    async def _probe(self, snapshot: ClusterSnapshot, rds_data: Any, bound: float) -> None:
        request = self.request
        if request.probe == "data-api":
            if not snapshot.arn:
                raise ClusterDescriptionError(
                    f"DescribeDBClusters gave no DBClusterArn for {snapshot.identifier!r}; the Data API "
                    "probe needs it (use probe='connection')"
                )
            assert request.data_api_secret_arn is not None
            self.calls.record("ExecuteStatement")
            try:
                await asyncio.wait_for(
                    probe_data_api(
                        rds_data,
                        cluster_arn=snapshot.arn,
                        secret_arn=request.data_api_secret_arn,
                        database=request.database,
                    ),
                    timeout=bound,
                )
            except asyncio.TimeoutError:
                raise TimeoutError(f"Data API call timed out after {bound:.1f} s") from None
            return
        if self.target is None:
            self.target = await self.resources.database_target(snapshot)
            check_target_engine(snapshot, self.target)
        await probe_database(self.target, connect_timeout=bound)


class SharedWaitRegistry:
    """Pollers by share key, per event loop: waits with the same key share one poller.

    A triggerer runs all triggers in one event loop, so a module-level registry is shared by
    every trigger of that triggerer. Keys should identify the cluster and the connection used.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Poller]] = (
            weakref.WeakKeyDictionary()
        )

    def _pollers(self) -> dict[Hashable, _Poller]:
        loop = asyncio.get_running_loop()
        pollers = self._by_loop.get(loop)
        if pollers is None:
            pollers = {}
            self._by_loop[loop] = pollers
        return pollers

    def active_pollers(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """Return how many pollers run in ``loop`` (default: the running loop).

        :param loop: the event loop.
        """
        loop = loop or asyncio.get_running_loop()
        return len(self._by_loop.get(loop, {}))

    def active_tasks(self, loop: asyncio.AbstractEventLoop | None = None) -> list[asyncio.Task[None]]:
        """Return the poller tasks of ``loop`` (for tests and diagnostics).

        :param loop: the event loop.
        """
        loop = loop or asyncio.get_running_loop()
        return [poller.task for poller in self._by_loop.get(loop, {}).values() if poller.task is not None]

    def _join(
        self,
        key: Hashable,
        request: WaitRequest,
        resources: WaitResources,
        *,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> _Poller:
        pollers = self._pollers()
        # The request is part of the key: waits that differ in any setting never share.
        full_key = (key, request)
        poller = pollers.get(full_key)
        if poller is None or poller.finished:

            def forget(
                finished: _Poller, full_key: Hashable = full_key, pollers: dict[Hashable, _Poller] = pollers
            ) -> None:
                if pollers.get(full_key) is finished:
                    del pollers[full_key]

            poller = _Poller(request, resources, clock=clock, rng=rng, on_finish=forget)
            pollers[full_key] = poller
            poller.start()
        return poller


#: The process-wide registry (one poller per key per event loop).
SHARED_WAITS = SharedWaitRegistry()


async def _stop_poller(poller: _Poller) -> None:
    task = poller.task
    # Wait for the poller to close its sockets and clients; if we are cancelled meanwhile the
    # CancelledError propagates (asyncio.wait does not swallow it). Cancel again while it runs:
    # a cancellation swallowed by asyncio.wait_for (Python 3.11) must not leave us waiting.
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1.0)


async def wait_until_ready(
    request: WaitRequest,
    resources: WaitResources,
    *,
    deadline: float,
    share_key: Hashable | None = None,
    log: LogCallback = _default_log,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    registry: SharedWaitRegistry | None = None,
) -> ReadyReport:
    """Wait until the cluster is available and a real ``SELECT 1`` ran, or the deadline passes.

    :param request: what to wait for.
    :param resources: clients and database login.
    :param deadline: absolute epoch seconds (``time.time()`` + timeout).
    :param share_key: waits with the same key (and equal request) in this event loop share one
        describe-and-probe loop; ``None`` waits alone.
    :param log: receives each change of state once, with the elapsed time; never secrets.
    :param clock: the wall clock (inject with a virtual-time loop in tests).
    :param rng: random source for backoff jitter.
    :param registry: the registry for shared waits (default: :data:`SHARED_WAITS`).
    :raises ReadyTimeoutError: at the deadline, with a diagnosis.
    :raises AuroraWakeError: on anything waiting cannot fix (unknown cluster, wrong login, ...).
    """
    validate_deadline(deadline)
    loop = asyncio.get_running_loop()
    rng = rng or random.Random()
    if share_key is None:
        poller = _Poller(request, resources, clock=clock, rng=rng)
        poller.start()
    else:
        poller = (registry or SHARED_WAITS)._join(share_key, request, resources, clock=clock, rng=rng)
    waiter = _Waiter(loop, loop.time() + (deadline - clock()), log)
    poller.add_waiter(waiter)
    try:
        remaining = waiter.deadline - loop.time()
        if remaining <= 0:
            # Began after its deadline (a trigger re-created late): say so, not "nothing answered".
            raise ReadyTimeoutError(dataclasses.replace(poller.diagnosis(waiter), started_late=-remaining))
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout=remaining)
        except asyncio.TimeoutError:
            if waiter.future.done() and not waiter.future.cancelled():
                return waiter.future.result()  # resolved in the same instant as the deadline
            diagnosis = poller.diagnosis(waiter)
            with contextlib.suppress(Exception):
                log(f"timed out: {diagnosis.describe()}")
            raise ReadyTimeoutError(diagnosis) from None
    finally:
        if poller.remove_waiter(waiter):
            await _stop_poller(poller)


async def check_ready_once(
    request: WaitRequest,
    resources: WaitResources,
    *,
    waiting_since: float | None = None,
    attempt: int = 1,
    clock: Callable[[], float] = time.time,
    seen_up: str | None = None,
) -> CheckOutcome:
    """One describe and (if the cluster is available) one probe: the sensor's poke.

    :param request: what to wait for.
    :param resources: clients and database login.
    :param waiting_since: epoch seconds when the sensor started; a cluster still ``stopped``
        ``stopped_grace`` seconds after it fails with :class:`ClusterStateError`.
    :param attempt: the poke number (``28000`` is retried once).
    :param clock: the wall clock.
    :param seen_up: the status in which an earlier check of this wait saw the cluster up
        (available or on its way), if any: a cluster stopped since then fails at once.
    :raises AuroraWakeError: on anything waiting cannot fix.
    """
    calls = RdsCalls()
    identifier = request.db_cluster_identifier
    async with AsyncExitStack() as stack:
        rds = await stack.enter_async_context(resources.rds_client())
        try:
            snapshot = await describe_cluster(rds, identifier, region_name=request.region_name, calls=calls)
        except TransientError as exc:
            return CheckOutcome(
                False,
                f"RDS answered {exc.verdict.reason}",
                rds_calls=calls.as_dict(),
                retry_reason=exc.verdict.reason,
            )
        category = snapshot.category
        if category is StatusCategory.FAILED:
            raise ClusterStateError(identifier, snapshot.status)
        if category is StatusCategory.STOPPED:
            if seen_up is not None:
                raise _stopped_while_waiting_error(identifier, seen_up)
            if waiting_since is not None and clock() - waiting_since >= request.stopped_grace:
                raise _stopped_error(identifier, request.stopped_grace)
            return CheckOutcome(
                False, f"{_describe_snapshot(snapshot)}; waiting", snapshot, rds_calls=calls.as_dict()
            )
        if category is StatusCategory.WAKING:
            return CheckOutcome(
                False, f"{_describe_snapshot(snapshot)}; waiting", snapshot, rds_calls=calls.as_dict()
            )
        target: DatabaseTarget | None = None
        try:
            if request.probe == "data-api":
                if not snapshot.arn:
                    raise ClusterDescriptionError(
                        f"DescribeDBClusters gave no DBClusterArn for {identifier!r}"
                    )
                assert request.data_api_secret_arn is not None
                rds_data = await stack.enter_async_context(resources.rds_data_client())
                calls.record("ExecuteStatement")
                await asyncio.wait_for(
                    probe_data_api(
                        rds_data,
                        cluster_arn=snapshot.arn,
                        secret_arn=request.data_api_secret_arn,
                        database=request.database,
                    ),
                    timeout=request.connect_timeout,
                )
                endpoint = f"{snapshot.endpoint}:{snapshot.port}" if snapshot.endpoint else None
            else:
                target = await resources.database_target(snapshot)
                check_target_engine(snapshot, target)
                await probe_database(target, connect_timeout=request.connect_timeout)
                endpoint = f"{target.host}:{target.port}"
        except asyncio.CancelledError:
            raise
        except AuroraWakeError:
            raise
        except Exception as exc:
            verdict = classify_error(
                exc,
                where="rds-data" if request.probe == "data-api" else snapshot.engine_family or "postgresql",
                attempt=attempt,
                cluster=identifier,
                region=request.region_name,
                target=target.describe() if target else None,
                secrets=[target.password] if target else (),
            )
            if not verdict.retry:
                if verdict.error is None:
                    raise
                raise verdict.error from None
            return CheckOutcome(
                False,
                f"{_describe_snapshot(snapshot)}; not ready yet ({verdict.reason})",
                snapshot,
                rds_calls=calls.as_dict(),
                retry_reason=verdict.reason,
            )
        if not snapshot.shows_ready:
            return CheckOutcome(
                False,
                f"{_describe_snapshot(snapshot)}; the database answered, waiting for RDS to agree",
                snapshot,
                endpoint,
                calls.as_dict(),
            )
        return CheckOutcome(
            True, f"{_describe_snapshot(snapshot)}; ready", snapshot, endpoint, calls.as_dict()
        )

"""The describe-and-probe loop of one cluster, serving one or more waiters.

Each waiter keeps its own deadline and its own log; the loop decides with
:func:`~airflow_aurora_wake.core.wait.decision.decide` and only chooses *when* to describe and
probe: describes where they can tell something
(:func:`~airflow_aurora_wake.core.wait.decision.describe_after`, at most every
``describe_interval``, and once before a waiter's deadline for its diagnosis), probes on the
backoff of :func:`~airflow_aurora_wake.core.retry.probe_retry_policy`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

from airflow_aurora_wake.core.cluster import ClusterSnapshot, StatusCategory
from airflow_aurora_wake.core.errors import (
    TransientError,
    WaitDiagnosis,
    classify_error,
    raise_if_fatal,
)
from airflow_aurora_wake.core.instances import InstanceSnapshot
from airflow_aurora_wake.core.probes import DataApiTarget
from airflow_aurora_wake.core.rds import AWS_CALL_TIMEOUT, RdsCalls, describe_cluster
from airflow_aurora_wake.core.retry import AWS_RETRY, Backoff, probe_retry_policy
from airflow_aurora_wake.core.wait.decision import (
    WAKING_DESCRIBE_STRETCH,
    Decision,
    Next,
    Observation,
    ProbeEnd,
    decide,
)
from airflow_aurora_wake.core.wait.probing import Prober, ProbeRound
from airflow_aurora_wake.core.wait.request import ReadyReport, WaitRequest, WaitResources
from airflow_aurora_wake.core.wait.timing import DIAGNOSIS_LEAD, Waiter, describe_due_at, diagnosis_at

__all__ = ["DIAGNOSIS_LEAD", "WAKING_DESCRIBE_STRETCH", "Poller", "Waiter"]

logger = logging.getLogger(__name__)
_NUMBERS = re.compile(r"\d+(?:\.\d+)?")

#: The shortest attempt a probe cut short for a diagnosis describe gets.
_SHORTEST_PROBE = 0.05
#: Waiters released per event-loop turn when a shared wait completes.
_DELIVERY_BATCH = 100


class Poller:
    """The describe-and-probe loop for one cluster; serves one or more waiters."""

    def __init__(
        self,
        request: WaitRequest,
        resources: WaitResources,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        on_finish: Callable[[Poller], None] | None = None,
    ) -> None:
        self.request = request
        self.resources = resources
        self.clock = clock
        self.rng = rng
        self.loop = asyncio.get_running_loop()
        self.on_finish = on_finish
        # Insertion-ordered set: a thousand waiters leave in O(1) each, not O(n).
        self.waiters: dict[Waiter, None] = {}
        self.calls = RdsCalls()
        self.attempts = 0
        self.snapshot: ClusterSnapshot | None = None
        self.prober = Prober(request, resources)
        #: With instances="all": the DB instances as last listed, and the last round that answered.
        self.members: tuple[InstanceSnapshot, ...] | None = None
        self.round = ProbeRound()
        self.data_api: DataApiTarget | None = None
        self.endpoint: str | None = None
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

    def add_waiter(self, waiter: Waiter) -> None:
        self.waiters[waiter] = None
        if self.state_message is not None:
            waiter.tell(self.state_message, self.loop.time())

    def remove_waiter(self, waiter: Waiter) -> bool:
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

    def diagnosis(self, waiter: Waiter) -> WaitDiagnosis:
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

    def _next_describe(self, seen: Observation, decision: Decision, probe_end: ProbeEnd) -> float:
        last = self.last_describe_at if self.last_describe_at is not None else self.loop.time()
        interval = self.request.describe_interval
        return describe_due_at(
            seen, decision, probe_end, interval=interval, last_describe=last, waiters=self.waiters
        )

    async def _deliver_ready(self) -> None:
        now = self.loop.time()
        snapshot = self.snapshot
        assert snapshot is not None
        endpoint = self.endpoint
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
                        instances=self.request.instances,
                        reached=self.round.reached,
                        note=self.round.note,
                    )
                )

    @staticmethod
    def _tell_ready(waiter: Waiter, elapsed: float) -> None:
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
                rds = await self._open_client(stack, self.resources.rds_client)
                rds_data = None
                if self.request.probe == "data-api":
                    rds_data = await self._open_client(stack, self.resources.rds_data_client)
                await self._poll(rds, rds_data)
        except Exception as exc:
            verdict = classify_error(
                exc, where="rds", cluster=self.request.db_cluster_identifier, region=self.request.region_name
            )
            self._deliver_error(verdict.error if verdict.error is not None and not verdict.retry else exc)

    async def _open_client(
        self, stack: AsyncExitStack, open_client: Callable[[], AbstractAsyncContextManager[Any]]
    ) -> Any:
        """Enter a client, retrying failures that may pass (endpoint unreachable, a throttled role
        assumption) until the waiters' deadlines; misconfiguration fails at once."""
        backoff = Backoff()
        while True:
            try:
                return await stack.enter_async_context(open_client())
            except Exception as exc:
                verdict = raise_if_fatal(
                    exc,
                    where="rds",
                    cluster=self.request.db_cluster_identifier,
                    region=self.request.region_name,
                )
                self.last_rds_error = verdict.reason
                self._state(
                    f"client:{verdict.reason}", f"the AWS client could not be created ({verdict.reason})"
                )
                await asyncio.sleep(
                    backoff.delay(throttled=verdict.throttled, policy=AWS_RETRY, rng=self.rng)
                )

    async def _sleep_until(self, when: float) -> None:
        now = self.loop.time()
        if when == math.inf:  # "no describe on a clock" never means asleep forever: look again
            when = now + self.request.describe_interval
        await asyncio.sleep(max(0.0, when - now))

    async def _poll(self, rds: Any, rds_data: Any) -> None:
        request = self.request
        loop = self.loop
        probe_backoff, rds_backoff = Backoff(), Backoff()
        rds_retry_at = 0.0  # a describe that failed: not again before its backoff
        probe_end = ProbeEnd.NONE  # how the latest probe since the last describe ended
        grace_since: dict[str, float] = {}  # per grace window, its first tolerated answer (loop time)
        stopped_since: float | None = None
        seen_up: str | None = None
        next_describe_at = next_probe_at = loop.time()  # the first check describes
        answered = False  # a probe passed: the describe that follows confirms (or not)
        answered_while_waking = False

        # Not "while True": the last waiter may have left while Python 3.11's asyncio.wait_for
        # swallowed the cancellation that landed as a probe finished (bpo-42130); without this
        # check the loop would go on describing, and the cancelled trigger never finish cancelling.
        while not self.finished:
            fresh = False
            if loop.time() >= next_describe_at:
                try:
                    described = await describe_cluster(
                        rds,
                        request.db_cluster_identifier,
                        region_name=request.region_name,
                        calls=self.calls,
                        seen=self.snapshot is not None,
                        timeout=min(AWS_CALL_TIMEOUT, max(0.0, self._latest_deadline() - loop.time())),
                    )
                    members = await self.prober.list_members(
                        rds,
                        calls=self.calls,
                        timeout=min(AWS_CALL_TIMEOUT, max(0.0, self._latest_deadline() - loop.time())),
                    )
                except TransientError as exc:
                    reason = exc.verdict.reason
                    self.last_rds_error = reason
                    delay = rds_backoff.delay(throttled=exc.verdict.throttled, policy=AWS_RETRY, rng=self.rng)
                    # Respect the describe rate except while nothing is known yet or a probe
                    # success waits for its confirmation.
                    blocked = self.snapshot is None or answered
                    floor = 0.0 if blocked else request.describe_interval
                    next_describe_at = rds_retry_at = loop.time() + max(floor, delay)
                    self._state(f"rds:{reason}", f"RDS answered {reason}; backing off")
                    if blocked:
                        await self._sleep_until(next_describe_at)
                        continue
                else:
                    rds_backoff.reset()
                    rds_retry_at = 0.0
                    self.last_rds_error = None
                    self.snapshot, self.members = described, members
                    # A data-api probe without a secret of its own fails here, before any waiting.
                    self.data_api = request.data_api_target(described)
                    fresh = True
                    self.last_describe_at = loop.time()
                    probe_end = ProbeEnd.NONE

            snapshot = self.snapshot
            assert snapshot is not None
            now = loop.time()
            stopped = snapshot.category is StatusCategory.STOPPED
            stopped_since = (stopped_since if stopped_since is not None else now) if stopped else None
            confirming = answered and fresh
            seen = Observation(
                snapshot,
                probe=request.probe,
                stopped_grace=request.stopped_grace,
                database_answered=confirming,
                answered_while_waking=answered_while_waking,
                stopped_for=None if stopped_since is None else now - stopped_since,
                seen_up=seen_up,
                instances=request.instances,
                members=self.members,
                answered_members=self.round.answered_members,
            )
            decision = decide(seen)
            if fresh:
                next_describe_at = self._next_describe(seen, decision, probe_end)
            if not stopped:
                seen_up = snapshot.status
            if decision.next is Next.FAIL:
                assert decision.error is not None
                raise decision.error
            if decision.next is Next.READY:
                await self._deliver_ready()
                return
            if confirming:
                # The database answered but RDS does not show it ready yet: wait for the next
                # regular describe before probing again.
                answered = False
                next_probe_at = next_describe_at
                answered_while_waking = answered_while_waking or snapshot.category is StatusCategory.WAKING
            self._announce(decision)
            if decision.next is Next.DESCRIBE:
                wake_at = next_describe_at
                if decision.recheck_after is not None:
                    wake_at = min(wake_at, now + decision.recheck_after)
                await self._sleep_until(wake_at)
                continue

            if now < next_probe_at:
                await self._sleep_until(min(next_probe_at, next_describe_at))
                continue
            bound = min(request.connect_timeout, self._latest_deadline() - loop.time())
            if bound <= 0:
                await self._sleep_until(min(next_describe_at, loop.time() + request.describe_interval))
                continue
            diagnosis = diagnosis_at(self.waiters, self.last_describe_at)
            if diagnosis is not None and self.last_describe_at is not None:
                # A held attempt ends in time for the describe a waiter's diagnosis needs.
                diagnosis = max(diagnosis, self.last_describe_at + request.describe_interval)
                bound = min(bound, max(_SHORTEST_PROBE, diagnosis - loop.time()))
            waking = snapshot.category is StatusCategory.WAKING
            self.attempts += 1
            self.probe_started_at = loop.time()
            grace_spent = {kind: loop.time() - since for kind, since in grace_since.items()}
            try:
                probed = await self.prober.run(
                    snapshot,
                    self.members,
                    timeout=bound,
                    rds_data=rds_data,
                    calls=self.calls,
                    data_api=self.data_api,
                    grace_spent=grace_spent,
                    rds=rds,  # the writer's evidence of a resume, kept by the prober for the wait
                    rds_deadline=self._latest_deadline(),
                )
            except Exception as exc:
                # Building a target failed (a connection that does not fit the cluster, ...).
                probed = ProbeRound(verdicts=(self.prober.verdict(exc, snapshot, None, grace_spent),))
            finally:
                self.probe_started_at = None
            if probed.nothing_to_probe:
                # No DB instance serves yet (nothing was tried): only a describe can show one.
                self.attempts -= 1
                next_probe_at = next_describe_at
                continue
            if not probed.answered:
                if probe_end is not ProbeEnd.FAILED:
                    probe_end = probed.end
                    next_describe_at = max(rds_retry_at, self._next_describe(seen, decision, probe_end))
                for failed in probed.verdicts:
                    if failed.grace is not None:
                        grace_since.setdefault(failed.grace, loop.time())
                verdict = probed.verdicts[0]
                self.last_probe_error = "; ".join(failed.reason for failed in probed.verdicts)
                policy = probe_retry_policy(probe=request.probe, refused=probed.refused, waking=waking)
                next_probe_at = loop.time() + probe_backoff.delay(
                    throttled=verdict.throttled, policy=policy, rng=self.rng
                )
                if not waking:
                    # Numbers (timeouts, attempt counts) do not make a new state: log each kind once.
                    state_key = "probe:" + _NUMBERS.sub("#", verdict.reason)
                    self._state(state_key, self.prober.failure_message(snapshot, verdict, self.attempts))
                continue
            self.round, self.endpoint = probed, probed.endpoint
            after = decide(
                dataclasses.replace(seen, database_answered=True, answered_members=probed.answered_members)
            )
            if after.next is Next.READY:
                # The last describe showed the cluster ready and a real SELECT 1 just ran.
                await self._deliver_ready()
                return
            if after.waiting_for:
                # DB instances that do not serve yet: only a describe can show them serving.
                self.last_probe_error = f"waiting for DB instance {', '.join(after.waiting_for)}"
                self._announce(after)
                next_probe_at = next_describe_at
                continue
            # RDS did not show it ready: describe once more, now, to confirm.
            answered = True
            next_describe_at = loop.time()

    def _announce(self, decision: Decision) -> None:
        """Tell the waiters what the decision means, once per change of state.

        "probing" is said when probing begins, not again after each failed probe (those say
        why they failed, once per kind).
        """
        announced = self.state_key
        if (
            decision.state == "probing"
            and announced
            and not announced.startswith(("stopped", "waking", "rds:"))
        ):
            return
        self._state(decision.state, decision.message)

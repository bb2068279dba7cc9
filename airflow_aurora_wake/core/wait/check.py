"""One look at the cluster: a describe and, when the decision says so, one probe.

This is the sensor's check before deferring and each of its pokes. It decides with the same
:func:`~airflow_aurora_wake.core.wait.decision.decide` as the shared poller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack

from airflow_aurora_wake.core.cluster import StatusCategory
from airflow_aurora_wake.core.errors import TransientError
from airflow_aurora_wake.core.rds import AWS_CALL_TIMEOUT, RdsCalls, describe_cluster
from airflow_aurora_wake.core.wait.decision import Next, Observation, decide, describe_snapshot
from airflow_aurora_wake.core.wait.probing import Prober, ProbeRound
from airflow_aurora_wake.core.wait.request import CheckOutcome, ReadyReport, WaitRequest, WaitResources

__all__ = ["check_ready_once"]


async def check_ready_once(
    request: WaitRequest,
    resources: WaitResources,
    *,
    waiting_since: float | None = None,
    attempt: int = 1,
    clock: Callable[[], float] = time.time,
    seen_up: str | None = None,
    budget: float | None = None,
    grace_since: Mapping[str, float] | None = None,
) -> CheckOutcome:
    """One describe and (if the cluster may answer) one probe: the sensor's poke.

    The whole check, clients included, ends within ``budget`` seconds: one that runs out is
    "not ready yet", so a worker slot is never held longer whatever the network does.

    :param request: what to wait for.
    :param resources: clients and database login.
    :param waiting_since: epoch seconds when the sensor started; a cluster still ``stopped``
        ``stopped_grace`` seconds after it fails with :class:`ClusterStateError`.
    :param attempt: the poke number.
    :param clock: the wall clock.
    :param seen_up: the status in which an earlier check of this wait saw the cluster up
        (available or on its way), if any: a cluster stopped since then fails at once.
    :param budget: seconds the whole check may take (default: ``connect_timeout`` plus
        :data:`~airflow_aurora_wake.core.rds.AWS_CALL_TIMEOUT`).
    :param grace_since: per grace window (a login refusal a resuming cluster also gives, a host
        name that does not resolve), epoch seconds of this wait's first answer tolerated under it,
        as an earlier check's outcome carried it on.
    :raises AuroraWakeError: on anything waiting cannot fix, or a tolerated answer that lasted
        longer than its grace window.
    """
    seconds = budget if budget is not None else request.connect_timeout + AWS_CALL_TIMEOUT
    calls = RdsCalls()
    ends = asyncio.get_running_loop().time() + seconds
    try:
        return await asyncio.wait_for(
            _check(
                request,
                resources,
                calls,
                waiting_since,
                attempt,
                clock,
                seen_up,
                dict(grace_since or {}),
                ends,
            ),
            timeout=seconds,
        )
    except asyncio.TimeoutError:
        reason = f"no answer within {seconds:g} s"
        return CheckOutcome(
            False, f"not ready yet ({reason})", rds_calls=calls.as_dict(), retry_reason=reason
        )


async def _check(
    request: WaitRequest,
    resources: WaitResources,
    calls: RdsCalls,
    waiting_since: float | None,
    attempt: int,
    clock: Callable[[], float],
    seen_up: str | None,
    grace_since: dict[str, float],
    ends: float,
) -> CheckOutcome:
    identifier = request.db_cluster_identifier
    prober = Prober(request, resources)
    async with AsyncExitStack() as stack:
        rds = await stack.enter_async_context(resources.rds_client())
        try:
            snapshot = await describe_cluster(rds, identifier, region_name=request.region_name, calls=calls)
            members = await prober.list_members(rds, calls=calls, timeout=None)
        except TransientError as exc:
            reason = exc.verdict.reason
            return CheckOutcome(
                False, f"RDS answered {reason}", rds_calls=calls.as_dict(), retry_reason=reason
            )
        seen = Observation(
            snapshot,
            probe=request.probe,
            stopped_grace=request.stopped_grace,
            stopped_for=(
                clock() - waiting_since
                if snapshot.category is StatusCategory.STOPPED and waiting_since is not None
                else None
            ),
            seen_up=seen_up,
            instances=request.instances,
            members=members,
        )
        decision = decide(seen)
        if decision.next is Next.FAIL:
            assert decision.error is not None
            raise decision.error
        data_api = request.data_api_target(snapshot)  # a missing secret fails before any waiting
        if decision.next is not Next.PROBE:
            return CheckOutcome(
                False, f"{describe_snapshot(snapshot)}; waiting", snapshot, rds_calls=calls.as_dict()
            )
        grace_spent = {kind: clock() - since for kind, since in grace_since.items()}
        try:
            rds_data = None
            if request.probe == "data-api":
                rds_data = await stack.enter_async_context(resources.rds_data_client())
            probed = await prober.run(
                snapshot,
                members,
                timeout=request.connect_timeout,
                rds_data=rds_data,
                calls=calls,
                data_api=data_api,
                grace_spent=grace_spent,
                # Each check asks the writer again (one describe, at most one DescribeDBLogFiles):
                # nothing but the grace window's start is carried from one check to the next.
                rds=rds,
                rds_deadline=ends,
            )
        except Exception as exc:
            # The client or a target could not be made (a connection that does not fit, ...).
            probed = ProbeRound(verdicts=(prober.verdict(exc, snapshot, None, grace_spent),))
        if probed.nothing_to_probe:
            return CheckOutcome(False, decision.message, snapshot, rds_calls=calls.as_dict())
        if not probed.answered:
            for failed in probed.verdicts:
                if failed.grace is not None:
                    grace_since.setdefault(failed.grace, clock())
            verdict = probed.verdicts[0]
            return CheckOutcome(
                False,
                f"{describe_snapshot(snapshot)}; not ready yet ({verdict.reason})",
                snapshot,
                rds_calls=calls.as_dict(),
                retry_reason=verdict.reason,
                grace_since=grace_since,
            )
        endpoint = probed.endpoint
        decision = decide(
            dataclasses.replace(seen, database_answered=True, answered_members=probed.answered_members)
        )
        if decision.next is not Next.READY:
            return CheckOutcome(False, decision.message, snapshot, endpoint, calls.as_dict())
        now = clock()
        report = ReadyReport(
            db_cluster_identifier=identifier,
            ready_at=now,
            seconds_waited=now - (waiting_since if waiting_since is not None else now),
            attempts=attempt,
            rds_calls=calls.as_dict(),
            kind=snapshot.kind,
            engine=snapshot.engine,
            endpoint=endpoint,
            probe=request.probe,
            instances=request.instances,
            reached=probed.reached,
            note=probed.note,
        )
        return CheckOutcome(True, decision.message, snapshot, endpoint, calls.as_dict(), report=report)

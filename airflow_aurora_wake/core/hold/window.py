"""Hold a cluster warm for a window, release it, sweep expired holds: converge on the tags.

Each operation writes its own change (its hold tag, or its removal), then converges: describe,
compute :func:`~airflow_aurora_wake.core.hold.ledger.scaling_wanted` from the tags, apply it if
the cluster differs, remove expired holds, and describe again, until one look finds nothing to
change. Every holder converges after its own last write, so whatever the order of concurrent
holds and releases, the last write is followed by a look that sees every hold written before
it: the cluster ends at the maximum of the live holds, or at its original scaling when none
is left.

Serverless v2: the floor is ``MinCapacity`` (raising it resumes a paused cluster, an
AWS-documented waker that needs no database access). Serverless v1: the floor is a capacity
requested with ``ModifyCurrentDBClusterCapacity``, restored to the original capacity at the end
(a paused v1 cluster is left to its auto-pause). Provisioned clusters have nothing to hold.
A stopped cluster is started (and the hold records that it did, so the release can stop it
again); its floor is applied once it is available, by the next hold or a converge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot, StatusCategory
from airflow_aurora_wake.core.engines import V1_CAPACITIES
from airflow_aurora_wake.core.errors import ClusterStateError, InvalidParameterError
from airflow_aurora_wake.core.hold.ledger import (
    Hold,
    ScalingRange,
    check_holder,
    holds_on,
    original_scaling,
    scaling_wanted,
)
from airflow_aurora_wake.core.hold.results import HoldRequest, HoldResult, ReleaseResult
from airflow_aurora_wake.core.rds import (
    AWS_CALL_TIMEOUT,
    RdsCalls,
    add_tags,
    describe_cluster,
    modify_current_capacity,
    modify_v2_scaling,
    remove_tags,
    start_cluster,
    stop_cluster,
)

__all__ = ["current_scaling", "hold_cluster", "release_cluster", "sweep_holds"]

#: Looks at the cluster one converge may take before it reports what it could not settle.
MAX_ROUNDS = 8
#: v1 capacity requests of a hold: the change waits this long for a quiet point, then rolls back.
V1_SECONDS_BEFORE_TIMEOUT = 300


@dataclass
class _Calls:
    """The parameters every RDS call of one operation shares, bounded by the operation's deadline."""

    client: Any
    identifier: str
    region_name: str | None
    deadline: float
    clock: Callable[[], float]
    calls: RdsCalls = field(default_factory=RdsCalls)

    def options(self) -> dict[str, Any]:
        left = max(self.deadline - self.clock(), 2.0)
        return {"region_name": self.region_name, "calls": self.calls, "timeout": min(AWS_CALL_TIMEOUT, left)}

    async def describe(self) -> ClusterSnapshot:
        return await describe_cluster(self.client, self.identifier, **self.options())


def current_scaling(snapshot: ClusterSnapshot) -> ScalingRange | None:
    """The scaling a hold changes: v2's range, v1's capacity; ``None`` for provisioned clusters.

    :param snapshot: the cluster as described.
    """
    if snapshot.kind is ClusterKind.SERVERLESS_V2:
        low = snapshot.min_capacity or 0.0
        pause = snapshot.seconds_until_auto_pause if low == 0 else None
        return ScalingRange(low, snapshot.max_capacity or low, pause)
    if snapshot.kind is ClusterKind.SERVERLESS_V1:
        capacity = snapshot.capacity or 0.0
        return ScalingRange(capacity, capacity, None)
    return None


def _check_against_cluster(snapshot: ClusterSnapshot, request: HoldRequest) -> None:
    """Refuse, before anything changes, a floor this cluster cannot take."""
    if snapshot.kind is ClusterKind.SERVERLESS_V2:
        ceiling = max(snapshot.max_capacity or 0.0, request.max_capacity or 0.0)
        if request.min_capacity > ceiling:
            raise InvalidParameterError(
                "min_capacity",
                request.min_capacity,
                f"DB cluster {snapshot.identifier!r} scales to at most {snapshot.max_capacity:g} ACUs: ask "
                f"for a floor within it, or pass max_capacity >= {request.min_capacity:g} to raise "
                "its maximum for the window",
            )
    elif snapshot.kind is ClusterKind.SERVERLESS_V1:
        family = snapshot.engine_family or "mysql"
        low, high = snapshot.min_capacity or 0.0, snapshot.max_capacity or max(V1_CAPACITIES[family])
        valid = [c for c in V1_CAPACITIES[family] if low <= c <= high]
        if request.min_capacity not in valid:
            raise InvalidParameterError(
                "min_capacity",
                request.min_capacity,
                f"a Serverless v1 {snapshot.engine} cluster takes one of "
                f"{', '.join(str(c) for c in valid)} (its range {low:g}..{high:g})",
            )


async def _apply(
    calls: _Calls, snapshot: ClusterSnapshot, wanted: ScalingRange, holding: bool
) -> bool | None:
    """Send the request that brings the cluster to ``wanted``, if one is due.

    :returns: ``None`` when nothing was due, else whether the request was accepted.
    """
    current = current_scaling(snapshot)
    if current is None or snapshot.category is not StatusCategory.AVAILABLE:
        return None
    if snapshot.kind is ClusterKind.SERVERLESS_V2 and wanted != current:
        return await modify_v2_scaling(
            calls.client,
            calls.identifier,
            min_capacity=wanted.min_capacity,
            max_capacity=wanted.max_capacity,
            seconds_until_auto_pause=wanted.seconds_until_auto_pause,
            **calls.options(),
        )
    if snapshot.kind is ClusterKind.SERVERLESS_V1 and _v1_change(current, wanted, holding):
        return await modify_current_capacity(
            calls.client,
            calls.identifier,
            capacity=int(wanted.min_capacity),
            seconds_before_timeout=V1_SECONDS_BEFORE_TIMEOUT,
            timeout_action="RollbackCapacityChange",
            **calls.options(),
        )
    return None


async def _converge(
    calls: _Calls, snapshot: ClusterSnapshot, remembered: ScalingRange | None = None
) -> tuple[ClusterSnapshot, bool]:
    """Bring the cluster to the scaling its tags call for; remove expired holds.

    :param remembered: the original scaling from a hold tag this operation removed.
    :returns: the last snapshot, and whether it settled (False: a cluster that cannot be
        modified now, for example while it starts).
    """
    for _ in range(MAX_ROUNDS):
        current = current_scaling(snapshot)
        if current is None:
            return snapshot, True
        if snapshot.category is not StatusCategory.AVAILABLE:
            return snapshot, False
        now = calls.clock()
        holds = holds_on(snapshot.tags)
        remembered = original_scaling(holds, current, remembered)
        holding = any(hold.live(now) for hold in holds)
        applied = await _apply(calls, snapshot, scaling_wanted(holds, now, current, remembered), holding)
        if applied is False:
            return await calls.describe(), False
        if applied and snapshot.kind is ClusterKind.SERVERLESS_V1:
            return await calls.describe(), True  # v1 scales in its own time; it was asked
        if applied is None:
            expired = [hold.tag_key for hold in holds if not hold.live(now)]
            if not expired or snapshot.arn is None:
                return snapshot, True
            await remove_tags(calls.client, calls.identifier, snapshot.arn, expired, **calls.options())
        snapshot = await calls.describe()
    return snapshot, False


def _v1_change(current: ScalingRange, wanted: ScalingRange, holding: bool) -> bool:
    """A v1 capacity request is due: below a held floor, or not at the original capacity once free.

    A v1 cluster scales by itself, so a capacity above a held floor is left alone; an original
    capacity of 0 (paused) is left to the cluster's own auto-pause.
    """
    if holding:
        return current.min_capacity < wanted.min_capacity
    return wanted.min_capacity > 0 and current.min_capacity != wanted.min_capacity


def _live(snapshot: ClusterSnapshot, now: float) -> int:
    return sum(1 for hold in holds_on(snapshot.tags) if hold.live(now))


async def hold_cluster(
    client: Any,
    identifier: str,
    request: HoldRequest,
    *,
    region_name: str | None = None,
    timeout: float = 120.0,
    clock: Callable[[], float] = time.time,
) -> HoldResult:
    """Hold a cluster at a floor until ``request.hold_for`` from now (again: extend it).

    :param client: an aiobotocore RDS client.
    :param identifier: the cluster identifier.
    :param request: what to hold.
    :param region_name: the region, for messages.
    :param timeout: seconds the whole operation may take.
    :param clock: the wall clock.
    :raises InvalidParameterError: a floor the cluster cannot take (nothing was changed).
    :raises ClusterStateError: a stopped cluster with ``start_if_stopped=False``, or one stopping
        or being deleted.
    """
    calls = _Calls(client, identifier, region_name, clock() + timeout, clock)
    snapshot = await calls.describe()
    kind = snapshot.kind.value
    now = clock()
    if snapshot.kind is ClusterKind.PROVISIONED:
        return HoldResult(
            db_cluster_identifier=identifier,
            kind=kind,
            action="none",
            holder=request.holder,
            min_capacity=request.min_capacity,
            since=now,
            until=now,
            scaling=None,
            settled=True,
            holds=0,
            detail=f"DB cluster {identifier!r} is provisioned: its instances set its capacity, nothing "
            "to hold",
            rds_calls=calls.calls.as_dict(),
        )
    _check_against_cluster(snapshot, request)
    started = False
    if snapshot.category is StatusCategory.STOPPED:
        if not request.start_if_stopped:
            raise ClusterStateError(identifier, snapshot.status, "start it, or let the hold start it")
        started = await start_cluster(client, identifier, **calls.options())
    elif snapshot.category is StatusCategory.FAILED:
        raise ClusterStateError(identifier, snapshot.status)
    if snapshot.arn is None:
        raise ClusterStateError(identifier, snapshot.status, "DescribeDBClusters gave no ARN to tag")
    holds = holds_on(snapshot.tags)
    mine = next((hold for hold in holds if hold.holder == request.holder), None)
    current = current_scaling(snapshot)
    assert current is not None  # v1 and v2 only here
    hold = Hold(
        holder=request.holder,
        min_capacity=request.min_capacity,
        max_capacity=request.max_capacity,
        since=mine.since if mine else float(int(now)),
        until=float(int(now + request.hold_for)),
        original=original_scaling(holds, current),
        started=started or (mine is not None and mine.started),
    )
    await add_tags(client, identifier, snapshot.arn, {hold.tag_key: hold.tag_value()}, **calls.options())
    snapshot, settled = await _converge(calls, await calls.describe())
    action = "start-and-hold" if started else "hold"
    scaling = current_scaling(snapshot)
    detail = (
        f"DB cluster {identifier!r} held at {request.min_capacity:g} ACUs by {request.holder} until "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(hold.until))}"
        + ("" if settled else f"; the floor applies once it is available (status {snapshot.status!r})")
    )
    return HoldResult(
        db_cluster_identifier=identifier,
        kind=kind,
        action=action,
        holder=request.holder,
        min_capacity=request.min_capacity,
        since=hold.since,
        until=hold.until,
        scaling=scaling,
        settled=settled,
        holds=_live(snapshot, clock()),
        detail=detail,
        rds_calls=calls.calls.as_dict(),
    )


async def release_cluster(
    client: Any,
    identifier: str,
    holder: str,
    *,
    stop_if_started: bool = False,
    region_name: str | None = None,
    timeout: float = 120.0,
    clock: Callable[[], float] = time.time,
) -> ReleaseResult:
    """End ``holder``'s hold and converge: the highest remaining floor, or the original scaling.

    :param client: an aiobotocore RDS client.
    :param identifier: the cluster identifier.
    :param holder: whose hold ends.
    :param stop_if_started: stop the cluster if this hold started it and no live hold is left
        (never a cluster that was already running).
    :param region_name: the region, for messages.
    :param timeout: seconds the whole operation may take.
    :param clock: the wall clock.
    """
    check_holder(holder)
    calls = _Calls(client, identifier, region_name, clock() + timeout, clock)
    snapshot = await calls.describe()
    holds = holds_on(snapshot.tags)
    mine = next((hold for hold in holds if hold.holder == holder), None)
    remembered = None
    if mine is not None and snapshot.arn is not None:
        # The scaling without this hold first, then the tag: a holder that no longer sees the
        # tag then finds the cluster as it would be without it, and records the right original.
        others = [hold for hold in holds if hold is not mine]
        current = current_scaling(snapshot)
        remembered = original_scaling(holds, current) if current is not None else None
        if current is not None:
            now = clock()
            live = any(hold.live(now) for hold in others)
            await _apply(calls, snapshot, scaling_wanted(others, now, current, remembered), live)
        await remove_tags(client, identifier, snapshot.arn, [mine.tag_key], **calls.options())
        snapshot = await calls.describe()
    snapshot, settled = await _converge(calls, snapshot, remembered)
    now = clock()
    left = _live(snapshot, now)
    stopped = False
    stop_note = ""
    if mine is not None and mine.started and stop_if_started:
        if left:
            stop_note = "; left running: other holds are live"
        else:
            stopped = await stop_cluster(client, identifier, **calls.options())
            stop_note = (
                "; cluster stopped (the window started it)"
                if stopped
                else f"; could not stop it now (status {snapshot.status!r}): stop it once it is available"
            )
    held = max(0.0, min(now, mine.until) - mine.since) if mine else 0.0
    floor = mine.min_capacity if mine else 0.0
    if mine is None:
        detail = f"DB cluster {identifier!r} had no hold of {holder} (released or expired and swept)"
    else:
        detail = (
            f"DB cluster {identifier!r}: {holder} held {floor:g} ACUs for {held / 60:.1f} min "
            f"({floor * held / 3600:.3f} ACU-hours); "
            + (f"{left} hold(s) still live" if left else "scaling restored")
            + stop_note
            + ("" if settled else f"; not settled yet (status {snapshot.status!r})")
        )
    return ReleaseResult(
        db_cluster_identifier=identifier,
        holder=holder,
        released=mine is not None,
        held_seconds=held,
        min_capacity=floor,
        acu_hours=floor * held / 3600,
        scaling=current_scaling(snapshot),
        restored=left == 0 and settled,
        stopped=stopped,
        holds=left,
        detail=detail,
        rds_calls=calls.calls.as_dict(),
    )


async def sweep_holds(
    client: Any,
    identifier: str,
    *,
    region_name: str | None = None,
    timeout: float = 120.0,
    clock: Callable[[], float] = time.time,
) -> ReleaseResult:
    """Remove expired holds and converge (a scheduled clean-up; no hold of its own).

    :param client: an aiobotocore RDS client.
    :param identifier: the cluster identifier.
    :param region_name: the region, for messages.
    :param timeout: seconds the whole operation may take.
    :param clock: the wall clock.
    """
    calls = _Calls(client, identifier, region_name, clock() + timeout, clock)
    before = await calls.describe()
    expired = [hold for hold in holds_on(before.tags) if not hold.live(clock())]
    snapshot, settled = await _converge(calls, before)
    left = _live(snapshot, clock())
    detail = f"DB cluster {identifier!r}: {len(expired)} expired hold(s) swept, {left} live"
    return ReleaseResult(
        db_cluster_identifier=identifier,
        holder="sweep",
        released=bool(expired),
        held_seconds=0.0,
        min_capacity=0.0,
        acu_hours=0.0,
        scaling=current_scaling(snapshot),
        restored=left == 0 and settled,
        stopped=False,
        holds=left,
        detail=detail,
        rds_calls=calls.calls.as_dict(),
    )

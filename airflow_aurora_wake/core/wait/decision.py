"""The wait's one decision: from what it has seen, what to do next (pure: no I/O, no clock).

The shared poller (triggers, the plain-Python API, the CLI) and the sensor's check (before
deferring, and each poke) both call :func:`decide`; they differ only in *when* they look.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot, StatusCategory
from airflow_aurora_wake.core.errors import ClusterStateError
from airflow_aurora_wake.core.instances import InstanceSnapshot, InstanceState

__all__ = [
    "HELD_DESCRIBE_SECONDS",
    "WAKING_DESCRIBE_STRETCH",
    "Decision",
    "Next",
    "Observation",
    "ProbeEnd",
    "decide",
    "describe_after",
    "describe_snapshot",
]

#: While RDS shows a cluster starting and the connection probe watches for the end of the start,
#: describes are this many describe intervals apart: a failed start is still seen within 30 s.
WAKING_DESCRIBE_STRETCH = 3
#: While every probe is held open, at least one describe per this many seconds: a cluster stopped
#: or deleted while its traffic is silently dropped (every attempt held to ``connect_timeout``)
#: is still seen within this plus one ``connect_timeout``, at 0.5 RDS calls per minute.
HELD_DESCRIBE_SECONDS = 120.0


class Next(str, Enum):
    """What the wait does next."""

    #: the cluster is ready: RDS shows it available (v1: with capacity) and a real probe passed
    READY = "ready"
    #: waiting cannot help: raise :attr:`Decision.error`
    FAIL = "fail"
    #: try the database (a refused or held attempt costs no AWS API budget)
    PROBE = "probe"
    #: nothing to try until RDS shows something new: describe again
    DESCRIBE = "describe"


class ProbeEnd(str, Enum):
    """How the latest probe since the last describe ended, as far as describing is concerned."""

    #: no probe ended since the last describe
    NONE = "none"
    #: every attempt was held open until its bound: a resuming instance holds a connection
    #: attempt, so the probe itself watched the resume, and RDS has nothing to add
    HELD = "held"
    #: it failed in a way RDS may explain (refused, reset, DNS, an answer from the server, ...):
    #: the cluster may have been stopped or deleted
    FAILED = "failed"


@dataclass(frozen=True)
class Observation:
    """What a wait has seen, as of its latest describe.

    :param snapshot: the latest describe.
    :param probe: ``connection`` or ``data-api``.
    :param stopped_grace: seconds a ``stopped`` cluster is waited on.
    :param database_answered: a probe passed, and ``snapshot`` was taken just before or after it.
    :param answered_while_waking: the database answered while RDS still showed a start: the
        describes decide from then on, since probing on would only double them.
    :param stopped_for: seconds the cluster has been seen ``stopped`` (``None``: not stopped or unknown).
    :param seen_up: the status in which this wait saw the cluster up (available or on its way)
        before, if any: a cluster stopped after that was stopped during the wait.
    :param instances: what must answer: ``writer``, ``reader`` or ``all`` (see
        :class:`~airflow_aurora_wake.core.wait.request.WaitRequest`).
    :param members: for ``all``, the cluster's DB instances as last listed (``None``: not yet).
    :param answered_members: for ``all``, the instances whose endpoint answered ``SELECT 1`` in
        the probe round ``database_answered`` speaks of.
    """

    snapshot: ClusterSnapshot
    probe: str = "connection"
    stopped_grace: float = 60.0
    database_answered: bool = False
    answered_while_waking: bool = False
    stopped_for: float | None = None
    seen_up: str | None = None
    instances: str = "writer"
    members: tuple[InstanceSnapshot, ...] | None = None
    answered_members: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    """What to do next, and what to tell the user (once per ``state``).

    :param next: the step.
    :param state: a key that changes when the user should be told something new.
    :param message: the sentence for the log.
    :param error: the error to raise, with :attr:`Next.FAIL`.
    :param recheck_after: decide again after this many seconds even without a new describe.
    :param waiting_for: the DB instances (``instances="all"``) that keep the wait from being
        ready, each with why.
    """

    next: Next
    state: str
    message: str
    error: ClusterStateError | None = None
    recheck_after: float | None = None
    waiting_for: tuple[str, ...] = ()


def describe_snapshot(snapshot: ClusterSnapshot) -> str:
    """One line for the log: kind, engine, status and (v1) capacity.

    :param snapshot: the cluster.
    """
    capacity = "" if snapshot.capacity is None else f", capacity {snapshot.capacity:g}"
    return (
        f"cluster {snapshot.identifier} is {snapshot.kind.value} ({snapshot.engine}), "
        f"status {snapshot.status}{capacity}"
    )


def decide(seen: Observation) -> Decision:
    """Decide the next step of a wait.

    :param seen: what the wait has seen.
    """
    snapshot = seen.snapshot
    line = describe_snapshot(snapshot)
    category = snapshot.category
    if category is StatusCategory.FAILED:
        return Decision(Next.FAIL, "failed", line, ClusterStateError(snapshot.identifier, snapshot.status))
    if seen.instances != "writer" and snapshot.kind is ClusterKind.SERVERLESS_V1:
        why = (
            f"a Serverless v1 cluster has no reader and no DB instances, so instances={seen.instances!r} "
            "cannot be waited for: wait with instances='writer'"
        )
        return Decision(
            Next.FAIL, "failed", line, ClusterStateError(snapshot.identifier, snapshot.status, why)
        )
    if category is StatusCategory.STOPPED:
        return _decide_stopped(seen, line)
    if category is StatusCategory.WAKING:
        state = f"waking:{snapshot.status}"
        if seen.probe != "connection" or seen.answered_while_waking or seen.database_answered:
            return Decision(Next.DESCRIBE, state, f"{line}; waiting for it")
        # A start ends when the database accepts connections, up to a describe interval before
        # RDS shows it; a refused connection is free, so the probe watches for the end.
        return Decision(Next.PROBE, state, f"{line}; waiting for it")
    if seen.instances == "all":
        by_instance = _decide_members(seen, line)
        if by_instance is not None:
            return by_instance
    if seen.database_answered:
        if snapshot.shows_ready:
            return Decision(Next.READY, "ready", f"{line}; ready")
        # The database answered but RDS does not agree yet (v1 capacity still 0).
        return Decision(
            Next.DESCRIBE, "confirm-lagging", f"{line}; the database answered, waiting for RDS to agree"
        )
    return Decision(Next.PROBE, "probing", f"{line}; probing")


def describe_after(seen: Observation, decision: Decision, probe_end: ProbeEnd, *, interval: float) -> float:
    """When to describe again, in seconds after the last describe (sooner when a probe fails in a
    way RDS may explain, and at the deadline for the diagnosis: the caller's part).

    Describes go where they can tell something: at the start, when the decision waits on RDS
    (stopped, a start, v1 capacity, DB instances, a probe success to confirm), and after a probe
    that failed at once. While a connection attempt is held open by a resuming instance, the
    probe watches the resume itself and a describe adds nothing until it returns, but one comes
    every :data:`HELD_DESCRIBE_SECONDS` between attempts all the same. ``interval`` stays the
    smallest spacing.

    :param seen: what the wait saw at its last describe.
    :param decision: :func:`decide` of ``seen``.
    :param probe_end: how the latest probe since that describe ended.
    :param interval: ``describe_interval``.
    """
    if decision.next is not Next.PROBE:
        return interval  # only RDS can move the wait on (READY and FAIL end it)
    if seen.probe != "connection" or seen.instances == "all":
        # A Data API probe is itself an AWS call answering at once; with "all", new DB
        # instances are seen only through describes: both keep the regular rate.
        return interval
    if seen.snapshot.category is StatusCategory.WAKING:
        # Refusals during a start are what RDS already said; it is asked now and then whether the
        # start failed.
        return interval * WAKING_DESCRIBE_STRETCH
    if probe_end is ProbeEnd.FAILED:
        return interval
    return max(interval, HELD_DESCRIBE_SECONDS)


def _decide_stopped(seen: Observation, line: str) -> Decision:
    if seen.seen_up is not None:
        why = (
            f"it was stopped while waiting for it (this wait had seen it {seen.seen_up!r}): something "
            "stopped it (StopDBCluster, the console, another tool); start it again (StartDBCluster, "
            "or a wake that starts stopped clusters) and wait again"
        )
    elif (seen.stopped_for or 0.0) >= seen.stopped_grace:
        why = (
            f"it stayed stopped for {seen.stopped_grace:g} s: start it before waiting (StartDBCluster, "
            "or a wake that starts stopped clusters)"
        )
    else:
        return Decision(
            Next.DESCRIBE,
            "stopped",
            f"{line}; waiting up to {seen.stopped_grace:g} s for a requested start to show",
            recheck_after=seen.stopped_grace - (seen.stopped_for or 0.0),
        )
    return Decision(Next.FAIL, "failed", line, ClusterStateError(seen.snapshot.identifier, "stopped", why))


def _decide_members(seen: Observation, line: str) -> Decision | None:
    """The decision that the DB instances of an ``instances="all"`` wait impose, if any.

    An instance that is not serving (``creating``, ``modifying``, ...) keeps the wait from being
    ready even when the cluster says ``available``, and so does one that has not answered yet;
    one that waiting cannot repair fails the wait.
    """
    snapshot = seen.snapshot
    members = seen.members
    for member in members or ():
        if member.state is InstanceState.FAILED:
            why = (
                f"its DB instance {member.identifier!r} is {member.status!r}, which waiting cannot "
                "end: repair or replace that instance, or wait with instances='writer' or 'reader'"
            )
            return Decision(
                Next.FAIL, "failed", line, ClusterStateError(snapshot.identifier, snapshot.status, why)
            )
    if members is None:
        waiting = ["its DB instances (not listed yet)"]
    elif not members:
        waiting = ["its DB instances (DescribeDBInstances lists none yet)"]
    else:
        waiting = [member.describe() for member in members if member.state is not InstanceState.SERVING]
    if seen.database_answered:
        waiting += [
            f"{member.identifier} (its endpoint has not answered yet)"
            for member in members or ()
            if member.state is InstanceState.SERVING and member.identifier not in seen.answered_members
        ]
    if not waiting:
        return None
    message = f"{line}; waiting for DB instance {', '.join(waiting)}"
    # One state for a set of waiting instances, whether the others answered or are being probed:
    # a reader created for ten minutes is told once, not once per probe.
    state = "instances:" + ",".join(sorted(waiting))
    step = Next.DESCRIBE if seen.database_answered else Next.PROBE
    return Decision(step, state, message, waiting_for=tuple(waiting))

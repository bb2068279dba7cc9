"""The state machine of one emulated cluster.

The model is advanced lazily: every reader first calls :meth:`ClusterModel.advance`, which
applies all transitions that are due at their *scheduled* times. So the recorded timeline is
exact (``ready_at == requested_at + resume_seconds``), whichever thread looks first, and the
event loop's timers only exist to perform side effects (opening a listener, releasing held
connections) once a transition is due.

This module is pure Python and thread-safe (one re-entrant lock per cluster).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from airflow_aurora_wake.emulator.config import ClusterSpec, Faults, TimelineEvent, Timings


class Phase(str, Enum):
    """Internal phase of an emulated cluster."""

    AVAILABLE = "available"
    PAUSED = "paused"
    RESUMING = "resuming"
    SCALING = "scaling"
    STOPPING = "stopping"
    STOPPED = "stopped"
    STARTING = "starting"
    DELETED = "deleted"


#: Phases in which the database endpoint listens (a paused cluster accepts TCP and wakes).
LISTENING_PHASES = frozenset({Phase.AVAILABLE, Phase.PAUSED, Phase.RESUMING, Phase.SCALING})
#: Phases in which a connection is spliced to the upstream at once.
CONNECTABLE_PHASES = frozenset({Phase.AVAILABLE, Phase.SCALING})


class ClusterStateError(Exception):
    """An operation is not allowed in the cluster's current state.

    :param message: the message AWS would give.
    """


class ClusterModel:
    """Live state, timeline and counters of one emulated cluster.

    :param spec: the cluster's configuration.
    :param timings: the effective timings (the spec's own, else the emulator's).
    :param arn: the cluster ARN.
    :param port: the port of the database endpoint.
    :param host: the host of the database endpoint.
    :param now: creation time (defaults to ``time.time()``).
    """

    def __init__(
        self,
        spec: ClusterSpec,
        timings: Timings,
        *,
        arn: str,
        port: int,
        host: str = "127.0.0.1",
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        self.spec = spec
        self.timings = timings
        self.arn = arn
        self.port = port
        self.host = host
        self.lock = threading.RLock()
        self.min_capacity, self.max_capacity = spec.capacity_range
        self.seconds_until_auto_pause = spec.seconds_until_auto_pause
        self.timeline: list[TimelineEvent] = []
        #: Called (outside the lock) after every change that may need a side effect.
        self.on_change: Callable[[ClusterModel], None] | None = None
        #: Called before the state is reported to a client, so that a lazily applied
        #: transition (starting -> available) has its side effect (the port listening again)
        #: before anyone can see it.
        self.on_observe: Callable[[ClusterModel], None] | None = None
        # Transition bookkeeping.
        self.phase = Phase.AVAILABLE
        self.phase_until: float | None = None
        self.capacity: float = 0.0
        self.target_capacity: float = 0.0
        self.capacity_at: float | None = None
        self.paused_at: float | None = None
        self.last_ready_at: float | None = None
        #: When connections may first be refused by the after-resume fault window.
        self.fault_window_from: float | None = None
        self.open_connections = 0
        self.idle_since = now
        # Counters.
        self.connection_attempts = 0
        self.connections_completed_at: list[float] = []
        self.connections_abandoned = 0
        self.connections_reset = 0
        self.connections_failed_by_fault = 0
        self.data_api_calls = 0
        self._record(now, "created", {"kind": spec.kind, "engine": spec.engine, "state": spec.state})
        if spec.state == "paused":
            self._enter_paused(now, "paused", {"by": "initial-state"})
        elif spec.state == "stopped":
            self.phase = Phase.STOPPED
            self._record(now, "stopped", {"by": "initial-state"})
        else:
            self._become_ready(now, "available", {"by": "initial-state"}, from_wake=False)

    def __deepcopy__(self, memo: dict[int, Any]) -> ClusterModel:
        # moto deep-copies its cluster objects in some code paths; the model is shared state.
        return self

    # -- reading -------------------------------------------------------------------------

    @property
    def identifier(self) -> str:
        """The cluster identifier."""
        return self.spec.identifier

    def advance(self, now: float | None = None) -> Phase:
        """Apply every transition due by ``now`` at its scheduled time; return the phase.

        :param now: the current time (default ``time.time()``).
        """
        now = time.time() if now is None else now
        with self.lock:
            while True:
                due = self._next_due()
                if due is None or due > now:
                    return self.phase
                self._transition(due)

    def next_transition_at(self) -> float | None:
        """When the next automatic transition is due (``None``: nothing scheduled)."""
        with self.lock:
            return self._next_due()

    def observe(self) -> None:
        """Bring side effects up to date before reporting the state (see ``on_observe``)."""
        callback = self.on_observe
        if callback is not None:
            callback(self)

    def status(self) -> str:
        """The ``Status`` DescribeDBClusters reports now."""
        phase = self.advance()
        if phase in (Phase.STOPPING, Phase.STOPPED, Phase.STARTING):
            return phase.value
        if phase is Phase.DELETED:
            return "deleting"
        # AWS keeps reporting "available" while paused and while resuming.
        return "available"

    def instance_status(self) -> str:
        """The ``DBInstanceStatus`` of the cluster's instances now."""
        return self.status()

    def current_capacity(self) -> float | None:
        """``Capacity`` for Serverless v1 (0 while paused), ``None`` for the other kinds."""
        if self.spec.kind != "serverless-v1":
            return None
        self.advance()
        return self.capacity

    def is_listening(self) -> bool:
        """Whether the database endpoint accepts TCP connections now."""
        return self.advance() in LISTENING_PHASES

    def is_connectable(self) -> bool:
        """Whether a connection is spliced to the upstream now."""
        return self.advance() in CONNECTABLE_PHASES

    def in_fault_window(self, faults: Faults, now: float | None = None) -> bool:
        """Whether the after-resume fault window is open now.

        :param faults: the active faults.
        :param now: the current time.
        """
        now = time.time() if now is None else now
        with self.lock:
            if faults.after_resume_error is None or self.fault_window_from is None:
                return False
            return self.fault_window_from <= now < self.fault_window_from + faults.after_resume_seconds

    # -- requests -------------------------------------------------------------------------

    def request_resume(self, cause: str, now: float | None = None, capacity: float | None = None) -> bool:
        """Start a resume if the cluster is paused; return whether one started.

        :param cause: what asked: ``"connection"``, ``"data-api"``, ``"modify-capacity"``, ...
        :param now: the current time.
        :param capacity: v1 capacity to resume at (default: the minimum capacity).
        """
        now = time.time() if now is None else now
        with self.lock:
            if self.advance(now) is not Phase.PAUSED:
                return False
            paused_for = now - (self.paused_at if self.paused_at is not None else now)
            deep = paused_for >= self.timings.deep_sleep_after_seconds
            self.phase = Phase.RESUMING
            self.target_capacity = self.min_capacity if capacity is None else capacity
            if self.spec.kind == "serverless-v1":
                capacity_seconds = (
                    self.timings.deep_resume_seconds if deep else self.timings.v1_capacity_seconds
                )
                self.capacity_at = now + capacity_seconds
                self.phase_until = self.capacity_at + self.timings.v1_connect_extra_seconds
            else:
                self.capacity_at = None
                self.phase_until = now + (
                    self.timings.deep_resume_seconds if deep else self.timings.resume_seconds
                )
            self._record(
                now,
                "resume-requested",
                {
                    "cause": cause,
                    "deep": deep,
                    "paused_seconds": round(paused_for, 3),
                    "ready_expected_at": self.phase_until,
                },
            )
        self._changed()
        return True

    def modify_capacity(self, capacity: float, now: float | None = None) -> tuple[float, float]:
        """``ModifyCurrentDBClusterCapacity`` after validation; return (pending, current).

        :param capacity: the requested capacity.
        :param now: the current time.
        :raises ClusterStateError: while a resume or scaling is under way, or when stopped.
        """
        now = time.time() if now is None else now
        with self.lock:
            phase = self.advance(now)
            current = self.capacity
            if phase is Phase.PAUSED:
                self.request_resume("modify-capacity", now, capacity)
                return capacity, current
            if phase in (Phase.RESUMING, Phase.SCALING):
                raise ClusterStateError(
                    f"DB cluster {self.identifier} is already scaling capacity "
                    f"(a scaling or resume is in progress); try again later."
                )
            if phase is not Phase.AVAILABLE:
                raise ClusterStateError(
                    f"DbCluster {self.identifier} is in {self.status()} state but expected it to be "
                    "one of available."
                )
            self.phase = Phase.SCALING
            self.target_capacity = capacity
            self.phase_until = now + self.timings.v1_capacity_seconds
            self._record(now, "scaling-requested", {"from": current, "to": capacity})
        self._changed()
        return capacity, current

    def start(self, now: float | None = None) -> None:
        """``StartDBCluster``: only from ``stopped``.

        :param now: the current time.
        :raises ClusterStateError: from any other state, with AWS's message.
        """
        now = time.time() if now is None else now
        with self.lock:
            if self.advance(now) is not Phase.STOPPED:
                raise ClusterStateError(
                    f"DbCluster {self.identifier} is in {self.status()} state but expected it to be "
                    "one of stopped,inaccessible-encryption-credentials-recoverable."
                )
            self.phase = Phase.STARTING
            self.phase_until = now + self.timings.start_seconds
            self._record(now, "start-requested", {"available_expected_at": self.phase_until})
        self._changed()

    def stop(self, now: float | None = None) -> None:
        """``StopDBCluster``: only from ``available`` (which includes paused v2 clusters).

        :param now: the current time.
        :raises ClusterStateError: from any other state, with AWS's message.
        """
        now = time.time() if now is None else now
        with self.lock:
            phase = self.advance(now)
            if self.spec.kind == "serverless-v1":
                raise ClusterStateError(
                    f"DB cluster {self.identifier} is an Aurora Serverless v1 cluster, "
                    "which cannot be stopped."
                )
            if phase not in (Phase.AVAILABLE, Phase.PAUSED):
                raise ClusterStateError(
                    f"DbCluster {self.identifier} is in {self.status()} state but expected it to be "
                    "one of available."
                )
            self.phase = Phase.STOPPING
            self.phase_until = now + self.timings.stop_seconds
            self._record(now, "stop-requested", {"stopped_expected_at": self.phase_until})
        self._changed()

    def mark_deleted(self, now: float | None = None) -> None:
        """The cluster was deleted (its endpoint refuses from now on).

        :param now: the current time.
        """
        now = time.time() if now is None else now
        with self.lock:
            if self.phase is Phase.DELETED:
                return
            self.phase = Phase.DELETED
            self.phase_until = None
            self._record(now, "deleted", {})
        self._changed()

    # -- instant admin changes ------------------------------------------------------------

    def force_pause(self, now: float | None = None, paused_for: float = 0.0) -> None:
        """Pause at once (admin), as if paused ``paused_for`` seconds ago.

        :param now: the current time.
        :param paused_for: back-date the pause, to exercise the deep-sleep resume.
        :raises ValueError: for a cluster kind that cannot pause.
        """
        if not self.spec.can_auto_pause:
            raise ValueError(
                f"cluster {self.identifier!r} ({self.spec.kind}, min capacity {self.min_capacity}) "
                "cannot be paused"
            )
        now = time.time() if now is None else now
        with self.lock:
            if self.advance(now) is Phase.DELETED:
                raise ValueError(f"cluster {self.identifier!r} is deleted")
            self._enter_paused(
                now - paused_for, "paused", {"by": "admin", "paused_for": paused_for}, record_at=now
            )
        self._changed()

    def force_wake(self, now: float | None = None) -> None:
        """Make the cluster available at once (admin; also starts a stopped cluster).

        :param now: the current time.
        """
        now = time.time() if now is None else now
        with self.lock:
            if self.advance(now) is Phase.DELETED:
                raise ValueError(f"cluster {self.identifier!r} is deleted")
            self._become_ready(now, "ready", {"by": "admin"}, from_wake=False)
        self._changed()

    def force_stop(self, now: float | None = None) -> None:
        """Stop at once (admin).

        :param now: the current time.
        """
        now = time.time() if now is None else now
        with self.lock:
            if self.advance(now) is Phase.DELETED:
                raise ValueError(f"cluster {self.identifier!r} is deleted")
            self.phase = Phase.STOPPED
            self.phase_until = None
            self.capacity = 0.0
            self._record(now, "stopped", {"by": "admin"})
        self._changed()

    def set_timings(self, timings: Timings) -> None:
        """Use new timings for transitions requested from now on.

        :param timings: the new timings.
        """
        with self.lock:
            self.timings = timings

    def update_v2_scaling(
        self,
        min_capacity: float | None,
        max_capacity: float | None,
        seconds_until_auto_pause: int | None,
        now: float | None = None,
    ) -> None:
        """``ModifyDBCluster`` changed the v2 scaling range; raising the minimum above 0 wakes it.

        :param min_capacity: new minimum (``None``: unchanged).
        :param max_capacity: new maximum (``None``: unchanged).
        :param seconds_until_auto_pause: new idle time (``None``: unchanged).
        :param now: the current time.
        """
        with self.lock:
            if min_capacity is not None:
                self.min_capacity = float(min_capacity)
            if max_capacity is not None:
                self.max_capacity = float(max_capacity)
            if seconds_until_auto_pause is not None:
                self.seconds_until_auto_pause = int(seconds_until_auto_pause)
            if self.min_capacity > 0:
                # AWS documents a scaling-range change as one of the side-effect wakers.
                self.request_resume("modify-db-cluster", now)
        self._changed()

    # -- database side events -------------------------------------------------------------

    def record_attempt(self) -> None:
        """A TCP connection arrived at the database endpoint."""
        with self.lock:
            self.connection_attempts += 1

    def connection_opened(self, now: float | None = None) -> None:
        """A connection was spliced to the upstream (it keeps the cluster awake).

        :param now: the current time.
        """
        now = time.time() if now is None else now
        with self.lock:
            self.advance(now)
            self.open_connections += 1
            self.connections_completed_at.append(now)
        self._changed()

    def connection_closed(self, now: float | None = None) -> None:
        """A spliced connection closed: the idle clock restarts when the last one goes.

        :param now: the current time.
        """
        now = time.time() if now is None else now
        with self.lock:
            self.advance(now)
            self.open_connections = max(0, self.open_connections - 1)
            if self.open_connections == 0:
                self.idle_since = max(self.idle_since, now)
        self._changed()

    def data_api_activity(self, now: float | None = None) -> None:
        """A Data API statement ran: that is activity, like a short connection.

        :param now: the current time.
        """
        now = time.time() if now is None else now
        with self.lock:
            self.advance(now)
            self.idle_since = max(self.idle_since, now)
        self._changed()

    # -- reporting -------------------------------------------------------------------------

    def timeline_events(self) -> list[TimelineEvent]:
        """A copy of the timeline, oldest first."""
        with self.lock:
            self.advance()
            return list(self.timeline)

    def snapshot(self) -> dict[str, Any]:
        """JSON-friendly state of the cluster."""
        with self.lock:
            phase = self.advance()
            return {
                "identifier": self.identifier,
                "arn": self.arn,
                "kind": self.spec.kind,
                "engine": self.spec.engine,
                "region": self.spec.region,
                "host": self.host,
                "port": self.port,
                "phase": phase.value,
                "status": self.status(),
                "capacity": self.current_capacity(),
                "min_capacity": self.min_capacity,
                "max_capacity": self.max_capacity,
                "seconds_until_auto_pause": self.seconds_until_auto_pause,
                "data_api": self.spec.data_api,
                "iam_auth": self.spec.iam_auth,
                "upstream": _redact(self.spec.upstream_dsn),
                "ready_at": self.last_ready_at,
                "paused_at": self.paused_at if phase is Phase.PAUSED else None,
                "next_transition_at": self._next_due(),
                "open_connections": self.open_connections,
                "timings": dict(self.timings.__dict__),
                "timeline": [event.as_dict() for event in self.timeline],
                "counters": {
                    "connection_attempts": self.connection_attempts,
                    "connections_completed": len(self.connections_completed_at),
                    "connections_completed_at": list(self.connections_completed_at),
                    "connections_abandoned": self.connections_abandoned,
                    "connections_reset": self.connections_reset,
                    "connections_failed_by_fault": self.connections_failed_by_fault,
                    "data_api_calls": self.data_api_calls,
                },
            }

    # -- internals -------------------------------------------------------------------------

    def _next_due(self) -> float | None:
        if self.phase is Phase.RESUMING and self.capacity_at is not None and self.capacity == 0:
            return min(self.capacity_at, self.phase_until or self.capacity_at)
        if self.phase in (Phase.RESUMING, Phase.SCALING, Phase.STOPPING, Phase.STARTING):
            return self.phase_until
        if (
            self.phase is Phase.AVAILABLE
            and self.open_connections == 0
            and self.spec.kind != "provisioned"
            and self._can_pause_now()
        ):
            return self.idle_since + self.seconds_until_auto_pause
        return None

    def _can_pause_now(self) -> bool:
        if self.spec.kind == "serverless-v1":
            return True
        return self.min_capacity == 0

    def _transition(self, at: float) -> None:
        phase = self.phase
        if phase is Phase.RESUMING:
            if self.capacity_at is not None and self.capacity == 0 and self.capacity_at <= at:
                self.capacity = self.target_capacity
                self._record(at, "capacity-available", {"capacity": self.capacity})
                if self.phase_until is not None and self.phase_until > at:
                    return
            self._become_ready(at, "ready", {"by": "resume"}, from_wake=True)
        elif phase is Phase.SCALING:
            self.capacity = self.target_capacity
            self.phase = Phase.AVAILABLE
            self.phase_until = None
            self._record(at, "capacity-changed", {"capacity": self.capacity})
        elif phase is Phase.STOPPING:
            self.phase = Phase.STOPPED
            self.phase_until = None
            self.capacity = 0.0
            self._record(at, "stopped", {})
        elif phase is Phase.STARTING:
            self._become_ready(at, "available", {"by": "start"}, from_wake=True)
        elif phase is Phase.AVAILABLE:
            self._enter_paused(at, "auto-paused", {"idle_seconds": self.seconds_until_auto_pause})

    def _become_ready(self, at: float, event: str, detail: dict[str, Any], *, from_wake: bool) -> None:
        self.phase = Phase.AVAILABLE
        self.phase_until = None
        self.capacity_at = None
        if self.spec.kind == "serverless-v1":
            self.capacity = self.target_capacity or self.min_capacity
        else:
            self.capacity = max(self.min_capacity, 0.5)
        self.last_ready_at = at
        self.idle_since = max(self.idle_since, at)
        self.fault_window_from = at if from_wake else None
        self._record(at, event, detail)

    def _enter_paused(
        self, paused_at: float, event: str, detail: dict[str, Any], record_at: float | None = None
    ) -> None:
        self.phase = Phase.PAUSED
        self.phase_until = None
        self.capacity = 0.0
        self.target_capacity = 0.0
        self.capacity_at = None
        self.paused_at = paused_at
        self._record(paused_at if record_at is None else record_at, event, detail)

    def _record(self, at: float, event: str, detail: dict[str, Any]) -> None:
        self.timeline.append(TimelineEvent(at=at, event=event, detail=detail))

    def _changed(self) -> None:
        callback = self.on_change
        if callback is not None:
            callback(self)


def _redact(dsn: str) -> str:
    """Hide the password of a DSN for reports."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"

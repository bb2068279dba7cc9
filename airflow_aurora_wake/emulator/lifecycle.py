"""The timed phases of one emulated cluster: what is due when, applied at its scheduled time.

The lifecycle is advanced lazily: every reader first calls :meth:`ClusterLifecycle.advance`,
which applies all transitions that are due at their *scheduled* times. So the recorded timeline
is exact (``ready_at == requested_at + resume_seconds``), whichever thread looks first, and the
event loop's timers only exist to perform side effects (opening a listener, releasing held
connections) once a transition is due.

This module is pure Python and thread-safe (one re-entrant lock per cluster).
"""

from __future__ import annotations

import threading
import time
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


class ClusterLifecycle:
    """Phase, capacity and timeline of one emulated cluster, and the transitions due by themselves.

    :class:`~airflow_aurora_wake.emulator.model.ClusterModel` adds what changes it from outside.

    :param spec: the cluster's configuration.
    :param timings: the effective timings (the spec's own, else the emulator's).
    :param now: creation time (defaults to ``time.time()``).
    """

    def __init__(self, spec: ClusterSpec, timings: Timings, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.spec = spec
        self.timings = timings
        self.lock = threading.RLock()
        self.min_capacity, self.max_capacity = spec.capacity_range
        self.seconds_until_auto_pause = spec.seconds_until_auto_pause
        self.timeline: list[TimelineEvent] = []
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
        self._record(now, "created", {"kind": spec.kind, "engine": spec.engine, "state": spec.state})
        if spec.state == "paused":
            self._enter_paused(now, "paused", {"by": "initial-state"})
        elif spec.state == "stopped":
            self.phase = Phase.STOPPED
            self._record(now, "stopped", {"by": "initial-state"})
        else:
            self._become_ready(now, "available", {"by": "initial-state"}, from_wake=False)

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

    def can_auto_pause(self) -> bool:
        """Whether the cluster may pause when idle: v1 always, v2 while its ``MinCapacity`` is 0
        (its live scaling: a raised minimum keeps it awake), provisioned never."""
        if self.spec.kind == "serverless-v1":
            return True
        return self.spec.kind == "serverless-v2" and self.min_capacity == 0

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

    # -- transitions -----------------------------------------------------------------------

    def _next_due(self) -> float | None:
        if self.phase is Phase.RESUMING and self.capacity_at is not None and self.capacity == 0:
            return min(self.capacity_at, self.phase_until or self.capacity_at)
        if self.phase in (Phase.RESUMING, Phase.SCALING, Phase.STOPPING, Phase.STARTING):
            return self.phase_until
        if self.phase is Phase.AVAILABLE and self.open_connections == 0 and self.can_auto_pause():
            return self.idle_since + self.seconds_until_auto_pause
        return None

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
            self._enter_stopped(at, {})
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

    def _begin(self, phase: Phase, at: float, until: float, event: str, detail: dict[str, Any]) -> None:
        """Enter a phase that ends by itself at ``until``."""
        self.phase = phase
        self.phase_until = until
        self._record(at, event, detail)

    def _enter_stopped(self, at: float, detail: dict[str, Any]) -> None:
        self.phase = Phase.STOPPED
        self.phase_until = None
        self.capacity = 0.0
        self._record(at, "stopped", detail)

    def _record(self, at: float, event: str, detail: dict[str, Any]) -> None:
        self.timeline.append(TimelineEvent(at=at, event=event, detail=detail))

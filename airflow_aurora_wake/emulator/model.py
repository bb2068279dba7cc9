"""What changes one emulated cluster and what it reports.

AWS requests (resume, capacity, start, stop, delete), instant admin changes and database
activity change a cluster's :class:`~airflow_aurora_wake.emulator.lifecycle.ClusterLifecycle`;
callbacks let the emulator apply their side effects. Pure Python and thread-safe.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from airflow_aurora_wake.core.errors import redact
from airflow_aurora_wake.emulator.config import ClusterSpec, TimelineEvent, Timings, check_resume_answers
from airflow_aurora_wake.emulator.counters import ClusterCounters
from airflow_aurora_wake.emulator.lifecycle import ClusterLifecycle, Phase
from airflow_aurora_wake.emulator.scaling import V2Scaling

__all__ = ["ClusterModel", "EmulatedStateError", "Phase"]


class EmulatedStateError(Exception):
    """The emulated cluster's state refuses the request (the AWS endpoint answers
    ``InvalidDBClusterStateFault``).

    :param message: the message AWS would give.
    """


class ClusterModel(ClusterLifecycle):
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
        super().__init__(spec, timings, now)
        self.arn = arn
        self.port = port
        self.host = host
        #: The reader endpoint's host when the cluster has readers (set by the backend), else None.
        self.reader_host: str | None = None
        #: Guarded by ``lock``.
        self.counters = ClusterCounters()
        #: What connection attempts and rds-data calls get while the cluster resumes (the spec's,
        #: until :meth:`set_resume_answers`).
        self.resume_answer = spec.resume_answer
        self.data_api_resume_answer = spec.data_api_resume_answer
        #: Called (outside the lock) after every change that may need a side effect.
        self.on_change: Callable[[ClusterModel], None] | None = None
        #: Called before the state is reported to a client, so that a lazily applied
        #: transition (starting -> available) has its side effect (the port listening again)
        #: before anyone can see it.
        self.on_observe: Callable[[ClusterModel], None] | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> ClusterModel:
        # moto deep-copies its cluster objects in some code paths; the model is shared state.
        return self

    def observe(self) -> None:
        """Bring side effects up to date before reporting the state (see ``on_observe``)."""
        callback = self.on_observe
        if callback is not None:
            callback(self)

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
        :raises EmulatedStateError: while a resume or scaling is under way, or when stopped.
        """
        now = time.time() if now is None else now
        with self.lock:
            phase = self.advance(now)
            current = self.capacity
            if phase is Phase.PAUSED:
                self.request_resume("modify-capacity", now, capacity)
                return capacity, current
            if phase in (Phase.RESUMING, Phase.SCALING):
                raise EmulatedStateError(
                    f"DB cluster {self.identifier} is already scaling capacity "
                    f"(a scaling or resume is in progress); try again later."
                )
            if phase is not Phase.AVAILABLE:
                raise self._wrong_state("available")
            self.target_capacity = capacity
            until = now + self.timings.v1_capacity_seconds
            self._begin(Phase.SCALING, now, until, "scaling-requested", {"from": current, "to": capacity})
        self._changed()
        return capacity, current

    def start(self, now: float | None = None) -> None:
        """``StartDBCluster``: only from ``stopped``.

        :param now: the current time.
        :raises EmulatedStateError: from any other state, with AWS's message.
        """
        with self._change(now) as (at, phase):
            if phase is not Phase.STOPPED:
                raise self._wrong_state("stopped,inaccessible-encryption-credentials-recoverable")
            until = at + self.timings.start_seconds
            self._begin(Phase.STARTING, at, until, "start-requested", {"available_expected_at": until})

    def stop(self, now: float | None = None) -> None:
        """``StopDBCluster``: only from ``available`` (which includes paused v2 clusters).

        :param now: the current time.
        :raises EmulatedStateError: from any other state, with AWS's message.
        """
        with self._change(now) as (at, phase):
            if self.spec.kind == "serverless-v1":
                raise EmulatedStateError(
                    f"DB cluster {self.identifier} is an Aurora Serverless v1 cluster, "
                    "which cannot be stopped."
                )
            if phase not in (Phase.AVAILABLE, Phase.PAUSED):
                raise self._wrong_state("available")
            until = at + self.timings.stop_seconds
            self._begin(Phase.STOPPING, at, until, "stop-requested", {"stopped_expected_at": until})

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
        :raises ValueError: for a cluster that cannot pause (a kind that never does, or a v2
            cluster whose minimum is above 0 now).
        """
        if not self.can_auto_pause():
            raise ValueError(
                f"cluster {self.identifier!r} ({self.spec.kind}, min capacity {self.min_capacity}) "
                "cannot be paused"
            )
        with self._admin_change(now) as at:
            self._enter_paused(
                at - paused_for, "paused", {"by": "admin", "paused_for": paused_for}, record_at=at
            )

    def force_wake(self, now: float | None = None) -> None:
        """Make the cluster available at once (admin; also starts a stopped cluster).

        :param now: the current time.
        """
        with self._admin_change(now) as at:
            self._become_ready(at, "ready", {"by": "admin"}, from_wake=False)

    def force_stop(self, now: float | None = None) -> None:
        """Stop at once (admin).

        :param now: the current time.
        """
        with self._admin_change(now) as at:
            self._enter_stopped(at, {"by": "admin"})

    def set_timings(self, timings: Timings) -> None:
        """Use new timings for transitions requested from now on.

        :param timings: the new timings.
        """
        with self.lock:
            self.timings = timings

    def set_resume_answers(
        self, resume_answer: str | None = None, data_api_resume_answer: str | None = None
    ) -> None:
        """Change what arrives while the cluster resumes (attempts already answered keep theirs).

        :param resume_answer: see :attr:`ClusterSpec.resume_answer` (``None``: unchanged).
        :param data_api_resume_answer: see :attr:`ClusterSpec.data_api_resume_answer`
            (``None``: unchanged).
        :raises ValueError: for an unknown answer, or one the engine cannot give.
        """
        with self.lock:
            answer = self.resume_answer if resume_answer is None else resume_answer
            data_api = data_api_resume_answer
            if data_api is None:
                data_api = self.data_api_resume_answer
            check_resume_answers(self.identifier, self.spec.family, answer, data_api)
            self.resume_answer, self.data_api_resume_answer = answer, data_api

    def v2_scaling(self) -> V2Scaling:
        """The cluster's Serverless v2 scaling now (the range the model holds)."""
        with self.lock:
            return V2Scaling(self.min_capacity, self.max_capacity, self.seconds_until_auto_pause)

    def check_modifiable(self, now: float | None = None) -> None:
        """Refuse ``ModifyDBCluster`` while stopping, stopped or starting, as AWS does.

        :param now: the current time.
        :raises EmulatedStateError: in those states.
        """
        with self.lock:
            if self.advance(now) in (Phase.STOPPING, Phase.STOPPED, Phase.STARTING):
                raise self._wrong_state("available")

    def update_v2_scaling(
        self,
        min_capacity: float | None,
        max_capacity: float | None,
        seconds_until_auto_pause: int | None,
        now: float | None = None,
    ) -> None:
        """``ModifyDBCluster`` changed the v2 scaling (checked already): record it, apply its effects.

        A change is recorded as ``scaling-changed`` and restarts the idle clock: a minimum given
        back to 0 counts its idle time from the change, or a cluster held idle for hours would
        pause at once, at a time before the change. A change of the range resumes a paused
        cluster (see :meth:`V2Scaling.changes_range_of` for which changes count). Other kinds
        keep their own scaling: moto stores the request, the model ignores it.

        :param min_capacity: new minimum (``None``: unchanged).
        :param max_capacity: new maximum (``None``: unchanged).
        :param seconds_until_auto_pause: new idle time (``None``: unchanged).
        :param now: the current time.
        """
        if self.spec.kind != "serverless-v2":
            return
        with self._change(now) as (at, phase):
            before = self.v2_scaling()
            after = before.merged(min_capacity, max_capacity, seconds_until_auto_pause)
            if after == before:
                return
            self.min_capacity, self.max_capacity = after.min_capacity, after.max_capacity
            self.seconds_until_auto_pause = after.seconds_until_auto_pause
            self._record(
                at,
                "scaling-changed",
                {"cause": "modify-db-cluster", "before": before.as_dict(), "after": after.as_dict()},
            )
            self.idle_since = max(self.idle_since, at)
            if phase is Phase.AVAILABLE:
                self.capacity = min(max(self.capacity, after.min_capacity, 0.5), after.max_capacity)
            elif phase is Phase.PAUSED and after.changes_range_of(before):
                self.request_resume("modify-db-cluster", at)

    # -- database side events -------------------------------------------------------------

    def record_attempt(self) -> None:
        """A TCP connection arrived at the database endpoint."""
        with self.lock:
            self.counters.connection_attempts += 1

    def connection_opened(self, now: float | None = None) -> None:
        """A connection was spliced to the upstream (it keeps the cluster awake).

        :param now: the current time.
        """
        with self._change(now) as (at, _):
            self.open_connections += 1
            self.counters.connections_completed_at.append(at)

    def connection_closed(self, now: float | None = None) -> None:
        """A spliced connection closed: the idle clock restarts when the last one goes.

        :param now: the current time.
        """
        with self._change(now) as (at, _):
            self.open_connections = max(0, self.open_connections - 1)
            if self.open_connections == 0:
                self.idle_since = max(self.idle_since, at)

    def data_api_activity(self, now: float | None = None) -> None:
        """A Data API statement ran: that is activity, like a short connection.

        :param now: the current time.
        """
        with self._change(now) as (at, _):
            self.idle_since = max(self.idle_since, at)

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
                "upstream": redact(self.spec.upstream_dsn),
                "ready_at": self.last_ready_at,
                "paused_at": self.paused_at if phase is Phase.PAUSED else None,
                "next_transition_at": self._next_due(),
                "open_connections": self.open_connections,
                "timings": dict(self.timings.__dict__),
                "resume_answer": self.resume_answer,
                "data_api_resume_answer": self.data_api_resume_answer,
                "timeline": [event.as_dict() for event in self.timeline],
                "counters": self.counters.as_dict(),
            }

    def counter_values(self) -> dict[str, Any]:
        """The cluster's counters, JSON-friendly."""
        with self.lock:
            return self.counters.as_dict()

    # -- internals -------------------------------------------------------------------------

    def _wrong_state(self, expected: str) -> EmulatedStateError:
        return EmulatedStateError(
            f"DbCluster {self.identifier} is in {self.status()} state but expected it to be "
            f"one of {expected}."
        )

    @contextlib.contextmanager
    def _change(self, now: float | None) -> Iterator[tuple[float, Phase]]:
        """Hold the lock over a change, giving the time and the phase then; report it after."""
        at = time.time() if now is None else now
        with self.lock:
            yield at, self.advance(at)
        self._changed()

    @contextlib.contextmanager
    def _admin_change(self, now: float | None) -> Iterator[float]:
        """:meth:`_change` for an instant admin change, which a deleted cluster refuses."""
        with self._change(now) as (at, phase):
            if phase is Phase.DELETED:
                raise ValueError(f"cluster {self.identifier!r} is deleted")
            yield at

    def _changed(self) -> None:
        callback = self.on_change
        if callback is not None:
            callback(self)

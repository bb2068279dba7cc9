"""The reader DB instances of an emulated cluster: their state, status and own sleep.

A :class:`ReaderInstance` is what a reader's own database endpoint (a
:class:`~airflow_aurora_wake.emulator.dbproxy.ClusterProxy` in front of the same real server)
fronts, with the interface the proxy uses of a cluster's model. Its phase is the cluster's
while the cluster is stopping, stopped, starting or deleted, ``creating`` (connections refused)
during its :attr:`~.readerconfig.ReaderSpec.creating_seconds`, and then:

* in failover tiers 0-1 (and in a provisioned cluster), the cluster's: it pauses and resumes
  with the writer, and a connection to it wakes the writer too;
* in tiers 2-15 of a Serverless v2 cluster, its own (:class:`ReaderSleep`): it pauses after its
  own idle time (while the cluster's minimum capacity is 0), a connection to it resumes it alone,
  and that resume takes ``Timings.reader_resume_extra_seconds`` longer than the writer's.

Pure Python and thread-safe, like the cluster's model.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from airflow_aurora_wake.emulator.config import ClusterSpec, Faults, TimelineEvent, Timings
from airflow_aurora_wake.emulator.counters import ClusterCounters
from airflow_aurora_wake.emulator.lifecycle import LISTENING_PHASES, Phase
from airflow_aurora_wake.emulator.model import ClusterModel
from airflow_aurora_wake.emulator.readerconfig import ReaderSpec

__all__ = ["READER_HOST", "ReaderInstance", "ReaderSleep", "reader_timings"]

#: Where the reader endpoints of clusters with readers listen, at their cluster's port: a host
#: of their own, as the reader endpoint is a DNS name of its own at the cluster's port on AWS.
#: Linux routes all of 127.0.0.0/8 to the loopback interface (macOS needs
#: ``sudo ifconfig lo0 alias 127.0.0.2``).
READER_HOST = "127.0.0.2"
#: Cluster phases in which every instance of the cluster is down with it.
_CLUSTER_DOWN = frozenset({Phase.STOPPING, Phase.STOPPED, Phase.STARTING, Phase.DELETED})


def reader_timings(timings: Timings) -> Timings:
    """The timings of a reader that pauses on its own: its resumes take a little longer.

    :param timings: the cluster's timings.
    """
    extra = timings.reader_resume_extra_seconds
    return dataclasses.replace(
        timings,
        resume_seconds=timings.resume_seconds + extra,
        deep_resume_seconds=timings.deep_resume_seconds + extra,
    )


class ReaderSleep(ClusterModel):
    """The pause and resume of a reader in tiers 2-15 of a Serverless v2 cluster: its own.

    :param cluster: the cluster's model (its scaling decides whether the reader may pause).
    :param identifier: the reader's ``DBInstanceIdentifier``.
    :param reader: the reader's configuration.
    :param host: the host of the reader's instance endpoint.
    :param port: the port of the reader's instance endpoint.
    :param now: creation time.
    """

    def __init__(
        self, cluster: ClusterModel, identifier: str, reader: ReaderSpec, *, host: str, port: int, now: float
    ) -> None:
        paused = cluster.advance(now) is Phase.PAUSED
        own_idle = reader.seconds_until_auto_pause
        spec = ClusterSpec(
            identifier,
            kind="serverless-v2",
            engine=cluster.spec.engine,
            upstream=cluster.spec.upstream,
            state=reader.state or ("paused" if paused else "available"),
            region=cluster.spec.region,
            min_capacity=cluster.min_capacity,
            max_capacity=cluster.max_capacity,
            seconds_until_auto_pause=cluster.seconds_until_auto_pause if own_idle is None else own_idle,
        )
        arn = f"{cluster.arn.rsplit(':cluster:', 1)[0]}:db:{identifier}"
        super().__init__(spec, reader_timings(cluster.timings), arn=arn, port=port, host=host, now=now)
        self.cluster = cluster

    def can_auto_pause(self) -> bool:
        """Only while the cluster's own minimum capacity is 0 (a raised floor keeps every instance up)."""
        return self.cluster.can_auto_pause()

    def request_resume(self, cause: str, now: float | None = None, capacity: float | None = None) -> bool:
        """Resume with the cluster's timings of now (plus the reader's extra time).

        :param cause: what asked.
        :param now: the current time.
        :param capacity: unused (v1 only).
        """
        with self.lock:
            self.timings = reader_timings(self.cluster.timings)
        return super().request_resume(cause, now, capacity)

    def follow_cluster_start(self) -> None:
        """The cluster started again: every instance of a started cluster comes up awake."""
        with self._change(None) as (at, phase):
            if phase is not Phase.AVAILABLE:
                self._become_ready(at, "available", {"by": "cluster-start"}, from_wake=False)


class ReaderInstance:
    """One reader DB instance: what its endpoint fronts, and what ``DescribeDBInstances`` shows.

    :param cluster: the cluster's model.
    :param identifier: the ``DBInstanceIdentifier``.
    :param reader: its configuration.
    :param host: the host of its instance endpoint.
    :param port: the port of its instance endpoint.
    :param now: creation time (default: now).
    """

    def __init__(
        self,
        cluster: ClusterModel,
        identifier: str,
        reader: ReaderSpec,
        *,
        host: str,
        port: int,
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        self.cluster = cluster
        self.identifier = identifier
        self.reader = reader
        self.host = host
        self.port = port
        self.creating_until = now + reader.creating_seconds if reader.creating_seconds > 0 else None
        own = cluster.spec.kind == "serverless-v2" and reader.sleeps_on_its_own
        self.sleep = ReaderSleep(cluster, identifier, reader, host=host, port=port, now=now) if own else None
        #: Connections spliced through this reader's endpoint (its lifecycle's lock guards it).
        self.connections_completed = 0
        self._was_down = False

    # -- what the database endpoint uses of a model --------------------------------------

    @property
    def spec(self) -> ClusterSpec:
        """The cluster's spec (the upstream the reader fronts)."""
        return self.cluster.spec

    @property
    def lifecycle(self) -> ClusterModel:
        """What pauses and resumes this reader: its own sleep (tiers 2-15), else the cluster."""
        return self.sleep or self.cluster

    @property
    def lock(self) -> Any:
        """The lock of :attr:`lifecycle`, which guards :attr:`counters`."""
        return self.lifecycle.lock

    @property
    def counters(self) -> ClusterCounters:
        """The counters of :attr:`lifecycle` (a tier 0-1 reader's count with the cluster's)."""
        return self.lifecycle.counters

    @property
    def resume_answer(self) -> str:
        """What a connection attempt gets while the reader resumes: the cluster's answer."""
        return self.cluster.resume_answer

    def creating(self, now: float | None = None) -> bool:
        """Whether the reader still shows ``creating``.

        :param now: the current time.
        """
        now = time.time() if now is None else now
        return self.creating_until is not None and now < self.creating_until

    def advance(self, now: float | None = None) -> Phase:
        """The phase of the reader's endpoint now (``STARTING`` while ``creating``: it refuses).

        :param now: the current time.
        """
        now = time.time() if now is None else now
        phase = self.cluster.advance(now)
        if phase in _CLUSTER_DOWN:
            self._was_down = True
            return phase
        if self.creating(now):
            return Phase.STARTING
        if self.sleep is None:
            return phase
        if self._was_down:
            self._was_down = False
            self.sleep.follow_cluster_start()
        return self.sleep.advance(now)

    def next_transition_at(self) -> float | None:
        """When the reader's endpoint may next change (the cluster's, its own, its creation)."""
        dues = [self.cluster.next_transition_at()]
        if self.sleep is not None:
            dues.append(self.sleep.next_transition_at())
        if self.creating():
            dues.append(self.creating_until)
        return min((due for due in dues if due is not None), default=None)

    def is_listening(self) -> bool:
        """Whether the reader's endpoint accepts TCP connections now."""
        return self.advance() in LISTENING_PHASES

    def record_attempt(self) -> None:
        """A TCP connection arrived at the reader's endpoint."""
        self.lifecycle.record_attempt()

    def request_resume(self, cause: str, now: float | None = None) -> bool:
        """Resume the reader (a tier 0-1 reader: the cluster, writer included) if paused.

        :param cause: what asked.
        :param now: the current time.
        """
        return self.lifecycle.request_resume(cause, now)

    def in_fault_window(self, faults: Faults, now: float | None = None) -> bool:
        """Whether the after-resume fault window of :attr:`lifecycle` is open.

        :param faults: the active faults.
        :param now: the current time.
        """
        return self.lifecycle.in_fault_window(faults, now)

    def connection_opened(self, now: float | None = None) -> None:
        """A connection was spliced (it keeps :attr:`lifecycle` awake).

        :param now: the current time.
        """
        self.lifecycle.connection_opened(now)
        with self.lock:
            self.connections_completed += 1

    def connection_closed(self, now: float | None = None) -> None:
        """A spliced connection closed.

        :param now: the current time.
        """
        self.lifecycle.connection_closed(now)

    # -- reporting --------------------------------------------------------------------------

    def status(self) -> str:
        """The ``DBInstanceStatus`` now: the cluster's while it is not available, ``creating``,
        else ``available`` (paused or not: AWS does not show a pause)."""
        self.advance()
        status = self.cluster.status()
        if status != "available":
            return status
        return "creating" if self.creating() else "available"

    def ready_at(self) -> float | None:
        """The last time the reader became connectable (its own resume, or the cluster's)."""
        lifecycle = self.lifecycle
        with lifecycle.lock:
            self.advance()
            return lifecycle.last_ready_at

    def timeline_events(self) -> list[TimelineEvent]:
        """Its own timeline (tiers 2-15), else the cluster's, which it shares."""
        self.advance()
        return self.lifecycle.timeline_events()

    def snapshot(self) -> dict[str, Any]:
        """JSON-friendly state of the reader."""
        phase = self.advance()
        with self.lock:
            completed = self.connections_completed
        return {
            "identifier": self.identifier,
            "cluster": self.cluster.identifier,
            "promotion_tier": self.reader.promotion_tier,
            "pauses_on_its_own": self.sleep is not None,
            "host": self.host,
            "port": self.port,
            "phase": "creating" if self.creating() and phase is Phase.STARTING else phase.value,
            "status": self.status(),
            "creating_until": self.creating_until,
            "ready_at": self.ready_at(),
            "seconds_until_auto_pause": self.lifecycle.seconds_until_auto_pause,
            "connections_completed": completed,
            "timeline": [event.as_dict() for event in self.sleep.timeline_events()] if self.sleep else [],
        }

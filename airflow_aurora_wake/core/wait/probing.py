"""What a wait probes, and one round of probes: the writer, the reader endpoint or every instance.

The shared poller and the sensor's check both run their probes through a :class:`Prober`, so
the targets (the one builder, :func:`~airflow_aurora_wake.core.targets.build_target`, with the
endpoint as a host override), the classification of failures and what "answered" means are the
same on every path: a round has answered when every required endpoint ran ``SELECT 1``.

It also gathers the one RDS answer that proves a Serverless v2 writer paused or resuming
(``DescribeDBLogFiles`` answering ``DBInstanceNotReadyFault``) when a probe meets the 28000
"no pg_hba.conf entry" refusal on a cluster whose description says it cannot pause: a scaling
change (a warm window raising ``MinCapacity`` from 0) resumes a paused cluster, whose front end
gives that answer until the resume ends, while the description already shows a floor above 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    AwsPermissionError,
    DatabaseConfigurationError,
    ErrorVerdict,
    TransientError,
    classify_error,
    log_files_denied,
    raise_if_fatal,
)
from airflow_aurora_wake.core.instances import InstanceSnapshot, InstanceState
from airflow_aurora_wake.core.probes import DataApiTarget, DatabaseTarget, probe_once
from airflow_aurora_wake.core.rds import AWS_CALL_TIMEOUT, RdsCalls, describe_instances, describe_log_files
from airflow_aurora_wake.core.wait.request import ReachedEndpoint, WaitRequest, WaitResources
from airflow_aurora_wake.core.wait.round import ProbeRound

__all__ = ["ProbeRound", "Prober", "failure_message"]

#: Seconds the look-up that tells whether a reader endpoint reached the writer may take.
_RESOLVE_SECONDS = 2.0
#: The grace window (``core.errors.GRACE_WINDOWS``) of the 28000 refusal a resuming front end gives.
_LOGIN_REFUSED = "login-refused"


class _Evidence(Enum):
    """What ``DescribeDBLogFiles`` on the writer said, asked about a 28000 refusal."""

    PAUSED = "paused"  # DBInstanceNotReadyFault: paused or resuming; the 28000 grace applies
    NOT_PAUSED = "not-paused"  # log files listed, or an error that proves nothing: fail at once
    DENIED = "denied"  # no evidence; the failure names the permission that would give it
    UNANSWERED = "unanswered"  # throttled, 5xx, no answer in time: asked again after a describe


@dataclass(frozen=True)
class _Asking:
    """What asking RDS for that evidence needs on one path: its client, counter and deadline."""

    rds: Any
    calls: RdsCalls
    deadline: float | None  # event-loop time; None: bounded by AWS_CALL_TIMEOUT alone


@dataclass(frozen=True)
class _Planned:
    """One endpoint a round probes."""

    target: DatabaseTarget | DataApiTarget
    role: str  # "writer", "reader-endpoint" or "instance"
    instance: str | None = None

    def label(self) -> str:
        if isinstance(self.target, DataApiTarget) or self.role == "writer":
            return "writer"
        endpoint = f"{self.target.host}:{self.target.port}"
        if self.instance is not None:
            return f"DB instance {self.instance} ({endpoint})"
        return f"reader endpoint {endpoint}"


class Prober:
    """The probes of one wait: which endpoints, built once each, and one round over them.

    :param request: what to wait for (``instances`` says which endpoints must answer).
    :param resources: builds the database targets (the one builder, with a host override).
    """

    def __init__(self, request: WaitRequest, resources: WaitResources) -> None:
        self.request = request
        self.resources = resources
        self._targets: dict[tuple[str | None, int | None], DatabaseTarget] = {}
        #: ``DescribeDBLogFiles`` proved the writer paused during this wait. Kept for the rest of
        #: the wait: a later describe cannot tell (it still shows the raised floor).
        self.seen_paused = False
        #: The describe the evidence was last asked for, and its answer: asked at most once per
        #: describe, however many probes (or endpoints of one round) meet the refusal.
        self._asked: tuple[ClusterSnapshot, _Evidence] | None = None

    def with_evidence(self, snapshot: ClusterSnapshot) -> ClusterSnapshot:
        """``snapshot`` with this wait's proof of "paused", if it has one.

        :param snapshot: the cluster as described.
        """
        if self.seen_paused and not snapshot.seen_paused:
            return dataclasses.replace(snapshot, seen_paused=True)
        return snapshot

    async def list_members(
        self, rds: Any, *, calls: RdsCalls, timeout: float | None
    ) -> tuple[InstanceSnapshot, ...] | None:
        """List the cluster's DB instances when the wait is on all of them (``None`` otherwise).

        :param rds: an aiobotocore RDS client.
        :param calls: counts the call.
        :param timeout: seconds the call may take.
        :raises TransientError: throttling, 5xx or network trouble.
        """
        if self.request.instances != "all":
            return None
        request = self.request
        return await describe_instances(
            rds, request.db_cluster_identifier, region_name=request.region_name, calls=calls, timeout=timeout
        )

    def verdict(
        self,
        exc: Exception,
        snapshot: ClusterSnapshot,
        target: DatabaseTarget | DataApiTarget | None,
        grace_spent: Mapping[str, float],
    ) -> ErrorVerdict:
        """Classify a probe failure; raise it when waiting cannot help (call it in ``except``).

        :param exc: the failure.
        :param snapshot: the cluster as described.
        :param target: the target that failed, if known (named in messages, its secrets kept out).
        :param grace_spent: per grace window, seconds since this wait's first answer under it.
        """
        known = self.with_evidence(snapshot)
        verdict = raise_if_fatal(exc, **self._context(known, target, grace_spent))
        if verdict.grace == _LOGIN_REFUSED and not snapshot.may_be_paused:
            # Tolerated only thanks to the writer's answer: say so where the wait tells why.
            return dataclasses.replace(verdict, reason=f"{verdict.reason}; the writer is paused or resuming")
        return verdict

    def failure_message(self, snapshot: ClusterSnapshot, verdict: ErrorVerdict, attempt: int) -> str:
        """:func:`failure_message` of this wait, knowing its proof of "paused".

        :param snapshot: the cluster as described.
        :param verdict: the round's first retryable failure.
        :param attempt: the probe attempt number.
        """
        return failure_message(self.request, self.with_evidence(snapshot), verdict, attempt)

    def _context(
        self,
        snapshot: ClusterSnapshot,
        target: DatabaseTarget | DataApiTarget | None,
        grace_spent: Mapping[str, float],
        *,
        may_be_paused: bool | None = None,
    ) -> dict[str, Any]:
        """The keyword arguments that classify a probe failure on this wait."""
        database = target if isinstance(target, DatabaseTarget) else None
        return {
            "where": self.request.probe_source(snapshot),
            "may_be_paused": snapshot.may_be_paused if may_be_paused is None else may_be_paused,
            "grace_spent": grace_spent,
            "cluster": self.request.db_cluster_identifier,
            "region": self.request.region_name,
            "target": database.describe() if database else None,
            "secrets": database.secrets if database else (),
        }

    async def _judge(
        self,
        exc: Exception,
        snapshot: ClusterSnapshot,
        target: DatabaseTarget | DataApiTarget,
        grace_spent: Mapping[str, float],
        asking: _Asking,
    ) -> ErrorVerdict:
        """:meth:`verdict`, and for the 28000 refusal of a cluster that cannot pause, the writer's
        evidence first: the same refusal from a resuming front end is waited out.

        :raises AuroraWakeError: a failure waiting cannot fix.
        """
        try:
            return self.verdict(exc, snapshot, target, grace_spent)
        except AuroraWakeError as error:
            if not self._pause_would_explain(exc, snapshot, target):
                raise
            evidence = await self._ask(snapshot, asking)
            if evidence is _Evidence.PAUSED:
                return self.verdict(exc, snapshot, target, grace_spent)
            if evidence is _Evidence.UNANSWERED:
                # Not known yet: tolerated as on a cluster that may be paused, so the grace
                # window (from the first refusal) still bounds it; the next describe asks again.
                verdict = raise_if_fatal(
                    exc, **self._context(snapshot, target, grace_spent, may_be_paused=True)
                )
                return dataclasses.replace(
                    verdict, reason=f"{verdict.reason}; DescribeDBLogFiles did not answer"
                )
            if evidence is _Evidence.DENIED:
                raise log_files_denied(error) from None
            raise

    def _pause_would_explain(
        self, exc: Exception, snapshot: ClusterSnapshot, target: DatabaseTarget | DataApiTarget
    ) -> bool:
        """Whether the writer's evidence could change this failure's verdict: a v2 cluster with a
        known writer, described as unable to pause, and an answer the 28000 rule would wait out
        on a cluster that may be paused (asked of the rule itself, not matched here again)."""
        if self.with_evidence(snapshot).may_be_paused:
            return False  # the rule already knew; its window is spent
        if snapshot.kind is not ClusterKind.SERVERLESS_V2 or snapshot.writer_instance is None:
            return False
        paused = classify_error(exc, **self._context(snapshot, target, {}, may_be_paused=True))
        return paused.grace == _LOGIN_REFUSED

    async def _ask(self, snapshot: ClusterSnapshot, asking: _Asking) -> _Evidence:
        """``DescribeDBLogFiles`` on the writer, once per describe; never raises what the user did
        not ask for (a denied permission, an unknown instance): those only mean "no evidence"."""
        if self._asked is not None and self._asked[0] is snapshot:
            return self._asked[1]
        writer = snapshot.writer_instance
        assert writer is not None
        loop = asyncio.get_running_loop()
        left = AWS_CALL_TIMEOUT if asking.deadline is None else asking.deadline - loop.time()
        evidence = _Evidence.UNANSWERED
        try:
            answered = await describe_log_files(
                asking.rds,
                self.request.db_cluster_identifier,
                instance=writer,
                region_name=self.request.region_name,
                calls=asking.calls,
                timeout=max(0.0, min(AWS_CALL_TIMEOUT, left)),
            )
        except TransientError:
            pass
        except AwsPermissionError:
            evidence = _Evidence.DENIED
        except AuroraWakeError:
            evidence = _Evidence.NOT_PAUSED
        else:
            evidence = _Evidence.NOT_PAUSED if answered else _Evidence.PAUSED
        if evidence is _Evidence.PAUSED:
            self.seen_paused = True
        self._asked = (snapshot, evidence)
        return evidence

    async def run(
        self,
        snapshot: ClusterSnapshot,
        members: tuple[InstanceSnapshot, ...] | None,
        *,
        timeout: float,
        rds_data: Any,
        calls: RdsCalls,
        data_api: DataApiTarget | None,
        grace_spent: Mapping[str, float],
        rds: Any,
        rds_deadline: float | None,
    ) -> ProbeRound:
        """Probe every endpoint the wait needs, at once, each within ``timeout``.

        :param snapshot: the cluster as described.
        :param members: with ``instances="all"``, its DB instances as last listed: each serving
            one is probed through its own endpoint (the others keep the wait from being ready).
        :param timeout: seconds each attempt may take.
        :param rds_data: an aiobotocore ``rds-data`` client, for the Data API.
        :param calls: counts the Data API calls.
        :param data_api: the Data API login, for ``probe="data-api"``.
        :param grace_spent: per grace window, seconds since this wait's first answer under it.
        :param rds: an aiobotocore RDS client, to ask the writer whether it is resuming when a
            cluster that cannot pause answers 28000 (counted in ``calls``).
        :param rds_deadline: event-loop time that call must end by (``None``: only
            :data:`~airflow_aurora_wake.core.rds.AWS_CALL_TIMEOUT` bounds it).
        :raises AuroraWakeError: a failure waiting cannot fix (the first one met).
        """
        planned = await self._plan(snapshot, members, data_api)
        if not planned:
            return ProbeRound(nothing_to_probe=True)
        results = await asyncio.gather(
            *(
                probe_once(snapshot, plan.target, timeout=timeout, rds_data_client=rds_data, calls=calls)
                for plan in planned
            ),
            return_exceptions=True,
        )
        verdicts: list[ErrorVerdict] = []
        reached: list[tuple[_Planned, str | None]] = []
        for plan, result in zip(planned, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                asking = _Asking(rds, calls, rds_deadline)
                verdict = await self._judge(result, snapshot, plan.target, grace_spent, asking)
                if len(planned) > 1 or plan.role != "writer":
                    verdict = dataclasses.replace(verdict, reason=f"{plan.label()}: {verdict.reason}")
                verdicts.append(verdict)
            else:
                reached.append((plan, result))
        if verdicts:
            failures = [result for result in results if isinstance(result, Exception)]
            return ProbeRound.failed(verdicts, failures)
        endpoints = [endpoint for _, endpoint in reached if endpoint]
        return ProbeRound(
            endpoint=", ".join(endpoints) if endpoints else None,
            reached=tuple(
                ReachedEndpoint(endpoint, plan.role, plan.instance)
                for plan, endpoint in reached
                if plan.role != "writer"
            ),
            answered_members=frozenset(plan.instance for plan, _ in reached if plan.instance is not None),
            note=await self._note(snapshot, planned),
        )

    async def _plan(
        self,
        snapshot: ClusterSnapshot,
        members: tuple[InstanceSnapshot, ...] | None,
        data_api: DataApiTarget | None,
    ) -> list[_Planned]:
        instances = self.request.instances
        if data_api is not None:
            return [_Planned(data_api, "writer")]
        if instances == "writer":
            return [_Planned(await self._target(snapshot), "writer")]
        if instances == "reader":
            if not snapshot.reader_endpoint:
                raise DatabaseConfigurationError(
                    f"DB cluster {snapshot.identifier!r} reports no reader endpoint (ReaderEndpoint "
                    "in DescribeDBClusters), so instances='reader' cannot be waited for: wait with "
                    "instances='writer'"
                )
            return [_Planned(await self._target(snapshot, snapshot.reader_endpoint), "reader-endpoint")]
        return [
            _Planned(
                await self._target(snapshot, member.endpoint, member.port), "instance", member.identifier
            )
            for member in members or ()
            if member.state is InstanceState.SERVING and member.endpoint
        ]

    async def _target(
        self, snapshot: ClusterSnapshot, host: str | None = None, port: int | None = None
    ) -> DatabaseTarget:
        """The target for one endpoint, built once per wait (the writer's with no override)."""
        key = (host, port)
        target = self._targets.get(key)
        if target is None:
            if host is None:
                target = await self.resources.database_target(snapshot)
            else:
                target = await self.resources.database_target(snapshot, host=host, port=port)
            self._targets[key] = target
        return target

    async def _note(self, snapshot: ClusterSnapshot, planned: list[_Planned]) -> str | None:
        """With ``reader``: say so when the reader endpoint leads to the writer.

        AWS points the reader endpoint of a cluster with no reader that serves at the writer, so
        a wait on it is then a wait on the writer. The reader endpoint resolving to exactly the
        addresses of the cluster (writer) endpoint tells it without any API call.
        """
        if self.request.instances != "reader" or not snapshot.endpoint or not planned:
            return None
        target = planned[0].target
        assert isinstance(target, DatabaseTarget)
        if snapshot.port is not None and target.port != snapshot.port:
            return None
        reader, writer = await asyncio.gather(_addresses(target.host), _addresses(snapshot.endpoint))
        if not reader or not reader <= writer:
            return None
        return (
            f"the reader endpoint {target.host} leads to the writer (it resolves to the cluster "
            f"endpoint's address): DB cluster {snapshot.identifier} has no reader that serves, so AWS "
            "routes reader connections to the writer"
        )


def failure_message(
    request: WaitRequest, snapshot: ClusterSnapshot, verdict: ErrorVerdict, attempt: int
) -> str:
    """What a failed probe round tells the user (a timeout on a cluster that may be paused is
    the resume it started).

    :param request: the wait.
    :param snapshot: the cluster as described.
    :param verdict: the round's first retryable failure.
    :param attempt: the probe attempt number.
    """
    reason = f"{verdict.reason}, attempt {attempt}"
    timed_out = "timed out" in verdict.reason or "resuming" in verdict.reason
    if timed_out and snapshot.may_be_paused:
        first = "Data API call" if request.probe == "data-api" else "connection attempt"
        return f"{first} started the resume; waiting ({reason})"
    return f"not ready yet; retrying ({reason})"


async def _addresses(host: str) -> frozenset[str]:
    """The addresses ``host`` resolves to (empty when it does not resolve in time)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout=_RESOLVE_SECONDS
        )
    except (OSError, asyncio.TimeoutError):
        return frozenset()
    return frozenset(str(info[4][0]) for info in infos)

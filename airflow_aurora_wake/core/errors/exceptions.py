"""The exceptions of the core, :class:`WaitDiagnosis` and :class:`ErrorVerdict`.

Every message says what to fix and never contains a password, token or DSN with a password.
:class:`AuroraWakeError` is deliberately not an ``AirflowException`` so that a sensor's
``soft_fail`` never turns a misconfiguration into a skip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "AuroraWakeError",
    "AwsApiError",
    "AwsCredentialsError",
    "AwsPermissionError",
    "ClusterDeletedError",
    "ClusterDescriptionError",
    "ClusterNotFoundError",
    "ClusterStateError",
    "ConnectionLookupError",
    "DataApiNotEnabledError",
    "DatabaseAuthenticationError",
    "DatabaseConfigurationError",
    "DatabaseProbeError",
    "ErrorVerdict",
    "InvalidParameterError",
    "ReadyTimeoutError",
    "TransientError",
    "WaitDiagnosis",
]


class AuroraWakeError(Exception):
    """Base of every error the core raises on purpose; the message says what to fix."""


class InvalidParameterError(AuroraWakeError, ValueError):
    """A parameter has a value the core cannot use.

    :param parameter: the parameter's name as the caller spelled it.
    :param value: the rejected value (shown with ``repr``; pass a redacted value for secrets).
    :param fix: what a valid value looks like.
    """

    def __init__(self, parameter: str, value: object, fix: str) -> None:
        self.parameter = parameter
        self.value = value
        self.fix = fix
        shown = repr(value)
        if len(shown) > 200:
            shown = shown[:200] + "..."
        super().__init__(f"invalid {parameter}={shown}: {fix}")


class ClusterDescriptionError(AuroraWakeError):
    """``DescribeDBClusters`` returned a shape the core cannot read."""


class ClusterNotFoundError(AuroraWakeError):
    """The cluster does not exist in the region asked.

    :param identifier: the cluster identifier that was asked for.
    :param region: the region that was asked (``None`` when the default region was used).
    """

    def __init__(self, identifier: str, region: str | None) -> None:
        self.identifier = identifier
        self.region = region
        where = region or "the default region of the AWS credentials"
        super().__init__(
            f"DB cluster {identifier!r} was not found in {where}: check the cluster identifier, "
            "the region, and that the AWS credentials belong to the cluster's account"
        )


class AwsCredentialsError(AuroraWakeError):
    """AWS rejected or could not find the credentials."""


class AwsPermissionError(AuroraWakeError):
    """The IAM policy of the caller lacks an action.

    :param action: the IAM action that was denied, for example ``rds:DescribeDBClusters``.
    :param detail: AWS's own message, if any (never contains secrets).
    """

    def __init__(self, action: str, detail: str | None = None) -> None:
        self.action = action
        message = f"AWS denied {action}: grant {action} to the role or user whose credentials made the call"
        if detail:
            message += f" (AWS said: {detail})"
        super().__init__(message)


class AwsApiError(AuroraWakeError):
    """An AWS error the core does not expect and cannot wait out."""


class TransientError(AuroraWakeError):
    """A failure that may pass with time, raised when the time or attempts to outlast it ran out.

    :param message: what happened and what to do.
    :param verdict: the classification of the last underlying error.
    """

    def __init__(self, message: str, verdict: ErrorVerdict) -> None:
        self.verdict = verdict
        super().__init__(message)


class ClusterStateError(AuroraWakeError):
    """The cluster is in a state from which waiting cannot succeed.

    :param identifier: the cluster identifier.
    :param status: the cluster's status as RDS reported it.
    :param fix: what the user should do; a default is chosen from the status.
    """

    def __init__(self, identifier: str, status: str, fix: str | None = None) -> None:
        self.identifier = identifier
        self.status = status
        if fix is None:
            fix = _STATE_FIXES.get(status.strip().lower(), _DEFAULT_STATE_FIX)
        super().__init__(f"DB cluster {identifier!r} is {status!r}: {fix}")


_DEFAULT_STATE_FIX = (
    "waiting cannot make it available; repair or recreate the cluster, "
    "or wait until it is available before waiting for it again"
)
_STATE_FIXES = {
    "stopping": (
        "it is being stopped (StopDBCluster, the console or another tool), so waiting cannot make "
        "it available; once it is stopped, start it again (StartDBCluster, or a wake that starts "
        "stopped clusters) and wait again, and find what stops it"
    ),
    "deleting": "it is being deleted: wait for another cluster instead",
}


class DatabaseAuthenticationError(AuroraWakeError):
    """The database server rejected the login: it answered, so it is awake."""


class DatabaseConfigurationError(AuroraWakeError):
    """The connection settings cannot work: unknown database, engine mismatch, TLS failure."""


class ConnectionLookupError(AuroraWakeError):
    """Connection settings could not be read for a reason other than their absence.

    For example a secrets backend that refused access or failed: the connection may well
    exist, so the message names what failed instead of calling it missing.
    """


class DatabaseProbeError(AuroraWakeError):
    """The database answered with an error the core does not know how to wait out."""


class DataApiNotEnabledError(AuroraWakeError):
    """The Data API (HTTP endpoint) is not enabled on the cluster."""


class ClusterDeletedError(AuroraWakeError):
    """The cluster was seen during the wait and then disappeared."""


@dataclass(frozen=True)
class WaitDiagnosis:
    """What a wait saw, for the message of :class:`ReadyTimeoutError` and for logs.

    :param identifier: the cluster identifier.
    :param region: the region, if known.
    :param elapsed: seconds this waiter waited.
    :param last_status: the last status RDS reported (``None`` if no describe succeeded).
    :param last_capacity: the last v1 capacity (``None`` for v2 and provisioned).
    :param kind: the cluster kind value, if known.
    :param engine: the cluster engine, if known.
    :param last_probe_error: safe text of the last probe failure.
    :param last_rds_error: safe text of the last failed RDS call.
    :param attempts: probe attempts made by the wait loop.
    :param rds_calls: RDS calls made by the wait loop, per action.
    :param probe: ``connection`` or ``data-api``.
    :param started_late: seconds by which the wait began after its deadline (nothing was tried).
    """

    identifier: str
    region: str | None
    elapsed: float
    last_status: str | None = None
    last_capacity: float | None = None
    kind: str | None = None
    engine: str | None = None
    last_probe_error: str | None = None
    last_rds_error: str | None = None
    attempts: int = 0
    rds_calls: Mapping[str, int] = field(default_factory=dict)
    probe: str = "connection"
    started_late: float | None = None

    def describe(self) -> str:
        """Return the diagnosis as one readable paragraph."""
        where = f" in {self.region}" if self.region else ""
        if self.started_late is not None:
            return (
                f"DB cluster {self.identifier!r}{where}: the wait began {self.started_late:.1f} s after "
                "its deadline, so nothing was tried: the whole timeout went before the wait started "
                "(a wake, a queue, a restart that kept the original deadline). Try again, and raise "
                "the timeout if this recurs."
            )
        parts = [f"DB cluster {self.identifier!r}{where} was not ready after {self.elapsed:.1f} s"]
        if self.last_status is None:
            parts.append("no DescribeDBClusters call succeeded")
        else:
            shape = f"{self.kind} {self.engine}" if self.kind else "unknown kind"
            capacity = "" if self.last_capacity is None else f", capacity {self.last_capacity:g}"
            parts.append(f"last status {self.last_status!r}{capacity} ({shape})")
        if self.last_probe_error:
            parts.append(f"last {self.probe} probe error: {self.last_probe_error}")
        elif self.attempts == 0:
            parts.append(f"no {self.probe} probe was attempted")
        if self.last_rds_error:
            parts.append(f"last RDS error: {self.last_rds_error}")
        calls = ", ".join(f"{action} {count}" for action, count in sorted(self.rds_calls.items()))
        total = sum(self.rds_calls.values())
        parts.append(f"{self.attempts} probe attempts, {total} RDS calls" + (f" ({calls})" if calls else ""))
        return "; ".join(parts) + f". {self.hint()}"

    def hint(self) -> str:
        """Return advice that fits what the wait saw."""
        status = self.last_status
        error = (self.last_probe_error or "").lower()
        if status is None:
            return "Check the AWS credentials, the region and network access to the RDS API."
        if status in ("starting", "creating", "rebooting"):
            return "The cluster was still starting; a start can take several minutes: raise the timeout."
        if status == "stopped":
            return (
                "The cluster is stopped: start it before waiting (StartDBCluster, or a wake that "
                "starts stopped clusters)."
            )
        if "timed out" in error or "timeout" in error:
            return (
                "Connections timed out: the cluster may still be resuming (raise the timeout or "
                "the connect timeout), or a security group / network ACL drops the traffic."
            )
        if "refused" in error:
            return "Connections were refused: check the database host and port."
        if "name resolution" in error or "dns" in error:
            return "The host name did not resolve: check the database host name."
        return "Raise the timeout if the cluster is known to take longer to resume."


class ReadyTimeoutError(AuroraWakeError):
    """The deadline passed before the cluster was ready; adapters map it to a sensor timeout.

    :param diagnosis: what the wait saw.
    """

    def __init__(self, diagnosis: WaitDiagnosis) -> None:
        self.diagnosis = diagnosis
        super().__init__(diagnosis.describe())


@dataclass(frozen=True)
class ErrorVerdict:
    """What to do about an exception.

    :param retry: True when waiting and trying again can still succeed.
    :param reason: short text, safe to log (``connection refused``, ``57P03 starting up``).
    :param throttled: back off on the throttle policy; never counts as a failure.
    :param error: the error to raise when ``retry`` is False. ``None`` with ``retry`` False means
        the exception is not one the core knows (a programming error): re-raise it unchanged.
    :param grace: the grace window under which this answer is tolerated for now
        (``login-refused``, ``name-not-found``: answers that are misconfiguration or a passing
        state); the caller measures how long answers of that kind last and passes it back as
        ``grace_spent`` to :func:`~airflow_aurora_wake.core.errors.classify_error`.
    :param proves_paused: the answer proves an instance of the cluster paused (or resuming):
        ``DBInstanceNotReadyFault`` from ``DescribeDBLogFiles``. The caller records it as
        :attr:`~airflow_aurora_wake.core.cluster.ClusterSnapshot.seen_paused`, which makes the
        28000 login refusal a resuming front end gives a tolerated answer.
    """

    retry: bool
    reason: str
    throttled: bool = False
    error: AuroraWakeError | None = None
    grace: str | None = None
    proves_paused: bool = False

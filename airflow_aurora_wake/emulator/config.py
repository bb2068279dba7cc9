"""Plain configuration and result types of the emulator.

This module imports no moto (only the standard library and the core's engine facts and DSN
parser), so that the command line can build its parser and validate flags without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_aurora_wake.core.dsn import parse_dsn
from airflow_aurora_wake.core.engines import DEFAULT_PORTS, V1_CAPACITIES, EngineFamily, engine_family
from airflow_aurora_wake.core.errors import redact
from airflow_aurora_wake.emulator.readerconfig import ReaderSpec, check_readers, readers_from

KINDS = ("serverless-v2", "serverless-v1", "provisioned")
#: The RDS engine name the emulator gives each engine family.
AURORA_ENGINES: Mapping[EngineFamily, str] = {"postgresql": "aurora-postgresql", "mysql": "aurora-mysql"}
ENGINES = tuple(AURORA_ENGINES.values())
INITIAL_STATES = ("paused", "available", "stopped")
AFTER_RESUME_ERRORS = ("starting-up", "too-many-connections")
#: What a connection attempt gets while its cluster resumes (``ClusterSpec.resume_answer``):
#: held until the resume ends (the documented behaviour), or one of the answers users report.
RESUME_ANSWERS = ("hold", "eof", "reset", "starting-up", "pg-hba-refusal", "lost-connection")
#: What an rds-data call gets while its cluster resumes (``ClusterSpec.data_api_resume_answer``).
DATA_API_RESUME_ANSWERS = (
    "resuming",
    "communications-link",
    "starting-up",
    "statement-timeout",
    "unavailable",
    "secrets-timeout",
)

#: The local server each engine family's clusters front unless a spec names an upstream.
DEFAULT_UPSTREAMS: Mapping[str, str] = {
    "aurora-postgresql": f"postgresql://postgres@127.0.0.1:{DEFAULT_PORTS['postgresql']}/test",
    "aurora-mysql": f"mysql://root@127.0.0.1:{DEFAULT_PORTS['mysql']}/test",
}


@dataclass(frozen=True)
class Timings:
    """How long the emulated transitions take, in seconds.

    :param resume_seconds: Serverless v2 resume after a normal pause (AWS: about 15 s).
    :param v1_capacity_seconds: Serverless v1: from the wake request until ``Capacity`` > 0.
    :param v1_connect_extra_seconds: Serverless v1: from ``Capacity`` > 0 until connections work.
    :param start_seconds: ``starting`` lasts this long after ``StartDBCluster``
        (AWS takes several minutes).
    :param stop_seconds: ``stopping`` lasts this long after ``StopDBCluster``.
    :param deep_sleep_after_seconds: a cluster paused at least this long resumes slowly.
    :param deep_resume_seconds: resume time after a deep sleep (replaces ``resume_seconds``,
        and for v1 replaces ``v1_capacity_seconds``).
    :param reader_resume_extra_seconds: a reader in failover tiers 2-15 resumes this much later
        than the writer would (its own resume takes ``resume_seconds`` plus this).
    """

    resume_seconds: float = 15.0
    v1_capacity_seconds: float = 15.0
    v1_connect_extra_seconds: float = 10.0
    start_seconds: float = 300.0
    stop_seconds: float = 120.0
    deep_sleep_after_seconds: float = 86400.0
    deep_resume_seconds: float = 30.0
    reader_resume_extra_seconds: float = 3.0

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Timings.{item.name} must be a number >= 0, got {value!r}")

    def merged(self, changes: Mapping[str, Any]) -> Timings:
        """Return a copy with the given fields replaced (unknown names raise ``ValueError``).

        :param changes: field name to new value.
        """
        return dataclasses.replace(self, **_known_fields(Timings, changes))


@dataclass(frozen=True)
class Faults:
    """Faults injected into the AWS side and the database side.

    :param throttle_fraction: fraction (0..1) of RDS calls answered ``Throttling`` (HTTP 400).
    :param throttle_seconds: if set, throttling applies only for this long after the faults
        were set (emulator start or :meth:`AuroraEmulator.set_faults`).
    :param server_errors: the next N RDS calls are answered with a 5xx error.
    :param server_error_status: 500 (``InternalFailure``) or 503 (``ServiceUnavailable``).
    :param deny_actions: actions answered ``AccessDenied`` (HTTP 403), written as
        ``"ModifyCurrentDBClusterCapacity"``, ``"rds:StartDBCluster"`` or
        ``"rds-data:ExecuteStatement"``.
    :param after_resume_error: ``"starting-up"`` or ``"too-many-connections"``: new database
        connections fail this way for ``after_resume_seconds`` after a resume or start.
    :param after_resume_seconds: length of that window.
    :param reset_during_resume: connections arriving while a cluster resumes are reset
        (TCP RST) instead of held; the resume still proceeds.
    :param seed: seed of the random generator used for ``throttle_fraction``.
    """

    throttle_fraction: float = 0.0
    throttle_seconds: float | None = None
    server_errors: int = 0
    server_error_status: int = 500
    deny_actions: frozenset[str] = frozenset()
    after_resume_error: str | None = None
    after_resume_seconds: float = 0.0
    reset_during_resume: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.throttle_fraction <= 1.0:
            raise ValueError(f"Faults.throttle_fraction must be in 0..1, got {self.throttle_fraction!r}")
        if self.throttle_seconds is not None and self.throttle_seconds < 0:
            raise ValueError(f"Faults.throttle_seconds must be >= 0 or None, got {self.throttle_seconds!r}")
        if self.server_errors < 0:
            raise ValueError(f"Faults.server_errors must be >= 0, got {self.server_errors!r}")
        if self.server_error_status not in (500, 503):
            raise ValueError(
                f"Faults.server_error_status must be 500 or 503, got {self.server_error_status!r}"
            )
        if self.after_resume_error not in (None, *AFTER_RESUME_ERRORS):
            raise ValueError(
                f"Faults.after_resume_error must be None, 'starting-up' or 'too-many-connections', "
                f"got {self.after_resume_error!r}"
            )
        if self.after_resume_seconds < 0:
            raise ValueError(f"Faults.after_resume_seconds must be >= 0, got {self.after_resume_seconds!r}")
        # Accept any iterable of names, so JSON lists from the admin route work as well.
        object.__setattr__(self, "deny_actions", frozenset(self.deny_actions))

    def denies(self, service: str, action: str) -> bool:
        """Whether ``action`` of ``service`` (``"rds"`` or ``"rds-data"``) is denied.

        :param service: the signing name of the service.
        :param action: the API action name.
        """
        return action in self.deny_actions or f"{service}:{action}" in self.deny_actions

    def merged(self, changes: Mapping[str, Any]) -> Faults:
        """Return a copy with the given fields replaced (unknown names raise ``ValueError``).

        :param changes: field name to new value.
        """
        return dataclasses.replace(self, **_known_fields(Faults, changes))

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        data = dataclasses.asdict(self)
        data["deny_actions"] = sorted(self.deny_actions)
        return data


@dataclass(frozen=True)
class ClusterSpec:
    """One emulated cluster.

    :param identifier: the ``DBClusterIdentifier``.
    :param kind: ``"serverless-v2"``, ``"serverless-v1"`` or ``"provisioned"``.
    :param engine: ``"aurora-postgresql"`` or ``"aurora-mysql"``.
    :param upstream: DSN of the real database the cluster's endpoint fronts; by default the
        local PostgreSQL or MariaDB server for the engine.
    :param state: initial state, ``"paused"``, ``"available"`` or ``"stopped"``.
    :param data_api: ``HttpEndpointEnabled`` (the RDS Data API).
    :param iam_auth: ``IAMDatabaseAuthenticationEnabled`` (reported only; not enforced).
    :param region: the AWS region the cluster lives in.
    :param min_capacity: minimum capacity; v2 default 0 (auto-pause), v1 default per engine.
    :param max_capacity: maximum capacity; v2 default 4, v1 default 16.
    :param seconds_until_auto_pause: idle time before an automatic pause.
    :param timings: per-cluster override of the emulator's timings.
    :param port: fixed port of the database endpoint (default: an ephemeral port).
    :param resume_answer: what a connection attempt gets while the cluster resumes, one of
        :data:`RESUME_ANSWERS` (``"hold"``: held until the resume ends).
    :param data_api_resume_answer: what an rds-data call gets while the cluster resumes, one of
        :data:`DATA_API_RESUME_ANSWERS` (``"resuming"``: ``DatabaseResumingException``).
    :param manage_master_user_password: RDS manages the master password in Secrets Manager
        (``ManageMasterUserPassword``): the secret holds the upstream DSN's user and password
        (the real login), and ``DescribeDBClusters`` shows ``MasterUserSecret``.
    :param readers: reader DB instances (v2 and provisioned clusters), each with its own
        instance endpoint (see :class:`~.readerconfig.ReaderSpec`); JSON objects are accepted.
    """

    identifier: str
    kind: str = "serverless-v2"
    engine: str = "aurora-postgresql"
    upstream: str | None = None
    state: str = "paused"
    data_api: bool = False
    iam_auth: bool = False
    region: str = "us-east-1"
    min_capacity: float | None = None
    max_capacity: float | None = None
    seconds_until_auto_pause: int = 300
    timings: Timings | None = None
    port: int | None = None
    resume_answer: str = "hold"
    data_api_resume_answer: str = "resuming"
    manage_master_user_password: bool = False
    readers: tuple[ReaderSpec, ...] = ()

    def __post_init__(self) -> None:
        if not self.identifier or not isinstance(self.identifier, str):
            raise ValueError(f"ClusterSpec.identifier must be a non-empty string, got {self.identifier!r}")
        if self.kind not in KINDS:
            raise ValueError(f"ClusterSpec.kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"ClusterSpec.engine must be one of {', '.join(ENGINES)}; got {self.engine!r}")
        if self.state not in INITIAL_STATES:
            raise ValueError(
                f"ClusterSpec.state must be one of {', '.join(INITIAL_STATES)}; got {self.state!r}"
            )
        if self.seconds_until_auto_pause < 0:
            raise ValueError(
                f"ClusterSpec.seconds_until_auto_pause must be >= 0, got {self.seconds_until_auto_pause!r}"
            )
        if self.upstream is not None and parse_upstream(self.upstream).engine != self.family:
            raise ValueError(
                f"cluster {self.identifier!r}: engine {self.engine} needs a {self.family} upstream, "
                f"got {self.upstream!r}"
            )
        low, high = self.capacity_range
        if low > high:
            raise ValueError(f"cluster {self.identifier!r}: min_capacity {low} is above max_capacity {high}")
        if self.kind == "provisioned" and self.state == "paused":
            raise ValueError(
                f"cluster {self.identifier!r}: a provisioned cluster cannot be paused; "
                "use state='available' or state='stopped'"
            )
        if self.kind == "serverless-v2" and self.state == "paused" and low > 0:
            raise ValueError(
                f"cluster {self.identifier!r}: a Serverless v2 cluster pauses only with min_capacity 0, "
                f"got min_capacity={low}"
            )
        if self.kind == "serverless-v1" and self.state == "stopped":
            raise ValueError(
                f"cluster {self.identifier!r}: Aurora Serverless v1 clusters cannot be stopped; "
                "use state='paused' or state='available'"
            )
        check_resume_answers(self.identifier, self.family, self.resume_answer, self.data_api_resume_answer)
        object.__setattr__(self, "readers", readers_from(self.readers))
        check_readers(self.identifier, self.kind, self.state, low, self.readers)
        if self.manage_master_user_password and not parse_upstream(self.upstream_dsn).password:
            raise ValueError(
                f"cluster {self.identifier!r}: a managed master password is the real login's, which "
                "the upstream DSN must carry: upstream='postgresql://USER:PASSWORD@HOST:PORT/DB'"
            )
        if self.kind == "serverless-v1":
            valid = V1_CAPACITIES[self.family]
            for name, value in (("min_capacity", low), ("max_capacity", high)):
                if value not in valid:
                    raise ValueError(
                        f"cluster {self.identifier!r}: {name} {value} is not a valid {self.engine} "
                        f"Serverless v1 capacity ({', '.join(map(str, valid))})"
                    )

    @property
    def family(self) -> EngineFamily:
        """``"postgresql"`` or ``"mysql"``: the wire protocol of the engine."""
        family = engine_family(self.engine)
        assert family is not None, "ClusterSpec.engine is validated in __post_init__"
        return family

    @property
    def capacity_range(self) -> tuple[float, float]:
        """``(min, max)`` capacity with the per-kind defaults applied (v1: the smallest valid)."""
        if self.kind == "serverless-v1":
            default_min: float = V1_CAPACITIES[self.family][0]
            default_max: float = 16
        else:
            default_min, default_max = 0, 4
        low = default_min if self.min_capacity is None else self.min_capacity
        high = default_max if self.max_capacity is None else self.max_capacity
        return low, high

    @property
    def upstream_dsn(self) -> str:
        """The upstream DSN with the engine default applied."""
        return self.upstream or DEFAULT_UPSTREAMS[self.engine]

    @property
    def can_auto_pause(self) -> bool:
        """Whether the cluster pauses by itself when idle (v1 always, v2 with minimum 0)."""
        if self.kind == "serverless-v1":
            return True
        return self.kind == "serverless-v2" and self.capacity_range[0] == 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ClusterSpec:
        """Build a spec from a JSON object (the admin route); ``timings`` may be a mapping.

        :param data: field name to value.
        """
        values = _known_fields(cls, data)
        timings = values.get("timings")
        if isinstance(timings, Mapping):
            values["timings"] = Timings().merged(timings)
        return cls(**values)


def check_resume_answers(
    identifier: str, family: EngineFamily, resume_answer: str, data_api_resume_answer: str
) -> None:
    """Refuse a resume answer that is unknown, or that the cluster's engine cannot give.

    :param identifier: the cluster (named in the message).
    :param family: its engine family.
    :param resume_answer: see :attr:`ClusterSpec.resume_answer`.
    :param data_api_resume_answer: see :attr:`ClusterSpec.data_api_resume_answer`.
    :raises ValueError: naming the value and the accepted ones.
    """
    if resume_answer not in RESUME_ANSWERS:
        raise ValueError(
            f"cluster {identifier!r}: resume_answer must be one of {', '.join(RESUME_ANSWERS)}; "
            f"got {resume_answer!r}"
        )
    if resume_answer == "pg-hba-refusal" and family != "postgresql":
        # A pg_hba.conf refusal is PostgreSQL's own answer; MySQL has no counterpart.
        raise ValueError(
            f"cluster {identifier!r}: resume_answer 'pg-hba-refusal' is a PostgreSQL answer; "
            "for a MySQL cluster use eof, reset, starting-up or lost-connection"
        )
    if data_api_resume_answer not in DATA_API_RESUME_ANSWERS:
        raise ValueError(
            f"cluster {identifier!r}: data_api_resume_answer must be one of "
            f"{', '.join(DATA_API_RESUME_ANSWERS)}; got {data_api_resume_answer!r}"
        )


@dataclass(frozen=True)
class ClusterEndpoint:
    """Where an emulated cluster can be reached.

    :param identifier: the ``DBClusterIdentifier``.
    :param arn: the cluster ARN (in the emulator's own account).
    :param kind: the kind of cluster.
    :param engine: the engine.
    :param host: host of the database endpoint (always ``127.0.0.1``).
    :param port: port of the database endpoint.
    :param region: the AWS region.
    :param reader_host: host of the reader endpoint (its port is ``port``): a host of its own
        for a cluster with readers, else ``host`` (the writer), as AWS routes it.
    """

    identifier: str
    arn: str
    kind: str
    engine: str
    host: str
    port: int
    region: str
    reader_host: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TimelineEvent:
    """One event in a cluster's timeline.

    :param at: wall-clock time (``time.time()`` epoch seconds) the event happened in the model.
    :param event: event name, for example ``"resume-requested"`` or ``"ready"``.
    :param detail: extra facts, for example ``{"cause": "connection"}``.
    """

    at: float
    event: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"at": self.at, "event": self.event, "detail": dict(self.detail)}


@dataclass(frozen=True)
class Upstream:
    """Where the real database server of a cluster is.

    :param engine: ``"postgresql"`` or ``"mysql"``.
    :param host: host name.
    :param port: TCP port.
    :param user: user name from the DSN, if any.
    :param password: password from the DSN, if any.
    :param database: database name from the DSN, if any.
    """

    engine: EngineFamily
    host: str
    port: int
    user: str | None
    password: str | None = field(repr=False)
    database: str | None


def parse_upstream(dsn: str) -> Upstream:
    """Parse an upstream DSN (``postgresql://user:pw@host:port/db`` or ``mysql://...``).

    The core's :func:`~airflow_aurora_wake.core.dsn.parse_dsn` reads it; here a host is
    required and the port defaults to the engine's.

    :param dsn: the DSN.
    :raises ValueError: naming the DSN (without its password) and the accepted forms.
    """
    try:
        parsed = parse_dsn(dsn, "upstream")
    except ValueError:
        parsed = None
    if parsed is None or parsed.host is None:
        raise ValueError(
            f"upstream DSN {redact(dsn)!r} is not understood; use postgresql://user@host:port/db or "
            "mysql://user@host:port/db"
        )
    return Upstream(
        engine=parsed.engine,
        host=parsed.host,
        port=parsed.port or DEFAULT_PORTS[parsed.engine],
        user=parsed.user,
        password=parsed.password or None,
        database=parsed.database,
    )


def _known_fields(cls: type[Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    names = {item.name for item in dataclasses.fields(cls)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        )
    return dict(changes)

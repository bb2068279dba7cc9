"""Fakes for the core's tests: a virtual-time event loop, AWS errors parsed from real wire
answers, a scripted RDS client and scripted probes.

Imported as ``core_fakes`` (a unique module name; every test folder has its own ``conftest``).

The virtual-time loop makes deadline and backoff tests exact: ``asyncio.sleep`` and timeouts
complete instantly in loop time, and the wall clock is derived from the loop's clock.
"""

from __future__ import annotations

import asyncio
import json
import selectors
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import botocore.session
from botocore.parsers import create_parser

from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.probes import DatabaseTarget
from airflow_aurora_wake.core.targets import LoginSettings, build_target

T = TypeVar("T")

#: Wall-clock epoch at loop time 0 of a virtual-time loop.
EPOCH = 1_700_000_000.0


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """A selector that, when it would block with a timeout, advances virtual time instead."""

    loop: VirtualTimeLoop

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or (timeout is not None and timeout <= 0):
            return events
        if timeout is None:  # genuinely waiting on I/O only
            return super().select(None)
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever nothing is ready."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += seconds

    def wall(self) -> float:
        """The wall clock matching this loop's time (pass as ``clock=``)."""
        return EPOCH + self._virtual_now


def run_virtual(main: Callable[[VirtualTimeLoop], Awaitable[T]]) -> T:
    """Run ``main(loop)`` to completion on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# --- AWS errors as botocore builds them from real wire answers ----------------------------

_BOTOCORE = botocore.session.get_session()
_CLIENTS: dict[str, Any] = {}


def _client(service: str) -> Any:
    if service not in _CLIENTS:
        _CLIENTS[service] = _BOTOCORE.create_client(
            service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
    return _CLIENTS[service]


def aws_error(
    code: str, message: str = "", *, status: int = 400, operation: str = "DescribeDBClusters"
) -> Exception:
    """An RDS error exactly as botocore raises it: parsed from a Query-protocol XML body."""
    client = _client("rds")
    model = client.meta.service_model
    body = (
        '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"
    )
    parser = create_parser(model.metadata["protocol"])
    parsed = parser.parse(
        {"status_code": status, "headers": {}, "body": body.encode()},
        model.operation_model(operation).output_shape,
    )
    error_class = client.exceptions.from_code(parsed["Error"]["Code"])
    return error_class(parsed, operation)  # type: ignore[no-any-return]


def data_api_error(code: str, message: str = "", *, status: int = 400) -> Exception:
    """An rds-data error exactly as botocore raises it: parsed from a rest-json body."""
    client = _client("rds-data")
    model = client.meta.service_model
    parser = create_parser(model.metadata["protocol"])
    parsed = parser.parse(
        {
            "status_code": status,
            "headers": {"x-amzn-errortype": f"{code}:http://internal.amazon.com/"},
            "body": json.dumps({"message": message}).encode(),
        },
        model.operation_model("ExecuteStatement").output_shape,
    )
    error_class = client.exceptions.from_code(parsed["Error"]["Code"])
    return error_class(parsed, "ExecuteStatement")  # type: ignore[no-any-return]


# --- cluster descriptions -------------------------------------------------------------------


def v2_description(
    name: str = "sales",
    *,
    status: str = "available",
    min_capacity: float = 0.0,
    engine: str = "aurora-postgresql",
) -> dict[str, Any]:
    return {
        "DBClusterIdentifier": name,
        "DBClusterArn": f"arn:aws:rds:us-east-1:123456789012:cluster:{name}",
        "Engine": engine,
        "EngineMode": "provisioned",
        "Status": status,
        "Endpoint": f"{name}.cluster-abc.us-east-1.rds.amazonaws.com",
        "ReaderEndpoint": f"{name}.cluster-ro-abc.us-east-1.rds.amazonaws.com",
        "Port": 5432 if "postgres" in engine else 3306,
        "ServerlessV2ScalingConfiguration": {
            "MinCapacity": min_capacity,
            "MaxCapacity": 8.0,
            "SecondsUntilAutoPause": 300,
        },
        "HttpEndpointEnabled": True,
        "IAMDatabaseAuthenticationEnabled": False,
    }


def v1_description(
    name: str = "legacy",
    *,
    status: str = "available",
    capacity: float = 0,
    engine: str = "aurora-mysql",
    min_capacity: float = 1,
    max_capacity: float = 16,
) -> dict[str, Any]:
    return {
        "DBClusterIdentifier": name,
        "DBClusterArn": f"arn:aws:rds:us-east-1:123456789012:cluster:{name}",
        "Engine": engine,
        "EngineMode": "serverless",
        "Status": status,
        "Capacity": capacity,
        "ScalingConfigurationInfo": {
            "MinCapacity": min_capacity,
            "MaxCapacity": max_capacity,
            "AutoPause": True,
            "SecondsUntilAutoPause": 300,
            "TimeoutAction": "RollbackCapacityChange",
        },
        "Endpoint": f"{name}.cluster-abc.us-east-1.rds.amazonaws.com",
        "Port": 3306 if "mysql" in engine else 5432,
    }


def provisioned_description(name: str = "orders", *, status: str = "available") -> dict[str, Any]:
    return {
        "DBClusterIdentifier": name,
        "DBClusterArn": f"arn:aws:rds:us-east-1:123456789012:cluster:{name}",
        "Engine": "aurora-postgresql",
        "EngineMode": "provisioned",
        "Status": status,
        "Endpoint": f"{name}.cluster-abc.us-east-1.rds.amazonaws.com",
        "Port": 5432,
    }


# --- scripted RDS client and resources ------------------------------------------------------

Answer = dict[str, Any] | BaseException


class ScriptedRds:
    """A fake aiobotocore RDS client: each describe takes the next scripted answer (the last repeats),
    or asks ``describe_at(loop_time)`` for the answer at that moment."""

    def __init__(
        self,
        answers: list[Answer] | None = None,
        *,
        describe_at: Callable[[float], Answer] | None = None,
    ) -> None:
        self.answers = list(answers or [])
        self.describe_at = describe_at
        self.describe_times: list[float] = []
        self.modify_calls: list[dict[str, Any]] = []
        self.start_calls: list[str] = []
        self.modify_answers: list[BaseException | None] = []
        self.start_answers: list[BaseException | None] = []
        self.closed = 0
        self.opened = 0

    async def describe_db_clusters(self, *, DBClusterIdentifier: str) -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        self.describe_times.append(now)
        if self.describe_at is not None:
            answer = self.describe_at(now)
        else:
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return {"DBClusters": [answer]}

    async def modify_current_db_cluster_capacity(self, **kwargs: Any) -> dict[str, Any]:
        self.modify_calls.append(kwargs)
        answer = self.modify_answers.pop(0) if self.modify_answers else None
        if answer is not None:
            raise answer
        return {"DBClusterIdentifier": kwargs["DBClusterIdentifier"]}

    async def start_db_cluster(self, *, DBClusterIdentifier: str) -> dict[str, Any]:
        self.start_calls.append(DBClusterIdentifier)
        answer = self.start_answers.pop(0) if self.start_answers else None
        if answer is not None:
            raise answer
        return {"DBCluster": {"DBClusterIdentifier": DBClusterIdentifier}}


@dataclass
class ScriptedProbe:
    """Replaces ``probe_database`` in :mod:`airflow_aurora_wake.core.wait`.

    Until ``ready_at`` (loop time) an attempt either is refused at once (``refuse=True``) or is
    held open like a resuming instance and times out; from ``ready_at`` it succeeds. ``errors``
    are raised first, one per attempt.
    """

    ready_at: float = 0.0
    refuse: bool = False
    errors: list[BaseException] = field(default_factory=list)
    attempts: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    cancelled: int = 0

    async def __call__(self, target: DatabaseTarget, *, connect_timeout: float) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.attempts.append(now)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.errors:
                raise self.errors.pop(0)
            if now >= self.ready_at:
                return
            if self.refuse:
                raise ConnectionRefusedError(111, "Connect call failed")
            wait = self.ready_at - now
            if wait <= connect_timeout:
                await asyncio.sleep(wait)
                return
            await asyncio.sleep(connect_timeout)
            raise TimeoutError(f"connection timed out after {connect_timeout:.1f} s")
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1


class FakeResources:
    """:class:`WaitResources` over a :class:`ScriptedRds` and a fixed target."""

    def __init__(
        self, rds: ScriptedRds, *, engine: str = "postgresql", password: str | None = "s3cr3t-pw"
    ) -> None:
        self.rds = rds
        self.engine = engine
        self.password = password
        self.targets = 0
        self.rds_data = ScriptedDataApi()

    @asynccontextmanager
    async def _client(self, client: Any) -> Any:
        self.rds.opened += 1
        try:
            yield client
        finally:
            self.rds.closed += 1

    def rds_client(self) -> Any:
        return self._client(self.rds)

    def rds_data_client(self) -> Any:
        return self._client(self.rds_data)

    async def database_target(self, snapshot: ClusterSnapshot) -> DatabaseTarget:
        self.targets += 1
        # Through the one target builder, as the hook and the plain-Python API do.
        login = LoginSettings(
            engine=self.engine,  # type: ignore[arg-type]
            host=snapshot.endpoint or "localhost",
            port=snapshot.port or 5432,
            user="app",
            database="app",
            password=self.password,
        )
        return build_target(login, snapshot, sign_token=None)


class ScriptedDataApi:
    """A fake rds-data client: raises the scripted errors in turn, then answers."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.calls: list[dict[str, Any]] = []

    async def execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.errors:
            raise self.errors.pop(0)
        return {"records": [[{"longValue": 1}]]}

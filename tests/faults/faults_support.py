"""Helpers of the fault suite: logins, and driving the real operator, sensor, trigger and API.

Each helper runs the product the way Airflow (or a script) does: the operator's ``execute`` in a
worker thread, the sensor's ``execute`` until it defers, its trigger stored and re-created
through Airflow's own kwargs storage (serde + encrypted ``Trigger`` row) and run in this event
loop, then the sensor resumed through ``resume_execution`` as the task runner does (so
``soft_fail`` applies exactly as in production). Everything a user could see is handed to the
secret guard.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from airflow_support import SUPERUSERS, EmulatedCluster, context

from airflow_aurora_wake.compat import TaskDeferred
from airflow_aurora_wake.core.api import wake_and_wait
from airflow_aurora_wake.core.wait import ReadyReport
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

#: Outer limit of any single wait in this suite: a hang fails the test instead of stalling CI.
OUTER_LIMIT = 120.0


@dataclass(frozen=True)
class Login:
    """How the scenario logs in to the database.

    :param engine: ``postgresql`` or ``mysql``.
    :param iam: IAM database authentication (``iam: true`` in the connection's extra).
    :param user: the database user.
    :param password: the known password (in the connection even in IAM mode, where it is unused).
    """

    engine: str
    iam: bool = False
    user: str = ""
    password: str = field(default="", repr=False)

    def with_password(self, password_login: Any) -> Login:
        # IAM mode logs in as the superuser the upstream trusts, so the token is sent and ignored.
        user = SUPERUSERS[self.engine] if self.iam else password_login.user
        return replace(self, user=user, password=password_login.password)

    @property
    def conn_extra(self) -> dict[str, Any] | None:
        return {"iam": True} if self.iam else None

    @property
    def scheme(self) -> str:
        return "postgresql" if self.engine == "postgresql" else "mysql"

    def cluster_kwargs(self) -> dict[str, Any]:
        """Arguments of the ``emulated`` fixture for this login."""
        return {
            "engine": self.engine,
            "user": self.user,
            "password": self.password,
            "conn_extra": self.conn_extra,
            "iam_auth": self.iam,
        }


LOGINS: dict[str, Login] = {
    "postgresql": Login("postgresql"),
    "mysql": Login("mysql"),
    "postgresql-iam": Login("postgresql", iam=True),
}


class SecretGuard:
    """Collects everything a scenario exposes and checks that no watched secret is in it."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.tokens: list[str] = []
        self.texts: list[str] = []
        #: In IAM mode, whether the scenario must have sent tokens (False: it never probes).
        self.expect_tokens = True

    def watch(self, *secrets: str | None) -> None:
        """Add secrets to look for (each at least 8 characters, so a match means a leak)."""
        for secret in secrets:
            if secret:
                assert len(secret) >= 8, "a short secret would match by accident"
                self.secrets.add(secret)

    def watch_token(self, token: str) -> None:
        """Watch an IAM token and its signature (the part that makes it a credential)."""
        self.tokens.append(token)
        self.watch(token)
        if "X-Amz-Signature=" in token:
            self.watch(token.split("X-Amz-Signature=", 1)[1].split("&", 1)[0])

    def add(self, *values: object) -> None:
        """Record values a user could see: their ``str``, ``repr`` and, for exceptions, the traceback."""
        for value in values:
            self.texts.append(str(value))
            self.texts.append(repr(value))
            if isinstance(value, BaseException):
                self.texts.append("".join(traceback.format_exception(value)))
                self.texts.extend(str(arg) for arg in value.args)

    def leaks(self, extra: list[str] = ()) -> list[str]:  # type: ignore[assignment]
        """Return a description of every leak found (empty when clean)."""
        found = []
        for text in [*self.texts, *extra]:
            for secret in self.secrets:
                if secret in text:
                    start = max(0, text.index(secret) - 120)
                    found.append(text[start : start + 300].replace(secret, "<<SECRET>>"))
        return found


# ------------------------------------------------------------------------------ Airflow path
def wake_operator(cluster: EmulatedCluster, **kwargs: Any) -> AuroraServerlessWakeOperator:
    """The wake operator of one DAG run (nudging v2 through the database connection)."""
    kwargs.setdefault("conn_id", cluster.conn_id)
    return AuroraServerlessWakeOperator(
        task_id="wake",
        db_cluster_identifier=kwargs.pop("db_cluster_identifier", cluster.identifier),
        aws_conn_id=cluster.aws_conn_id,
        **kwargs,
    )


def ready_sensor(cluster: EmulatedCluster, **kwargs: Any) -> AuroraServerlessReadySensor:
    """The readiness sensor of one DAG run (deferrable)."""
    kwargs.setdefault("conn_id", cluster.conn_id)
    kwargs.setdefault("connect_timeout", 0.5)
    kwargs.setdefault("describe_interval", 1.0)
    kwargs.setdefault("timeout", 90)
    return AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=kwargs.pop("db_cluster_identifier", cluster.identifier),
        aws_conn_id=cluster.aws_conn_id,
        **kwargs,
    )


async def run_operator(operator: AuroraServerlessWakeOperator, guard: Any) -> dict[str, Any]:
    """Run ``execute`` in a worker thread, as a task runner would; return its XCom."""
    result: dict[str, Any] = await asyncio.wait_for(
        asyncio.to_thread(operator.execute, context()), OUTER_LIMIT
    )
    guard.add(result, json.dumps(result))
    return result


def store_trigger(trigger: AuroraServerlessReadyTrigger, guard: Any) -> AuroraServerlessReadyTrigger:
    """Store a trigger's kwargs as Airflow does and re-create it as a (new) triggerer would.

    The serde wire form, the decrypted ``Trigger`` row and Airflow 2.11's ``BaseSerialization``
    form must agree; all of them go to the secret guard.
    """
    from airflow.models.trigger import Trigger
    from airflow.sdk.serde import serialize as serde_serialize
    from airflow.serialization.serialized_objects import BaseSerialization

    classpath, kwargs = trigger.serialize()
    wire = json.dumps(serde_serialize(kwargs))
    row = Trigger.from_object(trigger)
    stored = row.kwargs
    legacy = BaseSerialization.deserialize(json.loads(json.dumps(BaseSerialization.serialize(kwargs))))
    assert stored == legacy == kwargs
    guard.add(classpath, kwargs, wire, stored, row.encrypted_kwargs)
    module_name, _, class_name = classpath.rpartition(".")
    recreated: AuroraServerlessReadyTrigger = getattr(importlib.import_module(module_name), class_name)(
        **stored
    )
    return recreated


async def first_event(
    trigger: AuroraServerlessReadyTrigger, guard: Any, seconds: float = OUTER_LIMIT
) -> dict[str, Any]:
    """Run a trigger to its one event (then check that the generator ends)."""
    generator = trigger.run()
    event = await asyncio.wait_for(anext(generator), seconds)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(generator), 10)
    payload: dict[str, Any] = event.payload
    guard.add(payload, json.dumps(payload))
    return payload


async def defer(sensor: AuroraServerlessReadySensor, guard: Any) -> tuple[TaskDeferred | None, Any]:
    """Run the sensor's ``execute`` in a worker thread: (the deferral, None) or (None, its XCom)."""
    try:
        result = await asyncio.wait_for(asyncio.to_thread(sensor.execute, context()), OUTER_LIMIT)
    except TaskDeferred as deferred:
        guard.add(deferred.kwargs, deferred.method_name, deferred.timeout)
        return deferred, None
    guard.add(result)
    return None, result


def resume(sensor: AuroraServerlessReadySensor, payload: dict[str, Any], guard: Any) -> Any:
    """Resume the sensor with the trigger's event, as the task runner does."""
    try:
        result = sensor.resume_execution("execute_complete", {"event": payload}, context())
    except BaseException as exc:
        guard.add(exc)
        raise
    guard.add(result, json.dumps(result))
    return result


async def run_sensor(sensor: AuroraServerlessReadySensor, guard: Any) -> Any:
    """Execute, defer, store and re-create the trigger, run it, resume: the sensor's XCom."""
    try:
        deferred, result = await defer(sensor, guard)
    except BaseException as exc:
        guard.add(exc)
        raise
    if deferred is None:
        return result
    trigger = store_trigger(deferred.trigger, guard)
    payload = await first_event(trigger, guard)
    return resume(sensor, payload, guard)


# ----------------------------------------------------------------------------- plain Python
async def run_wake_and_wait(
    cluster: EmulatedCluster, login: Login, guard: Any, *, identifier: str | None = None, **kwargs: Any
) -> ReadyReport:
    """``wake_and_wait`` with the login, against the emulator; its log and result go to the guard."""
    lines: list[str] = []
    kwargs.setdefault("connect_timeout", 0.5)
    kwargs.setdefault("describe_interval", 1.0)
    kwargs.setdefault("timeout", 90)
    try:
        report = await asyncio.wait_for(
            wake_and_wait(
                identifier or cluster.identifier,
                region_name=cluster.emu.region,
                endpoint_url=cluster.emu.endpoint_url,
                dsn=f"{login.scheme}://{login.user}@/test",
                password=None if login.iam else login.password,
                iam=login.iam,
                log=lines.append,
                **kwargs,
            ),
            OUTER_LIMIT,
        )
    except BaseException as exc:
        guard.add(exc, *lines)
        raise
    guard.add(report, report.as_xcom(), *lines)
    return report


# --------------------------------------------------------------------------------- emulator
def events(cluster: EmulatedCluster, name: str, identifier: str | None = None) -> list[Any]:
    """The emulator's timeline events called ``name``."""
    return [event for event in cluster.emu.timeline(identifier or cluster.identifier) if event.event == name]


def rds_calls(cluster: EmulatedCluster, identifier: str | None = None) -> dict[str, int]:
    """RDS calls the emulator answered for one cluster, per action (faulted ones included)."""
    calls: dict[str, int] = cluster.emu.counters()["rds_calls_by_cluster"].get(
        identifier or cluster.identifier, {}
    )
    return dict(calls)


def counter(cluster: EmulatedCluster, name: str, identifier: str | None = None) -> int:
    """One per-cluster counter of the emulator (``connection_attempts``, ...)."""
    value: int = cluster.emu.counters()[name].get(identifier or cluster.identifier, 0)
    return value


def assert_not_ready_early(
    cluster: EmulatedCluster, ready_at: float, *, identifier: str | None = None, after: float = 0.0
) -> None:
    """Readiness was declared no earlier than the emulator made the cluster connectable (+ ``after``)."""
    emulator_ready = cluster.emu.ready_at(identifier or cluster.identifier)
    assert emulator_ready is not None, "declared ready, but the emulator never made the cluster ready"
    assert ready_at >= emulator_ready + after, (ready_at, emulator_ready, after)


def now() -> float:
    return time.time()


def add_twin(cluster: EmulatedCluster, identifier: str, *, kind: str, state: str, **spec: Any) -> str:
    """Add a second cluster like ``cluster`` to its emulator (for the plain-Python run); its id."""
    from airflow_support import ENGINES

    from airflow_aurora_wake.emulator import ClusterSpec

    cluster.emu.add_cluster(
        ClusterSpec(identifier, kind=kind, engine=ENGINES[cluster.engine], state=state, **spec)
    )
    return identifier

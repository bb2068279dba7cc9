"""No secret leaves the adapters: not in logs, XCom, trigger kwargs, events or exception messages.

Two runs with known secrets, on MariaDB (which checks passwords):

- a password login: wake (connection nudge), sensor deferral, trigger, resume, and a failing
  run with a second, wrong password;
- an IAM login (``iam: true``): the token comes from aiobotocore's ``generate_db_auth_token``
  against the emulator's credentials (a local signature); a spy on the hook's token provider
  reads every token handed to the probe, and the database rejects them.

Everything that could carry a secret is collected (every log record at DEBUG, stdout/stderr
where Airflow's structlog renders, XCom values, ``serialize()`` of every trigger, event
payloads, exception messages and reprs) and searched for each secret.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from airflow_support import EmulatedCluster, context, set_database_connection

from airflow_aurora_wake.compat import TaskDeferred
from airflow_aurora_wake.core import targets
from airflow_aurora_wake.core.errors import AuroraWakeError, DatabaseAuthenticationError
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

WRONG_PASSWORD = "Wr0ng-secret-9f3a1c"


class Evidence:
    """Every string a run exposes."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *values: object) -> None:
        for value in values:
            self.texts.append(str(value))
            self.texts.append(repr(value))

    def assert_free_of(self, *secrets: str) -> None:
        assert secrets and all(len(secret) >= 8 for secret in secrets)
        for secret in secrets:
            for text in self.texts:
                assert secret not in text, f"a secret leaked into: {text[:300]}"


def sensor(cluster: EmulatedCluster, conn_id: str, **kwargs: Any) -> AuroraServerlessReadySensor:
    return AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=cluster.identifier,
        aws_conn_id=cluster.aws_conn_id,
        conn_id=conn_id,
        connect_timeout=kwargs.pop("connect_timeout", 0.3),
        describe_interval=0.5,
        timeout=60,
        **kwargs,
    )


async def run_trigger(trigger: AuroraServerlessReadyTrigger) -> dict[str, Any]:
    event = await asyncio.wait_for(anext(trigger.run()), 30)
    return event.payload


async def test_password_never_leaves_the_adapters(
    emulated: Any,
    password_login: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = password_login.password
    cluster = emulated(
        kind="serverless-v2", engine="mysql", state="paused", user=password_login.user, password=password
    )
    evidence = Evidence()

    # Wake with a connection nudge that logs in with the password.
    wake = AuroraServerlessWakeOperator(
        task_id="wake",
        db_cluster_identifier=cluster.identifier,
        aws_conn_id=cluster.aws_conn_id,
        conn_id=cluster.conn_id,
    )
    evidence.add(await asyncio.to_thread(wake.execute, context()))
    assert cluster.counters()["connections_completed"] >= 1  # the password really was used

    # Pause again, so that the sensor defers and the trigger logs in with it too.
    cluster.emu.pause(cluster.identifier)
    task = sensor(cluster, cluster.conn_id)
    with pytest.raises(TaskDeferred) as excinfo:
        await asyncio.to_thread(task.execute, context())
    deferred = excinfo.value
    evidence.add(deferred, deferred.trigger, deferred.trigger.serialize(), deferred.kwargs)
    payload = await run_trigger(deferred.trigger)
    evidence.add(payload)
    assert payload["status"] == "success", payload
    evidence.add(task.execute_complete(context(), payload))

    # A failing run with a second, wrong password.
    set_database_connection(
        monkeypatch, "wrong_pw", engine="mysql", user=password_login.user, password=WRONG_PASSWORD
    )
    failing = sensor(cluster, "wrong_pw", connect_timeout=30)
    with pytest.raises(DatabaseAuthenticationError) as failure:
        await asyncio.to_thread(failing.execute, context())
    evidence.add(failure.value, failure.value.args)
    trigger_payload = await run_trigger(
        AuroraServerlessReadyTrigger(
            db_cluster_identifier=cluster.identifier,
            deadline=time.time() + 30,
            aws_conn_id=cluster.aws_conn_id,
            conn_id="wrong_pw",
            connect_timeout=30,
        )
    )
    assert trigger_payload["error_type"] == "DatabaseAuthenticationError"
    evidence.add(trigger_payload)
    with pytest.raises(AuroraWakeError) as resumed:
        failing.execute_complete(context(), trigger_payload)
    evidence.add(resumed.value)

    captured = capsys.readouterr()
    evidence.add(caplog.text, captured.out, captured.err)
    evidence.add(*(record.getMessage() for record in caplog.records))
    evidence.assert_free_of(password, WRONG_PASSWORD)


async def test_iam_token_never_leaves_the_adapters(
    emulated: Any,
    password_login: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    cluster = emulated(
        kind="serverless-v2",
        engine="mysql",
        state="available",
        user=password_login.user,
        password="not-used-with-iam",
        conn_extra={"iam": True},
        iam_auth=True,
    )
    tokens: list[str] = []
    original = targets.iam_token_provider

    def spy(*args: Any) -> Callable[[], Awaitable[str]]:
        provide = original(*args)

        async def provide_and_record() -> str:
            token = await provide()
            tokens.append(token)
            return token

        return provide_and_record

    monkeypatch.setattr(targets, "iam_token_provider", spy)
    evidence = Evidence()

    wake = AuroraServerlessWakeOperator(
        task_id="wake",
        db_cluster_identifier=cluster.identifier,
        aws_conn_id=cluster.aws_conn_id,
        conn_id=cluster.conn_id,
    )
    evidence.add(await asyncio.to_thread(wake.execute, context()))

    task = sensor(cluster, cluster.conn_id, connect_timeout=30)
    with pytest.raises(DatabaseAuthenticationError) as failure:
        await asyncio.to_thread(task.execute, context())
    evidence.add(failure.value, failure.value.args)

    trigger = AuroraServerlessReadyTrigger(
        db_cluster_identifier=cluster.identifier,
        deadline=time.time() + 30,
        aws_conn_id=cluster.aws_conn_id,
        conn_id=cluster.conn_id,
        connect_timeout=30,
    )
    evidence.add(trigger.serialize())
    payload = await run_trigger(trigger)
    assert payload["error_type"] == "DatabaseAuthenticationError"
    evidence.add(payload)
    with pytest.raises(AuroraWakeError) as resumed:
        task.execute_complete(context(), payload)
    evidence.add(resumed.value)

    assert len(tokens) >= 2, "the probes should have asked for IAM tokens"
    assert all("X-Amz-Signature=" in token for token in tokens)
    captured = capsys.readouterr()
    evidence.add(caplog.text, captured.out, captured.err)
    evidence.add(*(record.getMessage() for record in caplog.records))
    signatures = [token.split("X-Amz-Signature=", 1)[1].split("&", 1)[0] for token in tokens]
    evidence.assert_free_of(*tokens, *signatures)

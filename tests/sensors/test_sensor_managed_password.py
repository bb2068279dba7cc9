"""The cluster's managed master password (``ManageMasterUserPassword``) through the adapters.

On the emulator with real PostgreSQL and MariaDB: the database connection says
``{"aurora_managed_password": true}`` and has no password (nor login), the sensor defers and its
trigger reads the secret in the event loop; poke mode does the same in the worker; a rotation
that hands out the previous password is read again once; a wrong password fails at once; the
data-api probe needs no ``data_api_secret_arn``. Every string a run exposes (logs at DEBUG,
stdout/stderr, XCom, trigger kwargs, events, exceptions) is searched for the passwords.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from airflow_support import FAST_TIMINGS, context, set_aws_connection, set_connection

from airflow_aurora_wake.compat import PokeReturnValue, TaskDeferred
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
    InvalidParameterError,
)
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

pytestmark = [pytest.mark.emulator, pytest.mark.db]

CONN_ID = "managed_db"
WRONG_PASSWORD = "Wr0ng-managed-secret-4b2e"


class Evidence:
    """Every string a run exposes, searched for secrets at the end."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *values: object) -> None:
        for value in values:
            self.texts += [str(value), repr(value)]

    def assert_free_of(self, *secrets: str) -> None:
        assert secrets and all(len(secret) >= 8 for secret in secrets)
        for secret in secrets:
            for text in self.texts:
                assert secret not in text, f"a secret leaked into: {text[:300]}"


@pytest.fixture
def emu(
    database_server: Any, password_login: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AuroraEmulator]:
    """A paused v2 cluster ``managed`` whose managed secret holds the real login, one ``plain``
    without a managed secret, the AWS connection and a database connection without a password."""
    family = database_server.engine
    engine = "aurora-postgresql" if family == "postgresql" else "aurora-mysql"
    upstream = (
        f"{family}://{password_login.user}:{password_login.password}"
        f"@{database_server.host}:{database_server.port}/{database_server.database}"
    )
    specs = [
        ClusterSpec(
            "managed", engine=engine, upstream=upstream, data_api=True, manage_master_user_password=True
        ),
        ClusterSpec("plain", engine=engine, data_api=True),
    ]
    with AuroraEmulator(specs, timings=Timings(**FAST_TIMINGS)) as emulator:
        set_aws_connection(monkeypatch, emulator)
        set_connection(
            monkeypatch,
            CONN_ID,
            conn_type="postgres" if family == "postgresql" else "mysql",
            schema="test",
            extra={"aurora_managed_password": True},
        )
        yield emulator


def sensor(cluster: str = "managed", **kwargs: Any) -> AuroraServerlessReadySensor:
    kwargs.setdefault("conn_id", CONN_ID)
    kwargs.setdefault("connect_timeout", 0.3)  # shorter than the resume: the first check defers
    return AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=cluster,
        aws_conn_id="aws_emulator",
        describe_interval=0.5,
        timeout=60,
        **kwargs,
    )


async def defer(task: AuroraServerlessReadySensor, evidence: Evidence) -> AuroraServerlessReadyTrigger:
    with pytest.raises(TaskDeferred) as excinfo:
        await asyncio.to_thread(task.execute, context())
    deferred = excinfo.value
    trigger = deferred.trigger
    assert isinstance(trigger, AuroraServerlessReadyTrigger)
    evidence.add(deferred, trigger, trigger.serialize(), deferred.kwargs)
    return trigger


async def run_trigger(trigger: AuroraServerlessReadyTrigger, evidence: Evidence) -> dict[str, Any]:
    event = await asyncio.wait_for(anext(trigger.run()), 30)
    evidence.add(event.payload)
    return dict(event.payload)


def collect(evidence: Evidence, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    captured = capsys.readouterr()
    evidence.add(caplog.text, captured.out, captured.err, *(record.getMessage() for record in caplog.records))


async def test_deferred_sensor_and_nudge_log_in_with_the_managed_secret(
    emu: AuroraEmulator,
    password_login: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    evidence = Evidence()
    wake = AuroraServerlessWakeOperator(
        task_id="wake", db_cluster_identifier="managed", aws_conn_id="aws_emulator", conn_id=CONN_ID
    )
    evidence.add(await asyncio.to_thread(wake.execute, context()))
    emu.pause("managed")  # so that the sensor defers and the trigger logs in too

    task = sensor()
    trigger = await defer(task, evidence)
    payload = await run_trigger(trigger, evidence)
    assert payload["status"] == "success", payload
    evidence.add(task.execute_complete(context(), payload))
    assert payload["ready_at"] >= (emu.ready_at("managed") or float("inf"))
    assert emu.master_user_secret_state("managed")["reads"] >= 2  # the nudge's, the sensor's...

    collect(evidence, caplog, capsys)
    evidence.assert_free_of(password_login.password)


async def test_poke_logs_in_with_the_managed_secret_after_a_rotation(emu: AuroraEmulator) -> None:
    emu.wake("managed")
    emu.rotate_master_password("managed", stale_reads=1)
    task = sensor(deferrable=False, connect_timeout=30)
    result = await asyncio.to_thread(task.poke, context())
    assert isinstance(result, PokeReturnValue) and result.is_done
    state = emu.master_user_secret_state("managed")
    assert (state["reads"], state["stale_reads"]) == (2, 1)  # the stale one, then read again once


async def test_the_trigger_reads_the_secret_again_once_after_a_rotation(
    emu: AuroraEmulator,
    password_login: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    evidence = Evidence()
    task = sensor()
    trigger = await defer(task, evidence)
    emu.rotate_master_password("managed", stale_reads=2)
    # The test takes one of the two stale reads itself, to know the previous password; what it
    # logs through botocore in the test's own process is not the adapters' doing.
    collect(evidence, caplog, capsys)
    arn = emu.master_user_secret_arn("managed")
    previous = json.loads(emu.boto3_client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    assert previous["password"] != password_login.password
    caplog.clear()
    capsys.readouterr()
    payload = await run_trigger(trigger, evidence)
    assert payload["status"] == "success", payload
    assert emu.master_user_secret_state("managed")["stale_reads"] == 2

    collect(evidence, caplog, capsys)
    evidence.assert_free_of(password_login.password, previous["password"])


async def test_a_wrong_managed_password_fails_at_once(
    emu: AuroraEmulator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    evidence = Evidence()
    arn = emu.master_user_secret_arn("managed")
    wrong = json.dumps({"username": "aurora_wake_pw", "password": WRONG_PASSWORD})
    emu.boto3_client("secretsmanager").put_secret_value(SecretId=arn, SecretString=wrong)
    emu.wake("managed")
    capsys.readouterr()  # the set-up above is the test's, not the adapters'
    caplog.set_level(logging.DEBUG)

    task = sensor(connect_timeout=30)
    with pytest.raises(DatabaseAuthenticationError) as failure:  # the check before deferring
        await asyncio.to_thread(task.execute, context())
    evidence.add(failure.value, failure.value.args)
    assert emu.master_user_secret_state("managed")["reads"] == 2  # read again once, unchanged

    emu.pause("managed")
    trigger = await defer(sensor(), evidence)
    payload = await run_trigger(trigger, evidence)
    assert payload["status"] == "error" and payload["error_type"] == "DatabaseAuthenticationError"
    with pytest.raises(AuroraWakeError) as resumed:
        task.execute_complete(context(), payload)
    evidence.add(resumed.value)

    collect(evidence, caplog, capsys)
    evidence.assert_free_of(WRONG_PASSWORD)


async def test_a_cluster_without_a_managed_secret_fails_before_deferring(emu: AuroraEmulator) -> None:
    with pytest.raises(DatabaseConfigurationError, match="no MasterUserSecret") as caught:
        await asyncio.to_thread(sensor("plain").execute, context())
    assert f"Connection '{CONN_ID}'" in str(caught.value)
    assert emu.counters()["connection_attempts"].get("plain", 0) == 0


@pytest.mark.parametrize("value", ["maybe", 1])
async def test_a_bad_managed_password_extra_names_it(
    emu: AuroraEmulator, monkeypatch: pytest.MonkeyPatch, value: object
) -> None:
    set_connection(monkeypatch, CONN_ID, conn_type="postgres", extra={"aurora_managed_password": value})
    with pytest.raises(
        DatabaseConfigurationError, match="extra 'aurora_managed_password' must be true or false"
    ):
        await asyncio.to_thread(sensor().execute, context())


async def test_data_api_probe_without_a_secret_uses_the_managed_one(emu: AuroraEmulator) -> None:
    evidence = Evidence()
    task = sensor(probe="data-api", conn_id=None, database="test")
    trigger = await defer(task, evidence)
    assert trigger.serialize()[1]["data_api_secret_arn"] is None  # the ARN is found again, not stored
    payload = await run_trigger(trigger, evidence)
    assert payload["status"] == "success", payload
    assert payload["rds_calls"].get("ExecuteStatement", 0) >= 1


async def test_data_api_probe_without_any_secret_fails_before_deferring(emu: AuroraEmulator) -> None:
    task = sensor("plain", probe="data-api", conn_id=None)
    with pytest.raises(InvalidParameterError, match="has no managed master secret") as caught:
        await asyncio.to_thread(task.execute, context())
    assert caught.value.parameter == "data_api_secret_arn"
    assert emu.counters()["data_api_calls"].get("plain", 0) == 0
    assert [event.event for event in emu.timeline("plain")] == ["created", "paused"]  # not woken


async def test_data_api_trigger_without_any_secret_reports_the_error(emu: AuroraEmulator) -> None:
    trigger = AuroraServerlessReadyTrigger(
        db_cluster_identifier="plain", deadline=1e12, aws_conn_id="aws_emulator", probe="data-api"
    )
    payload = await run_trigger(trigger, Evidence())
    assert payload["status"] == "error" and payload["error_type"] == "InvalidParameterError"
    assert "data_api_secret_arn" in payload["message"]

"""Managed master passwords in the core, on the emulator with real PostgreSQL and MariaDB.

A cluster created with ``ManageMasterUserPassword`` keeps its master login in Secrets Manager;
the emulator puts the real ``aurora_wake_pw`` login there (the password the server checks) and
rotates it, handing out a made-up previous password for a given number of reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_aurora_wake.core.api import SessionWaitResources, build_wait_settings, wake_and_wait
from airflow_aurora_wake.core.cluster import ClusterSnapshot, classify_cluster
from airflow_aurora_wake.core.errors import (
    AwsPermissionError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
    InvalidParameterError,
    classify_error,
    raise_if_fatal,
)
from airflow_aurora_wake.core.probes import DatabaseTarget, probe_once
from airflow_aurora_wake.core.rds import describe_cluster
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults, Timings

pytestmark = [pytest.mark.emulator, pytest.mark.db]

FAST = Timings(resume_seconds=1)
SCHEMES = {"postgresql": "postgresql", "mysql": "mysql"}


@pytest.fixture
def emulator(
    database_server: Any, password_login: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AuroraEmulator]:
    """``managed`` keeps the real login in its managed secret; ``plain`` has no managed secret."""
    engine = "aurora-postgresql" if database_server.engine == "postgresql" else "aurora-mysql"
    upstream = (
        f"{SCHEMES[database_server.engine]}://{password_login.user}:{password_login.password}"
        f"@{database_server.host}:{database_server.port}/{database_server.database}"
    )
    specs = [
        ClusterSpec(
            "managed", engine=engine, upstream=upstream, data_api=True, manage_master_user_password=True
        ),
        ClusterSpec("plain", engine=engine, data_api=True),
    ]
    with AuroraEmulator(specs, timings=FAST) as emu:
        for name, value in emu.aws_env().items():
            monkeypatch.setenv(name, value)
        emu.family = database_server.engine  # type: ignore[attr-defined]
        yield emu


def _options(emu: AuroraEmulator) -> dict[str, Any]:
    return {
        "region_name": emu.region,
        "endpoint_url": emu.endpoint_url,
        "timeout": 60,
        "describe_interval": 1,
    }


async def _snapshot_and_target(emu: AuroraEmulator, name: str, **login: Any) -> tuple[ClusterSnapshot, Any]:
    family = emu.family  # type: ignore[attr-defined]
    settings = build_wait_settings(
        name, managed_password=True, engine=family, database="test", **_options(emu), **login
    )
    resources = SessionWaitResources(settings)
    async with resources.rds_client() as rds:
        snapshot = await describe_cluster(rds, name, region_name=emu.region)
    return snapshot, resources


async def _probe(emu: AuroraEmulator, target: DatabaseTarget, snapshot: ClusterSnapshot) -> None:
    """One probe as the wait makes it: failures classified, fatal ones raised as core errors."""
    try:
        await probe_once(snapshot, target, timeout=30)
    except Exception as exc:
        raise_if_fatal(exc, where=target.engine, cluster=snapshot.identifier, secrets=target.secrets)
        raise


def test_describe_shows_the_managed_secret(emulator: AuroraEmulator) -> None:
    rds = emulator.boto3_client("rds")
    managed = classify_cluster(rds.describe_db_clusters(DBClusterIdentifier="managed")["DBClusters"][0])
    plain = classify_cluster(rds.describe_db_clusters(DBClusterIdentifier="plain")["DBClusters"][0])
    assert managed.master_user_secret_arn == emulator.master_user_secret_arn("managed")
    assert managed.master_user_secret_arn is not None and ":secretsmanager:" in managed.master_user_secret_arn
    assert plain.master_user_secret_arn is None
    secret = emulator.boto3_client("secretsmanager").get_secret_value(SecretId=managed.master_user_secret_arn)
    assert json.loads(secret["SecretString"])["username"] == "aurora_wake_pw"


def test_a_malformed_master_user_secret_is_a_description_error() -> None:
    from airflow_aurora_wake.core.errors import ClusterDescriptionError

    item = {"DBClusterIdentifier": "x", "Engine": "aurora-postgresql", "Status": "available"}
    assert (
        classify_cluster({**item, "MasterUserSecret": {"SecretStatus": "active"}}).master_user_secret_arn
        is None
    )
    with pytest.raises(ClusterDescriptionError, match="SecretArn"):
        classify_cluster({**item, "MasterUserSecret": {"SecretArn": 3}})


async def test_data_api_probe_takes_the_managed_secret(emulator: AuroraEmulator) -> None:
    report = await wake_and_wait(
        "managed", probe="data-api", wake=False, database="test", **_options(emulator)
    )
    assert report.probe == "data-api" and report.rds_calls.get("ExecuteStatement", 0) >= 1
    assert report.ready_at >= (emulator.ready_at("managed") or float("inf"))


async def test_data_api_probe_without_any_secret_fails_before_waiting(emulator: AuroraEmulator) -> None:
    with pytest.raises(InvalidParameterError, match="data_api_secret_arn") as caught:
        await wake_and_wait("plain", probe="data-api", wake=False, **_options(emulator))
    assert "MasterUserSecret" in str(caught.value) and "'plain'" in str(caught.value)
    # Nothing was tried: no Data API call, and the paused cluster was not asked to resume.
    assert emulator.counters()["data_api_calls"].get("plain", 0) == 0
    assert [event.event for event in emulator.timeline("plain")] == ["created", "paused"]


async def test_connection_probe_logs_in_with_the_secret_and_its_user(emulator: AuroraEmulator) -> None:
    # No user and no password: both come from the secret.
    report = await wake_and_wait(
        "managed", wake=False, managed_password=True, database="test", **_options(emulator)
    )
    assert report.ready_at >= (emulator.ready_at("managed") or float("inf"))
    assert emulator.master_user_secret_state("managed")["reads"] == 1  # cached for the whole wait


async def test_a_stale_password_right_after_a_rotation_is_read_again_once(emulator: AuroraEmulator) -> None:
    emulator.wake("managed")
    snapshot, resources = await _snapshot_and_target(emulator, "managed")
    emulator.rotate_master_password("managed", stale_reads=1)
    target = await resources.database_target(snapshot)
    await _probe(emulator, target, snapshot)
    state = emulator.master_user_secret_state("managed")
    assert (state["reads"], state["stale_reads"], state["rotations"]) == (2, 1, 1)


async def test_a_password_still_stale_on_the_second_read_fails(emulator: AuroraEmulator) -> None:
    emulator.wake("managed")
    snapshot, resources = await _snapshot_and_target(emulator, "managed")
    emulator.rotate_master_password("managed", stale_reads=5)
    target = await resources.database_target(snapshot)
    with pytest.raises(DatabaseAuthenticationError, match="the server answered, so it is awake"):
        await _probe(emulator, target, snapshot)
    assert emulator.master_user_secret_state("managed")["reads"] == 2  # read again once, not more


async def test_a_wrong_password_without_rotation_fails_at_once(emulator: AuroraEmulator) -> None:
    emulator.wake("managed")
    arn = emulator.master_user_secret_arn("managed")
    wrong = json.dumps({"username": "aurora_wake_pw", "password": "Wr0ng-managed-7c1d"})
    emulator.boto3_client("secretsmanager").put_secret_value(SecretId=arn, SecretString=wrong)
    snapshot, resources = await _snapshot_and_target(emulator, "managed")
    target = await resources.database_target(snapshot)
    with pytest.raises(DatabaseAuthenticationError) as caught:
        await _probe(emulator, target, snapshot)
    assert emulator.master_user_secret_state("managed")["reads"] == 2  # unchanged on the re-read
    assert "Wr0ng-managed-7c1d" not in str(caught.value) and "Wr0ng-managed-7c1d" not in repr(target)
    assert "Wr0ng-managed-7c1d" in target.secrets  # known, so messages can be cleaned of it


async def test_a_denied_secret_names_the_action(emulator: AuroraEmulator) -> None:
    emulator.wake("managed")
    emulator.set_faults(Faults(deny_actions={"secretsmanager:GetSecretValue"}))
    snapshot, resources = await _snapshot_and_target(emulator, "managed")
    target = await resources.database_target(snapshot)
    with pytest.raises(AwsPermissionError, match="AWS denied secretsmanager:GetSecretValue: grant"):
        await _probe(emulator, target, snapshot)
    assert emulator.counters()["connection_attempts"].get("managed", 0) == 0  # no login without it


async def test_a_cluster_without_a_managed_secret_fails_when_the_target_is_built(
    emulator: AuroraEmulator,
) -> None:
    snapshot, resources = await _snapshot_and_target(emulator, "plain")
    with pytest.raises(DatabaseConfigurationError, match="no MasterUserSecret") as caught:
        await resources.database_target(snapshot)
    assert "'plain'" in str(caught.value) and "ManageMasterUserPassword" in str(caught.value)


async def test_a_deleted_secret_fails_at_once(emulator: AuroraEmulator) -> None:
    emulator.wake("managed")
    snapshot, resources = await _snapshot_and_target(emulator, "managed")
    emulator.boto3_client("secretsmanager").delete_secret(
        SecretId=snapshot.master_user_secret_arn, ForceDeleteWithoutRecovery=True
    )
    target = await resources.database_target(snapshot)
    with pytest.raises(DatabaseConfigurationError, match="managed master secret of DB cluster 'managed'"):
        await _probe(emulator, target, snapshot)


def test_managed_password_refuses_a_password_or_iam() -> None:
    for extra in ({"password": "pw-given"}, {"iam": True}, {"dsn": "postgresql://u:pw-given@h/db"}):
        with pytest.raises(InvalidParameterError, match="managed_password") as caught:
            build_wait_settings("sales", managed_password=True, **extra)
        assert "pw-given" not in str(caught.value)


def test_secrets_manager_errors_are_classified() -> None:
    from core_fakes import aws_error

    where = "secretsmanager:GetSecretValue"
    throttled = classify_error(aws_error("ThrottlingException", status=400), where=where, cluster="c")
    assert throttled.retry and throttled.throttled
    assert classify_error(aws_error("InternalServiceError", status=500), where=where).retry
    kms = classify_error(aws_error("DecryptionFailure"), where=where, cluster="c")
    assert isinstance(kms.error, AwsPermissionError) and kms.error.action == "kms:Decrypt"
    gone = classify_error(
        aws_error("InvalidRequestException", "marked for deletion"), where=where, cluster="c"
    )
    assert isinstance(gone.error, DatabaseConfigurationError) and not gone.retry

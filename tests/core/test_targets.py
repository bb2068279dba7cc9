"""core.targets: the one place where login settings and a described cluster become a target."""

from __future__ import annotations

import logging

import pytest
from aiobotocore.session import get_session

from airflow_aurora_wake.core.api import SessionWaitResources, build_wait_settings
from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot
from airflow_aurora_wake.core.errors import DatabaseConfigurationError
from airflow_aurora_wake.core.targets import LoginSettings, build_target


def snapshot(
    engine: str = "aurora-postgresql",
    endpoint: str | None = "sales.cluster.example",
    port: int | None = 15432,
) -> ClusterSnapshot:
    return ClusterSnapshot(
        identifier="sales",
        arn="arn:aws:rds:us-east-1:123456789012:cluster:sales",
        kind=ClusterKind.SERVERLESS_V2,
        engine=engine,
        status="available",
        capacity=None,
        min_capacity=0.0,
        max_capacity=4.0,
        auto_pause=True,
        seconds_until_auto_pause=300,
        endpoint=endpoint,
        reader_endpoint=None,
        port=port,
        http_endpoint_enabled=False,
        iam_auth_enabled=True,
    )


def test_empty_host_and_port_come_from_the_cluster() -> None:
    target = build_target(LoginSettings(user="app", database="sales"), snapshot(), sign_token=None)
    assert (target.engine, target.host, target.port) == ("postgresql", "sales.cluster.example", 15432)


def test_an_explicit_host_without_a_port_uses_the_engine_default() -> None:
    # Every client of that host (the ETL tasks too) would connect to the default port.
    target = build_target(
        LoginSettings(host="proxy.internal", user="app"), snapshot("aurora-mysql"), sign_token=None
    )
    assert (target.host, target.port) == ("proxy.internal", 3306)


@pytest.mark.parametrize(
    ("settings", "cluster", "message"),
    [
        (LoginSettings(user="app"), snapshot(endpoint=None), "has no host"),
        (LoginSettings(host="h"), snapshot(), "has no login"),
        (LoginSettings(engine="mysql", user="app"), snapshot(), "is for mysql but DB cluster 'sales'"),
        (LoginSettings(user="app"), snapshot(engine="oracle-ee"), "cannot probe"),
        (LoginSettings(user="app", iam=True), snapshot(), "IAM authentication"),
    ],
    ids=["no-host", "no-user", "engine-mismatch", "unsupported-engine", "iam-without-signer"],
)
def test_unusable_settings_are_configuration_errors(
    settings: LoginSettings, cluster: ClusterSnapshot, message: str
) -> None:
    with pytest.raises(DatabaseConfigurationError, match=message):
        build_target(settings, cluster, sign_token=None)


async def test_iam_makes_a_fresh_token_per_attempt_and_drops_the_password() -> None:
    signed: list[tuple[str, int, str]] = []

    async def sign(host: str, port: int, user: str) -> str:
        signed.append((host, port, user))
        return f"token-{len(signed)}"

    settings = LoginSettings(user="iam_user", password="ignored", iam=True)
    target = build_target(settings, snapshot(), sign_token=sign)
    assert target.password is None
    assert [await target.resolve_password(), await target.resolve_password()] == ["token-1", "token-2"]
    assert signed == [("sales.cluster.example", 15432, "iam_user")] * 2


async def test_the_plain_python_path_keeps_iam_signatures_out_of_debug_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A script using wake_and_wait with DEBUG logging must not log what rebuilds the token."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key")
    settings = build_wait_settings("sales", region_name="us-east-1", user="iam_user", iam=True)
    resources = SessionWaitResources(settings, get_session())
    # No filter left behind by another test: this path must install its own.
    monkeypatch.setattr(logging.getLogger("botocore.auth"), "filters", [])
    caplog.set_level(logging.DEBUG)
    target = await resources.database_target(snapshot())
    token = await target.resolve_password()
    assert token is not None
    signature = token.split("X-Amz-Signature=", 1)[1]
    assert signature
    assert "botocore.auth" in {record.name for record in caplog.records}, "botocore logged nothing at DEBUG"
    assert signature not in caplog.text
    assert not any(str(record.msg).startswith("Signature:") for record in caplog.records)

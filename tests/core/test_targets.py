"""core.targets: the one place where login settings and a described cluster become a target."""

from __future__ import annotations

import logging
import ssl

import pytest
from aiobotocore.session import get_session
from cluster_snapshots import v2_snapshot

from airflow_aurora_wake.core.api import SessionWaitResources, build_wait_settings
from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.errors import DatabaseConfigurationError
from airflow_aurora_wake.core.targets import LoginSettings, build_target

snapshot = v2_snapshot


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


async def _token(host: str, port: int, user: str) -> str:
    return "token"


@pytest.mark.parametrize(
    ("engine", "given", "expected"),
    [
        ("aurora-postgresql", None, "require"),
        ("aurora-mysql", None, True),
        ("aurora-postgresql", "verify-full", "verify-full"),
        ("aurora-mysql", "verify-ca", "verify-ca"),
        ("aurora-mysql", True, True),
    ],
)
def test_iam_logins_use_tls_by_default(engine: str, given: object, expected: object) -> None:
    """AWS refuses IAM logins without TLS, and without TLS the token would be exposed."""
    settings = LoginSettings(user="iam_user", iam=True, ssl=given)  # type: ignore[arg-type]
    assert build_target(settings, snapshot(engine), sign_token=_token).ssl == expected


def test_iam_keeps_a_given_ssl_context() -> None:
    context = ssl.create_default_context()
    settings = LoginSettings(user="iam_user", iam=True, ssl=context)
    assert build_target(settings, snapshot(), sign_token=_token).ssl is context


@pytest.mark.parametrize(
    ("engine", "given", "fix"),
    [
        ("aurora-postgresql", "disable", "sslmode to require"),
        ("aurora-postgresql", "allow", "sslmode to require"),
        ("aurora-postgresql", "prefer", "sslmode to require"),
        ("aurora-postgresql", False, "sslmode to require"),
        ("aurora-mysql", False, "ssl to true"),
        ("aurora-mysql", "prefer", "ssl to true"),
    ],
)
def test_iam_with_a_setting_that_allows_clear_text_is_refused(engine: str, given: object, fix: str) -> None:
    settings = LoginSettings(user="iam_user", iam=True, ssl=given, origin="connection 'db'")  # type: ignore[arg-type]
    with pytest.raises(DatabaseConfigurationError) as caught:
        build_target(settings, snapshot(engine), sign_token=_token)
    message = str(caught.value)
    assert f"connection 'db' uses IAM authentication with the TLS setting {given!r}" in message
    assert "AWS refuses IAM logins without TLS" in message and fix in message


def test_a_password_login_keeps_its_tls_setting() -> None:
    for given in (None, False, "prefer"):
        settings = LoginSettings(user="app", password="pw", ssl=given)  # type: ignore[arg-type]
        assert build_target(settings, snapshot(), sign_token=None).ssl == given

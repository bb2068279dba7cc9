"""The hook and the plain-Python API build equal database targets from equal settings."""

from __future__ import annotations

from typing import Any

import pytest
from aiobotocore.session import get_session
from airflow_support import set_database_connection
from cluster_snapshots import v2_snapshot

from airflow_aurora_wake.core.api import SessionWaitResources, build_wait_settings
from airflow_aurora_wake.core.errors import DatabaseConfigurationError
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook

snapshot = v2_snapshot


SETTINGS: list[dict[str, Any]] = [
    {"engine": "postgresql", "user": "app", "password": "pw", "database": "sales"},
    {"engine": "postgresql", "user": "app", "password": "pw", "host": "db.internal", "database": "sales"},
    {"engine": "postgresql", "user": "app", "host": "db.internal", "port": 6543, "database": "sales"},
    {"engine": "mysql", "user": "app", "password": "pw", "database": "sales"},
    {"engine": "postgresql", "user": "iam_user", "iam": True, "database": "sales"},
    {"engine": "postgresql", "user": "app", "password": "pw", "sslmode": "verify-full", "database": "sales"},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda settings: "-".join(map(str, settings.values())))
async def test_hook_and_plain_python_build_equal_targets(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key")
    engine = settings["engine"]
    cluster = snapshot("aurora-postgresql" if engine == "postgresql" else "aurora-mysql")
    extra: dict[str, Any] = {}
    if settings.get("iam"):
        extra["iam"] = True
    if "sslmode" in settings:
        extra["sslmode"] = settings["sslmode"]
    set_database_connection(
        monkeypatch,
        "db",
        engine=engine,
        user=settings["user"],
        password=settings.get("password"),
        host=settings.get("host"),
        port=settings.get("port"),
        database=settings["database"],
        extra=extra,
    )
    hook = AuroraServerlessHook(aws_conn_id=None, region_name="us-east-1", conn_id="db")
    from_hook = await hook.database_target(cluster)

    plain = build_wait_settings(
        "sales",
        region_name="us-east-1",
        engine=engine,
        host=settings.get("host"),
        port=settings.get("port"),
        user=settings["user"],
        password=settings.get("password"),
        database=settings["database"],
        iam=settings.get("iam", False),
        ssl=settings.get("sslmode"),
    )
    from_api = await SessionWaitResources(plain, get_session()).database_target(cluster)

    # conn_id is for messages only; everything that decides the connection must agree.
    assert from_hook == type(from_hook)(**{**from_api.__dict__, "conn_id": "db"})
    assert (from_hook.password_provider is None) == (from_api.password_provider is None)
    if from_hook.password_provider is not None:
        assert from_api.password_provider is not None
        hook_token, api_token = await from_hook.password_provider(), await from_api.password_provider()
        assert hook_token.split("?", 1)[0] == api_token.split("?", 1)[0] == "sales.cluster.example:15432/"


async def test_both_paths_refuse_a_cluster_without_a_host_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(monkeypatch, "db", engine="postgresql", user="app")
    hook = AuroraServerlessHook(aws_conn_id=None, region_name="us-east-1", conn_id="db")
    plain = build_wait_settings("sales", region_name="us-east-1", user="app")
    cluster = snapshot("aurora-postgresql", endpoint=None)
    with pytest.raises(DatabaseConfigurationError, match="no host"):
        await hook.database_target(cluster)
    with pytest.raises(DatabaseConfigurationError, match="no host"):
        await SessionWaitResources(plain, get_session()).database_target(cluster)

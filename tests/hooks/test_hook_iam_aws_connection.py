"""The ``aws_conn_id`` extra of an IAM database connection: it must name an AWS connection.

The Amazon provider would sign with the default boto3 credentials, with only a warning, when it
does not; the hook refuses before any token is signed, looking the connection up without
blocking the event loop, with the rule of ``check_aws_connection`` (only ``aws_default`` may be
missing).
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow_support import set_connection, set_database_connection
from cluster_snapshots import v2_snapshot

from airflow_aurora_wake.core.errors import DatabaseConfigurationError
from airflow_aurora_wake.hooks import connections
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook

SNAPSHOT = v2_snapshot()


@pytest.fixture
def signing(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The AWS connection ids clients were opened for (a token is signed only through one)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key")
    opened: list[str | None] = []
    real = AuroraServerlessHook._client

    def spy(self: AuroraServerlessHook, client_type: str, aws_conn_id: str | None = None) -> Any:
        opened.append(aws_conn_id)
        return real(self, client_type, aws_conn_id)

    monkeypatch.setattr(AuroraServerlessHook, "_client", spy)
    return opened


def iam_connection(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    set_database_connection(
        monkeypatch, "db", engine="postgresql", user="iam_user", extra={"iam": True, **extra}
    )


def hook() -> AuroraServerlessHook:
    return AuroraServerlessHook(aws_conn_id="aws_main", region_name="us-east-1", conn_id="db")


async def test_a_missing_aws_connection_fails_before_any_token_is_signed(
    monkeypatch: pytest.MonkeyPatch, signing: list[str | None]
) -> None:
    iam_connection(monkeypatch, aws_conn_id="aws_tokns")

    with pytest.raises(DatabaseConfigurationError) as error:
        target = await hook().database_target(SNAPSHOT)
        await target.resolve_password()

    message = str(error.value)
    for needle in ("'db'", "aws_conn_id='aws_tokns'", "create an AWS connection", "AIRFLOW_CONN_AWS_TOKNS"):
        assert needle in message, message
    assert "remove aws_conn_id from the extra to sign IAM tokens with aws_conn_id 'aws_main'" in message
    assert signing == []


async def test_a_connection_of_another_type_is_refused(
    monkeypatch: pytest.MonkeyPatch, signing: list[str | None]
) -> None:
    iam_connection(monkeypatch, aws_conn_id="db")

    with pytest.raises(DatabaseConfigurationError, match="has type 'postgres', not 'aws'"):
        await hook().database_target(SNAPSHOT)
    assert signing == []


@pytest.mark.parametrize("value", ["", " aws_tokens", 7, True])
async def test_a_value_that_is_no_connection_id_is_refused(
    monkeypatch: pytest.MonkeyPatch, signing: list[str | None], value: object
) -> None:
    iam_connection(monkeypatch, aws_conn_id=value)

    with pytest.raises(DatabaseConfigurationError, match="which is not a connection id"):
        await hook().database_target(SNAPSHOT)
    assert signing == []


async def test_an_existing_aws_connection_signs_the_tokens_looked_up_once_and_async(
    monkeypatch: pytest.MonkeyPatch, signing: list[str | None]
) -> None:
    set_connection(monkeypatch, "aws_tokens", conn_type="aws", extra={"region_name": "us-east-1"})
    iam_connection(monkeypatch, aws_conn_id="aws_tokens")
    looked_up: list[str] = []
    real_lookup = connections.get_async_connection

    async def lookup(conn_id: str) -> Any:
        looked_up.append(conn_id)
        return await real_lookup(conn_id)

    monkeypatch.setattr(connections, "get_async_connection", lookup)
    aurora = hook()
    # A synchronous look-up would block the triggerer's event loop.
    monkeypatch.setattr(aurora, "get_connection", lambda conn_id: pytest.fail(f"sync look-up of {conn_id}"))

    for _ in range(2):
        target = await aurora.database_target(SNAPSHOT)
        token = await target.resolve_password()
        assert token is not None and token.startswith("sales.cluster.example:15432/?")

    assert signing == ["aws_tokens", "aws_tokens"]
    assert looked_up == ["db", "aws_tokens"]


async def test_aws_default_may_be_missing_as_for_the_hooks_own_connection(
    monkeypatch: pytest.MonkeyPatch, signing: list[str | None]
) -> None:
    iam_connection(monkeypatch, aws_conn_id="aws_default")

    target = await hook().database_target(SNAPSHOT)

    assert await target.resolve_password()
    assert signing == ["aws_default"]


async def test_without_iam_the_extra_is_left_to_the_sql_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    set_database_connection(
        monkeypatch, "db", engine="postgresql", user="app", password="pw", extra={"aws_conn_id": "aws_tokns"}
    )

    target = await hook().database_target(SNAPSHOT)

    assert target.password == "pw"

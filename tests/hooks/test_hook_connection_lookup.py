"""What the hook says when a connection look-up fails: missing is one answer, a failing source another.

The failing source is Airflow's local-filesystem secrets backend, which the test session
configures, made to deny access the way a secrets backend or the Execution API denies it
(``AirflowSecretsBackendAccessDenied``, which Airflow 3 does not read as "not found").
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow_support import AIRFLOW_2, set_database_connection
from cluster_snapshots import v2_snapshot

from airflow_aurora_wake.core.errors import ConnectionLookupError, InvalidParameterError
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook

NOT_FOUND = "no Airflow connection with this id exists"


def hook(**kwargs: Any) -> AuroraServerlessHook:
    return AuroraServerlessHook(
        **{"aws_conn_id": None, "region_name": "us-east-1", "conn_id": "db", **kwargs}
    )


@pytest.fixture
def denying_secrets_backend(monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's secrets backend denies every connection look-up; returns the denial's text."""
    if AIRFLOW_2:
        pytest.skip("Airflow 2.11 has no authoritative denial: it reads every failing source as 'not found'")
    from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied
    from airflow.secrets.local_filesystem import LocalFilesystemBackend

    denial = "access to this connection is denied for this team"

    def deny(self: Any, conn_id: str, team_name: str | None = None) -> None:
        raise AirflowSecretsBackendAccessDenied(denial)

    monkeypatch.setattr(LocalFilesystemBackend, "get_connection", deny)
    return denial


def test_a_missing_database_connection_is_reported_missing() -> None:
    with pytest.raises(InvalidParameterError, match=NOT_FOUND) as raised:
        hook(conn_id="nowhere").check_database_connection()
    assert raised.value.parameter == "conn_id"


async def test_a_missing_database_connection_is_reported_missing_asynchronously() -> None:
    with pytest.raises(InvalidParameterError, match=NOT_FOUND):
        await hook(conn_id="nowhere").database_target(v2_snapshot())


def test_a_denied_look_up_says_so_and_never_missing(denying_secrets_backend: str) -> None:
    with pytest.raises(ConnectionLookupError) as raised:
        hook(conn_id="db").check_database_connection()
    message = str(raised.value)
    assert "'db'" in message and "conn_id" in message
    assert denying_secrets_backend in message and "AirflowSecretsBackendAccessDenied" in message
    assert NOT_FOUND not in message


async def test_a_denied_asynchronous_look_up_says_so(
    denying_secrets_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Defined as well: the denial comes first, as a secrets backend comes before variables.
    set_database_connection(monkeypatch, "db", engine="postgresql", user="app")
    with pytest.raises(ConnectionLookupError) as raised:
        await hook(conn_id="db").database_target(v2_snapshot())
    assert denying_secrets_backend in str(raised.value)
    assert NOT_FOUND not in str(raised.value)


def test_a_denied_aws_connection_look_up_says_so(denying_secrets_backend: str) -> None:
    with pytest.raises(ConnectionLookupError) as raised:
        hook(aws_conn_id="aws_team").check_aws_connection()
    assert "'aws_team'" in str(raised.value) and "aws_conn_id" in str(raised.value)
    assert denying_secrets_backend in str(raised.value)

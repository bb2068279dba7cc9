"""The emulator's managed master passwords: the secret, ``MasterUserSecret``, and rotation."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import NO_RETRY

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults
from airflow_aurora_wake.emulator.cli import parse_cluster

pytestmark = [pytest.mark.emulator, pytest.mark.db]


def upstream(login: Any) -> str:
    return f"postgresql://{login.user}:{login.password}@127.0.0.1:5432/test"


def managed(emu: AuroraEmulator, login: Any, **kwargs: Any) -> str:
    """Add a managed cluster ``m``; return its secret's ARN."""
    emu.add_cluster(ClusterSpec("m", upstream=upstream(login), manage_master_user_password=True, **kwargs))
    arn = emu.master_user_secret_arn("m")
    assert arn is not None
    return arn


def read(emu: AuroraEmulator, secret_id: str, **kwargs: Any) -> tuple[str, str]:
    """``(password, VersionId)`` of one ``GetSecretValue``."""
    answer = emu.boto3_client("secretsmanager", config=NO_RETRY).get_secret_value(
        SecretId=secret_id, **kwargs
    )
    return json.loads(answer["SecretString"])["password"], answer["VersionId"]


def test_the_spec_needs_the_real_login_in_the_upstream() -> None:
    with pytest.raises(ValueError, match=r"upstream='postgresql://USER:PASSWORD@HOST:PORT/DB'"):
        ClusterSpec("m", manage_master_user_password=True)
    spec = parse_cluster("m,upstream=postgresql://u:pw@127.0.0.1:5432/test,manage-master-user-password=true")
    assert spec["manage_master_user_password"] is True
    assert ClusterSpec.from_mapping({**spec}).manage_master_user_password


def test_describe_shows_the_secret_with_the_real_login(emu: AuroraEmulator, password_login: Any) -> None:
    arn = managed(emu, password_login)
    emu.add_cluster(ClusterSpec("plain"))
    rds = emu.boto3_client("rds", config=NO_RETRY)
    described = rds.describe_db_clusters(DBClusterIdentifier="m")["DBClusters"][0]
    assert described["MasterUserSecret"]["SecretArn"] == arn
    assert described["MasterUsername"] == password_login.user
    assert "MasterUserSecret" not in rds.describe_db_clusters(DBClusterIdentifier="plain")["DBClusters"][0]
    assert emu.master_user_secret_arn("plain") is None
    secret = emu.boto3_client("secretsmanager").get_secret_value(SecretId=arn)
    assert json.loads(secret["SecretString"]) == {
        "username": password_login.user,
        "password": password_login.password,
    }


def test_a_rotation_hands_out_the_previous_password_to_the_next_reads(
    emu: AuroraEmulator, password_login: Any
) -> None:
    arn = managed(emu, password_login)
    before, before_version = read(emu, arn)
    state = emu.rotate_master_password("m", stale_reads=2)
    assert (state["rotations"], state["stale_reads_left"]) == (1, 2)
    stale = [read(emu, arn), read(emu, arn.rsplit("-", 1)[0])]  # by ARN, and by ARN without its suffix
    current, current_version = read(emu, arn)
    assert stale[0] == stale[1] and stale[0][0] not in (before, password_login.password)
    assert stale[0][1] == before_version  # the previous version, as AWS still calls it current
    assert current == password_login.password and current_version != before_version
    state = emu.master_user_secret_state("m")
    assert (state["reads"], state["stale_reads"], state["stale_reads_left"]) == (4, 2, 0)
    assert password_login.password not in json.dumps(state)


def test_a_read_of_a_pinned_version_is_not_stale(emu: AuroraEmulator, password_login: Any) -> None:
    arn = managed(emu, password_login)
    emu.rotate_master_password("m", stale_reads=1)
    assert read(emu, arn, VersionStage="AWSPREVIOUS")[0] == password_login.password
    assert emu.master_user_secret_state("m")["stale_reads"] == 0


def test_the_window_in_seconds_ends(emu: AuroraEmulator, password_login: Any) -> None:
    arn = managed(emu, password_login)
    now = [1000.0]
    emu._backend.master_secrets.clock = lambda: now[0]  # the model's clock, moved by hand
    emu.rotate_master_password("m", stale_reads=0, stale_seconds=30)
    assert read(emu, arn)[0] != password_login.password
    now[0] += 30
    assert read(emu, arn)[0] == password_login.password


def test_the_data_api_logs_in_with_the_managed_secret(emu: AuroraEmulator, password_login: Any) -> None:
    arn = managed(emu, password_login, data_api=True, state="available")
    endpoint = emu.cluster("m")
    answer = emu.boto3_client("rds-data").execute_statement(
        resourceArn=endpoint.arn, secretArn=arn, sql="SELECT current_user"
    )
    assert answer["records"][0][0]["stringValue"] == password_login.user


def test_a_denied_read_names_the_action(emu: AuroraEmulator, password_login: Any) -> None:
    arn = managed(emu, password_login)
    emu.set_faults(Faults(deny_actions={"secretsmanager:GetSecretValue"}))
    with pytest.raises(ClientError) as caught:
        read(emu, arn)
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "secretsmanager:GetSecretValue" in caught.value.response["Error"]["Message"]


def test_the_admin_routes(emu: AuroraEmulator, password_login: Any) -> None:
    managed(emu, password_login)
    emu.add_cluster(ClusterSpec("plain"))

    def call(path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            emu.endpoint_url + path, data=data, method="GET" if body is None else "POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    state = call("/_emulator/clusters/m/rotate-master-password", {"stale_reads": 3})
    assert (state["rotations"], state["stale_reads_left"]) == (1, 3)
    assert call("/_emulator/clusters/m/master-user-secret")["stale_reads_left"] == 3
    for path, body in (
        ("/_emulator/clusters/m/rotate-master-password", {"stale_reads": -1}),
        ("/_emulator/clusters/m/rotate-master-password", {"colour": "red"}),
        ("/_emulator/clusters/plain/rotate-master-password", {}),
    ):
        with pytest.raises(urllib.error.HTTPError) as caught:
            call(path, body)
        assert caught.value.code == 400

"""What ``airflow-aurora-wake wait`` prints when it fails: the command's words, and the fix.

The command has no Airflow, so neither its progress (stderr) nor its JSON line (stdout) may
speak of Airflow, a sensor, an operator, a trigger, an AWS connection or a ``conn_id``. Each
failure it can meet without AWS is run here against the emulator (or with the credentials or
the region taken away), and its message must still name what to fix.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from caller_words import airflow_words_in

from airflow_aurora_wake.cli import main
from airflow_aurora_wake.core.cli import EXIT_MISCONFIGURED, EXIT_TIMEOUT
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults, Timings

pytestmark = [pytest.mark.emulator]

DSN = "postgresql://app@/test"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:reports-login-AbCdEf"


@pytest.fixture(scope="module")
def emulator() -> Iterator[AuroraEmulator]:
    # A resume longer than any wait here: a paused cluster stays unready, and no test needs the
    # database server behind the emulated endpoints.
    specs = [
        ClusterSpec("sales"),
        ClusterSpec("reports"),
        ClusterSpec("orders", kind="provisioned", state="stopped"),
    ]
    with AuroraEmulator(specs, timings=Timings(resume_seconds=600)) as emu:
        yield emu


@pytest.fixture
def wait(
    emulator: AuroraEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    """Run ``airflow-aurora-wake wait ...`` against the emulator; return (status, result, stderr).

    Every run is checked for Airflow words in all it printed, and for the one JSON line.
    """
    for name, value in emulator.aws_env().items():
        monkeypatch.setenv(name, value)
    # The command runs in its own process, where nothing configures logging; in this one, the
    # test session imported Airflow, whose 2.11 logging sends records (botocore's) to stdout.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])

    def run(*argv: str) -> tuple[int, dict[str, Any], str]:
        endpoint = () if "--endpoint-url" in argv else ("--endpoint-url", emulator.endpoint_url)
        status = main(["wait", *argv, *endpoint])
        out, err = capsys.readouterr()
        assert airflow_words_in(out + err) == [], out + err
        result = json.loads(out)
        assert result["ready"] is False and result["message"] in err, (out, err)
        return status, result, err

    return run


def test_an_unknown_cluster_names_the_identifier_and_the_region(wait: Any) -> None:
    status, result, _ = wait("salse", "--dsn", DSN, "--region", "us-east-1")
    assert status == EXIT_MISCONFIGURED and result["error"] == "ClusterNotFoundError"
    message = result["message"]
    assert "'salse' was not found in us-east-1" in message
    assert "check the cluster identifier, the region" in message and "credentials" in message


def test_a_paused_v2_cluster_is_left_to_the_probe_and_the_timeout_says_what_to_raise(wait: Any) -> None:
    status, result, err = wait("sales", "--dsn", DSN, "--timeout", "2")
    assert status == EXIT_TIMEOUT and result["error"] == "timeout"
    assert (
        "wake: probe-will-wake: cluster sales may be paused (auto-pause); no nudge configured: "
        "the readiness probe's first attempt will wake it"
    ) in err
    assert "'sales' was not ready after" in result["message"]
    assert "raise the timeout" in result["message"].lower()


def test_a_stopped_cluster_with_no_start_says_how_to_start_it(wait: Any, emulator: AuroraEmulator) -> None:
    status, result, _ = wait("orders", "--dsn", DSN, "--no-start")
    assert status == EXIT_MISCONFIGURED and result["error"] == "ClusterStateError"
    assert "'orders' is 'stopped'" in result["message"]
    assert "StartDBCluster" in result["message"] and "let the wake start" in result["message"]
    assert emulator.status("orders") == "stopped"


def test_a_denied_call_names_the_permission_to_grant(wait: Any, emulator: AuroraEmulator) -> None:
    emulator.set_faults(Faults(deny_actions=frozenset({"DescribeDBClusters"})))
    try:
        status, result, _ = wait("sales", "--dsn", DSN)
    finally:
        emulator.set_faults(Faults())
    assert status == EXIT_MISCONFIGURED and result["error"] == "AwsPermissionError"
    assert (
        "grant rds:DescribeDBClusters to the role or user whose credentials made the call"
        in result["message"]
    )


def test_a_cluster_without_the_data_api_says_what_to_use_instead(wait: Any) -> None:
    status, result, _ = wait(
        "reports", "--no-wake", "--probe", "data-api", "--data-api-secret-arn", SECRET, "--database", "test"
    )
    assert status == EXIT_MISCONFIGURED and result["error"] == "DataApiNotEnabledError"
    assert "enable the Data API" in result["message"]
    assert "over a connection instead of the Data API" in result["message"]


def test_an_unreachable_rds_endpoint_times_out_naming_what_to_check(wait: Any) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: every connect is refused
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        status, result, _ = wait(
            "sales", "--dsn", DSN, "--no-wake", "--timeout", "2", "--endpoint-url", endpoint
        )
    assert status == EXIT_TIMEOUT
    assert "no DescribeDBClusters call succeeded" in result["message"]
    assert "Check the AWS credentials, the region and network access to the RDS API" in result["message"]


def _no_aws_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the shared AWS files and the instance metadata out of the credential and region chains."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_missing_credentials_say_to_configure_them(
    wait: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_aws_files(monkeypatch, tmp_path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    status, result, _ = wait("sales", "--dsn", DSN, "--timeout", "5")
    assert status == EXIT_MISCONFIGURED and result["error"] == "AwsCredentialsError"
    assert "no usable AWS credentials were found" in result["message"]
    assert (
        "configure AWS credentials (an access key, a profile, or an instance or task role)"
        in result["message"]
    )


def test_a_missing_region_names_the_flag(wait: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_aws_files(monkeypatch, tmp_path)
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    status, result, _ = wait("sales", "--dsn", DSN, "--timeout", "5")
    assert status == EXIT_MISCONFIGURED and result["error"] == "InvalidParameterError"
    assert result["message"].startswith("invalid --region=None: no AWS region is configured: give the region")
    assert "AWS_DEFAULT_REGION" in result["message"]

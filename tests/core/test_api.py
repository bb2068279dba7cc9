"""The plain-Python API and CLI: validation before any I/O, exit codes, no Airflow import."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest

from airflow_aurora_wake.core.api import build_wait_settings, wake_and_wait, wake_and_wait_sync
from airflow_aurora_wake.core.cli import EXIT_MISCONFIGURED, add_wait_parser, run_wait
from airflow_aurora_wake.core.errors import InvalidParameterError

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales-login-AbCdEf"
# Nothing listens here: a validation failure must happen before any request would be tried.
DEAD_ENDPOINT = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"db_cluster_identifier": " sales"}, "db_cluster_identifier"),
        ({"region_name": "us_east_1"}, "region_name"),
        ({"endpoint_url": "localhost:5000"}, "endpoint_url"),
        ({"probe": "http"}, "probe"),
        ({"probe": "data-api", "data_api_secret_arn": "login"}, "data_api_secret_arn"),
        ({"managed_password": True, "password": "pw"}, "managed_password"),
        ({"managed_password": "yes"}, "managed_password"),
        ({"timeout": 0}, "timeout"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"capacity": 3}, "capacity"),
        ({"wake": "yes"}, "wake"),
        ({"iam": True, "password": "pw"}, "password"),
        ({"dsn": "oracle://app@db/x"}, "dsn"),
        ({"dsn": None, "user": None}, "user"),
        ({"dsn": "mysql://app@db/x", "engine": "postgresql"}, "engine"),
        ({"port": 70000}, "port"),
    ],
)
async def test_bad_parameters_fail_before_any_io(kwargs: dict[str, Any], parameter: str) -> None:
    arguments: dict[str, Any] = {
        "db_cluster_identifier": "sales",
        "endpoint_url": DEAD_ENDPOINT,
        "region_name": "us-east-1",
        "dsn": "postgresql://app@/sales",
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidParameterError) as caught:
        await wake_and_wait(**arguments)
    assert caught.value.parameter == parameter


def test_settings_from_an_arn_and_a_dsn() -> None:
    settings = build_wait_settings(
        "arn:aws:rds:eu-west-1:123456789012:cluster:sales", dsn="postgresql://app:pw@db.internal:6543/sales"
    )
    assert settings.request.db_cluster_identifier == "sales" and settings.request.region_name == "eu-west-1"
    login = settings.login
    assert (login.engine, login.host, login.port, login.user, login.database) == (
        "postgresql",
        "db.internal",
        6543,
        "app",
        "sales",
    )
    assert login.password == "pw" and "pw" not in repr(settings).replace("password", "")


def test_sync_wrapper_refuses_to_run_inside_a_loop() -> None:
    async def inside() -> None:
        with pytest.raises(RuntimeError, match="await wake_and_wait"):
            wake_and_wait_sync("sales", dsn="postgresql://app@/x")

    asyncio.run(inside())


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_wait_parser(parser.add_subparsers())
    return parser.parse_args(["wait", *argv])


def test_cli_rejects_a_password_in_the_dsn_without_echoing_it(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_wait(_args("sales", "--endpoint-url", DEAD_ENDPOINT, "--dsn", "postgresql://app:hunter2@db/x"))
    out, err = capsys.readouterr()
    assert code == EXIT_MISCONFIGURED
    assert "hunter2" not in out and "hunter2" not in err
    result = json.loads(out)
    assert result["ready"] is False and result["error"] == "InvalidParameterError"
    assert "--password-env" in result["message"]


def test_cli_missing_password_env_is_misconfiguration(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_wait(
        _args("sales", "--dsn", "postgresql://app@db/x", "--password-env", "AURORA_WAKE_NO_SUCH_VARIABLE")
    )
    assert code == EXIT_MISCONFIGURED
    assert "AURORA_WAKE_NO_SUCH_VARIABLE" in json.loads(capsys.readouterr().out)["message"]


def test_cli_bad_identifier_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_wait(_args("1-bad", "--dsn", "postgresql://app@db/x")) == EXIT_MISCONFIGURED


def test_top_level_package_exports_the_api_lazily() -> None:
    code = (
        "import sys, airflow_aurora_wake as package\n"
        "assert 'airflow_aurora_wake.core' not in sys.modules\n"
        "from airflow_aurora_wake import wake_and_wait, wake_and_wait_sync\n"
        "assert wake_and_wait.__module__ == 'airflow_aurora_wake.core.api'\n"
        "assert package.get_provider_info()['package-name'] == 'airflow-aurora-wake'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_core_never_imports_airflow() -> None:
    code = (
        "import sys\n"
        "import airflow_aurora_wake.core, airflow_aurora_wake.core.cli\n"
        "bad = sorted(name for name in sys.modules if name == 'airflow' or name.startswith('airflow.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_keyword_is_a_type_error_before_any_io() -> None:
    with pytest.raises(TypeError, match="connect_timout"):
        build_wait_settings("sales", region_name="us-east-1", user="app", connect_timout=5)  # type: ignore[call-arg]

"""Every parameter of AuroraServerlessReadySensor with bad input: a clear error before any I/O.

Empty, whitespace, wrong-type, out-of-range and templated-to-None values (see
``tests/adapter_bad_input.py``), including the base sensor's own ``timeout``, ``poke_interval``,
``mode`` and ``soft_fail``; an unknown or wrong-type connection id; a cluster ARN (accepted).
Misconfiguration is an ``InvalidParameterError``, never an ``AirflowException``, so
``soft_fail`` cannot turn it into a skip.
"""

from __future__ import annotations

from typing import Any

import adapter_bad_input
import pytest
from adapter_bad_input import ARN, assert_rejected, build
from airflow_support import context

from airflow_aurora_wake.compat import AirflowException
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

quiet_emulator = adapter_bad_input.quiet_emulator
connections = adapter_bad_input.connections

BASE = {
    "task_id": "ready",
    "db_cluster_identifier": "sales",
    "aws_conn_id": "aws_emulator",
    "conn_id": "aurora_db",
    "timeout": 5,
    "soft_fail": True,
}
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales-login"
CASES = [
    ("db_cluster_identifier", "", "direct"),
    ("db_cluster_identifier", "\t", "direct"),
    ("db_cluster_identifier", "sales ", "direct"),
    ("db_cluster_identifier", 42, "direct"),
    ("db_cluster_identifier", "-sales", "direct"),
    ("db_cluster_identifier", None, "template"),
    ("db_cluster_identifier", None, "native"),
    ("aws_conn_id", "", "direct"),
    ("aws_conn_id", " ", "direct"),
    ("aws_conn_id", 7, "direct"),
    ("aws_conn_id", "no_such_aws_connection", "direct"),
    ("aws_conn_id", "aurora_db", "direct"),
    ("aws_conn_id", None, "template"),
    ("region_name", "", "direct"),
    ("region_name", "us east 1", "direct"),
    ("region_name", 1, "direct"),
    ("region_name", None, "template"),
    ("verify", "", "direct"),
    ("verify", 3, "direct"),
    ("verify", "/no/such/ca-bundle.pem", "direct"),
    ("verify", None, "template"),
    ("verify", True, "template"),
    ("botocore_config", "retries=3", "direct"),
    ("conn_id", "", "direct"),
    ("conn_id", "  ", "direct"),
    ("conn_id", None, "direct"),  # probe="connection" needs one
    ("conn_id", 5, "direct"),
    ("conn_id", "no_such_connection", "direct"),
    ("conn_id", "http_conn", "direct"),
    ("conn_id", None, "template"),
    ("conn_id", None, "native"),
    ("probe", "", "direct"),
    ("probe", " connection", "direct"),
    ("probe", "CONNECTION", "direct"),
    ("probe", None, "direct"),
    ("probe", 1, "direct"),
    ("connect_timeout", 0, "direct"),
    ("connect_timeout", -1, "direct"),
    ("connect_timeout", "30", "direct"),
    ("connect_timeout", None, "direct"),
    ("connect_timeout", float("nan"), "direct"),
    ("connect_timeout", float("inf"), "direct"),
    ("connect_timeout", True, "direct"),
    ("data_api_secret_arn", "", "direct"),
    ("data_api_secret_arn", "sales-login", "direct"),
    ("data_api_secret_arn", None, "template"),
    ("database", "", "direct"),
    ("database", " ", "direct"),
    ("database", 3, "direct"),
    ("database", None, "template"),
    ("deferrable", "true", "direct"),
    ("deferrable", None, "direct"),
    ("deferrable", 1, "direct"),
    ("describe_interval", 0, "direct"),
    ("describe_interval", -5, "direct"),
    ("describe_interval", "10", "direct"),
    ("describe_interval", None, "direct"),
    ("stopped_grace", -1, "direct"),
    ("stopped_grace", "60", "direct"),
    ("stopped_grace", None, "direct"),
    ("stopped_grace", float("inf"), "direct"),
    ("timeout", 0, "direct"),
    ("timeout", -1, "direct"),
    ("timeout", "60", "direct"),
    ("timeout", float("inf"), "direct"),
    ("poke_interval", 0, "direct"),
    ("poke_interval", -1, "direct"),
    ("poke_interval", "5", "direct"),
    ("poke_interval", None, "direct"),
    ("mode", "", "direct"),
    ("mode", "bad", "direct"),
    ("mode", None, "direct"),
    ("soft_fail", "no", "direct"),
    ("soft_fail", None, "direct"),
]


def execute(task: AuroraServerlessReadySensor) -> Any:
    return task.execute(context())


@pytest.mark.parametrize(("parameter", "value", "how"), CASES, ids=[f"{p}={v!r}-{h}" for p, v, h in CASES])
def test_bad_input_is_rejected_before_any_io(
    connections: Any, parameter: str, value: object, how: str
) -> None:
    error = assert_rejected(connections, AuroraServerlessReadySensor, BASE, parameter, value, how, execute)
    # Misconfiguration is never skipped: not an AirflowException, even with soft_fail=True.
    assert not isinstance(error, AirflowException)


def test_data_api_probe_secret_rendered_as_none_is_rejected(connections: Any) -> None:
    error = assert_rejected(
        connections, AuroraServerlessReadySensor, BASE, "data_api_secret_arn", None, "template", execute
    )
    assert "'None'" in str(error)
    # No secret at all is valid here: the cluster's managed master secret is used, and a cluster
    # without one fails after the first describe (tests/sensors/test_sensor_managed_password.py).
    AuroraServerlessReadySensor(**{**BASE, "probe": "data-api", "conn_id": None})


@pytest.mark.parametrize("how", ["direct", "template"])
def test_a_cluster_arn_is_accepted(connections: Any, how: str) -> None:
    base = {**BASE, "deferrable": False, "probe": "data-api", "conn_id": None, "data_api_secret_arn": SECRET}
    task = build(AuroraServerlessReadySensor, base, "db_cluster_identifier", ARN, how)
    request, _ = task._validated_request()
    assert (request.db_cluster_identifier, request.region_name) == ("sales", "us-east-1")

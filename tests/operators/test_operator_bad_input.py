"""Every parameter of AuroraServerlessWakeOperator with bad input: a clear error before any I/O.

Empty, whitespace, wrong-type, out-of-range and templated-to-None values (see
``adapter_bad_input``), an unknown or wrong-type connection id, and a cluster ARN (accepted: its
name and region are used; a conflicting ``region_name`` is an error).
"""

from __future__ import annotations

from typing import Any

import adapter_bad_input
import pytest
from adapter_bad_input import ARN, assert_rejected, build
from airflow_support import context

from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

quiet_emulator = adapter_bad_input.quiet_emulator
connections = adapter_bad_input.connections

BASE = {
    "task_id": "wake",
    "db_cluster_identifier": "sales",
    "aws_conn_id": "aws_emulator",
    "conn_id": "aurora_db",
}
# (parameter, value, how): every one must be rejected naming the parameter.
CASES = [
    # db_cluster_identifier
    ("db_cluster_identifier", "", "direct"),
    ("db_cluster_identifier", "   ", "direct"),
    ("db_cluster_identifier", " sales", "direct"),
    ("db_cluster_identifier", 42, "direct"),
    ("db_cluster_identifier", ["sales"], "direct"),
    ("db_cluster_identifier", "x" * 64, "direct"),
    ("db_cluster_identifier", "arn:aws:rds:us-east-1:123456789012:db:sales", "direct"),
    ("db_cluster_identifier", None, "template"),
    ("db_cluster_identifier", None, "native"),
    ("db_cluster_identifier", "", "template"),
    # aws_conn_id
    ("aws_conn_id", "", "direct"),
    ("aws_conn_id", "  ", "direct"),
    ("aws_conn_id", 7, "direct"),
    ("aws_conn_id", "no_such_aws_connection", "direct"),
    ("aws_conn_id", "aurora_db", "direct"),  # a database connection given as the AWS one
    ("aws_conn_id", None, "template"),
    # region_name
    ("region_name", "", "direct"),
    ("region_name", " us-east-1", "direct"),
    ("region_name", "Mars", "direct"),
    ("region_name", 1, "direct"),
    ("region_name", None, "template"),
    # verify
    ("verify", "", "direct"),
    ("verify", 3, "direct"),
    ("verify", "/no/such/ca-bundle.pem", "direct"),
    ("verify", None, "template"),
    ("verify", False, "template"),  # rendered as the text 'False': not a CA bundle path
    # botocore_config (not templated)
    ("botocore_config", "retries=3", "direct"),
    ("botocore_config", ["retries"], "direct"),
    # capacity
    ("capacity", 0, "direct"),
    ("capacity", 3, "direct"),
    ("capacity", -2, "direct"),
    ("capacity", 2.5, "direct"),
    ("capacity", "eight", "direct"),
    ("capacity", "", "direct"),
    ("capacity", True, "direct"),
    ("capacity", None, "template"),
    ("capacity", 3, "template"),
    # seconds_before_timeout, timeout_action, start_if_stopped (not templated)
    ("seconds_before_timeout", 9, "direct"),
    ("seconds_before_timeout", 601, "direct"),
    ("seconds_before_timeout", "300", "direct"),
    ("seconds_before_timeout", None, "direct"),
    ("timeout_action", "", "direct"),
    ("timeout_action", "rollback", "direct"),
    ("timeout_action", None, "direct"),
    ("start_if_stopped", "false", "direct"),
    ("start_if_stopped", None, "direct"),
    ("start_if_stopped", 0, "direct"),
    # conn_id
    ("conn_id", "", "direct"),
    ("conn_id", " ", "direct"),
    ("conn_id", 5, "direct"),
    ("conn_id", "no_such_connection", "direct"),
    ("conn_id", "http_conn", "direct"),  # exists, but is not a database connection
    ("conn_id", None, "template"),
    # data_api_secret_arn
    ("data_api_secret_arn", "", "direct"),
    ("data_api_secret_arn", "sales-login", "direct"),
    ("data_api_secret_arn", 1, "direct"),
    ("data_api_secret_arn", None, "template"),
    # database
    ("database", "", "direct"),
    ("database", " ", "direct"),
    ("database", " sales", "direct"),
    ("database", 3, "direct"),
    ("database", None, "template"),
]


def execute(task: AuroraServerlessWakeOperator) -> Any:
    return task.execute(context())


@pytest.mark.parametrize(("parameter", "value", "how"), CASES, ids=[f"{p}={v!r}-{h}" for p, v, h in CASES])
def test_bad_input_is_rejected_before_any_io(
    connections: Any, parameter: str, value: object, how: str
) -> None:
    assert_rejected(connections, AuroraServerlessWakeOperator, BASE, parameter, value, how, execute)


def test_templated_to_none_says_so(connections: Any) -> None:
    error = assert_rejected(
        connections, AuroraServerlessWakeOperator, BASE, "db_cluster_identifier", None, "template", execute
    )
    assert "template" in str(error) and "'None'" in str(error) and "ARN" in str(error)


def test_unknown_aws_conn_id_says_how_to_create_it(connections: Any) -> None:
    error = assert_rejected(
        connections, AuroraServerlessWakeOperator, BASE, "aws_conn_id", "aws_typo", "direct", execute
    )
    assert "AIRFLOW_CONN_AWS_TYPO" in str(error) and "aws_conn_id=None" in str(error)


@pytest.mark.parametrize("how", ["direct", "template"])
def test_a_cluster_arn_is_accepted(connections: Any, how: str) -> None:
    # No nudge (conn_id=None): the wake step only describes, plans and returns.
    task = build(AuroraServerlessWakeOperator, {**BASE, "conn_id": None}, "db_cluster_identifier", ARN, how)
    result = execute(task)
    assert result["db_cluster_identifier"] == "sales"
    calls = connections.counters()["rds_calls_by_cluster"]["sales"]
    assert calls.get("DescribeDBClusters", 0) >= 1  # described by its name


def test_a_cluster_arn_in_another_region_than_region_name_is_an_error(connections: Any) -> None:
    error = assert_rejected(
        connections,
        AuroraServerlessWakeOperator,
        {**BASE, "db_cluster_identifier": ARN},
        "region_name",
        "eu-west-1",
        "direct",
        execute,
    )
    assert "us-east-1" in str(error)

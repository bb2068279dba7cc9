"""Validators: each rejects bad input naming the parameter, the value and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_aurora_wake.core.dsn import parse_dsn
from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.core.validation import (
    validate_bool,
    validate_capacity,
    validate_cluster_identifier,
    validate_deadline,
    validate_endpoint_url,
    validate_port,
    validate_positive_seconds,
    validate_probe,
    validate_probe_settings,
    validate_region,
    validate_seconds_before_timeout,
    validate_secret_arn,
    validate_timeout_action,
)

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales-login-AbCdEf"


def test_plain_identifier() -> None:
    reference = validate_cluster_identifier("sales-db-1")
    assert reference.identifier == "sales-db-1" and reference.region_from_arn is None


def test_arn_gives_name_and_region() -> None:
    reference = validate_cluster_identifier("arn:aws:rds:eu-central-1:123456789012:cluster:sales")
    assert reference.identifier == "sales" and reference.region_from_arn == "eu-central-1"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("", "must not be empty"),
        (" sales", "whitespace"),
        ("sales\n", "whitespace"),
        ("1sales", "starting with a"),
        ("sa--les", "single hyphens"),
        ("sales-", "single hyphens"),
        ("x" * 64, "1-63"),
        ("arn:aws:rds:us-east-1:123456789012:db:sales", "not an RDS cluster ARN"),
        (None, "identifier"),
        (42, "identifier"),
    ],
)
def test_bad_identifiers(value: Any, needle: str) -> None:
    with pytest.raises(InvalidParameterError, match="db_cluster_identifier") as caught:
        validate_cluster_identifier(value)
    assert needle in str(caught.value)


@pytest.mark.parametrize("value", ["us-east-1", "eu-central-2", "us-gov-west-1", "ap-southeast-5", None])
def test_good_regions(value: str | None) -> None:
    assert validate_region(value) == value


@pytest.mark.parametrize("value", ["us_east_1", "US-EAST-1", "", "useast1", 3])
def test_bad_regions(value: Any) -> None:
    with pytest.raises(InvalidParameterError, match="region_name"):
        validate_region(value)


def test_capacity() -> None:
    assert validate_capacity(None) is None
    assert validate_capacity(2, "postgresql") == 2
    assert validate_capacity(1, "mysql") == 1
    with pytest.raises(InvalidParameterError, match=r"valid capacities for Aurora postgresql are \[2, 4"):
        validate_capacity(1, "postgresql")
    for bad in (3, 2.5, True, "2", 0):
        with pytest.raises(InvalidParameterError, match="capacity"):
            validate_capacity(bad)


def test_seconds_before_timeout_bounds() -> None:
    assert validate_seconds_before_timeout(10) == 10 and validate_seconds_before_timeout(600) == 600
    for bad in (9, 601, 30.0, True, "300"):
        with pytest.raises(InvalidParameterError, match="10 to 600"):
            validate_seconds_before_timeout(bad)


def test_timeout_action_enum() -> None:
    assert validate_timeout_action("ForceApplyCapacityChange") == "ForceApplyCapacityChange"
    with pytest.raises(InvalidParameterError, match="RollbackCapacityChange"):
        validate_timeout_action("rollback")


def test_probe_enum_and_data_api_secret() -> None:
    assert validate_probe("connection") == "connection"
    with pytest.raises(InvalidParameterError, match="probe"):
        validate_probe("dataapi")
    assert validate_probe_settings("data-api", SECRET) == ("data-api", SECRET)
    # Without a secret the cluster's managed master secret is used; a cluster without one
    # fails after the first describe (tests/core/test_managed_secret.py).
    assert validate_probe_settings("data-api", None) == ("data-api", None)
    with pytest.raises(InvalidParameterError, match="Secrets Manager secret ARN"):
        validate_secret_arn("sales-login")


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), "30", True, None])
def test_positive_seconds(value: Any) -> None:
    with pytest.raises(InvalidParameterError, match="connect_timeout"):
        validate_positive_seconds(value, "connect_timeout")


def test_deadline_must_be_absolute() -> None:
    assert validate_deadline(1_700_000_600.0) == 1_700_000_600.0
    with pytest.raises(InvalidParameterError, match="not a duration"):
        validate_deadline(600)


def test_bool_rejects_strings() -> None:
    assert validate_bool(False, "wake") is False
    with pytest.raises(InvalidParameterError, match="wake"):
        validate_bool("false", "wake")


def test_port_and_endpoint_url() -> None:
    assert validate_port(5432) == 5432
    with pytest.raises(InvalidParameterError, match="port"):
        validate_port(0)
    assert validate_endpoint_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    with pytest.raises(InvalidParameterError, match="endpoint_url"):
        validate_endpoint_url("127.0.0.1:5000")


def test_parse_dsn() -> None:
    parsed = parse_dsn("postgresql://app@db.example.com:6543/sales")
    assert (parsed.engine, parsed.user, parsed.host, parsed.port, parsed.database) == (
        "postgresql",
        "app",
        "db.example.com",
        6543,
        "sales",
    )
    cluster_endpoint = parse_dsn("mysql://app@/sales")
    assert cluster_endpoint.engine == "mysql" and cluster_endpoint.host is None


def test_dsn_errors_never_show_the_password() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_dsn("oracle://app:hunter2@db/sales")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(InvalidParameterError) as caught:
        parse_dsn("postgresql://app:hunter2@db:notaport/sales")
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(parse_dsn("postgresql://app:hunter2@db/sales"))

"""Every parameter of wake_and_wait / wake_and_wait_sync with bad input: a clear error, no I/O.

Complements tests/core/test_api.py (one case per parameter against a dead endpoint) with empty,
whitespace, wrong-type and out-of-range values of every parameter, against a running emulator
whose counters prove that nothing was called or connected before the error. Passwords are never
echoed in the message.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_aurora_wake.core.api import wake_and_wait, wake_and_wait_sync
from airflow_aurora_wake.core.errors import InvalidParameterError

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

ARN = "arn:aws:rds:us-east-1:123456789012:cluster:sales"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales-login"
PASSWORD = "not-to-be-echoed-8812"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec

    with AuroraEmulator([ClusterSpec("sales")]) as emu:
        yield emu


@pytest.fixture
def base(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name, value in emulator.aws_env().items():
        monkeypatch.setenv(name, value)
    return {
        "db_cluster_identifier": "sales",
        "region_name": emulator.region,
        "endpoint_url": emulator.endpoint_url,
        "dsn": "postgresql://app@/test",
        "timeout": 30,
    }


def io(emulator: Any) -> tuple[int, int]:
    counters = emulator.counters()
    return sum(counters["rds_calls"].values()), sum(counters["connection_attempts"].values())


BAD = {
    "db_cluster_identifier": [
        "",
        "  ",
        " sales",
        42,
        None,
        ["sales"],
        "x" * 64,
        "arn:aws:rds:us-east-1:1:cluster:s",
    ],
    "region_name": ["", " ", "us_east_1", "Mars", 1],
    "endpoint_url": ["", " ", "localhost:5000", "ftp://x", 5],
    "dsn": ["", " ", "oracle://app@db/x", "postgresql://app@db:notaport/x", 7, "postgresql://app@db/a/b"],
    "engine": ["", "oracle", "POSTGRES", 1],
    "host": ["", " ", " db", 3],
    "port": [0, -1, 65536, "5432", 54.32, True],
    "user": ["", " ", 9],
    "password": [1, ["pw"]],
    "database": ["", " ", " test", 4],
    "iam": ["true", 1, None],
    "ssl": [5, "bogus", ["require"]],
    "probe": ["", " connection", "CONNECTION", None, "http"],
    "data_api_secret_arn": ["", "sales-login", 3],
    "timeout": [0, -1, "600", None, math.nan, math.inf, True],
    "connect_timeout": [0, -0.5, "30", None, math.nan],
    "describe_interval": [0, -1, "10", None, math.inf],
    "stopped_grace": [-1, "60", None, math.nan],
    "wake": ["false", 0, None],
    "start_if_stopped": ["yes", 1, None],
    "capacity": [0, 3, -2, 2.5, "8", True],
}
CASES = [(parameter, value) for parameter, values in BAD.items() for value in values]


@pytest.mark.parametrize(("parameter", "value"), CASES, ids=[f"{p}={v!r}" for p, v in CASES])
async def test_bad_parameter_fails_before_any_io(
    emulator: Any, base: dict[str, Any], parameter: str, value: object
) -> None:
    before = io(emulator)
    arguments = {**base, parameter: value}
    with pytest.raises(InvalidParameterError) as caught:
        await wake_and_wait(**arguments)
    error = caught.value
    # The parameter named is the one given (a dsn's user is reported as user, a bad scheme as dsn).
    assert error.parameter == parameter or (parameter == "dsn" and error.parameter == "engine"), str(error)
    assert error.fix and str(error).startswith(f"invalid {error.parameter}=")
    assert io(emulator) == before


def test_password_is_never_echoed(emulator: Any, base: dict[str, Any]) -> None:
    for arguments in (
        {**base, "password": PASSWORD, "iam": True},
        {**base, "dsn": f"postgresql://app:{PASSWORD}@db:notaport/x"},
        {**base, "dsn": f"oracle://app:{PASSWORD}@db/x"},
    ):
        with pytest.raises(InvalidParameterError) as caught:
            wake_and_wait_sync(**arguments)
        assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value.value)


@pytest.mark.parametrize("parameter", ["db_cluster_identifier", "timeout", "probe", "port"])
def test_the_sync_entry_point_validates_the_same(emulator: Any, base: dict[str, Any], parameter: str) -> None:
    before = io(emulator)
    bad = {"db_cluster_identifier": " sales", "timeout": -1, "probe": "ping", "port": 0}[parameter]
    with pytest.raises(InvalidParameterError) as caught:
        wake_and_wait_sync(**{**base, parameter: bad})
    assert caught.value.parameter == parameter
    assert io(emulator) == before


def test_a_cluster_arn_gives_its_name_and_region_and_conflicts_are_errors(base: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        wake_and_wait_sync(**{**base, "db_cluster_identifier": ARN, "region_name": "eu-west-1"})
    assert caught.value.parameter == "region_name" and "us-east-1" in str(caught.value)


def test_ssl_context_is_accepted_by_validation(emulator: Any, base: dict[str, Any]) -> None:
    # Validation passes (an SSLContext is a valid setting); the wait then fails for another reason.
    context = ssl.create_default_context()
    with pytest.raises(InvalidParameterError) as caught:
        wake_and_wait_sync(**{**base, "ssl": context, "timeout": -1})
    assert caught.value.parameter == "timeout"

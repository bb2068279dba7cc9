"""Shared machinery of the operator's and the sensor's bad-input tests.

A case is (parameter, value, how): ``direct`` passes the value to the constructor; ``template``
passes ``"{{ params.v }}"`` and renders it through Airflow's real Jinja rendering
(``render_template_fields``) with ``params.v`` set to the value, as text (Airflow's default,
so ``None`` becomes ``"None"``) or, for ``native``, in a DAG with
``render_template_as_native_obj=True``. Each must end in an ``InvalidParameterError`` naming
the parameter and saying what to pass, at construction or in ``execute``, before any AWS call
or database connection (the emulator's counters do not move).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from airflow_support import set_aws_connection, set_connection, set_database_connection

from airflow_aurora_wake.compat import DAG
from airflow_aurora_wake.core.errors import InvalidParameterError

ARN = "arn:aws:rds:us-east-1:123456789012:cluster:sales"
_DAG_IDS = itertools.count()


@pytest.fixture(scope="module")
def quiet_emulator() -> Iterator[Any]:
    """One emulator for the module: a paused cluster nobody should ever reach."""
    from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec

    with AuroraEmulator([ClusterSpec("sales")]) as emu:
        yield emu


@pytest.fixture
def connections(quiet_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """AWS and database connections to the emulator, and two connections of the wrong type."""
    set_aws_connection(monkeypatch, quiet_emulator, "aws_emulator")
    set_database_connection(monkeypatch, "aurora_db", engine="postgresql", user="postgres")
    set_connection(monkeypatch, "http_conn", conn_type="http", host="example.com")
    return quiet_emulator


def io_counts(emu: Any) -> tuple[int, int, int]:
    counters = emu.counters()
    return (
        sum(counters["rds_calls"].values()),
        sum(counters["connection_attempts"].values()),
        sum(counters["data_api_calls"].values()),
    )


def build(cls: type, base: dict[str, Any], parameter: str, value: object, how: str) -> Any:
    """Construct the task with the bad value (directly, or through a template and a render)."""
    kwargs = {**base}
    if how == "direct":
        kwargs[parameter] = value
        return cls(**kwargs)
    assert parameter in cls.template_fields, f"{parameter} is not templated"  # type: ignore[attr-defined]
    kwargs[parameter] = "{{ params.v }}"
    with DAG(
        f"bad_input_{next(_DAG_IDS)}",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        render_template_as_native_obj=how == "native",
    ):
        task = cls(**kwargs)
    task.render_template_fields({"params": {"v": value}})
    return task


def assert_rejected(
    emu: Any, cls: type, base: dict[str, Any], parameter: str, value: object, how: str, execute: Any
) -> InvalidParameterError:
    """The bad value is rejected naming ``parameter`` and a fix, before any I/O."""
    before = io_counts(emu)
    with pytest.raises(InvalidParameterError) as caught:
        execute(build(cls, base, parameter, value, how))
    error = caught.value
    assert error.parameter == parameter, str(error)
    message = str(error)
    assert message.startswith(f"invalid {parameter}=") and error.fix and len(error.fix) > 10, message
    assert io_counts(emu) == before, "the error came after AWS calls or database connections"
    return error

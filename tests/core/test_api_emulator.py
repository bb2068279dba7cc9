"""wake_and_wait against the emulator of sleeping clusters, on both engines.

Each test asserts no false ready: the report's ``ready_at`` is never before the moment the
emulated cluster really became connectable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_aurora_wake.core.api import wake_and_wait
from airflow_aurora_wake.core.cli import EXIT_READY, EXIT_TIMEOUT, add_wait_parser, run_wait
from airflow_aurora_wake.core.errors import ClusterNotFoundError, ClusterStateError, ReadyTimeoutError
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults, Timings

pytestmark = [pytest.mark.emulator, pytest.mark.db]

UPSTREAM_LOGIN = {"aurora-postgresql": "postgresql://postgres@/test", "aurora-mysql": "mysql://root@/test"}
FAST = Timings(
    resume_seconds=2, v1_capacity_seconds=1, v1_connect_extra_seconds=1, start_seconds=2, stop_seconds=1
)


@pytest.fixture
def emulator(
    request: pytest.FixtureRequest, database_server: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AuroraEmulator]:
    engine = "aurora-postgresql" if database_server.engine == "postgresql" else "aurora-mysql"  # type: ignore[attr-defined]
    specs = [
        ClusterSpec("sales", kind="serverless-v2", engine=engine, state="paused", data_api=True),
        ClusterSpec("legacy", kind="serverless-v1", engine=engine, state="paused"),
        ClusterSpec("orders", kind="provisioned", engine=engine, state="stopped"),
    ]
    with AuroraEmulator(specs, timings=FAST) as emu:
        for name, value in emu.aws_env().items():
            monkeypatch.setenv(name, value)
        emu.engine = engine  # type: ignore[attr-defined]
        yield emu


def _common(emu: AuroraEmulator, logs: list[str]) -> dict[str, Any]:
    return {
        "region_name": emu.region,
        "endpoint_url": emu.endpoint_url,
        "dsn": UPSTREAM_LOGIN[emu.engine],  # type: ignore[attr-defined]
        "timeout": 120,
        "connect_timeout": 30,
        "describe_interval": 1,
        "log": logs.append,
    }


def _assert_no_false_ready(emu: AuroraEmulator, name: str, ready_at: float) -> None:
    connectable_at = emu.ready_at(name)
    assert connectable_at is not None
    assert ready_at >= connectable_at


async def test_paused_v2_wakes_on_the_probe_connection(emulator: AuroraEmulator) -> None:
    logs: list[str] = []
    report = await wake_and_wait("sales", **_common(emulator, logs))
    _assert_no_false_ready(emulator, "sales", report.ready_at)
    assert report.kind.value == "serverless-v2" and report.engine == emulator.engine  # type: ignore[attr-defined]
    endpoint = emulator.cluster("sales")
    assert report.endpoint == f"{endpoint.host}:{endpoint.port}"
    assert any(line.startswith("wake: probe-will-wake") for line in logs)
    assert logs[-1].startswith("ready after")
    counters = emulator.counters()
    assert counters["rds_calls"].get("ModifyCurrentDBClusterCapacity", 0) == 0
    assert counters["connection_attempts"]["sales"] >= 1


async def test_paused_v1_is_woken_by_modify_capacity(emulator: AuroraEmulator) -> None:
    logs: list[str] = []
    report = await wake_and_wait("legacy", **_common(emulator, logs))
    _assert_no_false_ready(emulator, "legacy", report.ready_at)
    assert report.kind.value == "serverless-v1"
    assert emulator.counters()["rds_calls"]["ModifyCurrentDBClusterCapacity"] == 1
    assert any("wake: modify-capacity" in line for line in logs)


async def test_stopped_cluster_is_started_and_waited_for(emulator: AuroraEmulator) -> None:
    logs: list[str] = []
    report = await wake_and_wait("orders", **_common(emulator, logs))
    _assert_no_false_ready(emulator, "orders", report.ready_at)
    assert emulator.counters()["rds_calls"]["StartDBCluster"] == 1
    assert any("status starting" in line for line in logs)


async def test_stopped_cluster_without_start_fails_at_once(emulator: AuroraEmulator) -> None:
    with pytest.raises(ClusterStateError, match="asked not to start it"):
        await wake_and_wait("orders", start_if_stopped=False, **_common(emulator, []))
    assert emulator.counters()["rds_calls"].get("StartDBCluster", 0) == 0


async def test_data_api_probe(emulator: AuroraEmulator) -> None:
    user = "postgres" if emulator.engine == "aurora-postgresql" else "root"  # type: ignore[attr-defined]
    secret_arn = emulator.create_secret(user, "")
    options = _common(emulator, [])
    options.pop("dsn")
    report = await wake_and_wait(
        "sales", probe="data-api", data_api_secret_arn=secret_arn, database="test", **options
    )
    _assert_no_false_ready(emulator, "sales", report.ready_at)
    assert report.rds_calls.get("ExecuteStatement", 0) >= 1
    assert emulator.counters()["data_api_calls"]["sales"] >= 1


async def test_unknown_cluster_names_identifier_and_region(emulator: AuroraEmulator) -> None:
    with pytest.raises(ClusterNotFoundError, match=r"'salse' was not found in us-east-1"):
        await wake_and_wait("salse", **_common(emulator, []))


async def test_throttling_does_not_fail_the_wait(emulator: AuroraEmulator) -> None:
    emulator.set_faults(Faults(throttle_fraction=0.5, seed=3))
    report = await wake_and_wait("sales", **_common(emulator, []))
    _assert_no_false_ready(emulator, "sales", report.ready_at)


async def test_timeout_while_resuming_gives_a_diagnosis(emulator: AuroraEmulator) -> None:
    emulator.set_timings("sales", Timings(resume_seconds=60))
    options = _common(emulator, [])
    options.update(timeout=3, connect_timeout=30)
    with pytest.raises(ReadyTimeoutError) as caught:
        await wake_and_wait("sales", **options)
    message = str(caught.value)
    assert "'sales' in us-east-1 was not ready after" in message and "last status 'available'" in message


async def test_shared_waits_make_one_poller(emulator: AuroraEmulator) -> None:
    options = _common(emulator, [])
    reports = await asyncio.gather(
        *(wake_and_wait("sales", wake=False, share_key=("sales", "default"), **options) for _ in range(50))
    )
    for report in reports:
        _assert_no_false_ready(emulator, "sales", report.ready_at)
    counters = emulator.counters()
    # One poller: a handful of describes and connection attempts, not fifty of each.
    assert counters["rds_calls"]["DescribeDBClusters"] < 10
    assert counters["connection_attempts"]["sales"] < 10


def test_cli_wait_prints_json_and_exits_0(
    emulator: AuroraEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_wait_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "wait",
            "sales",
            "--region",
            emulator.region,
            "--endpoint-url",
            emulator.endpoint_url,
            "--dsn",
            UPSTREAM_LOGIN[emulator.engine],
            "--timeout",
            "120",
        ]  # type: ignore[attr-defined]
    )
    assert run_wait(args) == EXIT_READY
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ready"] is True and result["db_cluster_identifier"] == "sales"
    _assert_no_false_ready(emulator, "sales", result["ready_at"])
    assert "ready after" in err


def test_cli_wait_timeout_exits_1(emulator: AuroraEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    emulator.set_timings("sales", Timings(resume_seconds=60))
    parser = argparse.ArgumentParser()
    add_wait_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "wait",
            "sales",
            "--region",
            emulator.region,
            "--endpoint-url",
            emulator.endpoint_url,
            "--dsn",
            UPSTREAM_LOGIN[emulator.engine],
            "--timeout",
            "2",
        ]  # type: ignore[attr-defined]
    )
    assert run_wait(args) == EXIT_TIMEOUT
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result == {**result, "ready": False, "error": "timeout"}

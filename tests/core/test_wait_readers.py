"""wake_and_wait on the writer, the reader endpoint or every instance, on the emulator, both engines.

The writer and tier 0-1 readers pause together; a tier 2-15 reader pauses on its own and takes
longer to resume. "writer" is ready while such a reader still sleeps; "reader" and "all" wait for
it. Every test asserts no false ready: the report's ``ready_at`` is never before the moment each
endpoint it waited on really became connectable in the emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_aurora_wake.core.api import wake_and_wait
from airflow_aurora_wake.core.cli import EXIT_MISCONFIGURED, EXIT_READY, add_wait_parser, run_wait
from airflow_aurora_wake.core.errors import ClusterStateError, InvalidParameterError, ReadyTimeoutError
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, ReaderSpec, Timings

pytestmark = [pytest.mark.emulator, pytest.mark.db]

LOGIN = {"aurora-postgresql": "postgresql://postgres@/test", "aurora-mysql": "mysql://root@/test"}
TIMINGS = Timings(resume_seconds=1.0, reader_resume_extra_seconds=1.5, start_seconds=2.0, stop_seconds=1.0)
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"


@pytest.fixture
def emulator(database_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuroraEmulator]:
    engine = "aurora-postgresql" if database_server.engine == "postgresql" else "aurora-mysql"
    specs = [
        # The writer, a tier-1 reader (pauses with it) and a tier-2 reader (pauses on its own).
        ClusterSpec("sales", engine=engine, readers=[ReaderSpec(1), ReaderSpec(2)]),
        # Only a tier-2 reader: the reader endpoint can only lead to it.
        ClusterSpec("reports", engine=engine, readers=[ReaderSpec(2)]),
        ClusterSpec("solo", engine=engine),
        ClusterSpec("orders", kind="provisioned", engine=engine, state="stopped", readers=[ReaderSpec(1)]),
        ClusterSpec("legacy", kind="serverless-v1", engine=engine),
    ]
    with AuroraEmulator(specs, timings=TIMINGS) as emu:
        for name, value in emu.aws_env().items():
            monkeypatch.setenv(name, value)
        emu.engine = engine  # type: ignore[attr-defined]
        yield emu


def _common(emu: AuroraEmulator, logs: list[str] | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "region_name": emu.region,
        "endpoint_url": emu.endpoint_url,
        "dsn": LOGIN[emu.engine],  # type: ignore[attr-defined]
        "timeout": 60,
        "connect_timeout": 30,
        "describe_interval": 0.5,
        "log": (logs if logs is not None else []).append,
        **changes,
    }


def _ready_no_earlier_than(ready_at: float, *connectable_at: float | None) -> None:
    assert all(at is not None for at in connectable_at), connectable_at
    assert ready_at >= max(at for at in connectable_at if at is not None)


async def test_the_writer_is_ready_while_a_tier_two_reader_sleeps(emulator: AuroraEmulator) -> None:
    tier1, tier2 = (reader.identifier for reader in emulator.readers("sales"))
    report = await wake_and_wait("sales", **_common(emulator))

    _ready_no_earlier_than(report.ready_at, emulator.ready_at("sales"))
    endpoint = emulator.cluster("sales")
    assert report.endpoint == f"{endpoint.host}:{endpoint.port}"
    # The tier-1 reader resumed with the writer; the tier-2 reader was not touched.
    assert emulator.instance_status(tier1) == "available"
    assert emulator.instance_status(tier2) == "paused"
    assert not [e for e in emulator.instance_timeline(tier2) if e.event == "resume-requested"]
    # A wait on the writer reports what it always did.
    assert set(report.as_xcom()) == {
        "ready_at", "seconds_waited", "attempts", "rds_calls", "kind", "engine", "endpoint"
    }  # fmt: skip
    assert "DescribeDBInstances" not in report.rds_calls


async def test_the_reader_endpoint_waits_for_a_paused_tier_two_reader(emulator: AuroraEmulator) -> None:
    (reader,) = emulator.readers("reports")
    report = await wake_and_wait("reports", instances="reader", **_common(emulator))

    ready_at = emulator.instance_ready_at(reader.identifier)
    _ready_no_earlier_than(report.ready_at, ready_at)
    cluster = emulator.cluster("reports")
    reader_endpoint = f"{cluster.reader_host}:{cluster.port}"
    assert cluster.reader_host != cluster.host
    xcom = report.as_xcom()
    assert xcom["instances"] == "reader" and xcom["endpoint"] == reader_endpoint
    assert xcom["reached"] == [{"endpoint": reader_endpoint, "role": "reader-endpoint", "instance": None}]
    assert xcom["note"] is None
    # The probe through the reader endpoint resumed the reader itself, a little slower than the writer.
    resume = next(e for e in emulator.instance_timeline(reader.identifier) if e.event == "resume-requested")
    assert resume.detail["cause"] == "connection"
    assert ready_at == pytest.approx(resume.at + TIMINGS.resume_seconds + TIMINGS.reader_resume_extra_seconds)
    # No DescribeDBInstances: the reader endpoint comes with DescribeDBClusters.
    assert set(report.rds_calls) == {"DescribeDBClusters"}


async def test_all_waits_for_every_instance(emulator: AuroraEmulator) -> None:
    readers = emulator.readers("sales")
    logs: list[str] = []
    report = await wake_and_wait("sales", instances="all", **_common(emulator, logs))

    _ready_no_earlier_than(
        report.ready_at,
        emulator.ready_at("sales"),
        *(emulator.instance_ready_at(reader.identifier) for reader in readers),
    )
    assert [emulator.instance_status(reader.identifier) for reader in readers] == ["available", "available"]
    xcom = report.as_xcom()
    reached = {item["instance"]: item["endpoint"] for item in xcom["reached"]}
    writer = emulator.cluster("sales")
    assert reached == {
        "sales-instance-1": f"{writer.host}:{writer.port}",
        **{reader.identifier: f"{reader.host}:{reader.port}" for reader in readers},
    }
    assert {item["role"] for item in xcom["reached"]} == {"instance"}
    assert report.rds_calls["DescribeDBInstances"] >= 1
    assert logs[-1].startswith("ready after")


async def test_all_waits_through_a_start_for_every_instance(emulator: AuroraEmulator) -> None:
    """While the cluster starts no instance serves: the wait probes nothing and describes on."""
    logs: list[str] = []
    report = await wake_and_wait("orders", instances="all", **_common(emulator, logs))

    (reader,) = emulator.readers("orders")
    _ready_no_earlier_than(
        report.ready_at, emulator.ready_at("orders"), emulator.instance_ready_at(reader.identifier)
    )
    assert any(line.startswith("wake: start-db-cluster") for line in logs)
    assert {item["instance"] for item in report.as_xcom()["reached"]} == {
        "orders-instance-1",
        reader.identifier,
    }
    assert report.attempts >= 1


async def test_all_waits_for_an_instance_still_creating(
    database_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = "aurora-postgresql" if database_server.engine == "postgresql" else "aurora-mysql"
    spec = ClusterSpec(
        "restored", engine=engine, state="available", readers=[ReaderSpec(1, creating_seconds=3)]
    )
    with AuroraEmulator([spec], timings=TIMINGS) as emu:
        for name, value in emu.aws_env().items():
            monkeypatch.setenv(name, value)
        emu.engine = engine  # type: ignore[attr-defined]
        state = emu.reader_state("restored-reader-1")
        assert state["status"] == "creating"  # while the cluster says available
        logs: list[str] = []
        # The writer is ready at once; a wait on it does not look at the instances.
        assert (await wake_and_wait("restored", **_common(emu))).ready_at < state["creating_until"]

        report = await wake_and_wait("restored", instances="all", **_common(emu, logs))

        _ready_no_earlier_than(report.ready_at, state["creating_until"])
        assert any("waiting for DB instance restored-reader-1 (creating)" in line for line in logs)
        assert {item["instance"] for item in report.as_xcom()["reached"]} == {
            "restored-instance-1",
            "restored-reader-1",
        }


async def test_all_times_out_naming_the_instance_that_is_not_ready(
    database_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = "aurora-postgresql" if database_server.engine == "postgresql" else "aurora-mysql"
    spec = ClusterSpec(
        "slow", engine=engine, state="available", readers=[ReaderSpec(3, creating_seconds=600)]
    )
    with AuroraEmulator([spec], timings=TIMINGS) as emu:
        for name, value in emu.aws_env().items():
            monkeypatch.setenv(name, value)
        emu.engine = engine  # type: ignore[attr-defined]
        with pytest.raises(ReadyTimeoutError) as caught:
            await wake_and_wait("slow", instances="all", **_common(emu, timeout=3))
    assert "waiting for DB instance slow-reader-1 (creating)" in str(caught.value)


async def test_the_reader_endpoint_of_a_cluster_without_readers_leads_to_the_writer(
    emulator: AuroraEmulator,
) -> None:
    report = await wake_and_wait("solo", instances="reader", **_common(emulator))

    _ready_no_earlier_than(report.ready_at, emulator.ready_at("solo"))
    cluster = emulator.cluster("solo")
    assert cluster.reader_host == cluster.host  # as AWS routes it without a reader
    xcom = report.as_xcom()
    assert xcom["endpoint"] == f"{cluster.host}:{cluster.port}"
    assert "leads to the writer" in xcom["note"] and "has no reader that serves" in xcom["note"]


@pytest.mark.parametrize("instances", ["reader", "all"])
async def test_the_data_api_with_readers_is_refused_before_any_call(
    emulator: AuroraEmulator, instances: str
) -> None:
    with pytest.raises(InvalidParameterError, match="probe='data-api' reaches only the writer"):
        await wake_and_wait(
            "sales",
            **_common(emulator, dsn=None, probe="data-api", data_api_secret_arn=SECRET, instances=instances),
        )
    assert emulator.counters()["rds_calls"] == {}


async def test_an_unknown_choice_is_refused_before_any_call(emulator: AuroraEmulator) -> None:
    with pytest.raises(InvalidParameterError, match="invalid instances='readers'"):
        await wake_and_wait("sales", **_common(emulator, instances="readers"))
    assert emulator.counters()["rds_calls"] == {}


async def test_a_serverless_v1_cluster_has_no_reader_to_wait_for(emulator: AuroraEmulator) -> None:
    with pytest.raises(ClusterStateError, match="instances='writer'"):
        await wake_and_wait("legacy", instances="all", **_common(emulator, wake=False))
    assert emulator.counters()["connection_attempts"]["legacy"] == 0


def test_the_wait_command_waits_on_the_reader_endpoint(
    emulator: AuroraEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_wait_parser(parser.add_subparsers())
    common = ["--endpoint-url", emulator.endpoint_url, "--dsn", LOGIN[emulator.engine], "--timeout", "60"]  # type: ignore[attr-defined]
    args = parser.parse_args(["wait", "reports", "--instances", "reader", *common])
    assert run_wait(args) == EXIT_READY
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["ready"] is True and line["instances"] == "reader"
    assert line["reached"][0]["role"] == "reader-endpoint"
    _ready_no_earlier_than(line["ready_at"], emulator.instance_ready_at("reports-reader-1"))

    data_api = ["--probe", "data-api", "--data-api-secret-arn", SECRET]
    args = parser.parse_args(["wait", "sales", "--instances", "all", *data_api, *common[:2]])
    assert run_wait(args) == EXIT_MISCONFIGURED
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["error"] == "InvalidParameterError" and "--instances" in line["message"]


async def test_waits_on_one_cluster_with_different_instances_never_share(emulator: AuroraEmulator) -> None:
    """Two waits with the same share key but different instances run their own loops."""
    tier2 = emulator.readers("sales")[1].identifier
    writer, every = await asyncio.gather(
        wake_and_wait("sales", share_key="k", **_common(emulator)),
        wake_and_wait("sales", share_key="k", instances="all", **_common(emulator)),
    )
    assert writer.instances == "writer" and every.instances == "all"
    _ready_no_earlier_than(every.ready_at, emulator.instance_ready_at(tier2))

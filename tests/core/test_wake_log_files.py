"""The ``describe-log-files`` wake: a paused v2 cluster woken with no database access.

``DescribeDBLogFiles`` on the writer instance is read-only, resumes a paused Serverless v2
instance (AWS user guide), and answers ``DBInstanceNotReadyFault`` while it is paused (botocore's
model): proof of "paused", which the 28000 login-refusal grace reads through
``ClusterSnapshot.may_be_paused``. The plan picks it only when nothing else can nudge.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from aiobotocore.session import get_session
from caller_words import airflow_words_in
from core_fakes import ScriptedRds, aws_error, provisioned_description, v1_description, v2_description

from airflow_aurora_wake.core.api import wake_and_wait
from airflow_aurora_wake.core.cluster import classify_cluster
from airflow_aurora_wake.core.errors import AwsPermissionError, TransientError, classify_error
from airflow_aurora_wake.core.probes import DatabaseTarget
from airflow_aurora_wake.core.wake import WakeAction, WakeOptions, plan_wake, wake_cluster
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults, Timings

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales-login-AbCdEf"
NUDGE = DatabaseTarget(engine="postgresql", host="127.0.0.1", port=1, user="app")
WRITER = "sales-instance-1"
PG_HBA = 'no pg_hba.conf entry for host "10.0.0.7", user "app", database "app", SSL encryption'


def with_members(description: dict[str, Any], *members: Any) -> dict[str, Any]:
    return {**description, "DBClusterMembers": list(members)}


def writer(name: str = WRITER) -> dict[str, Any]:
    return {"DBInstanceIdentifier": name, "IsClusterWriter": True, "PromotionTier": 1}


def reader(name: str = "sales-instance-2") -> dict[str, Any]:
    return {"DBInstanceIdentifier": name, "IsClusterWriter": False, "PromotionTier": 1}


PAUSABLE = with_members(v2_description(min_capacity=0), reader(), writer())


# --- the writer, the plan (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([reader(), writer()], WRITER),
        ([reader()], None),
        ([], None),
        (["junk", {"IsClusterWriter": True}, {"DBInstanceIdentifier": 7, "IsClusterWriter": True}], None),
    ],
    ids=["writer-among-readers", "readers-only", "no-members", "malformed-members"],
)
def test_the_writer_comes_from_the_cluster_members(members: list[Any], expected: str | None) -> None:
    snapshot = classify_cluster(with_members(v2_description(min_capacity=0), *members))
    assert snapshot.writer_instance == expected
    assert snapshot.seen_paused is False


@pytest.mark.parametrize(
    ("description", "options", "action"),
    [
        (PAUSABLE, WakeOptions(), WakeAction.DESCRIBE_LOG_FILES),
        (PAUSABLE, WakeOptions(nudge_target=NUDGE), WakeAction.NUDGE_CONNECTION),
        (PAUSABLE, WakeOptions(data_api_secret_arn=SECRET), WakeAction.NUDGE_DATA_API),
        (PAUSABLE, WakeOptions(probe_follows=True), WakeAction.PROBE_WILL_WAKE),
        (v2_description(min_capacity=0), WakeOptions(), WakeAction.PROBE_WILL_WAKE),
        (with_members(v2_description(min_capacity=0.5), writer()), WakeOptions(), WakeAction.NONE),
        (with_members(provisioned_description(), writer()), WakeOptions(), WakeAction.NONE),
        (with_members(provisioned_description(status="stopped"), writer()), WakeOptions(), WakeAction.START),
        (v1_description(capacity=0), WakeOptions(), WakeAction.MODIFY_CAPACITY),
    ],
    ids=[
        "nothing-else-can-nudge",
        "a-connection-nudges-instead",
        "the-data-api-nudges-instead",
        "a-probe-follows",
        "no-writer-known",
        "v2-that-cannot-pause",
        "provisioned",
        "stopped",
        "v1",
    ],
)
def test_log_files_are_the_wake_only_when_nothing_else_can_nudge(
    description: dict[str, Any], options: WakeOptions, action: WakeAction
) -> None:
    plan = plan_wake(classify_cluster(description), options)
    assert plan.action is action
    assert airflow_words_in(plan.detail) == [], plan.detail  # the CLI and the API show it too
    if action is WakeAction.DESCRIBE_LOG_FILES:
        assert f"log files of its writer instance {WRITER}" in plan.detail


# --- what the answers mean ----------------------------------------------------------------------


def test_the_not_ready_fault_is_proof_of_paused_not_a_failure() -> None:
    exc = aws_error("DBInstanceNotReady", operation="DescribeDBLogFiles")
    assert type(exc).__name__ == "DBInstanceNotReadyFault"  # botocore's modelled class
    verdict = classify_error(exc, where="rds:DescribeDBLogFiles", cluster="sales")
    assert verdict.retry and verdict.proves_paused and not verdict.throttled
    denied = classify_error(
        aws_error("AccessDenied", status=403, operation="DescribeDBLogFiles"),
        where="rds:DescribeDBLogFiles",
        cluster="sales",
    )
    assert not denied.retry and not denied.proves_paused
    assert isinstance(denied.error, AwsPermissionError) and denied.error.action == "rds:DescribeDBLogFiles"


@pytest.mark.parametrize("seen_paused", [False, True], ids=["no-proof", "proof-of-paused"])
def test_proof_of_paused_opens_the_28000_grace(seen_paused: bool) -> None:
    # A describe that says the cluster cannot pause (its floor raised above 0 while its writer
    # still resumes): only the proof from the log-files answer says a resume can explain 28000.
    snapshot = dataclasses.replace(
        classify_cluster(with_members(v2_description(min_capacity=0.5), writer())), seen_paused=seen_paused
    )
    assert snapshot.may_be_paused is seen_paused
    verdict = classify_error(
        asyncpg.exceptions.InvalidAuthorizationSpecificationError(PG_HBA),
        where="postgresql",
        may_be_paused=snapshot.may_be_paused,
        grace_spent={"login-refused": 1.0},
    )
    assert verdict.retry is seen_paused
    assert (verdict.grace == "login-refused") is seen_paused


async def test_a_log_files_call_that_never_answers_is_cut_at_the_wake_s_deadline() -> None:
    class Unanswering(ScriptedRds):
        async def describe_db_log_files(self, **kwargs: Any) -> dict[str, Any]:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    rds = Unanswering([PAUSABLE])
    # The outer bound only guards against a hang; the wake's own budget ends it.
    with pytest.raises(TransientError, match="DescribeDBLogFiles"):
        await asyncio.wait_for(wake_cluster("sales", WakeOptions(), rds_client=rds, retry_seconds=0.5), 60)


# --- against the emulator -----------------------------------------------------------------------

FAST = Timings(resume_seconds=2, start_seconds=2, stop_seconds=1)
DSN = {"postgresql": "postgresql://postgres@/test", "mysql": "mysql://root@/test"}
ENGINES = {"postgresql": "aurora-postgresql", "mysql": "aurora-mysql"}


@contextlib.contextmanager
def emulator_of(engine: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuroraEmulator]:
    """A paused v2, an awake v2 and an always-on provisioned cluster in front of ``engine``."""
    specs = [
        ClusterSpec("sales", engine=ENGINES[engine], state="paused"),
        ClusterSpec("awake", engine=ENGINES[engine], state="available"),
        ClusterSpec("always-on", engine=ENGINES[engine], kind="provisioned", state="available"),
    ]
    with AuroraEmulator(specs, timings=FAST) as emulator:
        for name, value in emulator.aws_env().items():
            monkeypatch.setenv(name, value)
        yield emulator


@pytest.fixture
def dsn(database_server: Any) -> str:
    """The login of each real database server in turn."""
    return DSN[database_server.engine]


@pytest.fixture
def emu(database_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuroraEmulator]:
    with emulator_of(database_server.engine, monkeypatch) as emulator:
        yield emulator


@pytest.fixture
def pg_emu(postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuroraEmulator]:
    with emulator_of("postgresql", monkeypatch) as emulator:
        yield emulator


@pytest.fixture
async def rds(emu: AuroraEmulator) -> AsyncIterator[Any]:
    async with get_session().create_client("rds", endpoint_url=emu.endpoint_url) as client:
        yield client


def causes(emu: AuroraEmulator, identifier: str) -> list[str]:
    return [e.detail["cause"] for e in emu.timeline(identifier) if e.event == "resume-requested"]


def log_file_calls(emu: AuroraEmulator, identifier: str) -> int:
    return int(emu.counters()["rds_calls_by_cluster"].get(identifier, {}).get("DescribeDBLogFiles", 0))


@pytest.mark.emulator
@pytest.mark.db
async def test_a_paused_writer_is_woken_and_proven_paused(emu: AuroraEmulator, rds: Any) -> None:
    result = await wake_cluster("sales", WakeOptions(), rds_client=rds)
    assert result.action is WakeAction.DESCRIBE_LOG_FILES and result.instance_paused is True
    assert "was paused (DBInstanceNotReadyFault)" in result.detail
    assert result.rds_calls == {"DescribeDBClusters": 1, "DescribeDBLogFiles": 1}
    assert causes(emu, "sales") == ["log-files"]
    # The proof travels with the snapshot to the 28000 rule.
    assert result.snapshot is not None and result.snapshot.seen_paused and result.snapshot.may_be_paused
    assert result.as_xcom()["action"] == "describe-log-files"


@pytest.mark.emulator
@pytest.mark.db
async def test_an_awake_writer_answers_and_nothing_resumes(emu: AuroraEmulator, rds: Any) -> None:
    result = await wake_cluster("awake", WakeOptions(), rds_client=rds)
    assert result.action is WakeAction.DESCRIBE_LOG_FILES and result.instance_paused is False
    assert "was not paused" in result.detail
    assert causes(emu, "awake") == []


@pytest.mark.emulator
@pytest.mark.db
async def test_a_provisioned_cluster_gets_no_log_files_call(emu: AuroraEmulator, rds: Any) -> None:
    result = await wake_cluster("always-on", WakeOptions(), rds_client=rds)
    assert result.action is WakeAction.NONE and result.instance_paused is None
    assert log_file_calls(emu, "always-on") == 0 and causes(emu, "always-on") == []


@pytest.mark.emulator
@pytest.mark.db
async def test_access_denied_fails_at_once_naming_the_action(emu: AuroraEmulator, rds: Any) -> None:
    emu.set_faults(Faults(deny_actions=frozenset({"rds:DescribeDBLogFiles"})))
    with pytest.raises(AwsPermissionError, match="grant rds:DescribeDBLogFiles"):
        await wake_cluster("sales", WakeOptions(), rds_client=rds)
    assert log_file_calls(emu, "sales") == 1  # not retried
    assert causes(emu, "sales") == []


@pytest.mark.emulator
@pytest.mark.db
async def test_wake_and_wait_leaves_the_wake_to_its_probe_and_needs_no_log_files_permission(
    emu: AuroraEmulator, dsn: str
) -> None:
    # The probe that follows the wake wakes the cluster itself: no DescribeDBLogFiles, so a
    # policy without rds:DescribeDBLogFiles works as before.
    emu.set_faults(Faults(deny_actions=frozenset({"rds:DescribeDBLogFiles"})))
    logs: list[str] = []
    report = await wake_and_wait(
        "sales", endpoint_url=emu.endpoint_url, dsn=dsn, timeout=120, describe_interval=1, log=logs.append
    )
    ready_at = emu.ready_at("sales")
    assert ready_at is not None and report.ready_at >= ready_at  # no false ready
    assert causes(emu, "sales") == ["connection"]
    assert log_file_calls(emu, "sales") == 0
    assert any(line.startswith("wake: probe-will-wake") for line in logs)

"""The writer's proof of "paused" reaches the 28000 rule during a wait (issue 13).

A warm window raises a paused Serverless v2 cluster's ``MinCapacity`` from 0: the scaling change
starts its resume, but from then on ``DescribeDBClusters`` says the cluster cannot pause, so the
28000 "no pg_hba.conf entry ... SSL encryption" its front end gives during the resume used to
fail the wait at once. The wait now asks ``DescribeDBLogFiles`` on the writer, once per
describe: ``DBInstanceNotReadyFault`` proves it paused or resuming, and the refusal is waited out
under the 28000 grace window; a writer that lists its log files is awake, and the refusal fails
at once as before; a denied ``rds:DescribeDBLogFiles`` is no evidence, and the failure says what
granting it would give.

The emulator's resumes here last far longer than any test: the test ends a resume itself
(``emu.wake``) once the wait has shown that it waits, so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import pytest
from aiobotocore.session import get_session
from airflow_support import until
from caller_words import airflow_words_in
from core_fakes import (
    FakeResources,
    ScriptedProbe,
    ScriptedRds,
    VirtualTimeLoop,
    aws_error,
    run_virtual,
    v2_description,
)

from airflow_aurora_wake.core.api import SessionWaitResources, build_wait_settings, wake_and_wait
from airflow_aurora_wake.core.errors import (
    LOGIN_REFUSAL_WINDOW,
    AwsPermissionError,
    DatabaseAuthenticationError,
)
from airflow_aurora_wake.core.hold import HoldRequest, hold_cluster
from airflow_aurora_wake.core.wait import CheckOutcome, WaitRequest, check_ready_once, wait_until_ready
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults, Timings

DSN = "postgresql://postgres@/test"
NO_SUCH_ROLE = "aurora_wake_nobody"
#: The clause a denied DescribeDBLogFiles adds to the refusal's message.
CLAUSE = "granting rds:DescribeDBLogFiles lets the wait tell a resuming instance apart"
DENY_LOG_FILES = Faults(deny_actions=frozenset({"rds:DescribeDBLogFiles"}))
#: Longer than any test: a resume here ends only when the test ends it.
ENDLESS = Timings(resume_seconds=3600)
#: A hang guard only; each wait ends on its own well before.
OUTER = 60.0


# --- on the emulator, with the real PostgreSQL server --------------------------------------------


@pytest.fixture
def emu(postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuroraEmulator]:
    """A paused v2 cluster whose front end answers 28000 while it resumes, and an awake v2 cluster
    that cannot pause."""
    specs = [
        ClusterSpec("sales", state="paused", resume_answer="pg-hba-refusal", timings=ENDLESS),
        ClusterSpec("awake", state="available", min_capacity=0.5, max_capacity=4),
    ]
    with AuroraEmulator(specs) as emulator:
        for name, value in emulator.aws_env().items():
            monkeypatch.setenv(name, value)
        yield emulator


@pytest.fixture
async def rds(emu: AuroraEmulator) -> AsyncIterator[Any]:
    async with get_session().create_client("rds", endpoint_url=emu.endpoint_url) as client:
        yield client


async def raise_the_floor(emu: AuroraEmulator, rds: Any) -> None:
    """Hold "sales" at 4 ACUs, as the warm window does: its resume starts, and RDS now says it
    cannot pause."""
    await hold_cluster(rds, "sales", HoldRequest("window-run", min_capacity=4, hold_for=3600))
    scaling = emu.boto3_client("rds").describe_db_clusters(DBClusterIdentifier="sales")["DBClusters"][0]
    assert scaling["ServerlessV2ScalingConfiguration"]["MinCapacity"] == 4.0
    assert emu.status("sales") == "resuming"


def log_file_calls(emu: AuroraEmulator, identifier: str) -> int:
    return int(emu.counters()["rds_calls_by_cluster"].get(identifier, {}).get("DescribeDBLogFiles", 0))


def describes(emu: AuroraEmulator, identifier: str) -> int:
    return int(emu.counters()["rds_calls_by_cluster"].get(identifier, {}).get("DescribeDBClusters", 0))


def refusals(emu: AuroraEmulator, identifier: str) -> int:
    return int(emu.counters()["resume_answers"].get(identifier, 0))


def causes(emu: AuroraEmulator, identifier: str) -> list[str]:
    return [e.detail["cause"] for e in emu.timeline(identifier) if e.event == "resume-requested"]


def wait_for(identifier: str, emu: AuroraEmulator, logs: list[str], **changes: Any) -> Any:
    parameters: dict[str, Any] = {"dsn": DSN, "describe_interval": 0.5, **changes}
    return wake_and_wait(
        identifier, endpoint_url=emu.endpoint_url, wake=False, timeout=OUTER, log=logs.append, **parameters
    )


async def check(
    emu: AuroraEmulator, grace_since: dict[str, float] | None = None, **changes: Any
) -> CheckOutcome:
    """One check of the sensor's (before deferring, or a poke), through the plain-Python resources."""
    settings = build_wait_settings("sales", endpoint_url=emu.endpoint_url, dsn=DSN, **changes)
    resources = SessionWaitResources(settings, get_session())
    return await check_ready_once(settings.request, resources, grace_since=grace_since)


@pytest.mark.emulator
@pytest.mark.db
async def test_a_raised_floor_s_resume_is_waited_out_on_the_writer_s_evidence(
    emu: AuroraEmulator, rds: Any
) -> None:
    await raise_the_floor(emu, rds)
    logs: list[str] = []
    waiting = asyncio.create_task(wait_for("sales", emu, logs))
    # The refusal came, the writer was asked, and the wait went on waiting...
    proven = "the writer is paused or resuming"
    await until(lambda: waiting.done() or any(proven in line for line in logs), OUTER)
    assert not waiting.done() and refusals(emu, "sales") >= 1
    # ...through two more describes, which cannot tell and must not drop the proof.
    described = describes(emu, "sales")
    await until(lambda: waiting.done() or describes(emu, "sales") >= described + 2, OUTER)
    assert not waiting.done()
    emu.wake("sales")  # the resume ends
    report = await asyncio.wait_for(waiting, OUTER)

    ready_at = emu.ready_at("sales")
    assert ready_at is not None and report.ready_at >= ready_at  # no false ready
    # Proven once, kept for the rest of the wait: the later describes did not drop it, so it was
    # never asked again.
    assert report.rds_calls["DescribeDBLogFiles"] == 1 == log_file_calls(emu, "sales")
    assert causes(emu, "sales") == ["modify-db-cluster"]  # the question did not restart the resume


@pytest.mark.emulator
@pytest.mark.db
async def test_the_sensor_s_checks_ask_the_writer_each_time(emu: AuroraEmulator, rds: Any) -> None:
    await raise_the_floor(emu, rds)
    first = await check(emu)
    assert not first.ready and first.retry_reason is not None, first
    assert "the writer is paused or resuming" in first.retry_reason
    assert first.rds_calls == {"DescribeDBClusters": 1, "DescribeDBLogFiles": 1}
    assert set(first.grace_since) == {"login-refused"}  # the window runs from the first refusal

    # The next poke asks again (nothing but the window's start is carried between checks).
    second = await check(emu, first.grace_since)
    assert not second.ready and second.grace_since == first.grace_since
    assert second.rds_calls == {"DescribeDBClusters": 1, "DescribeDBLogFiles": 1}

    emu.wake("sales")
    ready = await check(emu, second.grace_since)
    assert ready.ready and ready.report is not None
    assert ready.rds_calls == {"DescribeDBClusters": 1}  # a probe that passes asks nothing
    assert log_file_calls(emu, "sales") == 2


@pytest.mark.emulator
@pytest.mark.db
@pytest.mark.parametrize("path", ["wait", "check"])
async def test_a_denied_log_files_call_fails_at_once_naming_the_permission(
    emu: AuroraEmulator, rds: Any, path: str
) -> None:
    await raise_the_floor(emu, rds)
    emu.set_faults(DENY_LOG_FILES)
    with pytest.raises(DatabaseAuthenticationError) as caught:
        if path == "wait":
            await asyncio.wait_for(wait_for("sales", emu, []), OUTER)
        else:
            await check(emu)
    error = caught.value
    # The refusal is the failure, not the permission the user never asked to use.
    assert not isinstance(error, AwsPermissionError)
    message = str(error)
    assert "so it is awake" in message and message.endswith(CLAUSE), message
    assert "Two causes" not in message
    assert airflow_words_in(message) == [], message  # the CLI and the API show it too
    assert emu.status("sales") == "resuming"  # failed at once, not waited out
    assert log_file_calls(emu, "sales") == 1


@pytest.mark.emulator
@pytest.mark.db
@pytest.mark.parametrize("path", ["wait", "check"])
async def test_a_real_28000_from_an_awake_cluster_still_fails_at_once(emu: AuroraEmulator, path: str) -> None:
    # The real server refuses a role that does not exist with 28000: not the answer a resume
    # gives, so the writer is not even asked.
    dsn = f"postgresql://{NO_SUCH_ROLE}@/test"
    with pytest.raises(DatabaseAuthenticationError, match="so it is awake") as caught:
        if path == "wait":
            await asyncio.wait_for(wait_for("awake", emu, [], dsn=dsn), OUTER)
        else:
            settings = build_wait_settings("awake", endpoint_url=emu.endpoint_url, dsn=dsn)
            await check_ready_once(settings.request, SessionWaitResources(settings, get_session()))
    assert NO_SUCH_ROLE in str(caught.value) and CLAUSE not in str(caught.value)
    assert log_file_calls(emu, "awake") == 0


# --- the answers the emulator cannot give, scripted (virtual time) -----------------------------
#
# This machine's PostgreSQL trusts every login from 127.0.0.1, so no awake server here answers
# "no pg_hba.conf entry"; and the emulator answers every DescribeDBLogFiles. A scripted probe and
# RDS client give those answers to the same wait loop.

WRITER = "sales-instance-1"
PG_HBA = 'no pg_hba.conf entry for host "10.0.0.7", user "app", database "app", SSL encryption'
#: A cluster whose floor is above 0 (it cannot pause), with its writer known.
RAISED_FLOOR = {
    **v2_description(min_capacity=4),
    "DBClusterMembers": [{"DBInstanceIdentifier": WRITER, "IsClusterWriter": True, "PromotionTier": 1}],
}
LISTED = None  # a DescribeDBLogFiles answer that lists the log files: the writer is awake


def not_ready() -> Exception:
    return aws_error("DBInstanceNotReady", operation="DescribeDBLogFiles")


def throttled() -> Exception:
    return aws_error("Throttling", "Rate exceeded", operation="DescribeDBLogFiles")


class LogFilesRds(ScriptedRds):
    """A scripted RDS client that also answers ``DescribeDBLogFiles``: each call takes the next
    scripted answer (the last repeats; ``LISTED``: the log files)."""

    def __init__(
        self,
        answers: list[Any],
        log_files: list[BaseException | None],
        on_proof: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(answers)
        self.log_files = log_files
        self.log_file_times: list[float] = []
        self.on_proof = on_proof  # called when an answer proves the writer paused

    async def describe_db_log_files(self, *, DBInstanceIdentifier: str) -> dict[str, Any]:
        assert DBInstanceIdentifier == WRITER
        self.log_file_times.append(asyncio.get_running_loop().time())
        answer = self.log_files.pop(0) if len(self.log_files) > 1 else self.log_files[0]
        if answer is None:
            return {"DescribeDBLogFiles": [{"LogFileName": "error/postgresql.log"}]}
        if "NotReady" in type(answer).__name__ and self.on_proof is not None:
            self.on_proof()
        raise answer


def refused(times: int) -> list[BaseException]:
    return [asyncpg.exceptions.InvalidAuthorizationSpecificationError(PG_HBA) for _ in range(times)]


def wait(loop: VirtualTimeLoop, rds: LogFilesRds, logs: list[str] | None = None) -> Any:
    return wait_until_ready(
        WaitRequest("sales", "us-east-1"),
        FakeResources(rds),
        deadline=loop.wall() + 600,
        log=(logs if logs is not None else []).append,
        clock=loop.wall,
    )


def asked_once_per_describe(rds: LogFilesRds) -> bool:
    """Between two DescribeDBLogFiles calls there was a describe (so never twice per describe)."""
    calls = rds.log_file_times
    return all(
        any(before < at <= after for at in rds.describe_times) for before, after in itertools.pairwise(calls)
    )


def test_an_awake_writer_s_pg_hba_refusal_fails_at_once(scripted_probe: ScriptedProbe) -> None:
    scripted_probe.errors = refused(1)
    rds = LogFilesRds([RAISED_FLOOR], [LISTED])
    with pytest.raises(DatabaseAuthenticationError, match="so it is awake") as caught:
        run_virtual(lambda loop: wait(loop, rds))
    assert CLAUSE not in str(caught.value) and "Two causes" not in str(caught.value)
    assert len(scripted_probe.attempts) == 1 and len(rds.log_file_times) == 1


def test_an_unanswered_question_is_asked_again_after_the_next_describe(scripted_probe: ScriptedProbe) -> None:
    # Throttled twice, then the proof: until then the refusal is tolerated under its window, and
    # the writer is asked at most once per describe, whatever the number of refused probes. The
    # resume ends three refusals after the proof.
    scripted_probe.errors = refused(10_000)

    def resume_ends_soon() -> None:
        scripted_probe.errors = refused(3)

    rds = LogFilesRds([RAISED_FLOOR], [throttled(), throttled(), not_ready()], on_proof=resume_ends_soon)
    logs: list[str] = []
    report = run_virtual(lambda loop: wait(loop, rds, logs))
    assert report.attempts == len(scripted_probe.attempts)
    assert len(rds.log_file_times) == 3 == report.rds_calls["DescribeDBLogFiles"]
    assert asked_once_per_describe(rds)
    assert any("DescribeDBLogFiles did not answer" in line for line in logs)


def test_a_question_that_is_never_answered_is_bounded_by_the_refusal_window(
    scripted_probe: ScriptedProbe,
) -> None:
    scripted_probe.errors = refused(10_000)
    rds = LogFilesRds([RAISED_FLOOR], [throttled()])
    with pytest.raises(DatabaseAuthenticationError, match="Two causes"):
        run_virtual(lambda loop: wait(loop, rds))
    tried = scripted_probe.attempts
    assert tried[-1] - tried[0] >= LOGIN_REFUSAL_WINDOW
    assert tried[-2] - tried[0] < LOGIN_REFUSAL_WINDOW
    assert asked_once_per_describe(rds)


def test_a_proof_keeps_the_refusal_waited_out_until_its_window_ends(scripted_probe: ScriptedProbe) -> None:
    # The proof does not make a real pg_hba problem wait forever: the window still ends it.
    scripted_probe.errors = refused(10_000)
    rds = LogFilesRds([RAISED_FLOOR], [not_ready(), LISTED])
    with pytest.raises(DatabaseAuthenticationError, match="Two causes"):
        run_virtual(lambda loop: wait(loop, rds))
    assert len(rds.log_file_times) == 1  # proven once, never asked again

"""Every AWS call is bounded by the caller's deadline, also against an endpoint that never answers.

The "black hole" accepts TCP connections and never sends a byte: what a dropped route, a
stalled proxy or a firewall that swallows packets looks like to botocore, whose own timeouts
(60 s per read, several attempts) would hold a call for minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from aiobotocore.session import get_session

from airflow_aurora_wake.core.api import SessionWaitResources, build_wait_settings
from airflow_aurora_wake.core.cli import EXIT_TIMEOUT
from airflow_aurora_wake.core.errors import TransientError
from airflow_aurora_wake.core.wait import check_ready_once
from airflow_aurora_wake.core.wake import WakeOptions, wake_cluster

#: A hang guard only: the bounds under test are seconds; a regression hangs for minutes.
HANG_GUARD = 120


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.mark.timeout(HANG_GUARD)
@pytest.mark.usefixtures("fake_credentials")
async def test_the_check_before_deferring_ends_within_its_budget(black_hole: str) -> None:
    settings = build_wait_settings("sales", region_name="us-east-1", endpoint_url=black_hole, user="app")
    resources = SessionWaitResources(settings, get_session())
    outcome = await check_ready_once(settings.request, resources, budget=1.0)
    assert not outcome.ready
    assert outcome.retry_reason == "no answer within 1 s"


@pytest.mark.timeout(HANG_GUARD)
@pytest.mark.usefixtures("fake_credentials")
async def test_the_wake_gives_up_when_its_budget_is_spent(black_hole: str) -> None:
    session = get_session()
    async with session.create_client("rds", region_name="us-east-1", endpoint_url=black_hole) as rds:
        with pytest.raises(TransientError, match="no answer within"):
            await wake_cluster("sales", WakeOptions(), rds_client=rds, retry_seconds=1.0)


@pytest.mark.timeout(HANG_GUARD)
def test_the_wait_command_times_out_with_exit_1(black_hole: str) -> None:
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PGPASSWORD": "not-used",
    }
    command = [
        sys.executable,
        "-m",
        "airflow_aurora_wake.cli",
        "wait",
        "sales",
        "--region",
        "us-east-1",
        "--endpoint-url",
        black_hole,
        "--dsn",
        "postgresql://app@/test",
        "--timeout",
        "2",
    ]
    finished = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=HANG_GUARD, check=False
    )
    assert finished.returncode == EXIT_TIMEOUT, finished.stderr
    assert '"ready": false' in finished.stdout

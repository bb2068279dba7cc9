"""The secrets sweep itself: it must see a leak wherever the fault suite says it looks."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from faults_support import SecretGuard

from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

pytestmark = [pytest.mark.faults]


@pytest.mark.parametrize("where", ["stdlib", "task-logger", "trigger-logger", "stdout", "evidence"])
def test_the_guard_sees_a_leak(
    where: str, secret_guard: SecretGuard, capsys: pytest.CaptureFixture[str], caplog: Any
) -> None:
    secret = "canary-0123456789"
    secret_guard.watch(secret)
    if where == "stdlib":
        logging.getLogger("botocore.endpoint").debug("sending %s", secret)
    elif where == "task-logger":
        AuroraServerlessWakeOperator(task_id="t", db_cluster_identifier="sales").log.debug("x %s", secret)
    elif where == "trigger-logger":
        AuroraServerlessReadyTrigger(db_cluster_identifier="sales", deadline=2e9).log.debug("x %s", secret)
    elif where == "stdout":
        print(secret)
    else:
        secret_guard.add(RuntimeError(f"boom {secret}"))
    out, err = capsys.readouterr()
    texts = [out, err, caplog.text, *(record.getMessage() for record in caplog.records)]
    assert secret_guard.leaks(texts), f"the guard missed a leak through {where}"
    # Clean up so the guard's own teardown check passes.
    secret_guard.secrets.discard(secret)

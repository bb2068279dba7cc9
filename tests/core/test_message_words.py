"""Every message the core writes fits every caller: no Airflow words, and the fix still named.

The core's errors, hints, decisions and wake details reach the ``wait`` command and the
plain-Python API as they are, and the Airflow adapters too. Each case below builds one message
the way the core does and checks both halves: no word of :data:`caller_words.AIRFLOW_WORDS`,
and the words that say what to do.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError
from caller_words import airflow_words_in
from core_fakes import aws_error, data_api_error, provisioned_description, v1_description, v2_description

from airflow_aurora_wake.core.api import build_wait_settings
from airflow_aurora_wake.core.cluster import ClusterSnapshot, classify_cluster
from airflow_aurora_wake.core.errors import (
    NAME_NOT_FOUND_GRACE,
    AwsPermissionError,
    ClusterNotFoundError,
    ClusterStateError,
    WaitDiagnosis,
    classify_error,
)
from airflow_aurora_wake.core.probes import DatabaseTarget, resolve_data_api_target
from airflow_aurora_wake.core.validation import resolve_cluster
from airflow_aurora_wake.core.wait import Decision, Observation, decide
from airflow_aurora_wake.core.wake import WakeOptions, plan_wake

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales-login-AbCdEf"


def _error_text(build: Callable[[], object]) -> str:
    """The message of the error ``build`` returns or raises, or of the one its verdict or
    decision carries."""
    try:
        result = build()
    except Exception as exc:
        return str(exc)
    error = result if isinstance(result, Exception) else getattr(result, "error", None)
    assert error is not None, f"no error: {result!r}"
    return str(error)


def _stopped_decision(*, stopped_for: float, seen_up: str | None = None) -> Decision:
    snapshot = classify_cluster(provisioned_description(status="stopped"))
    return decide(Observation(snapshot, stopped_grace=60, stopped_for=stopped_for, seen_up=seen_up))


def _name_not_found() -> object:
    gone = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return classify_error(
        gone,
        where="postgresql",
        grace_spent={"name-not-found": NAME_NOT_FOUND_GRACE + 1},
        target="postgresql://app@sales.example:5432/test",
    )


#: (case, what builds the message, the words of the fix it must keep)
ERRORS: list[tuple[str, Callable[[], object], tuple[str, ...]]] = [
    ("not-found", lambda: ClusterNotFoundError("salse", "eu-west-1"), ("cluster identifier", "eu-west-1")),
    ("not-found-default-region", lambda: ClusterNotFoundError("salse", None), ("default region", "region")),
    ("denied", lambda: AwsPermissionError("rds:StartDBCluster"), ("grant rds:StartDBCluster", "credentials")),
    (
        "denied-by-aws",
        lambda: classify_error(aws_error("AccessDenied", "no policy"), where="rds:DescribeDBClusters"),
        ("grant rds:DescribeDBClusters",),
    ),
    (
        "credentials-rejected",
        lambda: classify_error(aws_error("ExpiredToken", "expired"), where="rds:DescribeDBClusters"),
        ("access key", "expiry"),
    ),
    (
        "no-credentials",
        lambda: classify_error(NoCredentialsError(), where="rds:DescribeDBClusters"),
        ("configure AWS credentials",),
    ),
    (
        "partial-credentials",
        lambda: classify_error(
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), where="rds"
        ),
        ("configure AWS credentials",),
    ),
    (
        "no-region",
        lambda: classify_error(NoRegionError(), where="rds:DescribeDBClusters"),
        ("invalid region_name=None", "AWS_DEFAULT_REGION"),
    ),
    (
        "data-api-off",
        lambda: classify_error(
            data_api_error("HttpEndpointNotEnabledException", "not enabled"),
            where="rds-data",
            cluster="sales",
        ),
        ("enable the Data API", "connection instead of the Data API"),
    ),
    (
        "data-api-no-instance",
        lambda: classify_error(
            data_api_error("DatabaseNotFoundException", "no instance"), where="rds-data", cluster="sales"
        ),
        ("add a writer instance",),
    ),
    ("stopping", lambda: ClusterStateError("sales", "stopping"), ("StartDBCluster", "wait again")),
    ("deleting", lambda: ClusterStateError("sales", "deleting"), ("another cluster",)),
    ("failed", lambda: ClusterStateError("sales", "failed"), ("repair or recreate",)),
    (
        "stopped-during-the-wait",
        lambda: _stopped_decision(stopped_for=1, seen_up="available"),
        ("StartDBCluster", "a wake that starts stopped clusters"),
    ),
    (
        "stayed-stopped",
        lambda: _stopped_decision(stopped_for=61),
        ("StartDBCluster", "a wake that starts stopped clusters"),
    ),
    (
        "stopped-and-no-start",
        lambda: plan_wake(
            classify_cluster(provisioned_description(status="stopped")), WakeOptions(start_if_stopped=False)
        ),
        ("asked not to start it", "StartDBCluster"),
    ),
    ("host-gone", _name_not_found, ("database host name",)),
    (
        "arn-in-another-region",
        lambda: resolve_cluster("arn:aws:rds:us-east-1:123456789012:cluster:sales", "eu-west-1"),
        ("invalid region_name='eu-west-1'", "us-east-1"),
    ),
    (
        "data-api-without-secret",
        lambda: resolve_data_api_target(classify_cluster(v2_description()), None, None),
        ("invalid data_api_secret_arn=None", "Secrets Manager secret"),
    ),
    (
        "no-database-user",
        lambda: build_wait_settings("sales", dsn="postgresql:///test"),
        ("invalid user=None", "postgresql://USER@HOST/DB"),
    ),
]


@pytest.mark.parametrize(("build", "fix"), [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_every_error_fits_every_caller(build: Callable[[], object], fix: tuple[str, ...]) -> None:
    message = _error_text(build)
    assert airflow_words_in(message) == [], message
    for words in fix:
        assert words in message, (words, message)


def _diagnosis(**seen: Any) -> WaitDiagnosis:
    return WaitDiagnosis(identifier="sales", region="us-east-1", elapsed=600.0, **seen)


#: (case, what the wait saw, the words of the advice)
DIAGNOSES = [
    ("no-describe", _diagnosis(), "Check the AWS credentials, the region"),
    ("starting", _diagnosis(last_status="starting"), "raise the timeout"),
    ("stopped", _diagnosis(last_status="stopped"), "a wake that starts stopped clusters"),
    (
        "timed-out",
        _diagnosis(last_status="available", last_probe_error="connection timed out"),
        "the connect timeout",
    ),
    (
        "refused",
        _diagnosis(last_status="available", last_probe_error="connection refused"),
        "database host and port",
    ),
    (
        "dns",
        _diagnosis(last_status="available", last_probe_error="DNS name resolution failed"),
        "database host name",
    ),
    ("other", _diagnosis(last_status="available", last_probe_error="57P03 starting up"), "Raise the timeout"),
    ("began-late", _diagnosis(started_late=4.5), "raise the timeout"),
]


@pytest.mark.parametrize(
    ("diagnosis", "advice"), [case[1:] for case in DIAGNOSES], ids=[case[0] for case in DIAGNOSES]
)
def test_every_timeout_diagnosis_fits_every_caller(diagnosis: WaitDiagnosis, advice: str) -> None:
    message = diagnosis.describe()
    assert airflow_words_in(message) == [], message
    assert advice in message, message


_PAUSED_V2 = classify_cluster(v2_description(min_capacity=0))
_NUDGE = DatabaseTarget(engine="postgresql", host="sales.example", port=5432, user="app")

#: (case, the cluster, the options): one plan per action; its detail goes to logs and XCom.
PLANS = [
    ("probe-will-wake", _PAUSED_V2, WakeOptions()),
    ("connection-nudge", _PAUSED_V2, WakeOptions(nudge_target=_NUDGE)),
    ("data-api-nudge", _PAUSED_V2, WakeOptions(data_api_secret_arn=SECRET)),
    ("start-db-cluster", classify_cluster(provisioned_description(status="stopped")), WakeOptions()),
    ("already-waking", classify_cluster(provisioned_description(status="starting")), WakeOptions()),
    ("modify-capacity", classify_cluster(v1_description(capacity=0)), WakeOptions()),
    ("none", classify_cluster(provisioned_description()), WakeOptions()),
]


@pytest.mark.parametrize(
    ("snapshot", "options"), [case[1:] for case in PLANS], ids=[case[0] for case in PLANS]
)
def test_every_wake_detail_fits_every_caller(snapshot: ClusterSnapshot, options: WakeOptions) -> None:
    plan = plan_wake(snapshot, options)
    assert airflow_words_in(plan.detail) == [], plan.detail
    assert plan.snapshot.identifier in plan.detail


def test_a_paused_v2_without_nudge_says_the_readiness_probe_wakes_it() -> None:
    plan = plan_wake(_PAUSED_V2, WakeOptions())
    assert plan.action.value == "probe-will-wake"
    assert "no nudge configured: the readiness probe's first attempt will wake it" in plan.detail

"""Decide retry or fail for any exception a wait meets: :func:`classify_error`.

AWS answers are read by :mod:`.aws`, database driver and network errors by :mod:`.database`;
this module dispatches, owns the grace windows, and :func:`raise_if_fatal` turns a verdict into
the exception to raise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_aurora_wake.core.errors.aws import classify_aws
from airflow_aurora_wake.core.errors.database import classify_database
from airflow_aurora_wake.core.errors.exceptions import (
    AuroraWakeError,
    ErrorVerdict,
)
from airflow_aurora_wake.core.errors.redaction import safe_error_text

__all__ = [
    "GRACE_WINDOWS",
    "LOGIN_REFUSAL_WINDOW",
    "NAME_NOT_FOUND_GRACE",
    "classify_error",
    "raise_if_fatal",
]

#: How long a PostgreSQL 28000 ("no pg_hba.conf entry ... SSL encryption") is waited out on a
#: cluster that may be paused: the front end of a v2 cluster at 0 ACU gives this answer during
#: its resume, at once and again and again, until the resume ends
#: (cyrilgdn/terraform-provider-postgresql#540). Long enough for a deep-sleep resume (30 s and
#: more after 24 h paused; field reports up to 45 s).
LOGIN_REFUSAL_WINDOW = 90.0
#: How long a host name that does not exist (NXDOMAIN) is tolerated: a cluster endpoint just
#: created may not resolve everywhere yet; after that it is a typo or a deleted cluster.
NAME_NOT_FOUND_GRACE = 30.0
#: The grace window of each answer that is either misconfiguration or a passing state.
GRACE_WINDOWS: dict[str, float] = {
    "login-refused": LOGIN_REFUSAL_WINDOW,
    "name-not-found": NAME_NOT_FOUND_GRACE,
}


def classify_error(
    exc: BaseException,
    *,
    where: str,
    may_be_paused: bool = False,
    grace_spent: Mapping[str, float] | None = None,
    cluster: str | None = None,
    region: str | None = None,
    target: str | None = None,
    secrets: Iterable[str | None] = (),
) -> ErrorVerdict:
    """Decide whether ``exc`` can still pass (retry) or must fail the wait now.

    :param exc: the exception raised by an RDS call, a Data API call or a database driver.
    :param where: ``rds:<Action>``, ``rds-data``, ``secretsmanager:GetSecretValue``,
        ``postgresql`` or ``mysql``.
    :param may_be_paused: the cluster may be paused or resuming (v2 with auto-pause, v1 at
        capacity 0): a PostgreSQL ``28000`` "no pg_hba.conf entry" is then waited out for
        :data:`LOGIN_REFUSAL_WINDOW`; elsewhere it fails at once, like every refused login.
    :param grace_spent: per grace window (:data:`GRACE_WINDOWS`), seconds since this wait's
        first answer tolerated under it.
    :param cluster: the cluster identifier, for messages.
    :param region: the region, for messages.
    :param target: a safe description of the database connection (no password), for messages.
    :param secrets: exact secret strings to keep out of the reason text.
    :returns: the verdict; when ``retry`` is False ``error`` is the error to raise (``None``
        means "not an error the core knows: re-raise the original").
    """
    if isinstance(exc, AuroraWakeError):
        return ErrorVerdict(retry=False, reason=safe_error_text(exc, secrets), error=exc)
    if not isinstance(exc, Exception):  # CancelledError, KeyboardInterrupt: never swallowed
        return ErrorVerdict(retry=False, reason=type(exc).__name__)
    aws_verdict = classify_aws(exc, where=where, cluster=cluster, region=region)
    if aws_verdict is not None:
        return aws_verdict
    spent = grace_spent or {}
    # Read at call time, so a test can shorten a window.
    windows = {"login-refused": LOGIN_REFUSAL_WINDOW, "name-not-found": NAME_NOT_FOUND_GRACE}
    grace = {kind: (spent.get(kind, 0.0), window) for kind, window in windows.items()}
    return classify_database(exc, may_be_paused=may_be_paused, grace=grace, target=target, secrets=secrets)


def raise_if_fatal(exc: BaseException, **context: Any) -> ErrorVerdict:
    """Classify ``exc`` and raise it as the core's error unless waiting can still succeed.

    Call it in the ``except`` block that caught ``exc``.

    :param exc: the exception caught.
    :param context: the keyword arguments of :func:`classify_error` (``where`` is required).

    :returns: the verdict, whose ``retry`` is True (``throttled`` and ``reason`` say how to back off).
    :raises AuroraWakeError: the verdict's error, without ``exc`` chained to it (its message
        already says what to fix, and ``exc``'s text may hold a secret).
    :raises BaseException: ``exc`` itself when the core does not know it (a programming error,
        a cancellation).
    """
    verdict = classify_error(exc, **context)
    if verdict.retry:
        return verdict
    if verdict.error is None:
        raise exc
    raise verdict.error from None

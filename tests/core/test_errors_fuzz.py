"""Fuzzing the error classifier: it always says retry or fail, and never raises.

Fed arbitrary botocore ``ClientError``s (any code, HTTP status and message, also malformed
responses), asyncpg errors (every ``PostgresError`` subclass, and arbitrary SQLSTATEs; the
client-side errors), PyMySQL/aiomysql errors of every class with arbitrary errno and message,
and OS errors of every kind, from every place the core calls it. For these families the
verdict is always definite: retry, or fail with the core error to raise (never "unknown").
A known secret embedded in the message never reaches the verdict's reason or the error.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import asyncpg
import pymysql
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aurora_wake.core.errors import AuroraWakeError, ErrorVerdict, classify_error

pytestmark = [pytest.mark.faults]

FUZZ = settings(max_examples=300, derandomize=True, deadline=None)
SECRET = "Sup3r-secret-pw-7731"
WHERE = st.sampled_from(
    [
        "rds:DescribeDBClusters",
        "rds:ModifyCurrentDBClusterCapacity",
        "rds:StartDBCluster",
        "rds-data",
        "postgresql",
        "mysql",
    ]
)
KNOWN_AWS_CODES = [
    "Throttling", "ThrottlingException", "DBClusterNotFoundFault", "AccessDenied", "AccessDeniedException",
    "UnrecognizedClientException", "ExpiredToken", "HttpEndpointNotEnabledException", "BadRequestException",
    "DatabaseResumingException", "ForbiddenException", "DatabaseNotFoundException",
    "InvalidDBClusterCapacityFault", "InvalidParameterValue", "InvalidDBClusterStateFault",
    "InternalFailure", "ServiceUnavailable", "StatementTimeoutException", "InternalServerErrorException",
]  # fmt: skip
MESSAGE = st.text(max_size=40) | st.builds(lambda text: f"{text} password={SECRET}", st.text(max_size=10))


def check(verdict: ErrorVerdict, *, definite: bool = True) -> None:
    assert isinstance(verdict, ErrorVerdict) and isinstance(verdict.retry, bool)
    assert isinstance(verdict.reason, str) and verdict.reason
    if verdict.throttled:
        assert verdict.retry
    if definite and not verdict.retry:
        assert isinstance(verdict.error, AuroraWakeError), verdict
    if verdict.error is not None:
        assert not verdict.retry
        text = str(verdict.error)  # building the message never fails
        assert SECRET not in text, text
    assert SECRET not in verdict.reason, verdict.reason


@FUZZ
@given(
    code=st.sampled_from(KNOWN_AWS_CODES) | st.text(min_size=1, max_size=20),
    status=st.none() | st.integers(min_value=100, max_value=599) | st.text(max_size=3),
    message=st.none() | MESSAGE,
    where=WHERE,
    operation=st.sampled_from(["DescribeDBClusters", "ExecuteStatement", "StartDBCluster"]),
)
def test_any_client_error(code: str, status: Any, message: str | None, where: str, operation: str) -> None:
    response: dict[str, Any] = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    if message is not None:
        response["Error"]["Message"] = message
    error = ClientError(response, operation)  # type: ignore[arg-type]
    check(classify_error(error, where=where, cluster="sales", region="us-east-1", secrets=[SECRET]))


@FUZZ
@given(
    response=st.none()
    | st.dictionaries(
        st.sampled_from(["Error", "ResponseMetadata"]),
        st.none() | st.text(max_size=3) | st.dictionaries(st.text(max_size=4), st.text(max_size=4)),
    ),
    where=WHERE,
)
def test_malformed_client_error_responses(response: Any, where: str) -> None:
    error = ClientError.__new__(ClientError)
    Exception.__init__(error, "malformed")
    error.response = response
    # A malformed response is not a known AWS error: retry/fail, or "unknown" (re-raise) only.
    check(classify_error(error, where=where, secrets=[SECRET]), definite=False)


POSTGRES_ERRORS = sorted(
    {
        cls
        for cls in vars(asyncpg.exceptions).values()
        if isinstance(cls, type) and issubclass(cls, Exception)
    },
    key=lambda cls: cls.__name__,
)


@FUZZ
@given(
    cls=st.sampled_from(POSTGRES_ERRORS),
    sqlstate=st.none() | st.text(alphabet="0123456789ABCDEFPZ", min_size=5, max_size=5),
    message=MESSAGE,
    may_be_paused=st.booleans(),
    refused_for=st.floats(min_value=0, max_value=200),
    where=st.sampled_from(["postgresql", "rds-data"]),
)
def test_any_asyncpg_error(
    cls: type, sqlstate: str | None, message: str, may_be_paused: bool, refused_for: float, where: str
) -> None:
    try:
        error = cls(message)
    except TypeError:
        error = cls.__new__(cls)
        Exception.__init__(error, message)
    if sqlstate is not None:
        # Any SQLSTATE on any class, also ones asyncpg has no class for. (Server notices are
        # immutable; object.__setattr__ gets past that without registering a new class.)
        object.__setattr__(error, "sqlstate", sqlstate)
    target = "'db' (postgresql://app@host:5432/db)"
    verdict = classify_error(
        error,
        where=where,
        may_be_paused=may_be_paused,
        grace_spent={"login-refused": refused_for, "name-not-found": refused_for},
        target=target,
        secrets=[SECRET],
    )
    check(verdict)


MYSQL_ERRORS = [
    pymysql.err.MySQLError, pymysql.err.Error, pymysql.err.InterfaceError, pymysql.err.DatabaseError,
    pymysql.err.DataError, pymysql.err.OperationalError, pymysql.err.IntegrityError,
    pymysql.err.InternalError, pymysql.err.ProgrammingError, pymysql.err.NotSupportedError,
]  # fmt: skip


@FUZZ
@given(
    cls=st.sampled_from(MYSQL_ERRORS),
    args=st.one_of(
        st.tuples(
            st.sampled_from([1040, 1044, 1045, 1049, 1130, 1698, 2003, 2006, 2013]) | st.integers(), MESSAGE
        ),
        st.tuples(MESSAGE),
        st.just(()),
    ),
    cause=st.none() | st.sampled_from([ConnectionRefusedError("refused"), TimeoutError("timed out")]),
)
def test_any_mysql_error(cls: type, args: tuple[Any, ...], cause: BaseException | None) -> None:
    error = cls(*args)
    error.__cause__ = cause
    check(classify_error(error, where="mysql", target="'db' (mysql://app@h:3306/db)", secrets=[SECRET]))


OS_ERRORS = st.one_of(
    st.builds(OSError, st.integers(min_value=0, max_value=200), MESSAGE),
    st.builds(ConnectionRefusedError, st.integers(min_value=0, max_value=200), MESSAGE),
    st.builds(ConnectionResetError, MESSAGE),
    st.builds(ConnectionAbortedError, MESSAGE),
    st.builds(BrokenPipeError, MESSAGE),
    st.builds(TimeoutError, MESSAGE),
    st.builds(asyncio.TimeoutError),
    st.builds(socket.gaierror, st.integers(min_value=-10, max_value=10), MESSAGE),
    st.builds(ssl.SSLError, MESSAGE),
    st.builds(ssl.SSLCertVerificationError, MESSAGE),
    st.builds(FileNotFoundError, st.integers(min_value=0, max_value=5), MESSAGE),
)


@FUZZ
@given(error=OS_ERRORS, where=WHERE)
def test_any_os_error(error: OSError, where: str) -> None:
    check(classify_error(error, where=where, target="'db' (postgresql://app@h:5432/db)", secrets=[SECRET]))

"""classify_error: every row of the error table, with real exception objects."""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiomysql
import asyncpg
import pymysql
import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError
from core_fakes import aws_error, data_api_error

from airflow_aurora_wake.core.errors import (
    LOGIN_REFUSAL_WINDOW,
    NAME_NOT_FOUND_GRACE,
    AwsApiError,
    AwsCredentialsError,
    AwsPermissionError,
    ClusterNotFoundError,
    ClusterStateError,
    DataApiNotEnabledError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
    InvalidParameterError,
    ReadyTimeoutError,
    WaitDiagnosis,
    classify_error,
    raise_if_fatal,
    redact,
    safe_error_text,
)
from airflow_aurora_wake.core.probes import DatabaseTarget, probe_database

# --- RDS API ------------------------------------------------------------------------------


def test_cluster_not_found_names_identifier_and_region() -> None:
    exc = aws_error("DBClusterNotFoundFault", "DBCluster salse not found.", status=404)
    verdict = classify_error(exc, where="rds:DescribeDBClusters", cluster="salse", region="eu-west-1")
    assert not verdict.retry
    assert isinstance(verdict.error, ClusterNotFoundError)
    assert "'salse'" in str(verdict.error) and "eu-west-1" in str(verdict.error)


@pytest.mark.parametrize("code", ["Throttling", "ThrottlingException", "RequestLimitExceeded"])
def test_throttling_is_retried_on_the_throttle_policy(code: str) -> None:
    verdict = classify_error(aws_error(code, "Rate exceeded"), where="rds:DescribeDBClusters")
    assert verdict.retry and verdict.throttled and verdict.error is None


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation"])
def test_missing_permission_names_the_action(code: str) -> None:
    exc = aws_error(
        code, "User arn:aws:iam::1:user/x is not authorized to perform: rds:DescribeDBClusters", status=403
    )
    verdict = classify_error(exc, where="rds:DescribeDBClusters", cluster="sales")
    assert not verdict.retry
    assert isinstance(verdict.error, AwsPermissionError)
    assert verdict.error.action == "rds:DescribeDBClusters"
    assert "grant rds:DescribeDBClusters" in str(verdict.error)


def test_rds_5xx_is_retried() -> None:
    verdict = classify_error(aws_error("InternalFailure", "oops", status=500), where="rds:DescribeDBClusters")
    assert verdict.retry and not verdict.throttled


def test_invalid_capacity_fails_before_waiting() -> None:
    exc = aws_error(
        "InvalidDBClusterCapacityFault", "Capacity 3 is not valid", operation="ModifyCurrentDBClusterCapacity"
    )
    verdict = classify_error(exc, where="rds:ModifyCurrentDBClusterCapacity", cluster="legacy")
    assert not verdict.retry and isinstance(verdict.error, InvalidParameterError)
    assert verdict.error.parameter == "capacity"


def test_invalid_state_outside_a_waker_is_a_state_error() -> None:
    exc = aws_error("InvalidDBClusterStateFault", "DbCluster legacy is not in a valid state.")
    verdict = classify_error(exc, where="rds:DescribeDBClusters", cluster="legacy")
    assert not verdict.retry and isinstance(verdict.error, ClusterStateError)


def test_expired_credentials() -> None:
    verdict = classify_error(
        aws_error("ExpiredToken", "The security token included in the request is expired"),
        where="rds:DescribeDBClusters",
    )
    assert not verdict.retry and isinstance(verdict.error, AwsCredentialsError)


def test_unknown_aws_error_fails_with_its_code() -> None:
    verdict = classify_error(aws_error("WeirdFault", "strange"), where="rds:DescribeDBClusters", cluster="x")
    assert not verdict.retry and isinstance(verdict.error, AwsApiError)
    assert "WeirdFault" in str(verdict.error)


def test_local_botocore_errors() -> None:
    assert isinstance(
        classify_error(NoCredentialsError(), where="rds:DescribeDBClusters").error, AwsCredentialsError
    )
    no_region = classify_error(NoRegionError(), where="rds:DescribeDBClusters").error
    assert isinstance(no_region, InvalidParameterError) and no_region.parameter == "region_name"
    unreachable = classify_error(
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), where="rds:DescribeDBClusters"
    )
    assert unreachable.retry


# --- Data API -----------------------------------------------------------------------------


def test_database_resuming_is_retried() -> None:
    verdict = classify_error(
        data_api_error("DatabaseResumingException", "Database is resuming"), where="rds-data"
    )
    assert verdict.retry and not verdict.throttled
    assert "resuming" in verdict.reason


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("BadRequestException", "Communications link failure\n\nThe last packet sent successfully..."),
        ("DatabaseErrorException", "FATAL: the database system is starting up"),
        ("StatementTimeoutException", "Request timed out"),
        ("DatabaseUnavailableException", "The database is unavailable"),
        ("SecretsErrorException", "Fetching the secret timed out"),
    ],
    ids=["v1-communications-link", "starting-up", "statement-timeout", "unavailable", "secret-timeout"],
)
def test_data_api_answers_a_resume_causes_are_retried(code: str, message: str) -> None:
    verdict = classify_error(data_api_error(code, message, status=400), where="rds-data", cluster="sales")
    assert verdict.retry and not verdict.throttled, verdict


def test_data_api_database_not_found_means_the_cluster_has_no_instance() -> None:
    exc = data_api_error("DatabaseNotFoundException", "Database not found", status=404)
    verdict = classify_error(exc, where="rds-data", cluster="sales")
    assert not verdict.retry and isinstance(verdict.error, ClusterStateError)
    assert "no DB instance" in str(verdict.error) and "database name" not in str(verdict.error)


def test_data_api_not_enabled_says_what_to_do() -> None:
    exc = data_api_error("HttpEndpointNotEnabledException", "HttpEndpoint is not enabled for cluster sales")
    verdict = classify_error(exc, where="rds-data", cluster="sales")
    assert not verdict.retry and isinstance(verdict.error, DataApiNotEnabledError)
    message = str(verdict.error)
    assert "enable the Data API" in message and "over a connection instead of the Data API" in message


def test_data_api_forbidden_names_the_actions() -> None:
    verdict = classify_error(
        data_api_error("ForbiddenException", "not authorized", status=403), where="rds-data"
    )
    assert isinstance(verdict.error, AwsPermissionError)
    assert "rds-data:ExecuteStatement" in str(verdict.error)


# --- PostgreSQL: real errors from the real server -------------------------------------------


async def _pg_error(postgres_server: object, **overrides: str) -> BaseException:
    server = postgres_server
    target = DatabaseTarget(
        engine="postgresql",
        host=server.host,  # type: ignore[attr-defined]
        port=server.port,  # type: ignore[attr-defined]
        user=overrides.get("user", server.user),  # type: ignore[attr-defined]
        database=overrides.get("database", server.database),  # type: ignore[attr-defined]
    )
    with pytest.raises(Exception) as caught:
        await probe_database(target, connect_timeout=10)
    return caught.value


async def test_pg_nonexistent_role_28000_is_fatal_at_once(postgres_server: object) -> None:
    exc = await _pg_error(postgres_server, user="aurora_wake_no_such_role")
    assert isinstance(exc, asyncpg.PostgresError) and exc.sqlstate == "28000"
    # Also on a cluster that may be paused: only the pg_hba answer is what a resume looks like.
    verdict = classify_error(
        exc, where="postgresql", may_be_paused=True, target="postgresql://aurora_wake_no_such_role@db/test"
    )
    assert not verdict.retry and isinstance(verdict.error, DatabaseAuthenticationError)
    assert "so it is awake" in str(verdict.error) and "aurora_wake_no_such_role@db" in str(verdict.error)


@pytest.mark.parametrize(
    ("may_be_paused", "refused_for", "retry"),
    [
        (True, 0.0, True),
        (True, LOGIN_REFUSAL_WINDOW - 1, True),
        (True, LOGIN_REFUSAL_WINDOW, False),
        (False, 0.0, False),
    ],
    ids=["paused-first", "paused-within-window", "paused-window-spent", "cannot-pause"],
)
def test_pg_hba_28000_is_waited_out_only_while_a_resume_can_explain_it(
    may_be_paused: bool, refused_for: float, retry: bool
) -> None:
    exc = asyncpg.exceptions.InvalidAuthorizationSpecificationError(
        'no pg_hba.conf entry for host "10.0.0.7", user "app", database "app", SSL encryption'
    )
    verdict = classify_error(
        exc,
        where="postgresql",
        may_be_paused=may_be_paused,
        grace_spent={"login-refused": refused_for},
        target="t",
    )
    assert verdict.retry is retry
    assert (verdict.grace == "login-refused") is retry
    if not retry:
        assert isinstance(verdict.error, DatabaseAuthenticationError)
    if may_be_paused and not retry:
        assert "Two causes" in str(verdict.error)


async def test_pg_unknown_database_3d000(postgres_server: object) -> None:
    exc = await _pg_error(postgres_server, database="aurora_wake_no_such_db")
    assert isinstance(exc, asyncpg.PostgresError) and exc.sqlstate == "3D000"
    verdict = classify_error(
        exc, where="postgresql", target="postgresql://postgres@db/aurora_wake_no_such_db"
    )
    assert not verdict.retry and isinstance(verdict.error, DatabaseConfigurationError)
    assert "does not exist" in str(verdict.error)


def test_pg_wrong_password_28p01_is_fatal_at_once() -> None:
    exc = asyncpg.exceptions.InvalidPasswordError('password authentication failed for user "app"')
    assert exc.sqlstate == "28P01"
    verdict = classify_error(exc, where="postgresql", target="'warehouse' (postgresql://app@db:5432/app)")
    assert not verdict.retry and isinstance(verdict.error, DatabaseAuthenticationError)
    assert "check the login" in str(verdict.error) and "'warehouse'" in str(verdict.error)


@pytest.mark.parametrize(
    ("exception_class", "sqlstate"),
    [
        (asyncpg.exceptions.CannotConnectNowError, "57P03"),
        (asyncpg.exceptions.TooManyConnectionsError, "53300"),
        (asyncpg.exceptions.AdminShutdownError, "57P01"),
    ],
)
def test_pg_not_ready_states_are_retried(exception_class: type[Exception], sqlstate: str) -> None:
    exc = exception_class("the database system is starting up")
    assert exc.sqlstate == sqlstate  # type: ignore[attr-defined]
    verdict = classify_error(exc, where="postgresql")
    assert verdict.retry and sqlstate in verdict.reason


# --- MariaDB: real errors from the real server ----------------------------------------------

# Our own user (other test packages may create aurora_wake_pw with another password).
_MYSQL_USER = "aurora_wake_pw_core"
_MYSQL_PASSWORD = "correct-horse-battery"


@pytest.fixture
async def mysql_user_with_password(mariadb_server: object) -> str:
    server = mariadb_server
    connection = await aiomysql.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password="",
        db=server.database,  # type: ignore[attr-defined]
    )
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(
                f"CREATE USER IF NOT EXISTS '{_MYSQL_USER}'@'%' IDENTIFIED BY '{_MYSQL_PASSWORD}'"
            )
            await cursor.execute(f"ALTER USER '{_MYSQL_USER}'@'%' IDENTIFIED BY '{_MYSQL_PASSWORD}'")
            await cursor.execute(f"GRANT SELECT ON test.* TO '{_MYSQL_USER}'@'%'")
    finally:
        connection.close()
    return _MYSQL_USER


async def test_mysql_wrong_password_1045_is_fatal(
    mariadb_server: object, mysql_user_with_password: str
) -> None:
    server = mariadb_server
    target = DatabaseTarget(
        engine="mysql",
        host=server.host,
        port=server.port,  # type: ignore[attr-defined]
        user=mysql_user_with_password,
        database="test",
        password="wrong-password-123",
    )
    with pytest.raises(pymysql.err.OperationalError) as caught:
        await probe_database(target, connect_timeout=10)
    assert caught.value.args[0] == 1045
    verdict = classify_error(caught.value, where="mysql", target=target.describe(), secrets=[target.password])
    assert not verdict.retry and isinstance(verdict.error, DatabaseAuthenticationError)
    assert "so it is awake" in str(verdict.error)
    assert "wrong-password-123" not in str(verdict.error)
    # And the right password works: the user really exists.
    await probe_database(
        DatabaseTarget(
            engine="mysql",
            host=target.host,
            port=target.port,
            user=target.user,
            database="test",
            password=_MYSQL_PASSWORD,
        ),
        connect_timeout=10,
    )


async def test_mysql_unknown_database_1049(mariadb_server: object) -> None:
    server = mariadb_server
    target = DatabaseTarget(
        engine="mysql",
        host=server.host,
        port=server.port,  # type: ignore[attr-defined]
        user=server.user,
        database="aurora_wake_no_such_db",
    )  # type: ignore[attr-defined]
    with pytest.raises(pymysql.err.OperationalError) as caught:
        await probe_database(target, connect_timeout=10)
    assert caught.value.args[0] == 1049
    verdict = classify_error(caught.value, where="mysql")
    assert not verdict.retry and isinstance(verdict.error, DatabaseConfigurationError)


async def test_mysql_refused_is_2003_and_retried(unused_tcp_port: int) -> None:
    target = DatabaseTarget(engine="mysql", host="127.0.0.1", port=unused_tcp_port, user="root")
    with pytest.raises(pymysql.err.OperationalError) as caught:
        await probe_database(target, connect_timeout=5)
    assert caught.value.args[0] == 2003
    assert classify_error(caught.value, where="mysql").retry


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (1040, "Too many connections"),
        (2013, "Lost connection to MySQL server during query"),
        (2006, "MySQL server has gone away"),
    ],
)
def test_mysql_not_ready_codes_are_retried(code: int, text: str) -> None:
    assert classify_error(pymysql.err.OperationalError(code, text), where="mysql").retry


# --- network ----------------------------------------------------------------------------------


async def test_real_refused_connection_is_retried(unused_tcp_port: int) -> None:
    target = DatabaseTarget(engine="postgresql", host="127.0.0.1", port=unused_tcp_port, user="postgres")
    with pytest.raises(ConnectionRefusedError) as caught:
        await probe_database(target, connect_timeout=5)
    verdict = classify_error(caught.value, where="postgresql")
    assert verdict.retry and verdict.reason == "connection refused"


@pytest.mark.parametrize(
    "exc",
    [
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("connection timed out after 30.0 s"),
        asyncio.TimeoutError(),
        OSError(113, "No route to host"),
    ],
)
def test_network_failures_are_retried(exc: Exception) -> None:
    assert classify_error(exc, where="postgresql").retry


def test_certificate_failure_is_fatal() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate")
    verdict = classify_error(exc, where="postgresql", target="postgresql://app@db/app")
    assert not verdict.retry and isinstance(verdict.error, DatabaseConfigurationError)


def test_programming_errors_are_not_swallowed() -> None:
    verdict = classify_error(KeyError("oops"), where="postgresql")
    assert not verdict.retry and verdict.error is None  # the caller re-raises the original


def test_cancellation_is_never_retried() -> None:
    verdict = classify_error(asyncio.CancelledError(), where="postgresql")
    assert not verdict.retry and verdict.error is None


# --- raise_if_fatal: the verdict as the exception to raise ---------------------------------------


def test_raise_if_fatal_raises_the_core_error_without_chaining_the_original() -> None:
    original = aws_error("DBClusterNotFoundFault", "DBCluster salse not found.", status=404)
    with pytest.raises(ClusterNotFoundError) as caught:
        try:
            raise original
        except Exception as exc:
            raise_if_fatal(exc, where="rds:DescribeDBClusters", cluster="salse", region="eu-west-1")
    assert "'salse'" in str(caught.value) and "eu-west-1" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_raise_if_fatal_raises_a_core_error_it_is_given_as_it_is() -> None:
    original = DatabaseConfigurationError("the host is missing")
    with pytest.raises(DatabaseConfigurationError) as caught:
        raise_if_fatal(original, where="postgresql")
    assert caught.value is original


@pytest.mark.parametrize("original", [KeyError("oops"), asyncio.CancelledError()])
def test_raise_if_fatal_reraises_what_the_core_does_not_know(original: BaseException) -> None:
    context = ValueError("handled before")
    try:
        try:
            raise context
        except ValueError:
            raise original from None
    except BaseException as exc:
        with pytest.raises(type(original)) as caught:
            raise_if_fatal(exc, where="postgresql")
    assert caught.value is original
    assert caught.value.__context__ is context  # the original's own story is left as it was


def test_raise_if_fatal_returns_a_retryable_verdict() -> None:
    verdict = raise_if_fatal(ConnectionRefusedError(), where="postgresql")
    assert verdict.retry and not verdict.throttled and verdict.reason == "connection refused"
    throttled = raise_if_fatal(aws_error("Throttling", "Rate exceeded"), where="rds:DescribeDBClusters")
    assert throttled.retry and throttled.throttled and throttled.error is None


def test_errors_package_exports_every_public_name_of_its_modules() -> None:
    from airflow_aurora_wake.core import errors
    from airflow_aurora_wake.core.errors import aws, classify, database, exceptions, redaction

    modules = (exceptions, classify, aws, database, redaction)
    assert sorted(errors.__all__) == sorted(name for module in modules for name in module.__all__)
    for module in modules:
        for name in module.__all__:
            assert getattr(errors, name) is getattr(module, name), name


# --- secrets never in messages ------------------------------------------------------------------


def test_redact_removes_dsn_passwords_tokens_and_known_secrets() -> None:
    text = (
        "connect postgresql://app:hunter2@db:5432/app failed; token "
        "db:5432/?Action=connect&DBUser=app&X-Amz-Signature=abcdef0123&X-Amz-Security-Token=FwoG; "
        "password=hunter2 pw-literal-xyz"
    )
    cleaned = redact(text, secrets=["pw-literal-xyz"])
    assert "hunter2" not in cleaned and "abcdef0123" not in cleaned and "FwoG" not in cleaned
    assert "pw-literal-xyz" not in cleaned
    assert "postgresql://app:***@db:5432/app" in cleaned


def test_safe_error_text_redacts() -> None:
    exc = RuntimeError("could not connect to mysql://root:topsecret@db/x")
    assert "topsecret" not in safe_error_text(exc)


def test_ready_timeout_message_is_a_diagnosis() -> None:
    diagnosis = WaitDiagnosis(
        identifier="sales",
        region="us-east-1",
        elapsed=600.04,
        last_status="available",
        kind="serverless-v2",
        engine="aurora-postgresql",
        last_probe_error="connection timed out after 30.0 s",
        attempts=20,
        rds_calls={"DescribeDBClusters": 60},
    )
    message = str(ReadyTimeoutError(diagnosis))
    for needle in (
        "'sales'",
        "us-east-1",
        "600.0 s",
        "'available'",
        "connection timed out after 30.0 s",
        "20 probe attempts",
        "60 RDS calls",
        "DescribeDBClusters 60",
        "resuming",
    ):
        assert needle in message


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
async def test_a_host_that_does_not_exist_gets_a_short_grace_then_fails(engine: str) -> None:
    # ".invalid" never resolves (RFC 2606): the real resolver's NXDOMAIN, as each driver raises it.
    target = DatabaseTarget(engine=engine, host="no-such-cluster.invalid", port=5432, user="app")  # type: ignore[arg-type]
    with pytest.raises(Exception) as caught:
        await probe_database(target, connect_timeout=10)
    first = classify_error(caught.value, where=engine, target=target.describe())
    assert first.retry and first.grace == "name-not-found", first
    spent = classify_error(
        caught.value,
        where=engine,
        target=target.describe(),
        grace_spent={"name-not-found": NAME_NOT_FOUND_GRACE},
    )
    assert not spent.retry and isinstance(spent.error, DatabaseConfigurationError)
    assert "no-such-cluster.invalid" in str(spent.error) and "typo" in str(spent.error)

"""Wrong password, wrong user, unknown database: fail on the first probe, naming the connection.

The server answered, so it is awake: waiting cannot help. Expected: the sensor (its first check),
the trigger and ``wake_and_wait`` fail on the first probe that reaches the server (also
PostgreSQL's 28000 "role does not exist": only the "no pg_hba.conf entry" answer of a resuming
front end is waited out, see ``tests/core/test_wait.py``), with a message
that names the connection and the user, never the password; even with ``soft_fail`` the task
fails instead of being skipped. The wake operator's nudge is not a probe: it reports that the
server answered and succeeds.

In IAM mode the "wrong password" is an IAM token the server rejects (the password login with
``iam: true``: scram checks the token and refuses it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from airflow_support import set_database_connection
from faults_support import (
    add_twin,
    counter,
    first_event,
    ready_sensor,
    run_operator,
    run_sensor,
    run_wake_and_wait,
    wake_operator,
)

from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
)
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

pytestmark = [pytest.mark.faults, pytest.mark.emulator, pytest.mark.db]

BAD_CONN = "bad_login"
WRONG_PASSWORD = "Wr0ng-password-5c1e77"
NO_SUCH_USER = "aurora_wake_nobody"
NO_SUCH_DATABASE = "aurora_wake_no_such_db"
TRIGGER_CLUSTER = "sales-trigger"
API_CLUSTER = "sales-api"


def broken(login: Any, case: str, password_login: Any) -> dict[str, Any]:
    """The login of the connection under test: one piece broken."""
    user, password, database = login.user, login.password, "test"
    if case == "wrong-password":
        # IAM: the password login's server checks the token as a password, and refuses it.
        user, password = password_login.user, (login.password if login.iam else WRONG_PASSWORD)
    elif case == "wrong-user":
        user = NO_SUCH_USER
    else:
        database = NO_SUCH_DATABASE
    return {"user": user, "password": password, "database": database}


EXPECTED = {
    "wrong-password": DatabaseAuthenticationError,
    "wrong-user": DatabaseAuthenticationError,
    "unknown-database": DatabaseConfigurationError,
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
async def test_bad_login_fails_on_the_first_probe(
    emulated: Any,
    login: Any,
    case: str,
    password_login: Any,
    secret_guard: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret_guard.watch(WRONG_PASSWORD)
    cluster = emulated(kind="serverless-v2", state="paused", **login.cluster_kwargs())
    add_twin(cluster, TRIGGER_CLUSTER, kind="serverless-v2", state="paused", iam_auth=login.iam)
    add_twin(cluster, API_CLUSTER, kind="serverless-v2", state="paused", iam_auth=login.iam)
    bad = broken(login, case, password_login)
    set_database_connection(monkeypatch, BAD_CONN, engine=login.engine, extra=login.conn_extra, **bad)
    expected = EXPECTED[case]
    probes = 1
    # Without an sslmode asyncpg uses "prefer": after a login refused over TLS it tries once more
    # without TLS, as libpq does, so one PostgreSQL probe may be two connections. IAM requires TLS.
    most = 2 if login.engine == "postgresql" and not login.iam else 1

    def check(error: BaseException, *, conn_named: bool = True) -> None:
        assert type(error) is expected, repr(error)
        message = str(error)
        assert bad["user"] in message
        if conn_named:
            assert repr(BAD_CONN) in message
        if case == "unknown-database":
            assert "does not exist" in message and "database name" in message
        else:
            assert "so it is awake" in message and "check the login" in message

    async def airflow_path() -> None:
        # The operator's nudge wakes the cluster; a refused login is "the server answered".
        woke = await run_operator(wake_operator(cluster, conn_id=BAD_CONN), secret_guard)
        assert woke["action"] == "connection-nudge" and "answered" in woke["detail"], woke
        # Connections that reached the endpoint (a refused login never completes one: the
        # emulator relays a TLS login itself and splices only after the server's OK).
        nudges = counter(cluster, "connection_attempts")
        # The sensor's first check probes, and fails; soft_fail does not turn it into a skip.
        with pytest.raises(AuroraWakeError) as failure:
            await run_sensor(ready_sensor(cluster, conn_id=BAD_CONN, soft_fail=True), secret_guard)
        check(failure.value)
        assert probes <= counter(cluster, "connection_attempts") - nudges <= probes * most

    async def trigger_path() -> None:
        # A trigger whose first probe is held by the resume, then refused: an error event.
        trigger = AuroraServerlessReadyTrigger(
            db_cluster_identifier=TRIGGER_CLUSTER,
            deadline=time.time() + 90,
            aws_conn_id=cluster.aws_conn_id,
            conn_id=BAD_CONN,
            connect_timeout=30,
            describe_interval=1.0,
        )
        payload = await first_event(trigger, secret_guard)
        assert payload["status"] == "error" and payload["error_type"] == expected.__name__, payload
        task = ready_sensor(cluster, conn_id=BAD_CONN, soft_fail=True)
        with pytest.raises(AuroraWakeError) as resumed:
            task.resume_execution("execute_complete", {"event": payload}, {})
        secret_guard.add(resumed.value)
        check(resumed.value)
        assert probes <= counter(cluster, "connection_attempts", TRIGGER_CLUSTER) <= probes * most

    async def plain_path() -> None:
        # wake_and_wait names the DSN it used (user@host:port/db) instead of an Airflow connection.
        api_login = login.__class__(login.engine, iam=login.iam, user=bad["user"], password=bad["password"])
        with pytest.raises(AuroraWakeError) as plain:
            await run_wake_and_wait(
                cluster, api_login, secret_guard, identifier=API_CLUSTER, connect_timeout=30,
                database=bad["database"],
            )  # fmt: skip
        check(plain.value, conn_named=False)

    # Three clusters of one emulator, one path each, at once.
    await asyncio.gather(airflow_path(), trigger_path(), plain_path())
    assert probes <= counter(cluster, "connection_attempts", API_CLUSTER) <= probes * most

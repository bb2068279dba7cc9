"""Every answer a resuming cluster gives, met by the sensor, the wake operator and ``wake_and_wait``.

Users report more than the held connection Aurora documents (issue 10 A): an immediate EOF, a
reset, PostgreSQL's 57P03 "starting up", PostgreSQL's 28000 "no pg_hba.conf entry ..., SSL
encryption" from the front end of a v2 cluster at 0 ACU, MySQL's lost connection (2013), and,
from the Data API, ``DatabaseResumingException``, "Communications link failure",
``DatabaseErrorException`` "starting up", ``StatementTimeoutException``,
``DatabaseUnavailableException`` and ``SecretsErrorException`` "timed out". The emulator gives
each one per cluster (``ClusterSpec.resume_answer`` / ``data_api_resume_answer``) to every
attempt while the cluster resumes.

Each scenario runs four paths at once, each on its own cluster of one emulator: the deferrable
sensor (its check before deferring meets the answer, then the trigger re-created from Airflow's
storage), the sensor in poke mode, the wake operator followed by the sensor, and
``wake_and_wait``. Each must end ready, never before the emulator made the cluster connectable,
and soon after it; the answer must really have been given (the emulator counts it), and the
retries must not restart the resume. Counts that depend on scheduling are bounds, not values.

The 28000 refusal is tolerated only while the cluster may be paused, and only for
``LOGIN_REFUSAL_WINDOW`` (shortened here by monkeypatching): a refusal that outlasts it fails
naming both causes; on a cluster that cannot pause it fails at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from faults_support import (
    OUTER_LIMIT,
    add_twin,
    assert_not_ready_early,
    counter,
    events,
    first_event,
    ready_sensor,
    run_operator,
    run_sensor,
    run_wake_and_wait,
    wake_operator,
)

from airflow_aurora_wake.core.api import wake_and_wait
from airflow_aurora_wake.core.errors import DatabaseAuthenticationError
from airflow_aurora_wake.core.errors import classify as error_classification
from airflow_aurora_wake.emulator import ClusterSpec, Faults
from airflow_aurora_wake.emulator.config import DATA_API_RESUME_ANSWERS, RESUME_ANSWERS
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

pytestmark = [pytest.mark.faults, pytest.mark.emulator, pytest.mark.db]

#: The clusters of one scenario besides the fixture's (which the deferrable sensor waits on).
POKE, WOKEN, PLAIN = "sales-poke", "sales-woken", "sales-api"


def answer_everywhere(cluster: Any, login: Any, answer: str) -> None:
    """Give the fixture's cluster ``answer`` while resuming, and add its three twins doing the same."""
    cluster.emu.set_resume_answers(cluster.identifier, answer)
    for identifier in (POKE, WOKEN, PLAIN):
        add_twin(
            cluster,
            identifier,
            kind="serverless-v2",
            state="paused",
            iam_auth=login.iam,
            resume_answer=answer,
        )


#: How long after the emulated ready time a path may report ready. Probes are retried at most
#: 1 s apart (the Data API's at most 5 s); the rest is margin for a loaded 2-core machine.
LAG = 5.0
DATA_API_LAG = 9.0
CONNECTION_ANSWERS = tuple(answer for answer in RESUME_ANSWERS if answer != "hold")
DATA_API_ANSWERS = DATA_API_RESUME_ANSWERS


def assert_ready_soon(cluster: Any, ready_at: float, identifier: str, lag: float) -> None:
    """Ready, not before the emulator made it connectable, and within ``lag`` after that."""
    assert_not_ready_early(cluster, ready_at, identifier=identifier)
    emulator_ready = cluster.emu.ready_at(identifier)
    assert ready_at - emulator_ready <= lag, (identifier, ready_at - emulator_ready)


async def all_paths(
    cluster: Any, guard: Any, plain: Any, twins: tuple[str, str, str] = (POKE, WOKEN, PLAIN), **sensor: Any
) -> dict[str, float]:
    """Run the four paths at once; return each cluster's reported ready time.

    The deferrable sensor waits on ``cluster``; ``twins`` are the clusters of poke mode, of the
    wake operator followed by the sensor, and of ``plain`` (``wake_and_wait``).
    """
    poke, woken_id, plain_id = twins

    async def deferred() -> float:
        ready = await run_sensor(ready_sensor(cluster, **sensor), guard)
        return float(ready["ready_at"])

    async def poked() -> float:
        task = ready_sensor(
            cluster, db_cluster_identifier=poke, deferrable=False, poke_interval=0.2, **sensor
        )
        ready = await run_sensor(task, guard)
        return float(ready["ready_at"])

    async def woken() -> float:
        nudge = {"conn_id": None, "data_api_secret_arn": sensor["data_api_secret_arn"]} if sensor else {}
        woke = await run_operator(wake_operator(cluster, db_cluster_identifier=woken_id, **nudge), guard)
        assert woke["action"] in ("connection-nudge", "data-api-nudge"), woke
        ready = await run_sensor(ready_sensor(cluster, db_cluster_identifier=woken_id, **sensor), guard)
        return float(ready["ready_at"])

    results = await asyncio.gather(deferred(), poked(), woken(), plain())
    return dict(zip((cluster.identifier, poke, woken_id, plain_id), results, strict=True))


@pytest.mark.parametrize("answer", CONNECTION_ANSWERS)
async def test_each_connection_answer_is_waited_out(
    emulated: Any, login: Any, secret_guard: Any, answer: str
) -> None:
    cluster = emulated(kind="serverless-v2", state="paused", **login.cluster_kwargs())
    if answer == "pg-hba-refusal" and login.engine == "mysql":
        # Not applicable: MySQL has no pg_hba refusal, and the emulator says so.
        with pytest.raises(ValueError, match="PostgreSQL answer"):
            cluster.emu.set_resume_answers(cluster.identifier, answer)
        secret_guard.expect_tokens = False
        return
    answer_everywhere(cluster, login, answer)

    async def plain() -> float:
        report = await run_wake_and_wait(cluster, login, secret_guard, identifier=PLAIN)
        return report.ready_at

    ready = await asyncio.wait_for(all_paths(cluster, secret_guard, plain), OUTER_LIMIT)
    for identifier, ready_at in ready.items():
        # The answer really came (at least to the attempt that started the resume)...
        assert counter(cluster, "resume_answers", identifier) >= 1, cluster.emu.counters()
        # ...the retries joined that resume instead of restarting it...
        assert len(events(cluster, "resume-requested", identifier)) == 1
        # ...and readiness came once connections really worked, and soon after.
        assert_ready_soon(cluster, ready_at, identifier, LAG)


@pytest.mark.parametrize("answer", DATA_API_ANSWERS)
async def test_each_data_api_answer_is_waited_out(
    emulated: Any, secret_guard: Any, answer: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue("mariadb_server")
    secret_guard.expect_tokens = False
    cluster = emulated(kind="serverless-v2", state="paused", data_api=True)
    emu = cluster.emu
    emu.set_resume_answers(cluster.identifier, data_api_resume_answer=answer)
    for identifier in (POKE, WOKEN, PLAIN):
        add_twin(
            cluster,
            identifier,
            kind="serverless-v2",
            state="paused",
            data_api=True,
            data_api_resume_answer=answer,
        )
    # The same paths on MariaDB, at once, on a second emulator-side cluster set.
    mysql = {name: f"{name}-my" for name in (cluster.identifier, POKE, WOKEN, PLAIN)}
    for identifier in mysql.values():
        emu.add_cluster(
            ClusterSpec(identifier, engine="aurora-mysql", data_api=True, data_api_resume_answer=answer)
        )
    secrets = {"postgresql": emu.create_secret("postgres", ""), "mysql": emu.create_secret("root", "")}

    def plain_for(identifier: str, secret: str) -> Any:
        async def plain() -> float:
            lines: list[str] = []
            report = await wake_and_wait(
                identifier,
                region_name=emu.region,
                endpoint_url=emu.endpoint_url,
                probe="data-api",
                data_api_secret_arn=secret,
                database="test",
                describe_interval=1.0,
                timeout=90,
                log=lines.append,
            )
            secret_guard.add(report, report.as_xcom(), *lines)
            return report.ready_at

        return plain

    sensor: dict[str, Any] = {"probe": "data-api", "conn_id": None, "database": "test"}
    pg_run = all_paths(
        cluster,
        secret_guard,
        plain_for(PLAIN, secrets["postgresql"]),
        data_api_secret_arn=secrets["postgresql"],
        **sensor,
    )
    my_cluster = type(cluster)(
        emu, mysql[cluster.identifier], "mysql", "serverless-v2", cluster.aws_conn_id, cluster.conn_id
    )
    my_run = all_paths(
        my_cluster,
        secret_guard,
        plain_for(mysql[PLAIN], secrets["mysql"]),
        (mysql[POKE], mysql[WOKEN], mysql[PLAIN]),
        data_api_secret_arn=secrets["mysql"],
        **sensor,
    )
    pg_ready, my_ready = await asyncio.wait_for(asyncio.gather(pg_run, my_run), OUTER_LIMIT)
    for identifier, ready_at in [*pg_ready.items(), *my_ready.items()]:
        assert counter(cluster, "data_api_resume_answers", identifier) >= 1, emu.counters()
        assert len(events(cluster, "resume-requested", identifier)) == 1
        assert_ready_soon(cluster, ready_at, identifier, DATA_API_LAG)


POSTGRESQL_LOGINS = ["postgresql", "postgresql-iam"]
#: (b): the refusal window, shortened, against a resume that outlasts it by far.
SHORT_WINDOW = 1.5
LONG_RESUME = 12.0


async def failures_of_every_path(
    cluster: Any, login: Any, guard: Any, trigger_cluster: str
) -> list[BaseException]:
    """Run the sensor (deferrable, then poke mode), a trigger and ``wake_and_wait``, each on its own
    cluster; return the error each failed with (a path that succeeds fails the test)."""

    async def failing(run: Any) -> BaseException:
        with pytest.raises(DatabaseAuthenticationError) as caught:
            await run
        guard.add(caught.value)
        return caught.value

    async def trigger_path() -> BaseException:
        # The trigger on its own, so that it meets the refusals even when the sensor's check
        # before deferring fails already.
        trigger = AuroraServerlessReadyTrigger(
            db_cluster_identifier=trigger_cluster,
            deadline=time.time() + 90,
            aws_conn_id=cluster.aws_conn_id,
            conn_id=cluster.conn_id,
            connect_timeout=0.5,
            describe_interval=1.0,
        )
        payload = await first_event(trigger, guard)
        assert payload["status"] == "error", payload
        task = ready_sensor(cluster, db_cluster_identifier=trigger_cluster, soft_fail=True)
        return await failing(
            asyncio.to_thread(task.resume_execution, "execute_complete", {"event": payload}, {})
        )

    return list(
        await asyncio.wait_for(
            asyncio.gather(
                failing(run_sensor(ready_sensor(cluster, soft_fail=True), guard)),
                failing(
                    run_sensor(
                        ready_sensor(
                            cluster,
                            db_cluster_identifier=POKE,
                            deferrable=False,
                            poke_interval=0.2,
                            soft_fail=True,
                        ),
                        guard,
                    )
                ),
                trigger_path(),
                failing(run_wake_and_wait(cluster, login, guard, identifier=PLAIN)),
            ),
            OUTER_LIMIT,
        )
    )


@pytest.mark.parametrize("login", POSTGRESQL_LOGINS, indirect=True)
async def test_a_refusal_that_outlasts_the_window_fails_naming_both_causes(
    emulated: Any, login: Any, secret_guard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(error_classification, "LOGIN_REFUSAL_WINDOW", SHORT_WINDOW)
    cluster = emulated(
        kind="serverless-v2",
        state="paused",
        timings={"resume_seconds": LONG_RESUME},
        **login.cluster_kwargs(),
    )
    answer_everywhere(cluster, login, "pg-hba-refusal")
    started = time.time()
    errors = await failures_of_every_path(cluster, login, secret_guard, WOKEN)
    ended = time.time()
    for error in errors:
        message = str(error)
        assert "Two causes" in message and "pg_hba" in message and "resuming from 0" in message, message
    # Waited out for the window, not failed on the first refusal...
    assert ended - started >= SHORT_WINDOW
    # ...and failed while every cluster still resumed: the window, not the resume, ended it.
    for identifier in (cluster.identifier, POKE, WOKEN, PLAIN):
        assert cluster.emu.status(identifier) == "resuming", identifier
        assert counter(cluster, "resume_answers", identifier) >= 2


@pytest.mark.parametrize("login", POSTGRESQL_LOGINS, indirect=True)
async def test_a_refusal_from_a_cluster_that_cannot_pause_fails_at_once(
    emulated: Any, login: Any, secret_guard: Any
) -> None:
    # A v2 cluster whose minimum capacity was raised above 0 cannot pause (RDS shows it), but
    # the raise wakes it: it resumes, and answers 28000 meanwhile. Only its writer's
    # DescribeDBLogFiles can prove the resume (tests/core/test_wait_pause_evidence.py); denied
    # that, the answer is a login problem, not a resume: it fails at once, naming the permission.
    cluster = emulated(
        kind="serverless-v2",
        state="paused",
        timings={"resume_seconds": LONG_RESUME},
        **login.cluster_kwargs(),
    )
    identifiers = (cluster.identifier, POKE, WOKEN, PLAIN)
    for identifier in identifiers[1:]:
        add_twin(cluster, identifier, kind="serverless-v2", state="paused", iam_auth=login.iam)
    cluster.emu.set_faults(Faults(deny_actions=frozenset({"rds:DescribeDBLogFiles"})))
    rds = cluster.emu.boto3_client("rds")
    for identifier in identifiers:
        cluster.emu.set_resume_answers(identifier, "pg-hba-refusal")
        rds.modify_db_cluster(
            DBClusterIdentifier=identifier,
            ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 4},
        )
        assert cluster.emu.status(identifier) == "resuming"
    errors = await failures_of_every_path(cluster, login, secret_guard, WOKEN)
    for error in errors:
        message = str(error)
        assert "so it is awake" in message and "Two causes" not in message, message
        assert "granting rds:DescribeDBLogFiles" in message, message
    for identifier in identifiers:
        # Failed while the cluster still resumed, after one probe (asyncpg's "prefer" may make it
        # two connections: TLS, then once more in clear).
        assert cluster.emu.status(identifier) == "resuming", identifier
        assert 1 <= counter(cluster, "resume_answers", identifier) <= 2, cluster.emu.counters()

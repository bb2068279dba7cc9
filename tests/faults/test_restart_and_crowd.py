"""A triggerer killed mid-wait, and 100 DAG runs waking and waiting on one cluster at once.

Triggerer restart: the sensor defers; its trigger runs until the emulator sees it waiting, then
is cancelled (what a dying triggerer does to its triggers) and re-created from the kwargs
Airflow stored (serde, encrypted ``Trigger`` row), as a new triggerer would. Expected: the same
absolute deadline, no second wake request (the emulator's counters: one resume, one capacity
request or start), success. A trigger re-created after its deadline times out at once instead
of starting the clock again. (A real triggerer process killed under ``airflow standalone`` is
the end-to-end suite's job, tests/e2e.)

Crowd: 100 wake operators (in worker threads, 10 at a time) and, at the same time, 100 triggers
(each with its own deadline, stored and re-created through Airflow's storage) in one event loop,
as one triggerer runs them. Expected: every one succeeds; the wake requests after the first are harmless (the
cluster resumes once); the triggers share one describe-and-probe loop, so the RDS calls and
probe connections of the wait are those of one wait, not of 100.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from airflow_support import context, until
from faults_support import (
    counter,
    events,
    first_event,
    rds_calls,
    ready_sensor,
    resume,
    run_operator,
    store_trigger,
    wake_operator,
)
from faults_support import defer as defer_sensor

from airflow_aurora_wake.core.wait import SHARED_WAITS
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

pytestmark = [pytest.mark.faults, pytest.mark.emulator, pytest.mark.db]

KINDS = {
    "serverless-v2": ("paused", "connection-nudge", "resume-requested", None),
    "serverless-v1": ("paused", "modify-capacity", "resume-requested", "ModifyCurrentDBClusterCapacity"),
    "provisioned": ("stopped", "start-db-cluster", "start-requested", "StartDBCluster"),
}
#: The resume (or start) lasts until the test ends it, once the recreated trigger is about to
#: run: the sensor's check in the worker meets it whatever the machine's load, so it defers.
UNTIL_ENDED = {
    "resume_seconds": 600.0,
    "v1_capacity_seconds": 600.0,
    "v1_connect_extra_seconds": 1.0,
    "start_seconds": 600.0,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_trigger_recreated_after_a_triggerer_dies(
    emulated: Any, login: Any, secret_guard: Any, kind: str
) -> None:
    state, action, wake_event, wake_call = KINDS[kind]
    cluster = emulated(kind=kind, state=state, timings=UNTIL_ENDED, **login.cluster_kwargs())
    woke = await run_operator(wake_operator(cluster), secret_guard)
    assert woke["action"] == action, woke
    task = ready_sensor(cluster)
    deferred, _ = await defer_sensor(task, secret_guard)
    assert deferred is not None
    original = store_trigger(deferred.trigger, secret_guard)

    # The first triggerer runs it until it is really waiting (it described the cluster), then dies.
    describes_before = rds_calls(cluster).get("DescribeDBClusters", 0)
    first = asyncio.ensure_future(first_event(original, secret_guard))
    await until(lambda: rds_calls(cluster).get("DescribeDBClusters", 0) > describes_before, 30)
    first.cancel()
    # The cancellation completes promptly (a triggerer cancels, then waits for cleanup).
    done, _ = await asyncio.wait([first], timeout=30)
    assert done, "the cancelled trigger did not finish within 30 s"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert SHARED_WAITS.active_pollers() == 0  # nothing of it keeps running

    # A new triggerer re-creates it from what Airflow stored.
    recreated = store_trigger(deferred.trigger, secret_guard)
    assert recreated.deadline == deferred.trigger.deadline  # the original absolute deadline
    cluster.emu.wake(cluster.identifier)  # the resume (or start) the wake task began ends now
    payload = await first_event(recreated, secret_guard)
    assert payload["status"] == "success", payload
    result = resume(task, payload, secret_guard)
    ready_at = cluster.ready_at()
    assert ready_at is not None and result["ready_at"] >= ready_at
    # No second wake: one resume (or start), one wake request.
    assert len(events(cluster, wake_event)) == 1, cluster.emu.timeline(cluster.identifier)
    if wake_call is not None:
        assert rds_calls(cluster).get(wake_call) == 1, rds_calls(cluster)


async def test_trigger_recreated_after_its_deadline_times_out_at_once(
    emulated: Any, login: Any, secret_guard: Any
) -> None:
    cluster = emulated(
        kind="serverless-v2", state="paused", timings={"resume_seconds": 600}, **login.cluster_kwargs()
    )
    task = ready_sensor(cluster, timeout=2)
    deferred, _ = await defer_sensor(task, secret_guard)
    assert deferred is not None
    # The triggerer was down until after the deadline: the re-created trigger does not restart it.
    await until(lambda: time.time() > deferred.trigger.deadline, 30)
    attempts = counter(cluster, "connection_attempts")
    payload = await first_event(store_trigger(deferred.trigger, secret_guard), secret_guard, seconds=30)
    assert payload["status"] == "timeout", payload
    assert "began" in payload["message"] and "after its deadline" in payload["message"], payload
    assert counter(cluster, "connection_attempts") == attempts  # it did not even probe


RUNS = 100


async def test_one_hundred_runs_on_one_cluster(emulated: Any, login: Any, secret_guard: Any) -> None:
    cluster = emulated(
        kind="serverless-v1",
        state="paused",
        timings={"v1_capacity_seconds": 3.0, "v1_connect_extra_seconds": 1.0},
        **login.cluster_kwargs(),
    )
    # What each run's sensor defers with (its own deadline per run), stored and re-created as
    # the triggerer does; all 100 run in this one event loop, like one triggerer's triggers.
    template = ready_sensor(cluster)
    deadline = time.time() + 120
    triggers = []
    for number in range(RUNS):
        trigger = AuroraServerlessReadyTrigger(
            db_cluster_identifier=cluster.identifier,
            deadline=deadline + number,
            aws_conn_id=template.aws_conn_id,
            conn_id=template.conn_id,
            connect_timeout=template.connect_timeout,
            describe_interval=template.describe_interval,
        )
        triggers.append(store_trigger(trigger, secret_guard))
    # 100 wake operators in worker threads (10 at a time), while the 100 triggers wait.
    operators = [wake_operator(cluster) for _ in range(RUNS)]
    runs = [asyncio.ensure_future(first_event(trigger, secret_guard)) for trigger in triggers]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(asyncio.wrap_future(pool.submit(operator.execute, context())) for operator in operators)
            ),
            240,
        )
    secret_guard.add(*results)
    payloads = await asyncio.wait_for(asyncio.gather(*runs), 120)

    # Every run succeeded.
    actions = [result["action"] for result in results]
    assert set(actions) <= {"modify-capacity", "already-waking", "none"}, set(actions)
    assert all(payload["status"] == "success" for payload in payloads), payloads[:3]
    ready_at = cluster.ready_at()
    assert ready_at is not None and min(payload["ready_at"] for payload in payloads) >= ready_at
    # The cluster resumed once: the first request (or the first probe connection) woke it; the
    # other operators found it waking or awake.
    assert len(events(cluster, "resume-requested")) == 1
    # No capacity request ever lowered the capacity: each operator checks right before asking,
    # so a request can only follow a describe that showed capacity 0 a moment before. At most
    # one request was the wake; any other was accepted only in the instant a resume ended, and
    # asked for what the cluster already had.
    scaling_requests = events(cluster, "scaling-requested")
    assert all(float(request.detail["to"]) >= float(request.detail["from"]) for request in scaling_requests)
    assert all(request.at >= ready_at for request in scaling_requests), (scaling_requests, ready_at)
    assert actions.count("modify-capacity") <= 1 + len(scaling_requests), actions
    # One shared loop: all 100 triggers saw the same attempts and RDS calls...
    assert len({(payload["attempts"], str(payload["rds_calls"])) for payload in payloads}) == 1
    shared = payloads[0]
    # ...and the emulator saw the operators' describes (one each, two when it was about to ask
    # for capacity) plus one loop's, and one loop's probe connections: those of one wait, not of
    # 100. An attempt still in flight when the counts are read may sit on either side: bounds,
    # not equalities, so a loaded machine cannot make this flaky.
    loop_describes = shared["rds_calls"]["DescribeDBClusters"]
    describes = rds_calls(cluster)["DescribeDBClusters"]
    assert RUNS + loop_describes - 1 <= describes <= 2 * RUNS + loop_describes + 1, (describes, shared)
    assert abs(counter(cluster, "connection_attempts") - shared["attempts"]) <= 1, shared
    assert shared["rds_calls"]["DescribeDBClusters"] < 20 and shared["attempts"] < 20, shared
    assert SHARED_WAITS.active_pollers() == 0
    resume(template, payloads[-1], secret_guard)

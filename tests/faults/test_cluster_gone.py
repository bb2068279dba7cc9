"""The cluster deleted, or stopped, while a wait is under way: fail at once, naming what happened.

The trigger (re-created from Airflow's storage after the sensor deferred) and ``wake_and_wait``
wait on a cluster that is up in RDS but refuses every new connection ("too many connections"
for a minute after its resume, so the waits keep probing); once each has described it, the
cluster is deleted, stopped through ``StopDBCluster`` (``stopping`` for 30 s; AWS, and the
emulator, refuse to stop a cluster while it resumes), or stopped at once (the emulator's
``stop``: the next describe already says ``stopped``). Expected: an error on the
first describe that sees it (at most two describes after the change: one may already be in
flight), never a wait until the deadline or ``stopped_grace``; with ``soft_fail`` the task
still fails.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from airflow_support import until
from faults_support import (
    add_twin,
    first_event,
    rds_calls,
    ready_sensor,
    run_wake_and_wait,
    store_trigger,
)
from faults_support import defer as defer_sensor

from airflow_aurora_wake.core.errors import AuroraWakeError
from airflow_aurora_wake.emulator import Faults

pytestmark = [pytest.mark.faults, pytest.mark.emulator, pytest.mark.db]

API = "sales-api"
TIMINGS = {"resume_seconds": 0.5, "stop_seconds": 30.0}
#: Every new connection is refused for a minute after the resume: the waits go on probing.
BUSY = Faults(after_resume_error="too-many-connections", after_resume_seconds=60.0)


def describes(cluster: Any, identifier: str) -> int:
    return rds_calls(cluster, identifier).get("DescribeDBClusters", 0)


CASES = {
    "deleted": ("ClusterDeletedError", "was deleted while waiting"),
    "stop-db-cluster": ("ClusterStateError", "'stopping'"),
    "stopped-at-once": ("ClusterStateError", "was stopped while waiting"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_cluster_gone_during_the_wait_fails_at_once(
    emulated: Any, login: Any, secret_guard: Any, case: str
) -> None:
    cluster = emulated(kind="serverless-v2", state="paused", timings=TIMINGS, **login.cluster_kwargs())
    add_twin(cluster, API, kind="serverless-v2", state="paused", iam_auth=login.iam)
    cluster.emu.set_faults(BUSY)
    task = ready_sensor(cluster, soft_fail=True)
    deferred, _ = await defer_sensor(task, secret_guard)
    assert deferred is not None
    trigger = asyncio.ensure_future(first_event(store_trigger(deferred.trigger, secret_guard), secret_guard))
    plain = asyncio.ensure_future(run_wake_and_wait(cluster, login, secret_guard, identifier=API))

    # Both waits are under way: each has described its cluster (sensor check + trigger; wake + wait)
    # and its probes are being refused.
    def waiting(identifier: str) -> bool:
        refused = cluster.emu.counters()["connections_failed_by_fault"].get(identifier, 0)
        return describes(cluster, identifier) >= 2 and refused >= 1

    await until(lambda: waiting(cluster.identifier) and waiting(API), 30)
    before = {identifier: describes(cluster, identifier) for identifier in (cluster.identifier, API)}
    for identifier in before:
        if case == "deleted":
            cluster.emu.delete(identifier)
        elif case == "stop-db-cluster":
            cluster.emu.boto3_client("rds").stop_db_cluster(DBClusterIdentifier=identifier)
        else:
            cluster.emu.stop(identifier)

    error_type, text = CASES[case]
    payload = await asyncio.wait_for(trigger, 30)
    assert payload["status"] == "error" and payload["error_type"] == error_type, payload
    assert text in payload["message"] and f"'{cluster.identifier}'" in payload["message"]
    with pytest.raises(AuroraWakeError) as resumed:  # soft_fail does not skip it
        task.resume_execution("execute_complete", {"event": payload}, {})
    secret_guard.add(resumed.value)
    with pytest.raises(AuroraWakeError) as caught:
        await asyncio.wait_for(plain, 30)
    assert type(caught.value).__name__ == error_type and text in str(caught.value)
    # At once: on the first describe that saw the change (plus one that may have been in flight).
    for identifier, count in before.items():
        assert describes(cluster, identifier) - count <= 2, (identifier, rds_calls(cluster, identifier))

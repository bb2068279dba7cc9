"""Resume faults: a resume slower than ``connect_timeout``, and trouble right after the resume.

* Deep sleep: the issue's case is a 45 s resume against a 30 s ``connect_timeout``. Scaled by
  1/10 (4.5 s against 3 s, same ratio): the first probe is held open by the resuming cluster
  and times out, the next one joins the same resume and succeeds.
* A window after the resume in which new connections fail with 57P03 "starting up" (MariaDB:
  the connection drops before the greeting, 2013) or "too many connections" (53300 / 1040),
  and connections reset (RST) while the cluster resumes: retried, then ready; never ready
  before the window ends.

Each runs the Airflow path (wake operator, sensor, trigger re-created from Airflow's storage)
and ``wake_and_wait`` at once, on two clusters of one emulator.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faults_support import (
    add_twin,
    assert_not_ready_early,
    counter,
    events,
    ready_sensor,
    run_operator,
    run_sensor,
    run_wake_and_wait,
    wake_operator,
)

from airflow_aurora_wake.emulator import Faults

pytestmark = [pytest.mark.faults, pytest.mark.emulator, pytest.mark.db]

API = "sales-api"
DEEP_RESUME = 4.5
CONNECT_TIMEOUT = 3.0
WINDOW = 1.5


async def test_deep_sleep_resume_slower_than_connect_timeout(
    emulated: Any, login: Any, secret_guard: Any
) -> None:
    cluster = emulated(
        kind="serverless-v2",
        state="paused",
        timings={"deep_resume_seconds": DEEP_RESUME, "deep_sleep_after_seconds": 3600},
        **login.cluster_kwargs(),
    )
    add_twin(cluster, API, kind="serverless-v2", state="paused", iam_auth=login.iam)
    for identifier in (cluster.identifier, API):
        cluster.emu.pause(identifier, paused_for=2 * 86400)  # paused two days: a deep sleep

    async def airflow_run() -> tuple[dict[str, Any], dict[str, Any]]:
        # No nudge: the wake's DescribeDBLogFiles starts the resume; the sensor's first probe is
        # held open and times out during it.
        woke = await run_operator(wake_operator(cluster, conn_id=None), secret_guard)
        ready = await run_sensor(ready_sensor(cluster, connect_timeout=CONNECT_TIMEOUT), secret_guard)
        return woke, ready

    (woke, ready), report = await asyncio.gather(
        airflow_run(), run_wake_and_wait(cluster, login, secret_guard, identifier=API, connect_timeout=3.0)
    )
    assert woke["action"] == "describe-log-files", woke
    for identifier, ready_at in ((cluster.identifier, ready["ready_at"]), (API, report.ready_at)):
        resumes = events(cluster, "resume-requested", identifier)
        # One deep resume, not restarted by the retries.
        assert len(resumes) == 1 and resumes[0].detail.get("deep") is True, resumes
        # The first attempt was held open and timed out (given up during the resume)...
        assert counter(cluster, "connections_abandoned", identifier) >= 1
        # ...and the retry succeeded, after the resume.
        assert_not_ready_early(cluster, ready_at, identifier=identifier)
    # wake_and_wait's own loop retried: its first attempt timed out, a later one connected.
    assert report.attempts >= 2


FAULTS = {
    "starting-up": Faults(after_resume_error="starting-up", after_resume_seconds=WINDOW),
    "too-many-connections": Faults(after_resume_error="too-many-connections", after_resume_seconds=WINDOW),
    "reset-during-resume": Faults(reset_during_resume=True),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_trouble_around_the_resume_is_retried(
    emulated: Any, login: Any, secret_guard: Any, fault: str
) -> None:
    cluster = emulated(kind="serverless-v2", state="paused", **login.cluster_kwargs())
    add_twin(cluster, API, kind="serverless-v2", state="paused", iam_auth=login.iam)
    cluster.emu.set_faults(FAULTS[fault])

    async def airflow_run() -> tuple[dict[str, Any], dict[str, Any]]:
        woke = await run_operator(wake_operator(cluster), secret_guard)
        ready = await run_sensor(ready_sensor(cluster), secret_guard)
        return woke, ready

    (woke, ready), report = await asyncio.gather(
        airflow_run(), run_wake_and_wait(cluster, login, secret_guard, identifier=API)
    )
    assert woke["action"] == "connection-nudge", woke
    window = 0.0 if fault == "reset-during-resume" else WINDOW
    hit = "connections_reset" if fault == "reset-during-resume" else "connections_failed_by_fault"
    for identifier, ready_at in ((cluster.identifier, ready["ready_at"]), (API, report.ready_at)):
        # The fault really hit this cluster's connections...
        assert counter(cluster, hit, identifier) >= 1, cluster.emu.counters()
        # ...and readiness came only once connections really worked: after the window.
        assert_not_ready_early(cluster, ready_at, identifier=identifier, after=window)
        assert len(events(cluster, "resume-requested", identifier)) == 1

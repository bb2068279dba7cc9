"""Holding a cluster warm and releasing it, against the emulator's RDS (moto's model, live state).

Each test reads the cluster back through ``DescribeDBClusters`` as any other holder would: its
scaling and its tags. Concurrent holds and releases really interleave: each is its own
sequence of HTTP calls on one event loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiobotocore.session import get_session

from airflow_aurora_wake.core.errors import ClusterStateError, InvalidParameterError
from airflow_aurora_wake.core.hold import (
    HOLD_TAG_PREFIX,
    HoldRequest,
    hold_cluster,
    release_cluster,
    sweep_holds,
)
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings

pytestmark = [pytest.mark.emulator, pytest.mark.db]

HOUR = 3600.0
ORIGINAL = {"MinCapacity": 0.0, "MaxCapacity": 4.0, "SecondsUntilAutoPause": 300}
#: A hold whose run died: taken two hours ago for one hour, never released.
DIED = HoldRequest("died", min_capacity=8, max_capacity=8, hold_for=HOUR)


@pytest.fixture
def emu(postgres_server: Any) -> Iterator[AuroraEmulator]:
    emulator = AuroraEmulator(
        [
            ClusterSpec("v2", state="paused"),
            ClusterSpec("awake", state="available", min_capacity=0.5, max_capacity=8),
            ClusterSpec("provisioned", kind="provisioned", state="available"),
            ClusterSpec("stopped", kind="serverless-v2", state="stopped"),
            ClusterSpec("running", kind="serverless-v2", state="available"),
        ],
        timings=Timings(resume_seconds=0.5, start_seconds=1.0, stop_seconds=0.5),
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.shutdown()


@pytest.fixture
async def rds(emu: AuroraEmulator) -> AsyncIterator[Any]:
    session = get_session()
    async with session.create_client(
        "rds",
        region_name=emu.region,
        endpoint_url=emu.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as client:
        yield client


def two_hours_ago() -> float:
    """The clock of a holder that ran two hours ago (its one-hour hold has expired)."""
    return time.time() - 2 * HOUR


def described(emu: AuroraEmulator, name: str) -> dict[str, Any]:
    return emu.boto3_client("rds").describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]


def hold_tags(emu: AuroraEmulator, name: str) -> list[str]:
    return sorted(
        tag["Key"]
        for tag in described(emu, name).get("TagList", [])
        if tag["Key"].startswith(HOLD_TAG_PREFIX)
    )


def scaling(emu: AuroraEmulator, name: str) -> dict[str, Any]:
    return dict(described(emu, name)["ServerlessV2ScalingConfiguration"])


def rds_calls(emu: AuroraEmulator, name: str) -> dict[str, int]:
    return dict(emu.counters()["rds_calls_by_cluster"].get(name, {}))


async def test_a_hold_resumes_a_paused_cluster_through_its_scaling_and_the_release_restores_it(
    emu: AuroraEmulator, rds: Any
) -> None:
    start = float(int(time.time()))
    held = await hold_cluster(
        rds, "v2", HoldRequest("run-1", min_capacity=2, hold_for=HOUR), clock=lambda: start
    )

    assert (held.action, held.settled, held.holds) == ("hold", True, 1)
    assert scaling(emu, "v2") == {"MinCapacity": 2.0, "MaxCapacity": 4.0}
    assert hold_tags(emu, "v2") == [f"{HOLD_TAG_PREFIX}run-1"]
    resumes = [e for e in emu.timeline("v2") if e.event == "resume-requested"]
    assert [e.detail.get("cause") for e in resumes] == ["modify-db-cluster"]

    # Released half an hour later, by the holder's clock: the window's cost is in the result.
    released = await release_cluster(rds, "v2", "run-1", clock=lambda: start + 1800)

    assert (released.released, released.restored, released.holds, released.stopped) == (True, True, 0, False)
    assert (released.min_capacity, released.held_seconds, released.acu_hours) == (2.0, 1800.0, 1.0)
    assert "1.000 ACU-hours" in released.detail
    assert scaling(emu, "v2") == ORIGINAL
    assert hold_tags(emu, "v2") == []


@pytest.mark.parametrize("first_to_end", ["small", "big"])
async def test_overlapping_holds_keep_the_highest_floor_and_the_last_release_restores(
    emu: AuroraEmulator, rds: Any, first_to_end: str
) -> None:
    await hold_cluster(rds, "v2", HoldRequest("small", min_capacity=2, hold_for=HOUR))
    await hold_cluster(rds, "v2", HoldRequest("big", min_capacity=8, max_capacity=16, hold_for=HOUR))
    assert scaling(emu, "v2") == {"MinCapacity": 8.0, "MaxCapacity": 16.0}

    last = "big" if first_to_end == "small" else "small"
    first = await release_cluster(rds, "v2", first_to_end)
    remaining = {
        "small": {"MinCapacity": 2.0, "MaxCapacity": 4.0},
        "big": {"MinCapacity": 8.0, "MaxCapacity": 16.0},
    }
    assert (first.holds, first.restored) == (1, False)
    assert scaling(emu, "v2") == remaining[last]

    final = await release_cluster(rds, "v2", last)
    assert (final.holds, final.restored) == (0, True)
    assert scaling(emu, "v2") == ORIGINAL
    assert hold_tags(emu, "v2") == []


async def test_concurrent_holds_and_releases_converge(emu: AuroraEmulator, rds: Any) -> None:
    """Eight holders hold and release at once, in a shuffled order: the scaling always ends right."""
    floors = {f"run-{index}": float(index + 1) for index in range(8)}
    await asyncio.gather(
        *(
            hold_cluster(rds, "v2", HoldRequest(h, min_capacity=f, max_capacity=8, hold_for=HOUR))
            for h, f in floors.items()
        )
    )
    assert scaling(emu, "v2")["MinCapacity"] == max(floors.values())
    assert len(hold_tags(emu, "v2")) == len(floors)

    order = list(floors)
    random.Random(7).shuffle(order)
    keep = order[:3]
    await asyncio.gather(*(release_cluster(rds, "v2", holder) for holder in order[3:]))
    assert scaling(emu, "v2")["MinCapacity"] == max(floors[h] for h in keep)
    # Holds and releases together: the last ones still converge.
    await asyncio.gather(
        hold_cluster(rds, "v2", HoldRequest("late", min_capacity=0.5, hold_for=HOUR)),
        *(release_cluster(rds, "v2", holder) for holder in keep),
    )
    assert scaling(emu, "v2") == {"MinCapacity": 0.5, "MaxCapacity": 4.0}
    await release_cluster(rds, "v2", "late")
    assert scaling(emu, "v2") == ORIGINAL
    assert hold_tags(emu, "v2") == []


async def test_an_expired_hold_is_ignored_and_swept_and_the_original_returns(
    emu: AuroraEmulator, rds: Any
) -> None:
    await hold_cluster(rds, "v2", DIED, clock=two_hours_ago)
    assert hold_tags(emu, "v2") == [f"{HOLD_TAG_PREFIX}died"]  # written, already expired

    swept = await sweep_holds(rds, "v2")

    assert (swept.released, swept.holds, swept.restored) == (True, 0, True)
    assert scaling(emu, "v2") == ORIGINAL
    assert hold_tags(emu, "v2") == []


async def test_another_hold_cleans_up_an_expired_one(emu: AuroraEmulator, rds: Any) -> None:
    await hold_cluster(rds, "v2", DIED, clock=two_hours_ago)
    await hold_cluster(rds, "v2", HoldRequest("alive", min_capacity=2, hold_for=HOUR))
    assert scaling(emu, "v2") == {"MinCapacity": 2.0, "MaxCapacity": 4.0}
    assert hold_tags(emu, "v2") == [f"{HOLD_TAG_PREFIX}alive"]
    await release_cluster(rds, "v2", "alive")
    assert scaling(emu, "v2") == ORIGINAL


async def test_holding_again_extends_the_same_hold(emu: AuroraEmulator, rds: Any) -> None:
    first = await hold_cluster(rds, "v2", HoldRequest("run-1", min_capacity=2, hold_for=60))
    again = await hold_cluster(rds, "v2", HoldRequest("run-1", min_capacity=2, hold_for=HOUR))
    assert again.since == first.since and again.until > first.until
    assert hold_tags(emu, "v2") == [f"{HOLD_TAG_PREFIX}run-1"]


async def test_a_cluster_already_awake_is_raised_and_given_back_its_own_range(
    emu: AuroraEmulator, rds: Any
) -> None:
    await hold_cluster(rds, "awake", HoldRequest("run-1", min_capacity=4, hold_for=HOUR))
    assert scaling(emu, "awake") == {"MinCapacity": 4.0, "MaxCapacity": 8.0}
    await release_cluster(rds, "awake", "run-1")
    assert scaling(emu, "awake") == {"MinCapacity": 0.5, "MaxCapacity": 8.0}


async def test_a_provisioned_cluster_has_nothing_to_hold(emu: AuroraEmulator, rds: Any) -> None:
    held = await hold_cluster(rds, "provisioned", HoldRequest("run-1", min_capacity=4, hold_for=HOUR))
    assert (held.action, held.scaling) == ("none", None)
    assert hold_tags(emu, "provisioned") == []
    assert "ModifyDBCluster" not in rds_calls(emu, "provisioned")


async def test_a_stopped_cluster_is_started_held_once_available_and_stopped_by_its_release(
    emu: AuroraEmulator, rds: Any
) -> None:
    held = await hold_cluster(rds, "stopped", HoldRequest("run-1", min_capacity=2, hold_for=HOUR))
    assert (held.action, held.settled) == ("start-and-hold", False)

    async def available() -> None:
        while emu.status("stopped") != "available":  # noqa: ASYNC110 -- the emulator's state, another thread
            await asyncio.sleep(0.05)

    await asyncio.wait_for(available(), 30)
    again = await hold_cluster(rds, "stopped", HoldRequest("run-1", min_capacity=2, hold_for=HOUR))
    assert (again.action, again.settled) == ("hold", True)
    assert scaling(emu, "stopped") == {"MinCapacity": 2.0, "MaxCapacity": 4.0}

    released = await release_cluster(rds, "stopped", "run-1", stop_if_started=True)
    assert (released.stopped, released.restored) == (True, True)
    assert rds_calls(emu, "stopped").get("StopDBCluster") == 1


async def test_a_release_never_stops_a_cluster_it_did_not_start(emu: AuroraEmulator, rds: Any) -> None:
    await hold_cluster(rds, "running", HoldRequest("run-1", min_capacity=2, hold_for=HOUR))
    released = await release_cluster(rds, "running", "run-1", stop_if_started=True)
    assert released.stopped is False
    assert "StopDBCluster" not in rds_calls(emu, "running")
    assert emu.status("running") != "stopped"


async def test_a_stopped_cluster_is_not_started_when_asked_not_to(emu: AuroraEmulator, rds: Any) -> None:
    with pytest.raises(ClusterStateError, match="stopped"):
        await hold_cluster(
            rds, "stopped", HoldRequest("run-1", min_capacity=2, hold_for=HOUR, start_if_stopped=False)
        )
    assert hold_tags(emu, "stopped") == []


async def test_releasing_a_hold_that_is_gone_changes_nothing(emu: AuroraEmulator, rds: Any) -> None:
    released = await release_cluster(rds, "v2", "never-held")
    assert (released.released, released.held_seconds, released.acu_hours) == (False, 0.0, 0.0)
    assert scaling(emu, "v2") == ORIGINAL
    assert "ModifyDBCluster" not in rds_calls(emu, "v2")


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"min_capacity": 2.25}, "min_capacity"),
        ({"min_capacity": 300}, "min_capacity"),
        ({"min_capacity": 0}, "min_capacity"),
        ({"min_capacity": 4, "max_capacity": 2}, "max_capacity"),
        ({"hold_for": 3 * 86400}, "hold_for"),
        ({"hold_for": 0}, "hold_for"),
        ({"holder": "two words"}, "holder"),
    ],
)
def test_bad_requests_are_refused_when_built(kwargs: dict[str, Any], parameter: str) -> None:
    arguments = {"holder": "run-1", "min_capacity": 2, "hold_for": HOUR, **kwargs}
    with pytest.raises(InvalidParameterError, match=parameter):
        HoldRequest(**arguments)


async def test_a_floor_above_the_clusters_maximum_is_refused_before_anything_changes(
    emu: AuroraEmulator, rds: Any
) -> None:
    with pytest.raises(InvalidParameterError, match=r"at most 4 ACUs.*max_capacity >= 8"):
        await hold_cluster(rds, "v2", HoldRequest("run-1", min_capacity=8, hold_for=HOUR))
    assert hold_tags(emu, "v2") == []
    assert set(rds_calls(emu, "v2")) == {"DescribeDBClusters"}
    assert scaling(emu, "v2") == ORIGINAL

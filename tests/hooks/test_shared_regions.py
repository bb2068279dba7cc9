"""The effective AWS region, resolved once per (AWS connection, region given) per event loop."""

from __future__ import annotations

import asyncio

import pytest
from airflow_support import set_connection

from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook
from airflow_aurora_wake.hooks.shared_clients import SHARED_REGIONS, SharedRegions


class Clock:
    """A hand-moved clock for the cache's time to live."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_lookups_of_one_key_resolve_once() -> None:
    cache, looked_up = SharedRegions(), []

    async def resolve() -> str:
        looked_up.append("aws_default")
        await asyncio.sleep(0.01)  # still under way while the other callers arrive
        return "eu-west-1"

    async def resolve_other() -> str:
        looked_up.append("aws_other")
        return "us-east-2"

    regions = await asyncio.gather(*(cache.region(("aws_default", None), resolve) for _ in range(200)))
    assert set(regions) == {"eu-west-1"}
    assert await cache.region(("aws_other", None), resolve_other) == "us-east-2"
    assert await cache.region(("aws_default", None), resolve) == "eu-west-1"
    assert looked_up == ["aws_default", "aws_other"]


async def test_a_failed_lookup_is_not_kept() -> None:
    cache, answers = SharedRegions(), [RuntimeError("secrets backend down"), "eu-west-1"]

    async def resolve() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, str)
        return answer

    with pytest.raises(RuntimeError, match="secrets backend down"):
        await cache.region("k", resolve)
    assert await cache.region("k", resolve) == "eu-west-1"
    assert answers == []


async def test_a_resolved_region_expires() -> None:
    clock = Clock()
    cache, answers = SharedRegions(clock=clock), ["eu-west-1", "eu-central-1"]

    async def resolve() -> str:
        return answers.pop(0)

    assert await cache.region("k", resolve) == "eu-west-1"
    clock.now = SharedRegions.REGION_TTL - 1
    assert await cache.region("k", resolve) == "eu-west-1"
    clock.now = SharedRegions.REGION_TTL + 1  # an edited connection is seen again
    assert await cache.region("k", resolve) == "eu-central-1"


def test_each_event_loop_resolves_its_own() -> None:
    cache, looked_up = SharedRegions(), []

    async def resolve() -> str:
        looked_up.append(asyncio.get_running_loop())
        return "eu-west-1"

    for _ in range(2):
        assert asyncio.run(cache.region("k", resolve)) == "eu-west-1"
    assert len(looked_up) == 2 and looked_up[0] is not looked_up[1]


async def test_the_hook_caches_the_connections_region_not_its_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_connection(
        monkeypatch,
        "aws_region_cache",
        conn_type="aws",
        login="AKIDREGIONCACHE",
        password="region-cache-secret",
        extra={"region_name": "eu-west-1"},
    )
    hooks = [AuroraServerlessHook(aws_conn_id="aws_region_cache") for _ in range(50)]
    regions = await asyncio.gather(*(hook.aget_region_name() for hook in hooks))
    assert set(regions) == {"eu-west-1"}
    kept = SHARED_REGIONS._by_loop[asyncio.get_running_loop()]
    assert list(kept) == [("aws_region_cache", None)]
    # Only the region name is kept: nothing of the connection, its login or its secret.
    assert [future.result() for _, future in kept.values()] == ["eu-west-1"]
    # A region given is its own key (the parameter wins over the connection).
    given = AuroraServerlessHook(aws_conn_id="aws_region_cache", region_name="ap-south-1")
    assert await given.aget_region_name() == "ap-south-1"
    SHARED_REGIONS.forget()

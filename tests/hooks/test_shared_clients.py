"""aiobotocore clients shared per event loop: one per key while used, closed by the last user."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_aurora_wake.hooks.shared_clients import SharedClients


class FakeCreator:
    """Stands for aiobotocore's client creator context manager."""

    def __init__(self, log: list[str], delay: float = 0.0) -> None:
        self.log = log
        self.delay = delay

    async def __aenter__(self) -> object:
        await asyncio.sleep(self.delay)
        self.log.append("open")
        return object()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.log.append("close")


async def test_users_of_one_key_share_one_client_closed_by_the_last() -> None:
    pool, log = SharedClients(), []

    async def create() -> FakeCreator:
        log.append("create")
        return FakeCreator(log, delay=0.01)

    async with pool.client("k", create) as first, pool.client("k", create) as second:
        assert first is second
        async with pool.client("other", create) as third:
            assert third is not first
        assert pool.active() == 1
    assert pool.active() == 0
    assert log.count("create") == 2 and log.count("open") == 2 and log.count("close") == 2


async def test_a_user_cancelled_during_creation_does_not_cancel_it_for_the_others() -> None:
    pool, log = SharedClients(), []

    async def create() -> FakeCreator:
        return FakeCreator(log, delay=0.05)

    async def use() -> None:
        async with pool.client("k", create):
            await asyncio.sleep(0.05)

    cancelled = asyncio.ensure_future(use())
    kept = asyncio.ensure_future(use())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await kept
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert log == ["open", "close"] and pool.active() == 0


async def test_a_failed_creation_is_not_reused() -> None:
    pool, attempts = SharedClients(), []

    async def create() -> FakeCreator:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("no credentials")
        return FakeCreator([])

    with pytest.raises(RuntimeError):
        async with pool.client("k", create):
            pass
    async with pool.client("k", create) as client:
        assert client is not None
    assert len(attempts) == 2 and pool.active() == 0

"""aiobotocore clients shared by every hook of one event loop (all triggers of a triggerer).

Creating a client costs about 0.1 s of CPU and 1.4 MB; one per trigger would stall the
triggerer's loop and grow its memory with the number of waits.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["SHARED_CLIENTS", "SHARED_REGIONS", "SharedClients", "SharedRegions"]


class _SharedClient:
    """One aiobotocore client and the users holding it (see :class:`SharedClients`)."""

    def __init__(self, task: asyncio.Task[tuple[Any, Any]]) -> None:
        self.task = task
        self.users = 0
        self.closing = False

    def usable(self) -> bool:
        if self.closing:
            return False
        if not self.task.done():
            return True
        return not self.task.cancelled() and self.task.exception() is None


class SharedClients:
    """aiobotocore clients shared per event loop by key; closed when their last user leaves.

    The client is created in a task of its own, so a user cancelled while it is being created
    does not cancel it for the others; the last user to leave closes it (or cancels its
    creation). A creation that failed is not reused: the next user creates a new one.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _SharedClient]] = (
            weakref.WeakKeyDictionary()
        )

    def active(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """How many shared clients are open or opening in ``loop`` (default: the running loop).

        :param loop: The event loop.
        """
        return len(self._by_loop.get(loop or asyncio.get_running_loop(), {}))

    @asynccontextmanager
    async def client(self, key: Hashable, create: Callable[[], Awaitable[Any]]) -> AsyncIterator[Any]:
        """Yield the shared client for ``key``, creating it with ``create()`` when there is none.

        :param key: What makes two clients interchangeable (service, connection, region...).
        :param create: Returns an aiobotocore client context manager (not yet entered).
        """
        loop = asyncio.get_running_loop()
        entries = self._by_loop.setdefault(loop, {})
        entry = entries.get(key)
        if entry is None or not entry.usable():

            async def open_client() -> tuple[Any, Any]:
                creator = await create()
                return creator, await creator.__aenter__()

            entry = _SharedClient(loop.create_task(open_client(), name="aurora-wake-aws-client"))
            entries[key] = entry
        entry.users += 1
        try:
            _, client = await asyncio.shield(entry.task)
            yield client
        finally:
            entry.users -= 1
            if entry.users == 0 and not entry.closing:
                entry.closing = True
                if entries.get(key) is entry:
                    del entries[key]
                await self._close(entry)

    @staticmethod
    async def _close(entry: _SharedClient) -> None:
        task = entry.task
        if not task.done():
            task.cancel()
        await asyncio.wait([task])
        if task.cancelled() or task.exception() is not None:
            return
        creator, _ = task.result()
        await creator.__aexit__(None, None, None)


#: The process-wide pool of shared aiobotocore clients (one per key per event loop).
SHARED_CLIENTS = SharedClients()


class SharedRegions:
    """The effective AWS region per (AWS connection, region given), per event loop.

    Resolving it goes through the AWS connection on asgiref's single ``sync_to_async`` thread
    (about 2.6 ms each, holding the GIL against the loop); two thousand triggers starting
    together would each do it. Only the region name is kept (never the connection or its
    credentials), for :data:`REGION_TTL` seconds so an edited connection is seen again; look-ups
    under way are shared, and a failed one is not kept.
    """

    #: Seconds a resolved region is reused.
    REGION_TTL = 300.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, tuple[float, asyncio.Future[str | None]]]
        ] = weakref.WeakKeyDictionary()

    async def region(self, key: Hashable, resolve: Callable[[], Awaitable[str | None]]) -> str | None:
        """Return the region for ``key``, resolving it with ``resolve()`` when not known.

        :param key: the AWS connection id and the region given (``None``: the connection's).
        :param resolve: looks the region up (without blocking the loop).
        """
        loop = asyncio.get_running_loop()
        entries = self._by_loop.setdefault(loop, {})
        entry = entries.get(key)
        now = self._clock()
        if entry is None or now - entry[0] > self.REGION_TTL or _failed(entry[1]):
            entry = (now, loop.create_task(_resolved(resolve), name="aurora-wake-aws-region"))
            entries[key] = entry
        # Shielded: one caller cancelled does not cancel the look-up the others wait for.
        return await asyncio.shield(entry[1])

    def forget(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Drop what ``loop`` (default: the running loop) knows (tests, an edited connection).

        :param loop: the event loop.
        """
        self._by_loop.pop(loop or asyncio.get_running_loop(), None)


async def _resolved(resolve: Callable[[], Awaitable[str | None]]) -> str | None:
    return await resolve()


def _failed(future: asyncio.Future[str | None]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


#: The process-wide region cache (per event loop).
SHARED_REGIONS = SharedRegions()

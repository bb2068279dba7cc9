"""aiobotocore clients shared by every hook of one event loop (all triggers of a triggerer).

Creating a client costs about 0.1 s of CPU and 1.4 MB; one per trigger would stall the
triggerer's loop and grow its memory with the number of waits.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["SHARED_CLIENTS", "SharedClients"]


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

"""The emulator's asyncio event loop, run in a background thread (database endpoints, Data API)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: How long to wait for the loop thread, the server thread or a call into the loop, in seconds.
THREAD_TIMEOUT = 10.0


class LoopThread:
    """An event loop running forever in a daemon thread, until :meth:`stop`.

    :param name: the thread's name.
    """

    def __init__(self, name: str = "aurora-emulator-loop") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the loop runs (coroutines can be submitted)."""
        return self._loop is not None and self._loop.is_running()

    def start(self, timeout: float) -> None:
        """Start a new loop and wait until it runs.

        :param timeout: how long to wait for the thread.
        :raises RuntimeError: if the loop did not start in time.
        """
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            # Let cancelled tasks finish their clean-up before the loop closes.
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

        self._loop = loop
        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the emulator's event loop did not start")

    def in_loop_thread(self) -> bool:
        """Whether the caller runs on the loop's thread (or no loop thread exists)."""
        thread = self._thread
        return thread is None or threading.get_ident() == thread.ident

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run a coroutine on the loop from another thread and return its result.

        :param coro: the coroutine.
        :param timeout: how long to wait for the result.
        :raises RuntimeError: if the loop is not running.
        """
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the emulator is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Schedule ``callback`` on the loop from any thread; nothing happens once it closed.

        :param callback: the function to call.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # RuntimeError: the loop is shutting down, nothing left to do.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    def stop(self, timeout: float) -> None:
        """Stop the loop, join its thread and close it.

        :param timeout: how long to wait for the thread.
        """
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if loop is not None and not loop.is_running() and not loop.is_closed():
            loop.close()
        self._loop = None

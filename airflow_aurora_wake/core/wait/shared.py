"""Shared waits: one describe-and-probe loop per cluster key per event loop.

A triggerer runs every trigger in one event loop, so a thousand waits on one cluster make one
poller, not a thousand. Each waiter keeps its own deadline; the poller stops and closes its
clients when its last waiter leaves (also by cancellation).

Timing uses the event loop's clock (``loop.time()``) for durations and an injectable wall
clock for the absolute deadline, so tests can run on a virtual-time loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
import weakref
from collections.abc import Callable, Hashable

from airflow_aurora_wake.core.errors import ReadyTimeoutError
from airflow_aurora_wake.core.validation import validate_deadline
from airflow_aurora_wake.core.wait.poller import Poller, Waiter
from airflow_aurora_wake.core.wait.request import LogCallback, ReadyReport, WaitRequest, WaitResources

__all__ = ["SHARED_WAITS", "SharedWaitRegistry", "wait_until_ready"]

logger = logging.getLogger(__name__)


def _default_log(message: str) -> None:
    logger.info("%s", message)


class SharedWaitRegistry:
    """Pollers by share key, per event loop: waits with the same key share one poller.

    A triggerer runs all triggers in one event loop, so a module-level registry is shared by
    every trigger of that triggerer. Keys should identify the cluster and the connection used.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, Poller]] = (
            weakref.WeakKeyDictionary()
        )

    def _pollers(self) -> dict[Hashable, Poller]:
        loop = asyncio.get_running_loop()
        pollers = self._by_loop.get(loop)
        if pollers is None:
            pollers = {}
            self._by_loop[loop] = pollers
        return pollers

    def active_pollers(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """Return how many pollers run in ``loop`` (default: the running loop).

        :param loop: the event loop.
        """
        loop = loop or asyncio.get_running_loop()
        return len(self._by_loop.get(loop, {}))

    def active_tasks(self, loop: asyncio.AbstractEventLoop | None = None) -> list[asyncio.Task[None]]:
        """Return the poller tasks of ``loop`` (for tests and diagnostics).

        :param loop: the event loop.
        """
        loop = loop or asyncio.get_running_loop()
        return [poller.task for poller in self._by_loop.get(loop, {}).values() if poller.task is not None]

    def _join(
        self,
        key: Hashable,
        request: WaitRequest,
        resources: WaitResources,
        *,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> Poller:
        pollers = self._pollers()
        # The request is part of the key: waits that differ in any setting never share.
        full_key = (key, request)
        poller = pollers.get(full_key)
        if poller is None or poller.finished:

            def forget(
                finished: Poller, full_key: Hashable = full_key, pollers: dict[Hashable, Poller] = pollers
            ) -> None:
                if pollers.get(full_key) is finished:
                    del pollers[full_key]

            poller = Poller(request, resources, clock=clock, rng=rng, on_finish=forget)
            pollers[full_key] = poller
            poller.start()
        return poller


#: The process-wide registry (one poller per key per event loop).
SHARED_WAITS = SharedWaitRegistry()


async def _stop_poller(poller: Poller) -> None:
    task = poller.task
    # Wait for the poller to close its sockets and clients; if we are cancelled meanwhile the
    # CancelledError propagates (asyncio.wait does not swallow it). Cancel again while it runs:
    # a cancellation swallowed by asyncio.wait_for (Python 3.11) must not leave us waiting.
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1.0)


async def wait_until_ready(
    request: WaitRequest,
    resources: WaitResources,
    *,
    deadline: float,
    share_key: Hashable | None = None,
    log: LogCallback = _default_log,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    registry: SharedWaitRegistry | None = None,
) -> ReadyReport:
    """Wait until the cluster is available and a real ``SELECT 1`` ran, or the deadline passes.

    :param request: what to wait for.
    :param resources: clients and database login.
    :param deadline: absolute epoch seconds (``time.time()`` + timeout).
    :param share_key: waits with the same key (and equal request) in this event loop share one
        describe-and-probe loop; ``None`` waits alone.
    :param log: receives each change of state once, with the elapsed time; never secrets.
    :param clock: the wall clock (inject with a virtual-time loop in tests).
    :param rng: random source for backoff jitter.
    :param registry: the registry for shared waits (default: :data:`SHARED_WAITS`).
    :raises ReadyTimeoutError: at the deadline, with a diagnosis.
    :raises AuroraWakeError: on anything waiting cannot fix (unknown cluster, wrong login, ...).
    """
    validate_deadline(deadline)
    loop = asyncio.get_running_loop()
    rng = rng or random.Random()
    if share_key is None:
        poller = Poller(request, resources, clock=clock, rng=rng)
        poller.start()
    else:
        poller = (registry or SHARED_WAITS)._join(share_key, request, resources, clock=clock, rng=rng)
    waiter = Waiter(loop, loop.time() + (deadline - clock()), log)
    poller.add_waiter(waiter)
    try:
        remaining = waiter.deadline - loop.time()
        if remaining <= 0:
            # Began after its deadline (a trigger re-created late): say so, not "nothing answered".
            raise ReadyTimeoutError(dataclasses.replace(poller.diagnosis(waiter), started_late=-remaining))
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout=remaining)
        except asyncio.TimeoutError:
            if waiter.future.done() and not waiter.future.cancelled():
                return waiter.future.result()  # resolved in the same instant as the deadline
            diagnosis = poller.diagnosis(waiter)
            with contextlib.suppress(Exception):
                log(f"timed out: {diagnosis.describe()}")
            raise ReadyTimeoutError(diagnosis) from None
    finally:
        if poller.remove_waiter(waiter):
            await _stop_poller(poller)

"""pytest fixtures for the emulator of sleeping Aurora clusters.

Enable in a ``conftest.py`` with::

    pytest_plugins = ["airflow_aurora_wake.emulator.pytest_plugin"]

``aurora_emulator`` is a started emulator with no clusters (add them with ``add_cluster``);
``aurora_emulator_factory`` builds emulators from the constructor's arguments. Every emulator
is shut down when the test ends, even when it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_aurora_wake.emulator import AuroraEmulator


@pytest.fixture
def aurora_emulator_factory() -> Iterator[Callable[..., AuroraEmulator]]:
    """Build and start ``AuroraEmulator(*args, **kwargs)``; all are shut down after the test."""
    started: list[AuroraEmulator] = []

    def make(*args: Any, **kwargs: Any) -> AuroraEmulator:
        emulator = AuroraEmulator(*args, **kwargs)
        started.append(emulator)
        return emulator.start()

    try:
        yield make
    finally:
        for emulator in reversed(started):
            emulator.shutdown()


@pytest.fixture
def aurora_emulator(aurora_emulator_factory: Callable[..., AuroraEmulator]) -> AuroraEmulator:
    """A started emulator with no clusters and default timings and faults."""
    return aurora_emulator_factory()

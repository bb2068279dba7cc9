"""Fixtures of the emulator's tests: the packaged pytest fixtures, a fast emulator, a client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from emulator_helpers import FAST, NO_RETRY

from airflow_aurora_wake.emulator import AuroraEmulator

# The packaged fixtures, exactly as users get them (pytest_plugins is only allowed in the
# root conftest, so import them here instead).
from airflow_aurora_wake.emulator.pytest_plugin import (  # noqa: F401
    aurora_emulator,
    aurora_emulator_factory,
)


@pytest.fixture
def emu(aurora_emulator_factory: Callable[..., AuroraEmulator]) -> AuroraEmulator:  # noqa: F811
    """A started emulator with the fast timings and no clusters."""
    return aurora_emulator_factory(timings=FAST)


@pytest.fixture
def rds(emu: AuroraEmulator) -> Any:
    """An RDS client of ``emu`` that does not retry."""
    return emu.boto3_client("rds", config=NO_RETRY)

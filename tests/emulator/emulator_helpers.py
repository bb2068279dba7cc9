"""Helpers shared by the emulator's tests (a module, so that test files can import them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_aurora_wake.emulator import AuroraEmulator, Timings

#: Short timings so the suite is fast; deep sleep and start/stop stay distinguishable.
FAST = Timings(
    resume_seconds=1.0,
    v1_capacity_seconds=0.8,
    v1_connect_extra_seconds=0.8,
    start_seconds=1.0,
    stop_seconds=0.5,
    deep_sleep_after_seconds=3600.0,
    deep_resume_seconds=2.0,
)

#: botocore without retries, so injected errors are seen as they are.
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll the emulator's own state until ``predicate`` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def events(emu: AuroraEmulator, identifier: str, name: str) -> list[float]:
    """Times of the named timeline events of a cluster."""
    return [event.at for event in emu.timeline(identifier) if event.event == name]


@dataclass(frozen=True)
class ErrorInfo:
    """What botocore parsed from an error answer."""

    code: str
    message: str
    status: int


def error_of(exc: ClientError) -> ErrorInfo:
    """Code, message and HTTP status of a botocore ``ClientError``."""
    response = exc.response
    return ErrorInfo(
        code=response["Error"]["Code"],
        message=response["Error"].get("Message", ""),
        status=response["ResponseMetadata"]["HTTPStatusCode"],
    )

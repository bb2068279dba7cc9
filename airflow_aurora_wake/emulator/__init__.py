"""Emulator of sleeping Amazon Aurora clusters, for pipeline tests.

An emulated AWS endpoint (moto's RDS and Secrets Manager, plus the sleeping behaviour moto
lacks) and one real database endpoint per emulated cluster, all on 127.0.0.1. See
``docs/emulator.md``.

``AuroraEmulator`` is imported lazily, so that importing this package (the command line does,
to build its parser) does not need moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_aurora_wake.emulator.config import (
    ClusterEndpoint,
    ClusterSpec,
    Faults,
    TimelineEvent,
    Timings,
)
from airflow_aurora_wake.emulator.connections import ConnectionDefinition
from airflow_aurora_wake.emulator.readerconfig import ReaderSpec

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator.emulator import AuroraEmulator

__all__ = [
    "AuroraEmulator",
    "ClusterEndpoint",
    "ClusterSpec",
    "ConnectionDefinition",
    "Faults",
    "ReaderSpec",
    "TimelineEvent",
    "Timings",
]


def __getattr__(name: str) -> Any:
    if name == "AuroraEmulator":
        from airflow_aurora_wake.emulator.emulator import AuroraEmulator

        return AuroraEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

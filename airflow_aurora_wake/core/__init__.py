"""The Airflow-free core: wake sleeping Aurora clusters and wait for a real connection.

Nothing below this package imports Airflow, so a Lambda or a script can use it. The Airflow
adapters (hooks, operators, sensors, triggers) are thin layers over it. This module names what a
script needs; every exception is in :mod:`airflow_aurora_wake.core.errors`, and the building
blocks (``rds``, ``probes``, ``targets``, ``wait``, ``wake``) in their own modules.
"""

from __future__ import annotations

from airflow_aurora_wake.core.api import wake_and_wait, wake_and_wait_sync
from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot, StatusCategory, classify_cluster
from airflow_aurora_wake.core.errors import AuroraWakeError, InvalidParameterError, ReadyTimeoutError
from airflow_aurora_wake.core.probes import DatabaseTarget
from airflow_aurora_wake.core.targets import LoginSettings, build_target
from airflow_aurora_wake.core.wait import ReadyReport, WaitRequest, check_ready_once, wait_until_ready
from airflow_aurora_wake.core.wake import WakeAction, WakeOptions, WakeResult, plan_wake, wake_cluster

__all__ = [
    "AuroraWakeError",
    "ClusterKind",
    "ClusterSnapshot",
    "DatabaseTarget",
    "InvalidParameterError",
    "LoginSettings",
    "ReadyReport",
    "ReadyTimeoutError",
    "StatusCategory",
    "WaitRequest",
    "WakeAction",
    "WakeOptions",
    "WakeResult",
    "build_target",
    "check_ready_once",
    "classify_cluster",
    "plan_wake",
    "wait_until_ready",
    "wake_and_wait",
    "wake_and_wait_sync",
    "wake_cluster",
]

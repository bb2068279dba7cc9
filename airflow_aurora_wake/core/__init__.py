"""The Airflow-free core: wake sleeping Aurora clusters and wait for a real connection.

Nothing below this package imports Airflow, so a Lambda or a script can use it. The Airflow
adapters (hooks, operators, sensors, triggers) are thin layers over these names.
"""

from __future__ import annotations

from airflow_aurora_wake.core.api import wake_and_wait, wake_and_wait_sync
from airflow_aurora_wake.core.cluster import (
    ClusterKind,
    ClusterSnapshot,
    StatusCategory,
    classify_cluster,
    engine_family,
)
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    AwsApiError,
    AwsCredentialsError,
    AwsPermissionError,
    ClusterDeletedError,
    ClusterDescriptionError,
    ClusterNotFoundError,
    ClusterStateError,
    DataApiNotEnabledError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
    DatabaseProbeError,
    ErrorVerdict,
    InvalidParameterError,
    ReadyTimeoutError,
    TransientError,
    WaitDiagnosis,
    classify_error,
    redact,
)
from airflow_aurora_wake.core.probes import (
    DatabaseTarget,
    check_target_engine,
    nudge_database,
    probe_data_api,
    probe_database,
)
from airflow_aurora_wake.core.rds import (
    RdsCalls,
    describe_cluster,
    modify_current_capacity,
    retry_transient,
    start_cluster,
)
from airflow_aurora_wake.core.retry import PROBE_RETRY, THROTTLE_RETRY, RetryPolicy
from airflow_aurora_wake.core.wait import (
    SHARED_WAITS,
    CheckOutcome,
    ReadyReport,
    SharedWaitRegistry,
    WaitRequest,
    WaitResources,
    check_ready_once,
    wait_until_ready,
)
from airflow_aurora_wake.core.wake import (
    WakeAction,
    WakeOptions,
    WakePlan,
    WakeResult,
    execute_wake,
    plan_wake,
    wake_cluster,
)

__all__ = [
    "PROBE_RETRY",
    "SHARED_WAITS",
    "THROTTLE_RETRY",
    "AuroraWakeError",
    "AwsApiError",
    "AwsCredentialsError",
    "AwsPermissionError",
    "CheckOutcome",
    "ClusterDeletedError",
    "ClusterDescriptionError",
    "ClusterKind",
    "ClusterNotFoundError",
    "ClusterSnapshot",
    "ClusterStateError",
    "DataApiNotEnabledError",
    "DatabaseAuthenticationError",
    "DatabaseConfigurationError",
    "DatabaseProbeError",
    "DatabaseTarget",
    "ErrorVerdict",
    "InvalidParameterError",
    "RdsCalls",
    "ReadyReport",
    "ReadyTimeoutError",
    "RetryPolicy",
    "SharedWaitRegistry",
    "StatusCategory",
    "TransientError",
    "WaitDiagnosis",
    "WaitRequest",
    "WaitResources",
    "WakeAction",
    "WakeOptions",
    "WakePlan",
    "WakeResult",
    "check_ready_once",
    "check_target_engine",
    "classify_cluster",
    "classify_error",
    "describe_cluster",
    "engine_family",
    "execute_wake",
    "modify_current_capacity",
    "nudge_database",
    "plan_wake",
    "probe_data_api",
    "probe_database",
    "redact",
    "retry_transient",
    "start_cluster",
    "wait_until_ready",
    "wake_and_wait",
    "wake_and_wait_sync",
    "wake_cluster",
]

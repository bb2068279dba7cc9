"""DAGs whose ``dag.test()`` runs send the provider's metrics (tests/utils/test_metrics.py).

Independent tasks on the emulator's clusters, one per path that sends metrics. ``ready`` waits
on ``STARTED`` after ``wake`` started it (deferred: the start takes longer than the check before
deferring), ``ready_poke`` on a paused v2 cluster in poke mode, ``ready_warm`` and
``ready_reschedule`` on a cluster up already (the check before deferring; reschedule mode).
The failing DAG: a wake and a wait on a cluster that does not exist (they fail fast in the
worker), waits on a cluster that stays stopped that time out in the triggerer and in poke mode,
and one whose stopped grace runs out in the triggerer.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

AWS_CONN_ID = "aws_emulator"
DB_CONN_ID = "aurora_db"
#: Stopped: ``wake`` starts it.
STARTED = "metrics-started"
#: Paused Serverless v2: the poke's own connection attempt resumes it.
PAUSED = "metrics-paused"
#: Available: ready at the check before deferring.
WARM = "metrics-warm"
#: Stopped, and nothing starts it.
STAYS_STOPPED = "metrics-stays-stopped"
#: No such cluster.
GHOST = "metrics-ghost"

_COMMON: dict[str, Any] = {"aws_conn_id": AWS_CONN_ID}
_WAIT: dict[str, Any] = {**_COMMON, "conn_id": DB_CONN_ID, "describe_interval": 0.5, "connect_timeout": 10}


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)


with _dag("metrics_ready") as ready_dag:
    wake = AuroraServerlessWakeOperator(task_id="wake", db_cluster_identifier=STARTED, **_COMMON)
    ready = AuroraServerlessReadySensor(task_id="ready", db_cluster_identifier=STARTED, timeout=60, **_WAIT)
    wake >> ready
    AuroraServerlessReadySensor(
        task_id="ready_poke",
        db_cluster_identifier=PAUSED,
        deferrable=False,
        mode="poke",
        poke_interval=1,
        timeout=60,
        **_WAIT,
    )
    AuroraServerlessReadySensor(task_id="ready_warm", db_cluster_identifier=WARM, timeout=60, **_WAIT)
    AuroraServerlessReadySensor(
        task_id="ready_reschedule",
        db_cluster_identifier=WARM,
        deferrable=False,
        mode="reschedule",
        poke_interval=1,
        timeout=60,
        **_WAIT,
    )

with _dag("metrics_failures") as failures_dag:
    AuroraServerlessWakeOperator(task_id="wake_ghost", db_cluster_identifier=GHOST, **_COMMON)
    AuroraServerlessReadySensor(task_id="ready_ghost", db_cluster_identifier=GHOST, timeout=60, **_WAIT)
    AuroraServerlessReadySensor(
        task_id="timeout_deferred", db_cluster_identifier=STAYS_STOPPED, timeout=2, stopped_grace=600, **_WAIT
    )
    AuroraServerlessReadySensor(
        task_id="timeout_poke",
        db_cluster_identifier=STAYS_STOPPED,
        deferrable=False,
        mode="poke",
        poke_interval=1,
        timeout=2,
        stopped_grace=600,
        **_WAIT,
    )
    AuroraServerlessReadySensor(
        task_id="grace_spent_deferred",
        db_cluster_identifier=STAYS_STOPPED,
        timeout=60,
        stopped_grace=3,
        **_WAIT,
    )

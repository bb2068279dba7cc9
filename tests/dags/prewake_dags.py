"""DAGs of the pre-wake's ``dag.test()`` runs (tests/operators/test_operator_prewake.py).

A target DAG every two minutes on the cluster ``sales`` of the emulator, and companions built
by ``aurora_prewake_dag`` with a lead that is set, learned, or set and recorded, through the
connections the ``emulated`` fixture defines.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_aurora_wake.dag_factories.prewake import aurora_prewake_dag
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor
from airflow_aurora_wake.task_groups.warm_window import AuroraServerlessWarmWindow

CLUSTER = "sales"
AWS_CONN_ID = "aws_emulator"
DB_CONN_ID = "aurora_db"
#: How far ahead of the target run each companion run starts, in the tests.
MAX_LEAD = timedelta(seconds=30)

with DAG(
    "prewake_target",
    schedule=timedelta(minutes=2),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
) as prewake_target:
    AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=CLUSTER,
        conn_id=DB_CONN_ID,
        aws_conn_id=AWS_CONN_ID,
        timeout=60,
    )

_COMMON = {
    "db_cluster_identifier": CLUSTER,
    "conn_id": DB_CONN_ID,
    "aws_conn_id": AWS_CONN_ID,
    "max_lead_time": MAX_LEAD,
    "timeout": 60,
}
#: Wakes 2 s before the run.
prewake_fixed = aurora_prewake_dag(prewake_target, dag_id="prewake_fixed", lead_time=2, **_COMMON)
#: Learns the lead from the cluster's recorded resumes (and records its own).
prewake_learned = aurora_prewake_dag(prewake_target, dag_id="prewake_learned", **_COMMON)
#: Wakes 2 s before the run and records the resume all the same.
prewake_recorded = aurora_prewake_dag(
    prewake_target, dag_id="prewake_recorded", lead_time=2, record_resumes=True, **_COMMON
)

with (
    DAG(
        "prewake_window_target",
        schedule=timedelta(minutes=2),
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        is_paused_upon_creation=False,
    ) as prewake_window_target,
    AuroraServerlessWarmWindow(
        "warm",
        db_cluster_identifier=CLUSTER,
        conn_id=DB_CONN_ID,
        aws_conn_id=AWS_CONN_ID,
        min_capacity=2,
        hold_for=timedelta(hours=1),
        ready_timeout=60,
    ),
):
    AuroraServerlessReadySensor(
        task_id="etl",
        db_cluster_identifier=CLUSTER,
        conn_id=DB_CONN_ID,
        aws_conn_id=AWS_CONN_ID,
        timeout=60,
    )
#: Begins the target run's warm window 2 s before the run.
prewake_window = aurora_prewake_dag(
    prewake_window_target, dag_id="prewake_window", lead_time=2, warm_window="warm", **_COMMON
)

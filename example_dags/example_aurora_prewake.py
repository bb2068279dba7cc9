"""
Wake an Aurora cluster just before each scheduled run, so the run starts on a warm database.

Two DAGs in one file:

- ``example_aurora_prewake``, the pipeline, runs every day at 06:00 UTC:
  ``ready >> report``. ``ready`` is the usual deferrable readiness sensor: when the pre-wake
  worked, the cluster already answers and it passes at once, without deferring; when the
  pre-wake failed or ran late, it waits for the resume as it would without one.
- ``example_aurora_prewake__aurora_prewake``, its companion, built by ``aurora_prewake_dag``:
  each of its runs starts 15 minutes (``max_lead_time``) before a run of the pipeline, waits in
  the triggerer until ``06:00 - lead``, wakes the cluster, waits in the triggerer until a real
  ``SELECT 1`` succeeds, and records how long the resume took on the cluster's
  ``aurora-wake:resumes`` tag. The lead is learned from those records (their 90th percentile
  plus a margin; 60 s for a Serverless v2 or v1 resume until 3 are recorded, 15 minutes for a
  stopped cluster's start). Its XCom says ``warm_seconds``, the warm time paid for before the
  run, and ``resume_seconds``.

Nothing is woken for a run that will not happen: the pre-wake skips when the pipeline is paused
or has no such next run, and when it starts after the run began (a missed pre-wake: the
pipeline's ``ready`` waits as usual).

Configured by Airflow connections and Variables only, those of
``example_aurora_serverless_wake``:

- Connection ``aws_default`` (type ``aws``): credentials allowed to call
  ``rds:DescribeDBClusters`` and ``rds:AddTagsToResource`` (the resume records), and what the
  wake needs: ``rds:StartDBCluster`` for stopped clusters, ``rds:ModifyCurrentDBClusterCapacity``
  for v1.
- Variable ``aurora_wake_example_cluster``: the DB cluster identifier (or ARN).
- Connection ``aurora_pg`` (type ``postgres``), or the connection named by the optional Variable
  ``aurora_wake_example_conn_id`` (a ``mysql`` one for Aurora MySQL): the database, with its
  host and port set to the cluster's writer endpoint.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from airflow_aurora_wake.dag_factories.prewake import aurora_prewake_dag
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

CLUSTER = "{{ var.value.aurora_wake_example_cluster }}"
CONN_ID = "{{ var.value.get('aurora_wake_example_conn_id', 'aurora_pg') }}"

with DAG(
    dag_id="example_aurora_prewake",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "aurora"],
    doc_md=__doc__,
) as dag:
    ready = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=CLUSTER,
        conn_id=CONN_ID,
        timeout=timedelta(minutes=30).total_seconds(),
    )
    report = SQLExecuteQueryOperator(task_id="report", conn_id=CONN_ID, sql="SELECT 1")
    ready >> report

prewake = aurora_prewake_dag(
    dag,
    db_cluster_identifier=CLUSTER,
    conn_id=CONN_ID,
    max_lead_time=timedelta(minutes=15),
)

"""
Every hour, sweep the expired warm-window holds off a list of Aurora clusters.

A warm window's hold is a tag on the cluster with an expiry. A run that dies before its
release (a killed worker, a deleted DAG run) leaves the tag, and the floor it held stays until
the next hold or release on that cluster, or this sweep: ``sweep`` removes the expired holds of
each cluster and gives it the highest floor of the live holds, or back its own scaling. Live
holds are left alone. The task's XCom has one result per cluster (``released`` true when
expired holds were removed, ``holds`` the live ones left, ``scaling`` the scaling now).

Configured by Airflow connections and Variables only (the same file runs against real AWS and
against this project's emulator):

- Connection ``aws_default`` (type ``aws``): credentials allowed to call
  ``rds:DescribeDBClusters``, ``rds:ModifyDBCluster`` and ``rds:RemoveTagsFromResource`` (and
  ``rds:ModifyCurrentDBClusterCapacity`` for Serverless v1 clusters), with ``region_name`` in
  its extra. For the emulator: login ``testing``, password ``testing``, extra
  ``{"endpoint_url": "http://127.0.0.1:PORT", "region_name": "us-east-1"}``.
- Variable ``aurora_wake_sweep_clusters``: the DB cluster identifiers (or ARNs, whose region
  applies) separated by commas or spaces, for example ``sales, orders``.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_aurora_wake.operators.aurora_window import AuroraServerlessSweepHoldsOperator

with DAG(
    dag_id="example_aurora_sweep_holds",
    schedule="@hourly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["example", "aurora"],
    doc_md=__doc__,
) as dag:
    AuroraServerlessSweepHoldsOperator(
        task_id="sweep",
        db_cluster_identifiers="{{ var.value.aurora_wake_sweep_clusters }}",
        aws_conn_id="aws_default",
    )
